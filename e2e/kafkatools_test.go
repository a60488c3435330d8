package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaJars is the Apache Kafka jar cache, fetched at most once per test
// binary.
var kafkaJars struct {
	once sync.Once
	err  error
}

// kafkaTool runs an Apache Kafka tool main class (peers/kafka/kafka.sh
// tool) with stdin and returns its stdout.
func kafkaTool(t testing.TB, stdin string, class string, args ...string) string {
	t.Helper()
	needTool(t, "java", kafkaInstall)
	needTool(t, "mvn", kafkaInstall)
	script := filepath.Join(repoRoot, "peers", "kafka", "kafka.sh")
	kafkaJars.once.Do(func() {
		if out, err := exec.Command("bash", script, "fetch").CombinedOutput(); err != nil {
			kafkaJars.err = fmt.Errorf("kafka.sh fetch: %w\n%s", err, out)
		}
	})
	if kafkaJars.err != nil {
		t.Fatal(kafkaJars.err)
	}
	cmd := exec.CommandContext(testCtx(t, 90*time.Second), "bash", append([]string{script, "tool", class}, args...)...)
	cmd.Env = append(os.Environ(), "KAFKA_JVM_OPTS=-Xmx256m -XX:TieredStopAtLevel=1 -Xshare:auto")
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	short := class[strings.LastIndex(class, ".")+1:]
	t.Logf("%s ran %s", short, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s %v: %v\nstdout:\n%s\nstderr:\n%s", short, args, err, out, tailBytes(stderr.Bytes(), 4000))
	}
	return string(out)
}

// TestKafkaConsoleTools drives kbox with Apache Kafka's own command line
// tools (the classes behind kafka-topics.sh, kafka-console-producer.sh,
// kafka-console-consumer.sh and kafka-consumer-groups.sh), as a newcomer
// would.
func TestKafkaConsoleTools(t *testing.T) {
	k := startKbox(t)
	needAPIs(t, k.Addr, append(groupAPIs, kmsg.CreateTopics.Int16(), kmsg.DescribeConfigs.Int16(), kmsg.DescribeGroups.Int16())...)
	const topic, group, n = "console", "console-group", 100
	kafkaTool(t, "", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", k.Addr,
		"--create", "--topic", topic, "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=3600000")
	desc := kafkaTool(t, "", "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", k.Addr, "--describe", "--topic", topic)
	if !strings.Contains(desc, "PartitionCount: 3") || !strings.Contains(desc, "retention.ms=3600000") || strings.Count(desc, "Leader: 1") != 3 {
		t.Errorf("kafka-topics --describe:\n%s", desc)
	}

	var in strings.Builder
	want := map[string]bool{}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "key-%d:value %d\n", i, i)
		want[fmt.Sprintf("key-%d:value %d", i, i)] = true
	}
	kafkaTool(t, in.String(), "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", k.Addr, "--topic", topic,
		"--property", "parse.key=true", "--property", "key.separator=:", "--compression-codec", "lz4",
		"--producer-property", "acks=all")
	recs := readAll(t, k.Addr, topic)
	if len(recs) != n {
		t.Fatalf("franz-go read %d records, want %d", len(recs), n)
	}
	for _, r := range recs {
		if !want[string(r.Key)+":"+string(r.Value)] || r.Attrs.CompressionType() != 3 {
			t.Fatalf("record %d/%d: %q:%q codec %d", r.Partition, r.Offset, r.Key, r.Value, r.Attrs.CompressionType())
		}
	}

	out := kafkaTool(t, "", "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", k.Addr, "--topic", topic,
		"--from-beginning", "--group", group, "--max-messages", strconv.Itoa(n), "--timeout-ms", "30000",
		"--property", "print.key=true", "--property", "key.separator=:")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	if len(lines) != n {
		t.Fatalf("console consumer printed %d lines, want %d:\n%s", len(lines), n, out)
	}
	for _, l := range lines {
		if !want[l] {
			t.Fatalf("console consumer printed %q", l)
		}
	}

	groups := kafkaTool(t, "", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server", k.Addr,
		"--describe", "--group", group)
	// GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
	row := regexp.MustCompile(`(?m)^` + group + `\s+` + topic + `\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`)
	rows := row.FindAllStringSubmatch(groups, -1)
	sum := 0
	for _, r := range rows {
		cur, _ := strconv.Atoi(r[2])
		sum += cur
		if r[2] != r[3] || r[4] != "0" {
			t.Errorf("kafka-consumer-groups partition %s: current %s, end %s, lag %s", r[1], r[2], r[3], r[4])
		}
	}
	if len(rows) != 3 || sum != n {
		t.Errorf("kafka-consumer-groups --describe: %d partitions, committed %d, want 3 and %d:\n%s", len(rows), sum, n, groups)
	}
}
