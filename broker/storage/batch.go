package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Offsets into a Kafka v2 record batch header (KIP-98).
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57
	// BatchHeaderLen is the size of a v2 batch header.
	BatchHeaderLen = 61

	attrTimestampType = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded header of a v2 record batch.
type BatchHeader struct {
	BaseOffset      int64
	Length          int32
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

// ParseBatchHeader decodes and checks the framing of one v2 batch that
// fills b exactly. It does not check the CRC; see [CheckBatchCRC].
func ParseBatchHeader(b []byte) (BatchHeader, error) { return parseBatchHeader(b, len(b)) }

// parseBatchHeader decodes the header at the start of b, checking its
// framing against size, the length of the whole batch (which b may hold
// only the start of).
func parseBatchHeader(b []byte, size int) (BatchHeader, error) {
	if len(b) < BatchHeaderLen {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, a v2 header needs %d", ErrCorruptBatch, len(b), BatchHeaderLen)
	}
	be := binary.BigEndian
	h := BatchHeader{
		BaseOffset:      int64(be.Uint64(b[offBaseOffset:])),
		Length:          int32(be.Uint32(b[offBatchLength:])),
		LeaderEpoch:     int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:           int8(b[offMagic]),
		CRC:             be.Uint32(b[offCRC:]),
		Attributes:      int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:   int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:    int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:      int32(be.Uint32(b[offRecordCount:])),
	}
	switch {
	case h.Magic != 2:
		return h, fmt.Errorf("%w: magic %d, only v2 batches are supported", ErrCorruptBatch, h.Magic)
	case int64(h.Length)+12 != int64(size):
		return h, fmt.Errorf("%w: batch length %d does not match %d bytes", ErrCorruptBatch, h.Length, size-12)
	case h.LastOffsetDelta < 0 || h.NumRecords < 0:
		return h, fmt.Errorf("%w: negative record count or offset delta", ErrCorruptBatch)
	}
	return h, nil
}

// CheckBatchCRC reports whether the batch's CRC-32C matches its contents.
func CheckBatchCRC(b []byte) bool {
	if len(b) < BatchHeaderLen {
		return false
	}
	return crc32.Checksum(b[offAttributes:], castagnoli) == binary.BigEndian.Uint32(b[offCRC:])
}

// LastOffset is the offset of the batch's last record.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Transactional reports whether the batch belongs to a transaction.
func (h BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch is a control batch (transaction marker).
func (h BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

// Compression is the batch's codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
func (h BatchHeader) Compression() int8 { return int8(h.Attributes & 0x07) }

// LogAppendTime reports whether the batch's timestamps are broker-assigned.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrTimestampType != 0 }

// stamp rewrites the broker-owned header fields of a copy of b: base
// offset, partition leader epoch, and for LogAppendTime topics the
// timestamp type and max timestamp (which the CRC covers, so it is redone).
func stamp(b []byte, base int64, epoch int32, appendTime int64) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	be := binary.BigEndian
	be.PutUint64(out[offBaseOffset:], uint64(base))
	be.PutUint32(out[offLeaderEpoch:], uint32(epoch))
	if appendTime >= 0 {
		attrs := be.Uint16(out[offAttributes:]) | attrTimestampType
		be.PutUint16(out[offAttributes:], attrs)
		be.PutUint64(out[offMaxTimestamp:], uint64(appendTime))
		be.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	}
	return out
}
