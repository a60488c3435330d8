package broker

// OffsetCommit, key 8, versions 2-9.
//
// Behaviour: checks the member and generation against the group (see
// groups.validateCommit: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
// REBALANCE_IN_PROGRESS while the group waits for its assignment,
// FENCED_INSTANCE_ID), then stores all accepted offsets of the request
// as one CommitOffsets command through the replicated log; the answer
// comes once it is committed and applied. Commits with generation -1 to a
// group without members ("simple" commits by admin tools or consumers
// that assign partitions themselves) are accepted as Kafka accepts them.
// A valid commit also extends the member's session. Partitions of unknown
// topics get UNKNOWN_TOPIC_OR_PARTITION; metadata longer than
// offset.metadata.max.bytes (4096) gets OFFSET_METADATA_TOO_LARGE.
//
// Omissions: the retention time of v2-v4 is ignored (offsets are kept
// until the group or topic is deleted); v10 (topic IDs, KIP-848).
//
// Version notes: v0-v1 were removed in Kafka 4.0 and are not served. v6
// adds the leader epoch, v7 group.instance.id, v8 is flexible, v9 answers
// GROUP_ID_NOT_FOUND for an unknown group where older versions get
// ILLEGAL_GENERATION.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var offsetCommitAPI = api{key: 8, min: 2, max: 9, handle: handleOffsetCommit}

func handleOffsetCommit(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.OffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	instanceID := r.InstanceID
	if r.Version < 7 {
		instanceID = nil
	}
	code := b.groups.validateCommit(ctx, r.Group, r.Version, r.Generation, r.MemberID, instanceID)
	cmd := storage.CommitOffsets{Group: r.Group, Now: time.Now().UnixMilli()}
	var slots [][2]int // (topic, partition) indexes of the offsets in cmd
	for ti, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		info, known := b.store.Topic(t.Topic)
		for pi, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case code != 0:
				rp.ErrorCode = code
			case p.Metadata != nil && len(*p.Metadata) > b.groups.cfg.maxMetadata:
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			case !known || p.Partition < 0 || p.Partition >= info.Partitions:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				o := storage.OffsetCommit{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch}
				if p.Metadata != nil {
					o.Metadata = *p.Metadata
				}
				cmd.Offsets = append(cmd.Offsets, o)
				slots = append(slots, [2]int{ti, pi})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(cmd.Offsets) == 0 {
		return resp, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	res, err := b.propose(pctx, cmd)
	cancel()
	errs, _ := res.([]error)
	for i, s := range slots {
		rp := &resp.Topics[s[0]].Partitions[s[1]]
		switch {
		case err != nil:
			rp.ErrorCode = coordinatorCode(err)
		case i < len(errs):
			rp.ErrorCode = errorCode(errs[i])
		}
	}
	return resp, nil
}
