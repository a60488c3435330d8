package broker

// SyncGroup, Heartbeat, LeaveGroup, commit validation and describe, on the
// group's goroutine.

import (
	"net"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

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
