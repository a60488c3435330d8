package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/broker/records"
	"github.com/kbox-dev/kbox/broker/storage"
)

// testClock is an adjustable clock for Config.Now.
type testClock struct{ ms atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.set(t)
	return c
}

func (c *testClock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *testClock) set(t time.Time)         { c.ms.Store(t.UnixMilli()) }
func (c *testClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// cleanerEnv is a broker serving on a loopback port over a real store, with
// the background cleaner off unless interval says otherwise.
type cleanerEnv struct {
	b     *Broker
	store *storage.Store
	repl  *directReplicator
	cl    *kgo.Client
	// producer, when set, is the client produce sends through instead of
	// proposing Appends itself (for codecs only a real client applies).
	producer *kgo.Client
	adm      *kadm.Client
	clock    *testClock
	addr     string // the broker's listener
}

func newCleanerEnv(t *testing.T, interval time.Duration) *cleanerEnv {
	t.Helper()
	s, repl := fuzzStore(t)
	clock := newTestClock(time.Now())
	if interval == 0 {
		interval = -1
	}
	b := New(Config{NodeID: 1, CleanerInterval: interval, Now: clock.now}, s, repl)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(ln.Addr().String()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		b.Close()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &cleanerEnv{b: b, store: s, repl: repl, cl: cl, adm: kadm.NewClient(cl), clock: clock, addr: ln.Addr().String()}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (e *cleanerEnv) createTopic(t *testing.T, name string, configs map[string]string) {
	t.Helper()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	resp, err := e.adm.CreateTopic(testCtx(t), 1, 1, cfg, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
}

// kv is a record to produce or one consumed; a nil value is a tombstone.
type kv struct {
	off   int64
	key   string
	value *string
}

func (r kv) String() string {
	if r.value == nil {
		return fmt.Sprintf("%d:%s=<tombstone>", r.off, r.key)
	}
	return fmt.Sprintf("%d:%s=%s", r.off, r.key, *r.value)
}

func val(s string) *string { return &s }

// produce sends each group of records as one produce call (one batch) and
// checks that their offsets follow on.
//
// Each group is appended as exactly one batch, built here and proposed as
// an Append: a client may split a group it was asked to send together
// (kgo does when topic metadata arrives mid-flush), and the tests count
// batches. With e.producer set, the groups go through that client.
func (e *cleanerEnv) produce(t *testing.T, topic string, ts time.Time, groups ...[]kv) {
	t.Helper()
	if e.producer != nil {
		e.produceVia(t, e.producer, topic, ts, groups...)
		return
	}
	for _, g := range groups {
		b := records.Batch{FirstTimestamp: ts.UnixMilli(), MaxTimestamp: ts.UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		for i, r := range g {
			rec := records.Record{OffsetDelta: int32(i), Key: []byte(r.key)}
			if r.value != nil {
				rec.Value = []byte(*r.value)
			}
			b.Records = append(b.Records, rec)
		}
		raw, err := records.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.b.propose(testCtx(t), storage.Append{Now: time.Now().UnixMilli(), Parts: []storage.AppendPart{{Topic: topic, Batch: raw}}})
		if err == nil {
			if p := res.(storage.AppendResult).Parts[0]; p.Err != nil {
				err = p.Err
			}
		}
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// produceVia sends each group with one ProduceSync of cl.
func (e *cleanerEnv) produceVia(t *testing.T, cl *kgo.Client, topic string, ts time.Time, groups ...[]kv) {
	t.Helper()
	for _, g := range groups {
		var rs []*kgo.Record
		for _, r := range g {
			rec := &kgo.Record{Topic: topic, Key: []byte(r.key), Timestamp: ts}
			if r.value != nil {
				rec.Value = []byte(*r.value)
			}
			rs = append(rs, rec)
		}
		if err := cl.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// consume reads the topic from the start up to its high watermark.
func (e *cleanerEnv) consume(t *testing.T, topic string) []kv {
	t.Helper()
	offs, err := e.store.Offsets(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(e.addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(50*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	var out []kv
	for offs.HighWatermark > offs.LogStart && (len(out) == 0 || out[len(out)-1].off < offs.HighWatermark-1) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: got %v before %v", topic, out, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			got := kv{off: r.Offset, key: string(r.Key)}
			if r.Value != nil {
				got.value = val(string(r.Value))
			}
			out = append(out, got)
		})
	}
	return out
}

func (e *cleanerEnv) clean(t *testing.T) {
	t.Helper()
	if err := e.b.CleanLogs(testCtx(t)); err != nil {
		t.Fatalf("clean: %v", err)
	}
}

func (e *cleanerEnv) startOffset(t *testing.T, topic string) int64 {
	t.Helper()
	l, err := e.adm.ListStartOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := l.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("list start offset of %s: %+v", topic, o)
	}
	return o.Offset
}

func checkRecords(t *testing.T, got []kv, want ...kv) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records\n got %v\nwant %v", got, want)
	}
}

func one(key string, value *string) []kv { return []kv{{key: key, value: value}} }

func TestCleanerCompactKeepsLatestPerKey(t *testing.T) {
	e := newCleanerEnv(t, 0)
	e.createTopic(t, "c", map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "3600000", "min.cleanable.dirty.ratio": "0.01"})
	now := time.Now()
	e.produce(t, "c", now,
		one("a", val("1")), one("b", val("1")), one("a", val("2")), one("c", val("1")),
		one("b", nil), one("a", val("3")), one("d", val("1")), one("c", val("2")),
		one("e", val("1")), // the active segment
	)
	e.clean(t)
	checkRecords(t, e.consume(t, "c"),
		kv{4, "b", nil}, kv{5, "a", val("3")}, kv{6, "d", val("1")}, kv{7, "c", val("2")}, kv{8, "e", val("1")})
	if got := e.startOffset(t, "c"); got != 0 {
		t.Errorf("compaction moved the log start to %d", got)
	}

	// Once delete.retention.ms passed, the tombstone goes too.
	e.clock.advance(2 * time.Hour)
	e.clean(t)
	checkRecords(t, e.consume(t, "c"), kv{5, "a", val("3")}, kv{6, "d", val("1")}, kv{7, "c", val("2")}, kv{8, "e", val("1")})

	// New updates: the old active batch becomes cleanable, the new last one
	// is not compacted.
	e.produce(t, "c", now, one("a", val("4")), one("a", val("5")))
	e.clean(t)
	checkRecords(t, e.consume(t, "c"), kv{6, "d", val("1")}, kv{7, "c", val("2")}, kv{8, "e", val("1")}, kv{9, "a", val("4")}, kv{10, "a", val("5")})

	// Producing continues at the high watermark.
	e.produce(t, "c", now, one("z", val("1")))
	if offs, _ := e.store.Offsets("c", 0); offs.HighWatermark != 12 {
		t.Errorf("high watermark %d, want 12", offs.HighWatermark)
	}
}

// TestCleanerCompactEveryCodec compacts inside multi-record batches of each
// codec: batches are decompressed, filtered and recompressed, and kgo reads
// the rewritten batches (CRC and codec) back.
func TestCleanerCompactEveryCodec(t *testing.T) {
	for _, codec := range []struct {
		name string
		c    kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()},
	} {
		t.Run(codec.name, func(t *testing.T) {
			e := newCleanerEnv(t, 0)
			cl, err := kgo.NewClient(kgo.SeedBrokers(e.addr), kgo.ProducerBatchCompression(codec.c), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			e.producer = cl
			e.createTopic(t, "c", map[string]string{"cleanup.policy": "compact"})
			big := string(make([]byte, 300)) // compressible, so codecs really compress
			e.produce(t, "c", time.Now(),
				[]kv{{key: "k1", value: val("a" + big)}, {key: "k2", value: val("a" + big)}, {key: "k1", value: val("b" + big)}},
				[]kv{{key: "k2", value: val("b" + big)}, {key: "k3", value: val("a" + big)}},
				one("k9", val("x")),
			)
			before, _ := e.store.Offsets("c", 0)
			e.clean(t)
			checkRecords(t, e.consume(t, "c"),
				kv{2, "k1", val("b" + big)}, kv{3, "k2", val("b" + big)}, kv{4, "k3", val("a" + big)}, kv{5, "k9", val("x")})
			after, _ := e.store.Offsets("c", 0)
			if after.Bytes >= before.Bytes {
				t.Errorf("compaction did not shrink the log: %d -> %d bytes", before.Bytes, after.Bytes)
			}
		})
	}
}

func TestCleanerCompactRespectsMinLag(t *testing.T) {
	e := newCleanerEnv(t, 0)
	e.createTopic(t, "c", map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "600000"})
	t0 := e.clock.now()
	e.produce(t, "c", t0, one("a", val("1")), one("a", val("2")))
	e.produce(t, "c", t0.Add(20*time.Minute), one("a", val("3")), one("a", val("4")), one("b", val("1")))
	e.clean(t) // nothing is ten minutes old yet
	if got := e.consume(t, "c"); len(got) != 5 {
		t.Fatalf("compacted records younger than min.compaction.lag.ms: %v", got)
	}
	e.clock.set(t0.Add(15 * time.Minute)) // the first two batches are old enough
	e.clean(t)
	checkRecords(t, e.consume(t, "c"), kv{1, "a", val("2")}, kv{2, "a", val("3")}, kv{3, "a", val("4")}, kv{4, "b", val("1")})
	e.clock.set(t0.Add(time.Hour))
	e.clean(t)
	checkRecords(t, e.consume(t, "c"), kv{3, "a", val("4")}, kv{4, "b", val("1")})
}

func TestCleanerRetentionMs(t *testing.T) {
	e := newCleanerEnv(t, 0)
	e.createTopic(t, "r", map[string]string{"retention.ms": "5400000"}) // 90 minutes
	t0 := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	e.produce(t, "r", t0, one("k", val("0")))
	e.produce(t, "r", t0.Add(time.Hour), one("k", val("1")))
	e.produce(t, "r", t0.Add(2*time.Hour), one("k", val("2")))

	e.clock.set(t0.Add(90 * time.Minute)) // nothing is older than 90 minutes
	e.clean(t)
	if got := e.startOffset(t, "r"); got != 0 {
		t.Fatalf("log start %d before anything expired", got)
	}
	e.clock.set(t0.Add(2*time.Hour + time.Second))
	e.clean(t)
	if got := e.startOffset(t, "r"); got != 1 {
		t.Fatalf("log start %d, want 1 once the first batch expired", got)
	}
	checkRecords(t, e.consume(t, "r"), kv{1, "k", val("1")}, kv{2, "k", val("2")})

	e.clock.set(t0.Add(4 * time.Hour)) // everything expired: the log start reaches the high watermark
	e.clean(t)
	if got := e.startOffset(t, "r"); got != 3 {
		t.Fatalf("log start %d, want the high watermark 3", got)
	}
	e.produce(t, "r", time.Now(), one("k", val("3")))
	checkRecords(t, e.consume(t, "r"), kv{3, "k", val("3")})
}

func TestCleanerRetentionBytes(t *testing.T) {
	e := newCleanerEnv(t, 0)
	e.createTopic(t, "r", map[string]string{"retention.ms": "-1", "retention.bytes": "1000000"})
	for i := 0; i < 3; i++ {
		e.produce(t, "r", time.Now(), one("k", val(fmt.Sprint(i))))
	}
	e.clean(t)
	if got := e.startOffset(t, "r"); got != 0 {
		t.Fatalf("log start %d under retention.bytes", got)
	}
	// At one byte, every batch but the last exceeds the limit (Kafka keeps
	// what would take the size below retention.bytes).
	resps, err := e.adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Name: "retention.bytes", Value: kadm.StringPtr("1")}}, "r")
	if err == nil {
		_, err = resps.On("r", nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	e.clean(t)
	if got := e.startOffset(t, "r"); got != 2 {
		t.Fatalf("log start %d, want 2", got)
	}
	checkRecords(t, e.consume(t, "r"), kv{2, "k", val("2")})
}

func TestCleanerCompactAndDelete(t *testing.T) {
	e := newCleanerEnv(t, 0)
	e.createTopic(t, "cd", map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "3600000"})
	t0 := time.Now().Add(-3 * time.Hour)
	e.produce(t, "cd", t0, one("a", val("1")), one("a", val("2")), one("b", val("1")))
	e.produce(t, "cd", t0.Add(2*time.Hour), one("a", val("3")), one("c", val("1")))
	e.clock.set(t0.Add(2*time.Hour + time.Minute))
	e.clean(t)
	// Compaction removed a=1 and a=2; retention removed b=1 (older than an hour).
	checkRecords(t, e.consume(t, "cd"), kv{3, "a", val("3")}, kv{4, "c", val("1")})
	if got := e.startOffset(t, "cd"); got != 3 {
		t.Errorf("log start %d, want 3", got)
	}
}

func TestCleanerDeletePolicyDoesNotCompact(t *testing.T) {
	e := newCleanerEnv(t, 0)
	e.createTopic(t, "d", nil)
	e.produce(t, "d", time.Now(), one("a", val("1")), one("a", val("2")), one("a", val("3")))
	e.clean(t)
	if got := e.consume(t, "d"); len(got) != 3 {
		t.Fatalf("delete-policy topic lost records: %v", got)
	}
}

func TestCleanerOnlyOnLeader(t *testing.T) {
	e := newCleanerEnv(t, 0)
	e.createTopic(t, "r", map[string]string{"retention.ms": "1000"})
	e.produce(t, "r", time.Now().Add(-time.Hour), one("k", val("0")), one("k", val("1")))
	e.repl.follower.Store(true)
	if err := e.b.CleanLogs(testCtx(t)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("CleanLogs on a follower: %v", err)
	}
	if offs, _ := e.store.Offsets("r", 0); offs.LogStart != 0 {
		t.Fatalf("a follower deleted records: %+v", offs)
	}
	e.repl.follower.Store(false)
	e.clean(t)
	if offs, _ := e.store.Offsets("r", 0); offs.LogStart != 2 {
		t.Fatalf("leader's pass: %+v", offs)
	}
}

// TestCleanerBackgroundLoop checks that the broker's own goroutine runs
// passes at CleanerInterval.
func TestCleanerBackgroundLoop(t *testing.T) {
	e := newCleanerEnv(t, 10*time.Millisecond)
	e.createTopic(t, "r", map[string]string{"retention.ms": "1000"})
	e.produce(t, "r", time.Now().Add(-time.Hour), one("k", val("0")), one("k", val("1")))
	deadline := time.Now().Add(10 * time.Second)
	for {
		offs, err := e.store.Offsets("r", 0)
		if err != nil {
			t.Fatal(err)
		}
		if offs.LogStart == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("background cleaner did not apply retention: %+v", offs)
		}
		select {
		case <-e.store.Changed():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestCleanupPolicy(t *testing.T) {
	cases := []struct {
		in           string
		del, compact bool
	}{
		{"delete", true, false},
		{"compact", false, true},
		{"compact,delete", true, true},
		{"delete, compact", true, true},
		{"", false, false},
	}
	for _, c := range cases {
		if del, compact := cleanupPolicy(c.in); del != c.del || compact != c.compact {
			t.Errorf("cleanupPolicy(%q) = %v, %v", c.in, del, compact)
		}
	}
}

// storedBatches lists a partition's stored batches as (base offset, record
// count) pairs.
func (e *cleanerEnv) storedBatches(t *testing.T, topic string) [][2]int64 {
	t.Helper()
	var out [][2]int64
	err := e.store.Batches(topic, 0, 0, 1<<62, func(raw []byte) error {
		h, err := storage.ParseBatchHeader(raw)
		out = append(out, [2]int64{h.BaseOffset, int64(h.NumRecords)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCleanerCompactBatchAcrossLogStart compacts a batch that DeleteRecords
// cut in the middle: the records below the log start go, the rest compact.
func TestCleanerCompactBatchAcrossLogStart(t *testing.T) {
	e := newCleanerEnv(t, 0)
	e.createTopic(t, "c", map[string]string{"cleanup.policy": "compact"})
	e.produce(t, "c", time.Now(),
		[]kv{{key: "a", value: val("1")}, {key: "b", value: val("1")}, {key: "c", value: val("1")}},
		one("a", val("2")), one("z", val("1")))
	if got := e.storedBatches(t, "c"); fmt.Sprint(got) != "[[0 3] [3 1] [4 1]]" {
		t.Fatalf("produced batches %v, want one batch of three then two of one", got)
	}
	res, err := e.b.propose(testCtx(t), storage.DeleteRecords{Parts: []storage.DeleteRecordsPart{{Topic: "c", Offset: 1}}})
	if err != nil || res.([]storage.DeleteRecordsResult)[0].Err != nil {
		t.Fatalf("delete records: %v %v", res, err)
	}
	e.clean(t)
	if got := e.storedBatches(t, "c"); fmt.Sprint(got) != "[[0 2] [3 1] [4 1]]" {
		t.Errorf("stored batches %v: the first batch should keep b and c", got)
	}
	checkRecords(t, e.consume(t, "c"), kv{1, "b", val("1")}, kv{2, "c", val("1")}, kv{3, "a", val("2")}, kv{4, "z", val("1")})
}

// TestCleanerKeepsUndecodableBatches: a stored batch whose CRC is right but
// whose records do not decode is kept verbatim, and compaction of the
// other batches goes on.
func TestCleanerKeepsUndecodableBatches(t *testing.T) {
	e := newCleanerEnv(t, 0)
	e.createTopic(t, "c", map[string]string{"cleanup.policy": "compact"})
	e.produce(t, "c", time.Now(), one("a", val("1")))
	bad := fuzzBatch(t, 2, records.CodecNone)
	for i := storage.BatchHeaderLen; i < len(bad); i++ {
		bad[i] = 0xff
	}
	binary.BigEndian.PutUint32(bad[17:], crc32.Checksum(bad[21:], crc32.MakeTable(crc32.Castagnoli)))
	res, err := e.b.propose(testCtx(t), storage.Append{Now: 1, Parts: []storage.AppendPart{{Topic: "c", Batch: bad}}})
	if err != nil || res.(storage.AppendResult).Parts[0].Err != nil {
		t.Fatalf("append: %v %v", res, err)
	}
	e.produce(t, "c", time.Now(), one("a", val("2")), one("z", val("1")))
	e.clean(t)
	if got := e.storedBatches(t, "c"); fmt.Sprint(got) != "[[1 2] [3 1] [4 1]]" {
		t.Errorf("stored batches %v, want a=1 compacted away and the bad batch kept", got)
	}
}
