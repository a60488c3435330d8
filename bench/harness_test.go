package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func rec(p int32, off int64, seq uint64, size int) *kgo.Record {
	v := make([]byte, size)
	binary.BigEndian.PutUint64(v, seq)
	return &kgo.Record{Partition: p, Offset: off, Value: v}
}

// TestCheckerCatchesBadConsumption: the consume check is what makes a
// lossy broker fail the bench, so each way of being wrong must trip it.
func TestCheckerCatchesBadConsumption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records []*kgo.Record
		hwm     map[int32]int64
		want    string // error substring; "" means no error
	}{
		{"all there", []*kgo.Record{rec(0, 0, 0, 16), rec(1, 0, 1, 16), rec(0, 1, 2, 16)}, map[int32]int64{0: 2, 1: 1}, ""},
		{"duplicate", []*kgo.Record{rec(0, 0, 0, 16), rec(0, 1, 0, 16)}, map[int32]int64{0: 2}, "consumed twice"},
		{"offset goes back", []*kgo.Record{rec(0, 5, 0, 16), rec(0, 3, 1, 16)}, map[int32]int64{0: 6}, "offset 3 after 5"},
		{"never produced", []*kgo.Record{rec(0, 0, 7, 16)}, map[int32]int64{0: 1}, "never produced"},
		{"wrong size", []*kgo.Record{rec(0, 0, 0, 15)}, map[int32]int64{0: 1}, "15 bytes, want 16"},
		{"lost at the end", []*kgo.Record{rec(0, 0, 0, 16), rec(1, 0, 1, 16)}, map[int32]int64{0: 1, 1: 1}, "got 2 of 3 records"},
		{"still reading", []*kgo.Record{rec(0, 0, 0, 16), rec(1, 0, 1, 16)}, map[int32]int64{0: 2, 1: 1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChecker(3, 16)
			for _, r := range tc.records {
				c.record(r)
			}
			for p, h := range tc.hwm {
				c.hwm[p] = h
			}
			err := c.check(len(tc.hwm), 3)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568", -45678: "-45,678"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestProcStatsOfSelf(t *testing.T) {
	before, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	after, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 0.03 {
		t.Errorf("cpu time grew by %.3fs over 100ms of spinning", after-before)
	}
	rss, err := rssBytes(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 || rss > 1<<34 {
		t.Errorf("implausible RSS %d", rss)
	}
}

// TestMarkWriterAcrossWrites: Kafka's start marker may arrive split over
// several writes, after other output.
func TestMarkWriterAcrossWrites(t *testing.T) {
	var out bytes.Buffer
	m := &markWriter{w: &out, marker: []byte("kafka.sh: Apache Kafka"), seen: make(chan time.Time, 1)}
	for _, chunk := range []string{"formatting\nkafka.sh: Apa", "che Kafka 4.1.1 on 127.0.0.1:1", "\nmore\n"} {
		if _, err := m.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-m.seen:
	default:
		t.Fatal("marker not seen")
	}
	if !strings.Contains(out.String(), "4.1.1 on 127.0.0.1:1\nmore") {
		t.Fatalf("output not passed through: %q", out.String())
	}
}

func TestMergeTakesTheMedianRoundPerPhase(t *testing.T) {
	phase := func(ms int) throughput { return throughput{records: 1000, took: time.Duration(ms) * time.Millisecond} }
	r := &result{cpu: map[int]*cpuUse{}, rounds: []roundResult{
		{produce: []throughput{phase(10), phase(50)}, consume: []throughput{phase(5), phase(9)}, cpu: map[int]*cpuUse{100: {seconds: 3, records: 1e6}}},
		{produce: []throughput{phase(30), phase(20)}, consume: []throughput{phase(7), phase(8)}, cpu: map[int]*cpuUse{100: {seconds: 1, records: 1e6}}},
		{produce: []throughput{phase(20), phase(40)}, consume: []throughput{phase(6), phase(7)}, cpu: map[int]*cpuUse{100: {seconds: 2, records: 1e6}}},
		{produce: []throughput{phase(1)}}, // an incomplete (failed) round is left out
	}}
	r.merge()
	want := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond}
	for i, w := range want {
		if got := r.produce[i].took; got != w {
			t.Errorf("produce phase %d: median took %s, want %s", i, got, w)
		}
	}
	if got := r.consume[1].took; got != 8*time.Millisecond {
		t.Errorf("consume phase 1: median took %s, want 8ms", got)
	}
	if got := r.cpu[100].perMillion(); got != 2 {
		t.Errorf("cpu per million: %v, want the median 2", got)
	}
}
