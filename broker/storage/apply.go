package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"

	bolt "go.etcd.io/bbolt"
)

// AppendResult is the result of an [Append], one entry per part.
type AppendResult struct {
	Parts []PartResult
}

// PartResult is the outcome of appending one batch.
type PartResult struct {
	BaseOffset     int64
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
	Duplicate      bool // an idempotent retry answered with the original offset
	Err            error
}

// ProducerID is the result of [InitProducerID].
type ProducerID struct {
	ID    int64
	Epoch int16
}

// DeleteRecordsResult is one partition's result of [DeleteRecords].
type DeleteRecordsResult struct {
	LowWatermark int64
	Err          error
}

// applier applies commands inside one bbolt write transaction.
type applier struct {
	store *Store
	tx    *bolt.Tx
	entry Entry // the entry being applied
	// at holds, for an Append of a payload entry, where each part's batch
	// starts in the entry's data.
	at         []int
	cache      topicCache
	cacheDirty bool
	epoch      int32
	// defaults are the cluster-wide topic config defaults, replaced (not
	// modified) by AlterDefaults and published after commit when dirty.
	defaults      map[string]string
	defaultsDirty bool
}

// decode decodes entry e and makes it the one being applied.
func (a *applier) decode(e Entry) (Command, error) {
	a.entry, a.at = e, nil
	if e.Payload && len(e.Data) > 0 && Op(e.Data[0]) == OpAppend {
		c, at, err := decodeAppend(e.Data[1:])
		a.at = at
		return c, err
	}
	return Decode(e.Data)
}

// apply returns the command's result. An error return is fatal (the store
// itself is broken); errors that belong to the request go in the result.
func (a *applier) apply(c Command) (any, error) {
	switch c := c.(type) {
	case Append:
		return a.append(c)
	case CreateTopic:
		return a.createTopic(c)
	case DeleteTopic:
		return a.deleteTopic(c)
	case InitProducerID:
		return a.initProducerID(c)
	case CommitOffsets:
		return a.commitOffsets(c)
	case DeleteRecords:
		return a.deleteRecords(c)
	case AlterConfigs:
		return a.alterConfigs(c)
	case CreatePartitions:
		return a.createPartitions(c)
	case DeleteGroups:
		return a.deleteGroups(c)
	case DeleteOffsets:
		return a.deleteOffsets(c)
	case ReplaceBatches:
		return a.replaceBatches(c)
	case NewEpoch:
		if c.Epoch > a.epoch {
			a.epoch = c.Epoch
		}
		return nil, nil
	case RegisterNode:
		return a.registerNode(c)
	case AlterDefaults:
		return a.alterDefaults(c)
	}
	return nil, fmt.Errorf("%w: no apply for %T", ErrCorruptCommand, c)
}

// setTopics makes the cache writable (copy on first write) and marks it
// for publishing after commit.
func (a *applier) setTopic(name string, m *topicMeta) {
	if !a.cacheDirty {
		a.cache = maps.Clone(a.cache)
		a.cacheDirty = true
	}
	if m == nil {
		delete(a.cache, name)
	} else {
		a.cache[name] = m
	}
}

func (a *applier) putTopic(m *topicMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := a.tx.Bucket(bucketTopics).Put([]byte(m.Name), b); err != nil {
		return err
	}
	a.setTopic(m.Name, m)
	return nil
}

func (a *applier) createTopic(c CreateTopic) (any, error) {
	if _, ok := a.cache[c.Name]; ok {
		return ErrTopicExists, nil
	}
	if err := ValidateTopicName(c.Name); err != nil {
		return err, nil
	}
	if c.Partitions <= 0 {
		return fmt.Errorf("%w: %d", ErrInvalidPartitions, c.Partitions), nil
	}
	for k, v := range c.Configs {
		if err := ValidateConfig(k, v); err != nil {
			return err, nil
		}
	}
	tb, err := a.tx.Bucket(bucketLogs).CreateBucket([]byte(c.Name))
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", c.Name, err)
	}
	if err := addPartitions(tb, 0, c.Partitions); err != nil {
		return nil, fmt.Errorf("create topic %s: %w", c.Name, err)
	}
	m := &topicMeta{Name: c.Name, ID: c.ID, Partitions: c.Partitions, Configs: c.Configs}
	return nil, a.putTopic(m)
}

func addPartitions(tb *bolt.Bucket, from, to int32) error {
	for p := from; p < to; p++ {
		pb, err := tb.CreateBucket(partKey(p))
		if err != nil {
			return err
		}
		if _, err := pb.CreateBucket(bucketLog); err != nil {
			return err
		}
		if _, err := pb.CreateBucket(bucketPIDs); err != nil {
			return err
		}
		if err := pb.Put(keyState, newPartState().encode()); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) deleteTopic(c DeleteTopic) (any, error) {
	if _, ok := a.cache[c.Name]; !ok {
		return ErrUnknownTopic, nil
	}
	tb := a.tx.Bucket(bucketLogs).Bucket([]byte(c.Name))
	if err := tb.ForEachBucket(func(k []byte) error { return logOf(tb.Bucket(k)).releaseAll() }); err != nil {
		return nil, fmt.Errorf("delete topic %s: %w", c.Name, err)
	}
	if err := a.tx.Bucket(bucketLogs).DeleteBucket([]byte(c.Name)); err != nil {
		return nil, fmt.Errorf("delete topic %s: %w", c.Name, err)
	}
	if err := a.tx.Bucket(bucketTopics).Delete([]byte(c.Name)); err != nil {
		return nil, err
	}
	a.setTopic(c.Name, nil)
	return nil, nil
}

func (a *applier) createPartitions(c CreatePartitions) (any, error) {
	m, ok := a.cache[c.Topic]
	if !ok {
		return ErrUnknownTopic, nil
	}
	if c.Count <= m.Partitions {
		return fmt.Errorf("%w: topic %s has %d partitions, cannot go to %d", ErrInvalidPartitions, c.Topic, m.Partitions, c.Count), nil
	}
	tb := a.tx.Bucket(bucketLogs).Bucket([]byte(c.Topic))
	if err := addPartitions(tb, m.Partitions, c.Count); err != nil {
		return nil, fmt.Errorf("create partitions %s: %w", c.Topic, err)
	}
	n := *m
	n.Partitions = c.Count
	return nil, a.putTopic(&n)
}

func (a *applier) alterConfigs(c AlterConfigs) (any, error) {
	m, ok := a.cache[c.Topic]
	if !ok {
		return ErrUnknownTopic, nil
	}
	next := map[string]string{}
	if !c.Replace {
		maps.Copy(next, m.Configs)
	}
	for _, k := range c.Delete {
		delete(next, k)
	}
	for k, v := range c.Set {
		if err := ValidateConfig(k, v); err != nil {
			return err, nil
		}
		next[k] = v
	}
	n := *m
	n.Configs = next
	if len(next) == 0 {
		n.Configs = nil
	}
	return nil, a.putTopic(&n)
}

// partition returns the bucket of a partition, or nil if it does not exist.
func (a *applier) partition(topic string, p int32) (*topicMeta, *bolt.Bucket) {
	m, ok := a.cache[topic]
	if !ok || p < 0 || p >= m.Partitions {
		return nil, nil
	}
	tb := a.tx.Bucket(bucketLogs).Bucket([]byte(topic))
	if tb == nil {
		return nil, nil
	}
	return m, tb.Bucket(partKey(p))
}

func (a *applier) append(c Append) (any, error) {
	res := AppendResult{Parts: make([]PartResult, len(c.Parts))}
	for i, p := range c.Parts {
		at := -1
		if a.at != nil {
			at = a.at[i]
		}
		r, err := a.appendPart(c.Now, p, at)
		if err != nil {
			return nil, fmt.Errorf("append %s/%d: %w", p.Topic, p.Partition, err)
		}
		res.Parts[i] = r
	}
	return res, nil
}

// appendPart appends one batch; at is where it starts in the payload of
// the entry being applied, or -1 to store it whole.
func (a *applier) appendPart(now int64, p AppendPart, at int) (PartResult, error) {
	r := PartResult{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	m, pb := a.partition(p.Topic, p.Partition)
	if pb == nil {
		r.Err = ErrUnknownTopic
		return r, nil
	}
	st, err := decodePartState(pb.Get(keyState))
	if err != nil {
		return r, err
	}
	r.LogStartOffset = st.LogStart
	h, err := ParseBatchHeader(p.Batch)
	if err != nil {
		r.Err = err
		return r, nil
	}
	if max := effectiveLong(m.Configs, a.defaults, "max.message.bytes"); int64(len(p.Batch)) > max {
		r.Err = fmt.Errorf("%w: batch of %d bytes, max.message.bytes is %d", ErrMessageTooLarge, len(p.Batch), max)
		return r, nil
	}
	if err := checkTimestamps(m.Configs, a.defaults, h, now); err != nil {
		r.Err = err
		return r, nil
	}
	pids := pb.Bucket(bucketPIDs)
	var ps producerState
	var pidKey []byte
	idempotent := h.ProducerID >= 0 && h.BaseSequence >= 0
	if idempotent {
		pidKey = putUint64(uint64(h.ProducerID))
		raw := pids.Get(pidKey)
		if raw != nil {
			if ps, err = decodeProducerState(raw); err != nil {
				return r, err
			}
		}
		verdict, orig, err := ps.check(raw != nil, h)
		if err != nil {
			r.Err = err
			return r, nil
		}
		if verdict == seqDuplicate {
			r.BaseOffset, r.Duplicate = orig.BaseOffset, true
			if effective(m.Configs, a.defaults, "message.timestamp.type") == "LogAppendTime" {
				r.LogAppendTime = orig.Timestamp
			}
			return r, nil
		}
	}
	appendTime := int64(-1)
	ts := h.MaxTimestamp
	if effective(m.Configs, a.defaults, "message.timestamp.type") == "LogAppendTime" {
		appendTime, ts = now, now
		r.LogAppendTime = now
	}
	base := st.Next
	st.noteEpoch(a.epoch)
	if at >= 0 {
		head := stampHead(p.Batch, base, a.epoch, appendTime)
		ref := payloadRef{index: a.entry.Index, offset: uint32(at + BatchHeaderLen), length: uint32(len(p.Batch) - BatchHeaderLen)}
		if err := logOf(pb).putRef(base, head, ref); err != nil {
			return r, err
		}
	} else if err := logOf(pb).put(base, stamp(p.Batch, base, a.epoch, appendTime)); err != nil {
		return r, err
	}
	st.Next = base + int64(h.LastOffsetDelta) + 1
	st.Bytes += int64(len(p.Batch))
	if ts > st.MaxTimestamp {
		st.MaxTimestamp, st.MaxTsOffset = ts, base
	}
	if err := pb.Put(keyState, st.encode()); err != nil {
		return r, err
	}
	if idempotent {
		ps.record(h, base, ts)
		if err := pids.Put(pidKey, ps.encode()); err != nil {
			return r, err
		}
	}
	r.BaseOffset = base
	return r, nil
}

func (a *applier) initProducerID(c InitProducerID) (any, error) {
	meta := a.tx.Bucket(bucketMeta)
	next := int64(getUint64(meta.Get(keyNextPID)))
	if c.ProducerID >= 0 && c.ProducerID < next && c.Epoch >= 0 && c.Epoch < 32767 {
		return ProducerID{ID: c.ProducerID, Epoch: c.Epoch + 1}, nil
	}
	if err := meta.Put(keyNextPID, putUint64(uint64(next+1))); err != nil {
		return nil, err
	}
	return ProducerID{ID: next, Epoch: 0}, nil
}

// offsetValue is a committed offset as stored.
type offsetValue struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string `json:",omitempty"`
	CommitTime  int64
}

func groupKey(topic string, p int32) []byte {
	return append(append([]byte(topic), 0), partKey(p)...)
}

// validGroupKey reports whether a group ID can name a bucket: bbolt keys
// are 1 to MaxKeySize bytes. (Kafka allows "" for OffsetCommit; kbox
// refuses it with INVALID_GROUP_ID.)
func validGroupKey(g string) bool { return g != "" && len(g) <= bolt.MaxKeySize }

func (a *applier) commitOffsets(c CommitOffsets) (any, error) {
	errs := make([]error, len(c.Offsets))
	if !validGroupKey(c.Group) {
		for i := range errs {
			errs[i] = fmt.Errorf("%w: %d bytes", ErrInvalidGroupID, len(c.Group))
		}
		return errs, nil
	}
	gb, err := a.tx.Bucket(bucketGroups).CreateBucketIfNotExists([]byte(c.Group))
	if err != nil {
		return nil, fmt.Errorf("commit offsets for %s: %w", c.Group, err)
	}
	for i, o := range c.Offsets {
		if m, ok := a.cache[o.Topic]; !ok || o.Partition < 0 || o.Partition >= m.Partitions {
			errs[i] = ErrUnknownTopic
			continue
		}
		v, _ := json.Marshal(offsetValue{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTime: c.Now})
		if err := gb.Put(groupKey(o.Topic, o.Partition), v); err != nil {
			return nil, err
		}
	}
	return errs, nil
}

func (a *applier) deleteGroups(c DeleteGroups) (any, error) {
	errs := make([]error, len(c.Groups))
	groups := a.tx.Bucket(bucketGroups)
	for i, g := range c.Groups {
		if !validGroupKey(g) {
			errs[i] = ErrUnknownGroup
			continue
		}
		err := groups.DeleteBucket([]byte(g))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			errs[i] = ErrUnknownGroup
		} else if err != nil {
			return nil, err
		}
	}
	return errs, nil
}

func (a *applier) deleteOffsets(c DeleteOffsets) (any, error) {
	errs := make([]error, len(c.Parts))
	var gb *bolt.Bucket
	if validGroupKey(c.Group) {
		gb = a.tx.Bucket(bucketGroups).Bucket([]byte(c.Group))
	}
	for i, p := range c.Parts {
		if gb == nil {
			errs[i] = ErrUnknownGroup
			continue
		}
		if err := gb.Delete(groupKey(p.Topic, p.Partition)); err != nil {
			return nil, err
		}
	}
	return errs, nil
}

func (a *applier) deleteRecords(c DeleteRecords) (any, error) {
	res := make([]DeleteRecordsResult, len(c.Parts))
	for i, p := range c.Parts {
		_, pb := a.partition(p.Topic, p.Partition)
		if pb == nil {
			res[i] = DeleteRecordsResult{LowWatermark: -1, Err: ErrUnknownTopic}
			continue
		}
		st, err := decodePartState(pb.Get(keyState))
		if err != nil {
			return nil, err
		}
		off := p.Offset
		if off == -1 {
			off = st.Next
		}
		if off < 0 || off > st.Next {
			res[i] = DeleteRecordsResult{LowWatermark: st.LogStart, Err: ErrOffsetOutOfRange}
			continue
		}
		if off > st.LogStart {
			st.LogStart = off
			if err := trimBelow(pb, &st); err != nil {
				return nil, err
			}
			if err := pb.Put(keyState, st.encode()); err != nil {
				return nil, err
			}
		}
		res[i] = DeleteRecordsResult{LowWatermark: st.LogStart}
	}
	return res, nil
}

// trimBelow deletes the batches that lie wholly below st.LogStart.
func trimBelow(pb *bolt.Bucket, st *partState) error {
	log := logOf(pb)
	for {
		k, v := log.cursor().first()
		if k == nil {
			return nil
		}
		h, err := v.header()
		if err != nil {
			return fmt.Errorf("stored batch at %d: %w", getUint64(k), err)
		}
		if h.LastOffset() >= st.LogStart {
			return nil
		}
		st.Bytes -= int64(v.len())
		if err := log.delete(bytes.Clone(k)); err != nil {
			return err
		}
	}
}

func (a *applier) replaceBatches(c ReplaceBatches) (any, error) {
	_, pb := a.partition(c.Topic, c.Partition)
	if pb == nil {
		return ErrUnknownTopic, nil
	}
	st, err := decodePartState(pb.Get(keyState))
	if err != nil {
		return nil, err
	}
	if c.To > st.Next || c.From > c.To {
		return fmt.Errorf("%w: range [%d, %d) is past the high watermark %d", ErrOffsetOutOfRange, c.From, c.To, st.Next), nil
	}
	lb := logOf(pb)
	// The first batch at or after To bounds what the replacements may cover.
	limit := st.Next
	if k, _ := lb.cursor().seekOffset(c.To); k != nil {
		limit = int64(getUint64(k))
	}
	// Check every replacement before changing anything, so a refused
	// command leaves the log as it was.
	keep := make([][]byte, 0, len(c.Batches))
	prevLast := c.From - 1
	for _, b := range c.Batches {
		h, err := ParseBatchHeader(b)
		if err != nil {
			return err, nil
		}
		if h.BaseOffset <= prevLast || h.BaseOffset >= c.To || h.LastOffset() >= limit {
			return fmt.Errorf("%w: replacement batch [%d, %d] overlaps another or lies outside [%d, %d)", ErrCorruptBatch, h.BaseOffset, h.LastOffset(), c.From, c.To), nil
		}
		prevLast = h.LastOffset()
		if h.LastOffset() < st.LogStart {
			continue // retention deleted it meanwhile
		}
		keep = append(keep, b)
	}
	doomed, size := lb.keysIn(c.From, c.To)
	st.Bytes -= size
	for _, k := range doomed {
		if err := lb.delete(k); err != nil {
			return nil, err
		}
	}
	for _, b := range keep {
		cp := bytes.Clone(b)
		if err := lb.put(int64(getUint64(cp)), cp); err != nil {
			return nil, err
		}
		st.Bytes += int64(len(cp))
	}
	return nil, pb.Put(keyState, st.encode())
}

// registerNode stores (or, with an empty address, removes) a node's
// advertised Kafka address in the meta bucket's nodes bucket.
func (a *applier) registerNode(c RegisterNode) (any, error) {
	nb, err := a.tx.Bucket(bucketMeta).CreateBucketIfNotExists(bucketNodes)
	if err != nil {
		return nil, fmt.Errorf("register node %d: %w", c.ID, err)
	}
	if c.Addr == "" {
		return nil, nb.Delete(partKey(c.ID))
	}
	return nil, nb.Put(partKey(c.ID), []byte(c.Addr))
}

// checkTimestamps applies message.timestamp.after.max.ms and
// message.timestamp.before.max.ms to a CreateTime batch, at batch level:
// its max timestamp may not be too far ahead, its first not too far behind.
func checkTimestamps(configs, defaults map[string]string, h BatchHeader, now int64) error {
	if effective(configs, defaults, "message.timestamp.type") == "LogAppendTime" || h.NumRecords == 0 {
		return nil
	}
	if after := effectiveLong(configs, defaults, "message.timestamp.after.max.ms"); after < math.MaxInt64-now && h.MaxTimestamp > now+after {
		return fmt.Errorf("%w: timestamp %d is more than message.timestamp.after.max.ms=%d ahead of the broker's clock", ErrInvalidTimestamp, h.MaxTimestamp, after)
	}
	if before := effectiveLong(configs, defaults, "message.timestamp.before.max.ms"); before < now && h.BaseTimestamp >= 0 && h.BaseTimestamp < now-before {
		return fmt.Errorf("%w: timestamp %d is more than message.timestamp.before.max.ms=%d behind the broker's clock", ErrInvalidTimestamp, h.BaseTimestamp, before)
	}
	return nil
}
