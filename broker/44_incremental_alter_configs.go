package broker

// IncrementalAlterConfigs, key 44, versions 0-1.
//
// Behaviour: the operations of a TOPIC resource apply in order to its
// current configs: SET replaces a value, DELETE reverts a key to its
// default, APPEND and SUBTRACT add or remove comma-separated elements of a
// LIST config (cleanup.policy), starting from the effective value; on any
// other type they are INVALID_CONFIG. The resulting configs must all be
// known and valid (INVALID_CONFIG, naming the key); a key given twice, a
// null value for SET/APPEND/SUBTRACT or an unknown operation is
// INVALID_REQUEST. Only the changed keys are committed, so concurrent
// changes to other keys survive. ValidateOnly checks without changing
// anything; a node that cannot get the change committed (a follower that
// does not forward it) answers NOT_CONTROLLER.
//
// A BROKER resource with the empty name changes the cluster-wide defaults
// of the dynamic broker configs (configs_broker.go), with Kafka's checks
// and messages: a key given twice, a null value, an unknown operation, or
// setting a read-only or unknown key ("Cannot update these configs
// dynamically") is INVALID_REQUEST, as is a bad value; APPEND or SUBTRACT
// on a non-LIST config and deleting min.insync.replicas (ELR, KIP-966) are
// INVALID_CONFIG; deleting anything else unset is a no-op. A BROKER
// resource named with this node's ID accepts only deletes, which change
// nothing (kbox has no per-broker dynamic configs; setting one is
// INVALID_CONFIG, and so is any change of min.insync.replicas there, as
// in Kafka 4.1); another ID is INVALID_REQUEST.
//
// Omissions: BROKER_LOGGER, CLIENT_METRICS and GROUP resources are
// INVALID_REQUEST; no alter-config policy.
//
// Version notes: KIP-339; v1 is flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var incrementalAlterConfigsAPI = api{key: 44, min: 0, max: 1, handle: handleIncrementalAlterConfigs}

func handleIncrementalAlterConfigs(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	keys := make([]resourceKey, len(r.Resources))
	for i, rr := range r.Resources {
		keys[i] = resourceKey{rr.ResourceType, rr.ResourceName}
	}
	repeated := repeatedResources(keys)
	for _, rr := range r.Resources {
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		err := repeated(resourceKey{rr.ResourceType, rr.ResourceName})
		if err == nil {
			err = b.incrementalResource(ctx, &rr, r.ValidateOnly)
		}
		res.ErrorCode, res.ErrorMessage = answer(err)
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

func (b *Broker) incrementalResource(ctx context.Context, rr *kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	ops := make([]configOp, len(rr.Configs))
	for i, c := range rr.Configs {
		ops[i] = configOp{name: c.Name, op: c.Op, value: c.Value}
	}
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		info, err := b.alterableTopic(rr.ResourceName)
		if err != nil {
			return err
		}
		next, err := incrementalConfigs(info.Configs, ops)
		if err != nil {
			return err
		}
		set, del := configDiff(info.Configs, next)
		if validateOnly || set == nil && del == nil {
			return nil
		}
		return b.proposeConfigs(ctx, storage.AlterConfigs{Topic: rr.ResourceName, Set: set, Delete: del})
	case kmsg.ConfigResourceTypeBroker:
		return b.alterBroker(ctx, rr.ResourceName, ops, false, validateOnly)
	}
	return newAPIErr(kerr.InvalidRequest.Code, "kbox does not alter configs of resource type %s", rr.ResourceType)
}
