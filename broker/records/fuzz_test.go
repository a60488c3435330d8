package records

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzDecode feeds arbitrary bytes, and valid batches of every codec with
// their payload mutated under a fixed-up CRC, to Decode: it must return an
// error or records, never panic, and what it decodes must encode back to a
// batch that decodes to the same records.
func FuzzDecode(f *testing.F) {
	for _, c := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		b := sampleBatch(c)
		b.Records = b.Records[:5]
		raw, err := Encode(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, false)
		f.Add(raw, true)
	}
	f.Add(rawSnappyBatch(f), true)
	f.Fuzz(func(t *testing.T, raw []byte, fixCRC bool) {
		if fixCRC && len(raw) >= headerLen {
			raw = bytes.Clone(raw)
			binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
			binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], castagnoli))
		}
		b, err := Decode(raw)
		if err != nil {
			return
		}
		again, err := Encode(b)
		if err != nil {
			t.Fatalf("re-encode of a decoded batch: %v", err)
		}
		b2, err := Decode(again)
		if err != nil {
			t.Fatalf("decode of a re-encoded batch: %v", err)
		}
		if len(b2.Records) != len(b.Records) {
			t.Fatalf("%d records became %d", len(b.Records), len(b2.Records))
		}
		for i := range b.Records {
			r1, r2 := b.Records[i], b2.Records[i]
			if r1.Offset != r2.Offset || r1.Timestamp != r2.Timestamp || !bytes.Equal(r1.Key, r2.Key) || !bytes.Equal(r1.Value, r2.Value) || len(r1.Headers) != len(r2.Headers) {
				t.Fatalf("record %d changed: %+v -> %+v", i, r1, r2)
			}
		}
	})
}
