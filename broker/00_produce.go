package broker

// Produce, key 0, versions 3-13 (advertised from 0).
//
// Behaviour: every batch is framing- and CRC-checked (CORRUPT_MESSAGE),
// then the request's batches go through the replicated log as Append
// commands of up to about 1 MiB each (see appendChunkBytes), in request
// order. acks=0 gets no response (and a failure closes the
// connection, as in Kafka); acks=1 and acks=all both answer
// once the append is committed by a Raft quorum and applied, so acks=1 is
// as durable as acks=all. Batches are stored as sent, any codec.
//
// Omissions: transactions (a transactional batch is refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, see InitProducerID).
//
// Version notes: v0-v2 carry message-format v0/v1 batches, which kbox does
// not store. Kafka 4 removed them but still advertises v0, because
// librdkafka stops compressing with gzip/snappy when it sees a Produce range
// starting at v3 (KAFKA-18659); kbox does the same and refuses v0-v2 per
// partition with UNSUPPORTED_VERSION. v8 adds per-record errors and
// messages (KIP-467). v13 names topics by ID (KIP-516); an unknown ID is
// UNKNOWN_TOPIC_ID.

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

// produceMinVersion is the first Produce version served; lower ones are
// advertised but refused (see the file header).
const produceMinVersion = 3

// Produce is done with its frame when it returns: the append command holds
// copies of the batches, and the deferred answer only counts and fills in.
// A connection's produce frames (up to MiBs each, the bulk of what a
// broker allocates) therefore reuse one buffer.
var produceAPI = api{key: 0, min: produceMinVersion, max: 13, handle: handleProduce, doneWithFrame: true}

// produceSlot locates the response partition of one appended batch by
// index, since the response slices still grow while batches are queued.
type produceSlot struct{ topic, part int }

func handleProduce(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	var (
		cmd   = storage.Append{Now: time.Now().UnixMilli()}
		slots []produceSlot
	)
	leader := b.isLeader()
	for _, t := range r.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		var (
			info  storage.TopicInfo
			known bool
		)
		if r.Version >= 13 {
			info, known = b.store.TopicByID(t.TopicID)
		} else {
			info, known = b.store.Topic(t.Topic)
		}
		unknown := kerr.UnknownTopicOrPartition.Code
		if r.Version >= 13 && !known {
			unknown = kerr.UnknownTopicID.Code
		}
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = -1, -1, -1
			code, msg := int16(0), ""
			switch {
			case r.Version < produceMinVersion:
				code, msg = kerr.UnsupportedVersion.Code, fmt.Sprintf("produce v%d (message format v0/v1) is not supported; use v3+", r.Version)
			case r.TransactionID != nil:
				code, msg = kerr.TransactionalIDAuthorizationFailed.Code, "kbox does not support transactions"
			case !known || p.Partition < 0 || p.Partition >= info.Partitions:
				code = unknown
			case !leader:
				code = kerr.NotLeaderForPartition.Code
			}
			var batches [][]byte
			if code == 0 {
				var err error
				if batches, err = splitBatches(p.Records); err != nil {
					code, msg = errorCode(err), err.Error()
				}
			}
			if code != 0 {
				rp.ErrorCode = code
				if msg != "" {
					rp.ErrorMessage = &msg
				}
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			slot := produceSlot{topic: len(resp.Topics), part: len(rt.Partitions)}
			rt.Partitions = append(rt.Partitions, rp)
			for _, batch := range batches {
				cmd.Parts = append(cmd.Parts, storage.AppendPart{Topic: info.Name, Partition: p.Partition, Batch: batch})
				slots = append(slots, slot)
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(cmd.Parts) == 0 {
		return produceAnswer(r, resp)
	}
	timeout := time.Duration(r.TimeoutMillis) * time.Millisecond
	if timeout <= 0 || r.Acks == 0 {
		timeout = 30 * time.Second
	}
	records := make([]int32, len(cmd.Parts))
	for i, p := range cmd.Parts {
		records[i] = int32(binary.BigEndian.Uint32(p.Batch[57:]))
	}
	chunks := appendChunks(cmd.Parts)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	sub, ok := b.repl.(Submitter)
	if !ok {
		defer cancel()
		for _, c := range chunks {
			res, err := b.propose(pctx, storage.Append{Now: cmd.Now, Parts: cmd.Parts[c.from:c.to]})
			b.fillProduce(resp, records[c.from:c.to], slots[c.from:c.to], res, err)
		}
		return produceAnswer(r, resp)
	}
	// Queue the appends now, in request order, and let the connection read
	// the next request while Raft commits this one.
	waits := make([]func() (any, error), len(chunks))
	for i, c := range chunks {
		waits[i] = sub.Submit(pctx, storage.Append{Now: cmd.Now, Parts: cmd.Parts[c.from:c.to]})
	}
	cancel()
	return &deferred{wait: func() (kmsg.Response, error) {
		for i, c := range chunks {
			res, err := waits[i]()
			b.fillProduce(resp, records[c.from:c.to], slots[c.from:c.to], res, err)
		}
		return produceAnswer(r, resp)
	}}, nil
}

// appendChunk is a run of a produce request's batches that goes into the
// replicated log as one Append.
type appendChunk struct{ from, to int }

// appendChunkBytes is how many batch bytes one Append carries at most
// (one larger batch goes alone). A request for many partitions (kgo sends
// up to 1 MB per partition in one request, so 5+ MiB for six) becomes
// several log entries of about one batch each: Kafka does not make a
// produce request atomic across partitions either, and each entry's
// payload is then written with about 1 MiB pwrites, where one 5 MiB write
// of the whole request cost five times as much per byte in the kernel
// (perf on the 6-partition 1 KiB bench).
const appendChunkBytes = 1 << 20

func appendChunks(parts []storage.AppendPart) []appendChunk {
	var out []appendChunk
	size := 0
	for i, p := range parts {
		if i == 0 || size+len(p.Batch) > appendChunkBytes {
			out = append(out, appendChunk{from: i, to: i})
			size = 0
		}
		out[len(out)-1].to = i + 1
		size += len(p.Batch)
	}
	return out
}

// produceAnswer is what the connection sends back: the response, or for
// acks=0 nothing at all. An acks=0 request that failed anywhere closes the
// connection instead, as Kafka does, since that is the only way such a
// client can learn of it (it then refreshes metadata and reconnects).
func produceAnswer(r *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) (kmsg.Response, error) {
	if r.Acks != 0 {
		return resp, nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return nil, fmt.Errorf("acks=0 produce to %s/%d failed: %s", t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
		}
	}
	return nil, nil
}

// fillProduce copies Append results into response partitions. A partition
// that sent several batches reports the first batch's base offset and the
// first error.
//
// records holds each batch's record count; the batches themselves alias
// the request frame, which is reused once the handler has returned.
func (b *Broker) fillProduce(resp *kmsg.ProduceResponse, records []int32, slots []produceSlot, res any, err error) {
	var appended int64
	ar, _ := res.(storage.AppendResult)
	if err == nil && len(ar.Parts) != len(slots) {
		err = fmt.Errorf("append returned %d results for %d batches", len(ar.Parts), len(slots))
	}
	for i, s := range slots {
		rp := &resp.Topics[s.topic].Partitions[s.part]
		switch {
		case err != nil:
			rp.ErrorCode, rp.ErrorMessage = errorCode(err), errorMessage(err)
		case rp.ErrorCode != 0: // an earlier batch of this partition failed
		case ar.Parts[i].Err != nil:
			rp.ErrorCode, rp.ErrorMessage = errorCode(ar.Parts[i].Err), errorMessage(ar.Parts[i].Err)
		case rp.BaseOffset < 0:
			pr := ar.Parts[i]
			rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = pr.BaseOffset, pr.LogAppendTime, pr.LogStartOffset
		}
		if err == nil && ar.Parts[i].Err == nil && !ar.Parts[i].Duplicate {
			appended += int64(records[i])
		}
	}
	if m := b.cfg.Metrics; m != nil && appended > 0 {
		m.records.Add(float64(appended))
	}
}

// splitBatches cuts a produce request's record set into v2 batches and
// checks each one's framing and CRC.
func splitBatches(records []byte) ([][]byte, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: empty record set", storage.ErrCorruptBatch)
	}
	var out [][]byte
	for len(records) > 0 {
		if len(records) < storage.BatchHeaderLen {
			return nil, fmt.Errorf("%w: %d trailing bytes", storage.ErrCorruptBatch, len(records))
		}
		n := int64(int32(binary.BigEndian.Uint32(records[8:]))) + 12
		if n < storage.BatchHeaderLen || n > int64(len(records)) {
			return nil, fmt.Errorf("%w: batch length %d with %d bytes left", storage.ErrCorruptBatch, n-12, len(records))
		}
		batch := records[:n:n]
		if _, err := storage.ParseBatchHeader(batch); err != nil {
			return nil, err
		}
		if !storage.CheckBatchCRC(batch) {
			return nil, fmt.Errorf("%w: CRC mismatch", storage.ErrCorruptBatch)
		}
		out = append(out, batch)
		records = records[n:]
	}
	return out, nil
}
