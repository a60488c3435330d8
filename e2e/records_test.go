package e2e

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceSync produces rs with a default (idempotent, acks=all) franz-go
// producer and fails t on the first error.
func produceSync(t testing.TB, addr string, rs []*kgo.Record, opts ...kgo.Opt) {
	t.Helper()
	cl := newClient(t, addr, opts...)
	ctx := testCtx(t, 60*time.Second)
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records: %v", len(rs), err)
	}
}

// numbered makes n records for topic with key k-i, value prefix-i and two
// headers.
func numbered(topic, prefix string, from, n int) []*kgo.Record {
	rs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		rs = append(rs, &kgo.Record{
			Topic: topic,
			Key:   []byte(fmt.Sprintf("k-%d", i)),
			Value: []byte(fmt.Sprintf("%s-%d", prefix, i)),
			Headers: []kgo.RecordHeader{
				{Key: "seq", Value: []byte(fmt.Sprint(i))},
				{Key: "empty", Value: nil},
			},
		})
	}
	return rs
}

// endOffsets lists topic's high watermarks by partition.
func endOffsets(t testing.TB, addr, topic string) map[int32]int64 {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	adm := kadm.NewClient(newClient(t, addr))
	var out map[int32]int64
	waitFor(t, 20*time.Second, func() error {
		lo, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			return err
		}
		out = map[int32]int64{}
		lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return nil
	})
	return out
}

// readAll consumes every partition of topic from the start up to its
// current high watermark, without a group, ordered by partition and offset.
func readAll(t testing.TB, addr, topic string) []*kgo.Record {
	t.Helper()
	ends := endOffsets(t, addr, topic)
	want := int64(0)
	for _, o := range ends {
		want += o
	}
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := testCtx(t, 60*time.Second)
	var got []*kgo.Record
	for int64(len(got)) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: got %d of %d records: %v", topic, len(got), want, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Errorf("fetch %s/%d: %v", tp, p, err) })
		got = append(got, fs.Records()...)
	}
	sort.SliceStable(got, func(i, j int) bool {
		if got[i].Partition != got[j].Partition {
			return got[i].Partition < got[j].Partition
		}
		return got[i].Offset < got[j].Offset
	})
	return got
}

// valueCounts counts records by value.
func valueCounts(rs []*kgo.Record) map[string]int {
	m := make(map[string]int, len(rs))
	for _, r := range rs {
		m[string(r.Value)]++
	}
	return m
}

// headerMap flattens headers for comparison (later keys win).
func headerMap(hs []kgo.RecordHeader) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[h.Key] = string(h.Value)
	}
	return m
}
