package cluster

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

func TestLogStorePayloadsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	open := func() *logStore {
		s, err := openLogStore(filepath.Join(dir, "raft.db"), filepath.Join(dir, "payloads.db"), false)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
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
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	check(s)

	if err := s.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := s.GetLog(1, &got); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog after DeleteRange: %v, want ErrLogNotFound", err)
	}
	err := s.payloads.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketPayloads).Cursor().First(); k != nil {
			t.Errorf("payload of entry %x left after DeleteRange", k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
