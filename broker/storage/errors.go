package storage

import "errors"

// Errors returned in command results and by reads. The broker maps each one
// to a Kafka error code in one place (broker/kerr.go).
var (
	// ErrUnknownTopic means the topic or partition does not exist.
	ErrUnknownTopic = errors.New("unknown topic or partition")
	// ErrTopicExists means a topic of that name already exists.
	ErrTopicExists = errors.New("topic already exists")
	// ErrInvalidTopic means the topic name is not a legal Kafka topic name.
	ErrInvalidTopic = errors.New("invalid topic name")
	// ErrInvalidPartitions means a partition count is out of range.
	ErrInvalidPartitions = errors.New("invalid partition count")
	// ErrInvalidConfig means a config key is unknown or its value invalid.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrOffsetOutOfRange means an offset lies outside [log start, high watermark].
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrMessageTooLarge means a batch exceeds the topic's max.message.bytes.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrCorruptBatch means a batch header is inconsistent.
	ErrCorruptBatch = errors.New("corrupt record batch")
	// ErrOutOfOrderSequence means an idempotent batch skipped sequence numbers.
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrInvalidProducerEpoch means an idempotent batch carries an old producer epoch.
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
	// ErrUnknownProducerID means a batch names a producer ID never handed out.
	ErrUnknownProducerID = errors.New("unknown producer id")
	// ErrInvalidTimestamp means a record timestamp is outside the allowed range.
	ErrInvalidTimestamp = errors.New("invalid timestamp")
	// ErrPolicyViolation means a request conflicts with the topic's cleanup policy.
	ErrPolicyViolation = errors.New("policy violation")
	// ErrGroupNotEmpty means a group with live members cannot be deleted.
	ErrGroupNotEmpty = errors.New("group not empty")
	// ErrInvalidGroupID means a group ID is empty or too long to store.
	ErrInvalidGroupID = errors.New("invalid group id")
	// ErrUnknownGroup means no offsets are stored for the group.
	ErrUnknownGroup = errors.New("group id not found")
	// ErrCorruptCommand means a committed log entry cannot be decoded. It is
	// fatal: the node stops rather than skip an entry.
	ErrCorruptCommand = errors.New("corrupt command")
)
