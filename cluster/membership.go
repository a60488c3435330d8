package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kbox-dev/kbox/broker"
	"github.com/kbox-dev/kbox/broker/storage"
)

// Membership. The first node bootstraps a one-voter configuration; a new
// node started with Config.Join asks any member to add it (rpcJoin), and a
// member that is not the leader passes the request on once. The leader
// adds the node as a voter, the new node receives the log or a snapshot,
// and registers its Kafka address (storage.RegisterNode) so every node's
// Metadata lists it. Removal unregisters the node, then takes it out of
// the configuration; a removed node stops itself with ErrRemoved.

var (
	// ErrRemoved stops a node that was removed from the cluster.
	ErrRemoved = errors.New("removed from the cluster")
	// ErrRestartRequested stops a node that was asked to restart in place
	// (POST /cluster/restart); its supervisor starts it again on the same
	// Config (kbox up does, and so does the test cluster).
	ErrRestartRequested = errors.New("restart requested")
)

// joinLoop asks the member at addr to add this node, retrying until it is
// a member, the request is rejected, or the node stops.
func (n *Node) joinLoop(addr string) {
	defer n.wg.Done()
	backoff := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if n.isMember() {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		_, err := n.rpc.call(ctx, addr, rpcRequest{Op: rpcJoin, ID: n.cfg.NodeID, RaftAddr: n.RaftAddr()})
		cancel()
		if err == nil {
			n.log.Info("joined the cluster", "via", addr)
			return
		}
		var re *rpcError
		if errors.As(err, &re) && re.code == codeRejected {
			n.fail(fmt.Errorf("join via %s: %w", addr, err))
			return
		}
		if attempt%20 == 1 {
			n.log.Warn("cannot join yet; retrying", "via", addr, "err", err)
		}
		select {
		case <-n.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// isMember reports whether this node is in the latest configuration.
func (n *Node) isMember() bool { return n.hasMember(n.cfg.NodeID) }

// hasMember reports whether node id is in this node's latest configuration.
func (n *Node) hasMember(id int32) bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	sid := raft.ServerID(strconv.Itoa(int(id)))
	for _, s := range cf.Configuration().Servers {
		if s.ID == sid {
			return true
		}
	}
	return false
}

// handleJoin adds a voter on the leader, or passes the request to it.
func (n *Node) handleJoin(ctx context.Context, req rpcRequest) error {
	if req.ID <= 0 || req.RaftAddr == "" {
		return &rpcError{codeRejected, "join needs a positive node id and a raft address"}
	}
	if n.raft.State() != raft.Leader {
		return n.toLeader(ctx, req)
	}
	return n.addVoter(ctx, req.ID, req.RaftAddr)
}

// toLeader passes a membership request to the leader, once.
func (n *Node) toLeader(ctx context.Context, req rpcRequest) error {
	addr, _ := n.raft.LeaderWithID()
	if req.Forwarded || addr == "" {
		return &rpcError{codeNotLeader, "no leader known"}
	}
	req.Forwarded = true
	_, err := n.rpc.call(ctx, string(addr), req)
	return err
}

func (n *Node) addVoter(ctx context.Context, id int32, addr string) error {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return raftErr(err)
	}
	sid := raft.ServerID(strconv.Itoa(int(id)))
	for _, s := range cf.Configuration().Servers {
		switch {
		case s.ID == sid && string(s.Address) == addr && s.Suffrage == raft.Voter:
			return nil
		case s.ID == sid && string(s.Address) != addr:
			return &rpcError{codeRejected, fmt.Sprintf("node %d is already a member at %s; remove it first", id, s.Address)}
		case s.ID != sid && string(s.Address) == addr:
			return &rpcError{codeRejected, fmt.Sprintf("raft address %s belongs to node %s", addr, s.ID)}
		}
	}
	n.log.Info("adding voter", "node", id, "raft_addr", addr)
	return raftErr(waitFuture(ctx, n.raft.AddVoter(sid, raft.ServerAddress(addr), 0, timeoutOf(ctx))))
}

// handleRemove unregisters and removes a member on the leader, or passes
// the request to it.
func (n *Node) handleRemove(ctx context.Context, req rpcRequest) error {
	if n.raft.State() != raft.Leader {
		return n.toLeader(ctx, req)
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return raftErr(err)
	}
	sid := raft.ServerID(strconv.Itoa(int(req.ID)))
	servers := cf.Configuration().Servers
	found := false
	for _, s := range servers {
		found = found || s.ID == sid
	}
	switch {
	case !found:
		return &rpcError{codeRejected, fmt.Sprintf("node %d is not a member", req.ID)}
	case len(servers) == 1:
		return &rpcError{codeRejected, "cannot remove the last member"}
	}
	if !n.leading() {
		return &rpcError{codeNotLeader, "leader has not claimed its epoch yet"}
	}
	if sid == n.raftID() {
		// A leader that removes itself stops leading only once the change
		// commits and then waits out an election; handing over first is
		// quicker, and the new leader removes this node as a follower.
		n.log.Info("handing leadership over before leaving the cluster")
		if err := waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
			return raftErr(err)
		}
		return &rpcError{codeNotLeader, "leadership handed over; retry at the new leader"}
	}
	data, _ := storage.Encode(storage.RegisterNode{ID: req.ID})
	if _, _, err := n.apply(ctx, data, nil); err != nil {
		return raftErr(err)
	}
	n.log.Info("removing member", "node", req.ID)
	return raftErr(waitFuture(ctx, n.raft.RemoveServer(sid, 0, timeoutOf(ctx))))
}

// waitFuture waits for a Raft future or for ctx, whichever ends first.
// Raft resolves every future at the latest when it shuts down, which ends
// the goroutine.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AddVoter adds the node id, already running at raftAddr without state
// (started with a Join address), to the cluster, through the leader.
func (n *Node) AddVoter(ctx context.Context, id int32, raftAddr string) error {
	return n.memberRPC(ctx, rpcRequest{Op: rpcJoin, ID: id, RaftAddr: raftAddr})
}

// RemoveMember takes node id out of the cluster, through the leader; the
// removed node stops itself with ErrRemoved.
func (n *Node) RemoveMember(ctx context.Context, id int32) error {
	return n.memberRPC(ctx, rpcRequest{Op: rpcRemove, ID: id})
}

// memberRPC runs a membership request here, retrying while no leader is
// known.
func (n *Node) memberRPC(ctx context.Context, req rpcRequest) error {
	if n.mux == nil {
		return errors.New("a node without a raft address cannot change membership")
	}
	for {
		var err error
		if req.Op == rpcJoin {
			err = n.handleJoin(ctx, req)
		} else {
			err = n.handleRemove(ctx, req)
		}
		var re *rpcError
		if err == nil || !errors.As(err, &re) || re.code != codeNotLeader {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s node %d: %w (last: %v)", req.Op, req.ID, ctx.Err(), err)
		case <-n.stop:
			return errors.New("node stopped")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkRemoved stops the node once it has left the configuration it was
// part of. It reports whether it did.
func (n *Node) checkRemoved(servers []raft.Server) bool {
	in := false
	for _, s := range servers {
		in = in || s.ID == n.raftID()
	}
	n.mon.mu.Lock()
	was := n.mon.wasMember
	n.mon.wasMember = was || in
	n.mon.mu.Unlock()
	if was && !in {
		select {
		case <-n.stop:
			return true
		default:
		}
		n.stopWith(ErrRemoved)
		return true
	}
	return false
}

// ensureRegistered proposes this node's Kafka address when the store does
// not hold it yet (a new node, or a restart on another address).
func (n *Node) ensureRegistered() {
	if n.advertised == "" {
		return
	}
	if _, _, ok := n.Leader(); !ok || time.Since(n.lastRegister) < 500*time.Millisecond {
		return
	}
	regs, err := n.store.Nodes()
	if err != nil {
		return
	}
	for _, r := range regs {
		if r.ID == n.cfg.NodeID && r.Addr == n.advertised {
			return
		}
	}
	n.lastRegister = time.Now()
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	if _, err := n.Propose(ctx, storage.RegisterNode{ID: n.cfg.NodeID, Addr: n.advertised}); err != nil {
		n.log.Debug("register kafka address", "err", err)
	}
}

// raftErr turns Raft's leadership errors into codeNotLeader RPC errors.
func raftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return &rpcError{codeNotLeader, err.Error()}
	}
	var re *rpcError
	if errors.As(err, &re) {
		return err
	}
	if errors.Is(err, broker.ErrNotLeader) {
		return &rpcError{codeNotLeader, err.Error()}
	}
	return err
}

// timeoutOf is the time left before ctx's deadline, or 10s.
func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 10 * time.Second
}
