package broker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/records"
)

// batch encodes an uncompressed v2 batch of values, optionally idempotent.
func batch(t *testing.T, pid int64, seq int32, values ...string) []byte {
	t.Helper()
	now := time.Now().UnixMilli()
	b := records.Batch{FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	if pid >= 0 {
		b.ProducerID, b.ProducerEpoch, b.BaseSequence = pid, 0, seq
	}
	for i, v := range values {
		b.Records = append(b.Records, records.Record{OffsetDelta: int32(i), Value: []byte(v)})
	}
	out, err := records.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func produceReq(topic string, id [16]byte, part int32, acks int16, recs []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = part, recs
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func producePart(t *testing.T, r kmsg.Response) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp := r.(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// topicID creates topic (one partition) and returns its ID.
func topicID(t *testing.T, rc *rawConn, topic string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp := rc.do(12, req).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("metadata for %s: %+v", topic, resp.Topics)
	}
	return resp.Topics[0].TopicID
}

func TestProduceErrorsAndVersions(t *testing.T) {
	rc := dialRaw(t, startGroupNode(t))
	id := topicID(t, rc, "p")
	good := batch(t, -1, -1, "a", "b")
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-1] ^= 0xff
	huge := batch(t, -1, -1, string(make([]byte, 1<<20+100)))
	tests := []struct {
		name    string
		version int16
		req     *kmsg.ProduceRequest
		code    int16
		offset  int64
	}{
		{"by name", 12, produceReq("p", [16]byte{}, 0, -1, good), 0, 0},
		{"by topic ID (v13)", 13, produceReq("", id, 0, -1, good), 0, 2},
		{"unknown topic ID", 13, produceReq("", [16]byte{9}, 0, -1, good), kerr.UnknownTopicID.Code, -1},
		{"unknown topic", 12, produceReq("nope", [16]byte{}, 0, -1, good), kerr.UnknownTopicOrPartition.Code, -1},
		{"unknown partition", 12, produceReq("p", [16]byte{}, 7, -1, good), kerr.UnknownTopicOrPartition.Code, -1},
		{"v2 is refused per partition", 2, produceReq("p", [16]byte{}, 0, -1, good), kerr.UnsupportedVersion.Code, -1},
		{"bad CRC", 12, produceReq("p", [16]byte{}, 0, -1, corrupt), kerr.CorruptMessage.Code, -1},
		{"truncated batch", 12, produceReq("p", [16]byte{}, 0, -1, good[:40]), kerr.CorruptMessage.Code, -1},
		{"over max.message.bytes", 12, produceReq("p", [16]byte{}, 0, -1, huge), kerr.MessageTooLarge.Code, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := producePart(t, rc.do(tt.version, tt.req))
			if p.ErrorCode != tt.code || p.BaseOffset != tt.offset {
				t.Fatalf("code %v offset %d, want %v offset %d (message %v)",
					kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, kerr.ErrorForCode(tt.code), tt.offset, p.ErrorMessage)
			}
		})
	}
	// The connection survives every refused request above.
	if p := producePart(t, rc.do(12, produceReq("p", [16]byte{}, 0, 1, good))); p.ErrorCode != 0 || p.BaseOffset != 4 {
		t.Fatalf("after errors: %+v", p)
	}
}

func TestProduceIdempotentDuplicateAndGap(t *testing.T) {
	rc := dialRaw(t, startGroupNode(t))
	topicID(t, rc, "idem")
	pid := rc.do(4, kmsg.NewPtrInitProducerIDRequest()).(*kmsg.InitProducerIDResponse)
	if pid.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v", kerr.ErrorForCode(pid.ErrorCode))
	}
	first := batch(t, pid.ProducerID, 0, "a", "b", "c")
	steps := []struct {
		name   string
		recs   []byte
		code   int16
		offset int64
	}{
		{"first", first, 0, 0},
		{"retry is answered with the original offset", first, 0, 0},
		{"next", batch(t, pid.ProducerID, 3, "d"), 0, 3},
		{"gap", batch(t, pid.ProducerID, 9, "x"), kerr.OutOfOrderSequenceNumber.Code, -1},
		{"in order after the gap", batch(t, pid.ProducerID, 4, "e"), 0, 4},
	}
	for _, s := range steps {
		p := producePart(t, rc.do(12, produceReq("idem", [16]byte{}, 0, -1, s.recs)))
		if p.ErrorCode != s.code || p.BaseOffset != s.offset {
			t.Fatalf("%s: code %v offset %d, want %v offset %d", s.name, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, kerr.ErrorForCode(s.code), s.offset)
		}
	}
}

func TestProduceTransactionalRefused(t *testing.T) {
	rc := dialRaw(t, startGroupNode(t))
	topicID(t, rc, "tx")
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = kmsg.StringPtr("tx-1")
	if resp := rc.do(4, req).(*kmsg.InitProducerIDResponse); resp.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("InitProducerID with a transactional ID: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	preq := produceReq("tx", [16]byte{}, 0, -1, batch(t, -1, -1, "a"))
	preq.TransactionID = kmsg.StringPtr("tx-1")
	if p := producePart(t, rc.do(12, preq)); p.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional produce: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

func fetchReq(topic string, id [16]byte, offset int64, waitMs, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, waitMs, minBytes, 1<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = offset, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func fetchPart(t *testing.T, r kmsg.Response) kmsg.FetchResponseTopicPartition {
	t.Helper()
	resp := r.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

func TestFetchReadsErrorsAndLongPoll(t *testing.T) {
	addr := startGroupNode(t)
	rc := dialRaw(t, addr)
	id := topicID(t, rc, "f")
	if p := producePart(t, rc.do(12, produceReq("f", [16]byte{}, 0, -1, batch(t, -1, -1, "a", "b", "c")))); p.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(p.ErrorCode))
	}
	for _, v := range []int16{4, 11, 12, 16, 18} {
		req := fetchReq("f", id, 1, 0, 0) // offset 1 lies inside the batch
		p := fetchPart(t, rc.do(v, req))
		got, err := records.Decode(p.RecordBatches)
		if p.ErrorCode != 0 || p.HighWatermark != 3 || err != nil || len(got.Records) != 3 {
			t.Fatalf("v%d: code %v hwm %d, %d records (%v)", v, kerr.ErrorForCode(p.ErrorCode), p.HighWatermark, len(got.Records), err)
		}
	}
	// At the high watermark: no records, but never a null record set
	// (librdkafka rejects that).
	if p := fetchPart(t, rc.do(11, fetchReq("f", id, 3, 0, 0))); p.ErrorCode != 0 || p.RecordBatches == nil || len(p.RecordBatches) != 0 {
		t.Fatalf("fetch at the end: code %v, records %v", kerr.ErrorForCode(p.ErrorCode), p.RecordBatches)
	}
	if p := fetchPart(t, rc.do(12, fetchReq("f", id, 4, 0, 0))); p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 3 {
		t.Fatalf("past the end: %v hwm %d", kerr.ErrorForCode(p.ErrorCode), p.HighWatermark)
	}
	if p := fetchPart(t, rc.do(13, fetchReq("", [16]byte{7}, 0, 0, 0))); p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown topic ID: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	inc := fetchReq("f", id, 0, 0, 0)
	inc.SessionID, inc.SessionEpoch = 5, 1
	if resp := rc.do(12, inc).(*kmsg.FetchResponse); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("incremental fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}

	// Long poll: a fetch at the end waits, and returns as soon as another
	// connection appends to that partition.
	poller := dialRaw(t, addr)
	poller.do(18, kmsg.NewPtrApiVersionsRequest()) // connected before the produce
	got := make(chan kmsg.FetchResponseTopicPartition, 1)
	go func() {
		resp, err := poller.try(12, fetchReq("f", id, 3, 20000, 1))
		if err != nil {
			got <- kmsg.FetchResponseTopicPartition{ErrorCode: -1}
			return
		}
		got <- resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	if p := producePart(t, rc.do(12, produceReq("f", [16]byte{}, 0, -1, batch(t, -1, -1, "late")))); p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Fatalf("late produce: %v at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	select {
	case p := <-got:
		if p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
			t.Fatalf("long poll answered code %d with %d bytes", p.ErrorCode, len(p.RecordBatches))
		}
		if waited := time.Since(start); waited > 10*time.Second {
			t.Fatalf("long poll returned after %v, not when the record arrived", waited)
		}
	case <-ctx.Done():
		t.Fatal("long poll did not return after the produce")
	}
}

// send writes req at version without waiting for a response (acks=0).
func (rc *rawConn) send(version int16, req kmsg.Request) {
	rc.t.Helper()
	req.SetVersion(version)
	rc.corr++
	if _, err := rc.c.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("test")).AppendRequest(nil, req, rc.corr)); err != nil {
		rc.t.Fatal(err)
	}
}

func TestProduceAcksZero(t *testing.T) {
	addr := startGroupNode(t)
	rc := dialRaw(t, addr)
	topicID(t, rc, "z")
	// Accepted: no response at all; the next request gets the next answer.
	rc.send(12, produceReq("z", [16]byte{}, 0, 0, batch(t, -1, -1, "a")))
	if resp := rc.do(3, kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions after an acks=0 produce: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if p := fetchPart(t, rc.do(12, fetchReq("z", [16]byte{}, 0, 0, 0))); p.HighWatermark != 1 {
		t.Fatalf("acks=0 record not appended: high watermark %d", p.HighWatermark)
	}
	// Refused: the broker closes the connection, the only answer an acks=0
	// client can see.
	rc.send(12, produceReq("nope", [16]byte{}, 0, 0, batch(t, -1, -1, "a")))
	if _, err := rc.try(3, kmsg.NewPtrApiVersionsRequest()); err == nil {
		t.Fatal("connection still open after a refused acks=0 produce")
	}
}

// A connection reads each produce frame into the memory of the one before
// (api.doneWithFrame). Pipelined produce requests of alternating sizes,
// large ones (Raft payload entries, stored by reference) and small ones
// (copied), must all be stored exactly as sent.
func TestPipelinedProducesReuseFramesSafely(t *testing.T) {
	addr := startGroupNode(t)
	rc := dialRaw(t, addr)
	topicID(t, rc, "pipe")
	var want []string
	var reqs []*kmsg.ProduceRequest
	for i := range 12 {
		size := 10
		if i%2 == 0 {
			size = 40 << 10 // past the Raft log's out-of-line threshold
		}
		var vals []string
		for j := range 3 {
			vals = append(vals, strings.Repeat(string(rune('a'+(i+j)%26)), size)+fmt.Sprint(i, j))
		}
		want = append(want, vals...)
		reqs = append(reqs, produceReq("pipe", [16]byte{}, 0, -1, batch(t, -1, -1, vals...)))
	}
	first := rc.corr + 1
	for _, r := range reqs {
		rc.send(12, r)
	}
	for i, r := range reqs {
		resp, err := rc.recv(12, r, first+int32(i))
		if err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if p := producePart(t, resp); p.ErrorCode != 0 || p.BaseOffset != int64(3*i) {
			t.Fatalf("produce %d: base offset %d, error %v", i, p.BaseOffset, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	var got []string
	for off := int64(0); off < int64(len(want)); {
		p := fetchPart(t, rc.do(12, fetchReq("pipe", [16]byte{}, off, 0, 0)))
		rs := decodeBatches(t, p.RecordBatches)
		if len(rs) == 0 {
			t.Fatalf("fetch at %d returned nothing (high watermark %d)", off, p.HighWatermark)
		}
		for _, r := range rs {
			got = append(got, string(r.Value))
		}
		off += int64(len(rs))
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d: %d bytes starting %q, want %d starting %q", i, len(got[i]), got[i][:8], len(want[i]), want[i][:8])
		}
	}
}

// A produce request for several partitions with ~1 MB each goes into the
// log as several Appends (appendChunks); every partition still gets its
// batches, in order, and the response names each one's base offset.
func TestProduceManyPartitionsInChunks(t *testing.T) {
	addr := startGroupNode(t)
	rc := dialRaw(t, addr)
	topicID(t, rc, "wide")
	big := strings.Repeat("x", 700<<10)
	req := produceReq("wide", [16]byte{}, 0, -1, batch(t, -1, -1, big+"p0"))
	for p, recs := range map[int32][]byte{
		1: batch(t, -1, -1, big+"p1"),
		2: append(batch(t, -1, -1, "small", "ones"), batch(t, -1, -1, big+"p2")...),
	} {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, recs
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	}
	resp := rc.do(12, req).(*kmsg.ProduceResponse)
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Fatalf("partition %d: base offset %d, error %v", p.Partition, p.BaseOffset, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	want := map[int32][]string{0: {big + "p0"}, 1: {big + "p1"}, 2: {"small", "ones", big + "p2"}}
	for p, vals := range want {
		f := kmsg.NewPtrFetchRequest()
		f.MaxWaitMillis, f.MaxBytes = 0, 10<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "wide"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.PartitionMaxBytes = p, 10<<20
		ft.Partitions = append(ft.Partitions, fp)
		f.Topics = append(f.Topics, ft)
		got := fetchPart(t, rc.do(12, f))
		var vs []string
		for _, r := range decodeBatches(t, got.RecordBatches) {
			vs = append(vs, string(r.Value))
		}
		if !reflect.DeepEqual(vs, vals) {
			t.Errorf("partition %d: %d records, want %d", p, len(vs), len(vals))
		}
	}
}

// decodeBatches decodes the records of a fetch response's concatenated
// batches.
func decodeBatches(t *testing.T, raw []byte) []records.Record {
	t.Helper()
	var out []records.Record
	for len(raw) >= 12 {
		n := 12 + int(binary.BigEndian.Uint32(raw[8:]))
		rs, err := records.DecodeRecords(raw[:n])
		if err != nil {
			t.Fatal(err)
		}
		out, raw = append(out, rs...), raw[n:]
	}
	return out
}
