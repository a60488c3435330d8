package cluster_test

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/cluster"
)

// TestClusterMembershipChurn adds a node, removes the leader and restarts
// every node one by one while a producer and a consumer run; the consumer
// must read every acknowledged record exactly once, in order, and so must
// a reader of the whole log afterwards.
func TestClusterMembershipChurn(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.Partitions(3), cluster.FastTimeouts())
	ctx := waitCtx(t, 120*time.Second)
	prod := newClient(t, c, kgo.DefaultProduceTopic("orders"), kgo.MaxBufferedRecords(1000))
	a := newAcks()
	stop := make(chan struct{})
	total := make(chan uint64, 1)
	go func() { total <- producePaced(ctx, prod, a, stop) }()
	cons := newConsumer(ctx, t, c, "orders", 3)

	step := func(what string, fn func() error) {
		t.Helper()
		start, acked := time.Now(), a.n.Load()
		must(t, fn())
		must(t, c.WaitHealthy(ctx))
		t.Logf("%s: healthy after %v, %d records acknowledged meanwhile", what, time.Since(start), a.n.Load()-acked)
	}
	must(t, a.waitCount(ctx, 2000))
	step("add node", func() error {
		i, err := c.AddNode()
		if err == nil && c.Node(i) == nil {
			err = errors.New("added node does not run")
		}
		return err
	})
	leader, err := c.WaitLeader(ctx)
	must(t, err)
	removed := c.Node(leader)
	step("remove the leader", func() error { return c.RemoveNode(leader) })
	if !errors.Is(removed.Err(), cluster.ErrRemoved) {
		t.Errorf("removed node stopped with %v, want ErrRemoved", removed.Err())
	}
	for i := 0; i < c.Len(); i++ {
		if c.Node(i) == nil {
			continue
		}
		step("restart node "+string(rune('1'+i)), func() error { return c.Restart(i) })
	}
	close(stop)
	n := <-total
	got := cons.waitFor(ctx, t, int(n))
	log := readLog(ctx, t, c, "orders")
	checkLog(t, a, log, n)
	for p, recs := range log {
		if len(got[p]) != len(recs) {
			t.Errorf("partition %d: consumer read %d records, the log holds %d", p, len(got[p]), len(recs))
			continue
		}
		for i := range recs {
			if got[p][i] != recs[i] {
				t.Errorf("partition %d: consumer read %+v at position %d, the log holds %+v", p, got[p][i], i, recs[i])
				break
			}
		}
	}
	t.Logf("%d records produced and consumed through the churn", n)
}

// producePaced produces sequence numbers at up to ~20,000 records/s until
// stop, waits for every answer, and returns how many it produced.
func producePaced(ctx context.Context, cl *kgo.Client, a *acks, stop <-chan struct{}) uint64 {
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := uint64(0); ; i++ {
		if i%100 == 0 {
			select {
			case <-stop:
				return i
			case <-ctx.Done():
				return i
			case <-time.After(5 * time.Millisecond):
			}
		}
		v := binary.BigEndian.AppendUint64(nil, i)
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: v[7:], Value: v}, func(r *kgo.Record, err error) {
			a.record(r, err)
			wg.Done()
		})
	}
}

// consumer reads partitions directly (no group) into memory as records
// arrive.
type consumer struct {
	mu   sync.Mutex
	recs map[int32][]stored
	n    int
}

func newConsumer(ctx context.Context, t *testing.T, c *cluster.Cluster, topic string, partitions int32) *consumer {
	parts := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cl := newClient(t, c, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.FetchMaxWait(100*time.Millisecond))
	cs := &consumer{recs: map[int32][]stored{}}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			cs.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				cs.recs[r.Partition] = append(cs.recs[r.Partition], stored{r.Offset, binary.BigEndian.Uint64(r.Value)})
				cs.n++
			})
			cs.mu.Unlock()
		}
	}()
	return cs
}

// waitFor waits until the consumer has read n records and returns them.
func (cs *consumer) waitFor(ctx context.Context, t *testing.T, n int) map[int32][]stored {
	t.Helper()
	for {
		cs.mu.Lock()
		have := cs.n
		if have >= n {
			out := map[int32][]stored{}
			for p, l := range cs.recs {
				out[p] = append([]stored(nil), l...)
			}
			cs.mu.Unlock()
			return out
		}
		cs.mu.Unlock()
		select {
		case <-ctx.Done():
			t.Fatalf("consumer read %d of %d records: %v", have, n, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
