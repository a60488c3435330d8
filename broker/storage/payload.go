package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Payloads are the data of large Raft log entries, kept in the store's own
// file so that a produced batch is written to disk once: the Raft log
// store (cluster/logstore.go) puts an entry's data here before the entry
// is committed, and applying an Append then stores, per batch, only its
// stamped 61-byte header and a reference to the records in the payload
// (see log.go), instead of a second copy of them.
//
// A payload lives while either holds it: the Raft log (until Raft
// compacts or truncates that entry, [Store.ReleasePayloads]) or at least
// one stored batch (until retention, DeleteRecords, compaction or topic
// deletion drop the last one). Both counts are changed in bbolt write
// transactions of this one file, so they can never disagree with the data.
//
// Layout: bucket "payloads", one nested bucket per entry keyed by its
// 8-byte big-endian index (a nested bucket gives each payload pages of its
// own, written once; see partLog), holding only the data under "d"; and
// bucket "payload_refs", under the same key, the number of referencing
// batches (8 bytes) and whether the Raft log holds it (1 byte). The counts
// live apart because changing any key of a bucket rewrites its leaf, and
// the payload's leaf holds the data. Which payloads the Raft log still
// holds is this node's own business, so [Store.Digest] leaves it out.
var (
	bucketPayloads    = []byte("payloads")
	bucketPayloadRefs = []byte("payload_refs")

	keyPayloadData = []byte("d")
)

// payloadUse is a payload's entry in payload_refs.
type payloadUse struct {
	refs uint64
	held bool // by the Raft log
}

func getPayloadUse(tx *bolt.Tx, key []byte) payloadUse {
	v := tx.Bucket(bucketPayloadRefs).Get(key)
	if len(v) != 9 {
		return payloadUse{}
	}
	return payloadUse{refs: binary.BigEndian.Uint64(v), held: v[8] == 1}
}

// setPayloadUse records u, or deletes the payload when nothing uses it.
func setPayloadUse(tx *bolt.Tx, key []byte, u payloadUse) error {
	if u.refs == 0 && !u.held {
		if err := tx.Bucket(bucketPayloadRefs).Delete(key); err != nil {
			return err
		}
		return tx.Bucket(bucketPayloads).DeleteBucket(key)
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 9), u.refs)
	if u.held {
		v = append(v, 1)
	} else {
		v = append(v, 0)
	}
	return tx.Bucket(bucketPayloadRefs).Put(key, v)
}

// ErrMissingPayload means an entry or batch refers to a payload the store
// does not have: the files do not belong together.
var ErrMissingPayload = errors.New("raft payload missing")

// Payload is the data of one Raft log entry, by index.
type Payload struct {
	Index uint64
	Data  []byte
}

// PutPayloads stores entry data for the Raft log, in one transaction,
// replacing what an index held before (a follower overwriting entries its
// leader did not commit). Replacing a payload that batches still refer to
// is refused: committed entries never change.
func (s *Store) PutPayloads(ps []Payload) error {
	return s.update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPayloads)
		for _, p := range ps {
			key := putUint64(p.Index)
			if root.Bucket(key) != nil {
				if u := getPayloadUse(tx, key); u.refs > 0 {
					return fmt.Errorf("replace payload %d: %d stored batches refer to it", p.Index, u.refs)
				}
				if err := root.DeleteBucket(key); err != nil {
					return err
				}
			}
			nb, err := root.CreateBucket(key)
			if err != nil {
				return err
			}
			if err := nb.Put(keyPayloadData, p.Data); err != nil {
				return err
			}
			if err := setPayloadUse(tx, key, payloadUse{held: true}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Payload returns a copy of the data of entry index, or
// ErrMissingPayload.
func (s *Store) Payload(index uint64) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketPayloads).Bucket(putUint64(index))
		if nb == nil {
			return fmt.Errorf("entry %d: %w", index, ErrMissingPayload)
		}
		out = append([]byte(nil), nb.Get(keyPayloadData)...)
		return nil
	})
	return out, err
}

// ReleasePayloads records that the Raft log no longer holds entries min to
// max (inclusive), deleting the payloads no stored batch refers to.
func (s *Store) ReleasePayloads(min, max uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		var keys [][]byte
		c := tx.Bucket(bucketPayloadRefs).Cursor()
		for k, _ := c.Seek(putUint64(min)); k != nil && getUint64(k) <= max; k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			u := getPayloadUse(tx, k)
			u.held = false
			if err := setPayloadUse(tx, k, u); err != nil {
				return fmt.Errorf("release payload %d: %w", getUint64(k), err)
			}
		}
		return nil
	})
}

// payloadRef locates a batch's records inside a payload.
type payloadRef struct {
	index  uint64
	offset uint32 // of the records section (the batch after its header) in the payload
	length uint32
}

const payloadRefLen = 16

func (r payloadRef) encode() []byte {
	b := make([]byte, 0, payloadRefLen)
	b = binary.BigEndian.AppendUint64(b, r.index)
	b = binary.BigEndian.AppendUint32(b, r.offset)
	return binary.BigEndian.AppendUint32(b, r.length)
}

func decodePayloadRef(b []byte) (payloadRef, bool) {
	if len(b) != payloadRefLen {
		return payloadRef{}, false
	}
	return payloadRef{
		index:  binary.BigEndian.Uint64(b),
		offset: binary.BigEndian.Uint32(b[8:]),
		length: binary.BigEndian.Uint32(b[12:]),
	}, true
}

// payloadBytes returns the referenced records, aliasing bbolt's memory.
func payloadBytes(tx *bolt.Tx, r payloadRef) ([]byte, error) {
	nb := tx.Bucket(bucketPayloads).Bucket(putUint64(r.index))
	if nb == nil {
		return nil, fmt.Errorf("entry %d: %w", r.index, ErrMissingPayload)
	}
	d := nb.Get(keyPayloadData)
	if end := uint64(r.offset) + uint64(r.length); end > uint64(len(d)) {
		return nil, fmt.Errorf("entry %d: batch ends at %d of a %d-byte payload: %w", r.index, end, len(d), ErrMissingPayload)
	}
	return d[r.offset : r.offset+r.length], nil
}

// addPayloadRefs adds delta to the number of batches referring to payload
// index, deleting the payload when that reaches zero and the Raft log no
// longer holds it.
func addPayloadRefs(tx *bolt.Tx, index uint64, delta int64) error {
	key := putUint64(index)
	if tx.Bucket(bucketPayloads).Bucket(key) == nil {
		return fmt.Errorf("entry %d: %w", index, ErrMissingPayload)
	}
	u := getPayloadUse(tx, key)
	n := int64(u.refs) + delta
	if n < 0 {
		return fmt.Errorf("payload %d: reference count below zero", index)
	}
	u.refs = uint64(n)
	return setPayloadUse(tx, key, u)
}

// update runs fn in a write transaction, like view.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errors.New("store closed")
	}
	return s.db.Update(fn)
}

// PayloadStats is what the store holds as Raft payloads.
type PayloadStats struct {
	Count int   // payloads stored
	Bytes int64 // their data
	// Referenced counts the payloads stored batches refer to; the rest
	// only the Raft log holds, until it compacts them away.
	Referenced int
}

// PayloadStats counts the stored payloads; it walks them all (a cursor
// step and a length per payload), so it is for metrics and tests.
func (s *Store) PayloadStats() (PayloadStats, error) {
	var st PayloadStats
	err := s.view(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketPayloads)
		return root.ForEachBucket(func(k []byte) error {
			st.Count++
			st.Bytes += int64(len(root.Bucket(k).Get(keyPayloadData)))
			if getPayloadUse(tx, k).refs > 0 {
				st.Referenced++
			}
			return nil
		})
	})
	return st, err
}
