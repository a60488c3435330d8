package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/kbox-dev/kbox/broker/storage"
)

// logStore is the Raft log and stable store: raft-boltdb, with the data of
// large entries kept out of line, as payloads in the state store's own
// file (storage/payload.go).
//
// Why out of line: raft-boltdb keeps every entry as a value in one bucket
// keyed by index, and bbolt rewrites a whole leaf, values included,
// whenever a key is added to it, keeping at least two keys per leaf. With
// produce requests of up to several MiB per entry, every append rewrote
// the two to four entries before it.
//
// Why in the state store: an Append entry's batches are the partition's
// data. Stored there once, applying the entry records only where each
// batch lies (with its stamped header) instead of writing every byte a
// second time; the payload stays until neither the Raft log nor any
// stored batch needs it. raft-boltdb still holds every entry's index,
// term, type and a small stub, so Raft's own bookkeeping, the stable store
// and small commands are untouched.
type logStore struct {
	*raftboltdb.BoltStore
	store *storage.Store

	// mu and closed make a term write that comes after Close a no-op
	// instead of an error. raft's NetworkTransport runs heartbeats on its
	// connection goroutines and does not wait for them when it closes; a
	// heartbeat that got past raft's shutdown check still saves a new
	// term, and raft panics when that fails. By then Raft is shut down and
	// the node is closing: the write is lost as if the node had stopped a
	// moment earlier (a heartbeat carries no entries to vouch for).
	mu     sync.RWMutex
	closed bool
}

// Set implements raft.StableStore; see logStore.closed.
func (s *logStore) Set(k, v []byte) error {
	return s.stable(func() error { return s.BoltStore.Set(k, v) })
}

// SetUint64 implements raft.StableStore; see logStore.closed.
func (s *logStore) SetUint64(k []byte, v uint64) error {
	return s.stable(func() error { return s.BoltStore.SetUint64(k, v) })
}

func (s *logStore) stable(write func() error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return write()
}

// Close closes raft.db once the stable-store writes in flight are done.
func (s *logStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.BoltStore.Close()
}

// payloadMin is the size from which an entry's data moves out of line;
// smaller entries share leaves cheaply, and their batches are copied.
const payloadMin = 16 << 10

// stubTag starts the data of an entry whose payload is out of line. No
// storage command starts with 0 (ops are numbered from 1).
const stubTag = 0

func openLogStore(logPath string, store *storage.Store, fsync bool) (*logStore, error) {
	opts := &bolt.Options{
		Timeout:         5 * time.Second,
		NoSync:          !fsync,
		NoGrowSync:      !fsync, // as the store does: see storage.Store.open
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 64 << 20,
	}
	bs, err := raftboltdb.New(raftboltdb.Options{Path: logPath, NoSync: !fsync, BoltOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", logPath, err)
	}
	return &logStore{BoltStore: bs, store: store}, nil
}

// StoreLog implements raft.LogStore.
func (s *logStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs writes large payloads first, then the entries with stubs, so
// an entry never points at a payload that is not there; a crash between
// the two leaves an orphan payload that a later StoreLogs of the same
// index replaces or DeleteRange releases.
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	var big []storage.Payload
	for _, l := range logs {
		if outOfLine(l) {
			big = append(big, storage.Payload{Index: l.Index, Data: l.Data})
		}
	}
	if len(big) == 0 {
		return s.BoltStore.StoreLogs(logs)
	}
	if err := s.store.PutPayloads(big); err != nil {
		return fmt.Errorf("store raft payloads: %w", err)
	}
	stubbed := make([]*raft.Log, len(logs))
	for i, l := range logs {
		if !outOfLine(l) {
			stubbed[i] = l
			continue
		}
		cp := *l // raft keeps the original; never modify it
		cp.Data = binary.BigEndian.AppendUint64([]byte{stubTag}, uint64(len(l.Data)))
		stubbed[i] = &cp
	}
	return s.BoltStore.StoreLogs(stubbed)
}

// GetLog implements raft.LogStore, putting an out-of-line payload back.
func (s *logStore) GetLog(index uint64, l *raft.Log) error {
	if err := s.BoltStore.GetLog(index, l); err != nil {
		return err
	}
	if l.Type != raft.LogCommand || len(l.Data) != 9 || l.Data[0] != stubTag {
		return nil
	}
	want := binary.BigEndian.Uint64(l.Data[1:])
	d, err := s.store.Payload(index)
	if err != nil {
		return fmt.Errorf("raft log entry %d: %w", index, err)
	}
	if uint64(len(d)) != want {
		return fmt.Errorf("raft log entry %d: payload of %d bytes, stub says %d", index, len(d), want)
	}
	l.Data = d
	return nil
}

// DeleteRange implements raft.LogStore: the entries go, and their payloads
// with them unless stored batches still refer to them.
func (s *logStore) DeleteRange(min, max uint64) error {
	if err := s.BoltStore.DeleteRange(min, max); err != nil {
		return err
	}
	if err := s.store.ReleasePayloads(min, max); err != nil {
		return fmt.Errorf("release raft payloads %d-%d: %w", min, max, err)
	}
	return nil
}

// outOfLine reports whether an entry's payload is stored out of line: only
// commands, so Raft's own entries stay exactly as raft-boltdb writes them.
// The FSM applies by the same rule (storage.Entry.Payload), which depends
// on the entry alone, so every node stores the same batches by reference.
func outOfLine(l *raft.Log) bool { return l.Type == raft.LogCommand && len(l.Data) >= payloadMin }

// migratePayloads moves the payloads of a data dir written before they
// lived in the state store (a separate raft-payloads.db, one nested
// bucket per entry holding the data under "d") into the store, and
// removes that file.
func migratePayloads(path string, store *storage.Store) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket([]byte("payloads"))
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(k []byte) error {
			d := root.Bucket(k).Get([]byte("d"))
			return store.PutPayloads([]storage.Payload{{Index: binary.BigEndian.Uint64(k), Data: d}})
		})
	})
	if err = errors.Join(err, db.Close()); err != nil {
		return fmt.Errorf("migrate raft payloads from %s: %w", path, err)
	}
	return os.Remove(path)
}
