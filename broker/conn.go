package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clientConn is one client connection. Its serve loop is the only
// goroutine that touches it.
type clientConn struct {
	b    *Broker
	conn net.Conn
	log  *slog.Logger
	r    *bufio.Reader
	w    *bufio.Writer
	buf  []byte // reused response buffer
}

// request is one decoded request with its header.
type request struct {
	kmsg.Request
	correlation int32
	clientID    string
	conn        *clientConn
}

func newClientConn(b *Broker, c net.Conn) *clientConn {
	return &clientConn{
		b:    b,
		conn: c,
		log:  b.log.With("remote", c.RemoteAddr().String()),
		r:    bufio.NewReaderSize(c, 64<<10),
		w:    bufio.NewWriterSize(c, 64<<10),
	}
}

// serve reads, handles and answers requests one at a time until the client
// goes away, a frame is malformed, or the broker closes.
func (cc *clientConn) serve() {
	defer cc.conn.Close()
	for {
		frame, err := cc.readFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && cc.b.ctx.Err() == nil {
				cc.log.Warn("closing connection", "err", err)
			}
			return
		}
		req, err := cc.decode(frame)
		if err != nil {
			cc.log.Warn("closing connection: bad request", "err", err)
			return
		}
		start := time.Now()
		resp, err := cc.handle(req)
		if m := cc.b.cfg.Metrics; m != nil {
			m.observe(req.Key(), req.GetVersion(), time.Since(start), len(frame), err)
		}
		if err != nil {
			cc.log.Warn("closing connection", "api", kmsg.NameForKey(req.Key()), "version", req.GetVersion(), "err", err)
			return
		}
		if resp == nil { // acks=0 produce: no response at all
			continue
		}
		if err := cc.write(req, resp); err != nil {
			if cc.b.ctx.Err() == nil {
				cc.log.Debug("write response", "err", err)
			}
			return
		}
	}
}

func (cc *clientConn) readFrame() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(cc.r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 8 {
		return nil, fmt.Errorf("frame of %d bytes is shorter than a request header", n)
	}
	if n > cc.b.cfg.MaxRequestBytes {
		return nil, fmt.Errorf("frame of %d bytes exceeds socket.request.max.bytes %d", n, cc.b.cfg.MaxRequestBytes)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(cc.r, frame); err != nil {
		return nil, fmt.Errorf("read %d-byte frame: %w", n, err)
	}
	return frame, nil
}

// errUnsupported marks a request whose API key or version this broker does
// not serve; decode still returns the header fields so it can be answered.
var errUnsupported = errors.New("unsupported api or version")

func (cc *clientConn) decode(frame []byte) (*request, error) {
	rd := kbin.Reader{Src: frame}
	key, version, corr := rd.Int16(), rd.Int16(), rd.Int32()
	clientID := rd.NullableString()
	if !rd.Ok() {
		return nil, errors.New("truncated request header")
	}
	kreq := kmsg.RequestForKey(key)
	if kreq == nil {
		return nil, fmt.Errorf("unknown api key %d", key)
	}
	kreq.SetVersion(version)
	r := &request{Request: kreq, correlation: corr, conn: cc}
	if clientID != nil {
		r.clientID = *clientID
	}
	a, ok := cc.b.apis[key]
	if !ok || version < a.min || version > a.max || version > kreq.MaxVersion() {
		if key == 18 { // ApiVersions: answered with v0 and UNSUPPORTED_VERSION (KIP-511)
			return r, nil
		}
		if key == 0 && version >= 0 && version < produceMinVersion {
			// Produce v0-v2 is advertised (KAFKA-18659) and refused per partition.
			if err := kreq.ReadFrom(rd.Src); err != nil {
				return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(key), version, err)
			}
			return r, nil
		}
		return nil, fmt.Errorf("%s v%d is not supported", kmsg.NameForKey(key), version)
	}
	if kreq.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if !rd.Ok() {
		return nil, errors.New("truncated request header tags")
	}
	if err := kreq.ReadFrom(rd.Src); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	return r, nil
}

func (cc *clientConn) handle(req *request) (kmsg.Response, error) {
	a, ok := cc.b.apis[req.Key()]
	if !ok {
		return nil, fmt.Errorf("api key %d has no handler", req.Key())
	}
	ctx := cc.b.ctx
	return a.handle(cc.b, ctx, req)
}

func (cc *clientConn) write(req *request, resp kmsg.Response) error {
	resp.SetVersion(req.GetVersion())
	buf := cc.buf[:0]
	buf = append(buf, 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(req.correlation))
	// ApiVersions answers with a v0 response header even when flexible.
	if resp.IsFlexible() && resp.Key() != 18 {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if cap(buf) <= 1<<20 {
		cc.buf = buf
	}
	if _, err := cc.w.Write(buf); err != nil {
		return err
	}
	return cc.w.Flush()
}

// handlerFunc serves one API key. An error closes the connection with a
// log line; everything the client should see is an error code in the
// response. A nil response sends nothing (acks=0).
type handlerFunc func(b *Broker, ctx context.Context, req *request) (kmsg.Response, error)
