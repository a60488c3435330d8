package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/cluster"
)

// TestClusterRestartFromDisk stops every node and starts them all again
// from their data directories: records, committed group offsets and topic
// configs are all there, a leader is elected in a later epoch, and the
// nodes' states are equal (the cleanup's digest check).
func TestClusterRestartFromDisk(t *testing.T) {
	const total = 10_000
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.Partitions(3), cluster.FastTimeouts())
	ctx := waitCtx(t, 60*time.Second)
	prod := newClient(t, c, kgo.DefaultProduceTopic("orders"))
	a := newAcks()
	produceSeq(ctx, prod, a, 0, total, func() {})
	adm := kadm.NewClient(newClient(t, c))
	offsets := kadm.Offsets{}
	offsets.AddOffset("orders", 0, 17, -1)
	offsets.AddOffset("orders", 2, 42, -1)
	must(t, adm.CommitAllOffsets(ctx, "restarters", offsets))
	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("86400000")}}, "orders")
	must(t, err)
	for _, r := range alter {
		must(t, r.Err)
	}
	before := readLog(ctx, t, c, "orders")
	epochBefore := leaderEpoch(ctx, t, c)

	for i := 0; i < c.Len(); i++ {
		c.Kill(i)
	}
	start := time.Now()
	for i := 0; i < c.Len(); i++ {
		must(t, c.Restart(i))
	}
	must(t, c.WaitHealthy(ctx))
	t.Logf("3 nodes restarted from disk and healthy in %v", time.Since(start))

	checkLog(t, a, readLog(ctx, t, c, "orders"), total)
	after := readLog(ctx, t, c, "orders")
	for p, recs := range before {
		if len(after[p]) != len(recs) {
			t.Errorf("partition %d: %d records before the restart, %d after", p, len(recs), len(after[p]))
		}
	}
	adm = kadm.NewClient(newClient(t, c))
	var got kadm.OffsetResponses
	must(t, retry(ctx, func() (err error) {
		got, err = adm.FetchOffsets(ctx, "restarters")
		return err
	}))
	for _, want := range []struct {
		p   int32
		off int64
	}{{0, 17}, {2, 42}} {
		if o, ok := got.Lookup("orders", want.p); !ok || o.At != want.off {
			t.Errorf("committed offset of orders/%d after restart: %+v, want %d", want.p, o, want.off)
		}
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, "orders")
	must(t, err)
	rc, err := cfgs.On("orders", nil)
	must(t, err)
	found := false
	for _, kv := range rc.Configs {
		if kv.Key == "retention.ms" {
			found = true
			if kv.MaybeValue() != "86400000" {
				t.Errorf("retention.ms after restart = %q", kv.MaybeValue())
			}
		}
	}
	if !found {
		t.Error("retention.ms missing after restart")
	}
	if e := leaderEpoch(ctx, t, c); e <= epochBefore {
		t.Errorf("leader epoch %d after restart, %d before: want it to move forward", e, epochBefore)
	}
}

// leaderEpoch is the leader epoch Metadata reports for orders/0.
func leaderEpoch(ctx context.Context, t *testing.T, c *cluster.Cluster) int32 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, c))
	md, err := adm.Metadata(ctx, "orders")
	must(t, err)
	p, ok := md.Topics["orders"].Partitions[0]
	if !ok {
		t.Fatalf("no orders/0 in metadata: %+v", md.Topics)
	}
	return p.LeaderEpoch
}
