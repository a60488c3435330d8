package broker

// OffsetDelete, key 47, version 0.
//
// Behaviour: deletes some committed offsets of a group through the
// replicated log. A group with members may lose the offsets of topics it
// does not consume: for a "consumer" protocol group the subscriptions
// come from the members' metadata, and subscribed topics get
// GROUP_SUBSCRIBED_TO_TOPIC; any other group with members gets
// NON_EMPTY_GROUP (KIP-496, as Kafka). Unknown groups get
// GROUP_ID_NOT_FOUND, partitions of unknown topics
// UNKNOWN_TOPIC_OR_PARTITION.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var offsetDeleteAPI = api{key: 47, min: 0, max: 0, handle: handleOffsetDelete}

func handleOffsetDelete(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.OffsetDeleteRequest)
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	c, code := b.groups.checkOffsetDelete(ctx, r.Group)
	switch {
	case code != 0:
		resp.ErrorCode = code
	case !c.live && !b.groups.hasOffsets(r.Group):
		resp.ErrorCode = kerr.GroupIDNotFound.Code
	case c.active && c.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
	}
	if resp.ErrorCode != 0 {
		return resp, nil
	}
	cmd := storage.DeleteOffsets{Group: r.Group}
	var slots [][2]int
	for ti, t := range r.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		info, known := b.store.Topic(t.Topic)
		for pi, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case !known || p.Partition < 0 || p.Partition >= info.Partitions:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case c.subscribedTo(t.Topic):
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				cmd.Parts = append(cmd.Parts, storage.TopicPartition{Topic: t.Topic, Partition: p.Partition})
				slots = append(slots, [2]int{ti, pi})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(cmd.Parts) == 0 {
		return resp, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	res, err := b.propose(pctx, cmd)
	cancel()
	if err != nil {
		// Nothing is known to be deleted: the whole request failed.
		resp.ErrorCode, resp.Topics = coordinatorCode(err), nil
		return resp, nil
	}
	errs, _ := res.([]error)
	for i, s := range slots {
		if i < len(errs) && errs[i] != nil && !errors.Is(errs[i], storage.ErrUnknownGroup) {
			resp.Topics[s[0]].Partitions[s[1]].ErrorCode = errorCode(errs[i])
		}
	}
	return resp, nil
}
