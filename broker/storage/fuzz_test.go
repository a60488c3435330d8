package storage_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

// fuzzSeeds are encoded commands: every golden case plus appends of real
// batches, so the fuzzers start from well-formed entries.
func fuzzSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, c := range commandCases {
		b, err := storage.Encode(c)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	for _, spec := range []batchSpec{plain(3, 1000), idem(2, 0, 0, 0)} {
		b, _ := storage.Encode(storage.Append{Now: 5, Parts: []storage.AppendPart{{Topic: "t", Batch: spec.build(f)}}})
		out = append(out, b)
	}
	return out
}

// FuzzDecode: Decode never panics, and what it accepts encodes to bytes
// that decode to the same encoding again (the log format is stable).
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := storage.Decode(b)
		if err != nil {
			if !errors.Is(err, storage.ErrCorruptCommand) {
				t.Fatalf("Decode error %v is not ErrCorruptCommand", err)
			}
			return
		}
		e1, err := storage.Encode(c)
		if err != nil {
			t.Fatalf("Encode of a decoded %s: %v", c.Op(), err)
		}
		c2, err := storage.Decode(e1)
		if err != nil {
			t.Fatalf("Decode of a re-encoded %s: %v", c.Op(), err)
		}
		e2, err := storage.Encode(c2)
		if err != nil || !bytes.Equal(e1, e2) {
			t.Fatalf("%s encoding unstable: %x vs %x (%v)", c.Op(), e1, e2, err)
		}
	})
}

// FuzzParseBatchHeader: the parser never panics and agrees with kmsg's
// decoder on every field of a header it accepts.
func FuzzParseBatchHeader(f *testing.F) {
	f.Add(plain(3, 1000).build(f))
	f.Add(idem(1, 7, 2, 9).build(f))
	f.Add(make([]byte, storage.BatchHeaderLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		storage.CheckBatchCRC(b)
		h, err := storage.ParseBatchHeader(b)
		if err != nil {
			if !errors.Is(err, storage.ErrCorruptBatch) {
				t.Fatalf("error %v is not ErrCorruptBatch", err)
			}
			return
		}
		if int(h.Length)+12 != len(b) || h.Magic != 2 || h.NumRecords < 0 || h.LastOffsetDelta < 0 {
			t.Fatalf("accepted inconsistent header %+v for %d bytes", h, len(b))
		}
		var kb kmsg.RecordBatch
		if err := kb.ReadFrom(b); err != nil {
			t.Fatalf("kmsg cannot read an accepted header: %v", err)
		}
		want := storage.BatchHeader{
			BaseOffset: kb.FirstOffset, Length: kb.Length, LeaderEpoch: kb.PartitionLeaderEpoch, Magic: kb.Magic,
			CRC: uint32(kb.CRC), Attributes: kb.Attributes, LastOffsetDelta: kb.LastOffsetDelta,
			BaseTimestamp: kb.FirstTimestamp, MaxTimestamp: kb.MaxTimestamp, ProducerID: kb.ProducerID,
			ProducerEpoch: kb.ProducerEpoch, BaseSequence: kb.FirstSequence, NumRecords: kb.NumRecords,
		}
		if h != want {
			t.Fatalf("header %+v, kmsg reads %+v", h, want)
		}
	})
}

// FuzzApply: any entry that decodes applies without a fatal error (a
// committed command must never stop the node), and the store stays
// consistent. One store per fuzz process accumulates state across inputs.
// Every other input is applied as a payload entry, its data stored first
// as the Raft log store does for large entries, so batches are kept by
// reference; the Raft log then lets go of it, as compaction would.
func FuzzApply(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	s, err := storage.Open(filepath.Join(f.TempDir(), "state.db"), storage.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		path := s.Path()
		s.Close()
		checkBolt(f, path)
	})
	mustCreate(f, s, "t", 2, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := storage.Decode(b); err != nil {
			return
		}
		idx := s.Applied() + 1
		payload := idx%2 == 0
		if payload {
			if err := s.PutPayloads([]storage.Payload{{Index: idx, Data: b}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.ApplyBatch([]storage.Entry{{Index: idx, Data: b, Payload: payload}}); err != nil {
			t.Fatalf("apply of a decodable entry is fatal: %v", err)
		}
		if payload {
			if err := s.ReleasePayloads(idx, idx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Read("t", 0, 0, 1<<20, nil); err != nil && !errors.Is(err, storage.ErrOffsetOutOfRange) && !errors.Is(err, storage.ErrUnknownTopic) {
			t.Fatalf("read after apply: %v", err)
		}
	})
}
