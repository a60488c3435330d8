package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestSarama produces with sarama's idempotent SyncProducer (acks=all,
// every codec, headers, timestamps) and consumes with its consumer group,
// which commits on close; the committed offsets are checked with kadm.
func TestSarama(t *testing.T) {
	k := startKbox(t)
	needAPIs(t, k.Addr, groupAPIs...)
	const topic, group = "sarama", "sarama-group"
	createTopic(t, k.Addr, topic, 3, nil)
	ctx := testCtx(t, 2*time.Minute)
	ts := time.UnixMilli(1700000000000)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "kbox-e2e-sarama"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond

	codecs := []struct {
		name string
		c    sarama.CompressionCodec
	}{{"none", sarama.CompressionNone}, {"gzip", sarama.CompressionGZIP}, {"snappy", sarama.CompressionSnappy},
		{"lz4", sarama.CompressionLZ4}, {"zstd", sarama.CompressionZSTD}}
	want := 0
	for _, c := range codecs {
		pc := *cfg
		pc.Producer.Compression = c.c
		p, err := sarama.NewSyncProducer([]string{k.Addr}, &pc)
		if err != nil {
			t.Fatalf("sarama producer: %v", err)
		}
		var msgs []*sarama.ProducerMessage
		for i := 0; i < 40; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{
				Topic:     topic,
				Key:       sarama.StringEncoder(fmt.Sprintf("k-%s-%d", c.name, i)),
				Value:     sarama.StringEncoder(fmt.Sprintf("%s value %d", c.name, i)),
				Headers:   []sarama.RecordHeader{{Key: []byte("codec"), Value: []byte(c.name)}},
				Timestamp: ts.Add(time.Duration(want+i) * time.Millisecond),
			})
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("sarama send %s: %v", c.name, err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		want += len(msgs)
	}
	for _, r := range readAll(t, k.Addr, topic) {
		codec := headerMap(r.Headers)["codec"]
		for i, c := range codecs {
			if c.name == codec && r.Attrs.CompressionType() != uint8(i) {
				t.Fatalf("record %d/%d (%s) stored with codec %d", r.Partition, r.Offset, codec, r.Attrs.CompressionType())
			}
		}
	}

	cg, err := sarama.NewConsumerGroup([]string{k.Addr}, group, cfg)
	if err != nil {
		t.Fatalf("sarama consumer group: %v", err)
	}
	h := &saramaHandler{want: want, got: map[string]*sarama.ConsumerMessage{}, done: make(chan struct{})}
	cctx, cancel := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() { // the group session loop, ended by cancel
		for cctx.Err() == nil {
			if err := cg.Consume(cctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()
	select {
	case <-h.done:
	case err := <-consumed:
		t.Fatalf("sarama consume: %v", err)
	case <-ctx.Done():
		t.Fatalf("sarama consumed %d of %d: %v", h.count(), want, ctx.Err())
	}
	cancel()
	if err := <-consumed; err != nil {
		t.Fatalf("sarama consume: %v", err)
	}
	if err := cg.Close(); err != nil { // commits marked offsets, leaves
		t.Fatalf("sarama group close: %v", err)
	}
	for key, m := range h.got {
		if len(m.Headers) != 1 || string(m.Headers[0].Key) != "codec" || string(m.Value) != fmt.Sprintf("%s value %s", m.Headers[0].Value, key[len("k-")+len(m.Headers[0].Value)+1:]) {
			t.Fatalf("message %s: value %q headers %v", key, m.Value, m.Headers)
		}
		if m.Timestamp.Before(ts) || m.Timestamp.After(ts.Add(time.Duration(want)*time.Millisecond)) {
			t.Fatalf("message %s timestamp %v", key, m.Timestamp)
		}
	}

	adm := kadm.NewClient(newClient(t, k.Addr))
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	sum := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != int64(want) {
		t.Errorf("committed offsets sum to %d, want %d", sum, want)
	}
}

// saramaHandler collects messages by key and marks each for commit.
type saramaHandler struct {
	want int
	mu   sync.Mutex
	got  map[string]*sarama.ConsumerMessage
	once sync.Once
	done chan struct{} // closed once want distinct messages arrived
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.got[string(m.Key)] = m
		n := len(h.got)
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if n >= h.want {
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

func (h *saramaHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}
