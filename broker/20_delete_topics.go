package broker

// DeleteTopics, key 20, versions 1-6.
//
// Behaviour: deletes topics and all their data through the replicated
// log; a node that cannot get that committed (a follower that does not
// forward to the Raft leader) answers NOT_CONTROLLER. Topics are named by name (v1-5) or by name or topic ID
// (v6); an unknown name is UNKNOWN_TOPIC_OR_PARTITION, an unknown ID
// UNKNOWN_TOPIC_ID, an entry with both or neither INVALID_REQUEST, and a
// name or ID given twice INVALID_REQUEST. Answers for IDs carry the name,
// and v6 answers carry the ID.
//
// Omissions: deletion is immediate, so there is no "marked for deletion"
// state; no internal topics exist to protect.
//
// Version notes: v0 is not served, as in Kafka 4 (KIP-896); v4 is
// flexible; v5 adds error messages; v6 adds topic IDs (KIP-516).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var deleteTopicsAPI = api{key: 20, min: 1, max: 6, handle: handleDeleteTopics}

func handleDeleteTopics(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	topics := r.Topics
	if r.Version < 6 {
		topics = make([]kmsg.DeleteTopicsRequestTopic, len(r.TopicNames))
		for i := range r.TopicNames {
			topics[i].Topic = &r.TopicNames[i]
		}
	}
	names, ids := map[string]int{}, map[[16]byte]int{}
	for _, t := range topics {
		if t.Topic != nil {
			names[*t.Topic]++
		} else {
			ids[t.TopicID]++
		}
	}
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	for _, t := range topics {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		var err error
		switch {
		case t.Topic != nil && t.TopicID != [16]byte{}:
			err = newAPIErr(kerr.InvalidRequest.Code, "a topic may be named by name or by ID, not both")
		case t.Topic == nil && t.TopicID == [16]byte{}:
			err = newAPIErr(kerr.InvalidRequest.Code, "neither a topic name nor a topic ID was given")
		case t.Topic != nil && names[*t.Topic] > 1, t.Topic == nil && ids[t.TopicID] > 1:
			err = newAPIErr(kerr.InvalidRequest.Code, "topic listed more than once")
		default:
			err = b.deleteOneTopic(ctx, &rt)
		}
		rt.ErrorCode, rt.ErrorMessage = answer(err)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// deleteOneTopic resolves rt's name or ID, fills in the other, and deletes
// the topic.
func (b *Broker) deleteOneTopic(ctx context.Context, rt *kmsg.DeleteTopicsResponseTopic) error {
	var (
		info storage.TopicInfo
		ok   bool
	)
	if rt.Topic != nil {
		info, ok = b.store.Topic(*rt.Topic)
		if !ok {
			return newAPIErr(kerr.UnknownTopicOrPartition.Code, "topic %s does not exist", *rt.Topic)
		}
	} else {
		info, ok = b.store.TopicByID(rt.TopicID)
		if !ok {
			return newAPIErr(kerr.UnknownTopicID.Code, "no topic has ID %x", rt.TopicID)
		}
		name := info.Name
		rt.Topic = &name
	}
	rt.TopicID = info.ID
	res, err := b.propose(ctx, storage.DeleteTopic{Name: info.Name})
	if err != nil {
		return b.proposeErr(err)
	}
	if e, ok := res.(error); ok {
		return e
	}
	return nil
}
