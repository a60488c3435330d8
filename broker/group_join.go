package broker

// JoinGroup and the rebalance it drives, on the group's goroutine.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

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
