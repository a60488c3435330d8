package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta   = []byte("meta")
	bucketTopics = []byte("topics")
	bucketLogs   = []byte("logs")
	bucketGroups = []byte("groups")

	keyApplied = []byte("applied")
	keyNextPID = []byte("next_pid")
	keyEpoch   = []byte("epoch")

	keyState    = []byte("s")
	bucketLog   = []byte("l")
	bucketPIDs  = []byte("p")
	rootBuckets = [][]byte{bucketMeta, bucketTopics, bucketLogs, bucketGroups, bucketPayloads, bucketPayloadRefs}
)

// Options tune how the store uses bbolt.
type Options struct {
	// Fsync makes every commit durable on power loss. Off (the default, like
	// Kafka's), a commit reaches the OS page cache before it returns, which
	// survives the process being killed.
	Fsync bool
	// InitialMmapSize pre-sizes bbolt's memory map, avoiding remaps (and the
	// reader stalls they cause) as the file grows. Default 1 GiB.
	InitialMmapSize int
}

// Store is the state machine over one bbolt file. ApplyBatch must be called
// from one goroutine at a time (raft's FSM goroutine); every other method is
// safe for concurrent use.
type Store struct {
	path string
	opts Options

	// mu guards db against a concurrent Restore swapping it.
	mu sync.RWMutex
	db *bolt.DB

	topics   atomic.Pointer[topicCache]
	defaults atomic.Pointer[map[string]string]
	applied  atomic.Uint64
	epoch    atomic.Int32

	notifyMu sync.Mutex
	notify   chan struct{}
}

// topicMeta is the stored description of a topic.
type topicMeta struct {
	Name       string
	ID         [16]byte
	Partitions int32
	Configs    map[string]string `json:",omitempty"`
}

// topicCache is an immutable snapshot of all topic metadata, swapped after
// every commit that changes it, so the append path and Metadata requests
// need not decode JSON.
type topicCache map[string]*topicMeta

// Open opens (or creates) the store at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.InitialMmapSize == 0 {
		opts.InitialMmapSize = 1 << 30
	}
	s := &Store{path: path, opts: opts, notify: make(chan struct{})}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) open() error {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{
		Timeout: 5 * time.Second,
		NoSync:  !s.opts.Fsync,
		// bbolt fsyncs the file whenever it grows (every 16 MiB here),
		// flushing every dirty page of it: a stall of tens of
		// milliseconds in the apply loop that only power-loss durability
		// needs, which without Fsync is not promised (DESIGN.md).
		NoGrowSync:      !s.opts.Fsync,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: s.opts.InitialMmapSize,
	})
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	cache := topicCache{}
	var defaults map[string]string
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range rootBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		s.applied.Store(getUint64(meta.Get(keyApplied)))
		s.epoch.Store(int32(getUint64(meta.Get(keyEpoch))))
		defaults = loadDefaults(meta)
		return tx.Bucket(bucketTopics).ForEach(func(k, v []byte) error {
			var m topicMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("topic %q: %w", k, err)
			}
			cache[m.Name] = &m
			return nil
		})
	})
	if err != nil {
		db.Close()
		return fmt.Errorf("load store %s: %w", s.path, err)
	}
	s.db = db
	s.topics.Store(&cache)
	s.defaults.Store(&defaults)
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// Path is the bbolt file's path.
func (s *Store) Path() string { return s.path }

// Applied is the index of the last log entry applied.
func (s *Store) Applied() uint64 { return s.applied.Load() }

// Epoch is the current leader epoch (the Raft term of the leader that last
// proposed NewEpoch).
func (s *Store) Epoch() int32 { return s.epoch.Load() }

// Changed returns a channel closed at the next commit of any change, so
// long-polling fetches wait without polling. Take the channel before
// reading state, then wait on it.
func (s *Store) Changed() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notify
}

func (s *Store) broadcast() {
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
}

func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errors.New("store closed")
	}
	return s.db.View(fn)
}

// Entry is one committed log entry.
type Entry struct {
	Index uint64
	Data  []byte
	// Payload says the store also holds Data as the payload of Index
	// ([Store.PutPayloads]), so appended batches refer to it instead of
	// being copied. Whether an entry is a payload entry must depend on the
	// entry alone, so that every node applies it the same way.
	Payload bool
}

// ApplyBatch applies committed entries in one bbolt transaction and returns
// one result per entry (see each command's doc for the result's type).
// Entries at or below [Store.Applied] are skipped with a nil result: after a
// restart raft replays entries the store already holds. A non-nil error is
// fatal: the entry at the reported index cannot be applied, and the node
// must stop rather than diverge.
func (s *Store) ApplyBatch(entries []Entry) ([]any, error) {
	results := make([]any, len(entries))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, errors.New("store closed")
	}
	cache := s.topics.Load()
	a := &applier{store: s, cache: *cache, epoch: s.epoch.Load(), defaults: *s.defaults.Load()}
	last := s.applied.Load()
	err := s.db.Update(func(tx *bolt.Tx) error {
		a.tx = tx
		for i, e := range entries {
			if e.Index <= last {
				continue
			}
			if e.Data == nil {
				last = e.Index
				continue
			}
			cmd, err := a.decode(e)
			if err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
			r, err := a.apply(cmd)
			if err != nil {
				return fmt.Errorf("entry %d (%s): %w", e.Index, cmd.Op(), err)
			}
			results[i] = r
			last = e.Index
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyApplied, putUint64(last)); err != nil {
			return err
		}
		return meta.Put(keyEpoch, putUint64(uint64(a.epoch)))
	})
	if err != nil {
		return nil, err
	}
	if a.cacheDirty {
		c := a.cache
		s.topics.Store(&c)
	}
	if a.defaultsDirty {
		d := a.defaults
		s.defaults.Store(&d)
	}
	s.applied.Store(last)
	s.epoch.Store(a.epoch)
	s.broadcast()
	return results, nil
}

// Snapshot is a consistent, point-in-time copy of the store, written while
// applies go on.
type Snapshot struct {
	tx      *bolt.Tx
	release func()
}

// Snapshot starts a snapshot; call Release when done with it.
func (s *Store) Snapshot() (*Snapshot, error) {
	s.mu.RLock()
	if s.db == nil {
		s.mu.RUnlock()
		return nil, errors.New("store closed")
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	return &Snapshot{tx: tx, release: s.mu.RUnlock}, nil
}

// Applied is the index of the last entry the snapshot contains.
func (sn *Snapshot) Applied() uint64 {
	return getUint64(sn.tx.Bucket(bucketMeta).Get(keyApplied))
}

// WriteTo writes the snapshot as a bbolt file image.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) { return sn.tx.WriteTo(w) }

// Release ends the snapshot's read transaction.
func (sn *Snapshot) Release() {
	if sn.tx != nil {
		sn.tx.Rollback()
		sn.tx = nil
		sn.release()
	}
}

// Restore replaces the whole state with a snapshot written by
// [Snapshot.WriteTo]. It must not run concurrently with ApplyBatch.
func (s *Store) Restore(r io.Reader) error {
	tmp := s.path + ".restore"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("restore: copy snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("restore: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.adoptPayloads(tmp); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("restore: close store: %w", err)
		}
		s.db = nil
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := s.open(); err != nil {
		return err
	}
	s.broadcast()
	return nil
}

// adoptPayloads makes the payloads of a restored file at path this node's:
// the snapshot carries the payloads of the leader's Raft log, and this
// node's own log (which Raft keeps across the restore) needs its own. So
// the leader's flags go, payloads no batch refers to go with them, and
// every payload this node's log holds is copied over. s.mu is held.
func (s *Store) adoptPayloads(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: !s.opts.Fsync, NoGrowSync: !s.opts.Fsync, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(nt *bolt.Tx) error {
		for _, name := range [][]byte{bucketPayloads, bucketPayloadRefs} {
			if _, err := nt.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		root := nt.Bucket(bucketPayloads)
		var keys [][]byte
		if err := root.ForEachBucket(func(k []byte) error { keys = append(keys, bytes.Clone(k)); return nil }); err != nil {
			return err
		}
		for _, k := range keys {
			u := getPayloadUse(nt, k)
			u.held = false
			if err := setPayloadUse(nt, k, u); err != nil {
				return err
			}
		}
		if s.db == nil {
			return nil
		}
		return s.db.View(func(ot *bolt.Tx) error {
			old := ot.Bucket(bucketPayloads)
			return old.ForEachBucket(func(k []byte) error {
				if !getPayloadUse(ot, k).held {
					return nil
				}
				if root.Bucket(k) == nil {
					nb, err := root.CreateBucket(k)
					if err != nil {
						return err
					}
					if err := nb.Put(keyPayloadData, old.Bucket(k).Get(keyPayloadData)); err != nil {
						return err
					}
				}
				u := getPayloadUse(nt, k)
				u.held = true
				return setPayloadUse(nt, k, u)
			})
		})
	})
	return errors.Join(err, db.Close())
}

// Digest hashes the whole state (every bucket, key and value, and the
// payloads stored batches refer to) as of the applied index it returns, so
// tests can check that nodes agree.
func (s *Store) Digest() (applied uint64, sum [32]byte, err error) {
	h := sha256.New()
	err = s.view(func(tx *bolt.Tx) error {
		applied = getUint64(tx.Bucket(bucketMeta).Get(keyApplied))
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			switch {
			case bytes.Equal(name, bucketPayloads):
				return hashPayloads(h, tx)
			case bytes.Equal(name, bucketPayloadRefs):
				return nil // hashed with the payloads
			}
			return hashBucket(h, name, b)
		})
	})
	copy(sum[:], h.Sum(nil))
	return applied, sum, err
}

// hashPayloads hashes the payloads stored batches refer to; the others,
// and whether the Raft log still holds one, differ from node to node.
func hashPayloads(h io.Writer, tx *bolt.Tx) error {
	fmt.Fprintf(h, "[%x]", bucketPayloads)
	root := tx.Bucket(bucketPayloads)
	return root.ForEachBucket(func(k []byte) error {
		if u := getPayloadUse(tx, k); u.refs > 0 {
			fmt.Fprintf(h, "%x:%d=%x;", k, u.refs, root.Bucket(k).Get(keyPayloadData))
		}
		return nil
	})
}

func hashBucket(h io.Writer, name []byte, b *bolt.Bucket) error {
	fmt.Fprintf(h, "[%x]", name)
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return hashBucket(h, k, b.Bucket(k))
		}
		fmt.Fprintf(h, "%x=%x;", k, v)
		return nil
	})
}

func putUint64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getUint64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func offsetKey(o int64) []byte { return putUint64(uint64(o)) }

func partKey(p int32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(p))
	return b
}
