package broker

// Heartbeat, key 12, versions 0-4.
//
// Behaviour: extends the member's session timeout. During a rebalance
// the answer is REBALANCE_IN_PROGRESS, telling the member to rejoin;
// unknown members get UNKNOWN_MEMBER_ID and stale generations
// ILLEGAL_GENERATION.
//
// Version notes: v3 adds group.instance.id (KIP-345; a fenced static
// member gets FENCED_INSTANCE_ID), v4 is flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var heartbeatAPI = api{key: 12, min: 0, max: 4, handle: handleHeartbeat}

func handleHeartbeat(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.HeartbeatRequest)
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	instanceID := r.InstanceID
	if r.Version < 3 {
		instanceID = nil
	}
	resp.ErrorCode = b.groups.heartbeat(ctx, r.Group, r.Generation, r.MemberID, instanceID)
	return resp, nil
}
