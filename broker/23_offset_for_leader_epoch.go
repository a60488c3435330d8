package broker

// OffsetForLeaderEpoch, key 23, versions 2-4.
//
// Behaviour: answers, as Kafka's leader epoch cache does, the largest
// epoch at or below the requested one that wrote to the partition and the
// offset where it ended: the start of the next epoch that wrote, or the
// high watermark for the current epoch. A requested epoch older than every
// epoch still in the log answers that epoch with the first offset of the
// next later one; a requested epoch above the current one, or -1, answers
// -1/-1 (UNDEFINED_EPOCH). Consumers (KIP-320) use this to detect
// truncation after a leader change; Raft never truncates committed data,
// so the answers never show any. CurrentLeaderEpoch is fenced as in Fetch
// (FENCED_LEADER_EPOCH below the current epoch, UNKNOWN_LEADER_EPOCH above
// it). Only the leader answers: others say NOT_LEADER_OR_FOLLOWER.
//
// Version notes: v0-1 are not served, as in Kafka 4 (KIP-896); v2 adds
// CurrentLeaderEpoch (KIP-320); v3 adds ReplicaID; v4 is flexible.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var offsetForLeaderEpochAPI = api{key: 23, min: 2, max: 4, handle: handleOffsetForLeaderEpoch}

func handleOffsetForLeaderEpoch(b *Broker, _ context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	leader := b.isLeader()
	current := b.store.Epoch()
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.EndOffset = p.Partition, -1, -1
			switch {
			case !leader:
				rp.ErrorCode = kerr.NotLeaderForPartition.Code
			case p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch < current:
				rp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case p.CurrentLeaderEpoch > current:
				rp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				e, end, err := b.epochEndOffset(t.Topic, p.Partition, p.LeaderEpoch, current)
				if err != nil {
					rp.ErrorCode = errorCode(err)
				} else {
					rp.LeaderEpoch, rp.EndOffset = e, end
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// errScanDone ends a batch scan early.
var errScanDone = errors.New("scan done")

// epochEndOffset computes the answer for one partition; see the header.
func (b *Broker) epochEndOffset(topic string, p, requested, current int32) (int32, int64, error) {
	offs, err := b.store.Offsets(topic, p)
	switch {
	case err != nil:
		return -1, -1, err
	case requested < 0 || requested > current:
		return -1, -1, nil
	case requested == current:
		return current, offs.HighWatermark, nil
	}
	e, end, err := b.store.EpochEndOffset(topic, p, requested)
	if err != nil || e >= 0 {
		return e, end, err
	}
	// Older than every epoch that wrote: the first later epoch's start.
	start := offs.HighWatermark
	err = b.store.Batches(topic, p, 0, offs.HighWatermark, func(raw []byte) error {
		h, err := storage.ParseBatchHeader(raw)
		if err != nil {
			return err
		}
		if h.LeaderEpoch > requested {
			start = max(h.BaseOffset, offs.LogStart)
			return errScanDone
		}
		return nil
	})
	if err != nil && !errors.Is(err, errScanDone) {
		return -1, -1, err
	}
	return requested, start, nil
}
