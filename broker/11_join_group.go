package broker

// JoinGroup, key 11, versions 0-9.
//
// Behaviour: joins a classic group (groups.go). The request is parked
// until the rebalance completes: until every known member has rejoined,
// or the largest rebalance timeout of the members expires, or, for the
// first rebalance of an empty group, the initial rebalance delay (50 ms
// in kbox, Kafka's group.initial.rebalance.delay.ms is 3 s) has passed
// without new members arriving. The broker picks the protocol all members
// support with the most first-choice votes and hands the member list to
// the leader; it never assigns partitions itself. Session timeouts outside
// [6 s, 30 min] get INVALID_SESSION_TIMEOUT, as Kafka's defaults of
// group.min/max.session.timeout.ms.
//
// Version notes: v0 has no rebalance timeout (the session timeout is
// used). v4 answers a first join without member ID with
// MEMBER_ID_REQUIRED and the ID to rejoin with (KIP-394). v5 adds
// group.instance.id for static members (KIP-345): a static member that
// rejoins a stable group with unchanged protocols replaces its old member
// ID without a rebalance, and the old ID is fenced (FENCED_INSTANCE_ID).
// v6 is flexible, v7 returns the protocol type (KIP-559), v8 adds a join
// reason (KIP-800, logged nowhere), v9 adds SkipAssignment, set for a
// static leader that rejoins without a rebalance (KIP-814).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var joinGroupAPI = api{key: 11, min: 0, max: 9, handle: handleJoinGroup}

func handleJoinGroup(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.JoinGroupRequest)
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	a := &joinArgs{
		version:          r.Version,
		memberID:         r.MemberID,
		instanceID:       r.InstanceID,
		clientID:         req.clientID,
		host:             clientHost(req.conn.conn.RemoteAddr()),
		protocolType:     r.ProtocolType,
		sessionTimeout:   time.Duration(r.SessionTimeoutMillis) * time.Millisecond,
		rebalanceTimeout: time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond,
	}
	if r.Version < 5 {
		a.instanceID = nil
	}
	if r.Version == 0 || r.RebalanceTimeoutMillis < 0 {
		a.rebalanceTimeout = a.sessionTimeout
	}
	for _, p := range r.Protocols {
		a.protocols = append(a.protocols, protocol{name: p.Name, metadata: p.Metadata})
	}
	res := b.groups.join(ctx, r.Group, a)
	resp.ErrorCode, resp.Generation = res.code, res.generation
	resp.ProtocolType, resp.Protocol = res.protocolType, res.name
	resp.LeaderID, resp.MemberID, resp.SkipAssignment = res.leader, res.memberID, res.skipAssignment
	for _, m := range res.members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.memberID, m.instanceID, m.metadata
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
