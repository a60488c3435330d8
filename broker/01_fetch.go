package broker

// Fetch, key 1, versions 4-18.
//
// Behaviour: reads committed batches straight from the store, honouring
// partition and response max bytes (the first batch is always returned
// whole so an oversized batch still makes progress) and long-polling until
// MinBytes are available or MaxWaitMillis passes, woken by the store's
// commit notification rather than by polling. Every node's store holds only
// committed data, so the high watermark is the log end and any node could
// serve a fetch.
//
// Omissions: fetch sessions (KIP-227): the response always carries session
// ID 0, which tells the client no session was created, so it keeps sending
// full requests; an incremental request gets FETCH_SESSION_ID_NOT_FOUND.
// Without transactions the last stable offset is the high watermark and
// read_committed reads the same as read_uncommitted. No preferred read
// replica (KIP-392) yet.
//
// Version notes: v9 adds CurrentLeaderEpoch fencing (KIP-320); v12 is
// flexible; v13 replaces topic names with topic IDs (KIP-516); v15-v18 add
// only follower fields (KIP-903, KIP-853, the follower's high watermark),
// which a broker without follower fetching ignores.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var fetchAPI = api{key: 1, min: 4, max: 18, handle: handleFetch}

func handleFetch(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.FetchRequest)
	if r.Version >= 7 && r.SessionEpoch > 0 {
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	wait := time.Duration(r.MaxWaitMillis) * time.Millisecond
	deadline := time.Now().Add(wait)
	var timer *time.Timer
	for {
		changed := b.store.Changed()
		resp, n := b.fetchOnce(r)
		if int32(n) >= r.MinBytes || n > 0 && r.MinBytes <= 0 || time.Until(deadline) <= 0 || fetchHasError(resp) {
			return resp, nil
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
			defer timer.Stop()
		}
		select {
		case <-changed:
		case <-timer.C:
			resp, _ = b.fetchOnce(r)
			return resp, nil
		case <-ctx.Done():
			return resp, nil
		}
	}
}

func fetchHasError(resp *kmsg.FetchResponse) bool {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return true
			}
		}
	}
	return false
}

// fetchOnce builds a response from the store as it is now and returns the
// number of record bytes in it.
func (b *Broker) fetchOnce(r *kmsg.FetchRequest) (*kmsg.FetchResponse, int) {
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	budget := int(r.MaxBytes)
	if r.Version < 3 || budget <= 0 {
		budget = 1 << 30
	}
	epoch := b.store.Epoch()
	total := 0
	for _, t := range r.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		name := t.Topic
		known := true
		if r.Version >= 13 {
			info, ok := b.store.TopicByID(t.TopicID)
			name, known = info.Name, ok
		} else {
			_, known = b.store.Topic(name)
		}
		for _, p := range t.Partitions {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = p.Partition
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
			rp.PreferredReadReplica = -1
			// Never null: librdkafka rejects a null record set (MessageSetSize
			// -1) as a malformed response; Kafka sends an empty one.
			rp.RecordBatches = []byte{}
			switch {
			case !known && r.Version >= 13:
				rp.ErrorCode = kerr.UnknownTopicID.Code
			case !known:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case r.Version >= 9 && p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch < epoch:
				rp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case r.Version >= 9 && p.CurrentLeaderEpoch > epoch:
				rp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				max := int(p.PartitionMaxBytes)
				if budget-total < max {
					max = budget - total
				}
				if max <= 0 && total > 0 {
					// Out of response budget: report offsets only.
					offs, err := b.store.Offsets(name, p.Partition)
					rp.ErrorCode = errorCode(err)
					rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = offs.HighWatermark, offs.HighWatermark, offs.LogStart
					break
				}
				res, err := b.store.Read(name, p.Partition, p.FetchOffset, max, nil)
				if total > 0 && len(res.Records) > max {
					res.Records = nil // only the response's first batch may exceed the limits
				}
				rp.ErrorCode = errorCode(err)
				if err == nil || err == storage.ErrOffsetOutOfRange {
					rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = res.HighWatermark, res.HighWatermark, res.LogStart
				}
				if res.Records != nil {
					rp.RecordBatches = res.Records
				}
				total += len(res.Records)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, total
}
