package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const kcatInstall = "apt-get install -y kcat"

// TestKcatCodecs produces with kcat (librdkafka) with every compression
// codec and checks with franz-go that keys, values, headers and CreateTime
// arrived and that the batches really were compressed with that codec
// (librdkafka silently stops compressing when it dislikes the advertised
// Produce versions, KAFKA-18659). Then it produces with franz-go, explicit
// timestamps and the same codec, and checks what kcat consumes.
func TestKcatCodecs(t *testing.T) {
	kcat := needTool(t, "kcat", kcatInstall)
	k := startKbox(t)
	for _, codec := range codecs {
		t.Run(codec.name, func(t *testing.T) {
			topic := "kcat-" + codec.name
			createTopic(t, k.Addr, topic, 1, nil)

			var in bytes.Buffer
			const n = 200
			for i := 0; i < n; i++ {
				fmt.Fprintf(&in, "key-%d|%s value %d\n", i, strings.Repeat("x", i%50), i)
			}
			before := time.Now().Add(-time.Second)
			runKcat(t, kcat, in.Bytes(), "-P", "-b", k.Addr, "-t", topic, "-z", codec.name, "-K", "|",
				"-H", "source=kcat", "-H", "codec="+codec.name, "-X", "linger.ms=20", "-X", "acks=all")
			after := time.Now().Add(time.Second)

			got := readAll(t, k.Addr, topic)
			if len(got) != n {
				t.Fatalf("franz-go read %d records, want %d", len(got), n)
			}
			for i, r := range got {
				if string(r.Key) != fmt.Sprintf("key-%d", i) || string(r.Value) != fmt.Sprintf("%s value %d", strings.Repeat("x", i%50), i) {
					t.Fatalf("record %d: key %q value %q", i, r.Key, r.Value)
				}
				if h := headerMap(r.Headers); h["source"] != "kcat" || h["codec"] != codec.name || len(r.Headers) != 2 {
					t.Fatalf("record %d headers %v", i, r.Headers)
				}
				if r.Timestamp.Before(before) || r.Timestamp.After(after) || r.Attrs.TimestampType() != 0 {
					t.Fatalf("record %d CreateTime %v (type %d) not within the produce call [%v, %v]", i, r.Timestamp, r.Attrs.TimestampType(), before, after)
				}
				if c := r.Attrs.CompressionType(); c != codec.attr {
					t.Fatalf("record %d stored with codec %d, want %d (%s): librdkafka did not compress", i, c, codec.attr, codec.name)
				}
			}

			// franz-go produces with explicit timestamps; kcat consumes.
			ts := time.UnixMilli(time.Now().Add(-2 * time.Hour).UnixMilli())
			rs := numbered(topic, "franz", 0, 50)
			for i, r := range rs {
				r.Timestamp = ts.Add(time.Duration(i) * time.Millisecond)
			}
			produceSync(t, k.Addr, rs, kgo.ProducerBatchCompression(codec.franz))
			msgs := consumeKcatJSON(t, kcat, k.Addr, topic, n+len(rs))
			for i, m := range msgs[n:] {
				want := rs[i]
				if m.Offset != int64(n+i) || m.Key != string(want.Key) || m.Payload != string(want.Value) || m.TS != want.Timestamp.UnixMilli() || m.TSType != "create" {
					t.Fatalf("kcat message %d = %+v; want offset %d key %q payload %q ts %d", i, m, n+i, want.Key, want.Value, want.Timestamp.UnixMilli())
				}
				if fmt.Sprint(m.Headers) != fmt.Sprint([]string{"seq", fmt.Sprint(i), "empty", ""}) {
					t.Fatalf("kcat message %d headers %q", i, m.Headers)
				}
			}
		})
	}
}

// TestKcatMetadata checks what librdkafka's metadata listing shows for an
// auto-created topic: one broker (kbox's address) and the partition's leader.
func TestKcatMetadata(t *testing.T) {
	kcat := needTool(t, "kcat", kcatInstall)
	k := startKbox(t)
	createTopic(t, k.Addr, "meta", 1, nil)
	out := runKcat(t, kcat, nil, "-L", "-J", "-b", k.Addr, "-t", "meta")
	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L -J: %v\n%s", err, out)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Name != k.Addr {
		t.Errorf("brokers %+v, want one at %s", md.Brokers, k.Addr)
	}
	if len(md.Topics) != 1 || md.Topics[0].Topic != "meta" || len(md.Topics[0].Partitions) != 1 || md.Topics[0].Partitions[0].Leader != md.Brokers[0].ID {
		t.Errorf("topics %+v", md.Topics)
	}
}

// kcatMsg is one line of `kcat -C -J`.
type kcatMsg struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	TSType    string   `json:"tstype"`
	TS        int64    `json:"ts"`
	Headers   []string `json:"headers"`
	Key       string   `json:"key"`
	Payload   string   `json:"payload"`
}

// consumeKcatJSON consumes partition 0 of topic from the start to its end
// with kcat and wants n messages.
func consumeKcatJSON(t testing.TB, kcat, addr, topic string, n int) []kcatMsg {
	t.Helper()
	out := runKcat(t, kcat, nil, "-C", "-b", addr, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-J")
	var msgs []kcatMsg
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m kcatMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("kcat output line %q: %v", sc.Text(), err)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) != n {
		t.Fatalf("kcat consumed %d messages, want %d", len(msgs), n)
	}
	return msgs
}

// runKcat runs kcat with stdin, failing t on a non-zero exit or after 15s
// (every call here takes well under two).
func runKcat(t testing.TB, kcat string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(testCtx(t, 15*time.Second), kcat, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// TestKcatGroup consumes with librdkafka's balanced consumer group
// (kcat -G): it joins, gets every partition, consumes every record and
// commits on close; kadm then sees the committed offsets at the end.
func TestKcatGroup(t *testing.T) {
	kcat := needTool(t, "kcat", kcatInstall)
	k := startKbox(t)
	needAPIs(t, k.Addr, groupAPIs...)
	const topic, group, n = "kcat-group", "kcat-group", 150
	createTopic(t, k.Addr, topic, 3, nil)
	produceSync(t, k.Addr, numbered(topic, "v", 0, n))
	out := runKcat(t, kcat, nil, "-b", k.Addr, "-G", group, "-c", fmt.Sprint(n), "-q", "-J",
		"-X", "auto.offset.reset=earliest", "-X", "enable.auto.commit=true", topic)
	var msgs []kcatMsg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m kcatMsg
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("kcat -G output %q: %v", line, err)
		}
		msgs = append(msgs, m)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.Payload] = true
	}
	if len(msgs) != n || len(seen) != n {
		t.Fatalf("kcat -G consumed %d messages (%d distinct), want %d", len(msgs), len(seen), n)
	}
	adm := kadm.NewClient(newClient(t, k.Addr))
	ends := endOffsets(t, k.Addr, topic)
	offs, err := adm.FetchOffsets(testCtx(t, 20*time.Second), group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	for p, end := range ends {
		if o, ok := offs.Lookup(topic, p); !ok || o.At != end {
			t.Errorf("committed %s/%d = %+v, want %d (librdkafka commits on close)", topic, p, o, end)
		}
	}
}
