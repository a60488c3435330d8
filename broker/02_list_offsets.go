package broker

// ListOffsets, key 2, versions 1-10.
//
// Behaviour: earliest (-2) is the log start offset, latest (-1) the high
// watermark, earliest-local (-4, v8+) the log start offset (kbox has no
// tiered storage) and latest-tiered (-5, v9+) -1 for the same reason. A
// timestamp answers the first record, in offset order and at or after the
// log start, whose timestamp is at or after it, reading inside the first
// batches whose max timestamp qualifies (decompressing them as needed), as
// Kafka does; none answers -1. Max timestamp (-3, v7+, KIP-734) answers
// the first record carrying the largest timestamp still in the log. Record
// timestamps are the batch's append time on LogAppendTime topics. The
// leader epoch answered is that of the batch holding the offset, or the
// current epoch for the high watermark. Only the leader answers;
// CurrentLeaderEpoch is fenced as in Fetch.
//
// Omissions: v0 (OldStyleOffsets) is not served. There is no time index:
// a timestamp lookup reads batch headers from the start of the log.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/records"
	"github.com/kbox-dev/kbox/broker/storage"
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
				b.listOffset(t.Topic, p.Partition, p.Timestamp, epoch, &rp)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// offsetAt is one ListOffsets answer: an offset, its record's timestamp
// (-1 for the special offsets) and the leader epoch that wrote it.
type offsetAt struct {
	offset    int64
	timestamp int64
	epoch     int32
}

var noOffset = offsetAt{offset: -1, timestamp: -1, epoch: -1}

func (b *Broker) listOffset(topic string, p int32, ts int64, current int32, rp *kmsg.ListOffsetsResponseTopicPartition) {
	offs, err := b.store.Offsets(topic, p)
	if err != nil {
		rp.ErrorCode = errorCode(err)
		return
	}
	at := noOffset
	switch ts {
	case -2, -4:
		at, err = b.earliestOffset(topic, p, offs, current)
	case -1:
		at = offsetAt{offset: offs.HighWatermark, timestamp: -1, epoch: current}
	case -3:
		at, err = b.maxTimestampOffset(topic, p, offs)
	case -5:
	default:
		if ts < 0 {
			rp.ErrorCode = kerr.InvalidRequest.Code
			return
		}
		at, err = b.timestampOffset(topic, p, offs, ts)
	}
	if err != nil {
		rp.ErrorCode = errorCode(err)
		return
	}
	rp.Offset, rp.Timestamp, rp.LeaderEpoch = at.offset, at.timestamp, at.epoch
}

// earliestOffset answers the log start offset with the epoch of the batch
// holding it, or the current epoch when the log is empty.
func (b *Broker) earliestOffset(topic string, p int32, offs storage.PartitionOffsets, current int32) (offsetAt, error) {
	at := offsetAt{offset: offs.LogStart, timestamp: -1, epoch: current}
	if offs.LogStart >= offs.HighWatermark {
		return at, nil
	}
	rr, err := b.store.Read(topic, p, offs.LogStart, 1, nil)
	if err != nil {
		return noOffset, err
	}
	if h, err := storage.ParseBatchHeader(firstBatch(rr.Records)); err == nil {
		at.epoch = h.LeaderEpoch
	}
	return at, nil
}

// firstBatch cuts the first batch off concatenated batches.
func firstBatch(b []byte) []byte {
	if len(b) < storage.BatchHeaderLen {
		return b
	}
	n := int(int32(binary.BigEndian.Uint32(b[8:]))) + 12
	if n < storage.BatchHeaderLen || n > len(b) {
		return b
	}
	return b[:n]
}

// timestampOffset finds the first record at or after the log start whose
// timestamp is at least ts.
func (b *Broker) timestampOffset(topic string, p int32, offs storage.PartitionOffsets, ts int64) (offsetAt, error) {
	found := noOffset
	err := b.store.Batches(topic, p, 0, offs.HighWatermark, func(raw []byte) error {
		h, err := storage.ParseBatchHeader(raw)
		if err != nil {
			return err
		}
		if h.MaxTimestamp < ts || h.LastOffset() < offs.LogStart {
			return nil
		}
		recs, err := records.DecodeRecords(raw)
		if err != nil {
			return fmt.Errorf("stored batch at %d: %w", h.BaseOffset, err)
		}
		for _, r := range recs {
			if r.Timestamp >= ts && r.Offset >= offs.LogStart {
				found = offsetAt{offset: r.Offset, timestamp: r.Timestamp, epoch: h.LeaderEpoch}
				return errScanDone
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errScanDone) {
		return noOffset, err
	}
	return found, nil
}

// maxTimestampOffset finds the first record carrying the largest
// timestamp in the log. The partition state remembers the batch that
// holds it; when that batch is gone or changed (records deleted below it,
// compaction) the log is scanned.
func (b *Broker) maxTimestampOffset(topic string, p int32, offs storage.PartitionOffsets) (offsetAt, error) {
	if offs.MaxTimestamp < 0 || offs.LogStart >= offs.HighWatermark {
		return noOffset, nil
	}
	if offs.MaxTsOffset >= offs.LogStart {
		var at offsetAt
		ok := false
		err := b.store.Batches(topic, p, offs.MaxTsOffset, offs.MaxTsOffset+1, func(raw []byte) error {
			var err error
			at, ok, err = recordWithTimestamp(raw, offs.MaxTimestamp, offs.LogStart)
			return err
		})
		if err != nil || ok {
			return at, err
		}
	}
	return b.scanMaxTimestamp(topic, p, offs)
}

// scanMaxTimestamp reads every batch to find the largest timestamp of a
// record at or after the log start, and the first record carrying it.
func (b *Broker) scanMaxTimestamp(topic string, p int32, offs storage.PartitionOffsets) (offsetAt, error) {
	best := noOffset
	err := b.store.Batches(topic, p, 0, offs.HighWatermark, func(raw []byte) error {
		h, err := storage.ParseBatchHeader(raw)
		if err != nil {
			return err
		}
		if h.LastOffset() < offs.LogStart || h.MaxTimestamp <= best.timestamp {
			return nil
		}
		recs, err := records.DecodeRecords(raw)
		if err != nil {
			return fmt.Errorf("stored batch at %d: %w", h.BaseOffset, err)
		}
		for _, r := range recs {
			if r.Offset >= offs.LogStart && r.Timestamp > best.timestamp {
				best = offsetAt{offset: r.Offset, timestamp: r.Timestamp, epoch: h.LeaderEpoch}
			}
		}
		return nil
	})
	return best, err
}

// recordWithTimestamp finds the first record of a batch at or after
// logStart whose timestamp is ts.
func recordWithTimestamp(raw []byte, ts, logStart int64) (offsetAt, bool, error) {
	h, err := storage.ParseBatchHeader(raw)
	if err != nil || h.MaxTimestamp != ts {
		return noOffset, false, err
	}
	recs, err := records.DecodeRecords(raw)
	if err != nil {
		return noOffset, false, fmt.Errorf("stored batch at %d: %w", h.BaseOffset, err)
	}
	for _, r := range recs {
		if r.Timestamp == ts && r.Offset >= logStart {
			return offsetAt{offset: r.Offset, timestamp: r.Timestamp, epoch: h.LeaderEpoch}, true, nil
		}
	}
	return noOffset, false, nil
}
