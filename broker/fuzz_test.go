package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	bolt "go.etcd.io/bbolt"

	"github.com/kbox-dev/kbox/broker/records"
	"github.com/kbox-dev/kbox/broker/storage"
)

// directReplicator commits a command by applying it to the store at once: a
// one-voter replicated log without Raft, so in-package tests and fuzzers
// drive the real state machine without importing cluster.
type directReplicator struct {
	mu    sync.Mutex
	store *storage.Store
	// follower makes the node act as a follower: Leader reports node 2
	// and Propose refuses.
	follower atomic.Bool
}

func (r *directReplicator) Propose(_ context.Context, cmd storage.Command) (any, error) {
	if r.follower.Load() {
		return nil, ErrNotLeader
	}
	data, err := storage.Encode(cmd)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res, err := r.store.ApplyBatch([]storage.Entry{{Index: r.store.Applied() + 1, Data: data}})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

func (r *directReplicator) Leader() (int32, int32, bool) {
	if r.follower.Load() {
		return 2, r.store.Epoch(), true
	}
	return 1, r.store.Epoch(), true
}

// fuzzStore opens a store with topic "t" (two partitions) for the life of
// tb and checks bbolt's consistency when it closes.
func fuzzStore(tb testing.TB) (*storage.Store, *directReplicator) {
	tb.Helper()
	s, err := storage.Open(filepath.Join(tb.TempDir(), "state.db"), storage.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
		checkBolt(tb, s.Path())
	})
	repl := &directReplicator{store: s}
	if res, err := repl.Propose(context.Background(), storage.CreateTopic{Name: "t", ID: [16]byte{7}, Partitions: 2}); err != nil || res != nil {
		tb.Fatalf("create topic: %v %v", res, err)
	}
	return s, repl
}

// checkBolt runs bbolt's consistency check (tx.Check) on a closed store.
func checkBolt(tb testing.TB, path string) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		tb.Errorf("reopen %s for check: %v", path, err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		tb.Errorf("bbolt consistency check of %s: %v", path, err)
	}
}

// warnCounter is a slog handler that counts records at Warn and above.
type warnCounter struct{ n atomic.Int64 }

func (w *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnCounter) Handle(context.Context, slog.Record) error    { w.n.Add(1); return nil }
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *warnCounter) WithGroup(string) slog.Handler                { return w }

const fuzzMaxRequestBytes = 1 << 20

func fuzzBroker(s *storage.Store, repl Replicator, logs *warnCounter) *Broker {
	return New(Config{NodeID: 1, MaxRequestBytes: fuzzMaxRequestBytes, Logger: slog.New(logs)}, s, repl)
}

// fuzzBatch is a real uncompressed v2 batch of n records.
func fuzzBatch(tb testing.TB, n int, codec records.Codec) []byte {
	tb.Helper()
	b := records.Batch{Attributes: int16(codec), FirstTimestamp: 1000, MaxTimestamp: 1000 + int64(n-1), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	for i := 0; i < n; i++ {
		b.Records = append(b.Records, records.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: []byte{'k', byte(i)}, Value: []byte("value")})
	}
	raw, err := records.Encode(b)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// frame encodes a request with its size prefix and header.
func frame(req kmsg.Request, corr int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz")).AppendRequest(nil, req, corr)
}

// validRequests are well-formed requests that answer at once, one per
// served API key at its highest version plus the shapes clients send.
func validRequests(tb testing.TB) []kmsg.Request {
	tb.Helper()
	var out []kmsg.Request
	for _, a := range apis() {
		r := kmsg.RequestForKey(a.key)
		r.SetVersion(a.max)
		switch r := r.(type) {
		case *kmsg.FetchRequest:
			r.MaxWaitMillis = 0
		case *kmsg.ProduceRequest:
			r.Acks = -1
		}
		out = append(out, r)
	}
	api := kmsg.NewPtrApiVersionsRequest()
	api.SetVersion(3)
	api.ClientSoftwareName, api.ClientSoftwareVersion = "fuzz", "1"
	out = append(out, api)

	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	meta.Topics = append(meta.Topics, mt)
	out = append(out, meta)

	prod := kmsg.NewPtrProduceRequest()
	prod.SetVersion(9)
	prod.Acks, prod.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = append(fuzzBatch(tb, 3, records.CodecNone), fuzzBatch(tb, 2, records.CodecGzip)...)
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	out = append(out, prod)

	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(12)
	fetch.MaxWaitMillis, fetch.MaxBytes = 0, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	out = append(out, fetch)

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.SetVersion(7)
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "t"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -2
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	out = append(out, lo)
	return out
}

// badFrames are inputs the broker must answer by closing the connection.
func badFrames(tb testing.TB) map[string][]byte {
	tb.Helper()
	size := func(n int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }
	api := frame(kmsg.NewPtrApiVersionsRequest(), 1)
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(12)
	metaFrame := frame(meta, 2)
	unknownKey := append([]byte(nil), api...)
	binary.BigEndian.PutUint16(unknownKey[4:], 9999)
	badVersion := append([]byte(nil), metaFrame...)
	binary.BigEndian.PutUint16(badVersion[6:], 999)
	truncatedBody := append(size(int32(len(metaFrame)-4-3)), metaFrame[4:len(metaFrame)-3]...)
	return map[string][]byte{
		"frame shorter than a header":  append(size(3), 0, 0, 0),
		"negative frame size":          size(-1),
		"frame over the request limit": append(size(fuzzMaxRequestBytes+1), make([]byte, 64)...),
		"header cut short":             append(size(8), 0, 3, 0, 12, 0, 0, 0, 1),
		"unknown api key":              unknownKey,
		"unsupported version":          badVersion,
		"body cut short":               truncatedBody,
		"bad frame after a good one":   append(append([]byte(nil), api...), unknownKey...),
	}
}

// connRun is what happened when a byte stream was fed to one connection.
type connRun struct {
	serverClosed bool // the broker closed the connection before the client did
	responses    int
	warnings     int64
}

// runConn feeds stream to a broker connection over net.Pipe, waits for
// want responses (or for the broker to close the connection; with want < 0
// only for that), then closes the client side and the broker. It fails tb if the connection's goroutine
// does not end.
func runConn(tb testing.TB, s *storage.Store, repl Replicator, stream []byte, want int) connRun {
	tb.Helper()
	logs := &warnCounter{}
	b := fuzzBroker(s, repl, logs)
	srv, cli := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		newClientConn(b, srv).serve()
	}()
	var responses atomic.Int64
	answered := make(chan struct{}, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			var size [4]byte
			if _, err := io.ReadFull(cli, size[:]); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, cli, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
				return
			}
			if n := responses.Add(1); want > 0 && n >= int64(want) {
				select {
				case answered <- struct{}{}:
				default:
				}
			}
		}
	}()
	_, werr := cli.Write(stream)
	var run connRun
	if werr != nil {
		// The broker stopped reading and closed its side: it must say why.
		run.serverClosed = true
		<-done
	} else if want != 0 {
		select {
		case <-done:
			run.serverClosed = true
		case <-answered:
		case <-time.After(10 * time.Second):
			tb.Errorf("after 10s: %d responses (want %d), connection open", responses.Load(), want)
		}
	} else {
		select {
		case <-done:
			run.serverClosed = true
		default:
		}
	}
	cli.Close()
	b.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		tb.Fatalf("connection goroutine still running 10s after close (input %q)", stream)
	}
	<-drained
	run.responses = int(responses.Load())
	run.warnings = logs.n.Load()
	return run
}

func TestConnServesValidFrames(t *testing.T) {
	s, repl := fuzzStore(t)
	var stream []byte
	reqs := validRequests(t)
	for i, r := range reqs {
		stream = append(stream, frame(r, int32(i))...)
	}
	run := runConn(t, s, repl, stream, len(reqs))
	if run.serverClosed || run.warnings != 0 || run.responses != len(reqs) {
		t.Fatalf("valid requests: %+v, want %d responses and no close or warning", run, len(reqs))
	}
	if offs, _ := s.Offsets("t", 0); offs.HighWatermark != 5 {
		t.Errorf("produce through the connection: high watermark %d, want 5", offs.HighWatermark)
	}
}

func TestConnBadFramesCloseConnection(t *testing.T) {
	s, repl := fuzzStore(t)
	for name, in := range badFrames(t) {
		t.Run(name, func(t *testing.T) {
			run := runConn(t, s, repl, in, -1)
			if !run.serverClosed || run.warnings == 0 {
				t.Errorf("%+v: want the broker to close the connection with a log line", run)
			}
		})
	}
}

// FuzzConnFrames feeds arbitrary bytes to a client connection: the broker
// must never panic or hang, and when it closes the connection itself it
// logs why.
func FuzzConnFrames(f *testing.F) {
	for _, r := range validRequests(f) {
		f.Add(frame(r, 1))
	}
	for _, in := range badFrames(f) {
		f.Add(in)
	}
	s, repl := fuzzStore(f)
	f.Fuzz(func(t *testing.T, stream []byte) {
		run := runConn(t, s, repl, stream, 0)
		if run.serverClosed && run.warnings == 0 {
			t.Fatalf("broker closed the connection without a log line: %+v", run)
		}
	})
}

// FuzzDecodeRequest calls the request decoder directly: no panic, errors
// for what it cannot serve, and what it accepts re-encodes stably.
func FuzzDecodeRequest(f *testing.F) {
	for _, r := range validRequests(f) {
		f.Add(frame(r, 1)[4:])
	}
	for _, in := range badFrames(f) {
		if len(in) > 4 {
			f.Add(in[4:])
		}
	}
	s, repl := fuzzStore(f)
	b := fuzzBroker(s, repl, &warnCounter{})
	f.Cleanup(func() { b.Close() })
	cc := &clientConn{b: b}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := cc.decode(body)
		if err != nil {
			return
		}
		key, v := req.Key(), req.GetVersion()
		a, served := b.apis[key]
		switch {
		case key == 18 && (v < 0 || v > a.max):
			return // answered with v0 UNSUPPORTED_VERSION, body unread
		case !served:
			t.Fatalf("decoded unserved api key %d", key)
		case key != 0 && (v < a.min || v > a.max):
			t.Fatalf("decoded %s v%d outside the served %d-%d", kmsg.NameForKey(key), v, a.min, a.max)
		}
		enc := req.AppendTo(nil)
		again := kmsg.RequestForKey(key)
		again.SetVersion(v)
		if err := again.ReadFrom(enc); err != nil {
			t.Fatalf("%s v%d does not decode its own encoding: %v", kmsg.NameForKey(key), v, err)
		}
		if enc2 := again.AppendTo(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s v%d re-encodes differently", kmsg.NameForKey(key), v)
		}
	})
}

// FuzzSplitBatches: splitBatches never panics, refuses bad input with
// ErrCorruptBatch, and what it accepts is the input cut into whole batches
// that pass the header and CRC checks and that kmsg can read.
func FuzzSplitBatches(f *testing.F) {
	one := fuzzBatch(f, 3, records.CodecNone)
	f.Add(one)
	f.Add(append(append([]byte(nil), one...), fuzzBatch(f, 1, records.CodecSnappy)...))
	f.Add(one[:len(one)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := splitBatches(in)
		if err != nil {
			if !errors.Is(err, storage.ErrCorruptBatch) {
				t.Fatalf("error %v is not ErrCorruptBatch", err)
			}
			return
		}
		var joined []byte
		for _, b := range out {
			if _, err := storage.ParseBatchHeader(b); err != nil || !storage.CheckBatchCRC(b) {
				t.Fatalf("accepted a batch that fails its checks: %v", err)
			}
			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(b); err != nil {
				t.Fatalf("kmsg cannot read an accepted batch: %v", err)
			}
			joined = append(joined, b...)
		}
		if !bytes.Equal(joined, in) {
			t.Fatal("accepted batches are not the input")
		}
	})
}

// FuzzCleanerRebuild: compaction decodes whatever batches clients stored
// (any codec) and rebuilds them with fewer records. Neither step may panic,
// and a rebuilt batch decodes to the kept records at their offsets, within
// the original batch's offset range.
func FuzzCleanerRebuild(f *testing.F) {
	for _, c := range []records.Codec{records.CodecNone, records.CodecGzip, records.CodecSnappy, records.CodecLZ4, records.CodecZstd} {
		f.Add(fuzzBatch(f, 3, c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Fix length, magic and CRC so the fuzzer explores the records and
		// the codecs rather than the checksum.
		if len(raw) >= storage.BatchHeaderLen {
			binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
			raw[16] = 2
			binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
		}
		b, err := decodeForCompaction(raw)
		if err != nil {
			return
		}
		var kept []records.Record
		for i, r := range b.Records {
			if i%2 == 0 {
				kept = append(kept, r)
			}
		}
		out, err := rebuild(b, kept)
		if err != nil {
			t.Fatalf("rebuild of a decodable batch: %v", err)
		}
		nb, err := records.Decode(out)
		if err != nil {
			t.Fatalf("rebuilt batch does not decode: %v", err)
		}
		if nb.BaseOffset != b.BaseOffset || nb.LastOffsetDelta != b.LastOffsetDelta || nb.Attributes != b.Attributes || len(nb.Records) != len(kept) {
			t.Fatalf("rebuilt header or count changed: %+v vs %+v", nb, b)
		}
		for i, r := range nb.Records {
			if r.Offset != kept[i].Offset || !bytes.Equal(r.Key, kept[i].Key) || !bytes.Equal(r.Value, kept[i].Value) || (r.Value == nil) != (kept[i].Value == nil) {
				t.Fatalf("record %d changed: %+v vs %+v", i, r, kept[i])
			}
		}
	})
}
