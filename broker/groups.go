package broker

// Classic consumer groups (the JoinGroup / SyncGroup protocol).
//
// Membership, generations and assignments are in memory, as in Kafka's
// coordinator cache; committed offsets are durable through the replicated
// log (storage.CommitOffsets). Unlike Kafka, membership is not written to
// the log: after a restart or a leader change members rejoin with
// UNKNOWN_MEMBER_ID, which every client handles, and resume from their
// committed offsets.
//
// Goroutines: groups owns one goroutine per live group (group.manage). All
// of a group's state is touched only there; handlers hand it closures
// through group.ctl and timers post closures the same way, so no group
// state needs a lock. A group that empties stays Empty, as Kafka keeps it
// (DescribeGroups and ListGroups show it with its protocol type, a new
// join continues its generations), for groupsConfig.emptyRetention; then,
// or at once for a group that never had a member, its goroutine stops and
// the group is forgotten, its protocol type remembered while it has
// committed offsets. The next request creates it again. A group also
// stops when this node stops leading (checked on every request and every
// groupsConfig.leaderCheck) and when the broker closes. Requests parked
// in JoinGroup or SyncGroup are always answered: by the rebalance, by a
// removal or fencing, or with NOT_COORDINATOR when the group stops; their
// handlers also give up when the broker closes.
//
// The state machine follows Apache Kafka's classic group coordinator
// (GroupMetadataManager / ClassicGroup in group-coordinator): Empty ->
// PreparingRebalance -> CompletingRebalance -> Stable, with Dead for a
// stopped group. The broker never assigns: the leader member's SyncGroup
// carries every assignment.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupsConfig holds the coordinator's settings; newGroups sets kbox's
// defaults, tests shorten them.
type groupsConfig struct {
	// initialDelay is group.initial.rebalance.delay.ms: how long the first
	// rebalance of an empty group waits for more members. Kafka's default
	// is 3000 ms, meant for production start-ups; kbox is a development
	// broker and uses 50 ms so a lone consumer starts at once.
	initialDelay time.Duration
	// minSession and maxSession are group.min.session.timeout.ms (6000)
	// and group.max.session.timeout.ms (1800000), as in Kafka, so client
	// settings that work here work there.
	minSession, maxSession time.Duration
	// newMemberJoin bounds how long a new member's parked JoinGroup may
	// wait (Kafka's fixed 5 minutes).
	newMemberJoin time.Duration
	// leaderCheck is how often an idle group checks that this node still
	// leads; requests check on every call.
	leaderCheck time.Duration
	// maxMetadata is offset.metadata.max.bytes (4096).
	maxMetadata int
	// emptyRetention is how long a group that emptied stays Empty before
	// it is forgotten. Kafka removes an Empty group without offsets at
	// its next offsets.retention.check.interval.ms (600000) check.
	emptyRetention time.Duration
}

func defaultGroupsConfig() groupsConfig {
	return groupsConfig{
		initialDelay:   50 * time.Millisecond,
		minSession:     6 * time.Second,
		maxSession:     30 * time.Minute,
		newMemberJoin:  5 * time.Minute,
		leaderCheck:    time.Second,
		maxMetadata:    4096,
		emptyRetention: 10 * time.Minute,
	}
}

// groupState is a classic group's state; String gives Kafka's names.
type groupState uint8

const (
	groupEmpty groupState = iota
	groupPreparingRebalance
	groupCompletingRebalance
	groupStable
	groupDead
)

func (s groupState) String() string {
	switch s {
	case groupEmpty:
		return "Empty"
	case groupPreparingRebalance:
		return "PreparingRebalance"
	case groupCompletingRebalance:
		return "CompletingRebalance"
	case groupStable:
		return "Stable"
	}
	return "Dead"
}

// groups coordinates classic consumer groups for one broker.
type groups struct {
	b   *Broker
	cfg groupsConfig

	mu    sync.Mutex
	epoch int32 // leader epoch the live groups belong to
	live  map[string]*group
	// types remembers the protocol type of groups whose goroutine stopped
	// while Empty with committed offsets: Kafka keeps a group's metadata,
	// so DescribeGroups and ListGroups still say "consumer" for a group
	// that only has offsets.
	types  map[string]string
	closed bool
	wg     sync.WaitGroup
}

func newGroups(b *Broker) *groups {
	return &groups{b: b, cfg: defaultGroupsConfig(), live: map[string]*group{}, types: map[string]string{}}
}

// close stops every group's goroutine and waits for them.
func (gs *groups) close() {
	gs.mu.Lock()
	gs.closed = true
	gs.stopAllLocked()
	gs.mu.Unlock()
	gs.wg.Wait()
}

func (gs *groups) stopAllLocked() {
	for name, g := range gs.live {
		delete(gs.live, name)
		g.stop()
	}
}

// coordinator reports the leader epoch when this node coordinates groups,
// or the error code to answer with.
func (gs *groups) coordinator() (int32, int16) {
	id, epoch, ok := gs.b.repl.Leader()
	switch {
	case !ok:
		return 0, kerr.CoordinatorNotAvailable.Code
	case id != gs.b.cfg.NodeID:
		return 0, kerr.NotCoordinator.Code
	}
	return epoch, 0
}

// currentLocked checks leadership and drops the groups of an older leader
// epoch; callers hold gs.mu.
func (gs *groups) currentLocked() int16 {
	epoch, code := gs.coordinator()
	if code != 0 {
		return code
	}
	if gs.closed {
		return kerr.CoordinatorNotAvailable.Code
	}
	if epoch != gs.epoch {
		gs.stopAllLocked()
		gs.epoch = epoch
	}
	return 0
}

// get returns the live group name, creating it when create is set. A nil
// group with code 0 means it does not exist.
func (gs *groups) get(name string, create bool) (*group, int16) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if code := gs.currentLocked(); code != 0 {
		return nil, code
	}
	g := gs.live[name]
	if g == nil && create {
		g = newGroup(gs, name, gs.epoch)
		gs.live[name] = g
		gs.wg.Add(1)
		go g.manage()
	}
	return g, 0
}

// run executes fn on the goroutine of group name and returns once it has
// run. found is false when the group does not exist (and create is off)
// or when code is set.
func (gs *groups) run(ctx context.Context, name string, create bool, fn func(*group)) (found bool, code int16) {
	for {
		g, code := gs.get(name, create)
		if code != 0 || g == nil {
			return false, code
		}
		done := make(chan struct{})
		select {
		case g.ctl <- func() { fn(g); close(done) }:
			<-done
			return true, 0
		case <-g.quit: // stopped meanwhile: look it up again
		case <-ctx.Done():
			return false, kerr.CoordinatorNotAvailable.Code
		}
	}
}

// groupListing is one group as ListGroups shows it.
type groupListing struct {
	name, protocolType string
	state              groupState
}

// list returns the live groups and the groups that only have committed
// offsets (Empty), or the error code when this node does not coordinate.
func (gs *groups) list() ([]groupListing, int16) {
	names, err := gs.b.store.Groups()
	if err != nil {
		return nil, kerr.UnknownServerError.Code
	}
	var stored []string
	for _, name := range names {
		if gs.hasOffsets(name) { // OffsetDelete may have emptied it
			stored = append(stored, name)
		}
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if code := gs.currentLocked(); code != 0 {
		return nil, code
	}
	var out []groupListing
	for name, g := range gs.live {
		out = append(out, groupListing{name: name, protocolType: g.pubType, state: g.pubState})
	}
	for _, name := range stored {
		if gs.live[name] == nil {
			out = append(out, groupListing{name: name, protocolType: gs.types[name], state: groupEmpty})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, 0
}

// hasOffsets reports whether the store holds committed offsets for group.
func (gs *groups) hasOffsets(group string) bool {
	offs, err := gs.b.store.GroupOffsets(group)
	return err == nil && len(offs) > 0
}

// protocol is one entry of a member's JoinGroup protocol list.
type protocol struct {
	name     string
	metadata []byte
}

// joinArgs is a JoinGroup request as the group sees it.
type joinArgs struct {
	version          int16
	memberID         string
	instanceID       *string
	clientID, host   string
	protocolType     string
	protocols        []protocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	reply            chan joinResult // buffered; answered exactly once
}

// joinResult is a JoinGroup answer.
type joinResult struct {
	code               int16
	generation         int32
	protocolType, name *string
	leader, memberID   string
	skipAssignment     bool
	members            []joinMember
}

// joinMember is one member in the leader's JoinGroup answer.
type joinMember struct {
	memberID   string
	instanceID *string
	metadata   []byte
}

// syncArgs is a SyncGroup request as the group sees it.
type syncArgs struct {
	generation         int32
	memberID           string
	instanceID         *string
	protocolType, name *string
	assignments        map[string][]byte
	reply              chan syncResult // buffered; answered exactly once
}

// syncResult is a SyncGroup answer.
type syncResult struct {
	code               int16
	protocolType, name *string
	assignment         []byte
}

// gtimer is a timer whose callback runs on the group goroutine; a stopped
// or rescheduled timer's late callback is ignored through seq.
type gtimer struct {
	t   *time.Timer
	seq uint64
}

func (tm *gtimer) stop() {
	if tm.t != nil {
		tm.t.Stop()
		tm.t = nil
	}
	tm.seq++
}

// member is one member of a group.
type member struct {
	id               string
	instanceID       *string
	clientID, host   string
	protocolType     string
	protocols        []protocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte
	isNew            bool // joined in the current rebalance, not yet answered

	join *joinArgs       // parked JoinGroup, nil if none
	sync chan syncResult // parked SyncGroup, nil if none
	hb   gtimer          // session (or new-member join) timeout
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// sameProtocols reports whether ps equals the member's protocols, names
// and metadata, in order.
func (m *member) sameProtocols(ps []protocol) bool {
	return slices.EqualFunc(m.protocols, ps, func(a, b protocol) bool {
		return a.name == b.name && string(a.metadata) == string(b.metadata)
	})
}

// group is one classic group. Fields below quit are owned by the manage
// goroutine; pubState and pubType are copies under groups.mu for listing.
type group struct {
	gs    *groups
	name  string
	epoch int32
	ctl   chan func()
	quit  chan struct{}
	once  sync.Once

	pubState groupState
	pubType  string

	state, prevState groupState
	generation       int32
	protocolType     string
	protocol         string // selected for the current generation
	leader           string
	members          map[string]*member
	pending          map[string]*gtimer // MEMBER_ID_REQUIRED handed out, not joined yet
	static           map[string]string  // instance ID -> member ID
	pendingSync      map[string]bool
	subscribed       map[string]bool // topics of the "consumer" protocol; nil if unknown
	newMemberAdded   bool
	joinTimer        gtimer // initial delay or rebalance timeout
	syncTimer        gtimer // pending SyncGroup expiry
	emptyTimer       gtimer // emptyRetention of an idle group
	emptyExpired     bool   // emptyTimer fired: the idle group retires
}

func newGroup(gs *groups, name string, epoch int32) *group {
	return &group{
		gs: gs, name: name, epoch: epoch,
		ctl: make(chan func()), quit: make(chan struct{}),
		members: map[string]*member{}, pending: map[string]*gtimer{},
		static: map[string]string{}, pendingSync: map[string]bool{},
	}
}

func (g *group) stop() { g.once.Do(func() { close(g.quit) }) }

// manage is the group's goroutine.
func (g *group) manage() {
	defer g.gs.wg.Done()
	tick := time.NewTicker(g.gs.cfg.leaderCheck)
	defer tick.Stop()
	for {
		select {
		case fn := <-g.ctl:
			fn()
		case <-tick.C:
			if _, code := g.gs.coordinator(); code != 0 || !g.sameEpoch() {
				g.state = groupDead
			}
		case <-g.quit:
			g.shutdown()
			return
		}
		if g.state == groupDead || g.retireIdle() {
			g.retire()
			g.shutdown()
			return
		}
		g.publish()
	}
}

// retireIdle reports whether the group should stop for being idle: Empty
// with nobody joined or joining. A group that never had a member stops at
// once; one that emptied stays for emptyRetention, as in Kafka.
func (g *group) retireIdle() bool {
	if g.state != groupEmpty || len(g.members) > 0 || len(g.pending) > 0 {
		g.emptyTimer.stop()
		g.emptyExpired = false
		return false
	}
	if g.protocolType == "" || g.emptyExpired {
		return true
	}
	if g.emptyTimer.t == nil {
		g.after(&g.emptyTimer, g.gs.cfg.emptyRetention, func() { g.emptyExpired = true })
	}
	return false
}

func (g *group) sameEpoch() bool {
	_, epoch, _ := g.gs.b.repl.Leader()
	return epoch == g.epoch
}

// retire removes the group from the live set and stops it, remembering
// the protocol type of an Empty group with committed offsets.
func (g *group) retire() {
	keepType := g.state != groupDead && g.protocolType != "" && g.gs.hasOffsets(g.name)
	g.gs.mu.Lock()
	if g.gs.live[g.name] == g {
		delete(g.gs.live, g.name)
	}
	if keepType {
		g.gs.types[g.name] = g.protocolType
	} else {
		delete(g.gs.types, g.name)
	}
	g.gs.mu.Unlock()
	g.stop()
}

// shutdown stops every timer and answers every parked request with
// NOT_COORDINATOR, so clients look for the coordinator again.
func (g *group) shutdown() {
	g.state = groupDead
	g.joinTimer.stop()
	g.syncTimer.stop()
	g.emptyTimer.stop()
	for _, t := range g.pending {
		t.stop()
	}
	for _, m := range g.members {
		m.hb.stop()
		g.answer(m, kerr.NotCoordinator.Code)
	}
}

func (g *group) publish() {
	if g.pubState == g.state && g.pubType == g.protocolType {
		return
	}
	g.gs.mu.Lock()
	g.pubState, g.pubType = g.state, g.protocolType
	g.gs.mu.Unlock()
}

// after runs fn on the group goroutine after d, replacing what tm had.
func (g *group) after(tm *gtimer, d time.Duration, fn func()) {
	tm.stop()
	seq := tm.seq
	tm.t = time.AfterFunc(d, func() {
		select {
		case g.ctl <- func() {
			if tm.seq == seq {
				tm.t = nil
				fn()
			}
		}:
		case <-g.quit:
		}
	})
}

// answer fails m's parked JoinGroup and SyncGroup with code.
func (g *group) answer(m *member, code int16) {
	if m.join != nil {
		m.join.reply <- joinResult{code: code, generation: -1}
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- syncResult{code: code}
		m.sync = nil
	}
}

// ---- membership ----

func newMemberID(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return prefix + "-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// validateMember checks a member ID and, for static members, that the
// instance ID still maps to it.
func (g *group) validateMember(id string, instanceID *string) int16 {
	if instanceID != nil {
		known, ok := g.static[*instanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if known != id {
			return kerr.FencedInstanceID.Code
		}
	}
	if g.members[id] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// removeMember drops m, answering anything it has parked with code.
func (g *group) removeMember(m *member, code int16) {
	g.answer(m, code)
	m.hb.stop()
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		for _, id := range g.sortedIDs() {
			g.leader = id
			break
		}
	}
}

func (g *group) sortedIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// rebalanceTimeout is the largest rebalance timeout of the members.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// allJoined reports whether every member has a parked JoinGroup and no
// MEMBER_ID_REQUIRED member is still expected.
func (g *group) allJoined() bool {
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return len(g.pending) == 0
}

// supportsProtocols reports whether a member with these protocols may
// join: any type and list in an Empty group, else the group's type and a
// protocol every member supports.
func (g *group) supportsProtocols(typ string, ps []protocol) bool {
	if g.state == groupEmpty {
		return typ != "" && len(ps) > 0
	}
	if typ != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.supportedByAll(p.name) {
			return true
		}
	}
	return false
}

func (g *group) supportedByAll(name string) bool {
	for _, m := range g.members {
		if !slices.ContainsFunc(m.protocols, func(p protocol) bool { return p.name == name }) {
			return false
		}
	}
	return true
}

// selectProtocol picks the protocol for the next generation: each member
// votes for its most preferred protocol that all members support; most
// votes wins, ties go to the smaller name.
func (g *group) selectProtocol() string {
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supportedByAll(p.name) {
				votes[p.name]++
				break
			}
		}
	}
	best, n := "", -1
	for name, v := range votes {
		if v > n || (v == n && name < best) {
			best, n = name, v
		}
	}
	return best
}

// subscriptions parses the "consumer" protocol metadata of the selected
// protocol for OffsetDelete; nil means unknown (treated as subscribed to
// everything).
func (g *group) subscriptions() map[string]bool {
	if g.protocolType != "consumer" || len(g.members) == 0 {
		return nil
	}
	topics := map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return nil
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return topics
}

// ---- JoinGroup ----

// join handles a JoinGroup; the answer goes to a.reply, now or when the
// rebalance completes.
func (g *group) join(a *joinArgs) {
	if !g.supportsProtocols(a.protocolType, a.protocols) {
		a.reply <- joinResult{code: kerr.InconsistentGroupProtocol.Code, generation: -1, memberID: a.memberID}
		return
	}
	if a.memberID == "" {
		g.joinNew(a)
		return
	}
	if t, ok := g.pending[a.memberID]; ok {
		if a.instanceID != nil { // pending members are dynamic
			a.reply <- joinResult{code: kerr.UnknownMemberID.Code, generation: -1, memberID: a.memberID}
			return
		}
		t.stop()
		delete(g.pending, a.memberID)
		g.addMember(a.memberID, a)
		return
	}
	g.joinExisting(a)
}

func (g *group) joinNew(a *joinArgs) {
	if a.instanceID != nil {
		id := newMemberID(*a.instanceID)
		if old, ok := g.static[*a.instanceID]; ok {
			g.replaceStatic(old, id, a)
			return
		}
		g.addMember(id, a)
		return
	}
	id := newMemberID(a.clientID)
	if a.version >= 4 { // KIP-394: hand out the ID first
		t := &gtimer{}
		g.pending[id] = t
		g.after(t, a.sessionTimeout, func() { g.expirePending(id) })
		a.reply <- joinResult{code: kerr.MemberIDRequired.Code, generation: -1, memberID: id}
		return
	}
	g.addMember(id, a)
}

func (g *group) joinExisting(a *joinArgs) {
	if code := g.validateMember(a.memberID, a.instanceID); code != 0 {
		a.reply <- joinResult{code: code, generation: -1, memberID: a.memberID}
		return
	}
	m := g.members[a.memberID]
	switch g.state {
	case groupPreparingRebalance:
		g.updateMember(m, a)
		g.maybeRebalanceOrCompleteJoin()
	case groupCompletingRebalance:
		if m.sameProtocols(a.protocols) {
			// A retry of a join whose answer was lost: answer it again.
			a.reply <- g.joinResultFor(m.id, g.leader, false)
			return
		}
		g.updateMember(m, a)
		g.maybeRebalanceOrCompleteJoin()
	case groupStable:
		if m.id == g.leader || !m.sameProtocols(a.protocols) {
			// The leader rejoins to trigger a rebalance (e.g. new topics).
			g.updateMember(m, a)
			g.maybeRebalanceOrCompleteJoin()
			return
		}
		a.reply <- g.joinResultFor(m.id, g.leader, false)
	default:
		a.reply <- joinResult{code: kerr.UnknownMemberID.Code, generation: -1, memberID: a.memberID}
	}
}

// addMember adds a new member that has a parked join and rebalances.
func (g *group) addMember(id string, a *joinArgs) {
	m := &member{
		id: id, instanceID: a.instanceID, clientID: a.clientID, host: a.host,
		isNew: true,
	}
	if g.state == groupPreparingRebalance && g.prevState == groupEmpty {
		g.newMemberAdded = true
	}
	if len(g.members) == 0 {
		g.protocolType = a.protocolType
	}
	g.members[id] = m
	if g.leader == "" {
		g.leader = id
	}
	if a.instanceID != nil {
		g.static[*a.instanceID] = id
	}
	g.updateMember(m, a)
	// A new member cannot heartbeat while parked; bound its wait instead.
	g.after(&m.hb, g.gs.cfg.newMemberJoin, func() { g.expireMember(m) })
	g.maybeRebalanceOrCompleteJoin()
}

// updateMember takes a's protocols and timeouts and parks its join,
// answering an earlier parked join of the same member.
func (g *group) updateMember(m *member, a *joinArgs) {
	m.protocolType, m.protocols = a.protocolType, a.protocols
	m.sessionTimeout, m.rebalanceTimeout = a.sessionTimeout, a.rebalanceTimeout
	if m.join != nil && m.join != a {
		m.join.reply <- joinResult{code: kerr.RebalanceInProgress.Code, generation: -1, memberID: m.id}
	}
	m.join = a
}

// replaceStatic gives a rejoining static member a new member ID, fencing
// the old one (KIP-345). A stable group whose protocol choice does not
// change answers without a rebalance.
func (g *group) replaceStatic(oldID, newID string, a *joinArgs) {
	old := g.members[oldID]
	if old == nil { // cannot happen: static maps only to members
		delete(g.static, *a.instanceID)
		g.addMember(newID, a)
		return
	}
	prevLeader := g.leader
	g.answer(old, kerr.FencedInstanceID.Code)
	old.hb.stop()
	delete(g.members, oldID)
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	m := &member{
		id: newID, instanceID: old.instanceID, clientID: old.clientID, host: old.host,
		protocolType: old.protocolType, protocols: old.protocols, assignment: old.assignment,
		sessionTimeout: old.sessionTimeout, rebalanceTimeout: old.rebalanceTimeout,
	}
	g.members[newID] = m
	g.static[*a.instanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	g.after(&m.hb, m.sessionTimeout, func() { g.expireMember(m) })
	g.updateMember(m, a)
	switch g.state {
	case groupStable:
		if g.selectProtocol() != g.protocol {
			g.maybeRebalanceOrCompleteJoin()
			return
		}
		var res joinResult
		if a.version >= 9 { // KIP-814: the leader keeps its assignment
			res = g.joinResultFor(newID, g.leader, g.leader == newID)
		} else {
			// Older leaders would recompute an assignment a stable group
			// cannot spread; naming the previous leader makes the new
			// member act as a follower.
			res = g.joinResultFor(newID, prevLeader, false)
			res.members = nil
		}
		m.join = nil
		a.reply <- res
	case groupCompletingRebalance:
		// The leader may be assigning with the old member ID.
		g.prepareRebalance()
	default:
		g.maybeRebalanceOrCompleteJoin()
	}
}

// joinResultFor is the current generation's JoinGroup answer for member
// id; the leader (or, with skip, a KIP-814 leader) gets the member list.
func (g *group) joinResultFor(id, leader string, skip bool) joinResult {
	pt, p := g.protocolType, g.protocol
	res := joinResult{
		generation: g.generation, protocolType: &pt, name: &p,
		leader: leader, memberID: id, skipAssignment: skip,
	}
	if id == leader || skip {
		for _, mid := range g.sortedIDs() {
			m := g.members[mid]
			res.members = append(res.members, joinMember{memberID: m.id, instanceID: m.instanceID, metadata: m.metadataFor(g.protocol)})
		}
	}
	return res
}

// ---- rebalance ----

func (g *group) canRebalance() bool {
	return g.state == groupEmpty || g.state == groupStable || g.state == groupCompletingRebalance
}

func (g *group) maybeRebalanceOrCompleteJoin() {
	if g.canRebalance() {
		g.prepareRebalance()
		return
	}
	g.maybeCompleteJoin()
}

// maybeCompleteJoin completes the join phase once everyone has joined,
// except in the initial rebalance, which waits out its delay.
func (g *group) maybeCompleteJoin() {
	if g.state == groupPreparingRebalance && g.prevState != groupEmpty && g.allJoined() {
		g.completeJoin()
	}
}

// prepareRebalance moves the group to PreparingRebalance.
func (g *group) prepareRebalance() {
	if g.state == groupCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				m.sync <- syncResult{code: kerr.RebalanceInProgress.Code}
				m.sync = nil
			}
		}
	}
	g.syncTimer.stop()
	clear(g.pendingSync)
	initial := g.state == groupEmpty
	g.prevState, g.state = g.state, groupPreparingRebalance
	if initial {
		delay := g.gs.cfg.initialDelay
		remaining := max(g.rebalanceTimeout()-delay, 0)
		g.after(&g.joinTimer, delay, func() { g.initialDelayDone(delay, remaining) })
		return
	}
	if g.allJoined() {
		g.completeJoin()
		return
	}
	g.after(&g.joinTimer, g.rebalanceTimeout(), g.completeJoin)
}

// initialDelayDone extends the initial rebalance while members keep
// arriving, up to the rebalance timeout.
func (g *group) initialDelayDone(delay, remaining time.Duration) {
	if g.newMemberAdded && remaining > 0 {
		g.newMemberAdded = false
		next := min(g.gs.cfg.initialDelay, remaining)
		left := max(remaining-delay, 0)
		g.after(&g.joinTimer, next, func() { g.initialDelayDone(next, left) })
		return
	}
	g.completeJoin()
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are dropped, the generation moves on, and every parked join is
// answered.
func (g *group) completeJoin() {
	g.joinTimer.stop()
	if g.state != groupPreparingRebalance {
		return
	}
	for _, m := range g.members {
		if m.join == nil && m.instanceID == nil {
			g.removeMember(m, kerr.UnknownMemberID.Code)
		}
	}
	if !g.electJoinedLeader() && len(g.members) > 0 {
		// Only static members that have not rejoined are left: wait for
		// them or for their sessions to expire.
		g.after(&g.joinTimer, g.rebalanceTimeout(), g.completeJoin)
		return
	}
	g.generation++
	clear(g.pendingSync)
	if len(g.members) == 0 {
		// Kafka keeps the protocol type of a group that empties
		// (DescribeGroups still says "consumer"); only the protocol goes.
		g.protocol = ""
		g.state = groupEmpty
		g.subscribed = nil
		return
	}
	g.protocol = g.selectProtocol()
	g.state = groupCompletingRebalance
	g.subscribed = g.subscriptions()
	for _, m := range g.members {
		if m.join != nil {
			m.join.reply <- g.joinResultFor(m.id, g.leader, false)
			m.join = nil
		}
		m.isNew = false
		g.after(&m.hb, m.sessionTimeout, func() { g.expireMember(m) })
		g.pendingSync[m.id] = true
	}
	gen := g.generation
	g.after(&g.syncTimer, g.rebalanceTimeout(), func() { g.expireSync(gen) })
}

// electJoinedLeader keeps the leader if it rejoined, or picks a member
// that did. It reports false when no member rejoined.
func (g *group) electJoinedLeader() bool {
	if m := g.members[g.leader]; m != nil && m.join != nil {
		return true
	}
	for _, id := range g.sortedIDs() {
		if g.members[id].join != nil {
			g.leader = id
			return true
		}
	}
	return false
}

// expireSync drops members that did not send SyncGroup in time.
func (g *group) expireSync(gen int32) {
	if gen != g.generation || (g.state != groupCompletingRebalance && g.state != groupStable) || len(g.pendingSync) == 0 {
		return
	}
	for id := range g.pendingSync {
		if m := g.members[id]; m != nil {
			g.removeMember(m, kerr.UnknownMemberID.Code)
		}
	}
	g.prepareRebalance()
}

// expireMember handles a member's session timeout. Members parked in a
// rebalance are alive by definition, unless they are new.
func (g *group) expireMember(m *member) {
	if g.members[m.id] != m {
		return
	}
	if !m.isNew && (m.join != nil || m.sync != nil) {
		return
	}
	g.removeMemberAndUpdate(m)
}

func (g *group) expirePending(id string) {
	delete(g.pending, id)
	if g.state == groupPreparingRebalance && g.allJoined() {
		g.completeJoin()
	}
}

// removeMemberAndUpdate removes m and moves the rebalance along.
func (g *group) removeMemberAndUpdate(m *member) {
	g.removeMember(m, kerr.UnknownMemberID.Code)
	switch g.state {
	case groupStable, groupCompletingRebalance:
		g.maybeRebalanceOrCompleteJoin()
	case groupPreparingRebalance:
		if g.allJoined() {
			g.completeJoin()
		}
	}
}

// ---- SyncGroup, Heartbeat, LeaveGroup ----

func (g *group) sync(a *syncArgs) {
	if len(g.members) == 0 {
		a.reply <- syncResult{code: kerr.UnknownMemberID.Code}
		return
	}
	if code := g.validateMember(a.memberID, a.instanceID); code != 0 {
		a.reply <- syncResult{code: code}
		return
	}
	if a.generation != g.generation {
		a.reply <- syncResult{code: kerr.IllegalGeneration.Code}
		return
	}
	if (a.protocolType != nil && *a.protocolType != g.protocolType) || (a.name != nil && *a.name != g.protocol) {
		a.reply <- syncResult{code: kerr.InconsistentGroupProtocol.Code}
		return
	}
	m := g.members[a.memberID]
	switch g.state {
	case groupPreparingRebalance:
		a.reply <- syncResult{code: kerr.RebalanceInProgress.Code}
	case groupCompletingRebalance:
		if m.sync != nil {
			m.sync <- syncResult{code: kerr.RebalanceInProgress.Code}
		}
		m.sync = a.reply
		g.synced(m.id)
		if m.id == g.leader {
			g.assign(a.assignments)
		}
	case groupStable:
		g.synced(m.id)
		a.reply <- g.syncResultFor(m)
	default:
		a.reply <- syncResult{code: kerr.UnknownMemberID.Code}
	}
}

func (g *group) synced(id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		g.syncTimer.stop()
	}
}

// assign stores the leader's assignments (members it left out get an
// empty one), answers every parked SyncGroup and makes the group Stable.
func (g *group) assign(assignments map[string][]byte) {
	for id, m := range g.members {
		m.assignment = assignments[id]
	}
	g.state = groupStable
	for _, m := range g.members {
		if m.sync != nil {
			m.sync <- g.syncResultFor(m)
			m.sync = nil
			g.after(&m.hb, m.sessionTimeout, func() { g.expireMember(m) })
		}
	}
}

func (g *group) syncResultFor(m *member) syncResult {
	pt, p := g.protocolType, g.protocol
	return syncResult{protocolType: &pt, name: &p, assignment: m.assignment}
}

// heartbeat answers a Heartbeat and extends the member's session.
func (g *group) heartbeat(gen int32, id string, instanceID *string) int16 {
	if code := g.validateMember(id, instanceID); code != 0 {
		return code
	}
	if gen != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[id]
	switch g.state {
	case groupPreparingRebalance:
		g.after(&m.hb, m.sessionTimeout, func() { g.expireMember(m) })
		return kerr.RebalanceInProgress.Code
	case groupCompletingRebalance, groupStable:
		g.after(&m.hb, m.sessionTimeout, func() { g.expireMember(m) })
		return 0
	}
	return kerr.UnknownMemberID.Code
}

// leaving is one member of a LeaveGroup request.
type leaving struct {
	memberID   string
	instanceID *string
	code       int16 // the answer
}

// leave removes members (by member ID, or by instance ID alone for
// administrative removal of static members) and rebalances once.
func (g *group) leave(ls []leaving) {
	removed := false
	for i := range ls {
		l := &ls[i]
		switch {
		case l.memberID == "":
			id, ok := "", false
			if l.instanceID != nil {
				id, ok = g.static[*l.instanceID]
			}
			if !ok {
				l.code = kerr.UnknownMemberID.Code
				continue
			}
			g.removeMember(g.members[id], kerr.UnknownMemberID.Code)
			removed = true
		case g.pending[l.memberID] != nil:
			g.pending[l.memberID].stop()
			delete(g.pending, l.memberID)
		default:
			if l.code = g.validateMember(l.memberID, l.instanceID); l.code != 0 {
				continue
			}
			g.removeMember(g.members[l.memberID], kerr.UnknownMemberID.Code)
			removed = true
		}
	}
	if !removed {
		return
	}
	switch g.state {
	case groupStable, groupCompletingRebalance:
		g.maybeRebalanceOrCompleteJoin()
	case groupPreparingRebalance:
		g.maybeCompleteJoin()
	}
}

// ---- offsets, describe, delete ----

// validateCommit checks an OffsetCommit against the group, as Kafka's
// ClassicGroup.validateOffsetCommit does, and extends the member's
// session on success.
func (g *group) validateCommit(gen int32, id string, instanceID *string) int16 {
	if gen < 0 && g.state == groupEmpty {
		return 0 // a simple (manual) commit to a group nobody is in
	}
	if gen >= 0 || id != "" || instanceID != nil {
		if code := g.validateMember(id, instanceID); code != 0 {
			return code
		}
		if gen != g.generation {
			return kerr.IllegalGeneration.Code
		}
	} else if g.state != groupEmpty {
		return kerr.UnknownMemberID.Code
	}
	if g.state == groupCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	if m := g.members[id]; m != nil {
		g.after(&m.hb, m.sessionTimeout, func() { g.expireMember(m) })
	}
	return 0
}

// groupDescription is a group as DescribeGroups shows it.
type groupDescription struct {
	state                  groupState
	protocolType, protocol string
	members                []memberDescription
}

// memberDescription is one member in a groupDescription.
type memberDescription struct {
	id                   string
	instanceID           *string
	clientID, host       string
	metadata, assignment []byte
}

// describe reports the group; metadata and assignments only when Stable,
// as Kafka does.
func (g *group) describe() groupDescription {
	d := groupDescription{state: g.state, protocolType: g.protocolType}
	stable := g.state == groupStable
	if stable {
		d.protocol = g.protocol
	}
	for _, id := range g.sortedIDs() {
		m := g.members[id]
		md := memberDescription{id: m.id, instanceID: m.instanceID, clientID: m.clientID, host: m.host}
		if stable {
			md.metadata, md.assignment = m.metadataFor(g.protocol), m.assignment
		}
		d.members = append(d.members, md)
	}
	return d
}

// active reports whether the group has members in a generation (Kafka
// refuses to delete such groups and their offsets: NON_EMPTY_GROUP).
func (g *group) active() bool {
	return g.state == groupPreparingRebalance || g.state == groupCompletingRebalance || g.state == groupStable
}

// clientHost formats a peer address as Kafka does ("/127.0.0.1").
func clientHost(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		host = addr.String()
	}
	return "/" + strings.TrimPrefix(host, "/")
}

// ---- entry points for the handlers ----

// join validates and runs a JoinGroup and waits for its answer.
func (gs *groups) join(ctx context.Context, name string, a *joinArgs) joinResult {
	fail := func(code int16) joinResult { return joinResult{code: code, generation: -1, memberID: a.memberID} }
	switch {
	case name == "":
		return fail(kerr.InvalidGroupID.Code)
	case a.sessionTimeout < gs.cfg.minSession || a.sessionTimeout > gs.cfg.maxSession:
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	a.reply = make(chan joinResult, 1)
	if _, code := gs.run(ctx, name, true, func(g *group) { g.join(a) }); code != 0 {
		return fail(code)
	}
	select {
	case res := <-a.reply:
		return res
	case <-ctx.Done():
		return fail(kerr.NotCoordinator.Code)
	}
}

// sync runs a SyncGroup and waits for its answer.
func (gs *groups) sync(ctx context.Context, name string, a *syncArgs) syncResult {
	if name == "" {
		return syncResult{code: kerr.InvalidGroupID.Code}
	}
	a.reply = make(chan syncResult, 1)
	found, code := gs.run(ctx, name, false, func(g *group) { g.sync(a) })
	switch {
	case code != 0:
		return syncResult{code: code}
	case !found:
		return syncResult{code: kerr.UnknownMemberID.Code}
	}
	select {
	case res := <-a.reply:
		return res
	case <-ctx.Done():
		return syncResult{code: kerr.NotCoordinator.Code}
	}
}

// heartbeat runs a Heartbeat.
func (gs *groups) heartbeat(ctx context.Context, name string, gen int32, id string, instanceID *string) int16 {
	if name == "" {
		return kerr.InvalidGroupID.Code
	}
	var res int16
	found, code := gs.run(ctx, name, false, func(g *group) { res = g.heartbeat(gen, id, instanceID) })
	switch {
	case code != 0:
		return code
	case !found:
		return kerr.UnknownMemberID.Code
	}
	return res
}

// leave runs a LeaveGroup, filling each entry's code; the returned code is
// for the whole request. Every member of an unknown group gets
// UNKNOWN_MEMBER_ID and the request none, as Kafka answers (v0-v2 carry
// the member's code at the top level).
func (gs *groups) leave(ctx context.Context, name string, ls []leaving) int16 {
	if name == "" {
		return kerr.InvalidGroupID.Code
	}
	found, code := gs.run(ctx, name, false, func(g *group) { g.leave(ls) })
	if code != 0 {
		return code
	}
	if !found {
		for i := range ls {
			ls[i].code = kerr.UnknownMemberID.Code
		}
	}
	return 0
}

// validateCommit checks whether an OffsetCommit may be stored. A group
// that is not live accepts simple commits (generation < 0); others get
// UNKNOWN_MEMBER_ID if it has offsets, else GROUP_ID_NOT_FOUND from v9
// and ILLEGAL_GENERATION before, as Kafka answers.
func (gs *groups) validateCommit(ctx context.Context, name string, version int16, gen int32, id string, instanceID *string) int16 {
	if name == "" {
		return kerr.InvalidGroupID.Code
	}
	var res int16
	found, code := gs.run(ctx, name, false, func(g *group) { res = g.validateCommit(gen, id, instanceID) })
	switch {
	case code != 0:
		return code
	case found:
		return res
	case gen < 0:
		return 0
	case gs.hasOffsets(name):
		return kerr.UnknownMemberID.Code
	case version >= 9:
		return kerr.GroupIDNotFound.Code
	}
	return kerr.IllegalGeneration.Code
}

// describe describes one group: a live one from its goroutine, one with
// only offsets as Empty. found is false for any other, described as Dead
// (Kafka's answer for unknown groups, with GROUP_ID_NOT_FOUND from
// DescribeGroups v6).
func (gs *groups) describe(ctx context.Context, name string) (d groupDescription, found bool, code int16) {
	found, code = gs.run(ctx, name, false, func(g *group) { d = g.describe() })
	switch {
	case code != 0:
		return groupDescription{state: groupDead}, false, code
	case found:
		return d, true, 0
	case gs.hasOffsets(name):
		gs.mu.Lock()
		typ := gs.types[name]
		gs.mu.Unlock()
		return groupDescription{state: groupEmpty, protocolType: typ}, true, 0
	}
	return groupDescription{state: groupDead}, false, 0
}

// retireForDelete stops a live group that has no members so its offsets
// can be deleted. It reports whether the group was live and the code
// (NON_EMPTY_GROUP for a group with members).
func (gs *groups) retireForDelete(ctx context.Context, name string) (bool, int16) {
	var res int16
	found, code := gs.run(ctx, name, false, func(g *group) {
		if g.active() {
			res = kerr.NonEmptyGroup.Code
			return
		}
		g.state = groupDead
	})
	if res == 0 {
		gs.mu.Lock()
		delete(gs.types, name)
		gs.mu.Unlock()
	}
	if code != 0 {
		return false, code
	}
	return found, res
}

// offsetDeleteCheck reports, for OffsetDelete, whether the group is live,
// whether it has members, its protocol type and its subscribed topics.
type offsetDeleteCheck struct {
	live, active bool
	protocolType string
	subscribed   map[string]bool
}

func (gs *groups) checkOffsetDelete(ctx context.Context, name string) (offsetDeleteCheck, int16) {
	var c offsetDeleteCheck
	found, code := gs.run(ctx, name, false, func(g *group) {
		c = offsetDeleteCheck{active: g.active(), protocolType: g.protocolType, subscribed: g.subscribed}
	})
	c.live = found
	return c, code
}

// subscribedTo reports whether an active group consumes topic, so its
// offsets must stay (GROUP_SUBSCRIBED_TO_TOPIC). Unknown subscriptions
// count as subscribed.
func (c offsetDeleteCheck) subscribedTo(topic string) bool {
	return c.active && (c.subscribed == nil || c.subscribed[topic])
}

// coordinatorCode maps a propose error for a group API: a node that lost
// the lead is no longer the coordinator.
func coordinatorCode(err error) int16 {
	if errors.Is(err, ErrNotLeader) {
		return kerr.NotCoordinator.Code
	}
	return errorCode(err)
}
