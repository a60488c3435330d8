package storage

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// TopicInfo describes a topic.
type TopicInfo struct {
	Name       string
	ID         [16]byte
	Partitions int32
	// Configs holds the configs set on the topic; defaults are not included.
	Configs map[string]string
	// Defaults holds the cluster-wide topic config defaults ([AlterDefaults])
	// as of the read, shared between readers: do not modify it.
	Defaults map[string]string
}

// Config returns the effective value of a topic config: set on the topic,
// else the cluster-wide default, else Kafka's default.
func (t TopicInfo) Config(name string) string { return effective(t.Configs, t.Defaults, name) }

// ConfigLong returns the effective value of a numeric topic config.
func (t TopicInfo) ConfigLong(name string) int64 { return effectiveLong(t.Configs, t.Defaults, name) }

func (m *topicMeta) info(defaults map[string]string) TopicInfo {
	return TopicInfo{Name: m.Name, ID: m.ID, Partitions: m.Partitions, Configs: maps.Clone(m.Configs), Defaults: defaults}
}

// Topics lists all topics, sorted by name.
func (s *Store) Topics() []TopicInfo {
	cache := *s.topics.Load()
	out := make([]TopicInfo, 0, len(cache))
	for _, m := range cache {
		out = append(out, m.info(*s.defaults.Load()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Topic looks a topic up by name.
func (s *Store) Topic(name string) (TopicInfo, bool) {
	m, ok := (*s.topics.Load())[name]
	if !ok {
		return TopicInfo{}, false
	}
	return m.info(*s.defaults.Load()), true
}

// TopicByID looks a topic up by its ID.
func (s *Store) TopicByID(id [16]byte) (TopicInfo, bool) {
	for _, m := range *s.topics.Load() {
		if m.ID == id {
			return m.info(*s.defaults.Load()), true
		}
	}
	return TopicInfo{}, false
}

// PartitionOffsets are a partition's bounds.
type PartitionOffsets struct {
	LogStart      int64
	HighWatermark int64
	Bytes         int64
	MaxTimestamp  int64 // -1 if the log is empty
	MaxTsOffset   int64
}

func (s *Store) partView(tx *bolt.Tx, topic string, p int32) (*bolt.Bucket, partState, error) {
	m, ok := (*s.topics.Load())[topic]
	if !ok || p < 0 || p >= m.Partitions {
		return nil, partState{}, ErrUnknownTopic
	}
	tb := tx.Bucket(bucketLogs).Bucket([]byte(topic))
	if tb == nil {
		return nil, partState{}, ErrUnknownTopic
	}
	pb := tb.Bucket(partKey(p))
	if pb == nil {
		return nil, partState{}, ErrUnknownTopic
	}
	st, err := decodePartState(pb.Get(keyState))
	return pb, st, err
}

// Offsets returns a partition's log start offset and high watermark.
func (s *Store) Offsets(topic string, p int32) (PartitionOffsets, error) {
	var out PartitionOffsets
	err := s.view(func(tx *bolt.Tx) error {
		_, st, err := s.partView(tx, topic, p)
		out = PartitionOffsets{LogStart: st.LogStart, HighWatermark: st.Next, Bytes: st.Bytes, MaxTimestamp: st.MaxTimestamp, MaxTsOffset: st.MaxTsOffset}
		return err
	})
	return out, err
}

// ReadResult is what a fetch of one partition returns.
type ReadResult struct {
	// Records holds whole v2 batches, concatenated, as a Fetch response
	// carries them.
	Records       []byte
	HighWatermark int64
	LogStart      int64
}

// Read appends to buf the batches of a partition from the one holding
// offset onwards, stopping before maxBytes would be exceeded, but always
// including the first batch (as Kafka does, so an oversized batch still
// makes progress). An offset equal to the high watermark reads nothing; one
// outside [log start, high watermark] is ErrOffsetOutOfRange.
func (s *Store) Read(topic string, p int32, offset int64, maxBytes int, buf []byte) (ReadResult, error) {
	var out ReadResult
	err := s.view(func(tx *bolt.Tx) error {
		pb, st, err := s.partView(tx, topic, p)
		if err != nil {
			return err
		}
		out.HighWatermark, out.LogStart = st.Next, st.LogStart
		if offset < st.LogStart || offset > st.Next {
			return ErrOffsetOutOfRange
		}
		if offset == st.Next {
			return nil
		}
		cur := logOf(pb).cursor()
		k, v := cur.seekOffset(offset)
		switch {
		case k == nil: // offset lies inside the last batch
			k, v = cur.last()
		case int64(getUint64(k)) > offset: // inside the previous batch, if any
			if pk, pv := cur.prev(); pk != nil {
				k, v = pk, pv
			} else {
				k, v = cur.first()
			}
		}
		// Collect the batches (views into bbolt's map, valid until the
		// transaction ends), then copy them out with one allocation.
		var parts []stored
		n := 0
		for ; k != nil; k, v = cur.next() {
			if v.err != nil {
				return fmt.Errorf("read %s/%d batch at %d: %w", topic, p, getUint64(k), v.err)
			}
			if n > 0 && n+v.len() > maxBytes {
				break
			}
			if n == 0 && lastOffsetOf(v.head) < offset {
				continue // compaction emptied this range
			}
			parts = append(parts, v)
			n += v.len()
		}
		buf = slices.Grow(buf, n)
		for _, p := range parts {
			buf = p.appendTo(buf)
		}
		return nil
	})
	out.Records = buf
	return out, err
}

func lastOffsetOf(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b)) + int64(int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])))
}

// Batches calls fn for every stored batch of a partition with a base offset
// in [from, to), in order; fn must not retain b. Compaction and retention
// use it.
func (s *Store) Batches(topic string, p int32, from, to int64, fn func(b []byte) error) error {
	return s.eachBatch(topic, p, from, to, func(v stored) (error, error) {
		if v.err != nil {
			return v.err, nil
		}
		return nil, fn(v.whole())
	})
}

// BatchHeaders calls fn with the header and size of every stored batch of
// a partition with a base offset in [from, to), in order, without reading
// the records: what retention and the compaction scan need, every few
// seconds, of logs that may be GiBs.
func (s *Store) BatchHeaders(topic string, p int32, from, to int64, fn func(h BatchHeader, size int) error) error {
	return s.eachBatch(topic, p, from, to, func(v stored) (error, error) {
		h, err := v.header()
		if err != nil {
			return err, nil
		}
		return nil, fn(h, v.len())
	})
}

// eachBatch walks a partition's batches with base offsets in [from, to).
// fn returns a problem with the stored batch, which eachBatch names by
// partition and offset, or its caller's own error, passed on as it is.
func (s *Store) eachBatch(topic string, p int32, from, to int64, fn func(v stored) (bad, caller error)) error {
	return s.view(func(tx *bolt.Tx) error {
		pb, _, err := s.partView(tx, topic, p)
		if err != nil {
			return err
		}
		cur := logOf(pb).cursor()
		for k, v := cur.seekOffset(from); k != nil && int64(getUint64(k)) < to; k, v = cur.next() {
			bad, err := fn(v)
			if bad != nil {
				return fmt.Errorf("read %s/%d batch at %d: %w", topic, p, getUint64(k), bad)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// OffsetForTimestamp returns the first batch whose max timestamp is at or
// after ts: the offset ListOffsets answers (the batch's base offset, or the
// fetch offset if that is later), and its timestamp. ok is false when no
// record is that late.
func (s *Store) OffsetForTimestamp(topic string, p int32, ts int64) (offset, timestamp int64, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		pb, _, err := s.partView(tx, topic, p)
		if err != nil {
			return err
		}
		cur := logOf(pb).cursor()
		for k, v := cur.first(); k != nil; k, v = cur.next() {
			if v.err != nil {
				return fmt.Errorf("read %s/%d batch at %d: %w", topic, p, getUint64(k), v.err)
			}
			h, err := v.header()
			if err != nil {
				continue
			}
			if h.MaxTimestamp >= ts {
				offset, timestamp, ok = h.BaseOffset, h.MaxTimestamp, true
				return nil
			}
		}
		return nil
	})
	return offset, timestamp, ok, err
}

// EpochEndOffset answers OffsetForLeaderEpoch: the largest epoch at or
// below epoch that wrote to the partition, and the offset where it ended
// (the start of the next epoch, or the high watermark for the latest). An
// epoch before any recorded one returns (-1, -1).
func (s *Store) EpochEndOffset(topic string, p int32, epoch int32) (int32, int64, error) {
	var outEpoch int32 = -1
	var end int64 = -1
	err := s.view(func(tx *bolt.Tx) error {
		_, st, err := s.partView(tx, topic, p)
		if err != nil {
			return err
		}
		if len(st.Epochs) == 0 {
			if cur := s.Epoch(); epoch >= cur {
				outEpoch, end = cur, st.Next
			}
			return nil
		}
		for i := len(st.Epochs) - 1; i >= 0; i-- {
			e := st.Epochs[i]
			if e.Epoch <= epoch {
				outEpoch, end = e.Epoch, st.Next
				if i+1 < len(st.Epochs) {
					end = st.Epochs[i+1].Start
				}
				return nil
			}
		}
		return nil
	})
	return outEpoch, end, err
}

// CommittedOffset is an offset a group committed.
type CommittedOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  int64
}

// GroupOffsets returns a group's committed offsets, sorted by topic and
// partition. A group with none returns an empty slice.
func (s *Store) GroupOffsets(group string) ([]CommittedOffset, error) {
	var out []CommittedOffset
	err := s.view(func(tx *bolt.Tx) error {
		gb := tx.Bucket(bucketGroups).Bucket([]byte(group))
		if gb == nil {
			return nil
		}
		return gb.ForEach(func(k, v []byte) error {
			// topic, 0, 4-byte partition (groupKey): the partition may
			// itself hold zero bytes, so the separator is found from the end.
			i := len(k) - 5
			if i < 0 || k[i] != 0 {
				return nil
			}
			var ov offsetValue
			if err := json.Unmarshal(v, &ov); err != nil {
				return err
			}
			out = append(out, CommittedOffset{
				Topic: string(k[:i]), Partition: int32(binary.BigEndian.Uint32(k[i+1:])),
				Offset: ov.Offset, LeaderEpoch: ov.LeaderEpoch, Metadata: ov.Metadata, CommitTime: ov.CommitTime,
			})
			return nil
		})
	})
	return out, err
}

// Groups lists the groups that have committed offsets.
func (s *Store) Groups() ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGroups).ForEach(func(k, v []byte) error {
			if v == nil {
				out = append(out, string(k))
			}
			return nil
		})
	})
	return out, err
}

// bucketNodes, inside the meta bucket, maps node IDs to the Kafka address
// each advertises ([RegisterNode]).
var bucketNodes = []byte("nodes")

// RegisteredNode is a node and the Kafka address it advertises.
type RegisteredNode struct {
	ID   int32
	Addr string
}

// Nodes lists the registered nodes, sorted by ID.
func (s *Store) Nodes() ([]RegisteredNode, error) {
	var out []RegisteredNode
	err := s.view(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketMeta).Bucket(bucketNodes)
		if nb == nil {
			return nil
		}
		return nb.ForEach(func(k, v []byte) error {
			if len(k) == 4 {
				out = append(out, RegisteredNode{ID: int32(binary.BigEndian.Uint32(k)), Addr: string(v)})
			}
			return nil
		})
	})
	return out, err
}
