package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupAPIs are the classic consumer group keys a group member uses.
var groupAPIs = []int16{
	kmsg.FindCoordinator.Int16(), kmsg.JoinGroup.Int16(), kmsg.SyncGroup.Int16(), kmsg.Heartbeat.Int16(),
	kmsg.LeaveGroup.Int16(), kmsg.OffsetCommit.Int16(), kmsg.OffsetFetch.Int16(),
}

// groupMember is one franz-go consumer group member that commits what it
// polled before allowing a rebalance, so a partition that moves is
// resumed exactly where its last owner stopped.
type groupMember struct {
	name     string
	cl       *kgo.Client
	assigned atomic.Int32 // partitions currently owned

	mu  sync.Mutex
	got map[string]int // value -> times seen
	err error

	done chan struct{}
}

func startMember(ctx context.Context, t *testing.T, name, addr, group, topic string, balancer kgo.GroupBalancer) *groupMember {
	t.Helper()
	m := &groupMember{name: name, got: map[string]int{}, done: make(chan struct{})}
	m.cl = newClient(t, addr,
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.Balancers(balancer),
		kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.assigned.Add(int32(len(a[topic])))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.assigned.Add(-int32(len(r[topic])))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			m.assigned.Add(-int32(len(l[topic])))
		}),
	)
	go m.run(ctx)
	return m
}

// run is the member's poll loop; it ends when ctx ends.
func (m *groupMember) run(ctx context.Context) {
	defer close(m.done)
	for ctx.Err() == nil {
		fs := m.cl.PollRecords(ctx, 64)
		var ferr error
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("%s fetch %s/%d: %w", m.name, tp, p, err)
			}
		})
		recs := fs.Records()
		if len(recs) > 0 && ctx.Err() == nil {
			if err := m.cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
				ferr = fmt.Errorf("%s commit: %w", m.name, err)
			}
		}
		m.mu.Lock()
		for _, r := range recs {
			m.got[string(r.Value)]++
		}
		if ferr != nil && m.err == nil {
			m.err = ferr
		}
		m.mu.Unlock()
		m.cl.AllowRebalance()
	}
}

func (m *groupMember) seen() (map[string]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.got))
	for k, v := range m.got {
		out[k] = v
	}
	return out, m.err
}

// TestFranzGoGroupRebalanceCommitResume runs a consumer group of two
// franz-go members: the first consumes alone, the second joins and takes
// half the partitions, both commit; after both leave, a third member of
// the same group resumes from the committed offsets.
func TestFranzGoGroupRebalanceCommitResume(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) { testGroupRebalance(t, tc.balancer) })
	}
}

func testGroupRebalance(t *testing.T, balancer kgo.GroupBalancer) {
	k := startKbox(t)
	needAPIs(t, k.Addr, groupAPIs...)
	const topic, group, parts = "orders", "billing", 4
	createTopic(t, k.Addr, topic, parts, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	produceSync(t, k.Addr, numbered(topic, "a", 0, 200))
	mctx, stopMembers := context.WithCancel(ctx)
	a := startMember(mctx, t, "A", k.Addr, group, topic, balancer)
	waitFor(t, 30*time.Second, func() error { return wantSeen(a, 200) })
	if n := a.assigned.Load(); n != parts {
		t.Errorf("A alone owns %d partitions, want %d", n, parts)
	}

	b := startMember(mctx, t, "B", k.Addr, group, topic, balancer)
	waitFor(t, 30*time.Second, func() error {
		if na, nb := a.assigned.Load(), b.assigned.Load(); na != parts/2 || nb != parts/2 {
			return fmt.Errorf("after B joined: A owns %d, B owns %d partitions, want %d each", na, nb, parts/2)
		}
		return nil
	})
	produceSync(t, k.Addr, numbered(topic, "b", 200, 200))
	var union map[string]int
	waitFor(t, 30*time.Second, func() error {
		union = map[string]int{}
		for _, m := range []*groupMember{a, b} {
			got, err := m.seen()
			if err != nil {
				return err
			}
			for v, c := range got {
				union[v] += c
			}
		}
		if len(union) < 400 {
			return fmt.Errorf("group consumed %d of 400 distinct records", len(union))
		}
		return nil
	})
	for v, c := range union {
		if c != 1 {
			t.Errorf("record %s consumed %d times by the group", v, c)
		}
	}
	if gotB, _ := b.seen(); len(gotB) == 0 {
		t.Errorf("B consumed nothing after the rebalance")
	}
	stopMembers()
	<-a.done
	<-b.done
	a.cl.Close() // leave the group
	b.cl.Close()

	adm := kadm.NewClient(newClient(t, k.Addr))
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	ends := endOffsets(t, k.Addr, topic)
	for p, end := range ends {
		o, ok := committed.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != end {
			t.Errorf("committed %s/%d = %+v, want %d", topic, p, o, end)
		}
	}

	produceSync(t, k.Addr, numbered(topic, "c", 400, 50))
	c := startMember(ctx, t, "C", k.Addr, group, topic, balancer)
	waitFor(t, 30*time.Second, func() error { return wantSeen(c, 50) })
	got, _ := c.seen()
	for v, n := range got {
		if n != 1 || v[0] != 'c' {
			t.Errorf("resumed member got %s x%d; want only the 50 records produced after the commit", v, n)
		}
	}
}

// wantSeen is nil once m has seen at least n distinct records.
func wantSeen(m *groupMember, n int) error {
	got, err := m.seen()
	if err != nil {
		return err
	}
	if len(got) < n {
		return fmt.Errorf("%s consumed %d of %d records", m.name, len(got), n)
	}
	return nil
}

// TestFranzGoProduceConsume checks keys, values, headers, timestamps and
// offsets of records produced with every codec round-trip through kbox.
func TestFranzGoProduceConsume(t *testing.T) {
	k := startKbox(t)
	ts := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	for _, codec := range codecs {
		t.Run(codec.name, func(t *testing.T) {
			topic := "franz-" + codec.name
			createTopic(t, k.Addr, topic, 1, nil)
			rs := numbered(topic, "v", 0, 100)
			for i, r := range rs {
				r.Timestamp = ts.Add(time.Duration(i) * time.Second)
			}
			produceSync(t, k.Addr, rs, kgo.ProducerBatchCompression(codec.franz))
			got := readAll(t, k.Addr, topic)
			if len(got) != len(rs) {
				t.Fatalf("read %d records, want %d", len(got), len(rs))
			}
			for i, r := range got {
				want := rs[i]
				if r.Offset != int64(i) || string(r.Key) != string(want.Key) || string(r.Value) != string(want.Value) ||
					!r.Timestamp.Equal(want.Timestamp) || fmt.Sprint(headerMap(r.Headers)) != fmt.Sprint(headerMap(want.Headers)) {
					t.Fatalf("record %d = off %d key %q value %q ts %v headers %v; want key %q value %q ts %v headers %v",
						i, r.Offset, r.Key, r.Value, r.Timestamp, r.Headers, want.Key, want.Value, want.Timestamp, want.Headers)
				}
				if c := r.Attrs.CompressionType(); c != codec.attr {
					t.Fatalf("record %d stored with codec %d, want %d", i, c, codec.attr)
				}
			}
		})
	}
}

// codecs are Kafka's record batch compression codecs.
var codecs = []struct {
	name  string
	attr  uint8 // the batch attributes' codec bits
	franz kgo.CompressionCodec
}{
	{"none", 0, kgo.NoCompression()},
	{"gzip", 1, kgo.GzipCompression()},
	{"snappy", 2, kgo.SnappyCompression()},
	{"lz4", 3, kgo.Lz4Compression()},
	{"zstd", 4, kgo.ZstdCompression()},
}
