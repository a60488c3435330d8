package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceConsumeEveryCompression produces keyed lines with headers in
// each codec and reads them back with every field.
func TestProduceConsumeEveryCompression(t *testing.T) {
	addr := startNode(t)
	codecs := map[string]int8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "codec-" + codec
			r := mustKbox(t, "k1:v1\nk2:v:2\nk3:\n", "produce", topic, "--bootstrap", addr, "--partition", "1",
				"--key-separator", ":", "--header", "src=test", "--header", "codec="+codec, "--compression", codec)
			if want := "produced 3 records (11 bytes) to " + topic; !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "per partition 1:3") {
				t.Fatalf("summary %q, want %q... per partition 1:3", r.stderr, want)
			}
			if r.stdout != "" {
				t.Fatalf("produce wrote to stdout: %q", r.stdout)
			}
			// franz-go sends a batch uncompressed when compressing does not
			// shrink it, so the codec is checked on a compressible one.
			long := strings.Repeat(strings.Repeat("compressible ", 100)+"\n", 3)
			mustKbox(t, long, "produce", topic, "--bootstrap", addr, "--partition", "2", "--compression", codec)
			if got := batchCodec(t, addr, topic, 2); got != codecs[codec] {
				t.Fatalf("stored batch codec %d, want %d (%s)", got, codecs[codec], codec)
			}
			r = mustKbox(t, "", "consume", topic, "--bootstrap", addr, "--from", "beginning", "--count", "3", "--partition", "1",
				"--print", "topic,partition,offset,key,value,headers")
			want := fmt.Sprintf("%[1]s\t1\t0\tk1\tv1\tsrc=test,codec=%[2]s\n%[1]s\t1\t1\tk2\tv:2\tsrc=test,codec=%[2]s\n%[1]s\t1\t2\tk3\t\tsrc=test,codec=%[2]s\n", topic, codec)
			if r.stdout != want {
				t.Fatalf("consumed\n%q\nwant\n%q", r.stdout, want)
			}
			if r.stderr != "consumed 3 records from "+topic+"\n" {
				t.Fatalf("consume summary %q", r.stderr)
			}
		})
	}
}

// TestProduceUnkeyedLinesFromFile: without --key-separator a whole line is
// the value and the key is null; --file reads a file; the JSON summary
// counts records per partition.
func TestProduceUnkeyedLinesFromFile(t *testing.T) {
	addr := startNode(t)
	path := filepath.Join(t.TempDir(), "in.txt")
	var lines []string
	for i := range 30 {
		lines = append(lines, fmt.Sprintf("line=%d", i))
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustKbox(t, "", "produce", "fromfile", "--bootstrap", addr, "--file", path, "--format", "json", "--acks", "1")
	var sum produceSummary
	decodeJSON(t, r.stderr, &sum)
	var total int64
	for _, n := range sum.Partitions {
		total += n
	}
	if sum.Topic != "fromfile" || sum.Records != 30 || total != 30 || sum.Bytes != int64(len(strings.Join(lines, ""))) {
		t.Fatalf("summary %+v", sum)
	}
	got := jsonLines(t, mustKbox(t, "", "consume", "fromfile", "--bootstrap", addr, "--from", "beginning",
		"--count", "30", "--format", "json").stdout)
	if len(got) != 30 {
		t.Fatalf("consumed %d records, want 30", len(got))
	}
	seen := map[string]bool{}
	for _, m := range got {
		if m["key"] != nil {
			t.Fatalf("unkeyed record has key %v", m["key"])
		}
		seen[m["value"].(string)] = true
	}
	for _, l := range lines {
		if !seen[l] {
			t.Fatalf("value %q not consumed", l)
		}
	}
}

// TestProduceErrors: bad flags and bad input are errors; lines before a
// bad line are still produced.
func TestProduceErrors(t *testing.T) {
	addr := startNode(t)
	for _, tc := range []struct {
		stdin   string
		args    []string
		wantErr string
	}{
		{"a=1\nnokey\nb=2\n", []string{"-K", "="}, `line 2: no key separator "="`},
		{"x\n", []string{"--acks", "2"}, `--acks "2"`},
		{"x\n", []string{"--compression", "brotli"}, `--compression "brotli"`},
		{"x\n", []string{"--header", "novalue"}, `--header "novalue": want key=value`},
		{"x\n", []string{"--file", "/nonexistent/in.txt"}, "--file: open /nonexistent/in.txt"},
		{"x\n", []string{"--format", "xml"}, `--format "xml"`},
	} {
		args := append([]string{"produce", "perr", "--bootstrap", addr}, tc.args...)
		r := kbox(t, tc.stdin, args...)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
			t.Errorf("%s: err %v, want %q", strings.Join(tc.args, " "), r.err, tc.wantErr)
		}
	}
	r := mustKbox(t, "", "consume", "perr", "--bootstrap", addr, "--from", "beginning", "--count", "1", "--print", "key,value")
	if r.stdout != "a\t1\n" {
		t.Fatalf("records before the bad line: %q", r.stdout)
	}
}

// TestProduceKeyedGoesToOnePartition: records with one key land in one
// partition (the default partitioner hashes keys).
func TestProduceKeyedGoesToOnePartition(t *testing.T) {
	addr := startNode(t)
	in := strings.Repeat("same=v\n", 20)
	r := mustKbox(t, in, "produce", "keyed", "--bootstrap", addr, "-K", "=")
	if !strings.Contains(r.stderr, "produced 20 records") || strings.Count(r.stderr, ":") != 1 {
		t.Fatalf("summary %q: want 20 records in one partition", r.stderr)
	}
}

// TestProduceTimeoutWithoutBroker: --timeout fails records that no broker
// acknowledges instead of waiting forever.
func TestProduceTimeoutWithoutBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	start := time.Now()
	r := kbox(t, "x\n", "produce", "t", "--bootstrap", addr, "--timeout", "1s")
	if r.err == nil || !strings.Contains(r.err.Error(), "timed out") || !strings.HasPrefix(r.stderr, "produced 0 records") {
		t.Fatalf("err %v, stderr %q", r.err, r.stderr)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("took %s with a 1s timeout", took)
	}
}

// batchCodec fetches partition p of topic with a raw Fetch and returns the
// compression codec in the first stored batch's attributes.
func batchCodec(t *testing.T, addr, topic string, p int32) int8 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MaxBytes, req.ReplicaID = 100, 1<<20, -1
	tds, err := kadm.NewClient(cl).ListTopics(t.Context(), topic)
	if err != nil || tds[topic].Err != nil {
		t.Fatalf("metadata of %s: %v %v", topic, err, tds[topic].Err)
	}
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, tds[topic].ID // kgo picks the version: names before v13, IDs from it
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes = p, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch answer %+v", resp)
	}
	fp := resp.Topics[0].Partitions[0]
	var b kmsg.RecordBatch
	if fp.ErrorCode != 0 || b.ReadFrom(fp.RecordBatches) != nil {
		t.Fatalf("fetch %s[%d]: error code %d, %d bytes of batches", topic, p, fp.ErrorCode, len(fp.RecordBatches))
	}
	return int8(b.Attributes & 0x07)
}
