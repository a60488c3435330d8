package broker

// LeaveGroup, key 13, versions 0-5.
//
// Behaviour: removes members and rebalances the rest at once, without
// waiting for their session timeouts. A member given only by
// group.instance.id (member ID empty) is removed administratively, as
// kafka-consumer-groups --delete-members does. For an unknown group every
// member gets UNKNOWN_MEMBER_ID and the request no error, as Kafka 4
// answers (v0-v2 carry that code at the top level); the top-level code
// is for the whole request (INVALID_GROUP_ID, NOT_COORDINATOR).
//
// Version notes: v0-v2 name one member and answer in the top-level error
// code; v3 batches members with instance IDs (KIP-345) and answers per
// member; v4 is flexible; v5 adds a reason (KIP-800), ignored.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var leaveGroupAPI = api{key: 13, min: 0, max: 5, handle: handleLeaveGroup}

func handleLeaveGroup(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.LeaveGroupRequest)
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	var ls []leaving
	if r.Version < 3 {
		ls = []leaving{{memberID: r.MemberID}}
	} else {
		for _, m := range r.Members {
			ls = append(ls, leaving{memberID: m.MemberID, instanceID: m.InstanceID})
		}
	}
	resp.ErrorCode = b.groups.leave(ctx, r.Group, ls)
	if r.Version < 3 {
		if resp.ErrorCode == 0 {
			resp.ErrorCode = ls[0].code
		}
		return resp, nil
	}
	if resp.ErrorCode != 0 {
		return resp, nil
	}
	for _, l := range ls {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = l.memberID, l.instanceID, l.code
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
