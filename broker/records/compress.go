package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// xerialMagic starts a snappy payload in the framing of the Java client's
// snappy-java SnappyOutputStream: magic, version 1, compatible version 1,
// then blocks, each a big-endian length and a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderLen = 16
	xerialBlock     = 32 << 10
)

// zstdPair is one zstd decoder and encoder for the process; both are safe
// for concurrent DecodeAll / EncodeAll and are never reconfigured.
type zstdPair struct {
	dec *zstd.Decoder
	enc *zstd.Encoder
}

var zstdCodec = sync.OnceValues(func() (zstdPair, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxDecodedBytes))
	if err != nil {
		return zstdPair{}, fmt.Errorf("zstd decoder: %w", err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
	if err != nil {
		return zstdPair{}, fmt.Errorf("zstd encoder: %w", err)
	}
	return zstdPair{dec, enc}, nil
})

// decompress returns the uncompressed records of a batch payload, at most
// limit bytes of them (limit <= MaxDecodedBytes).
func decompress(c Codec, src []byte, limit int) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		out, err = readAllBounded(limit, func() (io.Reader, error) { return gzip.NewReader(bytes.NewReader(src)) })
	case CodecSnappy:
		out, err = unsnappy(src, limit)
	case CodecLZ4:
		out, err = readAllBounded(limit, func() (io.Reader, error) { return lz4.NewReader(bytes.NewReader(src)), nil })
	case CodecZstd:
		z, zerr := zstdCodec()
		if zerr != nil {
			return nil, zerr
		}
		out, err = z.dec.DecodeAll(src, nil)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			err = fmt.Errorf("%w: %v", ErrTooLarge, err)
		}
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedCodec, c)
	}
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, c, err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return out, nil
}

func readAllBounded(limit int, open func() (io.Reader, error)) ([]byte, error) {
	r, err := open()
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return out, nil
}

// unsnappy decodes a raw snappy block or xerial-framed blocks.
func unsnappy(src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(nil, src, limit)
	}
	if len(src) < xerialHeaderLen {
		return nil, errors.New("truncated xerial header")
	}
	src = src[xerialHeaderLen:]
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errors.New("truncated xerial block length")
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, fmt.Errorf("xerial block of %d bytes with %d left", n, len(src))
		}
		var err error
		if out, err = snappyBlock(out, src[:n], limit); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return out, nil
}

// snappyBlock appends the decoding of one raw snappy block to dst.
func snappyBlock(dst, block []byte, limit int) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if len(dst)+n > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	buf := make([]byte, n)
	if _, err := s2.Decode(buf, block); err != nil {
		return nil, err
	}
	return append(dst, buf...), nil
}

// compress encodes uncompressed records with codec c.
func compress(c Codec, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		return closeWriter(&buf, w, src)
	case CodecSnappy:
		return xerialEncode(src), nil
	case CodecLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		return closeWriter(&buf, w, src)
	case CodecZstd:
		z, err := zstdCodec()
		if err != nil {
			return nil, err
		}
		return z.enc.EncodeAll(src, nil), nil
	}
	return nil, fmt.Errorf("%w: %d", ErrUnsupportedCodec, c)
}

func closeWriter(buf *bytes.Buffer, w io.WriteCloser, src []byte) ([]byte, error) {
	if _, err := w.Write(src); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return buf.Bytes(), nil
}

// xerialEncode frames src as the Java client does: header, then blocks of
// at most 32 KiB, each behind its big-endian length.
func xerialEncode(src []byte) []byte {
	out := append([]byte(nil), xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(src) > 0 {
		n := min(len(src), xerialBlock)
		block := s2.EncodeSnappy(nil, src[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		src = src[n:]
	}
	return out
}
