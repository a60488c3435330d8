// Package storage is kbox's deterministic state machine: partition logs,
// topic metadata and configs, committed group offsets and idempotent
// producer state, all kept in one bbolt database.
//
// The only writer of state is [Store.ApplyBatch], called by the cluster
// package on hashicorp/raft's FSM goroutine with commands that the
// replicated log has committed. The Raft log store also writes here, but
// only payloads: the data of large log entries ([Store.PutPayloads]), kept
// in this file so that applied batches can refer to them instead of being
// written a second time (payload.go). Everything non-deterministic (clock readings, topic IDs,
// producer IDs handed to a new leader) is filled in by the proposer before a
// command enters the log, so every node that applies the same log ends in
// the same state, byte for byte; [Store.Digest] checks that.
//
// Reads ([Store.Read], [Store.Topics], [Store.Offsets], ...) run in bbolt
// read transactions on any goroutine, concurrently with applies, and always
// see a state as of some committed log index.
//
// A partition log is a bbolt bucket of Kafka v2 record batches keyed by base
// offset, stored as the producer sent them (so compression is untouched);
// only the batch header fields the broker owns (base offset, partition
// leader epoch, LogAppendTime) are rewritten on append. A batch that came
// in a payload entry is kept as that rewritten header and a reference to
// its records in the payload (log.go).
//
// The package imports neither kmsg nor raft: recovery, tests and benchmarks
// drive it without a cluster.
package storage
