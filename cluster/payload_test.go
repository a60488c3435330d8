package cluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/broker/storage"
	"github.com/kbox-dev/kbox/cluster"
)

// TestPayloadsLiveUntilBatchesAndLogLetGo follows the data of large
// produce requests, which state.db holds once as Raft payloads: they stay
// while the partition's batches refer to them, stay (log only) after
// DeleteRecords while the Raft log still holds the entries, and are gone
// once a snapshot lets Raft compact its log, on every node.
func TestPayloadsLiveUntilBatchesAndLogLetGo(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("big"), cluster.FastTimeouts(), cluster.SnapshotEvery(8))
	ctx := waitCtx(t, 30*time.Second)
	leader, err := c.WaitLeader(ctx)
	must(t, err)
	cl := newClient(t, c, kgo.DefaultProduceTopic("big"), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const n = 20
	a := newAcks()
	produceSeqSized(ctx, cl, a, 0, n, 20<<10, func() {})
	stats := func(i int) storage.PayloadStats {
		t.Helper()
		st, err := c.Node(i).Store().PayloadStats()
		must(t, err)
		return st
	}
	must(t, c.WaitApplied(ctx, c.Node(leader).Store().Applied()))
	for i := range 3 {
		if st := stats(i); st.Referenced < 1 || st.Bytes < n*20<<10 {
			t.Fatalf("node %d after producing %d records of 20 KiB: %+v", i+1, n, st)
		}
	}

	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "big")
	must(t, err)
	res, err := adm.DeleteRecords(ctx, ends.Offsets())
	must(t, err)
	must(t, res.Error())
	must(t, c.WaitApplied(ctx, c.Node(leader).Store().Applied()))
	for i := range 3 {
		if st := stats(i); st.Referenced != 0 {
			t.Fatalf("node %d after DeleteRecords: %+v, want no referenced payloads", i+1, st)
		}
	}
	// Entries after the deletes move the payload entries out of the Raft
	// logs' trailing window; a snapshot on each node then lets its Raft
	// drop the old entries, and their payloads with them.
	small := newClient(t, c, kgo.DefaultProduceTopic("big"), kgo.ProducerLinger(0))
	for i := range 10 {
		must(t, small.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr())
	}
	must(t, c.WaitApplied(ctx, c.Node(leader).Store().Applied()))
	for i := range 3 {
		must(t, c.Node(i).Snapshot())
	}
	must(t, retry(ctx, func() error {
		for i := range 3 {
			if st := stats(i); st.Count != 0 {
				return fmt.Errorf("node %d still holds %+v", i+1, st)
			}
		}
		return nil
	}))
}
