package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// workload is one throughput measurement: records of size bytes into a
// topic of partitions partitions.
type workload struct {
	records    int
	size       int
	partitions int
}

func (w workload) topic() string { return fmt.Sprintf("bench-%db-%dp", w.size, w.partitions) }

func (w workload) label() string {
	return fmt.Sprintf("%s × %s, %d part.", sizeLabel(w.size), thousands(float64(w.records)), w.partitions)
}

func sizeLabel(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// throughput is what one phase moved in how long.
type throughput struct {
	records int
	bytes   int64
	took    time.Duration
}

func (t throughput) recordsPerSec() float64 { return float64(t.records) / t.took.Seconds() }
func (t throughput) mbPerSec() float64      { return float64(t.bytes) / 1e6 / t.took.Seconds() }

// payloads builds n record values of size bytes in one arena: random
// bytes (so no codec could shrink them) with the record's sequence number
// in the first 8 bytes, which the consumer checks off.
func payloads(n, size int) [][]byte {
	tmpl := make([]byte, size)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range tmpl {
		tmpl[i] = byte(r.Uint32())
	}
	arena := make([]byte, n*size)
	out := make([][]byte, n)
	for i := range out {
		v := arena[i*size : (i+1)*size : (i+1)*size]
		copy(v, tmpl)
		binary.BigEndian.PutUint64(v, uint64(i))
		out[i] = v
	}
	return out
}

// produceOpts are the producer settings every target gets: kgo's defaults
// (acks=all, idempotent, linger 10 ms, 1 MB batches, 5 requests in flight
// per broker) without compression, so the broker, not the codec, is measured.
func produceOpts(addr string, extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
	}, extra...)
}

// produce writes every value to topic and returns how long it took and how
// many records each partition got. Any failed record fails the phase.
func produce(ctx context.Context, addr, topic string, values [][]byte, stats *produceStats) (throughput, map[int32]int, error) {
	cl, err := kgo.NewClient(produceOpts(addr, kgo.DefaultProduceTopic(topic), kgo.WithHooks(stats))...)
	if err != nil {
		return throughput{}, nil, err
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return throughput{}, nil, fmt.Errorf("ping: %w", err)
	}
	var (
		mu       sync.Mutex
		perPart  = map[int32]int{}
		firstErr error
		bytes    int64
	)
	done := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		perPart[r.Partition]++
		bytes += int64(len(r.Value))
	}
	start := time.Now()
	for _, v := range values {
		cl.Produce(ctx, &kgo.Record{Value: v}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		return throughput{}, nil, fmt.Errorf("flush: %w", err)
	}
	took := time.Since(start)
	if firstErr != nil {
		return throughput{}, nil, fmt.Errorf("produce: %w", firstErr)
	}
	return throughput{records: len(values), bytes: bytes, took: took}, perPart, nil
}

// produceStats is a kgo hook that sums up the Produce requests a client
// sent: how many, how big, and their round trips.
type produceStats struct {
	mu       sync.Mutex
	requests int
	bytes    int64
	e2e      time.Duration
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (s *produceStats) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key != 0 || e.Err() != nil { // 0 is Produce
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.bytes += int64(e.BytesWritten)
	s.e2e += e.DurationE2E()
}

// String summarises the requests: count, mean size and mean round trip.
func (s *produceStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requests == 0 {
		return "no produce requests"
	}
	return fmt.Sprintf("%s produce requests of %.1f KiB, %.2f ms round trip on average",
		thousands(float64(s.requests)), float64(s.bytes)/float64(s.requests)/1024,
		float64(s.e2e)/float64(s.requests)/float64(time.Millisecond))
}

// consume reads topic from the start until it has seen every one of want
// records, and checks that each sequence number arrived exactly once, each
// partition's offsets only grow, and each partition holds as many records
// as the producer put there.
func consume(ctx context.Context, addr, topic string, want map[int32]int, size int) (throughput, error) {
	total := 0
	for _, n := range want {
		total += n
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return throughput{}, err
	}
	defer cl.Close()
	c := newChecker(total, size)
	start := time.Now()
	for c.seen < total {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return throughput{}, fmt.Errorf("consumed %d of %d records: %w", c.seen, total, err)
		}
		var errs []error
		fs.EachError(func(t string, p int32, err error) { errs = append(errs, fmt.Errorf("%s/%d: %w", t, p, err)) })
		if len(errs) > 0 {
			return throughput{}, fmt.Errorf("fetch: %w", errors.Join(errs...))
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			p.EachRecord(c.record)
			c.hwm[p.Partition] = p.HighWatermark
		})
		if err := c.check(len(want), total); err != nil {
			return throughput{}, err
		}
	}
	took := time.Since(start)
	for p, n := range want {
		if c.perPart[p] != n {
			return throughput{}, fmt.Errorf("partition %d: consumed %d records, produced %d", p, c.perPart[p], n)
		}
	}
	return throughput{records: c.seen, bytes: c.bytes, took: took}, nil
}

// checker checks consumed records off against what was produced.
type checker struct {
	size    int
	got     []bool
	seen    int
	bytes   int64
	perPart map[int32]int
	next    map[int32]int64 // next offset expected per partition
	hwm     map[int32]int64 // last high watermark seen per partition
	err     error
}

func newChecker(n, size int) *checker {
	return &checker{size: size, got: make([]bool, n), perPart: map[int32]int{}, next: map[int32]int64{}, hwm: map[int32]int64{}}
}

// check reports a bad record, or records missing for good: every one of
// parts partitions has been read up to its high watermark and fewer than
// total records arrived.
func (c *checker) check(parts, total int) error {
	if c.err != nil || c.seen >= total || len(c.hwm) < parts {
		return c.err
	}
	for p, hwm := range c.hwm {
		if c.next[p] < hwm {
			return nil
		}
	}
	return fmt.Errorf("read every partition to its high watermark %v and got %d of %d records", c.hwm, c.seen, total)
}

func (c *checker) record(r *kgo.Record) {
	if c.err != nil {
		return
	}
	if len(r.Value) != c.size {
		c.err = fmt.Errorf("partition %d offset %d: value of %d bytes, want %d", r.Partition, r.Offset, len(r.Value), c.size)
		return
	}
	seq := binary.BigEndian.Uint64(r.Value)
	switch {
	case seq >= uint64(len(c.got)):
		c.err = fmt.Errorf("partition %d offset %d: sequence %d was never produced", r.Partition, r.Offset, seq)
	case c.got[seq]:
		c.err = fmt.Errorf("partition %d offset %d: record %d consumed twice", r.Partition, r.Offset, seq)
	case r.Offset < c.next[r.Partition]:
		c.err = fmt.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, c.next[r.Partition]-1)
	default:
		c.got[seq] = true
		c.seen++
		c.bytes += int64(len(r.Value))
		c.perPart[r.Partition]++
		c.next[r.Partition] = r.Offset + 1
	}
}

// latency is the produce latency distribution at a fixed rate.
type latency struct {
	p50, p99, max time.Duration
	records       int
}

// produceLatency produces size-byte records to topic at rate records per
// second for dur, one callback per record timing it from the Produce call
// to its acknowledgement (acks=all, linger 0). It then checks the topic's
// end offset equals what was sent.
func produceLatency(ctx context.Context, addr, topic string, rate int, dur time.Duration, size int) (latency, error) {
	cl, err := kgo.NewClient(produceOpts(addr, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))...)
	if err != nil {
		return latency{}, err
	}
	defer cl.Close()
	value := make([]byte, size)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil { // warm-up: connection, producer ID
		return latency{}, fmt.Errorf("warm-up produce: %w", err)
	}
	n := int(float64(rate) * dur.Seconds())
	lat := make([]time.Duration, n)
	var failed atomic.Int64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for sent := 0; sent < n; {
		due := min(n, int(time.Since(start).Seconds()*float64(rate))+1)
		for ; sent < due; sent++ {
			i, t0 := sent, time.Now()
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Add(1)
				}
			})
		}
		select {
		case <-ctx.Done():
			return latency{}, ctx.Err()
		case <-tick.C:
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return latency{}, fmt.Errorf("flush: %w", err)
	}
	if f := failed.Load(); f > 0 {
		return latency{}, fmt.Errorf("%d of %d records failed", f, n)
	}
	if err := checkEndOffset(ctx, cl, topic, int64(n+1)); err != nil {
		return latency{}, err
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return latency{p50: lat[n/2], p99: lat[n*99/100], max: lat[n-1], records: n}, nil
}

func checkEndOffset(ctx context.Context, cl *kgo.Client, topic string, want int64) error {
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	var got int64
	offs.Each(func(o kadm.ListedOffset) { got += o.Offset })
	if err := offs.Error(); err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	if got != want {
		return fmt.Errorf("topic %s ends at %d, produced %d records", topic, got, want)
	}
	return nil
}
