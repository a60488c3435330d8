package storage_test

import (
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

// mixedLog is a log touching every op, for determinism and replay tests.
func mixedLog(t testing.TB) []storage.Command {
	b := func(s batchSpec) []byte { return s.build(t) }
	return []storage.Command{
		storage.NewEpoch{Epoch: 2},
		storage.CreateTopic{Name: "a", ID: [16]byte{1}, Partitions: 2},
		storage.CreateTopic{Name: "lat", ID: [16]byte{2}, Partitions: 1, Configs: map[string]string{"message.timestamp.type": "LogAppendTime"}},
		storage.InitProducerID{ProducerID: -1, Epoch: -1},
		storage.Append{Now: 10, Parts: []storage.AppendPart{
			{Topic: "a", Partition: 0, Batch: b(plain(3, 100))},
			{Topic: "a", Partition: 1, Batch: b(idem(2, 0, 0, 0))},
			{Topic: "lat", Partition: 0, Batch: b(plain(1, 100))},
		}},
		storage.Append{Now: 20, Parts: []storage.AppendPart{
			{Topic: "a", Partition: 1, Batch: b(idem(2, 0, 0, 0))}, // duplicate
			{Topic: "a", Partition: 1, Batch: b(idem(1, 0, 0, 5))}, // out of order
			{Topic: "a", Partition: 0, Batch: b(plain(2, 200))},
			{Topic: "nope", Partition: 0, Batch: b(plain(1, 1))},
		}},
		storage.CommitOffsets{Group: "g", Now: 30, Offsets: []storage.OffsetCommit{{Topic: "a", Partition: 0, Offset: 3}}},
		storage.AlterConfigs{Topic: "a", Set: map[string]string{"retention.ms": "5"}},
		storage.DeleteRecords{Parts: []storage.DeleteRecordsPart{{Topic: "a", Partition: 0, Offset: 3}}},
		storage.CreatePartitions{Topic: "a", Count: 3},
		storage.ReplaceBatches{Topic: "a", Partition: 1, From: 0, To: 2},
		storage.NewEpoch{Epoch: 3},
		storage.Append{Now: 40, Parts: []storage.AppendPart{{Topic: "a", Partition: 2, Batch: b(plain(1, 300))}}},
		storage.DeleteOffsets{Group: "g", Parts: []storage.TopicPartition{{Topic: "a", Partition: 0}}},
		storage.DeleteGroups{Groups: []string{"g", "missing"}},
		storage.DeleteTopic{Name: "lat"},
	}
}

// TestApplyBatchDeterministic feeds two stores the same entries, batched
// differently, and expects the same digest and the same results.
func TestApplyBatchDeterministic(t *testing.T) {
	log := mixedLog(t)
	one, many := openStore(t), openStore(t)
	resOne := apply(t, one, log...)
	var resMany []any
	for _, c := range log {
		resMany = append(resMany, apply1(t, many, c))
	}
	if !reflect.DeepEqual(resOne, resMany) {
		t.Errorf("results differ:\n%#v\n%#v", resOne, resMany)
	}
	ia, da, err := one.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ib, db, err := many.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if ia != uint64(len(log)) || ib != ia {
		t.Errorf("applied %d and %d, want %d", ia, ib, len(log))
	}
	if da != db {
		t.Errorf("digests differ: %x vs %x", da, db)
	}
	// The digest sees state: one more append changes it.
	apply1(t, many, storage.Append{Now: 50, Parts: []storage.AppendPart{{Topic: "a", Partition: 0, Batch: plain(1, 1).build(t)}}})
	if _, dc, _ := many.Digest(); dc == da {
		t.Error("digest did not change after an append")
	}
}

func TestApplyBatchSkipsReplayedEntries(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "a", 1, nil)
	enc := func(c storage.Command) []byte {
		b, err := storage.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	app := enc(storage.Append{Now: 1, Parts: []storage.AppendPart{{Topic: "a", Batch: plain(2, 1).build(t)}}})
	entries := []storage.Entry{{Index: 2, Data: app}, {Index: 3, Data: nil}, {Index: 4, Data: app}}
	if _, err := s.ApplyBatch(entries); err != nil {
		t.Fatal(err)
	}
	_, before, _ := s.Digest()
	// Raft replays 1-4 after a restart, then sends 5.
	replay := append([]storage.Entry{{Index: 1, Data: enc(storage.CreateTopic{Name: "a", Partitions: 1})}}, entries...)
	replay = append(replay, storage.Entry{Index: 5, Data: app})
	res, err := s.ApplyBatch(replay)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if res[i] != nil {
			t.Errorf("replayed entry %d returned %#v, want nil", replay[i].Index, res[i])
		}
	}
	if ar := res[4].(storage.AppendResult); ar.Parts[0].BaseOffset != 4 {
		t.Errorf("entry 5 appended at %d, want 4", ar.Parts[0].BaseOffset)
	}
	if s.Applied() != 5 {
		t.Errorf("applied %d, want 5", s.Applied())
	}
	// A replay of only old entries changes nothing but keeps Applied.
	if _, err := s.ApplyBatch(replay[:3]); err != nil {
		t.Fatal(err)
	}
	if s.Applied() != 5 {
		t.Errorf("applied went back to %d", s.Applied())
	}
	offs, _ := s.Offsets("a", 0)
	if offs.HighWatermark != 6 {
		t.Errorf("high watermark %d, want 6", offs.HighWatermark)
	}
	if _, after, _ := s.Digest(); after == before {
		t.Error("entry 5 did not change the digest")
	}
}

// TestApplyBatchCorruptEntryIsFatal checks that an undecodable entry fails
// the whole batch with its index, leaving the store untouched.
func TestApplyBatchCorruptEntryIsFatal(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "a", 1, nil)
	_, before, _ := s.Digest()
	good, _ := storage.Encode(storage.Append{Now: 1, Parts: []storage.AppendPart{{Topic: "a", Batch: plain(1, 1).build(t)}}})
	_, err := s.ApplyBatch([]storage.Entry{{Index: 2, Data: good}, {Index: 3, Data: []byte{0xee}}})
	if !errors.Is(err, storage.ErrCorruptCommand) || !strings.Contains(err.Error(), "entry 3") {
		t.Fatalf("err = %v, want ErrCorruptCommand naming entry 3", err)
	}
	if s.Applied() != 1 {
		t.Errorf("applied %d, want 1", s.Applied())
	}
	if _, after, _ := s.Digest(); after != before {
		t.Error("a failed batch changed the store")
	}
}

func TestApplyInitProducerID(t *testing.T) {
	s := openStore(t)
	cases := []struct {
		in   storage.InitProducerID
		want storage.ProducerID
	}{
		{storage.InitProducerID{ProducerID: -1, Epoch: -1}, storage.ProducerID{ID: 0, Epoch: 0}},
		{storage.InitProducerID{ProducerID: -1, Epoch: -1}, storage.ProducerID{ID: 1, Epoch: 0}},
		{storage.InitProducerID{ProducerID: 0, Epoch: 0}, storage.ProducerID{ID: 0, Epoch: 1}},     // KIP-360 bump
		{storage.InitProducerID{ProducerID: 1, Epoch: 7}, storage.ProducerID{ID: 1, Epoch: 8}},     // bump
		{storage.InitProducerID{ProducerID: 9, Epoch: 0}, storage.ProducerID{ID: 2, Epoch: 0}},     // never handed out: new ID
		{storage.InitProducerID{ProducerID: 1, Epoch: 32767}, storage.ProducerID{ID: 3, Epoch: 0}}, // epoch exhausted: new ID
	}
	for i, c := range cases {
		if got := apply1(t, s, c.in); got != c.want {
			t.Errorf("%d: InitProducerID(%+v) = %+v, want %+v", i, c.in, got, c.want)
		}
	}
}

// step is one append of an idempotence scenario.
type step struct {
	spec      batchSpec
	err       error // want this error
	base      int64 // else this base offset
	dup       bool
	partition int32
}

func TestApplyIdempotentProducer(t *testing.T) {
	const maxSeq = math.MaxInt32
	cases := []struct {
		name  string
		steps []step
		hw    int64 // high watermark at the end
	}{
		{"in order", []step{{spec: idem(2, 1, 0, 0), base: 0}, {spec: idem(3, 1, 0, 2), base: 2}, {spec: idem(1, 1, 0, 5), base: 5}}, 6},
		{"retry of the last batch gets its original offset", []step{
			{spec: idem(2, 1, 0, 0), base: 0}, {spec: idem(3, 1, 0, 2), base: 2}, {spec: idem(3, 1, 0, 2), base: 2, dup: true},
		}, 5},
		{"retry of an older batch inside the window", []step{
			{spec: idem(2, 1, 0, 0), base: 0}, {spec: idem(1, 1, 0, 2), base: 2}, {spec: idem(1, 1, 0, 3), base: 3},
			{spec: idem(2, 1, 0, 0), base: 0, dup: true},
		}, 4},
		{"retry older than the five-batch window is out of order", []step{
			{spec: idem(1, 1, 0, 0), base: 0}, {spec: idem(1, 1, 0, 1), base: 1}, {spec: idem(1, 1, 0, 2), base: 2},
			{spec: idem(1, 1, 0, 3), base: 3}, {spec: idem(1, 1, 0, 4), base: 4}, {spec: idem(1, 1, 0, 5), base: 5},
			{spec: idem(1, 1, 0, 1), base: 1, dup: true}, {spec: idem(1, 1, 0, 0), err: storage.ErrOutOfOrderSequence},
		}, 6},
		{"a gap is out of order", []step{{spec: idem(1, 1, 0, 0), base: 0}, {spec: idem(1, 1, 0, 2), err: storage.ErrOutOfOrderSequence}}, 1},
		{"a partial overlap is out of order", []step{{spec: idem(3, 1, 0, 0), base: 0}, {spec: idem(3, 1, 0, 1), err: storage.ErrOutOfOrderSequence}}, 3},
		{"a producer new to the partition may start at any sequence", []step{{spec: idem(1, 1, 0, 7), base: 0}, {spec: idem(1, 1, 0, 8), base: 1}}, 2},
		{"an older epoch is fenced", []step{{spec: idem(1, 1, 1, 0), base: 0}, {spec: idem(1, 1, 0, 1), err: storage.ErrInvalidProducerEpoch}}, 1},
		{"an epoch bump restarts the sequence at zero", []step{
			{spec: idem(3, 1, 0, 0), base: 0}, {spec: idem(1, 1, 1, 0), base: 3}, {spec: idem(1, 1, 1, 1), base: 4},
			{spec: idem(3, 1, 0, 0), err: storage.ErrInvalidProducerEpoch},
		}, 5},
		{"a bumped epoch must start at zero", []step{{spec: idem(1, 1, 0, 0), base: 0}, {spec: idem(1, 1, 1, 5), err: storage.ErrOutOfOrderSequence}}, 1},
		{"a sequence wraps past MaxInt32 inside a batch", []step{
			{spec: idem(1, 1, 0, maxSeq-3), base: 0}, {spec: idem(4, 1, 0, maxSeq-2), base: 1}, // last sequence 0
			{spec: idem(4, 1, 0, maxSeq-2), base: 1, dup: true}, {spec: idem(1, 1, 0, 1), base: 5},
		}, 6},
		{"a sequence wraps at a batch boundary", []step{{spec: idem(1, 1, 0, maxSeq), base: 0}, {spec: idem(1, 1, 0, 0), base: 1}}, 2},
		{"producers are independent", []step{{spec: idem(1, 1, 0, 0), base: 0}, {spec: idem(1, 2, 0, 0), base: 1}, {spec: idem(1, 1, 0, 1), base: 2}}, 3},
		{"partitions are independent", []step{{spec: idem(1, 1, 0, 0), base: 0}, {spec: idem(1, 1, 0, 0), base: 0, partition: 1}}, 1},
		{"plain batches are never deduplicated", []step{{spec: plain(2, 1), base: 0}, {spec: plain(2, 1), base: 2}}, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			mustCreate(t, s, "t", 2, nil)
			for i, st := range c.steps {
				r := appendBatch(t, s, 1, "t", st.partition, st.spec.build(t))
				switch {
				case st.err != nil:
					if !errors.Is(r.Err, st.err) {
						t.Fatalf("step %d: err %v, want %v", i, r.Err, st.err)
					}
					if r.BaseOffset != -1 {
						t.Errorf("step %d: refused batch has base offset %d", i, r.BaseOffset)
					}
				case r.Err != nil:
					t.Fatalf("step %d: unexpected error %v", i, r.Err)
				case r.BaseOffset != st.base || r.Duplicate != st.dup:
					t.Fatalf("step %d: base %d dup %v, want %d %v", i, r.BaseOffset, r.Duplicate, st.base, st.dup)
				}
			}
			if offs, _ := s.Offsets("t", 0); offs.HighWatermark != c.hw {
				t.Errorf("high watermark %d, want %d", offs.HighWatermark, c.hw)
			}
		})
	}
}

func TestApplyMaxMessageBytes(t *testing.T) {
	s := openStore(t)
	small := plain(1, 1)
	small.valueSize = 100
	b := small.build(t)
	mustCreate(t, s, "limited", 1, map[string]string{"max.message.bytes": "100"})
	mustCreate(t, s, "exact", 1, map[string]string{"max.message.bytes": strconv.Itoa(len(b))})
	if r := appendBatch(t, s, 1, "limited", 0, b); !errors.Is(r.Err, storage.ErrMessageTooLarge) {
		t.Errorf("batch of %d bytes over 100: err %v", len(b), r.Err)
	}
	if r := appendBatch(t, s, 1, "exact", 0, b); r.Err != nil {
		t.Errorf("batch of exactly max.message.bytes refused: %v", r.Err)
	}
	// Raising the limit lets the batch in.
	if r := apply1(t, s, storage.AlterConfigs{Topic: "limited", Set: map[string]string{"max.message.bytes": "1000"}}); r != nil {
		t.Fatal(r)
	}
	if r := appendBatch(t, s, 1, "limited", 0, b); r.Err != nil || r.BaseOffset != 0 {
		t.Errorf("after raising the limit: %+v", r)
	}
}

func TestApplyLogAppendTime(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "lat", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	mustCreate(t, s, "ct", 1, nil)
	apply1(t, s, storage.NewEpoch{Epoch: 4})
	const now = 1_700_000_000_000
	r := appendBatch(t, s, now, "lat", 0, plain(3, 1000).build(t))
	if r.Err != nil || r.LogAppendTime != now {
		t.Fatalf("append to LogAppendTime topic: %+v", r)
	}
	rb := readBatches(t, s, "lat", 0, 0) // checks the CRC
	if len(rb) != 1 {
		t.Fatalf("%d batches", len(rb))
	}
	got := rb[0]
	if got.Attributes&0x08 == 0 || got.MaxTimestamp != now || got.FirstTimestamp != 1000 || got.PartitionLeaderEpoch != 4 {
		t.Errorf("stored header: attrs %#x max ts %d first ts %d epoch %d", got.Attributes, got.MaxTimestamp, got.FirstTimestamp, got.PartitionLeaderEpoch)
	}
	if !storage.CheckBatchCRC(got.AppendTo(nil)) {
		t.Error("CheckBatchCRC rejects the restamped batch")
	}
	if offs, _ := s.Offsets("lat", 0); offs.MaxTimestamp != now {
		t.Errorf("partition max timestamp %d, want %d", offs.MaxTimestamp, now)
	}
	// A duplicate retry reports the original append time.
	first := appendBatch(t, s, now+5, "lat", 0, idem(1, 3, 0, 0).build(t))
	dup := appendBatch(t, s, now+99, "lat", 0, idem(1, 3, 0, 0).build(t))
	if !dup.Duplicate || dup.LogAppendTime != now+5 || dup.BaseOffset != first.BaseOffset {
		t.Errorf("duplicate on LogAppendTime topic: %+v, first %+v", dup, first)
	}
	// CreateTime topics keep the producer's timestamps.
	r = appendBatch(t, s, now, "ct", 0, plain(2, 1000).build(t))
	if r.LogAppendTime != -1 {
		t.Errorf("CreateTime append reports LogAppendTime %d", r.LogAppendTime)
	}
	ct := readBatches(t, s, "ct", 0, 0)[0]
	if ct.Attributes&0x08 != 0 || ct.MaxTimestamp != 1001 || ct.PartitionLeaderEpoch != 4 {
		t.Errorf("CreateTime batch: attrs %#x max ts %d epoch %d", ct.Attributes, ct.MaxTimestamp, ct.PartitionLeaderEpoch)
	}
}

func TestApplyAppendErrors(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "t", 1, nil)
	good := plain(1, 1).build(t)
	badMagic := append([]byte(nil), good...)
	badMagic[16] = 1
	cases := []struct {
		name  string
		topic string
		part  int32
		batch []byte
		want  error
	}{
		{"unknown topic", "nope", 0, good, storage.ErrUnknownTopic},
		{"negative partition", "t", -1, good, storage.ErrUnknownTopic},
		{"partition past the count", "t", 1, good, storage.ErrUnknownTopic},
		{"short batch", "t", 0, good[:30], storage.ErrCorruptBatch},
		{"length mismatch", "t", 0, good[:len(good)-1], storage.ErrCorruptBatch},
		{"magic 1", "t", 0, badMagic, storage.ErrCorruptBatch},
	}
	for _, c := range cases {
		if r := appendBatch(t, s, 1, c.topic, c.part, c.batch); !errors.Is(r.Err, c.want) || r.BaseOffset != -1 {
			t.Errorf("%s: %+v, want %v", c.name, r, c.want)
		}
	}
	if offs, _ := s.Offsets("t", 0); offs.HighWatermark != 0 || offs.Bytes != 0 {
		t.Errorf("refused appends changed the partition: %+v", offs)
	}
}

// threeBatches makes t/0 hold batches [0-2] [3-5] [6-8] with timestamps
// 1000, 2000, 3000 and returns their size.
func threeBatches(t *testing.T, s *storage.Store) int {
	t.Helper()
	mustCreate(t, s, "t", 1, nil)
	var size int
	for i := int64(1); i <= 3; i++ {
		b := plain(3, i*1000).build(t)
		size = len(b)
		if r := appendBatch(t, s, 1, "t", 0, b); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	return size
}

func deleteRecords(t *testing.T, s *storage.Store, topic string, off int64) storage.DeleteRecordsResult {
	t.Helper()
	res := apply1(t, s, storage.DeleteRecords{Parts: []storage.DeleteRecordsPart{{Topic: topic, Partition: 0, Offset: off}}}).([]storage.DeleteRecordsResult)
	return res[0]
}

func TestApplyDeleteRecords(t *testing.T) {
	s := openStore(t)
	size := threeBatches(t, s)
	if r := deleteRecords(t, s, "t", 4); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete below 4: %+v", r)
	}
	offs, _ := s.Offsets("t", 0)
	if offs.LogStart != 4 || offs.HighWatermark != 9 || offs.Bytes != int64(2*size) {
		t.Errorf("after delete below 4: %+v (batch size %d)", offs, size)
	}
	if _, err := s.Read("t", 0, 3, 1<<20, nil); !errors.Is(err, storage.ErrOffsetOutOfRange) {
		t.Errorf("read below the log start: %v", err)
	}
	if got := baseOffsets(readBatches(t, s, "t", 0, 4)); !reflect.DeepEqual(got, []int64{3, 6}) {
		t.Errorf("read from 4 returned batches %v, want [3 6]", got)
	}
	if r := deleteRecords(t, s, "t", 2); r.Err != nil || r.LowWatermark != 4 {
		t.Errorf("delete below an offset already deleted: %+v", r)
	}
	if r := deleteRecords(t, s, "t", 10); !errors.Is(r.Err, storage.ErrOffsetOutOfRange) || r.LowWatermark != 4 {
		t.Errorf("delete past the high watermark: %+v", r)
	}
	if r := deleteRecords(t, s, "t", -1); r.Err != nil || r.LowWatermark != 9 {
		t.Errorf("delete to the high watermark: %+v", r)
	}
	offs, _ = s.Offsets("t", 0)
	if offs.LogStart != 9 || offs.Bytes != 0 {
		t.Errorf("after deleting everything: %+v", offs)
	}
	if r := deleteRecords(t, s, "nope", 1); !errors.Is(r.Err, storage.ErrUnknownTopic) {
		t.Errorf("unknown topic: %+v", r)
	}
	if r := appendBatch(t, s, 1, "t", 0, plain(1, 1).build(t)); r.BaseOffset != 9 || r.LogStartOffset != 9 {
		t.Errorf("append after deleting everything: %+v", r)
	}
}

// compacted builds a batch that keeps the offset range of [base, base+n)
// but only the records at the given deltas, as compaction writes it.
func compacted(t *testing.T, base int64, n int, keep ...int32) []byte {
	t.Helper()
	var recs []byte
	for _, d := range keep {
		recs = appendRecord(recs, kmsg.Record{OffsetDelta: d, Value: []byte{byte(d)}})
	}
	return finishBatch(kmsg.RecordBatch{
		FirstOffset: base, Magic: 2, LastOffsetDelta: int32(n - 1), FirstTimestamp: 1, MaxTimestamp: 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(keep)), Records: recs,
	})
}

func TestApplyReplaceBatches(t *testing.T) {
	s := openStore(t)
	size := threeBatches(t, s)
	repl := compacted(t, 3, 3, 1, 2)
	res := apply1(t, s, storage.ReplaceBatches{Topic: "t", From: 0, To: 6, Batches: [][]byte{repl}})
	if res != nil {
		t.Fatalf("replace: %v", res)
	}
	got := readBatches(t, s, "t", 0, 0)
	if !reflect.DeepEqual(baseOffsets(got), []int64{3, 6}) || got[0].NumRecords != 2 || got[0].LastOffsetDelta != 2 {
		t.Fatalf("after replace: batches %v, first %+v", baseOffsets(got), got[0])
	}
	offs, _ := s.Offsets("t", 0)
	if offs.LogStart != 0 || offs.HighWatermark != 9 || offs.Bytes != int64(size+len(repl)) {
		t.Errorf("offsets after replace: %+v", offs)
	}
	// Reading from an offset compaction removed starts at the next batch.
	if got := baseOffsets(readBatches(t, s, "t", 0, 1)); !reflect.DeepEqual(got, []int64{3, 6}) {
		t.Errorf("read from 1: %v", got)
	}

	refused := []struct {
		name string
		cmd  storage.ReplaceBatches
		want error
	}{
		{"past the high watermark", storage.ReplaceBatches{Topic: "t", From: 0, To: 10}, storage.ErrOffsetOutOfRange},
		{"inverted range", storage.ReplaceBatches{Topic: "t", From: 5, To: 4}, storage.ErrOffsetOutOfRange},
		{"unknown topic", storage.ReplaceBatches{Topic: "nope", From: 0, To: 1}, storage.ErrUnknownTopic},
		{"corrupt batch", storage.ReplaceBatches{Topic: "t", From: 0, To: 9, Batches: [][]byte{repl[:40]}}, storage.ErrCorruptBatch},
		{"batch before From", storage.ReplaceBatches{Topic: "t", From: 4, To: 9, Batches: [][]byte{repl}}, storage.ErrCorruptBatch},
		{"batch at To", storage.ReplaceBatches{Topic: "t", From: 0, To: 3, Batches: [][]byte{repl}}, storage.ErrCorruptBatch},
		{"overlapping batches", storage.ReplaceBatches{Topic: "t", From: 0, To: 9, Batches: [][]byte{repl, compacted(t, 4, 3, 0)}}, storage.ErrCorruptBatch},
		{"out of order batches", storage.ReplaceBatches{Topic: "t", From: 0, To: 9, Batches: [][]byte{compacted(t, 6, 3, 0), repl}}, storage.ErrCorruptBatch},
		{"overlapping the next batch", storage.ReplaceBatches{Topic: "t", From: 0, To: 6, Batches: [][]byte{compacted(t, 3, 4, 0)}}, storage.ErrCorruptBatch},
	}
	for _, c := range refused {
		if r, _ := apply1(t, s, c.cmd).(error); !errors.Is(r, c.want) {
			t.Errorf("%s: %v, want %v", c.name, r, c.want)
		}
	}
	// Refused commands change nothing but the applied index.
	s2 := openStore(t)
	threeBatches(t, s2)
	apply1(t, s2, storage.ReplaceBatches{Topic: "t", From: 0, To: 6, Batches: [][]byte{repl}})
	for range refused {
		apply1(t, s2, storage.NewEpoch{})
	}
	_, d1, _ := s.Digest()
	_, d2, _ := s2.Digest()
	if d1 != d2 {
		t.Error("a refused ReplaceBatches changed the log")
	}

	// Replacing with nothing drops the range; batches retention removed
	// meanwhile are not brought back.
	if r := deleteRecords(t, s, "t", 7); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := apply1(t, s, storage.ReplaceBatches{Topic: "t", From: 0, To: 9, Batches: [][]byte{repl, compacted(t, 6, 3, 2)}}); r != nil {
		t.Fatal(r)
	}
	if got := readBatches(t, s, "t", 0, 7); len(got) != 1 || got[0].FirstOffset != 6 || got[0].NumRecords != 1 {
		t.Errorf("after replace below the log start: %v", baseOffsets(got))
	}
	if r := apply1(t, s, storage.ReplaceBatches{Topic: "t", From: 0, To: 9}); r != nil {
		t.Fatal(r)
	}
	if rr, err := s.Read("t", 0, 7, 1<<20, nil); err != nil || len(rr.Records) != 0 {
		t.Errorf("after replacing with nothing: %d bytes, %v", len(rr.Records), err)
	}
	if offs, _ := s.Offsets("t", 0); offs.Bytes != 0 || offs.HighWatermark != 9 {
		t.Errorf("offsets after emptying: %+v", offs)
	}
}
