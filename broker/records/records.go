package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors returned by Decode and Encode.
var (
	// ErrCorrupt means a batch's framing, CRC or records are inconsistent.
	ErrCorrupt = errors.New("corrupt record batch")
	// ErrTooLarge means a batch decompresses to more than MaxDecodedBytes.
	ErrTooLarge = errors.New("record batch decompresses too large")
	// ErrUnsupportedCodec means the attributes name a codec other than
	// none, gzip, snappy, lz4 or zstd.
	ErrUnsupportedCodec = errors.New("unsupported compression codec")
)

// MaxDecodedBytes bounds the decompressed size of one batch's records.
const MaxDecodedBytes = 256 << 20

// headerLen is the size of a v2 batch header; Length counts from the
// partition leader epoch, 12 bytes in.
const headerLen = 61

// Attribute bits of a v2 batch.
const (
	// AttrCodecMask selects the compression codec bits.
	AttrCodecMask int16 = 0x07
	// AttrLogAppendTime marks broker-assigned timestamps.
	AttrLogAppendTime int16 = 0x08
	// AttrTransactional marks a batch of a transaction.
	AttrTransactional int16 = 0x10
	// AttrControl marks a control batch (transaction markers).
	AttrControl int16 = 0x20
)

// Codec is a batch's compression codec, as numbered in the attributes.
type Codec int8

// The codecs of message format v2.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record of a batch. OffsetDelta and TimestampDelta are the
// wire fields: Encode writes them as they are. Offset and Timestamp are
// absolute, filled by Decode for the reader's convenience and ignored by
// Encode.
type Record struct {
	// Offset is the batch's base offset plus OffsetDelta.
	Offset int64
	// Timestamp is what a consumer sees: FirstTimestamp plus
	// TimestampDelta, or the batch's MaxTimestamp when the batch has
	// LogAppendTime timestamps.
	Timestamp int64

	OffsetDelta    int32
	TimestampDelta int64
	// Attributes is the record's attribute byte (unused by Kafka so far).
	Attributes int8
	// Key is nil for a null key.
	Key []byte
	// Value is nil for a null value (a tombstone).
	Value   []byte
	Headers []Header
}

// Batch is a v2 record batch: its header and its records. Length, CRC,
// magic and the record count are derived by Encode.
type Batch struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32
	// Attributes holds the codec (AttrCodecMask), the timestamp type and
	// the transactional and control flags.
	Attributes int16
	// LastOffsetDelta is the offset delta of the batch's last offset. It
	// may exceed the last record's delta: compaction keeps a batch's
	// offset range when it drops its last records. Encode raises it to
	// the largest record delta if it is lower.
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	Records         []Record
}

// Codec is the batch's compression codec.
func (b Batch) Codec() Codec { return Codec(b.Attributes & AttrCodecMask) }

// LogAppendTime reports whether the batch's timestamps were assigned by
// the broker: every record's timestamp is then MaxTimestamp.
func (b Batch) LogAppendTime() bool { return b.Attributes&AttrLogAppendTime != 0 }

// LastOffset is the offset of the batch's last offset slot.
func (b Batch) LastOffset() int64 { return b.BaseOffset + int64(b.LastOffsetDelta) }

// Decode parses one whole v2 batch: it checks framing and CRC, then
// decompresses and decodes every record.
func Decode(raw []byte) (Batch, error) {
	var kb kmsg.RecordBatch
	if err := readHeader(raw, &kb); err != nil {
		return Batch{}, err
	}
	b := Batch{
		BaseOffset:           kb.FirstOffset,
		PartitionLeaderEpoch: kb.PartitionLeaderEpoch,
		Attributes:           kb.Attributes,
		LastOffsetDelta:      kb.LastOffsetDelta,
		FirstTimestamp:       kb.FirstTimestamp,
		MaxTimestamp:         kb.MaxTimestamp,
		ProducerID:           kb.ProducerID,
		ProducerEpoch:        kb.ProducerEpoch,
		BaseSequence:         kb.FirstSequence,
	}
	data, err := decompress(b.Codec(), kb.Records, MaxDecodedBytes)
	if err != nil {
		return Batch{}, err
	}
	if b.Records, err = decodeRecords(data, kb.NumRecords); err != nil {
		return Batch{}, err
	}
	for i := range b.Records {
		r := &b.Records[i]
		r.Offset = b.BaseOffset + int64(r.OffsetDelta)
		r.Timestamp = b.FirstTimestamp + r.TimestampDelta
		if b.LogAppendTime() {
			r.Timestamp = b.MaxTimestamp
		}
	}
	return b, nil
}

// DecodeRecords returns the records of one whole v2 batch, with absolute
// offsets and timestamps.
func DecodeRecords(raw []byte) ([]Record, error) {
	b, err := Decode(raw)
	return b.Records, err
}

// readHeader decodes the header of raw and checks that raw is exactly one
// v2 batch with a matching CRC.
func readHeader(raw []byte, kb *kmsg.RecordBatch) error {
	if len(raw) < headerLen {
		return fmt.Errorf("%w: %d bytes, a v2 header needs %d", ErrCorrupt, len(raw), headerLen)
	}
	if err := kb.ReadFrom(raw); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch {
	case kb.Magic != 2:
		return fmt.Errorf("%w: magic %d, only v2 batches are supported", ErrCorrupt, kb.Magic)
	case int64(kb.Length)+12 != int64(len(raw)):
		return fmt.Errorf("%w: batch length %d does not match %d bytes", ErrCorrupt, kb.Length, len(raw)-12)
	case kb.NumRecords < 0 || kb.LastOffsetDelta < 0:
		return fmt.Errorf("%w: negative record count or offset delta", ErrCorrupt)
	case crc32.Checksum(raw[21:], castagnoli) != uint32(kb.CRC):
		return fmt.Errorf("%w: CRC mismatch", ErrCorrupt)
	}
	return nil
}

// decodeRecords decodes n records that fill data exactly.
func decodeRecords(data []byte, n int32) ([]Record, error) {
	// Each record takes at least 7 bytes; do not trust n for allocation.
	out := make([]Record, 0, min(int(n), len(data)/7+1))
	for i := int32(0); i < n; i++ {
		l, sz := kbin.Varint(data)
		if sz <= 0 || l < 0 || int64(l) > int64(len(data)-sz) {
			return nil, fmt.Errorf("%w: record %d of %d: bad length", ErrCorrupt, i, n)
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(data[:sz+int(l)]); err != nil {
			return nil, fmt.Errorf("%w: record %d of %d: %v", ErrCorrupt, i, n, err)
		}
		if got := recordBodyLen(&kr); got != int(l) {
			return nil, fmt.Errorf("%w: record %d of %d: length %d, fields take %d", ErrCorrupt, i, n, l, got)
		}
		out = append(out, fromKmsg(&kr))
		data = data[sz+int(l):]
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after %d records", ErrCorrupt, len(data), n)
	}
	return out, nil
}

func fromKmsg(kr *kmsg.Record) Record {
	r := Record{
		OffsetDelta:    kr.OffsetDelta,
		TimestampDelta: kr.TimestampDelta64,
		Attributes:     kr.Attributes,
		Key:            kr.Key,
		Value:          kr.Value,
	}
	if len(kr.Headers) > 0 {
		r.Headers = make([]Header, len(kr.Headers))
		for i, h := range kr.Headers {
			r.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return r
}

func toKmsg(r *Record) kmsg.Record {
	kr := kmsg.Record{
		Attributes:       r.Attributes,
		TimestampDelta64: r.TimestampDelta,
		TimestampDelta:   int32(r.TimestampDelta),
		OffsetDelta:      r.OffsetDelta,
		Key:              r.Key,
		Value:            r.Value,
	}
	if len(r.Headers) > 0 {
		kr.Headers = make([]kmsg.Header, len(r.Headers))
		for i, h := range r.Headers {
			kr.Headers[i] = kmsg.Header{Key: h.Key, Value: h.Value}
		}
	}
	kr.Length = int32(recordBodyLen(&kr))
	return kr
}

// recordBodyLen is the encoded size of a record after its length varint.
func recordBodyLen(kr *kmsg.Record) int {
	n := 1 + kbin.VarlongLen(kr.TimestampDelta64) + kbin.VarintLen(kr.OffsetDelta)
	n += bytesLen(kr.Key) + bytesLen(kr.Value)
	n += kbin.VarintLen(int32(len(kr.Headers)))
	for _, h := range kr.Headers {
		n += kbin.VarintLen(int32(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	return n
}

func bytesLen(b []byte) int {
	if b == nil {
		return kbin.VarintLen(-1)
	}
	return kbin.VarintLen(int32(len(b))) + len(b)
}

// Encode builds a v2 batch from b, compressing the records with b's codec
// and computing length, record count and CRC.
func Encode(b Batch) ([]byte, error) {
	var data []byte
	for i := range b.Records {
		r := &b.Records[i]
		if r.OffsetDelta < 0 {
			return nil, fmt.Errorf("encode batch: record %d has negative offset delta %d", i, r.OffsetDelta)
		}
		b.LastOffsetDelta = max(b.LastOffsetDelta, r.OffsetDelta)
		kr := toKmsg(r)
		data = kr.AppendTo(data)
	}
	payload, err := compress(b.Codec(), data)
	if err != nil {
		return nil, err
	}
	kb := kmsg.RecordBatch{
		FirstOffset:          b.BaseOffset,
		Length:               int32(headerLen - 12 + len(payload)),
		PartitionLeaderEpoch: b.PartitionLeaderEpoch,
		Magic:                2,
		Attributes:           b.Attributes,
		LastOffsetDelta:      b.LastOffsetDelta,
		FirstTimestamp:       b.FirstTimestamp,
		MaxTimestamp:         b.MaxTimestamp,
		ProducerID:           b.ProducerID,
		ProducerEpoch:        b.ProducerEpoch,
		FirstSequence:        b.BaseSequence,
		NumRecords:           int32(len(b.Records)),
		Records:              payload,
	}
	out := kb.AppendTo(make([]byte, 0, headerLen+len(payload)))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out, nil
}
