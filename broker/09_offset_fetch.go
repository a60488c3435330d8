package broker

// OffsetFetch, key 9, versions 1-9.
//
// Behaviour: reads committed offsets from the store on the coordinator
// (the Raft leader; other nodes answer NOT_COORDINATOR, so a client never
// reads offsets older than its own commits). Partitions without a commit
// answer offset -1 and empty metadata; a null topic list (v2+) returns
// every committed offset of the group. require_stable (v7+, KIP-447) is
// accepted: without transactions there are never pending offsets.
//
// Omissions: v10 (topic IDs, KIP-848).
//
// Version notes: v0 (ZooKeeper offsets) was removed in Kafka 4.0 and is
// not served. v1 reports errors per partition, v2-v7 in a top-level error
// code, v8 batches groups (KIP-709) with an error per group; v5 adds the
// leader epoch, v6 is flexible, v9 adds member ID and epoch, used only by
// KIP-848 groups and ignored here.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var offsetFetchAPI = api{key: 9, min: 1, max: 9, handle: handleOffsetFetch}

// fetchTopic asks for some partitions of a topic.
type fetchTopic struct {
	topic      string
	partitions []int32
}

// fetchedOffset is one committed offset, or -1 when none.
type fetchedOffset struct {
	topic     string
	partition int32
	offset    int64
	epoch     int32
	metadata  string
}

func handleOffsetFetch(b *Broker, _ context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.OffsetFetchRequest)
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if r.Version >= 8 {
		for _, rg := range r.Groups {
			resp.Groups = append(resp.Groups, offsetFetchGroup(b, rg))
		}
		return resp, nil
	}
	var topics []fetchTopic
	for _, t := range r.Topics {
		topics = append(topics, fetchTopic{topic: t.Topic, partitions: t.Partitions})
	}
	if r.Topics == nil && r.Version < 2 {
		topics = []fetchTopic{} // v1 cannot ask for all
	}
	offs, code := b.fetchOffsets(r.Group, topics)
	if code != 0 && r.Version >= 2 {
		resp.ErrorCode = code
		return resp, nil
	}
	if code != 0 { // v1: the error goes on every partition asked for
		offs = unfetched(topics)
	}
	for _, o := range offs {
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != o.topic {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = o.topic
			resp.Topics = append(resp.Topics, rt)
		}
		rt := &resp.Topics[len(resp.Topics)-1]
		rp := kmsg.NewOffsetFetchResponseTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = o.partition, o.offset, o.epoch, kmsg.StringPtr(o.metadata), code
		rt.Partitions = append(rt.Partitions, rp)
	}
	return resp, nil
}

func offsetFetchGroup(b *Broker, rg kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
	g := kmsg.NewOffsetFetchResponseGroup()
	g.Group = rg.Group
	var topics []fetchTopic
	if rg.Topics != nil {
		topics = []fetchTopic{}
		for _, t := range rg.Topics {
			topics = append(topics, fetchTopic{topic: t.Topic, partitions: t.Partitions})
		}
	}
	offs, code := b.fetchOffsets(rg.Group, topics)
	if g.ErrorCode = code; code != 0 {
		return g
	}
	for _, o := range offs {
		if n := len(g.Topics); n == 0 || g.Topics[n-1].Topic != o.topic {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = o.topic
			g.Topics = append(g.Topics, rt)
		}
		rt := &g.Topics[len(g.Topics)-1]
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = o.partition, o.offset, o.epoch, kmsg.StringPtr(o.metadata)
		rt.Partitions = append(rt.Partitions, rp)
	}
	return g
}

// fetchOffsets returns a group's committed offsets for the partitions
// asked for, in request order, or all of them when topics is nil.
func (b *Broker) fetchOffsets(group string, topics []fetchTopic) ([]fetchedOffset, int16) {
	if _, code := b.groups.coordinator(); code != 0 {
		return nil, code
	}
	stored, err := b.store.GroupOffsets(group)
	if err != nil {
		return nil, errorCode(err)
	}
	if topics == nil {
		out := make([]fetchedOffset, 0, len(stored))
		for _, c := range stored {
			out = append(out, fetchedOffset{topic: c.Topic, partition: c.Partition, offset: c.Offset, epoch: c.LeaderEpoch, metadata: c.Metadata})
		}
		return out, 0
	}
	type tp struct {
		t string
		p int32
	}
	byTP := make(map[tp]int, len(stored))
	for i, c := range stored {
		byTP[tp{c.Topic, c.Partition}] = i
	}
	out := unfetched(topics)
	for i := range out {
		if j, ok := byTP[tp{out[i].topic, out[i].partition}]; ok {
			c := stored[j]
			out[i].offset, out[i].epoch, out[i].metadata = c.Offset, c.LeaderEpoch, c.Metadata
		}
	}
	return out, 0
}

// unfetched lists the partitions asked for with offset -1.
func unfetched(topics []fetchTopic) []fetchedOffset {
	var out []fetchedOffset
	for _, t := range topics {
		for _, p := range t.partitions {
			out = append(out, fetchedOffset{topic: t.topic, partition: p, offset: -1, epoch: -1})
		}
	}
	return out
}
