package broker

// DeleteRecords, key 21, versions 0-2.
//
// Behaviour: moves partitions' log start offsets forward through the
// replicated log, all partitions of a request in one command. An offset of
// -1 means the high watermark; one below -1 or past the high watermark is
// OFFSET_OUT_OF_RANGE; one at or below the log start changes nothing. The
// answer's low watermark is the log start offset afterwards, or -1 with an
// error, as in Kafka. A topic whose
// cleanup.policy does not include delete answers POLICY_VIOLATION, as
// Kafka does. Only the leader deletes: other nodes answer
// NOT_LEADER_OR_FOLLOWER.
//
// Version notes: v1 is v0 with throttling; v2 is flexible.

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var deleteRecordsAPI = api{key: 21, min: 0, max: 2, handle: handleDeleteRecords}

func handleDeleteRecords(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	leader := b.isLeader()
	var (
		cmd   storage.DeleteRecords
		slots []*kmsg.DeleteRecordsResponseTopicPartition
	)
	for _, t := range r.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		info, known := b.store.Topic(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.LowWatermark = p.Partition, -1
			switch {
			case !known || p.Partition < 0 || p.Partition >= info.Partitions:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !leader:
				rp.ErrorCode = kerr.NotLeaderForPartition.Code
			case !deletePolicy(info.Config("cleanup.policy")):
				rp.ErrorCode = kerr.PolicyViolation.Code
			case p.Offset < -1:
				rp.ErrorCode = kerr.OffsetOutOfRange.Code
			default:
				cmd.Parts = append(cmd.Parts, storage.DeleteRecordsPart{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	// Slots are taken once the slices stop growing.
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			rp := &resp.Topics[ti].Partitions[pi]
			if rp.ErrorCode == 0 {
				slots = append(slots, rp)
			}
		}
	}
	if len(cmd.Parts) == 0 {
		return resp, nil
	}
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	res, err := b.propose(ctx, cmd)
	results, _ := res.([]storage.DeleteRecordsResult)
	if err == nil && len(results) != len(slots) {
		return nil, fmt.Errorf("delete records returned %d results for %d partitions", len(results), len(slots))
	}
	for i, rp := range slots {
		if err != nil {
			rp.ErrorCode = errorCode(err)
			continue
		}
		if rp.ErrorCode = errorCode(results[i].Err); rp.ErrorCode == 0 {
			rp.LowWatermark = results[i].LowWatermark
		}
	}
	return resp, nil
}

// deletePolicy reports whether a cleanup.policy value lets records be
// deleted (it includes "delete").
func deletePolicy(policy string) bool {
	for _, p := range strings.Split(policy, ",") {
		if strings.TrimSpace(p) == "delete" {
			return true
		}
	}
	return false
}
