package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The cluster RPCs travel on the Raft listener (tag 'K', transport.go): a
// connection carries one request/response exchange at a time, each a
// 4-byte big-endian length and a JSON body. They are how a node joins, how
// membership changes reach the leader, how followers forward the proposals
// that admin requests need (forward.go), and how nodes learn each other's
// applied index (status.go).

// rpcOp names a cluster RPC.
type rpcOp string

const (
	rpcStatus  rpcOp = "status"  // this node's NodeStatus
	rpcJoin    rpcOp = "join"    // add ID at RaftAddr as a voter (leader)
	rpcRemove  rpcOp = "remove"  // remove ID from the cluster (leader)
	rpcPropose rpcOp = "propose" // apply Data with Nonce (leader)
)

// maxRPCFrame bounds one RPC body; forwarded commands are small.
const maxRPCFrame = 16 << 20

type rpcRequest struct {
	Op       rpcOp  `json:"op"`
	ID       int32  `json:"id,omitempty"`
	RaftAddr string `json:"raft_addr,omitempty"`
	Data     []byte `json:"data,omitempty"`
	Nonce    []byte `json:"nonce,omitempty"`
	// TimeoutMs bounds the work the callee does for the request.
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
	// Forwarded marks a request a follower already passed on to the
	// leader, so it is never forwarded twice.
	Forwarded bool `json:"forwarded,omitempty"`
}

// rpcCode classifies an RPC failure for the caller.
type rpcCode string

const (
	codeNotLeader rpcCode = "not_leader" // retry, at the leader
	codeRejected  rpcCode = "rejected"   // permanent: do not retry
	codeFailed    rpcCode = "failed"     // the callee failed; may be retried
)

type rpcResponse struct {
	Code   rpcCode     `json:"code,omitempty"`
	Error  string      `json:"error,omitempty"`
	Index  uint64      `json:"index,omitempty"`
	Status *NodeStatus `json:"status,omitempty"`
}

// rpcError is a failure the callee reported.
type rpcError struct {
	code rpcCode
	msg  string
}

func (e *rpcError) Error() string { return e.msg }

// errResponse builds the response for err, keeping its code when err is an
// rpcError.
func errResponse(err error) rpcResponse {
	var re *rpcError
	if errors.As(err, &re) {
		return rpcResponse{Code: re.code, Error: re.msg}
	}
	return rpcResponse{Code: codeFailed, Error: err.Error()}
}

func writeFrame(w *bufio.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Flush()
}

func readFrame(r *bufio.Reader, v any) error {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxRPCFrame {
		return fmt.Errorf("rpc frame of %d bytes exceeds %d", size, maxRPCFrame)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// serveRPC answers requests on one connection until it closes. It runs on
// the mux layer's goroutine for the connection.
func (n *Node) serveRPC(c net.Conn) {
	select {
	case <-n.ready:
	case <-n.stop:
		return
	}
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		var req rpcRequest
		if err := readFrame(r, &req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				n.log.Debug("rpc connection closed", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		resp := n.handleRPC(req)
		if err := writeFrame(w, resp); err != nil {
			return
		}
	}
}

func (n *Node) handleRPC(req rpcRequest) rpcResponse {
	timeout := 10 * time.Second
	if req.TimeoutMs > 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(n.ctx, timeout)
	defer cancel()
	var err error
	resp := rpcResponse{}
	switch req.Op {
	case rpcStatus:
		st := n.localStatus()
		resp.Status = &st
	case rpcJoin:
		err = n.handleJoin(ctx, req)
	case rpcRemove:
		err = n.handleRemove(ctx, req)
	case rpcPropose:
		resp.Index, err = n.handleForwarded(ctx, req)
	default:
		err = &rpcError{codeRejected, fmt.Sprintf("unknown cluster rpc %q", req.Op)}
	}
	if err != nil {
		return errResponse(err)
	}
	return resp
}

// rpcClient calls other nodes' cluster RPCs, keeping an idle connection
// per address for the next call.
type rpcClient struct {
	mux *muxLayer

	mu   sync.Mutex
	idle map[string][]*rpcConn
}

type rpcConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

const maxIdleRPCConns = 2

func newRPCClient(m *muxLayer) *rpcClient {
	return &rpcClient{mux: m, idle: map[string][]*rpcConn{}}
}

// call sends req to the node at addr and returns its response; a failure
// the callee reports comes back as an *rpcError.
func (c *rpcClient) call(ctx context.Context, addr string, req rpcRequest) (rpcResponse, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	if req.TimeoutMs == 0 {
		req.TimeoutMs = max(time.Until(deadline).Milliseconds(), 1)
	}
	conn, reused, err := c.get(addr, time.Until(deadline))
	if err != nil {
		return rpcResponse{}, err
	}
	resp, err := c.exchange(ctx, conn, deadline, req)
	if err != nil && reused && ctx.Err() == nil {
		// An idle connection may have gone stale (peer restarted, isolation
		// healed): try once more on a fresh one.
		conn.c.Close()
		if conn, err = c.dial(addr, time.Until(deadline)); err != nil {
			return rpcResponse{}, err
		}
		resp, err = c.exchange(ctx, conn, deadline, req)
	}
	if err != nil {
		conn.c.Close()
		return rpcResponse{}, fmt.Errorf("cluster rpc %s to %s: %w", req.Op, addr, err)
	}
	c.put(addr, conn)
	if resp.Code != "" {
		return resp, &rpcError{resp.Code, resp.Error}
	}
	return resp, nil
}

func (c *rpcClient) exchange(ctx context.Context, conn *rpcConn, deadline time.Time, req rpcRequest) (rpcResponse, error) {
	conn.c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.c.SetDeadline(time.Now()) })
	defer stop()
	var resp rpcResponse
	if err := writeFrame(conn.w, req); err != nil {
		return resp, err
	}
	if err := readFrame(conn.r, &resp); err != nil {
		return resp, err
	}
	conn.c.SetDeadline(time.Time{})
	return resp, nil
}

func (c *rpcClient) get(addr string, timeout time.Duration) (*rpcConn, bool, error) {
	c.mu.Lock()
	if l := c.idle[addr]; len(l) > 0 {
		conn := l[len(l)-1]
		c.idle[addr] = l[:len(l)-1]
		c.mu.Unlock()
		return conn, true, nil
	}
	c.mu.Unlock()
	conn, err := c.dial(addr, timeout)
	return conn, false, err
}

func (c *rpcClient) dial(addr string, timeout time.Duration) (*rpcConn, error) {
	nc, err := c.mux.dial(addr, tagRPC, max(timeout, time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &rpcConn{c: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}, nil
}

func (c *rpcClient) put(addr string, conn *rpcConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle[addr]) >= maxIdleRPCConns {
		conn.c.Close()
		return
	}
	c.idle[addr] = append(c.idle[addr], conn)
}

// close drops the idle connections.
func (c *rpcClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, l := range c.idle {
		for _, conn := range l {
			conn.c.Close()
		}
		delete(c.idle, addr)
	}
}
