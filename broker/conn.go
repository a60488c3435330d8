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
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clientConn is one client connection, served by three goroutines that
// serve owns: the reader (r, readFrame, decode), the handler loop, and the
// writer (w, buf).
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

// maxSpareFrame bounds the frame buffer a connection hands back to its
// reader for reuse (the frame of a request whose handler was done with
// it, api.doneWithFrame).
const maxSpareFrame = 16 << 20

// maxInFlight bounds the responses a connection may have pending; the
// reader stops reading frames while the writer is that far behind.
const maxInFlight = 16

// pending is one request's response slot in the connection's write queue.
type pending struct {
	req  *request
	done chan struct{} // closed when resp and err are set
	resp kmsg.Response
	err  error
}

// serve reads and handles requests until the client goes away, a frame is
// malformed, or the broker closes. Requests are handled one at a time in
// the order they arrive, as Kafka does, except that a produce whose
// append is already queued in the replicated log (a [deferred] response)
// lets the next request in while it waits for the commit. Two goroutines,
// owned here, keep the wire busy meanwhile: a reader that reads and
// decodes the next frame while this one is handled (a multi-MiB produce
// request is otherwise left in the socket, stalling the client's write,
// for as long as the one before takes to check and queue), and a writer
// that writes responses strictly in request order.
func (cc *clientConn) serve() {
	queue := make(chan *pending, maxInFlight)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		cc.writeLoop(queue)
	}()
	reqs := make(chan readResult, 1)
	readerDone := make(chan struct{})
	stopReading := make(chan struct{})
	spare := make(chan []byte, 1)
	go func() {
		defer close(readerDone)
		cc.readLoop(reqs, spare, stopReading)
	}()
	defer func() {
		close(stopReading)
		close(queue)
		<-writerDone // answers everything queued before this point
		cc.conn.Close()
		<-readerDone // the close ended its read
	}()
	for rr := range reqs {
		if rr.err != nil {
			if rr.bad {
				cc.log.Warn("closing connection: bad request", "err", rr.err)
			} else if !errors.Is(rr.err, io.EOF) && !errors.Is(rr.err, net.ErrClosed) && cc.b.ctx.Err() == nil {
				cc.log.Warn("closing connection", "err", rr.err)
			}
			return
		}
		req, frame := rr.req, rr.frame
		p := &pending{req: req, done: make(chan struct{})}
		select {
		case queue <- p:
		case <-writerDone: // the writer failed; stop reading
			return
		}
		start := time.Now()
		resp, err := cc.handle(req)
		if a, ok := cc.b.apis[req.Key()]; ok && a.doneWithFrame && cap(frame) <= maxSpareFrame {
			select {
			case spare <- frame[:0]:
			default:
			}
		}
		if d, ok := resp.(*deferred); ok {
			go func() {
				p.resp, p.err = d.wait()
				cc.observe(req, start, len(frame), p.err)
				close(p.done)
			}()
			continue
		}
		cc.observe(req, start, len(frame), err)
		p.resp, p.err = resp, err
		close(p.done)
		if err != nil {
			return // the writer logs it after answering what came before
		}
	}
}

// readResult is one frame the reader read and decoded, or why it stopped
// (bad: the frame was malformed rather than the connection gone).
type readResult struct {
	req   *request
	frame []byte
	err   error
	bad   bool
}

// readLoop reads and decodes frames into reqs until an error, which it
// sends last, or until stop. A buffer on spare is the frame of a request
// its handler is done with, for the next frame to reuse.
func (cc *clientConn) readLoop(reqs chan<- readResult, spare <-chan []byte, stop <-chan struct{}) {
	defer close(reqs)
	for {
		var buf []byte
		select {
		case buf = <-spare:
		default:
		}
		frame, err := cc.readFrame(buf)
		var rr readResult
		if err != nil {
			rr.err = err
		} else if rr.req, err = cc.decode(frame); err != nil {
			rr.err, rr.bad = err, true
		}
		rr.frame = frame
		select {
		case reqs <- rr:
		case <-stop:
			return
		}
		if rr.err != nil {
			return
		}
	}
}

func (cc *clientConn) observe(req *request, start time.Time, size int, err error) {
	if m := cc.b.cfg.Metrics; m != nil {
		m.observe(req.Key(), req.GetVersion(), time.Since(start), size, err)
	}
}

// writeLoop writes responses in request order, flushing when no further
// response is ready, and closes the connection on the first handler or
// write error (which makes the reader stop).
func (cc *clientConn) writeLoop(queue <-chan *pending) {
	failed := false
	for p := range queue {
		<-p.done
		if failed {
			continue // drain, so deferred waits are not leaked
		}
		if p.err != nil {
			cc.log.Warn("closing connection", "api", kmsg.NameForKey(p.req.Key()), "version", p.req.GetVersion(), "err", p.err)
			failed = true
			cc.conn.Close()
			continue
		}
		if p.resp == nil { // acks=0 produce: no response at all
			continue
		}
		if err := cc.write(p.req, p.resp, len(queue) == 0); err != nil {
			if cc.b.ctx.Err() == nil {
				cc.log.Debug("write response", "err", err)
			}
			failed = true
			cc.conn.Close()
		}
	}
	if !failed {
		cc.w.Flush()
	}
}

// readFrame reads one request frame, into buf if it is large enough.
func (cc *clientConn) readFrame(buf []byte) ([]byte, error) {
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
	var frame []byte
	if int(n) <= cap(buf) {
		frame = buf[:n]
	} else {
		// Room to spare, so that the next frame of about this size fits
		// when this buffer comes back (a client's produce requests vary
		// by a few percent).
		frame = make([]byte, n, min(int(n)+int(n)/8, max(int(n), maxSpareFrame)))
	}
	if _, err := io.ReadFull(cc.r, frame); err != nil {
		return nil, fmt.Errorf("read %d-byte frame: %w", n, err)
	}
	return frame, nil
}

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

// write encodes one response into the buffered writer, flushing if flush.
func (cc *clientConn) write(req *request, resp kmsg.Response, flush bool) error {
	resp.SetVersion(req.GetVersion())
	buf := slices.Grow(cc.buf[:0], sizeHint(resp))
	buf = append(buf, 0, 0, 0, 0)
	buf = binary.BigEndian.AppendUint32(buf, uint32(req.correlation))
	// ApiVersions answers with a v0 response header even when flexible.
	if resp.IsFlexible() && resp.Key() != 18 {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if m := cc.b.cfg.Metrics; m != nil {
		m.bytesOut.Add(float64(len(buf)))
	}
	if cap(buf) <= maxSpareFrame { // fetch responses of several MiB reuse it too
		cc.buf = buf
	}
	if _, err := cc.w.Write(buf); err != nil {
		return err
	}
	if !flush {
		return nil
	}
	return cc.w.Flush()
}

// sizeHint estimates a response's encoded size, so that a large fetch
// response is encoded into one allocation instead of a buffer that doubles
// its way up (copying the records each time); small responses reuse cc.buf.
func sizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 64
	for _, t := range f.Topics {
		n += 64 + len(t.Topic)
		for _, p := range t.Partitions {
			n += 64 + len(p.RecordBatches)
		}
	}
	return n
}

// deferred is what a handler returns when its response is only known
// later: the handler has done everything that must happen in request order
// (for produce, queueing the append in the replicated log) and wait, run on
// its own goroutine, finishes the response. The connection writes it in
// its place in the response order.
type deferred struct {
	kmsg.Response // always nil: deferred is never encoded itself
	wait          func() (kmsg.Response, error)
}

// handlerFunc serves one API key. An error closes the connection with a
// log line; everything the client should see is an error code in the
// response. A nil response sends nothing (acks=0).
type handlerFunc func(b *Broker, ctx context.Context, req *request) (kmsg.Response, error)
