package storage

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// keyBatch is the key of the batch inside its nested bucket.
var keyBatch = []byte("b")

// partLog is one partition's batches: a bucket with one nested bucket per
// batch, keyed by base offset, holding the batch under keyBatch.
//
// Why nested: bbolt rewrites a whole leaf, values included, whenever a key
// is added to it, and it keeps at least two keys per leaf. Batches stored
// side by side as plain values were therefore written two to four times
// each as later batches were appended (measured 4.5x bytes written per byte
// for 1 MiB batches). A nested bucket gives each large batch pages of its
// own that later appends never touch; small batches stay inline in the
// parent leaf, where a rewrite costs at most a page.
type partLog struct{ b *bolt.Bucket }

func (l partLog) put(base int64, batch []byte) error {
	nb, err := l.b.CreateBucket(offsetKey(base))
	if err != nil {
		return err
	}
	return nb.Put(keyBatch, batch)
}

// value returns the batch stored under key k of the log bucket.
func (l partLog) value(k []byte) []byte {
	nb := l.b.Bucket(k)
	if nb == nil {
		return nil
	}
	return nb.Get(keyBatch)
}

func (l partLog) delete(k []byte) error { return l.b.DeleteBucket(k) }

func (l partLog) cursor() logCursor { return logCursor{c: l.b.Cursor(), l: l} }

// logCursor walks a partLog in offset order, yielding base-offset keys and
// batches. Batches alias bbolt's memory: copy them before the transaction
// ends.
type logCursor struct {
	c *bolt.Cursor
	l partLog
}

func (c logCursor) out(k, _ []byte) ([]byte, []byte) {
	if k == nil {
		return nil, nil
	}
	return k, c.l.value(k)
}

func (c logCursor) first() ([]byte, []byte)             { return c.out(c.c.First()) }
func (c logCursor) last() ([]byte, []byte)              { return c.out(c.c.Last()) }
func (c logCursor) next() ([]byte, []byte)              { return c.out(c.c.Next()) }
func (c logCursor) prev() ([]byte, []byte)              { return c.out(c.c.Prev()) }
func (c logCursor) seek(k []byte) ([]byte, []byte)      { return c.out(c.c.Seek(k)) }
func (c logCursor) seekOffset(o int64) ([]byte, []byte) { return c.seek(offsetKey(o)) }

// keysFrom collects the keys of batches with base offsets in [from, to),
// for deleting after the walk (bbolt cursors must not delete buckets).
func (l partLog) keysIn(from, to int64) (keys [][]byte, size int64) {
	c := l.cursor()
	for k, v := c.seekOffset(from); k != nil && int64(getUint64(k)) < to; k, v = c.next() {
		keys = append(keys, bytes.Clone(k))
		size += int64(len(v))
	}
	return keys, size
}

func logOf(pb *bolt.Bucket) partLog { return partLog{b: pb.Bucket(bucketLog)} }
