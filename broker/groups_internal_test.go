package broker

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupReplicator is a directReplicator that can also report that no
// leader is elected.
type groupReplicator struct {
	*directReplicator
	leaderless atomic.Bool
}

func (r *groupReplicator) Leader() (int32, int32, bool) {
	if r.leaderless.Load() {
		return -1, 0, false
	}
	return r.directReplicator.Leader()
}

// groupEnv is a broker on a loopback port whose coordinator settings a
// test may shorten.
type groupEnv struct {
	b    *Broker
	repl *groupReplicator
	addr string
}

func newGroupEnv(t *testing.T, tweak func(*groupsConfig)) *groupEnv {
	t.Helper()
	s, dr := fuzzStore(t)
	repl := &groupReplicator{directReplicator: dr}
	b := New(Config{NodeID: 1, CleanerInterval: -1}, s, repl)
	if tweak != nil {
		tweak(&b.groups.cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(ln) }()
	t.Cleanup(func() {
		b.Close()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &groupEnv{b: b, repl: repl, addr: ln.Addr().String()}
}

// rawMember is one connection speaking for one group member; requests go to
// the seed broker as they are, without kgo's coordinator lookup or retries.
type rawMember struct {
	t   *testing.T
	cl  *kgo.Client
	id  string
	gen int32
}

func (e *groupEnv) member(t *testing.T) *rawMember {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addr), kgo.ClientID("m"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &rawMember{t: t, cl: cl}
}

func (m *rawMember) req(req kmsg.Request) kmsg.Response {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := m.cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		m.t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// join sends one JoinGroup with the member's ID and records the answer.
func (m *rawMember) join(group string, sessionMs, rebalanceMs int32) *kmsg.JoinGroupResponse {
	m.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID = group, m.id
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = sessionMs, rebalanceMs
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	req.Protocols = append(req.Protocols, p)
	resp := m.req(req).(*kmsg.JoinGroupResponse)
	if resp.MemberID != "" {
		m.id = resp.MemberID
	}
	m.gen = resp.Generation
	return resp
}

// joinFully joins, answering MEMBER_ID_REQUIRED.
func (m *rawMember) joinFully(group string, sessionMs, rebalanceMs int32) *kmsg.JoinGroupResponse {
	m.t.Helper()
	resp := m.join(group, sessionMs, rebalanceMs)
	if resp.ErrorCode == kerr.MemberIDRequired.Code {
		resp = m.join(group, sessionMs, rebalanceMs)
	}
	return resp
}

func (m *rawMember) sync(group string) *kmsg.SyncGroupResponse {
	m.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.Generation, req.MemberID = group, m.gen, m.id
	return m.req(req).(*kmsg.SyncGroupResponse)
}

func (m *rawMember) heartbeat(group string) int16 {
	m.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = group, m.gen, m.id
	return m.req(req).(*kmsg.HeartbeatResponse).ErrorCode
}

// async runs fn in the background and returns its result on a channel.
func async[T any](fn func() T) <-chan T {
	ch := make(chan T, 1)
	go func() { ch <- fn() }()
	return ch
}

func waitUntil(t *testing.T, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	w := int16(0)
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Errorf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func (e *groupEnv) describe(t *testing.T, group string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	return e.member(t).req(req).(*kmsg.DescribeGroupsResponse).Groups[0]
}

func TestGroupSessionTimeoutRemovesMember(t *testing.T) {
	e := newGroupEnv(t, func(c *groupsConfig) { c.minSession = 10 * time.Millisecond })
	const g = "session"
	a, b := e.member(t), e.member(t)
	if r := a.joinFully(g, 200, 5000); r.ErrorCode != 0 {
		t.Fatalf("join a: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	a.sync(g)
	// b joins; a rejoins on REBALANCE_IN_PROGRESS; both sync.
	bj := async(func() *kmsg.JoinGroupResponse { return b.joinFully(g, 60000, 5000) })
	waitUntil(t, 5*time.Second, func() error {
		if c := a.heartbeat(g); c != kerr.RebalanceInProgress.Code {
			return fmt.Errorf("heartbeat: %v", kerr.ErrorForCode(c))
		}
		return nil
	})
	a.join(g, 200, 5000)
	<-bj
	if a.gen != 2 || b.gen != 2 {
		t.Fatalf("generations %d and %d after the second join", a.gen, b.gen)
	}
	as := async(func() *kmsg.SyncGroupResponse { return a.sync(g) })
	b.sync(g)
	<-as

	// a stops heartbeating: after its 200 ms session it is removed and b
	// is told to rejoin into a group of its own.
	start := time.Now()
	waitUntil(t, 5*time.Second, func() error {
		if c := b.heartbeat(g); c != kerr.RebalanceInProgress.Code {
			return fmt.Errorf("heartbeat of b: %v", kerr.ErrorForCode(c))
		}
		return nil
	})
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("a was removed after %v, before its 200ms session timeout", d)
	}
	if r := b.join(g, 60000, 5000); r.ErrorCode != 0 || r.Generation != 3 || len(r.Members) != 1 || r.LeaderID != b.id {
		t.Fatalf("rejoin of b: %+v", r)
	}
	wantCode(t, "heartbeat of the expired member", a.heartbeat(g), kerr.UnknownMemberID)
}

func TestGroupRebalanceTimeoutDropsLateMember(t *testing.T) {
	e := newGroupEnv(t, nil)
	const g = "late"
	a, b, c := e.member(t), e.member(t), e.member(t)
	a.joinFully(g, 30000, 300)
	bj := async(func() *kmsg.JoinGroupResponse { return b.joinFully(g, 30000, 300) })
	waitUntil(t, 5*time.Second, func() error {
		if c := a.heartbeat(g); c != kerr.RebalanceInProgress.Code {
			return fmt.Errorf("heartbeat: %v", kerr.ErrorForCode(c))
		}
		return nil
	})
	a.join(g, 30000, 300)
	<-bj
	as := async(func() *kmsg.SyncGroupResponse { return a.sync(g) })
	b.sync(g)
	<-as

	// c joins; a rejoins, b never does: after the 300 ms rebalance timeout
	// the generation completes without b.
	cj := async(func() *kmsg.JoinGroupResponse { return c.joinFully(g, 30000, 300) })
	waitUntil(t, 5*time.Second, func() error {
		if c := a.heartbeat(g); c != kerr.RebalanceInProgress.Code {
			return fmt.Errorf("heartbeat: %v", kerr.ErrorForCode(c))
		}
		return nil
	})
	start := time.Now()
	r := a.join(g, 30000, 300)
	<-cj
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("join completed after %v, before the rebalance timeout", d)
	}
	if r.ErrorCode != 0 || r.Generation != 3 || len(r.Members) != 2 {
		t.Fatalf("join after b timed out: %+v", r)
	}
	for _, m := range r.Members {
		if m.MemberID == b.id {
			t.Errorf("late member %s is still in generation 3", b.id)
		}
	}
	wantCode(t, "heartbeat of the late member", b.heartbeat(g), kerr.UnknownMemberID)
}

func TestGroupStaticFencing(t *testing.T) {
	e := newGroupEnv(t, nil)
	const g = "fence"
	old, repl := e.member(t), e.member(t)
	join := func(m *rawMember) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.InstanceID = g, kmsg.StringPtr("inst")
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30000, 5000
		req.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		req.Protocols = append(req.Protocols, p)
		resp := m.req(req).(*kmsg.JoinGroupResponse)
		m.id, m.gen = resp.MemberID, resp.Generation
		return resp
	}
	if r := join(old); r.ErrorCode != 0 || r.LeaderID != old.id {
		t.Fatalf("static join (no MEMBER_ID_REQUIRED for static members): %+v", r)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.Generation, sync.MemberID, sync.InstanceID = g, old.gen, old.id, kmsg.StringPtr("inst")
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = old.id, []byte("mine")
	sync.GroupAssignment = append(sync.GroupAssignment, a)
	old.req(sync)

	r := join(repl)
	if r.ErrorCode != 0 || repl.id == old.id || r.Generation != old.gen || !r.SkipAssignment || r.LeaderID != repl.id {
		t.Fatalf("replacement join: %+v", r)
	}
	sync.MemberID, sync.GroupAssignment = repl.id, nil
	if s := repl.req(sync).(*kmsg.SyncGroupResponse); s.ErrorCode != 0 || string(s.MemberAssignment) != "mine" {
		t.Fatalf("replacement sync: %+v", s)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID, hb.InstanceID = g, old.gen, old.id, kmsg.StringPtr("inst")
	wantCode(t, "heartbeat of the fenced member", old.req(hb).(*kmsg.HeartbeatResponse).ErrorCode, kerr.FencedInstanceID)

	// Administrative removal by instance ID alone.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = g
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.InstanceID = kmsg.StringPtr("inst")
	leave.Members = append(leave.Members, lm)
	if lr := old.req(leave).(*kmsg.LeaveGroupResponse); lr.ErrorCode != 0 || lr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance ID: %+v", lr)
	}
	// Kafka keeps the emptied group: Empty, still of type "consumer".
	if d := e.describe(t, g); d.State != "Empty" || d.ProtocolType != "consumer" || len(d.Members) != 0 {
		t.Fatalf("after the last static member left: state %s type %q with %d members", d.State, d.ProtocolType, len(d.Members))
	}
}

// A group whose members all left stays Empty for emptyRetention, then is
// forgotten (Dead) and its goroutine stops.
func TestGroupEmptyRetention(t *testing.T) {
	e := newGroupEnv(t, func(c *groupsConfig) { c.emptyRetention = 300 * time.Millisecond })
	const g = "retained"
	m := e.member(t)
	if r := m.joinFully(g, 30000, 5000); r.ErrorCode != 0 {
		t.Fatalf("join: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	m.sync(g)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = g
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = m.id
	leave.Members = append(leave.Members, lm)
	left := time.Now()
	if lr := m.req(leave).(*kmsg.LeaveGroupResponse); lr.ErrorCode != 0 || lr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", lr)
	}
	if d := e.describe(t, g); d.State != "Empty" || d.ProtocolType != "consumer" {
		t.Fatalf("right after the leave: state %s type %q", d.State, d.ProtocolType)
	}
	waitUntil(t, 5*time.Second, func() error {
		if d := e.describe(t, g); d.State != "Dead" {
			return fmt.Errorf("state %s type %q", d.State, d.ProtocolType)
		}
		return nil
	})
	if d := time.Since(left); d < 300*time.Millisecond {
		t.Errorf("forgotten %v after the leave, before the 300ms retention", d)
	}
	e.b.groups.mu.Lock()
	n, typ := len(e.b.groups.live), e.b.groups.types[g]
	e.b.groups.mu.Unlock()
	if n != 0 || typ != "" {
		t.Errorf("%d groups live, type %q remembered for a group without offsets", n, typ)
	}
}

func TestGroupNotCoordinator(t *testing.T) {
	e := newGroupEnv(t, nil)
	m := e.member(t)
	e.repl.follower.Store(true)
	wantCode(t, "join on a follower", m.joinFully("g", 30000, 5000).ErrorCode, kerr.NotCoordinator)
	wantCode(t, "heartbeat on a follower", m.heartbeat("g"), kerr.NotCoordinator)
	lg := m.req(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
	wantCode(t, "list on a follower", lg.ErrorCode, kerr.NotCoordinator)
	of := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = "g"
	of.Groups = append(of.Groups, rg)
	wantCode(t, "offset fetch on a follower", m.req(of).(*kmsg.OffsetFetchResponse).Groups[0].ErrorCode, kerr.NotCoordinator)

	e.repl.follower.Store(false)
	e.repl.leaderless.Store(true)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"g"}
	c := m.req(fc).(*kmsg.FindCoordinatorResponse).Coordinators[0]
	wantCode(t, "find coordinator without a leader", c.ErrorCode, kerr.CoordinatorNotAvailable)
	if c.NodeID != -1 {
		t.Errorf("coordinator node %d without a leader", c.NodeID)
	}
	wantCode(t, "join without a leader", m.joinFully("g", 30000, 5000).ErrorCode, kerr.CoordinatorNotAvailable)
	cr := kmsg.NewPtrOffsetCommitRequest()
	cr.Group, cr.Generation = "g", -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "t"
	ct.Partitions = append(ct.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	cr.Topics = append(cr.Topics, ct)
	wantCode(t, "commit without a leader", m.req(cr).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.CoordinatorNotAvailable)
}

// A parked JoinGroup is answered when the node stops leading, and a group
// of a previous leader epoch is not reused.
func TestGroupLeadershipLossAnswersParkedJoin(t *testing.T) {
	e := newGroupEnv(t, func(c *groupsConfig) { c.leaderCheck = 20 * time.Millisecond })
	const g = "lead"
	a, b := e.member(t), e.member(t)
	a.joinFully(g, 30000, 60000)
	a.sync(g)
	parked := async(func() *kmsg.JoinGroupResponse { return b.joinFully(g, 30000, 60000) })
	waitUntil(t, 5*time.Second, func() error {
		if c := a.heartbeat(g); c != kerr.RebalanceInProgress.Code {
			return fmt.Errorf("heartbeat: %v", kerr.ErrorForCode(c))
		}
		return nil
	})
	e.repl.follower.Store(true)
	select {
	case r := <-parked:
		wantCode(t, "parked join after losing the lead", r.ErrorCode, kerr.NotCoordinator)
	case <-time.After(5 * time.Second):
		t.Fatal("parked join not answered after the node stopped leading")
	}
	e.repl.follower.Store(false)
	wantCode(t, "heartbeat of a member of the old leader's group", a.heartbeat(g), kerr.UnknownMemberID)
}

// Closing the broker ends parked JoinGroups and every group goroutine.
func TestGroupCloseEndsParkedJoin(t *testing.T) {
	e := newGroupEnv(t, nil)
	const g = "close"
	a, b := e.member(t), e.member(t)
	a.joinFully(g, 30000, 60000)
	a.sync(g)
	b.join(g, 30000, 60000) // MEMBER_ID_REQUIRED
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis, req.ProtocolType = g, b.id, 30000, 60000, "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	req.Protocols = append(req.Protocols, p)
	parked := async(func() error {
		_, err := b.cl.SeedBrokers()[0].Request(context.Background(), req)
		return err
	})
	waitUntil(t, 5*time.Second, func() error {
		if c := a.heartbeat(g); c != kerr.RebalanceInProgress.Code {
			return fmt.Errorf("heartbeat: %v", kerr.ErrorForCode(c))
		}
		return nil
	})
	start := time.Now()
	closed := async(func() error { return e.b.Close() })
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a parked JoinGroup")
	}
	<-parked // answered or cut off; either way it returns
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("close took %v", d)
	}
	e.b.groups.mu.Lock()
	n := len(e.b.groups.live)
	e.b.groups.mu.Unlock()
	if n != 0 {
		t.Errorf("%d groups live after Close", n)
	}
}

func TestGroupSelectProtocol(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members [][]string // each member's protocols, most preferred first
		want    string
	}{
		{"one member", [][]string{{"sticky", "range"}}, "sticky"},
		{"common second choice", [][]string{{"sticky", "range"}, {"roundrobin", "range"}}, "range"},
		{"majority of first choices", [][]string{{"a", "b"}, {"b", "a"}, {"b", "a"}}, "b"},
		{"tie goes to the smaller name", [][]string{{"b", "a"}, {"a", "b"}}, "a"},
		{"only a common one counts", [][]string{{"x", "c"}, {"x", "c"}, {"c"}}, "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGroup(nil, "g", 0)
			for i, ps := range tc.members {
				m := &member{id: fmt.Sprint(i)}
				for _, p := range ps {
					m.protocols = append(m.protocols, protocol{name: p})
				}
				g.members[m.id] = m
			}
			if got := g.selectProtocol(); got != tc.want {
				t.Errorf("selected %q, want %q", got, tc.want)
			}
		})
	}
}
