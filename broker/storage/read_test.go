package storage_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/kbox-dev/kbox/broker/storage"
)

func TestReadSemantics(t *testing.T) {
	s := openStore(t)
	size := threeBatches(t, s)
	cases := []struct {
		name     string
		offset   int64
		maxBytes int
		want     []int64 // base offsets returned
		err      error
	}{
		{"from the start", 0, 1 << 20, []int64{0, 3, 6}, nil},
		{"offset inside a batch returns that batch", 4, 1 << 20, []int64{3, 6}, nil},
		{"offset inside the last batch", 8, 1 << 20, []int64{6}, nil},
		{"offset at a batch base", 3, 1 << 20, []int64{3, 6}, nil},
		{"max bytes of exactly one batch", 0, size, []int64{0}, nil},
		{"max bytes a byte short of two batches", 0, 2*size - 1, []int64{0}, nil},
		{"max bytes of two batches", 0, 2 * size, []int64{0, 3}, nil},
		{"first batch is returned even over max bytes", 4, 1, []int64{3}, nil},
		{"zero max bytes still returns the first batch", 0, 0, []int64{0}, nil},
		{"high watermark reads nothing", 9, 1 << 20, nil, nil},
		{"past the high watermark", 10, 1 << 20, nil, storage.ErrOffsetOutOfRange},
		{"negative offset", -1, 1 << 20, nil, storage.ErrOffsetOutOfRange},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rr, err := s.Read("t", 0, c.offset, c.maxBytes, nil)
			if !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			if rr.HighWatermark != 9 || rr.LogStart != 0 {
				t.Errorf("bounds %d..%d, want 0..9", rr.LogStart, rr.HighWatermark)
			}
			if got := baseOffsets(parseBatches(t, rr.Records)); !reflect.DeepEqual(got, c.want) && len(got)+len(c.want) > 0 {
				t.Errorf("batches %v, want %v", got, c.want)
			}
		})
	}
}

func TestReadAppendsToBuf(t *testing.T) {
	s := openStore(t)
	threeBatches(t, s)
	prefix := []byte("prefix")
	rr, err := s.Read("t", 0, 6, 1<<20, append([]byte(nil), prefix...))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(rr.Records, prefix) {
		t.Fatal("Read dropped what buf held")
	}
	if got := baseOffsets(parseBatches(t, rr.Records[len(prefix):])); !reflect.DeepEqual(got, []int64{6}) {
		t.Errorf("batches %v", got)
	}
}

func TestReadUnknownPartition(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "t", 2, nil)
	for _, c := range []struct {
		topic string
		p     int32
	}{{"nope", 0}, {"t", 2}, {"t", -1}} {
		if _, err := s.Read(c.topic, c.p, 0, 100, nil); !errors.Is(err, storage.ErrUnknownTopic) {
			t.Errorf("Read(%s/%d): %v", c.topic, c.p, err)
		}
		if _, err := s.Offsets(c.topic, c.p); !errors.Is(err, storage.ErrUnknownTopic) {
			t.Errorf("Offsets(%s/%d): %v", c.topic, c.p, err)
		}
	}
	if rr, err := s.Read("t", 1, 0, 100, nil); err != nil || len(rr.Records) != 0 || rr.HighWatermark != 0 {
		t.Errorf("empty partition: %+v, %v", rr, err)
	}
}

func TestReadBatchesRange(t *testing.T) {
	s := openStore(t)
	threeBatches(t, s)
	var got []int64
	err := s.Batches("t", 0, 1, 7, func(b []byte) error {
		h, err := storage.ParseBatchHeader(b)
		got = append(got, h.BaseOffset)
		return err
	})
	if err != nil || !reflect.DeepEqual(got, []int64{3, 6}) {
		t.Errorf("Batches [1, 7): %v, %v", got, err)
	}
	stop := errors.New("stop")
	if err := s.Batches("t", 0, 0, 9, func([]byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error not returned: %v", err)
	}
}

func TestReadOffsetForTimestamp(t *testing.T) {
	s := openStore(t)
	threeBatches(t, s) // max timestamps 1002, 2002, 3002
	cases := []struct {
		ts       int64
		off, bts int64
		ok       bool
	}{
		{0, 0, 1002, true},
		{1002, 0, 1002, true},
		{1003, 3, 2002, true},
		{3002, 6, 3002, true},
		{3003, 0, 0, false},
	}
	for _, c := range cases {
		off, bts, ok, err := s.OffsetForTimestamp("t", 0, c.ts)
		if err != nil || ok != c.ok || (ok && (off != c.off || bts != c.bts)) {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %d, %v", c.ts, off, bts, ok, err, c.off, c.bts, c.ok)
		}
	}
	offs, _ := s.Offsets("t", 0)
	if offs.MaxTimestamp != 3002 || offs.MaxTsOffset != 6 {
		t.Errorf("max timestamp %d at %d", offs.MaxTimestamp, offs.MaxTsOffset)
	}
}

func TestReadEpochEndOffset(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "t", 1, nil)
	apply1(t, s, storage.NewEpoch{Epoch: 2})
	appendBatch(t, s, 1, "t", 0, plain(3, 1).build(t)) // epoch 2: 0-2
	apply1(t, s, storage.NewEpoch{Epoch: 5})
	appendBatch(t, s, 1, "t", 0, plain(2, 1).build(t)) // epoch 5: 3-4
	cases := []struct {
		ask, epoch int32
		end        int64
	}{
		{1, -1, -1},
		{2, 2, 3},
		{4, 2, 3},
		{5, 5, 5},
		{9, 5, 5},
	}
	for _, c := range cases {
		e, end, err := s.EpochEndOffset("t", 0, c.ask)
		if err != nil || e != c.epoch || end != c.end {
			t.Errorf("EpochEndOffset(%d) = %d, %d, %v; want %d, %d", c.ask, e, end, err, c.epoch, c.end)
		}
	}
	if s.Epoch() != 5 {
		t.Errorf("epoch %d", s.Epoch())
	}
}

func TestReadGroupOffsets(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "t", 2, nil)
	errs := apply1(t, s, storage.CommitOffsets{Group: "g", Now: 77, Offsets: []storage.OffsetCommit{
		{Topic: "t", Partition: 1, Offset: 5, LeaderEpoch: 1, Metadata: "x"},
		{Topic: "t", Partition: 0, Offset: 3, LeaderEpoch: -1},
		{Topic: "t", Partition: 9, Offset: 1},
	}}).([]error)
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], storage.ErrUnknownTopic) {
		t.Fatalf("commit errors %v", errs)
	}
	got, err := s.GroupOffsets("g")
	want := []storage.CommittedOffset{
		{Topic: "t", Partition: 0, Offset: 3, LeaderEpoch: -1, CommitTime: 77},
		{Topic: "t", Partition: 1, Offset: 5, LeaderEpoch: 1, Metadata: "x", CommitTime: 77},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("GroupOffsets = %+v, %v", got, err)
	}
	if gs, _ := s.Groups(); !reflect.DeepEqual(gs, []string{"g"}) {
		t.Errorf("Groups = %v", gs)
	}
	apply1(t, s, storage.DeleteOffsets{Group: "g", Parts: []storage.TopicPartition{{Topic: "t", Partition: 0}}})
	if got, _ := s.GroupOffsets("g"); len(got) != 1 || got[0].Partition != 1 {
		t.Errorf("after DeleteOffsets: %+v", got)
	}
	errs = apply1(t, s, storage.DeleteGroups{Groups: []string{"g", "h"}}).([]error)
	if errs[0] != nil || !errors.Is(errs[1], storage.ErrUnknownGroup) {
		t.Errorf("DeleteGroups errors %v", errs)
	}
	if gs, _ := s.Groups(); len(gs) != 0 {
		t.Errorf("groups left: %v", gs)
	}
}
