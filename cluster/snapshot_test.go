package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/cluster"
)

// TestClusterCatchUpFromSnapshot: with a snapshot every 64 log entries, a
// follower that was down while the log moved past it, and a node added
// later, both catch up by installing the leader's snapshot rather than
// replaying the log from its start, and end with the leader's state. With
// 20 KiB values every entry is a payload entry, whose batches the store
// keeps by reference to the Raft payload: the snapshot must carry those.
func TestClusterCatchUpFromSnapshot(t *testing.T) {
	for _, tc := range []struct{ size, perEntry int }{{8, 5}, {20 << 10, 1}} {
		t.Run(fmt.Sprintf("value=%dB", tc.size), func(t *testing.T) { testCatchUpFromSnapshot(t, tc.size, tc.perEntry) })
	}
}

func testCatchUpFromSnapshot(t *testing.T, size, perEntry int) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.FastTimeouts(), cluster.SnapshotEvery(64))
	ctx := waitCtx(t, 60*time.Second)
	prod := newClient(t, c, kgo.DefaultProduceTopic("orders"), kgo.ProducerLinger(0))
	a := newAcks()
	seq := uint64(0)
	// produceEntries writes n Raft entries: one produce request each.
	produceEntries := func(n int) {
		for i := 0; i < n; i++ {
			produceSeqSized(ctx, prod, a, seq, seq+uint64(perEntry), size, func() {})
			seq += uint64(perEntry)
		}
	}
	leader, err := c.WaitLeader(ctx)
	must(t, err)
	follower := (leader + 1) % 3
	produceEntries(100)
	lastSeen := self(c.Node(follower)).LastLogIndex
	c.Kill(follower)
	produceEntries(200)
	leader, err = c.WaitLeader(ctx)
	must(t, err)
	must(t, retry(ctx, func() error {
		st := self(c.Node(leader))
		if st.FirstLogIndex <= lastSeen+1 {
			return fmt.Errorf("leader's log starts at %d; the follower has up to %d", st.FirstLogIndex, lastSeen)
		}
		return nil
	}))

	must(t, c.Restart(follower))
	must(t, c.WaitHealthy(ctx))
	st := caughtUp(ctx, t, c.Node(follower))
	t.Logf("restarted follower: %d snapshot(s) installed (last in %dms), caught up %dms after start; leader's snapshot %d bytes at index %d",
		st.SnapshotsInstalled, st.SnapshotInstallMs, st.CatchUpMs, self(c.Node(leader)).SnapshotBytes, self(c.Node(leader)).SnapshotIndex)
	if st.SnapshotsInstalled < 1 {
		t.Errorf("restarted follower installed no snapshot: %+v", st)
	}

	added, err := c.AddNode()
	must(t, err)
	must(t, c.WaitHealthy(ctx))
	st = caughtUp(ctx, t, c.Node(added))
	t.Logf("added node: %d snapshot(s) installed (last in %dms), caught up %dms after start", st.SnapshotsInstalled, st.SnapshotInstallMs, st.CatchUpMs)
	if st.SnapshotsInstalled < 1 {
		t.Errorf("added node installed no snapshot: %+v", st)
	}
	want, err := c.Node(leader).Store().Offsets("orders", 0)
	must(t, err)
	for _, i := range []int{follower, added} {
		got, err := c.Node(i).Store().Offsets("orders", 0)
		must(t, err)
		if got.HighWatermark < want.HighWatermark {
			t.Errorf("node %d: high watermark %d, leader's %d", i+1, got.HighWatermark, want.HighWatermark)
		}
	}
	checkLog(t, a, readLog(ctx, t, c, "orders"), seq)
}

// caughtUp waits until n reports how long it took to catch up (its
// monitor measures that on the poll after it did) and returns its status.
func caughtUp(ctx context.Context, t *testing.T, n *cluster.Node) cluster.NodeStatus {
	t.Helper()
	must(t, retry(ctx, func() error {
		if self(n).CatchUpMs < 0 {
			return fmt.Errorf("node %d reports no catch-up time", n.ID())
		}
		return nil
	}))
	return self(n)
}

// self is a node's own row of its cluster status.
func self(n *cluster.Node) cluster.NodeStatus {
	for _, m := range n.Status().Members {
		if m.ID == n.ID() {
			return m.NodeStatus
		}
	}
	return cluster.NodeStatus{ID: -1, CatchUpMs: -1}
}
