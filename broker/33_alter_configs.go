package broker

// AlterConfigs, key 33, versions 0-2.
//
// Behaviour: replace semantics, as in Kafka: a TOPIC resource's configs
// become exactly the ones given, every other key reverting to its default.
// Each key must be a known topic config with a valid value (INVALID_CONFIG,
// naming the key); a null value or a key given twice is INVALID_CONFIG or
// INVALID_REQUEST. ValidateOnly checks without changing anything. A node
// that cannot get the change committed (a follower that does not forward
// it to the Raft leader) answers NOT_CONTROLLER.
// A BROKER resource with the empty name replaces the cluster-wide
// defaults of the dynamic broker configs (configs_broker.go): keys that
// are read-only or unknown are INVALID_REQUEST ("Cannot update these
// configs dynamically"), bad values INVALID_REQUEST, and leaving out
// min.insync.replicas is INVALID_CONFIG, as Kafka 4.1 refuses to remove it
// while ELR is enabled. A BROKER resource named with this node's ID takes
// no configs (INVALID_CONFIG; kbox has no per-broker dynamic configs),
// another ID is INVALID_REQUEST. A resource listed twice is
// INVALID_REQUEST.
//
// Omissions: no alter-config policy; BROKER_LOGGER, CLIENT_METRICS and
// GROUP resources are INVALID_REQUEST.
//
// Version notes: deprecated by IncrementalAlterConfigs (KIP-339) but still
// served by Kafka 4; v1 adds throttling, v2 is flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var alterConfigsAPI = api{key: 33, min: 0, max: 2, handle: handleAlterConfigs}

// resourceKey names a config resource, to find duplicates in a request.
type resourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

// repeatedResources returns a check that refuses, with INVALID_REQUEST as
// Kafka does, a resource an alter request lists more than once.
func repeatedResources(keys []resourceKey) func(resourceKey) error {
	count := map[resourceKey]int{}
	for _, k := range keys {
		count[k]++
	}
	return func(k resourceKey) error {
		if count[k] > 1 {
			return newAPIErr(kerr.InvalidRequest.Code, "resource %s %q is listed more than once", k.typ, k.name)
		}
		return nil
	}
}

func handleAlterConfigs(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	keys := make([]resourceKey, len(r.Resources))
	for i, rr := range r.Resources {
		keys[i] = resourceKey{rr.ResourceType, rr.ResourceName}
	}
	repeated := repeatedResources(keys)
	for _, rr := range r.Resources {
		res := kmsg.NewAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		err := repeated(resourceKey{rr.ResourceType, rr.ResourceName})
		if err == nil {
			err = b.alterConfigsResource(ctx, &rr, r.ValidateOnly)
		}
		res.ErrorCode, res.ErrorMessage = answer(err)
		resp.Resources = append(resp.Resources, res)
	}
	return resp, nil
}

func (b *Broker) alterConfigsResource(ctx context.Context, rr *kmsg.AlterConfigsRequestResource, validateOnly bool) error {
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		if _, err := b.alterableTopic(rr.ResourceName); err != nil {
			return err
		}
		names := make([]string, len(rr.Configs))
		values := make([]*string, len(rr.Configs))
		for i, c := range rr.Configs {
			names[i], values[i] = c.Name, c.Value
		}
		next, err := validateTopicConfigs(names, values)
		if err != nil {
			return err
		}
		if validateOnly {
			return nil
		}
		return b.proposeConfigs(ctx, storage.AlterConfigs{Topic: rr.ResourceName, Replace: true, Set: next})
	case kmsg.ConfigResourceTypeBroker:
		ops := make([]configOp, len(rr.Configs))
		for i, c := range rr.Configs {
			ops[i] = configOp{name: c.Name, op: kmsg.IncrementalAlterConfigOpSet, value: c.Value}
		}
		return b.alterBroker(ctx, rr.ResourceName, ops, true, validateOnly)
	}
	return newAPIErr(kerr.InvalidRequest.Code, "kbox does not alter configs of resource type %s", rr.ResourceType)
}

// alterableTopic checks that topic exists, returning its current state.
func (b *Broker) alterableTopic(topic string) (storage.TopicInfo, error) {
	if err := storage.ValidateTopicName(topic); err != nil {
		return storage.TopicInfo{}, err
	}
	info, ok := b.store.Topic(topic)
	if !ok {
		return storage.TopicInfo{}, newAPIErr(kerr.UnknownTopicOrPartition.Code, "topic %s does not exist", topic)
	}
	return info, nil
}

// alterBroker checks and makes a change of a BROKER resource's configs;
// replace is AlterConfigs' semantics.
func (b *Broker) alterBroker(ctx context.Context, name string, ops []configOp, replace, validateOnly bool) error {
	if err := b.brokerResource(name, false); err != nil {
		return err
	}
	cmd, err := b.planBrokerAlter(name == "", ops, replace)
	if err != nil || validateOnly || cmd == nil {
		return err
	}
	return b.proposeConfigs(ctx, cmd)
}

// proposeConfigs commits a config change and returns its outcome.
func (b *Broker) proposeConfigs(ctx context.Context, cmd storage.Command) error {
	ctx, cancel := adminContext(ctx, 0)
	defer cancel()
	res, err := b.propose(ctx, cmd)
	if err != nil {
		return b.proposeErr(err)
	}
	if e, ok := res.(error); ok {
		return e
	}
	return nil
}
