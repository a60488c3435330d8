// Package cluster runs kbox nodes: hashicorp/raft replicating the broker's
// state machine (broker/storage) between one or more nodes, the Kafka
// broker on top, and the HTTP endpoints beside it. `kbox up` and tests use
// the same code.
//
// # Nodes
//
// [StartNode] starts one node from a [Config]. Without Config.RaftAddr it
// is a single voter on an in-memory transport, leading in about 20ms. With
// a RaftAddr it listens for Raft and for kbox's own cluster RPCs on that
// one TCP port (the first byte of a connection says which); the first node
// bootstraps a cluster, the others name any member in Config.Join and are
// added as voters by the leader. Every node's Metadata lists every node
// at the Kafka address it registered (storage.RegisterNode); every
// partition is led by the Raft leader in the leader epoch that equals its
// Raft term, with all voters as replicas and the caught-up ones as ISR.
// Followers answer produce with NOT_LEADER_OR_FOLLOWER and forward
// topic admin, InitProducerID and registrations to the leader, so admin
// works from any node. Group coordination follows the leader.
//
// A [Node] implements broker.Replicator: Propose applies a command through
// Raft and returns what the state machine's apply returned on this node.
// Raft snapshots are bbolt images of the store; a node that lags behind
// the leader's truncated log installs one. GET /cluster on the HTTP
// address reports every member's applied index, lag, ISR membership,
// snapshot and catch-up time ([ClusterStatus]); `kbox cluster` drives it.
//
// # The in-process cluster
//
// [Start] (tests) and [New] (programs) start a [Cluster] of nodes in this
// process, on 127.0.0.1 random ports with data in temporary directories:
//
//	func TestOrdersSurviveFailover(t *testing.T) {
//		c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.FastTimeouts())
//		cl, _ := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...),
//			kgo.DefaultProduceTopic("orders"), kgo.MetadataMinAge(50*time.Millisecond))
//		defer cl.Close()
//		cl.ProduceSync(ctx, kgo.StringRecord("order-1"))
//		c.Kill(c.Leader())
//		cl.ProduceSync(ctx, kgo.StringRecord("order-2")) // served by the new leader
//	}
//
// Faults: [Cluster.Kill], [Cluster.Restart], [Cluster.Isolate] and
// [Cluster.Heal] (a network partition of one node, through the transport),
// [Cluster.AddNode], [Cluster.RemoveNode]. Waits poll with a deadline:
// [Cluster.WaitLeader], [Cluster.WaitNewLeader], [Cluster.WaitApplied],
// [Cluster.WaitHealthy]. Start's cleanup closes everything and first checks
// that every running node's state digest is equal at the same applied
// index. With [FastTimeouts] a 3-node cluster starts in about 0.2-0.4s and
// elects a new leader 0.1-0.4s after a kill. kgo refreshes metadata at most
// every 5s by default (kgo.MetadataMinAge); lower it in tests that move
// the leader.
//
// # Goroutines
//
// Raft owns its goroutines and calls the FSM (fsm.go) on one of them. A
// Node owns: the Kafka and HTTP servers, the mux layer's accept loop and
// one goroutine per cluster RPC connection, watchLeadership (claims the
// epoch on becoming leader), pollLoop (peer status, ISR, registration,
// removal) and, while joining, joinLoop. Close stops them all. A Cluster
// owns one supervisor per running node, which restarts it on request.
//
// See DESIGN.md in this directory for the reasons behind these choices.
package cluster
