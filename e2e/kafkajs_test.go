package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const kafkajsInstall = "apt-get install -y nodejs npm, then make peers (npm ci in peers/kafkajs)"

// TestKafkaJS runs kafkajs 2.2 (admin, producer without and with gzip,
// consumer group, offsets by timestamp) against kbox in one node process.
func TestKafkaJS(t *testing.T) {
	node := needTool(t, "node", kafkajsInstall)
	dir := filepath.Join(repoRoot, "peers", "kafkajs")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err != nil {
		peerMissing(t, "peers/kafkajs/node_modules/kafkajs", kafkajsInstall)
	}
	k := startKbox(t)
	const topic, group = "js-orders", "js-group"
	cmd := exec.CommandContext(testCtx(t, 2*time.Minute), node, "clients.js", k.Addr, topic, group)
	cmd.Dir = dir
	check := stepChecker{t: t, addr: k.Addr, steps: runSteps(t, cmd)}.check

	check("createTopics", []int16{kmsg.CreateTopics.Int16()}, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "created", true)
		wantEq(t, s, "partitions", 2)
	})
	check("produce", []int16{kmsg.Produce.Int16()}, func(t *testing.T, s map[string]any) {
		rs, _ := s["results"].([]any)
		if len(rs) != 4 {
			t.Fatalf("produce results %v, want one per partition per send", rs)
		}
		for _, r := range rs {
			if m := r.(map[string]any); m["errorCode"].(interface{ String() string }).String() != "0" {
				t.Errorf("produce result %v", m)
			}
		}
		got := readAll(t, k.Addr, topic)
		if len(got) != 200 {
			t.Fatalf("franz-go read %d records, want 200", len(got))
		}
		for _, r := range got {
			codec := headerMap(r.Headers)["codec"]
			want := map[string]uint8{"none": 0, "gzip": 1}[codec]
			if c := r.Attrs.CompressionType(); c != want {
				t.Fatalf("record %d/%d (%s) stored with codec %d", r.Partition, r.Offset, codec, c)
			}
		}
	})
	check("consumeGroup", groupAPIs, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "consumed", 200)
		wantEq(t, s, "bad", 0)
	})
	check("fetchOffsets", []int16{kmsg.OffsetFetch.Int16()}, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "sum", 200)
	})
	check("describeGroups", []int16{kmsg.DescribeGroups.Int16()}, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "state", "Empty")
		// Apache Kafka 4.1 keeps the protocol type of a group whose
		// members all left: "consumer".
		wantEq(t, s, "protocolType", "consumer")
		wantEq(t, s, "errorCode", 0)
	})
	check("fetchTopicOffsetsByTimestamp", []int16{kmsg.ListOffsets.Int16()}, func(t *testing.T, s map[string]any) {
		want := map[string]int64{}
		for _, r := range readAll(t, k.Addr, topic) {
			key := fmt.Sprint(r.Partition)
			if _, done := want[key]; !done && r.Timestamp.UnixMilli() >= 1700000000050 {
				want[key] = r.Offset
			}
		}
		offs, _ := s["offsets"].([]any)
		if len(offs) != 2 {
			t.Fatalf("offsets %v", offs)
		}
		for _, o := range offs {
			m := o.(map[string]any)
			if fmt.Sprint(m["offset"]) != fmt.Sprint(want[fmt.Sprint(m["partition"])]) {
				t.Errorf("partition %v: offset for T+50 = %v, want %d", m["partition"], m["offset"], want[fmt.Sprint(m["partition"])])
			}
		}
	})
}
