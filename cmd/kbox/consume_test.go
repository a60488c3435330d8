package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceN writes values v0..v(n-1) with keys k0.. to one partition.
func produceN(t *testing.T, addr, topic string, partition, n int) {
	t.Helper()
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "k%d=v%d\n", i, i)
	}
	mustKbox(t, in.String(), "produce", topic, "--bootstrap", addr, "-K", "=", "--partition", fmt.Sprint(partition))
}

// TestConsumeFrom covers --from and --partition.
func TestConsumeFrom(t *testing.T) {
	addr := startNode(t)
	produceN(t, addr, "from", 0, 5)
	produceN(t, addr, "from", 2, 2)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "beginning", "--partition", "0", "--count", "5"}, "v0 v1 v2 v3 v4"},
		{[]string{"--from", "3", "--partition", "0", "--count", "2"}, "v3 v4"},
		{[]string{"--from", "-2", "--partition", "0", "--count", "2"}, "v3 v4"},
		{[]string{"--from", "beginning", "--partition", "2", "--count", "2"}, "v0 v1"},
		{[]string{"--from", "1", "--timeout", "1s"}, "v1 v1 v2 v3 v4"},                       // every partition from offset 1
		{[]string{"--from", "-1", "--timeout", "1s"}, "v1 v4"},                               // the last record of each
		{[]string{"--from", "2000-01-01T00:00:00Z", "--count", "7"}, "v0 v0 v1 v1 v2 v3 v4"}, // by time
	} {
		r := mustKbox(t, "", append([]string{"consume", "from", "--bootstrap", addr}, tc.args...)...)
		got := strings.Fields(r.stdout)
		slices.Sort(got)
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: got %q, want %q", strings.Join(tc.args, " "), strings.Join(got, " "), tc.want)
		}
	}
}

// TestConsumeFromEndSeesOnlyNewRecords: --from end skips what is there and
// prints what is produced after the consumer started.
func TestConsumeFromEndSeesOnlyNewRecords(t *testing.T) {
	addr := startNode(t)
	produceN(t, addr, "tail", 0, 3)
	done, wait := background(t, "", "consume", "tail", "--bootstrap", addr, "--partition", "0", "--count", "1", "--print", "offset,value")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("tail"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	eventually(t, 30*time.Second, func() error {
		select {
		case <-done:
			return nil
		default:
		}
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Partition: 0, Value: []byte("new")}).FirstErr(); err != nil {
			return err
		}
		return errors.New("consumer has not printed a record yet")
	})
	r := wait()
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.stdout[0] == '0' || !strings.HasSuffix(r.stdout, "\tnew\n") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("--from end printed %q: want one new record at offset >= 3", r.stdout)
	}
}

// TestConsumeTimeoutOnIdleTopic: --timeout ends a consume that gets no
// records, successfully, with a summary.
func TestConsumeTimeoutOnIdleTopic(t *testing.T) {
	addr := startNode(t)
	produceN(t, addr, "idle", 0, 1)
	start := time.Now()
	r := mustKbox(t, "", "consume", "idle", "--bootstrap", addr, "--from", "end", "--timeout", "300ms")
	if r.stdout != "" || r.stderr != "consumed 0 records from idle\n" {
		t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 20*time.Second {
		t.Fatalf("took %s for a 300ms idle timeout", took)
	}
}

// TestConsumeFormats covers JSON lines, --print in JSON and templates.
func TestConsumeFormats(t *testing.T) {
	addr := startNode(t)
	mustKbox(t, "alice=1\n", "produce", "fmt", "--bootstrap", addr, "-K", "=", "-H", "src=cli", "-H", "src=again", "-p", "0")
	consume := func(args ...string) string {
		return mustKbox(t, "", append([]string{"consume", "fmt", "--bootstrap", addr, "--from", "beginning", "--count", "1"}, args...)...).stdout
	}
	all := jsonLines(t, consume("--format", "json"))
	if len(all) != 1 {
		t.Fatalf("json lines: %v", all)
	}
	m := all[0]
	ts, err := time.Parse(time.RFC3339, m["timestamp"].(string))
	if m["topic"] != "fmt" || m["partition"] != 0.0 || m["offset"] != 0.0 || m["key"] != "alice" || m["value"] != "1" ||
		err != nil || time.Since(ts) > time.Minute || time.Since(ts) < 0 {
		t.Fatalf("json record %v (timestamp err %v)", m, err)
	}
	if got := fmt.Sprint(m["headers"]); got != "[map[key:src value:cli] map[key:src value:again]]" {
		t.Fatalf("headers %s", got)
	}
	if got := consume("--format", "json", "--print", "value,key"); got != `{"value":"1","key":"alice"}`+"\n" {
		t.Fatalf("json --print value,key: %q", got)
	}
	if got := consume("--format", `{{.Key}} -> {{.Value}} ({{.Header "src"}}, {{len .Headers}} headers) p{{.Partition}}@{{.Offset}}`); got != "alice -> 1 (cli, 2 headers) p0@0\n" {
		t.Fatalf("template: %q", got)
	}
	if got := consume("--format", "{{.Value}}\n"); got != "1\n" {
		t.Fatalf("template ending in a newline: %q", got)
	}
	if got := consume(); got != "1\n" {
		t.Fatalf("default output: %q", got)
	}
	if got := consume("--print", "timestamp"); got != all[0]["timestamp"].(string)+"\n" {
		t.Fatalf("--print timestamp: %q, json said %v", got, all[0]["timestamp"])
	}
}

// TestConsumeErrors: bad flags fail before connecting.
func TestConsumeErrors(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--from", "yesterday"}, `--from "yesterday"`},
		{[]string{"--print", "key,size"}, `unknown field "size"`},
		{[]string{"--format", "xml"}, `--format "xml"`},
		{[]string{"--format", "{{.Nope"}, "--format template"},
		{[]string{"--format", "{{.Value}}", "--print", "key"}, "--print and a --format template"},
		{[]string{"--group", "g", "--partition", "1"}, "--partition and --group"},
	} {
		r := kbox(t, "", append([]string{"consume", "t", "--bootstrap", "127.0.0.1:1"}, tc.args...)...)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
			t.Errorf("%s: err %v, want %q", strings.Join(tc.args, " "), r.err, tc.wantErr)
		}
	}
}

// TestRecordWriter pins the table, JSON and template renderings of records
// with null and binary-free keys, and headers.
func TestRecordWriter(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	recs := []*kgo.Record{
		{Topic: "t", Partition: 2, Offset: 7, Timestamp: ts, Key: []byte("k"), Value: []byte("v"),
			Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("")}}},
		{Topic: "t", Partition: 0, Offset: 0, Timestamp: ts, Value: []byte(`say "hi"`)},
	}
	for _, tc := range []struct{ format, print, want string }{
		{"table", "", "v\nsay \"hi\"\n"},
		{"table", "partition,offset,timestamp,key,value,headers", "2\t7\t2024-05-06T07:08:09.123Z\tk\tv\ta=1,b=\n0\t0\t2024-05-06T07:08:09.123Z\t\tsay \"hi\"\t\n"},
		{"json", "", `{"topic":"t","partition":2,"offset":7,"timestamp":"2024-05-06T07:08:09.123Z","key":"k","value":"v","headers":[{"key":"a","value":"1"},{"key":"b","value":""}]}` + "\n" +
			`{"topic":"t","partition":0,"offset":0,"timestamp":"2024-05-06T07:08:09.123Z","key":null,"value":"say \"hi\"","headers":[]}` + "\n"},
		{"json", "key", `{"key":"k"}` + "\n" + `{"key":null}` + "\n"},
		{"{{.Topic}}/{{.Partition}}/{{.Offset}} {{.Timestamp.UnixMilli}} {{.Header \"a\"}}", "", "t/2/7 1714979289123 1\nt/0/0 1714979289123 \n"},
	} {
		var buf bytes.Buffer
		rw, err := newRecordWriter(&buf, tc.format, tc.print)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.format, tc.print, err)
		}
		for _, r := range recs {
			if err := rw.write(r); err != nil {
				t.Fatal(err)
			}
		}
		if buf.String() != tc.want {
			t.Errorf("format %q print %q:\n%q\nwant\n%q", tc.format, tc.print, buf.String(), tc.want)
		}
	}
}

// TestConsumeGroupCommitsAndResumes: a --group consume commits what it
// printed, so the next one resumes after it.
func TestConsumeGroupCommitsAndResumes(t *testing.T) {
	addr := startNode(t)
	needAPIs(t, addr, kmsg.FindCoordinator.Int16(), kmsg.JoinGroup.Int16(), kmsg.SyncGroup.Int16(),
		kmsg.Heartbeat.Int16(), kmsg.OffsetCommit.Int16(), kmsg.OffsetFetch.Int16(), kmsg.LeaveGroup.Int16())
	produceN(t, addr, "grouped", 1, 5)
	args := []string{"consume", "grouped", "--bootstrap", addr, "--group", "readers", "--from", "beginning", "--print", "partition,offset,value"}
	if r := mustKbox(t, "", append(args, "--count", "2")...); r.stdout != "1\t0\tv0\n1\t1\tv1\n" {
		t.Fatalf("first consume: %q", r.stdout)
	}
	if r := mustKbox(t, "", append(args, "--count", "3")...); r.stdout != "1\t2\tv2\n1\t3\tv3\n1\t4\tv4\n" {
		t.Fatalf("second consume should resume at offset 2: %q", r.stdout)
	}
	if r := mustKbox(t, "", append(args, "--timeout", "500ms")...); r.stdout != "" {
		t.Fatalf("third consume should find nothing new: %q", r.stdout)
	}
}
