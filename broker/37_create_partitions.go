package broker

// CreatePartitions, key 37, versions 0-3.
//
// Behaviour: grows topics to the requested partition count through the
// replicated log; a node that cannot get that committed (a follower that
// does not forward to the Raft leader) answers NOT_CONTROLLER. A count at or below the current one is
// INVALID_PARTITIONS (partitions never shrink), as is one above kbox's
// per-topic limit; an unknown topic is UNKNOWN_TOPIC_OR_PARTITION; a topic
// listed twice is INVALID_REQUEST. A manual assignment must give one
// replica list per new partition, each of distinct existing brokers
// (INVALID_REPLICA_ASSIGNMENT). ValidateOnly checks without changing
// anything.
//
// Omissions: every partition lives on every node, so an assignment is
// checked but not otherwise used.
//
// Version notes: v1 is v0 with throttling; v2 is flexible; v3 may return
// THROTTLING_QUOTA_EXCEEDED (KIP-599, never here).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var createPartitionsAPI = api{key: 37, min: 0, max: 3, handle: handleCreatePartitions}

func handleCreatePartitions(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	count := map[string]int{}
	for _, t := range r.Topics {
		count[t.Topic]++
	}
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	for i := range r.Topics {
		t := &r.Topics[i]
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		var err error
		switch {
		case count[t.Topic] > 1:
			err = newAPIErr(kerr.InvalidRequest.Code, "topic %s is listed more than once", t.Topic)
		default:
			err = b.createPartitions(ctx, t, r.ValidateOnly)
		}
		rt.ErrorCode, rt.ErrorMessage = answer(err)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (b *Broker) createPartitions(ctx context.Context, t *kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	info, ok := b.store.Topic(t.Topic)
	switch {
	case !ok:
		return newAPIErr(kerr.UnknownTopicOrPartition.Code, "topic %s does not exist", t.Topic)
	case t.Count == info.Partitions:
		return newAPIErr(kerr.InvalidPartitions.Code, "topic already has %d partitions", info.Partitions)
	case t.Count < info.Partitions:
		return newAPIErr(kerr.InvalidPartitions.Code, "topic currently has %d partitions, which is higher than the requested %d", info.Partitions, t.Count)
	case t.Count > maxPartitions:
		return newAPIErr(kerr.InvalidPartitions.Code, "%d partitions is more than kbox's limit of %d per topic", t.Count, maxPartitions)
	}
	if t.Assignment != nil {
		if add := t.Count - info.Partitions; int(add) != len(t.Assignment) {
			return newAPIErr(kerr.InvalidReplicaAssignment.Code, "increasing the number of partitions by %d but %d assignments provided", add, len(t.Assignment))
		}
		known := map[int32]bool{}
		for _, bi := range b.brokers() {
			known[bi.NodeID] = true
		}
		for i, a := range t.Assignment {
			if err := checkReplicas(info.Partitions+int32(i), a.Replicas, known); err != nil {
				return err
			}
		}
	}
	if validateOnly {
		return nil
	}
	res, err := b.propose(ctx, storage.CreatePartitions{Topic: t.Topic, Count: t.Count})
	if err != nil {
		return b.proposeErr(err)
	}
	if e, ok := res.(error); ok {
		return e
	}
	return nil
}
