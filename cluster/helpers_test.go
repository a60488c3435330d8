package cluster_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/broker/records"
	"github.com/kbox-dev/kbox/cluster"
)

// seeds is the cluster's bootstrap list for kgo.
func seeds(c *cluster.Cluster) kgo.Opt {
	return kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...)
}

// newClient returns a kgo client for the cluster, closed at cleanup.
func newClient(t *testing.T, c *cluster.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		seeds(c),
		// kgo refreshes metadata at most every 5s by default; a failover
		// in a test cluster is over in a fraction of that.
		kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// acks records what an acks=all idempotent producer was told: the offset
// of every acknowledged record, by its sequence number.
type acks struct {
	mu      sync.Mutex
	offsets map[uint64]ackAt
	errs    []error
	n       atomic.Int64
}

type ackAt struct {
	partition int32
	offset    int64
}

func newAcks() *acks { return &acks{offsets: map[uint64]ackAt{}} }

func (a *acks) record(r *kgo.Record, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs = append(a.errs, err)
		return
	}
	a.offsets[binary.BigEndian.Uint64(r.Value)] = ackAt{r.Partition, r.Offset}
	a.n.Add(1)
}

// waitCount waits until at least n records are acknowledged.
func (a *acks) waitCount(ctx context.Context, n int64) error {
	for a.n.Load() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %d of %d records acknowledged", ctx.Err(), a.n.Load(), n)
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// produceSeq produces records with values from..to-1 (8-byte big-endian
// sequence numbers) and calls done once all are acknowledged or failed.
func produceSeq(ctx context.Context, cl *kgo.Client, a *acks, from, to uint64, done func()) {
	produceSeqSized(ctx, cl, a, from, to, 8, done)
}

// produceSeqSized is produceSeq with values of size bytes (at least 8):
// the sequence number, then random bytes, so that no codec shrinks them.
func produceSeqSized(ctx context.Context, cl *kgo.Client, a *acks, from, to uint64, size int, done func()) {
	var wg sync.WaitGroup
	for i := from; i < to; i++ {
		v := make([]byte, max(size, 8))
		rand.NewChaCha8([32]byte{byte(i), byte(i >> 8), byte(i >> 16)}).Read(v[8:])
		binary.BigEndian.PutUint64(v, i)
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: v[7:], Value: v}, func(r *kgo.Record, err error) {
			a.record(r, err)
			wg.Done()
		})
	}
	wg.Wait()
	done()
}

// stored is one record as read back from the log.
type stored struct {
	offset int64
	seq    uint64
}

// readLog reads every partition of topic from its start to its high
// watermark, straight by partition (no group).
func readLog(ctx context.Context, t *testing.T, c *cluster.Cluster, topic string) map[int32][]stored {
	t.Helper()
	adm := kadm.NewClient(newClient(t, c))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		want[o.Partition] = o.Offset
		parts[o.Partition] = kgo.NewOffset().AtStart()
	})
	cl := newClient(t, c, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.FetchMaxWait(100*time.Millisecond))
	out := map[int32][]stored{}
	for {
		doneAll := true
		for p, end := range want {
			if l := out[p]; end > 0 && (len(l) == 0 || l[len(l)-1].offset < end-1) {
				doneAll = false
			}
		}
		if doneAll {
			return out
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s back: %v (have %d partitions)", topic, ctx.Err(), len(out))
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("fetch %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], stored{r.Offset, binary.BigEndian.Uint64(r.Value)})
		})
	}
}

// highWatermarks are the partitions' ends in a log read by readLog.
func highWatermarks(log map[int32][]stored) map[int32]int64 {
	out := map[int32]int64{}
	for p, recs := range log {
		if len(recs) > 0 {
			out[p] = recs[len(recs)-1].offset + 1
		}
	}
	return out
}

// checkLog asserts that the log holds exactly the sequence numbers
// 0..total-1, each once, in increasing order within a partition, and that
// every acknowledged record sits at the offset its ack named.
func checkLog(t *testing.T, a *acks, log map[int32][]stored, total uint64) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.errs) > 0 {
		t.Errorf("%d produce errors, first: %v", len(a.errs), a.errs[0])
	}
	at := map[ackAt]uint64{}
	seen := map[uint64]int{}
	for p, recs := range log {
		for i, r := range recs {
			if i > 0 && r.seq <= recs[i-1].seq {
				t.Errorf("partition %d: seq %d at offset %d after seq %d at %d: out of order", p, r.seq, r.offset, recs[i-1].seq, recs[i-1].offset)
			}
			at[ackAt{p, r.offset}] = r.seq
			seen[r.seq]++
		}
	}
	for seq, n := range seen {
		if n > 1 {
			t.Errorf("seq %d is in the log %d times", seq, n)
		}
		if seq >= total {
			t.Errorf("seq %d was never produced", seq)
		}
	}
	missing := 0
	for seq, where := range a.offsets {
		got, ok := at[where]
		if !ok || got != seq {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged seq %d at %d/%d: log has %d (present %v)", seq, where.partition, where.offset, got, ok)
			}
		}
	}
	if uint64(len(a.offsets)) != total || uint64(len(seen)) != total {
		t.Errorf("%d acknowledged, %d distinct in the log, want %d", len(a.offsets), len(seen), total)
	}
	if missing > 0 {
		t.Errorf("%d acknowledged records are not where their ack said", missing)
	}
}

// waitCtx returns a context for one phase of a test.
func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// retry calls fn until it succeeds or ctx ends, and returns its last
// error then.
func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// encodeBatch is a v2 record batch of one record per value, without a
// producer ID.
func encodeBatch(t *testing.T, values ...[]byte) []byte {
	t.Helper()
	now := time.Now().UnixMilli()
	b := records.Batch{FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	for i, v := range values {
		b.Records = append(b.Records, records.Record{OffsetDelta: int32(i), Value: v})
	}
	raw, err := records.Encode(b)
	must(t, err)
	return raw
}
