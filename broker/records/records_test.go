package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/klauspost/compress/s2"
)

func sampleBatch(codec Codec) Batch {
	b := Batch{
		BaseOffset:           42,
		PartitionLeaderEpoch: 3,
		Attributes:           int16(codec),
		FirstTimestamp:       1_700_000_000_000,
		MaxTimestamp:         1_700_000_000_900,
		ProducerID:           7,
		ProducerEpoch:        1,
		BaseSequence:         10,
	}
	for i := int32(0); i < 50; i++ {
		r := Record{
			OffsetDelta:    i * 2, // gaps, as compaction leaves them
			TimestampDelta: int64(i) * 10,
			Key:            []byte{byte('a' + i%26)},
			Value:          bytes.Repeat([]byte{byte(i)}, int(i)*40),
		}
		switch i {
		case 3:
			r.Value = nil // tombstone
		case 4:
			r.Key = nil
		case 5:
			r.Headers = []Header{{Key: "h1", Value: []byte("v1")}, {Key: "h2", Value: nil}}
		case 6:
			r.Key, r.Value = []byte{}, []byte{}
		}
		b.Records = append(b.Records, r)
	}
	b.LastOffsetDelta = 120 // beyond the last record's delta (98)
	return b
}

func TestRecordsRoundTripEveryCodec(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			in := sampleBatch(codec)
			raw, err := Encode(in)
			if err != nil {
				t.Fatal(err)
			}
			if codec != CodecNone && len(raw) > 20000 {
				t.Errorf("%s batch is %d bytes: not compressed?", codec, len(raw))
			}
			out, err := Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if out.LastOffsetDelta != 120 || out.BaseOffset != 42 || out.ProducerID != 7 || out.BaseSequence != 10 || out.Codec() != codec {
				t.Errorf("header: %+v", out)
			}
			if len(out.Records) != len(in.Records) {
				t.Fatalf("%d records, want %d", len(out.Records), len(in.Records))
			}
			for i, r := range out.Records {
				want := in.Records[i]
				want.Offset = 42 + int64(want.OffsetDelta)
				want.Timestamp = in.FirstTimestamp + want.TimestampDelta
				if !reflect.DeepEqual(r, want) {
					t.Fatalf("record %d:\n got %+v\nwant %+v", i, r, want)
				}
			}
			again, err := Encode(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, raw) && codec == CodecNone {
				t.Error("re-encoding an uncompressed batch changed its bytes")
			}
		})
	}
}

func TestRecordsNullAndEmptyAreDistinct(t *testing.T) {
	raw, err := Encode(sampleBatch(CodecNone))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := DecodeRecords(raw)
	if err != nil {
		t.Fatal(err)
	}
	if recs[3].Value != nil || recs[4].Key != nil {
		t.Error("null value or key decoded as non-nil")
	}
	if recs[6].Key == nil || recs[6].Value == nil {
		t.Error("empty key or value decoded as nil")
	}
}

func TestRecordsLogAppendTime(t *testing.T) {
	b := sampleBatch(CodecLZ4)
	b.Attributes |= AttrLogAppendTime
	b.MaxTimestamp = 1_800_000_000_000
	raw, err := Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := DecodeRecords(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Timestamp != b.MaxTimestamp {
			t.Fatalf("record %d timestamp %d, want the batch's append time %d", r.Offset, r.Timestamp, b.MaxTimestamp)
		}
	}
	if recs[1].TimestampDelta != 10 {
		t.Errorf("wire delta lost: %d", recs[1].TimestampDelta)
	}
}

// rawSnappyBatch builds a snappy batch without xerial framing, as
// librdkafka and franz-go write it.
func rawSnappyBatch(t testing.TB) []byte {
	t.Helper()
	plain, err := Encode(sampleBatch(CodecNone))
	if err != nil {
		t.Fatal(err)
	}
	block := s2.EncodeSnappy(nil, plain[headerLen:])
	out := append([]byte(nil), plain[:headerLen]...)
	out = append(out, block...)
	binary.BigEndian.PutUint16(out[21:], uint16(CodecSnappy))
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}

func TestRecordsRawSnappy(t *testing.T) {
	recs, err := DecodeRecords(rawSnappyBatch(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 50 || recs[49].Offset != 42+98 {
		t.Fatalf("got %d records", len(recs))
	}
}

func TestRecordsXerialBlocks(t *testing.T) {
	// 50 records of up to 2 KB exceed one 32 KiB xerial block.
	raw, err := Encode(sampleBatch(CodecSnappy))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw[headerLen:], xerialMagic) {
		t.Fatal("snappy batch not xerial framed")
	}
	blocks := 0
	for p := raw[headerLen+xerialHeaderLen:]; len(p) > 0; blocks++ {
		n := binary.BigEndian.Uint32(p)
		p = p[4+n:]
	}
	if blocks < 2 {
		t.Errorf("%d xerial blocks, want several", blocks)
	}
}

func TestRecordsCorrupt(t *testing.T) {
	good, err := Encode(sampleBatch(CodecGzip))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0xff
		return b
	}
	recrc := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
		return b
	}
	badCount := recrc(bytes.Clone(good))
	binary.BigEndian.PutUint32(badCount[57:], 51)
	recrc(badCount)
	// A length varint that overflows (kbin.Varint reports a negative size).
	overflow := append(bytes.Clone(good[:headerLen]), bytes.Repeat([]byte{0xff}, 11)...)
	binary.BigEndian.PutUint16(overflow[21:], 0)
	binary.BigEndian.PutUint32(overflow[8:], uint32(len(overflow)-12))
	recrc(overflow)
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"overflowing length", overflow, ErrCorrupt},
		{"short", good[:30], ErrCorrupt},
		{"truncated", good[:len(good)-1], ErrCorrupt},
		{"crc", flip(len(good) - 3), ErrCorrupt},
		{"magic", flip(16), ErrCorrupt},
		{"payload", recrc(flip(headerLen + 12)), ErrCorrupt},
		{"count", badCount, ErrCorrupt},
		{"codec", recrc(func() []byte { b := bytes.Clone(good); b[22] = 7; return b }()), ErrUnsupportedCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.raw); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRecordsDecompressionBounded(t *testing.T) {
	// 1 MiB of zeros compresses to a few KB; with a 64 KiB limit every
	// codec refuses to expand it.
	big := make([]byte, 1<<20)
	for _, codec := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		payload, err := compress(codec, big)
		if err != nil {
			t.Fatal(err)
		}
		if len(payload) > 100<<10 {
			t.Fatalf("%s: %d bytes compressed", codec, len(payload))
		}
		if _, err := decompress(codec, payload, 64<<10); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: err %v, want ErrTooLarge", codec, err)
		}
		if out, err := decompress(codec, payload, len(big)); err != nil || len(out) != len(big) {
			t.Errorf("%s: at the limit: %d bytes, %v", codec, len(out), err)
		}
	}
}
