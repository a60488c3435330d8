package broker

// The group type: one goroutine per live group, its members, timers and
// protocol selection. See groups.go for the design.

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
