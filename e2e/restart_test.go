package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRestartKeepsEverything produces, commits group offsets and sets a
// topic config, stops kbox with SIGTERM, starts it on the same data dir and
// finds all of it there; new records continue the offsets.
func TestRestartKeepsEverything(t *testing.T) {
	k := startKbox(t)
	const topic, group = "restart", "restart-group"
	parts := int32(3)
	retention := "7200000"
	var configs map[string]*string
	if m, _ := missingAPIs(k.Addr, kmsg.CreateTopics.Int16(), kmsg.DescribeConfigs.Int16()); len(m) == 0 {
		configs = map[string]*string{"retention.ms": &retention}
	} else {
		parts = 1
		t.Logf("kbox does not serve %v yet: one auto-created partition, no topic config checked", m)
	}
	createTopic(t, k.Addr, topic, parts, configs)
	produceSync(t, k.Addr, numbered(topic, "v", 0, 300))
	before := readAll(t, k.Addr, topic)
	endsBefore := endOffsets(t, k.Addr, topic)

	ctx := testCtx(t, 60*time.Second)
	groups := len(mustMissing(t, k.Addr, kmsg.FindCoordinator.Int16(), kmsg.OffsetCommit.Int16(), kmsg.OffsetFetch.Int16())) == 0
	commit := kadm.Offsets{}
	if groups {
		for p := int32(0); p < parts; p++ {
			commit.Add(kadm.Offset{Topic: topic, Partition: p, At: int64(10 + p), LeaderEpoch: -1, Metadata: fmt.Sprint("m", p)})
		}
		adm := kadm.NewClient(newClient(t, k.Addr))
		if err := adm.CommitAllOffsets(ctx, group, commit); err != nil {
			t.Fatalf("commit offsets: %v", err)
		}
	} else {
		t.Logf("kbox does not serve offset commits yet: group offsets not checked")
	}

	k = k.Restart(t)

	after := readAll(t, k.Addr, topic)
	if len(after) != len(before) {
		t.Fatalf("after restart %d records, before %d", len(after), len(before))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.Partition != b.Partition || a.Offset != b.Offset || string(a.Key) != string(b.Key) || string(a.Value) != string(b.Value) ||
			!a.Timestamp.Equal(b.Timestamp) || fmt.Sprint(a.Headers) != fmt.Sprint(b.Headers) {
			t.Fatalf("record %d changed across restart:\n before %d/%d %q=%q %v %v\n after  %d/%d %q=%q %v %v",
				i, b.Partition, b.Offset, b.Key, b.Value, b.Timestamp, b.Headers, a.Partition, a.Offset, a.Key, a.Value, a.Timestamp, a.Headers)
		}
	}
	if ends := endOffsets(t, k.Addr, topic); fmt.Sprint(ends) != fmt.Sprint(endsBefore) {
		t.Errorf("end offsets after restart %v, before %v", ends, endsBefore)
	}
	adm := kadm.NewClient(newClient(t, k.Addr))
	if groups {
		got, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("fetch offsets after restart: %v", err)
		}
		commit.Each(func(o kadm.Offset) {
			g, ok := got.Lookup(o.Topic, o.Partition)
			if !ok || g.Err != nil || g.At != o.At || g.Metadata != o.Metadata {
				t.Errorf("group offset %s/%d after restart = %+v, want at %d metadata %q", o.Topic, o.Partition, g, o.At, o.Metadata)
			}
		})
	}
	if configs != nil {
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatalf("describe configs: %v", err)
		}
		c, err := rc.On(topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, kv := range c.Configs {
			if kv.Key == "retention.ms" {
				found = true
				if kv.MaybeValue() != retention {
					t.Errorf("retention.ms after restart = %q, want %q", kv.MaybeValue(), retention)
				}
			}
		}
		if !found {
			t.Errorf("retention.ms missing from DescribeConfigs after restart")
		}
	}

	more := numbered(topic, "w", 0, 10)
	for _, r := range more {
		r.Partition = 0
	}
	produceSync(t, k.Addr, more, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if end := endOffsets(t, k.Addr, topic)[0]; end != endsBefore[0]+10 {
		t.Errorf("partition 0 end after 10 more records = %d, want %d", end, endsBefore[0]+10)
	}
	k.Stop(t)
}

func mustMissing(t testing.TB, addr string, keys ...int16) []string {
	t.Helper()
	m, err := missingAPIs(addr, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestKill9AcksAllSurvive kills kbox with SIGKILL while an idempotent
// acks=all producer is mid-stream, restarts it, and checks that every
// acknowledged record is there exactly once (and no record twice). With
// 1 KiB values every produce request is a Raft payload entry, whose
// batches the store keeps by reference (broker/DESIGN.md): the kill can
// land between the payload write, the log entry and the apply.
func TestKill9AcksAllSurvive(t *testing.T) {
	for _, pad := range []int{0, 1024} {
		t.Run(fmt.Sprintf("value+%dB", pad), func(t *testing.T) { testKill9AcksAllSurvive(t, pad) })
	}
}

func testKill9AcksAllSurvive(t *testing.T, pad int) {
	k := startKbox(t)
	padding := strings.Repeat("p", pad)
	const topic = "kill9"
	parts := int32(2)
	if len(mustMissing(t, k.Addr, kmsg.CreateTopics.Int16())) > 0 {
		parts = 1
	}
	createTopic(t, k.Addr, topic, parts, nil)

	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordRetries(3), kgo.RecordDeliveryTimeout(5*time.Second), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var (
		mu     sync.Mutex
		acked  = map[string]bool{}
		failed int // records whose produce failed: in flight or buffered at the kill
	)
	pctx, stopProducing := context.WithCancel(context.Background())
	defer stopProducing()
	produced := make(chan struct{})
	sent := 0   // written by the producer goroutine, read after produced closes
	go func() { // the producer: stops when pctx ends
		defer close(produced)
		for i := 0; pctx.Err() == nil; i++ {
			sent++
			r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i % 97)), Value: []byte(fmt.Sprintf("r-%07d%s", i, padding))}
			cl.Produce(pctx, r, func(r *kgo.Record, err error) {
				mu.Lock()
				if err == nil {
					acked[string(r.Value)] = true
				} else {
					failed++
				}
				mu.Unlock()
			})
		}
	}()
	waitFor(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 5000 {
			return fmt.Errorf("%d records acknowledged", len(acked))
		}
		return nil
	})
	// An offset commit acknowledged just before the kill must survive too.
	groups := len(mustMissing(t, k.Addr, kmsg.FindCoordinator.Int16(), kmsg.OffsetCommit.Int16(), kmsg.OffsetFetch.Int16())) == 0
	commit := kadm.Offsets{}
	if groups {
		commit.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1234, LeaderEpoch: -1, Metadata: "before kill"})
		if err := kadm.NewClient(newClient(t, k.Addr)).CommitAllOffsets(testCtx(t, 20*time.Second), "kill9-group", commit); err != nil {
			t.Fatalf("commit offsets: %v", err)
		}
	}
	k.Kill(t)
	mu.Lock()
	atKill := len(acked)
	mu.Unlock()
	stopProducing()
	<-produced
	cl.Close() // fails what is still buffered or in flight
	var total, notAcked int
	waitFor(t, 30*time.Second, func() error { // every callback has run
		mu.Lock()
		defer mu.Unlock()
		total, notAcked = len(acked), failed
		if total+notAcked != sent {
			return fmt.Errorf("%d records produced, %d callbacks so far (%d acked, %d failed)", sent, total+notAcked, total, notAcked)
		}
		return nil
	})
	t.Logf("%d records acknowledged when killed, %d in all, %d failed (in flight or buffered)", atKill, total, notAcked)
	if notAcked == 0 {
		t.Errorf("no produce failed: the kill did not land mid-produce")
	}

	k = startKboxIn(t, k.dir)
	counts := valueCounts(readAll(t, k.Addr, topic))
	lost := 0
	for v := range acked {
		if counts[v] != 1 {
			if lost < 10 {
				t.Errorf("acknowledged record %s present %d times after kill -9", v, counts[v])
			}
			lost++
		}
	}
	for v, c := range counts {
		if c > 1 && !acked[v] {
			t.Errorf("unacknowledged record %s present %d times (idempotent producer)", v, c)
		}
		if !strings.HasPrefix(v, "r-") {
			t.Errorf("unexpected record %q", v)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged records lost or duplicated", lost, total)
	}
	t.Logf("%d records in the log after restart", len(counts))
	if groups {
		got, err := kadm.NewClient(newClient(t, k.Addr)).FetchOffsets(testCtx(t, 20*time.Second), "kill9-group")
		if err != nil {
			t.Fatalf("fetch offsets after kill -9: %v", err)
		}
		if o, ok := got.Lookup(topic, 0); !ok || o.At != 1234 || o.Metadata != "before kill" {
			t.Errorf("group offset after kill -9 = %+v, want 1234 %q", o, "before kill")
		}
	}
	k.Stop(t)
}
