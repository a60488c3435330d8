package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kbox-dev/kbox/broker"
	"github.com/kbox-dev/kbox/broker/storage"
)

// Proposals on a follower. Produce is never forwarded: a follower answers
// NOT_LEADER_OR_FOLLOWER so that clients move to the leader, as they do
// with Kafka. Group state (offset commits, group deletes) is owned by the
// coordinator on the leader and is not forwarded either. The admin and
// bookkeeping commands below are, so that CreateTopics, auto-creation on
// Metadata, InitProducerID and a node's own registration work from any
// node: the follower sends the encoded command to the leader (rpcPropose),
// the leader applies it with a nonce in the Raft log entry's Extensions,
// and when this node applies that entry its FSM hands the local result —
// the same as the leader's, since apply is deterministic — to the waiting
// proposer. The nonce lives only in the Raft log, so state stays identical.

// forwardable reports whether a follower passes op on to the leader.
func forwardable(op storage.Op) bool {
	switch op {
	case storage.OpCreateTopic, storage.OpDeleteTopic, storage.OpCreatePartitions,
		storage.OpAlterConfigs, storage.OpInitProducerID, storage.OpRegisterNode, storage.OpAlterDefaults:
		return true
	}
	return false
}

// errResultUnknown is returned to a forwarded proposal when this node
// restored a snapshot while waiting: the command may have been applied,
// but its result was not seen here.
var errResultUnknown = errors.New("forwarded command's result is unknown: a snapshot was restored meanwhile")

// Propose implements broker.Replicator. On the leader it applies cmd
// through Raft; on a follower it forwards the commands [forwardable]
// allows and returns ErrNotLeader for the others.
func (n *Node) Propose(ctx context.Context, cmd storage.Command) (any, error) {
	data, err := storage.Encode(cmd)
	if err != nil {
		return nil, err
	}
	if n.leading() {
		res, _, err := n.apply(ctx, data, nil)
		if err != nil && !errors.Is(err, broker.ErrNotLeader) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("propose %s: %w", cmd.Op(), err)
		}
		return res, err
	}
	if !forwardable(cmd.Op()) || n.mux == nil {
		return nil, broker.ErrNotLeader
	}
	return n.forward(ctx, cmd.Op(), data)
}

// leading reports whether this node is the leader and has committed its
// epoch, so it may take writes.
func (n *Node) leading() bool {
	return n.raft.State() == raft.Leader && n.epochReady.Load() == n.raft.CurrentTerm()
}

// apply proposes data (with a nonce for a forwarded command) and returns
// the FSM's result and the entry's index.
func (n *Node) apply(ctx context.Context, data, nonce []byte) (any, uint64, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.ApplyLog(raft.Log{Data: data, Extensions: nonce}, timeout)
	res, err := applyResult(f)
	return res, f.Index(), err
}

// applyResult waits for an applied entry and maps Raft's errors onto the
// broker's.
func applyResult(f raft.ApplyFuture) (any, error) {
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown):
			return nil, broker.ErrNotLeader
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	if e, ok := f.Response().(errApplyFailed); ok {
		return nil, e.err
	}
	return f.Response(), nil
}

// Submit implements broker.Submitter, the pipelined form of Propose for
// produce: on the leader it enqueues cmd into the Raft log before it
// returns, so calls from one connection stay in order, and the returned
// function waits for the result. Nothing is forwarded: a follower's wait
// returns ErrNotLeader.
func (n *Node) Submit(ctx context.Context, cmd storage.Command) func() (any, error) {
	data, err := storage.Encode(cmd)
	if err == nil && !n.leading() {
		err = broker.ErrNotLeader
	}
	if err != nil {
		return func() (any, error) { return nil, err }
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.ApplyLog(raft.Log{Data: data}, timeout)
	return func() (any, error) { return applyResult(f) }
}

// forward sends a command to the leader and waits for this node to apply
// it.
func (n *Node) forward(ctx context.Context, op storage.Op, data []byte) (any, error) {
	addr, id := n.raft.LeaderWithID()
	if addr == "" {
		return nil, broker.ErrNotLeader
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	ch := n.waiters.add(nonce)
	defer n.waiters.remove(nonce)
	if _, err := n.rpc.call(ctx, string(addr), rpcRequest{Op: rpcPropose, Data: data, Nonce: nonce}); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		n.log.Debug("forward to leader failed", "op", op, "leader", id, "err", err)
		var re *rpcError
		if errors.As(err, &re) && (re.code == codeFailed || re.code == codeRejected) {
			return nil, fmt.Errorf("forward %s to leader %s: %s", op, id, re.msg)
		}
		return nil, broker.ErrNotLeader
	}
	select {
	case res := <-ch:
		if e, ok := res.(error); ok && errors.Is(e, errResultUnknown) {
			return nil, e
		}
		if e, ok := res.(errApplyFailed); ok {
			return nil, e.err
		}
		return res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.stop:
		return nil, broker.ErrNotLeader
	}
}

// handleForwarded applies a command a follower forwarded.
func (n *Node) handleForwarded(ctx context.Context, req rpcRequest) (uint64, error) {
	if len(req.Data) == 0 || !forwardable(storage.Op(req.Data[0])) {
		return 0, &rpcError{codeRejected, "command may not be forwarded"}
	}
	if !n.leading() {
		return 0, &rpcError{codeNotLeader, "not the leader"}
	}
	_, idx, err := n.apply(ctx, req.Data, req.Nonce)
	if errors.Is(err, broker.ErrNotLeader) {
		return 0, &rpcError{codeNotLeader, "lost leadership"}
	}
	return idx, err
}

// waiters are forwarded proposals waiting for this node to apply their
// entry. The FSM goroutine delivers; proposers add and remove.
type waiters struct {
	mu sync.Mutex
	m  map[string]chan any
}

func (w *waiters) add(nonce []byte) chan any {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]chan any{}
	}
	ch := make(chan any, 1)
	w.m[string(nonce)] = ch
	return ch
}

func (w *waiters) remove(nonce []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, string(nonce))
}

// deliver hands res to the proposer waiting on nonce, if it is this node's.
func (w *waiters) deliver(nonce []byte, res any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.m[string(nonce)]; ok {
		ch <- res
		delete(w.m, string(nonce))
	}
}

// failAll tells every waiter its result is unknown: a snapshot restore
// skipped the entries it waits for, or may have.
func (w *waiters) failAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, ch := range w.m {
		ch <- errResultUnknown
		delete(w.m, k)
	}
}
