package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/cluster"
)

// groupTestPartitions is num.partitions of the group tests' node.
const groupTestPartitions = 4

// startGroupNode starts a one-node kbox and returns its Kafka address.
func startGroupNode(t *testing.T) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(groupLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := cluster.StartNode(cluster.Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "off",
		AutoCreateTopics: true, DefaultPartitions: groupTestPartitions, Logger: log})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n.KafkaAddr()
}

type groupLogWriter struct{ t *testing.T }

func (w groupLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newGroupClient returns a kgo client closed at cleanup (Close is
// idempotent, so tests may close it earlier).
func newGroupClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// waitFor polls fn until it returns nil, failing with its last error.
func waitFor(t *testing.T, d time.Duration, fn func() error) {
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
		time.Sleep(20 * time.Millisecond)
	}
}

// produceN writes n records with values prefix-0.. to topic, spread over
// its partitions.
func produceN(t *testing.T, cl *kgo.Client, topic, prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % groupTestPartitions), Value: fmt.Appendf(nil, "%s-%d", prefix, i)})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// assignment tracks a group client's current partitions of one topic.
type assignment struct {
	mu    sync.Mutex
	parts map[int32]bool
}

func (a *assignment) opts(topic string) []kgo.Opt {
	a.parts = map[int32]bool{}
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, p := range m[topic] {
				a.parts[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { a.drop(m[topic]) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { a.drop(m[topic]) }),
	}
}

func (a *assignment) drop(ps []int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range ps {
		delete(a.parts, p)
	}
}

func (a *assignment) get() []int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []int32
	for p := range a.parts {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// pollInto polls cl in the background until ctx ends, counting the
// records per value prefix.
func pollInto(ctx context.Context, cl *kgo.Client, seen *sync.Map) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				v, _ := seen.LoadOrStore(string(r.Value), new(int))
				*v.(*int)++
			})
		}
	}()
	return done
}

func countSeen(seen *sync.Map) int {
	n := 0
	seen.Range(func(_, _ any) bool { n++; return true })
	return n
}

func TestGroupTwoConsumersRebalanceCommitResume(t *testing.T) {
	addr := startGroupNode(t)
	const topic, group = "orders", "g-rebalance"
	prod := newGroupClient(t, addr)
	produceN(t, prod, topic, "a", 100)

	groupOpts := func(a *assignment) []kgo.Opt {
		return append(a.opts(topic), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
			kgo.HeartbeatInterval(100*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	var a1, a2 assignment
	c1 := newGroupClient(t, addr, groupOpts(&a1)...)
	c2 := newGroupClient(t, addr, groupOpts(&a2)...)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var seen sync.Map
	d1, d2 := pollInto(ctx, c1, &seen), pollInto(ctx, c2, &seen)

	// Both members get partitions, together all of them, none twice.
	waitFor(t, 20*time.Second, func() error {
		p1, p2 := a1.get(), a2.get()
		if len(p1) == 0 || len(p2) == 0 || len(p1)+len(p2) != groupTestPartitions {
			return fmt.Errorf("assignments %v and %v", p1, p2)
		}
		for _, p := range p1 {
			for _, q := range p2 {
				if p == q {
					return fmt.Errorf("partition %d in both %v and %v", p, p1, p2)
				}
			}
		}
		return nil
	})
	waitFor(t, 20*time.Second, func() error {
		if n := countSeen(&seen); n != 100 {
			return fmt.Errorf("consumed %d of 100 distinct records", n)
		}
		return nil
	})
	for _, c := range []*kgo.Client{c1, c2} {
		if err := c.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}

	// One leaves; the other takes over every partition and resumes the
	// leaver's partitions from its commits.
	c2.Close()
	<-d2
	waitFor(t, 20*time.Second, func() error {
		if p := a1.get(); len(p) != groupTestPartitions {
			return fmt.Errorf("remaining member has %v", p)
		}
		return nil
	})
	produceN(t, prod, topic, "b", 20)
	waitFor(t, 20*time.Second, func() error {
		if n := countSeen(&seen); n != 120 {
			return fmt.Errorf("consumed %d of 120 distinct records", n)
		}
		return nil
	})
	if err := c1.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	cancel()
	<-d1
	c1.Close()
	seen.Range(func(k, v any) bool {
		// "b" records were produced into a stable group: each is read
		// once ("a" ones may repeat if the first join split in two).
		if n := *v.(*int); n != 1 && strings.HasPrefix(k.(string), "b-") {
			t.Errorf("%s consumed %d times", k, n)
		}
		return true
	})

	// The committed offsets are stored: a new member resumes after them.
	adm := kadm.NewClient(prod)
	actx, acancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer acancel()
	offs, err := adm.FetchOffsets(actx, group)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 120 {
		t.Fatalf("committed offsets sum to %d, want 120: %v", total, offs)
	}
	produceN(t, prod, topic, "c", 20)
	var a3 assignment
	c3 := newGroupClient(t, addr, groupOpts(&a3)...)
	var seen3 sync.Map
	ctx3, cancel3 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel3()
	d3 := pollInto(ctx3, c3, &seen3)
	waitFor(t, 20*time.Second, func() error {
		if n := countSeen(&seen3); n < 20 {
			return fmt.Errorf("resumed consumer read %d of 20 new records", n)
		}
		return nil
	})
	cancel3()
	<-d3
	seen3.Range(func(k, _ any) bool {
		if !strings.HasPrefix(k.(string), "c-") {
			t.Errorf("resumed consumer re-read %q, committed before", k)
		}
		return true
	})
}

func TestGroupStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	addr := startGroupNode(t)
	const topic, group = "static", "g-static"
	prod := newGroupClient(t, addr)
	produceN(t, prod, topic, "a", 8)

	var rebalances sync.Map // instance -> assigned callbacks
	opts := func(instance string, a *assignment) []kgo.Opt {
		o := append(a.opts(topic), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.InstanceID(instance),
			kgo.HeartbeatInterval(100*time.Millisecond))
		return append(o, kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			a.mu.Lock()
			for _, p := range m[topic] {
				a.parts[p] = true
			}
			a.mu.Unlock()
			n, _ := rebalances.LoadOrStore(instance, new(int))
			*n.(*int)++
		}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var aa, ab assignment
	ca := newGroupClient(t, addr, opts("a", &aa)...)
	cb := newGroupClient(t, addr, opts("b", &ab)...)
	var seen sync.Map
	da, db := pollInto(ctx, ca, &seen), pollInto(ctx, cb, &seen)
	waitFor(t, 20*time.Second, func() error {
		if pa, pb := aa.get(), ab.get(); len(pa)+len(pb) != groupTestPartitions || len(pa) == 0 || len(pb) == 0 {
			return fmt.Errorf("assignments %v and %v", pa, pb)
		}
		return nil
	})
	adm := kadm.NewClient(prod)
	genOf := func() int32 {
		_, gen := ca.GroupMetadata()
		return gen
	}
	// Wait until the group is stable at one generation.
	var gen int32
	waitFor(t, 20*time.Second, func() error {
		ds, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		if s := ds[group].State; s != "Stable" {
			return fmt.Errorf("state %s", s)
		}
		gen = genOf()
		return nil
	})
	before := aa.get()
	nb, _ := rebalances.Load("b")
	bAssigned := *nb.(*int)

	// A static member does not leave on close; its replacement takes its
	// place without a rebalance.
	ca.Close()
	<-da
	var aa2 assignment
	ca2 := newGroupClient(t, addr, opts("a", &aa2)...)
	da2 := pollInto(ctx, ca2, &seen)
	waitFor(t, 20*time.Second, func() error {
		if got := aa2.get(); fmt.Sprint(got) != fmt.Sprint(before) {
			return fmt.Errorf("replacement has %v, the old member had %v", got, before)
		}
		return nil
	})
	if _, gen2 := ca2.GroupMetadata(); gen2 != gen {
		t.Errorf("generation moved from %d to %d: the static rejoin rebalanced", gen, gen2)
	}
	nb, _ = rebalances.Load("b")
	if n := *nb.(*int); n != bAssigned {
		t.Errorf("member b was assigned %d times, before the rejoin %d", n, bAssigned)
	}
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ds[group].Members); n != 2 {
		t.Errorf("group has %d members after the rejoin, want 2: %+v", n, ds[group].Members)
	}
	cancel()
	<-da2
	<-db
}

func TestGroupAdmin(t *testing.T) {
	addr := startGroupNode(t)
	const group = "g-admin"
	prod := newGroupClient(t, addr)
	produceN(t, prod, "consumed", "a", 8)
	produceN(t, prod, "other", "a", 8)
	adm := kadm.NewClient(prod)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A simple commit (no membership) creates an Empty group.
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "other", Partition: 0, At: 3, LeaderEpoch: -1})
	offsets.Add(kadm.Offset{Topic: "consumed", Partition: 1, At: 5, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, group, offsets); err != nil {
		t.Fatalf("simple commit: %v", err)
	}
	ls, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := ls[group]; !ok || g.State != "Empty" {
		t.Fatalf("ListGroups: %+v", ls)
	}

	var a assignment
	c := newGroupClient(t, addr, append(a.opts("consumed"), kgo.ConsumerGroup(group), kgo.ConsumeTopics("consumed"),
		kgo.ClientID("admin-test"))...)
	var seen sync.Map
	pctx, pcancel := context.WithCancel(ctx)
	done := pollInto(pctx, c, &seen)
	waitFor(t, 20*time.Second, func() error {
		if p := a.get(); len(p) != groupTestPartitions {
			return fmt.Errorf("assigned %v", p)
		}
		return nil
	})
	waitFor(t, 20*time.Second, func() error {
		ds, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		d := ds[group]
		if d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol == "" || len(d.Members) != 1 {
			return fmt.Errorf("described %+v", d)
		}
		m := d.Members[0]
		if m.ClientID != "admin-test" || !strings.HasPrefix(m.ClientHost, "/127.0.0.1") {
			return fmt.Errorf("member %+v", m)
		}
		if ca, ok := m.Assigned.AsConsumer(); !ok || len(ca.Topics) != 1 || len(ca.Topics[0].Partitions) != groupTestPartitions {
			return fmt.Errorf("member assignment %+v", m.Assigned)
		}
		return nil
	})
	if ls, err := adm.ListGroups(ctx, "Stable"); err != nil || ls[group].State != "Stable" {
		t.Fatalf("ListGroups Stable: %+v, %v", ls, err)
	}
	if ls, err := adm.ListGroups(ctx, "Empty"); err != nil || len(ls) != 0 {
		t.Fatalf("ListGroups Empty: %+v, %v", ls, err)
	}

	// An active group keeps its offsets and its subscribed topics' offsets.
	dr, err := adm.DeleteGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dr[group].Err, kerr.NonEmptyGroup) {
		t.Fatalf("DeleteGroups of an active group: %v", dr[group].Err)
	}
	del := kadm.TopicsSet{}
	del.Add("consumed", 1)
	del.Add("other", 0)
	odr, err := adm.DeleteOffsets(ctx, group, del)
	if err != nil {
		t.Fatal(err)
	}
	if err := odr["consumed"][1]; !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Fatalf("OffsetDelete of a subscribed topic: %v", err)
	}
	if err := odr["other"][0]; err != nil {
		t.Fatalf("OffsetDelete of an unsubscribed topic: %v", err)
	}
	fo, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fo.Lookup("other", 0); ok {
		t.Fatalf("offset of other/0 survived OffsetDelete: %v", fo)
	}
	if o, ok := fo.Lookup("consumed", 1); !ok || o.At != 5 {
		t.Fatalf("offset of consumed/1: %+v %v", o, ok)
	}

	// Once the member has left, the group and its offsets can be deleted.
	pcancel()
	<-done
	c.Close()
	dr, err = adm.DeleteGroups(ctx, group)
	if err != nil || dr[group].Err != nil {
		t.Fatalf("DeleteGroups: %v, %v", err, dr[group].Err)
	}
	fo, err = adm.FetchOffsets(ctx, group)
	if err != nil || len(fo) != 0 {
		t.Fatalf("offsets after DeleteGroups: %v, %v", fo, err)
	}
	ls, err = adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ls[group]; ok {
		t.Fatalf("deleted group still listed: %+v", ls)
	}
	dr, err = adm.DeleteGroups(ctx, group)
	if err != nil || !errors.Is(dr[group].Err, kerr.GroupIDNotFound) {
		t.Fatalf("DeleteGroups of a deleted group: %v, %v", err, dr[group].Err)
	}
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil || ds[group].State != "Dead" || !errors.Is(ds[group].Err, kerr.GroupIDNotFound) {
		t.Fatalf("DescribeGroups of a deleted group: %+v, %v", ds[group], err)
	}
}

// rawConn sends requests at exact versions over one connection, as old
// clients (kafka-go, sarama) do; kgo would pick the newest version.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

// do sends req at version and returns the decoded response.
func (rc *rawConn) do(version int16, req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	resp, err := rc.try(version, req)
	if err != nil {
		rc.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	return resp
}

func (rc *rawConn) try(version int16, req kmsg.Request) (kmsg.Response, error) {
	req.SetVersion(version)
	rc.corr++
	buf := []byte{0, 0, 0, 0}
	buf = binary.BigEndian.AppendUint16(buf, uint16(req.Key()))
	buf = binary.BigEndian.AppendUint16(buf, uint16(version))
	buf = binary.BigEndian.AppendUint32(buf, uint32(rc.corr))
	buf = binary.BigEndian.AppendUint16(buf, 4)
	buf = append(buf, "test"...)
	if req.IsFlexible() {
		buf = append(buf, 0)
	}
	buf = req.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	rc.c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := rc.c.Write(buf); err != nil {
		return nil, err
	}
	return rc.recv(version, req, rc.corr)
}

// recv reads the response to req, sent at version with correlation corr.
func (rc *rawConn) recv(version int16, req kmsg.Request, corr int32) (kmsg.Response, error) {
	rc.c.SetDeadline(time.Now().Add(20 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(rc.c, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rc.c, body); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return nil, fmt.Errorf("correlation %d, want %d", got, corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && resp.Key() != 18 { // ApiVersions keeps the v0 header
		body = body[1:] // empty header tags
	}
	return resp, resp.ReadFrom(body)
}

// joinReq is a JoinGroup of the "consumer" type with one "range" protocol.
func joinReq(group, member string, sessionMs int32) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID = group, member
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = sessionMs, 10000
	req.ProtocolType = "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"raw"}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return req
}

func heartbeatReq(group string, gen int32, member string) *kmsg.HeartbeatRequest {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = group, gen, member
	return req
}

func commitReq(group string, gen int32, member, topic string, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = group, gen, member
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func commitCode(r kmsg.Response) int16 {
	return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
}

// expectCode fails the test when got is not want (nil: no error).
func expectCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Errorf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func TestGroupErrors(t *testing.T) {
	addr := startGroupNode(t)
	produceN(t, newGroupClient(t, addr), "raw", "x", 4) // commits need the topic
	rc := dialRaw(t, addr)
	const group = "g-raw"

	// FindCoordinator: this node for groups, a clear refusal for transactions.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{group, "other"}
	for _, c := range rc.do(4, fc).(*kmsg.FindCoordinatorResponse).Coordinators {
		if c.ErrorCode != 0 || c.NodeID != 1 || net.JoinHostPort(c.Host, fmt.Sprint(c.Port)) != addr {
			t.Errorf("coordinator for %s: %+v", c.Key, c)
		}
	}
	fc.CoordinatorType, fc.CoordinatorKeys = 1, []string{"txn"}
	expectCode(t, "FindCoordinator for a transaction", rc.do(6, fc).(*kmsg.FindCoordinatorResponse).Coordinators[0].ErrorCode, kerr.TransactionalIDAuthorizationFailed)
	fc0 := kmsg.NewPtrFindCoordinatorRequest()
	fc0.CoordinatorKey = group
	if r := rc.do(0, fc0).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 || r.NodeID != 1 {
		t.Errorf("FindCoordinator v0: %+v", r)
	}

	join := func(version int16, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
		return rc.do(version, req).(*kmsg.JoinGroupResponse)
	}
	expectCode(t, "join with an empty group", join(9, joinReq("", "", 10000)).ErrorCode, kerr.InvalidGroupID)
	expectCode(t, "join with a 1s session", join(9, joinReq(group, "", 1000)).ErrorCode, kerr.InvalidSessionTimeout)
	expectCode(t, "join as an unknown member", join(9, joinReq(group, "nobody", 10000)).ErrorCode, kerr.UnknownMemberID)
	noProto := joinReq(group, "", 10000)
	noProto.Protocols = nil
	expectCode(t, "join without protocols", join(9, noProto).ErrorCode, kerr.InconsistentGroupProtocol)

	// KIP-394: the first join gets a member ID to rejoin with.
	jr := join(9, joinReq(group, "", 10000))
	expectCode(t, "first join v9", jr.ErrorCode, kerr.MemberIDRequired)
	member := jr.MemberID
	if !strings.HasPrefix(member, "test-") {
		t.Fatalf("member ID %q", member)
	}
	jr = join(9, joinReq(group, member, 10000))
	if jr.ErrorCode != 0 || jr.Generation != 1 || jr.LeaderID != member || len(jr.Members) != 1 ||
		jr.Protocol == nil || *jr.Protocol != "range" || jr.ProtocolType == nil || *jr.ProtocolType != "consumer" {
		t.Fatalf("join answer %+v", jr)
	}
	other := joinReq(group, "", 10000)
	other.ProtocolType = "connect"
	expectCode(t, "join with another protocol type", join(9, other).ErrorCode, kerr.InconsistentGroupProtocol)

	hb := func(gen int32, id string) int16 {
		return rc.do(4, heartbeatReq(group, gen, id)).(*kmsg.HeartbeatResponse).ErrorCode
	}
	expectCode(t, "heartbeat before sync", hb(1, member), nil)
	expectCode(t, "heartbeat from an unknown member", hb(1, "nobody"), kerr.UnknownMemberID)
	expectCode(t, "heartbeat with a stale generation", hb(0, member), kerr.IllegalGeneration)
	expectCode(t, "commit while awaiting sync", commitCode(rc.do(9, commitReq(group, 1, member, "raw", 1))), kerr.RebalanceInProgress)

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.Generation, sync.MemberID = group, 1, member
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	sa := kmsg.NewSyncGroupRequestGroupAssignment()
	sa.MemberID, sa.MemberAssignment = member, []byte("assignment")
	sync.GroupAssignment = append(sync.GroupAssignment, sa)
	if sr := rc.do(5, sync).(*kmsg.SyncGroupResponse); sr.ErrorCode != 0 || string(sr.MemberAssignment) != "assignment" {
		t.Fatalf("sync answer %+v", sr)
	}
	sync.Protocol = kmsg.StringPtr("roundrobin")
	expectCode(t, "sync with another protocol", rc.do(5, sync).(*kmsg.SyncGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)
	sync.Generation = 7
	expectCode(t, "sync with a wrong generation", rc.do(0, sync).(*kmsg.SyncGroupResponse).ErrorCode, kerr.IllegalGeneration)

	commit := func(version int16, g string, gen int32, id string) int16 {
		return commitCode(rc.do(version, commitReq(g, gen, id, "raw", 1)))
	}
	expectCode(t, "commit as the member", commit(9, group, 1, member), nil)
	expectCode(t, "commit with a stale generation", commit(9, group, 0, member), kerr.IllegalGeneration)
	expectCode(t, "commit from an unknown member", commit(9, group, 1, "nobody"), kerr.UnknownMemberID)
	expectCode(t, "simple commit to a group with members", commit(9, group, -1, ""), kerr.UnknownMemberID)
	expectCode(t, "simple commit to a new group", commit(9, "g-simple", -1, ""), nil)
	expectCode(t, "generation commit to an unknown group v9", commit(9, "g-none", 3, "m"), kerr.GroupIDNotFound)
	expectCode(t, "generation commit to an unknown group v8", commit(8, "g-none", 3, "m"), kerr.IllegalGeneration)
	expectCode(t, "generation commit to an offsets-only group", commit(9, "g-simple", 3, "m"), kerr.UnknownMemberID)
	expectCode(t, "simple commit v2 (kafka-go)", commit(2, "g-simple", -1, ""), nil)
	expectCode(t, "commit to an unknown topic", commitCode(rc.do(9, commitReq("g-simple", -1, "", "nope", 1))), kerr.UnknownTopicOrPartition)
	big := commitReq("g-simple", -1, "", "raw", 1)
	big.Topics[0].Partitions[0].Metadata = kmsg.StringPtr(strings.Repeat("m", 5000))
	expectCode(t, "commit with 5000 bytes of metadata", commitCode(rc.do(9, big)), kerr.OffsetMetadataTooLarge)

	// A second member's join starts a rebalance that the first learns of
	// from its heartbeat; the join is parked on its own connection.
	jr2 := join(9, joinReq(group, "", 10000))
	expectCode(t, "first join of member 2", jr2.ErrorCode, kerr.MemberIDRequired)
	rc2 := dialRaw(t, addr)
	joined := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		resp, err := rc2.try(9, joinReq(group, jr2.MemberID, 10000))
		if err != nil {
			t.Error(err)
		}
		jresp, _ := resp.(*kmsg.JoinGroupResponse)
		joined <- jresp
	}()
	waitFor(t, 10*time.Second, func() error {
		if code := hb(1, member); code != kerr.RebalanceInProgress.Code {
			return fmt.Errorf("heartbeat during rebalance: %v", kerr.ErrorForCode(code))
		}
		return nil
	})
	jr = join(2, joinReq(group, member, 10000)) // kafka-go's version
	jr2b := <-joined
	if jr2b == nil || jr.ErrorCode != 0 || jr2b.ErrorCode != 0 || jr.Generation != 2 || jr2b.Generation != 2 {
		t.Fatalf("rejoin answers %+v and %+v", jr, jr2b)
	}
	if jr.LeaderID != member || len(jr.Members) != 2 || len(jr2b.Members) != 0 {
		t.Fatalf("leader %s with %d members, follower got %d", jr.LeaderID, len(jr.Members), len(jr2b.Members))
	}

	// LeaveGroup v0 (kafka-go) and v3+ batches.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = group, "nobody"
	expectCode(t, "leave v0 of an unknown member", rc.do(0, leave).(*kmsg.LeaveGroupResponse).ErrorCode, kerr.UnknownMemberID)
	leave = kmsg.NewPtrLeaveGroupRequest()
	leave.Group = group
	for _, id := range []string{member, jr2.MemberID, "nobody"} {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = id
		leave.Members = append(leave.Members, m)
	}
	lr := rc.do(5, leave).(*kmsg.LeaveGroupResponse)
	if len(lr.Members) != 3 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != 0 || lr.Members[2].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("batched leave: %+v", lr)
	}
	expectCode(t, "heartbeat after leaving", hb(2, member), kerr.UnknownMemberID)

	// OffsetFetch v1 (kafka-go) and v8 batches read what was committed.
	of1 := kmsg.NewPtrOffsetFetchRequest()
	of1.Group = "g-simple"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "raw", []int32{0, 1}
	of1.Topics = append(of1.Topics, ft)
	ofr := rc.do(1, of1).(*kmsg.OffsetFetchResponse)
	if got := fmt.Sprint(ofr.Topics[0].Partitions[0].Offset, ofr.Topics[0].Partitions[1].Offset); got != "1 -1" {
		t.Errorf("OffsetFetch v1 offsets %s, want 1 -1", got)
	}
	of8 := kmsg.NewPtrOffsetFetchRequest()
	of8.RequireStable = true
	for _, g := range []string{group, "g-simple", "g-none"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		of8.Groups = append(of8.Groups, rg)
	}
	var got []string
	for _, g := range rc.do(9, of8).(*kmsg.OffsetFetchResponse).Groups {
		n := 0
		for _, t := range g.Topics {
			n += len(t.Partitions)
		}
		got = append(got, fmt.Sprintf("%s:%d:%d", g.Group, g.ErrorCode, n))
	}
	if s := strings.Join(got, " "); s != "g-raw:0:1 g-simple:0:1 g-none:0:0" {
		t.Errorf("OffsetFetch v8 groups %s", s)
	}

	// Versions Kafka 4 removed close the connection.
	if _, err := dialRaw(t, addr).try(1, commitReq("g-simple", -1, "", "raw", 1)); err == nil {
		t.Error("OffsetCommit v1 was answered")
	}
}

// The group APIs are advertised with Apache Kafka 4's ranges, and every
// advertised version answers a request with default fields and a few odd
// ones without closing the connection.
func TestGroupAPIsEveryVersion(t *testing.T) {
	addr := startGroupNode(t)
	produceN(t, newGroupClient(t, addr), "any", "x", 4)
	rc := dialRaw(t, addr)
	want := map[int16][2]int16{8: {2, 9}, 9: {1, 9}, 10: {0, 6}, 11: {0, 9}, 12: {0, 4}, 13: {0, 5}, 14: {0, 5}, 15: {0, 6}, 16: {0, 5}, 42: {0, 2}, 47: {0, 0}}
	got := map[int16][2]int16{}
	for _, k := range rc.do(3, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse).ApiKeys {
		if _, ok := want[k.ApiKey]; ok {
			got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("advertised group API ranges %v, want %v", got, want)
	}
	odd := func(key int16, g string) []kmsg.Request {
		req := kmsg.RequestForKey(key)
		out := []kmsg.Request{req}
		switch r := req.(type) {
		case *kmsg.JoinGroupRequest:
			dup := joinReq(g, "", 10000)
			dup.Protocols = append(dup.Protocols, dup.Protocols[0])
			dup.RebalanceTimeoutMillis = -5
			out = append(out, dup, joinReq(g, "not-a-member", 10000))
		case *kmsg.SyncGroupRequest:
			r.Group, r.Generation, r.MemberID = g, -1, "x"
			r.GroupAssignment = make([]kmsg.SyncGroupRequestGroupAssignment, 3)
		case *kmsg.OffsetCommitRequest:
			c := commitReq(g, -1, "", "any", -7)
			c.Topics[0].Partitions[0].Partition = -1
			out = append(out, c, commitReq(g, 99, "m", "any", 1))
		case *kmsg.OffsetFetchRequest:
			r.Group = g
			r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "any", Partitions: []int32{-1, 0, 1 << 30}}}
			r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: ""}, {Group: g}}
		case *kmsg.LeaveGroupRequest:
			r.Group = g
			r.Members = []kmsg.LeaveGroupRequestMember{{}, {InstanceID: kmsg.StringPtr("")}}
		case *kmsg.DescribeGroupsRequest:
			r.Groups = []string{"", g, g}
			r.IncludeAuthorizedOperations = true
		case *kmsg.DeleteGroupsRequest:
			r.Groups = []string{"", "g-none", g}
		case *kmsg.OffsetDeleteRequest:
			r.Group = g
			r.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "nope", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 3}}}}
		case *kmsg.FindCoordinatorRequest:
			r.CoordinatorType = 9
			r.CoordinatorKeys = []string{"", "a"}
		case *kmsg.ListGroupsRequest:
			r.StatesFilter, r.TypesFilter = []string{"stable", "EMPTY"}, []string{"CLASSIC"}
		}
		return out
	}
	for key, vs := range want {
		for v := vs[0]; v <= vs[1]; v++ {
			for i, req := range odd(key, fmt.Sprintf("g-odd-%d-%d", key, v)) {
				if _, err := rc.try(v, req); err != nil {
					t.Fatalf("%s v%d request %d: %v", kmsg.NameForKey(key), v, i, err)
				}
			}
		}
	}
}

// LeaveGroup for a group that does not exist answers as Kafka 4: v0-v2
// with UNKNOWN_MEMBER_ID at the top level (their only error field), v3+
// with no top-level error and UNKNOWN_MEMBER_ID on every member, echoing
// its member and instance IDs. An empty group ID is a request error.
func TestGroupLeaveUnknownGroup(t *testing.T) {
	rc := dialRaw(t, startGroupNode(t))
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Group, req.MemberID = fmt.Sprintf("g-unknown-%d", v), "m-1"
		byID := kmsg.NewLeaveGroupRequestMember()
		byID.MemberID = "m-1"
		byInstance := kmsg.NewLeaveGroupRequestMember()
		byInstance.InstanceID = kmsg.StringPtr("inst-1")
		req.Members = []kmsg.LeaveGroupRequestMember{byID, byInstance}
		resp := rc.do(v, req).(*kmsg.LeaveGroupResponse)
		if v < 3 {
			expectCode(t, fmt.Sprintf("leave v%d of an unknown group", v), resp.ErrorCode, kerr.UnknownMemberID)
			if len(resp.Members) != 0 {
				t.Errorf("leave v%d: %d members in the answer", v, len(resp.Members))
			}
			continue
		}
		expectCode(t, fmt.Sprintf("leave v%d of an unknown group, top level", v), resp.ErrorCode, nil)
		if len(resp.Members) != 2 {
			t.Fatalf("leave v%d of an unknown group: %+v", v, resp)
		}
		for i, m := range resp.Members {
			expectCode(t, fmt.Sprintf("leave v%d of an unknown group, member %d", v, i), m.ErrorCode, kerr.UnknownMemberID)
		}
		if m := resp.Members[0]; m.MemberID != "m-1" || m.InstanceID != nil {
			t.Errorf("leave v%d: member 0 echoed as %q %v", v, m.MemberID, m.InstanceID)
		}
		if m := resp.Members[1]; m.MemberID != "" || m.InstanceID == nil || *m.InstanceID != "inst-1" {
			t.Errorf("leave v%d: member 1 echoed as %q %v", v, m.MemberID, m.InstanceID)
		}
	}
	for _, v := range []int16{0, 5} {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.MemberID = "m-1"
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = "m-1"
		req.Members = append(req.Members, m)
		resp := rc.do(v, req).(*kmsg.LeaveGroupResponse)
		expectCode(t, fmt.Sprintf("leave v%d with an empty group ID", v), resp.ErrorCode, kerr.InvalidGroupID)
		if len(resp.Members) != 0 {
			t.Errorf("leave v%d with an empty group ID: %+v", v, resp)
		}
	}
}

// When the last (static) member leaves by group.instance.id, the group
// stays Empty with protocol type "consumer", as in Kafka: described and
// listed so, deletable, and a new member continues its generations.
func TestGroupEmptyAfterLastStaticMemberLeaves(t *testing.T) {
	addr := startGroupNode(t)
	produceN(t, newGroupClient(t, addr), "raw", "x", 1)
	rc := dialRaw(t, addr)
	const group = "g-static-leave"

	join := joinReq(group, "", 10000)
	join.InstanceID = kmsg.StringPtr("inst-1")
	jr := rc.do(9, join).(*kmsg.JoinGroupResponse)
	if jr.ErrorCode != 0 || jr.Generation != 1 || jr.MemberID == "" {
		t.Fatalf("static join: %+v", jr)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.Generation, sync.MemberID, sync.InstanceID = group, jr.Generation, jr.MemberID, join.InstanceID
	sa := kmsg.NewSyncGroupRequestGroupAssignment()
	sa.MemberID, sa.MemberAssignment = jr.MemberID, []byte{1}
	sync.GroupAssignment = append(sync.GroupAssignment, sa)
	expectCode(t, "static sync", rc.do(5, sync).(*kmsg.SyncGroupResponse).ErrorCode, nil)

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = group
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.InstanceID = join.InstanceID
	leave.Members = append(leave.Members, lm)
	lr := rc.do(5, leave).(*kmsg.LeaveGroupResponse)
	if lr.ErrorCode != 0 || len(lr.Members) != 1 || lr.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance ID: %+v", lr)
	}

	describe := func(v int16) kmsg.DescribeGroupsResponseGroup {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{group}
		return rc.do(v, req).(*kmsg.DescribeGroupsResponse).Groups[0]
	}
	for _, v := range []int16{5, 6} {
		d := describe(v)
		if d.ErrorCode != 0 || d.State != "Empty" || d.ProtocolType != "consumer" || d.Protocol != "" || len(d.Members) != 0 || d.ErrorMessage != nil {
			t.Errorf("DescribeGroups v%d after the last static member left: %+v", v, d)
		}
	}
	lg := rc.do(5, kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
	listed := ""
	for _, g := range lg.Groups {
		if g.Group == group {
			listed = g.ProtocolType + " " + g.GroupState
		}
	}
	if listed != "consumer Empty" {
		t.Errorf("ListGroups after the last static member left: %q, want %q", listed, "consumer Empty")
	}

	// The emptied rebalance was generation 2; the next one is 3.
	jr = rc.do(9, joinReq(group, "", 10000)).(*kmsg.JoinGroupResponse)
	expectCode(t, "dynamic join into the empty group", jr.ErrorCode, kerr.MemberIDRequired)
	jr = rc.do(9, joinReq(group, jr.MemberID, 10000)).(*kmsg.JoinGroupResponse)
	if jr.ErrorCode != 0 || jr.Generation != 3 {
		t.Fatalf("rejoin of the empty group: %v generation %d, want generation 3", kerr.ErrorForCode(jr.ErrorCode), jr.Generation)
	}
	leave = kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = group, jr.MemberID
	expectCode(t, "leave v0 of the dynamic member", rc.do(0, leave).(*kmsg.LeaveGroupResponse).ErrorCode, nil)
	if d := describe(6); d.ErrorCode != 0 || d.State != "Empty" || d.ProtocolType != "consumer" {
		t.Errorf("DescribeGroups v6 after the dynamic member left: %+v", d)
	}

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{group}
	expectCode(t, "DeleteGroups of the empty group", rc.do(2, del).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, nil)
	if d := describe(6); d.ErrorCode != kerr.GroupIDNotFound.Code || d.State != "Dead" {
		t.Errorf("DescribeGroups v6 after DeleteGroups: %+v", d)
	}
}

// DescribeGroups v6 (KIP-1043) answers an unknown group with
// GROUP_ID_NOT_FOUND, state Dead and Kafka's message; v5 and older say
// Dead with no error. Known groups, including one with offsets only, have
// no error at any version; an empty group ID is INVALID_GROUP_ID.
func TestGroupDescribeUnknownGroup(t *testing.T) {
	addr := startGroupNode(t)
	produceN(t, newGroupClient(t, addr), "raw", "x", 1)
	rc := dialRaw(t, addr)
	expectCode(t, "simple commit", commitCode(rc.do(9, commitReq("g-offsets", -1, "", "raw", 1))), nil)
	for v := int16(0); v <= 6; v++ {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{"g-nobody", "g-offsets", ""}
		gs := rc.do(v, req).(*kmsg.DescribeGroupsResponse).Groups
		if len(gs) != 3 {
			t.Fatalf("DescribeGroups v%d: %d groups", v, len(gs))
		}
		unknown, offsets, empty := gs[0], gs[1], gs[2]
		if unknown.Group != "g-nobody" || unknown.State != "Dead" || len(unknown.Members) != 0 {
			t.Errorf("DescribeGroups v%d of an unknown group: %+v", v, unknown)
		}
		if v >= 6 {
			expectCode(t, fmt.Sprintf("DescribeGroups v%d of an unknown group", v), unknown.ErrorCode, kerr.GroupIDNotFound)
			if unknown.ErrorMessage == nil || *unknown.ErrorMessage != "Group g-nobody not found." {
				t.Errorf("DescribeGroups v%d message %v, want %q", v, unknown.ErrorMessage, "Group g-nobody not found.")
			}
		} else {
			expectCode(t, fmt.Sprintf("DescribeGroups v%d of an unknown group", v), unknown.ErrorCode, nil)
		}
		if offsets.ErrorCode != 0 || offsets.State != "Empty" || offsets.ErrorMessage != nil {
			t.Errorf("DescribeGroups v%d of a group with offsets only: %+v", v, offsets)
		}
		expectCode(t, fmt.Sprintf("DescribeGroups v%d of an empty group ID", v), empty.ErrorCode, kerr.InvalidGroupID)
	}
}
