package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/kbox-dev/kbox/broker/storage"
)

func TestLogStorePayloadsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	open := func() (*logStore, *storage.Store) {
		st, err := storage.Open(filepath.Join(dir, "state.db"), storage.Options{InitialMmapSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		s, err := openLogStore(filepath.Join(dir, "raft.db"), st, false)
		if err != nil {
			t.Fatal(err)
		}
		return s, st
	}
	s, st := open()
	big := bytes.Repeat([]byte{3, 1, 4}, payloadMin) // out of line
	small := []byte{3, 9, 9}                         // inline
	logs := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: big},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: small},
		{Index: 3, Term: 2, Type: raft.LogConfiguration, Data: big},
		{Index: 4, Term: 2, Type: raft.LogCommand, Data: append([]byte(nil), big[:payloadMin]...)},
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(logs[0].Data, big) {
		t.Fatal("StoreLogs modified the caller's log")
	}
	check := func(s *logStore) {
		t.Helper()
		for _, want := range logs {
			var got raft.Log
			if err := s.GetLog(want.Index, &got); err != nil {
				t.Fatalf("GetLog(%d): %v", want.Index, err)
			}
			if got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("GetLog(%d) = term %d type %v %d bytes, want term %d type %v %d bytes",
					want.Index, got.Term, got.Type, len(got.Data), want.Term, want.Type, len(want.Data))
			}
		}
	}
	check(s)
	for _, i := range []uint64{2, 3} {
		if _, err := st.Payload(i); !errors.Is(err, storage.ErrMissingPayload) {
			t.Errorf("entry %d (small, or not a command) has a payload: %v", i, err)
		}
	}
	if err := errors.Join(s.Close(), st.Close()); err != nil {
		t.Fatal(err)
	}
	s, st = open()
	defer st.Close()
	defer s.Close()
	check(s)

	if err := s.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := s.GetLog(1, &got); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog after DeleteRange: %v, want ErrLogNotFound", err)
	}
	for _, i := range []uint64{1, 4} {
		if _, err := st.Payload(i); !errors.Is(err, storage.ErrMissingPayload) {
			t.Errorf("payload of entry %d left after DeleteRange: %v", i, err)
		}
	}
}

// A data dir from before payloads lived in the state store has them in
// raft-payloads.db; opening moves them over and removes the file.
func TestMigratePayloads(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "raft-payloads.db")
	db, err := bolt.Open(old, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucket([]byte("payloads"))
		if err != nil {
			return err
		}
		nb, err := root.CreateBucket(binary.BigEndian.AppendUint64(nil, 7))
		if err != nil {
			return err
		}
		return nb.Put([]byte("d"), []byte("seven"))
	})
	if err = errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(filepath.Join(dir, "state.db"), storage.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := migratePayloads(old, st); err != nil {
		t.Fatal(err)
	}
	if d, err := st.Payload(7); err != nil || string(d) != "seven" {
		t.Fatalf("migrated payload 7: %q, %v", d, err)
	}
	if err := migratePayloads(old, st); err != nil {
		t.Fatalf("second open, file gone: %v", err)
	}
}

// A term write after Close (a heartbeat raft's transport was still
// handling) is dropped, not an error raft would panic on.
func TestLogStoreStableWritesAfterClose(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(filepath.Join(dir, "state.db"), storage.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := openLogStore(filepath.Join(dir, "raft.db"), st, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 4); err != nil {
		t.Fatalf("SetUint64 after Close: %v", err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("2")); err != nil {
		t.Fatalf("Set after Close: %v", err)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); err == nil {
		t.Fatal("GetUint64 after Close succeeded")
	}
}
