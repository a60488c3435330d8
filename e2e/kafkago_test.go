package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestKafkaGo produces with segmentio/kafka-go's Writer (acks=all, every
// codec, keys, headers, times) and consumes with its group Reader, which
// speaks old protocol versions (JoinGroup v2, SyncGroup/Heartbeat/
// LeaveGroup v0, OffsetCommit v2, OffsetFetch v1). A second reader of the
// same group resumes from the committed offsets.
func TestKafkaGo(t *testing.T) {
	k := startKbox(t)
	needAPIs(t, k.Addr, groupAPIs...)
	const topic, group = "kafkago", "kafkago-group"
	createTopic(t, k.Addr, topic, 3, nil)
	ctx := testCtx(t, 2*time.Minute)
	ts := time.UnixMilli(1700000000000)

	codecs := []struct {
		name string
		c    kafka.Compression
		attr uint8
	}{{"none", 0, 0}, {"gzip", kafka.Gzip, 1}, {"snappy", kafka.Snappy, 2}, {"lz4", kafka.Lz4, 3}, {"zstd", kafka.Zstd, 4}}
	want := 0
	for _, c := range codecs {
		w := &kafka.Writer{Addr: kafka.TCP(k.Addr), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
			Compression: c.c, BatchTimeout: 10 * time.Millisecond, BatchSize: 50}
		var msgs []kafka.Message
		for i := 0; i < 40; i++ {
			msgs = append(msgs, kafka.Message{
				Key:     []byte(fmt.Sprintf("k-%s-%d", c.name, i)),
				Value:   []byte(fmt.Sprintf("%s value %d", c.name, i)),
				Headers: []kafka.Header{{Key: "codec", Value: []byte(c.name)}},
				Time:    ts.Add(time.Duration(want+i) * time.Millisecond),
			})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("kafka-go write %s: %v", c.name, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		want += len(msgs)
	}
	for _, r := range readAll(t, k.Addr, topic) {
		codec := headerMap(r.Headers)["codec"]
		for _, c := range codecs {
			if c.name == codec && r.Attrs.CompressionType() != c.attr {
				t.Fatalf("record %d/%d (%s) stored with codec %d", r.Partition, r.Offset, codec, r.Attrs.CompressionType())
			}
		}
	}

	got := readGroupKafkaGo(ctx, t, k.Addr, group, topic, want)
	for key, m := range got {
		codec := string(m.Headers[0].Value)
		if len(m.Headers) != 1 || string(m.Value) != fmt.Sprintf("%s value %s", codec, key[len("k-"+codec+"-"):]) {
			t.Fatalf("message %s: value %q headers %v", key, m.Value, m.Headers)
		}
		if m.Time.Before(ts) || m.Time.After(ts.Add(time.Duration(want)*time.Millisecond)) {
			t.Fatalf("message %s time %v", key, m.Time)
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

	w := &kafka.Writer{Addr: kafka.TCP(k.Addr), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
	var more []kafka.Message
	for i := 0; i < 15; i++ {
		more = append(more, kafka.Message{Key: []byte(fmt.Sprintf("later-%d", i)), Value: []byte("later")})
	}
	if err := w.WriteMessages(ctx, more...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for key := range readGroupKafkaGo(ctx, t, k.Addr, group, topic, len(more)) {
		if string(key[:6]) != "later-" {
			t.Errorf("resumed reader got %s, committed before it joined", key)
		}
	}
}

// readGroupKafkaGo reads n distinct messages (by key) with a kafka-go group
// reader, committing each synchronously, then closes it (LeaveGroup).
func readGroupKafkaGo(ctx context.Context, t *testing.T, addr, group, topic string, n int) map[string]kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{addr}, GroupID: group, Topic: topic,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
		StartOffset: kafka.FirstOffset, CommitInterval: 0,
		HeartbeatInterval: 500 * time.Millisecond, SessionTimeout: 10 * time.Second,
		RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
	})
	defer func() {
		if err := r.Close(); err != nil {
			t.Errorf("kafka-go reader close: %v", err)
		}
	}()
	got := map[string]kafka.Message{}
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go fetch after %d of %d messages: %v", len(got), n, err)
		}
		if _, dup := got[string(m.Key)]; dup {
			t.Errorf("message %s read twice", m.Key)
		}
		got[string(m.Key)] = m
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("kafka-go commit: %v", err)
		}
	}
	return got
}
