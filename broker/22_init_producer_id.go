package broker

// InitProducerID, key 22, versions 0-5.
//
// Behaviour: hands idempotent producers a fresh producer ID (epoch 0)
// through the replicated log, or bumps the epoch of the ID the producer
// already has (v3+, KIP-360) so it can reset its sequences after an error.
//
// Omissions: transactional producers. A request with a transactional ID
// gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED with a message saying kbox
// does not support transactions, rather than a retriable error that
// would make the client wait forever.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var initProducerIDAPI = api{key: 22, min: 0, max: 5, handle: handleInitProducerID}

func handleInitProducerID(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	cmd := storage.InitProducerID{ProducerID: -1, Epoch: -1}
	if r.Version >= 3 {
		cmd.ProducerID, cmd.Epoch = r.ProducerID, r.ProducerEpoch
	}
	res, err := b.propose(ctx, cmd)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		if resp.ErrorCode == kerr.NotLeaderForPartition.Code {
			resp.ErrorCode = kerr.NotCoordinator.Code
		}
		return resp, nil
	}
	pid := res.(storage.ProducerID)
	resp.ProducerID, resp.ProducerEpoch = pid.ID, pid.Epoch
	return resp, nil
}
