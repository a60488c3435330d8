package storage

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Op identifies a command in the replicated log. Values are part of the
// on-disk format: append new ops, never renumber.
type Op uint8

// The commands of the replicated log.
const (
	OpCreateTopic      Op = 1
	OpDeleteTopic      Op = 2
	OpAppend           Op = 3
	OpInitProducerID   Op = 4
	OpCommitOffsets    Op = 5
	OpDeleteRecords    Op = 6
	OpAlterConfigs     Op = 7
	OpCreatePartitions Op = 8
	OpDeleteGroups     Op = 9
	OpDeleteOffsets    Op = 10
	OpReplaceBatches   Op = 11
	OpNewEpoch         Op = 12
	OpRegisterNode     Op = 13
	OpAlterDefaults    Op = 14
)

func (o Op) String() string {
	switch o {
	case OpCreateTopic:
		return "CreateTopic"
	case OpDeleteTopic:
		return "DeleteTopic"
	case OpAppend:
		return "Append"
	case OpInitProducerID:
		return "InitProducerID"
	case OpCommitOffsets:
		return "CommitOffsets"
	case OpDeleteRecords:
		return "DeleteRecords"
	case OpAlterConfigs:
		return "AlterConfigs"
	case OpCreatePartitions:
		return "CreatePartitions"
	case OpDeleteGroups:
		return "DeleteGroups"
	case OpDeleteOffsets:
		return "DeleteOffsets"
	case OpReplaceBatches:
		return "ReplaceBatches"
	case OpNewEpoch:
		return "NewEpoch"
	case OpRegisterNode:
		return "RegisterNode"
	case OpAlterDefaults:
		return "AlterDefaults"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Command is one state change. Every field is filled by the proposer, so
// applying a command is deterministic.
type Command interface {
	Op() Op
}

// CreateTopic creates a topic. Result: error (nil on success).
type CreateTopic struct {
	Name       string
	ID         [16]byte
	Partitions int32
	Configs    map[string]string `json:",omitempty"`
}

// DeleteTopic deletes a topic and all its data. Result: error.
type DeleteTopic struct {
	Name string
}

// Append appends record batches. Result: [AppendResult].
type Append struct {
	// Now is the proposer's clock in Unix milliseconds, used for
	// LogAppendTime topics.
	Now   int64
	Parts []AppendPart
}

// AppendPart is one v2 record batch for one partition.
type AppendPart struct {
	Topic     string
	Partition int32
	Batch     []byte
}

// InitProducerID hands out a producer ID, or bumps the epoch of an existing
// one when ProducerID is not -1 (KIP-360). Result: [ProducerID].
type InitProducerID struct {
	ProducerID int64
	Epoch      int16
}

// CommitOffsets stores committed offsets of a group. The broker checks
// generations before it proposes. Result: []error, one per offset.
type CommitOffsets struct {
	Group   string
	Now     int64
	Offsets []OffsetCommit
}

// OffsetCommit is one committed offset.
type OffsetCommit struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string `json:",omitempty"`
}

// DeleteRecords moves log start offsets forward (DeleteRecords requests,
// retention). Result: []DeleteRecordsResult.
type DeleteRecords struct {
	Parts []DeleteRecordsPart
}

// DeleteRecordsPart asks that everything below Offset be deleted; Offset -1
// means the high watermark.
type DeleteRecordsPart struct {
	Topic     string
	Partition int32
	Offset    int64
}

// AlterConfigs changes topic configs. With Replace, the topic's configs
// become exactly Set (AlterConfigs); otherwise Set and Delete are applied
// incrementally (IncrementalAlterConfigs). Result: error.
type AlterConfigs struct {
	Topic   string
	Replace bool
	Set     map[string]string `json:",omitempty"`
	Delete  []string          `json:",omitempty"`
}

// CreatePartitions grows a topic to Count partitions. Result: error.
type CreatePartitions struct {
	Topic string
	Count int32
}

// DeleteGroups removes the committed offsets of groups. Result: []error.
type DeleteGroups struct {
	Groups []string
}

// DeleteOffsets removes some committed offsets of a group. Result: []error.
type DeleteOffsets struct {
	Group string
	Parts []TopicPartition
}

// ReplaceBatches replaces the batches whose base offsets lie in [From, To)
// with Batches, each keeping its base offset. Log compaction proposes it.
// Batches must be in offset order, not overlap, have base offsets in
// [From, To) and end before the next stored batch; otherwise nothing
// changes and the result is ErrCorruptBatch. Replacements wholly below the
// log start (retention moved it meanwhile) are dropped. Result: error.
type ReplaceBatches struct {
	Topic     string
	Partition int32
	From, To  int64
	Batches   [][]byte
}

// NewEpoch starts a leader epoch; a new leader proposes it before it serves.
// Result: error.
type NewEpoch struct {
	Epoch int32
}

// RegisterNode records the Kafka address a node advertises, so every
// node's Metadata lists every broker; an empty Addr removes the node.
// Result: nil.
type RegisterNode struct {
	ID   int32
	Addr string `json:",omitempty"`
}

// AlterDefaults changes the cluster-wide defaults of topic configs: the
// value a topic config has on every topic that does not set it, which
// Kafka calls the dynamic cluster-default broker config
// (DYNAMIC_DEFAULT_BROKER_CONFIG) of the topic config's broker synonym.
// Keys are topic config names. With Replace, the defaults become exactly
// Set; otherwise Set and Delete are applied incrementally. Result: error.
type AlterDefaults struct {
	Replace bool
	Set     map[string]string `json:",omitempty"`
	Delete  []string          `json:",omitempty"`
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (CreateTopic) Op() Op      { return OpCreateTopic }
func (DeleteTopic) Op() Op      { return OpDeleteTopic }
func (Append) Op() Op           { return OpAppend }
func (InitProducerID) Op() Op   { return OpInitProducerID }
func (CommitOffsets) Op() Op    { return OpCommitOffsets }
func (DeleteRecords) Op() Op    { return OpDeleteRecords }
func (AlterConfigs) Op() Op     { return OpAlterConfigs }
func (CreatePartitions) Op() Op { return OpCreatePartitions }
func (DeleteGroups) Op() Op     { return OpDeleteGroups }
func (DeleteOffsets) Op() Op    { return OpDeleteOffsets }
func (ReplaceBatches) Op() Op   { return OpReplaceBatches }
func (NewEpoch) Op() Op         { return OpNewEpoch }
func (RegisterNode) Op() Op     { return OpRegisterNode }
func (AlterDefaults) Op() Op    { return OpAlterDefaults }

// Encode serialises a command for the replicated log: one op byte, then the
// payload. Append, the hot path, has a compact binary payload; the rest are
// JSON, which is deterministic for these types (maps are sorted by key).
func Encode(c Command) ([]byte, error) {
	if a, ok := c.(Append); ok {
		return encodeAppend(a), nil
	}
	if a, ok := c.(*Append); ok {
		return encodeAppend(*a), nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.Op(), err)
	}
	return append([]byte{byte(c.Op())}, b...), nil
}

// Decode parses what Encode wrote. Slices of the result may alias b.
func Decode(b []byte) (Command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty entry", ErrCorruptCommand)
	}
	op, payload := Op(b[0]), b[1:]
	switch op {
	case OpAppend:
		a, _, err := decodeAppend(payload)
		if err != nil {
			return nil, err
		}
		return a, nil
	case OpCreateTopic:
		return decodeJSON[CreateTopic](op, payload)
	case OpDeleteTopic:
		return decodeJSON[DeleteTopic](op, payload)
	case OpInitProducerID:
		return decodeJSON[InitProducerID](op, payload)
	case OpCommitOffsets:
		return decodeJSON[CommitOffsets](op, payload)
	case OpDeleteRecords:
		return decodeJSON[DeleteRecords](op, payload)
	case OpAlterConfigs:
		return decodeJSON[AlterConfigs](op, payload)
	case OpCreatePartitions:
		return decodeJSON[CreatePartitions](op, payload)
	case OpDeleteGroups:
		return decodeJSON[DeleteGroups](op, payload)
	case OpDeleteOffsets:
		return decodeJSON[DeleteOffsets](op, payload)
	case OpReplaceBatches:
		return decodeJSON[ReplaceBatches](op, payload)
	case OpNewEpoch:
		return decodeJSON[NewEpoch](op, payload)
	case OpRegisterNode:
		return decodeJSON[RegisterNode](op, payload)
	case OpAlterDefaults:
		return decodeJSON[AlterDefaults](op, payload)
	}
	return nil, fmt.Errorf("%w: unknown op %d", ErrCorruptCommand, uint8(op))
}

// decodeJSON decodes a JSON payload into a command value (never a
// pointer), so callers switch on one form.
func decodeJSON[T Command](op Op, payload []byte) (Command, error) {
	var c T
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptCommand, op, err)
	}
	return c, nil
}

// encodeAppend: op, now int64, count uint32, then per part: topic (uint16
// length + bytes), partition int32, batch (uint32 length + bytes).
func encodeAppend(a Append) []byte {
	n := 1 + 8 + 4
	for _, p := range a.Parts {
		n += 2 + len(p.Topic) + 4 + 4 + len(p.Batch)
	}
	b := make([]byte, 0, n)
	b = append(b, byte(OpAppend))
	b = binary.BigEndian.AppendUint64(b, uint64(a.Now))
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.Parts)))
	for _, p := range a.Parts {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Topic)))
		b = append(b, p.Topic...)
		b = binary.BigEndian.AppendUint32(b, uint32(p.Partition))
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.Batch)))
		b = append(b, p.Batch...)
	}
	return b
}

// decodeAppend also returns where each part's batch starts in the whole
// entry (op byte included): a batch of a payload entry is stored by
// reference to that position (log.go).
func decodeAppend(b []byte) (Append, []int, error) {
	bad := func(what string) (Append, []int, error) {
		return Append{}, nil, fmt.Errorf("%w: Append: truncated %s", ErrCorruptCommand, what)
	}
	if len(b) < 12 {
		return bad("header")
	}
	a := Append{Now: int64(binary.BigEndian.Uint64(b))}
	total := len(b)
	n := binary.BigEndian.Uint32(b[8:])
	b = b[12:]
	if uint64(n) > uint64(len(b)) {
		return bad("part count")
	}
	a.Parts = make([]AppendPart, 0, n)
	at := make([]int, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(b) < 2 {
			return bad("topic length")
		}
		tl := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if len(b) < tl+8 {
			return bad("topic")
		}
		p := AppendPart{Topic: string(b[:tl])}
		b = b[tl:]
		p.Partition = int32(binary.BigEndian.Uint32(b))
		bl := binary.BigEndian.Uint32(b[4:])
		b = b[8:]
		if uint64(bl) > uint64(len(b)) {
			return bad("batch")
		}
		p.Batch = b[:bl:bl]
		at = append(at, 1+total-len(b)) // 1: the op byte before the payload
		b = b[bl:]
		a.Parts = append(a.Parts, p)
	}
	if len(b) != 0 {
		return Append{}, nil, fmt.Errorf("%w: Append: %d trailing bytes", ErrCorruptCommand, len(b))
	}
	return a, at, nil
}
