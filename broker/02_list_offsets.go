package broker

// ListOffsets, key 2, versions 1-10.
//
// Behaviour: earliest (-2) is the log start offset, latest (-1) the high
// watermark, max timestamp (-3, v7+, KIP-734) the batch holding the largest
// timestamp, earliest-local (-4, v8+) the log start offset (kbox has no
// tiered storage), latest-tiered (-5, v9+) -1 for the same reason; a
// timestamp finds the first batch whose max timestamp is at or after it.
// Only the leader answers; CurrentLeaderEpoch is fenced as in Fetch.
//
// Omissions: timestamp lookups resolve to a batch's base offset, not the
// exact record inside a multi-record batch (Kafka reads into the batch).
// v0 (OldStyleOffsets) is not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var listOffsetsAPI = api{key: 2, min: 1, max: 10, handle: handleListOffsets}

func handleListOffsets(b *Broker, _ context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	leader := b.isLeader()
	epoch := b.store.Epoch()
	for _, t := range r.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			rp.Offset, rp.Timestamp, rp.LeaderEpoch = -1, -1, -1
			switch {
			case !leader && r.ReplicaID < 0:
				rp.ErrorCode = kerr.NotLeaderForPartition.Code
			case r.Version >= 4 && p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch < epoch:
				rp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case r.Version >= 4 && p.CurrentLeaderEpoch > epoch:
				rp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				b.listOffset(t.Topic, p.Partition, p.Timestamp, &rp)
				if rp.ErrorCode == 0 && rp.Offset >= 0 {
					rp.LeaderEpoch = epoch
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (b *Broker) listOffset(topic string, p int32, ts int64, rp *kmsg.ListOffsetsResponseTopicPartition) {
	offs, err := b.store.Offsets(topic, p)
	if err != nil {
		rp.ErrorCode = errorCode(err)
		return
	}
	switch ts {
	case -2, -4:
		rp.Offset = offs.LogStart
	case -1:
		rp.Offset = offs.HighWatermark
	case -3:
		if offs.MaxTimestamp >= 0 && offs.MaxTsOffset >= offs.LogStart {
			rp.Offset, rp.Timestamp = offs.MaxTsOffset, offs.MaxTimestamp
		}
	case -5:
	default:
		if ts < 0 {
			rp.ErrorCode = kerr.InvalidRequest.Code
			return
		}
		off, bts, ok, err := b.store.OffsetForTimestamp(topic, p, ts)
		switch {
		case err != nil:
			rp.ErrorCode = errorCode(err)
		case ok:
			rp.Offset, rp.Timestamp = max(off, offs.LogStart), bts
		}
	}
}
