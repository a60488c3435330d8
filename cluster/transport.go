package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The first byte of every connection to a node's Raft address says who it
// is for: Raft's own transport, or kbox's cluster RPCs (rpc.go).
const (
	tagRaft byte = 'R'
	tagRPC  byte = 'K'
)

// errIsolated is what dials return while a node is cut off from the
// network by [Cluster.Isolate].
var errIsolated = errors.New("node is isolated")

// muxLayer shares one TCP listener between Raft and the cluster RPCs, by
// the tag byte each dialer writes first. It is also the fault injector of
// the test cluster: while isolated, it refuses every dial and every
// accepted connection and has closed all open ones, which cuts the node off
// from its peers in both directions (its Kafka listener stays up, so
// clients still reach it).
//
// Its accept goroutine and one goroutine per RPC connection are owned by
// the layer and end on Close.
type muxLayer struct {
	ln     net.Listener
	log    *slog.Logger
	raftCh chan net.Conn
	// serveRPC serves one RPC connection until it closes; set before the
	// first accept.
	serveRPC func(net.Conn)

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu       sync.Mutex
	isolated bool
	conns    map[*muxConn]struct{}
}

func newMuxLayer(addr string, log *slog.Logger, serveRPC func(net.Conn)) (*muxLayer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raft listener: %w", err)
	}
	m := &muxLayer{
		ln:       ln,
		log:      log,
		raftCh:   make(chan net.Conn),
		serveRPC: serveRPC,
		done:     make(chan struct{}),
		conns:    map[*muxConn]struct{}{},
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

func (m *muxLayer) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			// Temporary failures (out of file descriptors, say) must not
			// stop the node's Raft traffic for good.
			m.log.Warn("raft listener accept", "err", err)
			select {
			case <-m.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		m.wg.Add(1)
		go m.route(c)
	}
}

// route reads a connection's tag and hands it to Raft or the RPC server.
func (m *muxLayer) route(c net.Conn) {
	defer m.wg.Done()
	var tag [1]byte
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, tag[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	mc, ok := m.track(c)
	if !ok {
		return
	}
	switch tag[0] {
	case tagRaft:
		select {
		case m.raftCh <- mc:
		case <-m.done:
			mc.Close()
		}
	case tagRPC:
		m.serveRPC(mc)
		mc.Close()
	default:
		m.log.Warn("closing connection with an unknown tag on the raft listener", "remote", c.RemoteAddr().String(), "tag", tag[0])
		mc.Close()
	}
}

// track registers a connection so Isolate and Close can cut it; it
// refuses (and closes) the connection while isolated or closed.
func (m *muxLayer) track(c net.Conn) (*muxConn, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.done:
		c.Close()
		return nil, false
	default:
	}
	if m.isolated {
		c.Close()
		return nil, false
	}
	mc := &muxConn{Conn: c, m: m}
	m.conns[mc] = struct{}{}
	return mc, true
}

// dial opens a tagged connection to another node's Raft address.
func (m *muxLayer) dial(addr string, tag byte, timeout time.Duration) (net.Conn, error) {
	if m.isIsolated() {
		return nil, fmt.Errorf("dial %s: %w", addr, errIsolated)
	}
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{tag}); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c.SetWriteDeadline(time.Time{})
	mc, ok := m.track(c)
	if !ok {
		return nil, fmt.Errorf("dial %s: %w", addr, errIsolated)
	}
	return mc, nil
}

func (m *muxLayer) isIsolated() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.isolated
}

// setIsolated cuts the node off from its peers (closing every open
// connection) or lets it reconnect.
func (m *muxLayer) setIsolated(on bool) {
	m.mu.Lock()
	m.isolated = on
	var open []*muxConn
	if on {
		for c := range m.conns {
			open = append(open, c)
		}
	}
	m.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

// Close stops accepting, closes every connection and waits for the
// layer's goroutines.
func (m *muxLayer) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.mu.Lock()
		close(m.done)
		open := make([]*muxConn, 0, len(m.conns))
		for c := range m.conns {
			open = append(open, c)
		}
		m.mu.Unlock()
		err = m.ln.Close()
		for _, c := range open {
			c.Close()
		}
		m.wg.Wait()
	})
	return err
}

// Addr is the bound listener address.
func (m *muxLayer) Addr() net.Addr { return m.ln.Addr() }

// muxConn is a tracked connection; Close forgets it.
type muxConn struct {
	net.Conn
	m    *muxLayer
	once sync.Once
}

func (c *muxConn) Close() error {
	var err error
	c.once.Do(func() {
		c.m.mu.Lock()
		delete(c.m.conns, c)
		c.m.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// raftStream is the muxLayer as Raft's raft.StreamLayer: the connections
// tagged for Raft, and dials that tag theirs.
type raftStream struct{ m *muxLayer }

var _ raft.StreamLayer = raftStream{}

func (s raftStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.m.raftCh:
		return c, nil
	case <-s.m.done:
		return nil, net.ErrClosed
	}
}

func (s raftStream) Close() error   { return s.m.Close() }
func (s raftStream) Addr() net.Addr { return s.m.Addr() }

func (s raftStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.m.dial(string(addr), tagRaft, timeout)
}
