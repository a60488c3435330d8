package broker

// SyncGroup, key 14, versions 0-5.
//
// Behaviour: the leader's SyncGroup carries every member's assignment;
// followers' SyncGroups are parked until it arrives, then all are
// answered and the group is Stable. Members the leader leaves out get an
// empty assignment. A SyncGroup during a new rebalance gets
// REBALANCE_IN_PROGRESS; members that do not sync within the rebalance
// timeout are removed and the group rebalances.
//
// Version notes: v3 adds group.instance.id (KIP-345), v4 is flexible, v5
// sends and checks the protocol type and name (KIP-559,
// INCONSISTENT_GROUP_PROTOCOL on mismatch).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var syncGroupAPI = api{key: 14, min: 0, max: 5, handle: handleSyncGroup}

func handleSyncGroup(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.SyncGroupRequest)
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	a := &syncArgs{
		generation:  r.Generation,
		memberID:    r.MemberID,
		instanceID:  r.InstanceID,
		assignments: make(map[string][]byte, len(r.GroupAssignment)),
	}
	if r.Version < 3 {
		a.instanceID = nil
	}
	if r.Version >= 5 {
		a.protocolType, a.name = r.ProtocolType, r.Protocol
	}
	for _, ga := range r.GroupAssignment {
		a.assignments[ga.MemberID] = ga.MemberAssignment
	}
	res := b.groups.sync(ctx, r.Group, a)
	resp.ErrorCode, resp.ProtocolType, resp.Protocol, resp.MemberAssignment = res.code, res.protocolType, res.name, res.assignment
	return resp, nil
}
