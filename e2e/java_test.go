package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const javaInstall = "apt-get install -y openjdk-17-jdk-headless maven, then make peers"

// javaPeer is the compiled peers/java project, built at most once per test
// binary.
var javaPeer struct {
	once sync.Once
	cp   string // java -cp value
	err  error
}

// needJavaClients builds peers/java (mvn package) unless it is up to date,
// and returns the classpath of its programs.
func needJavaClients(t testing.TB) string {
	t.Helper()
	needTool(t, "java", javaInstall)
	needTool(t, "mvn", javaInstall)
	javaPeer.once.Do(func() { javaPeer.cp, javaPeer.err = buildJavaPeer() })
	if javaPeer.err != nil {
		t.Fatalf("peers/java: %v", javaPeer.err)
	}
	return javaPeer.cp
}

func buildJavaPeer() (string, error) {
	dir := filepath.Join(repoRoot, "peers", "java")
	cpFile := filepath.Join(dir, "target", "classpath.txt")
	stamp := filepath.Join(dir, "target", "kbox-e2e.stamp") // mvn leaves an unchanged classpath.txt alone
	if !newerThanSources(stamp, dir) {
		cmd := exec.Command("mvn", "-B", "-q", "package")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("mvn package: %w\n%s", err, out)
		}
		if err := os.WriteFile(stamp, nil, 0o644); err != nil {
			return "", err
		}
	}
	cp, err := os.ReadFile(cpFile)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "target", "classes") + string(os.PathListSeparator) + strings.TrimSpace(string(cp)), nil
}

// newerThanSources reports whether out exists and is newer than pom.xml
// and every file under src/ of dir.
func newerThanSources(out, dir string) bool {
	st, err := os.Stat(out)
	if err != nil {
		return false
	}
	newer := true
	check := func(fi os.FileInfo) {
		if fi.ModTime().After(st.ModTime()) {
			newer = false
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "pom.xml")); err == nil {
		check(fi)
	}
	_ = filepath.Walk(filepath.Join(dir, "src"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			check(fi)
		}
		return nil
	})
	return newer
}

// runJava runs a peers/java main class and returns its STEP lines by name.
func runJava(t testing.TB, cp, class string, d time.Duration, args ...string) map[string]map[string]any {
	t.Helper()
	jargs := append([]string{"-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", cp, class}, args...)
	return runSteps(t, exec.CommandContext(testCtx(t, d), "java", jargs...))
}

// runSteps runs a peer program that prints `STEP name {json}` lines (see
// peers/README.md) and returns the steps by name; numbers stay json.Number.
func runSteps(t testing.TB, cmd *exec.Cmd) map[string]map[string]any {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	name := filepath.Base(cmd.Path) + " " + strings.Join(cmd.Args[max(1, len(cmd.Args)-4):], " ")
	t.Logf("%s ran %s", name, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", name, err, out, tailBytes(stderr.Bytes(), 6000))
	}
	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		name, js, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "STEP "), " ")
		if !ok || !strings.HasPrefix(sc.Text(), "STEP ") {
			continue
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(js))
		dec.UseNumber() // offsets and timestamps compare as written
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("step %s: %v: %s", name, err, js)
		}
		steps[name] = m
	}
	if stderr.Len() > 0 {
		t.Logf("stderr (tail):\n%s", tailBytes(stderr.Bytes(), 3000))
	}
	return steps
}

// stepChecker runs one subtest per step of a peer program.
type stepChecker struct {
	t     *testing.T
	addr  string
	steps map[string]map[string]any
}

// check runs fn on step name in a subtest that skips, naming the APIs,
// while kbox does not serve apis, and fails if the step failed.
func (c stepChecker) check(name string, apis []int16, fn func(t *testing.T, s map[string]any)) {
	c.t.Run(name, func(t *testing.T) {
		needAPIs(t, c.addr, apis...)
		s, ok := c.steps[name]
		if !ok {
			t.Fatalf("the peer printed no step %s", name)
		}
		if s["ok"] != true {
			t.Fatalf("step %s failed: %v", name, s["error"])
		}
		fn(t, s)
	})
}

// wantEq compares a step's field as text.
func wantEq(t *testing.T, s map[string]any, key string, want any) {
	t.Helper()
	if got := fmt.Sprint(s[key]); got != fmt.Sprint(want) {
		t.Errorf("%s = %s, want %v", key, got, want)
	}
}

// TestJavaClients runs the Java kafka-clients 4.x Admin, a default
// (idempotent, acks=all) producer with every codec and a consumer group
// member in one JVM against kbox, then checks what franz-go reads back.
// Each step is a subtest that skips, naming the API, while kbox does not
// serve what it needs.
func TestJavaClients(t *testing.T) {
	cp := needJavaClients(t)
	k := startKbox(t)
	const topic, group = "java-orders", "java-group"
	steps := runJava(t, cp, "dev.kbox.peers.Clients", 3*time.Minute, k.Addr, topic, group)
	createOK := len(mustMissing(t, k.Addr, kmsg.CreateTopics.Int16())) == 0

	check := stepChecker{t: t, addr: k.Addr, steps: steps}.check

	check("describeCluster", []int16{kmsg.Metadata.Int16()}, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "nodes", []string{"1@" + k.Addr})
		if id := fmt.Sprint(s["clusterId"]); id == "" || id == "<nil>" {
			t.Errorf("no cluster ID")
		}
	})
	check("createTopics", []int16{kmsg.CreateTopics.Int16()}, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "numPartitions", 3)
		wantEq(t, s, "replicationFactor", 1)
		wantEq(t, s, "retention.ms", "86400000")
		wantEq(t, s, "retention.ms.source", "DYNAMIC_TOPIC_CONFIG")
		if n, _ := s["configCount"].(json.Number).Int64(); n < 10 {
			t.Errorf("CreateTopics answer lists %v configs; Apache Kafka 4.1 lists 33", s["configCount"])
		}
	})
	check("describeTopics", []int16{kmsg.Metadata.Int16()}, func(t *testing.T, s map[string]any) {
		parts, _ := s["partitions"].([]any)
		if createOK && len(parts) != 3 {
			t.Errorf("%d partitions, want 3", len(parts))
		}
		for _, p := range parts {
			m := p.(map[string]any)
			if fmt.Sprint(m["leader"]) != "1" || fmt.Sprint(m["replicas"]) != "1" || fmt.Sprint(m["isr"]) != "1" {
				t.Errorf("partition %v", m)
			}
		}
		if c, ok := steps["createTopics"]; ok && c["ok"] == true {
			wantEq(t, s, "topicId", c["topicId"])
		}
	})
	check("describeConfigs", []int16{kmsg.DescribeConfigs.Int16(), kmsg.CreateTopics.Int16()}, func(t *testing.T, s map[string]any) {
		entries, _ := s["entries"].(map[string]any)
		for key, want := range map[string][2]string{
			"retention.ms":           {"86400000", "DYNAMIC_TOPIC_CONFIG"},
			"cleanup.policy":         {"delete", "DYNAMIC_TOPIC_CONFIG"},
			"max.message.bytes":      {"1048588", "DEFAULT_CONFIG"},
			"message.timestamp.type": {"CreateTime", "DEFAULT_CONFIG"},
			"retention.bytes":        {"-1", "DEFAULT_CONFIG"},
		} {
			e, _ := entries[key].(map[string]any)
			if fmt.Sprint(e["value"]) != want[0] || fmt.Sprint(e["source"]) != want[1] {
				t.Errorf("%s = %v, want value %s source %s", key, e, want[0], want[1])
			}
		}
	})
	check("describeBrokerConfigs", []int16{kmsg.DescribeConfigs.Int16()}, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "num.partitions", "1")
		wantEq(t, s, "auto.create.topics.enable", "true")
		wantEq(t, s, "message.max.bytes", "1048588")
	})
	check("produce", []int16{kmsg.Produce.Int16(), kmsg.InitProducerID.Int16()}, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "acked", 500)
		if bp, _ := s["byPartition"].(map[string]any); createOK && len(bp) != 3 {
			t.Errorf("records went to partitions %v, want all 3", bp)
		}
		got := readAll(t, k.Addr, topic)
		if len(got) != 500 {
			t.Fatalf("franz-go read %d records, want 500", len(got))
		}
		for _, r := range got {
			codec := headerMap(r.Headers)["codec"]
			if !strings.HasPrefix(string(r.Key), "k-"+codec+"-") || !strings.HasPrefix(string(r.Value), codec+" value ") {
				t.Fatalf("record %d/%d: key %q value %q headers %v", r.Partition, r.Offset, r.Key, r.Value, r.Headers)
			}
			for _, c := range codecs {
				if c.name == codec && r.Attrs.CompressionType() != c.attr {
					t.Fatalf("record %d/%d with codec %s stored as codec %d", r.Partition, r.Offset, codec, r.Attrs.CompressionType())
				}
			}
			if r.Timestamp.UnixMilli() < 1700000000000 || r.Timestamp.UnixMilli() >= 1700000000100 {
				t.Fatalf("record %d/%d timestamp %d", r.Partition, r.Offset, r.Timestamp.UnixMilli())
			}
		}
	})
	check("consumeGroup", groupAPIs, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "consumed", 500)
		wantEq(t, s, "distinctKeys", 500)
		wantEq(t, s, "badHeaders", 0)
		wantEq(t, s, "badTimestamps", 0)
	})
	check("listConsumerGroupOffsets", []int16{kmsg.FindCoordinator.Int16(), kmsg.OffsetFetch.Int16()}, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "sum", 500)
	})
	check("describeConsumerGroups", []int16{kmsg.FindCoordinator.Int16(), kmsg.DescribeGroups.Int16()}, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "state", "Empty")
		wantEq(t, s, "members", 0)
		wantEq(t, s, "protocolType", "Classic")
	})
	check("listOffsets", []int16{kmsg.ListOffsets.Int16(), kmsg.CreateTopics.Int16()}, func(t *testing.T, s map[string]any) {
		wantEq(t, s, "latestSum", 500)
		// The first record of partition 0 at or after T+50, as franz-go sees it.
		want, wantTS := int64(-1), int64(-1)
		for _, r := range readAll(t, k.Addr, topic) {
			if r.Partition == 0 && r.Timestamp.UnixMilli() >= 1700000000050 {
				want, wantTS = r.Offset, r.Timestamp.UnixMilli()
				break
			}
		}
		wantEq(t, s, "byTimestampOffset", want)
		wantEq(t, s, "byTimestampTimestamp", wantTS)
	})
}
