package broker

// FindCoordinator, key 10, versions 0-6.
//
// Behaviour: the coordinator of every group is the Raft leader, which
// leads every partition too; any node answers with the leader's broker
// ID and advertised address. With no leader elected the answer is
// COORDINATOR_NOT_AVAILABLE, which clients retry.
//
// Omissions: transactions. A transaction coordinator lookup gets
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED with a message saying kbox does
// not support transactions (the same answer as InitProducerID and
// Produce), a fatal error for Java and franz-go producers rather than a
// retriable one they would wait on forever. Share-group coordinators
// (key type 2, KIP-932) and unknown key types get INVALID_REQUEST.
//
// Version notes: v1 adds the key type, v3 is flexible, v4 batches keys
// (KIP-699) and moves the answer into Coordinators, v6 adds the share key
// type.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var findCoordinatorAPI = api{key: 10, min: 0, max: 6, handle: handleFindCoordinator}

// coordinator is one FindCoordinator answer.
type coordinator struct {
	nodeID int32
	host   string
	port   int32
	code   int16
	msg    *string
}

func handleFindCoordinator(b *Broker, _ context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if r.Version < 4 {
		c := b.findCoordinator(r.CoordinatorType)
		resp.NodeID, resp.Host, resp.Port, resp.ErrorCode, resp.ErrorMessage = c.nodeID, c.host, c.port, c.code, c.msg
		return resp, nil
	}
	for _, key := range r.CoordinatorKeys {
		c := b.findCoordinator(r.CoordinatorType)
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key = key
		rc.NodeID, rc.Host, rc.Port, rc.ErrorCode, rc.ErrorMessage = c.nodeID, c.host, c.port, c.code, c.msg
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp, nil
}

// findCoordinator answers for one key of the given type.
func (b *Broker) findCoordinator(keyType int8) coordinator {
	fail := func(code int16, msg string) coordinator {
		return coordinator{nodeID: -1, port: -1, code: code, msg: &msg}
	}
	switch keyType {
	case 0:
	case 1:
		return fail(kerr.TransactionalIDAuthorizationFailed.Code, "kbox does not support transactions")
	default:
		return fail(kerr.InvalidRequest.Code, "kbox serves only group coordinators (key type 0)")
	}
	id := b.leaderID()
	if id < 0 {
		return fail(kerr.CoordinatorNotAvailable.Code, "no leader is elected")
	}
	for _, n := range b.brokers() {
		if n.NodeID == id {
			return coordinator{nodeID: id, host: n.Host, port: n.Port}
		}
	}
	return fail(kerr.CoordinatorNotAvailable.Code, "the leader's address is not known yet")
}
