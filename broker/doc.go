// Package broker serves the Kafka wire protocol on top of broker/storage.
//
// Requests are decoded and responses encoded with franz-go's kmsg; kmsg and
// kerr types stop at this package's edge. Each API key has its own file,
// numbered like kfake's (00_produce.go, 01_fetch.go, ...), with a header
// that gives the versions served and what is deliberately left out. The
// one table in apis.go drives both dispatch and ApiVersions.
//
// State changes never touch the store directly: handlers build
// storage commands and hand them to a [Replicator] (cluster.Node), which
// commits them through Raft and applies them on every node. Reads go
// straight to the store.
//
// Goroutines: [Broker.Serve] owns one goroutine per accepted connection,
// which reads a request, handles it and writes the response before reading
// the next, as Kafka does (a connection is muted while its request is in
// flight). Group coordination runs in the groups type, which owns one
// goroutine per group. [Broker.Close] stops all of them.
package broker
