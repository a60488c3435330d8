package storage_test

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kbox-dev/kbox/broker/storage"
)

// state is what a test compares across snapshot, restore and reopen.
type state struct {
	applied uint64
	digest  [32]byte
	epoch   int32
	topics  []storage.TopicInfo
	records []byte
	offsets []storage.CommittedOffset
}

func stateOf(t *testing.T, s *storage.Store) state {
	t.Helper()
	applied, digest, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	rr, err := s.Read("a", 0, 3, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	offs, err := s.GroupOffsets("g")
	if err != nil {
		t.Fatal(err)
	}
	if applied != s.Applied() {
		t.Errorf("digest at %d, Applied %d", applied, s.Applied())
	}
	return state{applied: applied, digest: digest, epoch: s.Epoch(), topics: s.Topics(), records: rr.Records, offsets: offs}
}

func TestStoreSnapshotRestoreRoundTrip(t *testing.T) {
	src := openStore(t)
	apply(t, src, mixedLog(t)...)
	want := stateOf(t, src)

	sn, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if sn.Applied() != want.applied {
		t.Errorf("snapshot at %d, want %d", sn.Applied(), want.applied)
	}
	// Applies go on while the snapshot is open; it keeps its point in time.
	done := make(chan struct{})
	go func() {
		defer close(done)
		apply1(t, src, storage.CreateTopic{Name: "later", Partitions: 1})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("apply blocked by an open snapshot")
	}
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	sn.Release()
	sn.Release() // twice is harmless

	dst := openStore(t)
	mustCreate(t, dst, "gone", 1, nil) // replaced by the restore
	ch := dst.Changed()
	if err := dst.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Error("Restore did not signal Changed")
	}
	if got := stateOf(t, dst); !reflect.DeepEqual(got, want) {
		t.Errorf("restored state differs:\n%+v\nwant\n%+v", got, want)
	}
	if _, ok := dst.Topic("gone"); ok {
		t.Error("topic from before the restore survived")
	}
	if _, ok := dst.Topic("later"); ok {
		t.Error("topic created after the snapshot is in it")
	}
	// The restored store applies the next entries as the source did.
	next := storage.Append{Now: 9, Parts: []storage.AppendPart{{Topic: "a", Partition: 0, Batch: plain(1, 1).build(t)}}}
	apply1(t, dst, next)
	src2 := openStore(t)
	apply(t, src2, mixedLog(t)...)
	apply1(t, src2, next)
	_, d1, _ := dst.Digest()
	_, d2, _ := src2.Digest()
	if d1 != d2 {
		t.Error("restored store diverges from a store that applied the same log")
	}
}

func TestStoreReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, mixedLog(t)...)
	want := stateOf(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Read("a", 0, 0, 1, nil); err == nil {
		t.Error("Read on a closed store succeeded")
	}
	if _, err := s.ApplyBatch([]storage.Entry{{Index: 99}}); err == nil {
		t.Error("ApplyBatch on a closed store succeeded")
	}
	checkBolt(t, path)

	s, err = storage.Open(path, storage.Options{Fsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := stateOf(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("reopened state differs:\n%+v\nwant\n%+v", got, want)
	}
	// Appends continue at the old high watermark.
	before, _ := s.Offsets("a", 0)
	r := appendBatch(t, s, 1, "a", 0, plain(1, 1).build(t))
	if r.BaseOffset != before.HighWatermark {
		t.Errorf("append after reopen at %d, want %d", r.BaseOffset, before.HighWatermark)
	}
}

func TestStoreChangedSignalsCommits(t *testing.T) {
	s := openStore(t)
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed before any commit")
	default:
	}
	mustCreate(t, s, "t", 1, nil)
	select {
	case <-ch:
	default:
		t.Fatal("Changed not closed by a commit")
	}
	if s.Changed() == ch {
		t.Error("Changed returned the closed channel again")
	}
}
