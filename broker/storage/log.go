package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
)

// Keys inside a batch's nested bucket: the whole batch, or its stamped
// header and a reference to its records in a Raft payload (payload.go).
var (
	keyBatch = []byte("b")
	keyHead  = []byte("h")
	keyRef   = []byte("r")
)

// partLog is one partition's batches: a bucket with one nested bucket per
// batch, keyed by base offset.
//
// Why nested: bbolt rewrites a whole leaf, values included, whenever a key
// is added to it, and it keeps at least two keys per leaf. Batches stored
// side by side as plain values were therefore written two to four times
// each as later batches were appended (measured 4.5x bytes written per byte
// for 1 MiB batches). A nested bucket gives each large batch pages of its
// own that later appends never touch; small batches stay inline in the
// parent leaf, where a rewrite costs at most a page.
//
// A batch that came in a large Raft entry is not copied at all: its bucket
// holds the header as stamped on append (base offset, leader epoch,
// LogAppendTime) and where its records lie in the entry's payload, which
// the Raft log store already wrote to this file.
type partLog struct {
	b  *bolt.Bucket
	tx *bolt.Tx
}

// put stores a whole batch.
func (l partLog) put(base int64, batch []byte) error {
	nb, err := l.b.CreateBucket(offsetKey(base))
	if err != nil {
		return err
	}
	return nb.Put(keyBatch, batch)
}

// putRef stores a batch by its stamped header and a reference to its
// records, counting the reference on the payload.
func (l partLog) putRef(base int64, head []byte, ref payloadRef) error {
	nb, err := l.b.CreateBucket(offsetKey(base))
	if err != nil {
		return err
	}
	if err := nb.Put(keyHead, head); err != nil {
		return err
	}
	if err := nb.Put(keyRef, ref.encode()); err != nil {
		return err
	}
	return addPayloadRefs(l.tx, ref.index, 1)
}

// stored is one batch as the log holds it: head is the whole batch, or its
// header with the records in body. Both alias bbolt's memory.
type stored struct {
	head, body []byte
	err        error // the batch's payload is missing or short
}

func (s stored) len() int { return len(s.head) + len(s.body) }

// appendTo appends the whole batch to buf.
func (s stored) appendTo(buf []byte) []byte { return append(append(buf, s.head...), s.body...) }

// whole returns the batch in one piece, copying only a referenced one.
func (s stored) whole() []byte {
	if s.body == nil {
		return s.head
	}
	return s.appendTo(make([]byte, 0, s.len()))
}

// header parses the batch's header, checking it against the batch's size.
func (s stored) header() (BatchHeader, error) {
	if s.err != nil {
		return BatchHeader{}, s.err
	}
	return parseBatchHeader(s.head, s.len())
}

// value returns the batch stored under key k of the log bucket.
func (l partLog) value(k []byte) stored {
	nb := l.b.Bucket(k)
	if nb == nil {
		return stored{}
	}
	if b := nb.Get(keyBatch); b != nil {
		return stored{head: b}
	}
	ref, ok := decodePayloadRef(nb.Get(keyRef))
	if !ok {
		return stored{err: ErrCorruptBatch}
	}
	body, err := payloadBytes(l.tx, ref)
	return stored{head: nb.Get(keyHead), body: body, err: err}
}

// delete removes the batch under k, releasing its payload reference.
func (l partLog) delete(k []byte) error {
	if nb := l.b.Bucket(k); nb != nil {
		if ref, ok := decodePayloadRef(nb.Get(keyRef)); ok {
			if err := addPayloadRefs(l.tx, ref.index, -1); err != nil {
				return err
			}
		}
	}
	return l.b.DeleteBucket(k)
}

// releaseAll drops every payload reference of the log, before the whole
// log bucket is deleted with its topic.
func (l partLog) releaseAll() error {
	return l.b.ForEachBucket(func(k []byte) error {
		if ref, ok := decodePayloadRef(l.b.Bucket(k).Get(keyRef)); ok {
			return addPayloadRefs(l.tx, ref.index, -1)
		}
		return nil
	})
}

func (l partLog) cursor() logCursor { return logCursor{c: l.b.Cursor(), l: l} }

// logCursor walks a partLog in offset order, yielding base-offset keys and
// batches. Batches alias bbolt's memory: copy them before the transaction
// ends.
type logCursor struct {
	c *bolt.Cursor
	l partLog
}

func (c logCursor) out(k, _ []byte) ([]byte, stored) {
	if k == nil {
		return nil, stored{}
	}
	return k, c.l.value(k)
}

func (c logCursor) first() ([]byte, stored)             { return c.out(c.c.First()) }
func (c logCursor) last() ([]byte, stored)              { return c.out(c.c.Last()) }
func (c logCursor) next() ([]byte, stored)              { return c.out(c.c.Next()) }
func (c logCursor) prev() ([]byte, stored)              { return c.out(c.c.Prev()) }
func (c logCursor) seek(k []byte) ([]byte, stored)      { return c.out(c.c.Seek(k)) }
func (c logCursor) seekOffset(o int64) ([]byte, stored) { return c.seek(offsetKey(o)) }

// keysIn collects the keys of batches with base offsets in [from, to),
// for deleting after the walk (bbolt cursors must not delete buckets).
func (l partLog) keysIn(from, to int64) (keys [][]byte, size int64) {
	c := l.cursor()
	for k, v := c.seekOffset(from); k != nil && int64(getUint64(k)) < to; k, v = c.next() {
		keys = append(keys, bytes.Clone(k))
		size += int64(v.len())
	}
	return keys, size
}

func logOf(pb *bolt.Bucket) partLog { return partLog{b: pb.Bucket(bucketLog), tx: pb.Tx()} }

// stampHead returns a copy of batch's header stamped like [stamp] does
// the whole batch; body is the rest of the batch, which the new CRC of a
// LogAppendTime stamp covers.
func stampHead(batch []byte, base int64, epoch int32, appendTime int64) []byte {
	head := stamp(batch[:BatchHeaderLen:BatchHeaderLen], base, epoch, appendTime)
	if appendTime >= 0 {
		crc := crc32.Update(crc32.Checksum(head[offAttributes:], castagnoli), castagnoli, batch[BatchHeaderLen:])
		binary.BigEndian.PutUint32(head[offCRC:], crc)
	}
	return head
}
