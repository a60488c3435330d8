package broker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/cluster"
)

// TestCleanerOnThreeNodeCluster runs the nodes' own background cleaners
// (every 5s, on the leader) against retention and compaction, judged by
// kgo and kadm; the cluster's cleanup then checks that every node's store
// digest agrees, so the cleaner's deletions replicate deterministically.
func TestCleanerOnThreeNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5s background cleaner")
	}
	c := cluster.Start(t, cluster.Nodes(3))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for name, cfg := range map[string]map[string]*string{
		"node-ret": {"retention.ms": kadm.StringPtr("600000")},
		"node-cmp": {"cleanup.policy": kadm.StringPtr("compact")},
	} {
		if resp, err := adm.CreateTopic(ctx, 1, 3, cfg, name); err != nil || resp.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, resp.Err)
		}
	}
	old := time.Now().Add(-time.Hour)
	produce := func(topic, key string, value *string, ts time.Time) {
		t.Helper()
		r := &kgo.Record{Topic: topic, Key: []byte(key), Timestamp: ts}
		if value != nil {
			r.Value = []byte(*value)
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	v := func(s string) *string { return &s }
	produce("node-ret", "k", v("0"), old)
	produce("node-ret", "k", v("1"), old)
	produce("node-ret", "k", v("2"), time.Now())
	produce("node-cmp", "a", v("1"), time.Now())
	produce("node-cmp", "b", v("1"), time.Now())
	produce("node-cmp", "a", v("2"), time.Now())
	produce("node-cmp", "b", nil, time.Now())
	produce("node-cmp", "c", v("1"), time.Now())

	// Every node, followers included, must reach the cleaned state.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var notYet []string
		for i := 0; i < c.Len(); i++ {
			s := c.Node(i).Store()
			if offs, _ := s.Offsets("node-ret", 0); offs.LogStart != 2 {
				notYet = append(notYet, fmt.Sprintf("node %d: node-ret log start %d", i+1, offs.LogStart))
			}
			var n int
			s.Batches("node-cmp", 0, 0, 1<<62, func([]byte) error { n++; return nil })
			if n != 3 {
				notYet = append(notYet, fmt.Sprintf("node %d: node-cmp has %d batches", i+1, n))
			}
		}
		if len(notYet) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cleaner did not run within 30s: %v", notYet)
		}
		select {
		case <-c.Node(0).Store().Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}

	// Retry through a leader election (2 busy cores can delay heartbeats).
	var starts kadm.ListedOffsets
	for {
		starts, err = adm.ListStartOffsets(ctx, "node-ret", "node-cmp")
		if err == nil {
			err = starts.Error()
		}
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("node-ret", 0); o.Offset != 2 {
		t.Errorf("node-ret earliest offset %d, want 2", o.Offset)
	}
	if o, _ := starts.Lookup("node-cmp", 0); o.Offset != 0 {
		t.Errorf("node-cmp earliest offset %d, want 0 (compaction keeps the log start)", o.Offset)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"node-cmp": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < 3 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			val := "<tombstone>"
			if r.Value != nil {
				val = string(r.Value)
			}
			got = append(got, fmt.Sprintf("%d:%s=%s", r.Offset, r.Key, val))
		})
	}
	if want := "[2:a=2 3:b=<tombstone> 4:c=1]"; fmt.Sprint(got) != want {
		t.Errorf("compacted topic reads %v, want %s", got, want)
	}
}
