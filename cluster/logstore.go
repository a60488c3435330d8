package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// logStore is the Raft log and stable store: raft-boltdb, with the payload
// of large entries kept out of line in a second bbolt file, one nested
// bucket per entry.
//
// Why: raft-boltdb keeps every entry as a value in one bucket keyed by
// index, and bbolt rewrites a whole leaf, values included, whenever a key
// is added to it, keeping at least two keys per leaf. With produce
// requests of up to several MiB per entry, every append rewrote the two to
// four entries before it: the Raft log alone wrote ~4.5 bytes per byte
// produced and took ~40% of the broker's CPU. A nested bucket per payload
// gives each its own pages, written once. raft-boltdb still holds every
// entry's index, term, type and a small stub, so Raft's own bookkeeping,
// the stable store and small commands are untouched.
type logStore struct {
	*raftboltdb.BoltStore
	payloads *bolt.DB
}

// payloadMin is the size from which an entry's data moves out of line;
// smaller entries share leaves cheaply.
const payloadMin = 16 << 10

// stubTag starts the data of an entry whose payload is out of line. No
// storage command starts with 0 (ops are numbered from 1).
const stubTag = 0

var bucketPayloads = []byte("payloads")

func openLogStore(logPath, payloadPath string, fsync bool) (*logStore, error) {
	opts := &bolt.Options{
		Timeout:         5 * time.Second,
		NoSync:          !fsync,
		NoGrowSync:      !fsync, // as the store does: see storage.Store.open
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 256 << 20,
	}
	bs, err := raftboltdb.New(raftboltdb.Options{Path: logPath, NoSync: !fsync, BoltOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", logPath, err)
	}
	pdb, err := bolt.Open(payloadPath, 0o600, opts)
	if err == nil {
		err = pdb.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucketPayloads)
			return err
		})
	}
	if err != nil {
		bs.Close()
		return nil, fmt.Errorf("open raft payloads %s: %w", payloadPath, err)
	}
	return &logStore{BoltStore: bs, payloads: pdb}, nil
}

// Close closes both files.
func (s *logStore) Close() error {
	return errors.Join(s.BoltStore.Close(), s.payloads.Close())
}

// StoreLog implements raft.LogStore.
func (s *logStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs writes large payloads first, then the entries with stubs, so
// an entry never points at a payload that is not there; a crash between
// the two leaves an orphan payload that DeleteRange removes later.
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	var big []*raft.Log
	for _, l := range logs {
		if outOfLine(l) {
			big = append(big, l)
		}
	}
	if len(big) == 0 {
		return s.BoltStore.StoreLogs(logs)
	}
	err := s.payloads.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPayloads)
		for _, l := range big {
			key := indexKey(l.Index)
			if b.Bucket(key) != nil { // a follower rewriting an entry after a conflict
				if err := b.DeleteBucket(key); err != nil {
					return err
				}
			}
			nb, err := b.CreateBucket(key)
			if err != nil {
				return err
			}
			if err := nb.Put([]byte("d"), l.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
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
	return s.payloads.View(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketPayloads).Bucket(indexKey(index))
		if nb == nil {
			return fmt.Errorf("raft log entry %d: payload missing", index)
		}
		d := nb.Get([]byte("d"))
		if uint64(len(d)) != want {
			return fmt.Errorf("raft log entry %d: payload of %d bytes, stub says %d", index, len(d), want)
		}
		l.Data = append([]byte(nil), d...)
		return nil
	})
}

// DeleteRange implements raft.LogStore for both files.
func (s *logStore) DeleteRange(min, max uint64) error {
	if err := s.BoltStore.DeleteRange(min, max); err != nil {
		return err
	}
	return s.payloads.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPayloads)
		var doomed [][]byte
		c := b.Cursor()
		for k, _ := c.Seek(indexKey(min)); k != nil && binary.BigEndian.Uint64(k) <= max; k, _ = c.Next() {
			doomed = append(doomed, append([]byte(nil), k...))
		}
		for _, k := range doomed {
			if err := b.DeleteBucket(k); err != nil {
				return fmt.Errorf("delete raft payload %d: %w", binary.BigEndian.Uint64(k), err)
			}
		}
		return nil
	})
}

// outOfLine reports whether an entry's payload is stored out of line: only
// commands, so Raft's own entries stay exactly as raft-boltdb writes them.
func outOfLine(l *raft.Log) bool { return l.Type == raft.LogCommand && len(l.Data) >= payloadMin }

func indexKey(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }
