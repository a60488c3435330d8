package cluster

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kbox-dev/kbox/broker"
)

// NodeStatus is one node's report on itself: the answer to the status RPC
// and one row of `kbox cluster status`.
type NodeStatus struct {
	ID        int32  `json:"id"`
	RaftAddr  string `json:"raft_addr"`
	KafkaAddr string `json:"kafka_addr,omitempty"`
	HTTPAddr  string `json:"http_addr,omitempty"`
	// State is leader, follower, candidate or shutdown.
	State string `json:"state"`
	// Leader is the node ID this node follows (itself when leading), or -1.
	Leader int32  `json:"leader"`
	Term   uint64 `json:"term"`
	// AppliedIndex is the last Raft log index applied to the store.
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	// FirstLogIndex and LastLogIndex bound the Raft log kept on disk;
	// entries below FirstLogIndex were truncated after a snapshot.
	FirstLogIndex uint64 `json:"first_log_index"`
	LastLogIndex  uint64 `json:"last_log_index"`
	// SnapshotIndex and SnapshotBytes describe the latest local snapshot.
	SnapshotIndex uint64 `json:"snapshot_index"`
	SnapshotBytes int64  `json:"snapshot_bytes"`
	// SnapshotsInstalled counts snapshots received from a leader since
	// start; SnapshotInstallMs is how long the latest took to install.
	SnapshotsInstalled int64 `json:"snapshots_installed"`
	SnapshotInstallMs  int64 `json:"snapshot_install_ms,omitempty"`
	// ISR is the in-sync replica set as the leader computes it; only the
	// leader reports it, and the other nodes adopt it for their Metadata.
	ISR []int32 `json:"isr,omitempty"`
	// CatchUpMs is how long after start this node first caught up with the
	// leader, or -1 while it has not.
	CatchUpMs int64 `json:"catch_up_ms"`
	UptimeMs  int64 `json:"uptime_ms"`
}

// MemberStatus is one member as the answering node sees it.
type MemberStatus struct {
	NodeStatus
	Voter bool `json:"voter"`
	// Reachable is false when the member did not answer the last poll or
	// has not answered recently; its NodeStatus is then the last one it
	// gave, if any.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Lag is how many entries the member's applied index trails the
	// leader's.
	Lag uint64 `json:"lag"`
	// InSync is whether the member is in every partition's ISR.
	InSync bool `json:"in_sync"`
}

// ClusterStatus is the cluster as one node sees it: GET /cluster.
type ClusterStatus struct {
	// Node is the ID of the node that answered.
	Node int32 `json:"node"`
	// Leader is the leader's ID, or -1.
	Leader int32 `json:"leader"`
	// Epoch is the leader epoch (the Raft term of the current leader).
	Epoch   int32          `json:"epoch"`
	Members []MemberStatus `json:"members"`
}

// monitor is a node's view of its peers, refreshed by pollLoop: their
// status, which are alive, and which are in sync with the leader.
type monitor struct {
	mu      sync.Mutex
	polled  bool
	members map[int32]*member
	// target is the leader's applied index one round ago (if hasTarget: the
	// leader was known then): a member whose applied index has reached it
	// is caught up.
	target        uint64
	hasTarget     bool
	leaderApplied uint64
	// catchUp is when this node first caught up, measured from start; -1
	// until then.
	catchUp time.Duration
	// wasMember is set once this node has been in the configuration.
	wasMember bool

	snapListed bool
	snapGen    int64
	snapIndex  uint64
	snapBytes  int64
}

type member struct {
	id       int32
	addr     string
	voter    bool
	status   NodeStatus
	hasState bool
	err      string
	seen     time.Time
	caughtUp time.Time
}

// pollInterval is how often a node asks its peers for their status.
func (n *Node) pollInterval() time.Duration {
	if n.cfg.FastTimeouts {
		return 50 * time.Millisecond
	}
	return 200 * time.Millisecond
}

// lagTime is how long a member may go without catching up with the leader
// before it leaves the ISR, like Kafka's replica.lag.time.max.ms.
func (n *Node) lagTime() time.Duration { return 10 * n.pollInterval() }

// pollLoop refreshes the monitor until the node stops. It owns the status
// calls it makes and the node's own registration.
func (n *Node) pollLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.pollInterval())
	defer t.Stop()
	for {
		n.pollRound()
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

type pollResult struct {
	status *NodeStatus
	err    error
}

func (n *Node) pollRound() {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		n.checkRemoved(nil)
		return
	}
	servers := cf.Configuration().Servers
	results := make([]pollResult, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		if s.ID == n.raftID() || n.rpc == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(n.ctx, max(2*n.pollInterval(), 100*time.Millisecond))
			defer cancel()
			resp, err := n.rpc.call(ctx, string(s.Address), rpcRequest{Op: rpcStatus})
			results[i] = pollResult{status: resp.Status, err: err}
		}()
	}
	wg.Wait()
	n.mon.update(n, time.Now(), n.localStatus(), servers, results)
	if !n.checkRemoved(servers) {
		n.ensureRegistered()
	}
}

func (m *monitor) update(n *Node, now time.Time, self NodeStatus, servers []raft.Server, results []pollResult) {
	lag := n.lagTime()
	m.mu.Lock()
	defer m.mu.Unlock()
	next := make(map[int32]*member, len(servers))
	for i, s := range servers {
		id, err := strconv.Atoi(string(s.ID))
		if err != nil {
			continue
		}
		mb := m.members[int32(id)]
		if mb == nil {
			mb = &member{id: int32(id)}
		}
		mb.addr, mb.voter = string(s.Address), s.Suffrage == raft.Voter
		switch {
		case int32(id) == self.ID:
			mb.status, mb.hasState, mb.seen, mb.err = self, true, now, ""
		case results[i].err != nil:
			mb.err = results[i].err.Error()
		case results[i].status != nil:
			mb.status, mb.hasState, mb.seen, mb.err = *results[i].status, true, now, ""
		}
		next[int32(id)] = mb
	}
	m.members, m.polled = next, true
	leaderApplied, known := uint64(0), false
	if self.State == "leader" {
		leaderApplied, known = self.AppliedIndex, true
	} else if lm := next[self.Leader]; lm != nil && now.Sub(lm.seen) <= lag && lm.status.State == "leader" {
		leaderApplied, known = lm.status.AppliedIndex, true
	}
	for _, mb := range next {
		leaderSelf := mb.id == self.ID && self.State == "leader"
		if leaderSelf || (m.hasTarget && now.Sub(mb.seen) <= lag && mb.status.AppliedIndex >= m.target) {
			mb.caughtUp = now
		}
	}
	m.hasTarget = known
	if known {
		m.target, m.leaderApplied = leaderApplied, leaderApplied
		if sm := next[self.ID]; m.catchUp < 0 && sm != nil && sm.caughtUp.Equal(now) {
			m.catchUp = time.Since(n.startedAt)
		}
	}
}

// inSync is the ISR of every partition: on the leader, the voters caught
// up with it within lagTime; elsewhere, the ISR the leader reported in its
// last status, or this node's own estimate when that is stale.
func (n *Node) inSync() []int32 {
	now, lag := time.Now(), n.lagTime()
	leading := n.leading()
	_, lid := n.raft.LeaderWithID()
	n.mon.mu.Lock()
	defer n.mon.mu.Unlock()
	if !leading && lid != "" {
		if id, err := strconv.Atoi(string(lid)); err == nil {
			if lm := n.mon.members[int32(id)]; lm != nil && len(lm.status.ISR) > 0 && now.Sub(lm.seen) <= lag {
				return slices.Clone(lm.status.ISR)
			}
		}
	}
	return n.mon.ownISR(now, lag, n.cfg.NodeID)
}

// ownISR lists the voters this node saw catch up within lag. mu is held.
func (m *monitor) ownISR(now time.Time, lag time.Duration, self int32) []int32 {
	var out []int32
	for id, mb := range m.members {
		if mb.voter && !mb.caughtUp.IsZero() && now.Sub(mb.caughtUp) <= lag {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		out = append(out, self)
	}
	slices.Sort(out)
	return out
}

// listed reports which nodes Metadata lists: the members of the latest
// configuration, or nil (no filter) before the first poll. The leader,
// which hears from a quorum, also drops members that have not answered it
// recently. Other nodes do not: a node cut off from the rest must not tell
// clients that it is the only broker left, or they would forget the
// majority and wait on it until it heals.
func (n *Node) listed() map[int32]bool {
	leading := n.leading()
	now, lag := time.Now(), n.lagTime()
	n.mon.mu.Lock()
	defer n.mon.mu.Unlock()
	if !n.mon.polled {
		return nil
	}
	out := map[int32]bool{n.cfg.NodeID: true}
	for id, mb := range n.mon.members {
		if !leading || now.Sub(mb.seen) <= lag {
			out[id] = true
		}
	}
	return out
}

// brokers lists the registered members for Metadata and DescribeCluster,
// without those the leader cannot reach (see listed). An empty list makes
// the broker describe just itself.
func (n *Node) brokers() []broker.BrokerInfo {
	regs, err := n.store.Nodes()
	if err != nil {
		return nil
	}
	listed := n.listed()
	out := make([]broker.BrokerInfo, 0, len(regs))
	for _, r := range regs {
		if listed != nil && !listed[r.ID] {
			continue
		}
		host, p, err := net.SplitHostPort(r.Addr)
		if err != nil {
			continue
		}
		port, _ := strconv.Atoi(p)
		out = append(out, broker.BrokerInfo{NodeID: r.ID, Host: host, Port: int32(port)})
	}
	return out
}

// replicas lists every registered member, reachable or not: the replica
// list of every partition (Metadata reports unreachable ones as offline).
func (n *Node) replicas() []int32 {
	regs, err := n.store.Nodes()
	if err != nil {
		return nil
	}
	out := make([]int32, 0, len(regs))
	for _, r := range regs {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return out
}

// localStatus is this node's NodeStatus now.
func (n *Node) localStatus() NodeStatus {
	st := NodeStatus{
		ID:           n.cfg.NodeID,
		RaftAddr:     n.RaftAddr(),
		KafkaAddr:    n.advertised,
		HTTPAddr:     n.HTTPAddr(),
		State:        stateName(n.raft.State()),
		Leader:       -1,
		Term:         n.raft.CurrentTerm(),
		AppliedIndex: n.store.Applied(),
		CommitIndex:  n.raft.CommitIndex(),
		LastLogIndex: n.raft.LastIndex(),
		UptimeMs:     time.Since(n.startedAt).Milliseconds(),
		CatchUpMs:    -1,
	}
	if id, _, ok := n.Leader(); ok {
		st.Leader = id
	} else if _, lid := n.raft.LeaderWithID(); lid != "" {
		if v, err := strconv.Atoi(string(lid)); err == nil {
			st.Leader = int32(v)
		}
	}
	if first, err := n.logs.FirstIndex(); err == nil {
		st.FirstLogIndex = first
	}
	st.SnapshotIndex, st.SnapshotBytes = n.snapshotInfo()
	if st.State == "leader" {
		n.mon.mu.Lock()
		st.ISR = n.mon.ownISR(time.Now(), n.lagTime(), n.cfg.NodeID)
		n.mon.mu.Unlock()
	}
	st.SnapshotsInstalled = n.fsm.restores.Load()
	st.SnapshotInstallMs = time.Duration(n.fsm.lastRestore.Load()).Milliseconds()
	n.mon.mu.Lock()
	if n.mon.catchUp >= 0 {
		st.CatchUpMs = n.mon.catchUp.Milliseconds()
	}
	n.mon.mu.Unlock()
	return st
}

// snapshotInfo returns the latest snapshot's index and size, listing the
// snapshot directory only after a snapshot was written or installed.
func (n *Node) snapshotInfo() (uint64, int64) {
	n.mon.mu.Lock()
	defer n.mon.mu.Unlock()
	if gen := n.fsm.persisted.Load() + n.fsm.restores.Load(); gen != n.mon.snapGen || !n.mon.snapListed {
		n.mon.snapGen, n.mon.snapListed = gen, true
		if list, err := n.snaps.List(); err == nil && len(list) > 0 {
			n.mon.snapIndex, n.mon.snapBytes = list[0].Index, list[0].Size
		}
	}
	return n.mon.snapIndex, n.mon.snapBytes
}

// Status reports the cluster as this node sees it (GET /cluster).
func (n *Node) Status() ClusterStatus {
	self := n.localStatus()
	cs := ClusterStatus{Node: n.cfg.NodeID, Leader: self.Leader, Epoch: n.store.Epoch()}
	isr := n.inSync()
	now, lag := time.Now(), n.lagTime()
	n.mon.mu.Lock()
	defer n.mon.mu.Unlock()
	leaderApplied := n.mon.leaderApplied
	if self.State == "leader" {
		leaderApplied = self.AppliedIndex
	}
	for _, mb := range n.mon.members {
		ms := MemberStatus{NodeStatus: mb.status, Voter: mb.voter, Error: mb.err}
		if mb.id == n.cfg.NodeID {
			ms.NodeStatus = self
		}
		if !mb.hasState {
			ms.ID, ms.RaftAddr, ms.Leader, ms.CatchUpMs = mb.id, mb.addr, -1, -1
		}
		ms.Reachable = mb.id == n.cfg.NodeID || (mb.err == "" && now.Sub(mb.seen) <= lag)
		ms.InSync = slices.Contains(isr, mb.id)
		if leaderApplied > ms.AppliedIndex {
			ms.Lag = leaderApplied - ms.AppliedIndex
		}
		cs.Members = append(cs.Members, ms)
	}
	if !slices.ContainsFunc(cs.Members, func(m MemberStatus) bool { return m.ID == n.cfg.NodeID }) {
		// Not in the configuration (yet, or any more): still report itself.
		cs.Members = append(cs.Members, MemberStatus{NodeStatus: self, Reachable: true})
	}
	slices.SortFunc(cs.Members, func(a, b MemberStatus) int { return int(a.ID - b.ID) })
	return cs
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	}
	return "shutdown"
}
