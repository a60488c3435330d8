package storage_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	bolt "go.etcd.io/bbolt"

	"github.com/kbox-dev/kbox/broker/storage"
)

// openStore opens a store in a temp dir. On cleanup it closes the store and
// runs bbolt's consistency check over the file.
func openStore(t testing.TB) *storage.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := storage.Open(path, storage.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
		checkBolt(t, path)
	})
	return s
}

// checkBolt runs bbolt's consistency check (tx.Check) on a closed store file.
func checkBolt(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Errorf("reopen %s for check: %v", path, err)
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
		t.Errorf("bbolt consistency check of %s: %v", path, err)
	}
}

// apply applies commands as the next log entries and returns their results.
// A fatal apply error fails the test.
func apply(t testing.TB, s *storage.Store, cmds ...storage.Command) []any {
	t.Helper()
	entries := make([]storage.Entry, len(cmds))
	next := s.Applied() + 1
	for i, c := range cmds {
		data, err := storage.Encode(c)
		if err != nil {
			t.Fatalf("encode %s: %v", c.Op(), err)
		}
		entries[i] = storage.Entry{Index: next + uint64(i), Data: data}
	}
	res, err := s.ApplyBatch(entries)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

// apply1 applies one command and returns its result.
func apply1(t testing.TB, s *storage.Store, c storage.Command) any {
	t.Helper()
	return apply(t, s, c)[0]
}

// mustCreate creates a topic and fails the test if that is refused.
func mustCreate(t testing.TB, s *storage.Store, name string, parts int32, configs map[string]string) {
	t.Helper()
	if r := apply1(t, s, storage.CreateTopic{Name: name, ID: [16]byte{1, byte(len(name))}, Partitions: parts, Configs: configs}); r != nil {
		t.Fatalf("create topic %s: %v", name, r)
	}
}

// appendBatch appends one batch to a partition and returns its result.
func appendBatch(t testing.TB, s *storage.Store, now int64, topic string, p int32, batch []byte) storage.PartResult {
	t.Helper()
	r := apply1(t, s, storage.Append{Now: now, Parts: []storage.AppendPart{{Topic: topic, Partition: p, Batch: batch}}})
	ar, ok := r.(storage.AppendResult)
	if !ok || len(ar.Parts) != 1 {
		t.Fatalf("append result %#v", r)
	}
	return ar.Parts[0]
}

// batchSpec describes a v2 record batch to build.
type batchSpec struct {
	records   int // number of records, at least 1 unless keys is set
	keys      []string
	ts        int64 // first timestamp
	pid       int64 // -1 unless idempotent
	epoch     int16
	seq       int32 // base sequence, -1 unless idempotent
	valueSize int
}

// plain is a non-idempotent batch of n records stamped at ts.
func plain(n int, ts int64) batchSpec {
	return batchSpec{records: n, ts: ts, pid: -1, epoch: -1, seq: -1}
}

// idem is an idempotent batch of n records.
func idem(n int, pid int64, epoch int16, seq int32) batchSpec {
	return batchSpec{records: n, ts: 1000, pid: pid, epoch: epoch, seq: seq}
}

// build encodes the batch with kmsg, including length and CRC-32C.
func (b batchSpec) build(t testing.TB) []byte {
	t.Helper()
	n := b.records
	if len(b.keys) > 0 {
		n = len(b.keys)
	}
	if n < 1 {
		t.Fatal("a batch needs at least one record")
	}
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Value: make([]byte, b.valueSize)}
		copy(r.Value, []byte{byte(i)})
		if len(b.keys) > 0 {
			r.Key = []byte(b.keys[i])
		}
		recs = appendRecord(recs, r)
	}
	rb := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(n - 1),
		FirstTimestamp:  b.ts,
		MaxTimestamp:    b.ts + int64(n-1),
		ProducerID:      b.pid,
		ProducerEpoch:   b.epoch,
		FirstSequence:   b.seq,
		NumRecords:      int32(n),
		Records:         recs,
	}
	return finishBatch(rb)
}

// appendRecord appends one record with its varint length filled in.
func appendRecord(dst []byte, r kmsg.Record) []byte {
	r.Length = 0
	body := r.AppendTo(nil)[1:] // drop the one-byte varint of length 0
	r.Length = int32(len(body))
	return r.AppendTo(dst)
}

// finishBatch fills in Length and CRC and encodes the batch.
func finishBatch(rb kmsg.RecordBatch) []byte {
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// readBatches reads a partition from offset with no size limit and parses
// every returned batch.
func readBatches(t testing.TB, s *storage.Store, topic string, p int32, offset int64) []kmsg.RecordBatch {
	t.Helper()
	rr, err := s.Read(topic, p, offset, 1<<30, nil)
	if err != nil {
		t.Fatalf("read %s/%d@%d: %v", topic, p, offset, err)
	}
	return parseBatches(t, rr.Records)
}

// parseBatches splits concatenated batches and checks each one's CRC.
func parseBatches(t testing.TB, b []byte) []kmsg.RecordBatch {
	t.Helper()
	var out []kmsg.RecordBatch
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("%d trailing bytes", len(b))
		}
		n := int(binary.BigEndian.Uint32(b[8:])) + 12
		if n > len(b) {
			t.Fatalf("batch of %d bytes with %d left", n, len(b))
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b[:n]); err != nil {
			t.Fatalf("parse batch: %v", err)
		}
		if crc := crc32.Checksum(b[21:n], crc32.MakeTable(crc32.Castagnoli)); crc != uint32(rb.CRC) {
			t.Errorf("batch at %d: CRC %08x, contents hash to %08x", rb.FirstOffset, uint32(rb.CRC), crc)
		}
		out = append(out, rb)
		b = b[n:]
	}
	return out
}

// baseOffsets lists the batches' base offsets.
func baseOffsets(bs []kmsg.RecordBatch) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.FirstOffset
	}
	return out
}
