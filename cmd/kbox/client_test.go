package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/cluster"
)

// testPartitions is num.partitions of the test node, so auto-created
// topics have several partitions.
const testPartitions = 3

// startNode starts a one-node kbox cluster in the test and returns its
// Kafka address.
func startNode(t *testing.T) string {
	t.Helper()
	return cluster.Start(t, cluster.Nodes(1), cluster.Partitions(testPartitions), cluster.FastTimeouts()).Bootstrap()
}

// result is what one in-process kbox run printed.
type result struct {
	stdout, stderr string
	err            error
}

// kbox runs the root command in-process with stdin and args.
func kbox(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand(&out, &errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return result{stdout: out.String(), stderr: errb.String(), err: err}
}

// mustKbox is kbox that fails the test on an error.
func mustKbox(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := kbox(t, stdin, args...)
	if r.err != nil {
		t.Fatalf("kbox %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r
}

// needAPIs fails the test at once, with a clear message, when the broker
// does not advertise an API key the commands under test need.
func needAPIs(t *testing.T, addr string, keys ...int16) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("api versions: %v", err)
	}
	served := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		served[k.ApiKey] = true
	}
	var missing []string
	for _, k := range keys {
		if !served[k] {
			missing = append(missing, kmsg.NameForKey(k))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("needs %s: the broker does not advertise it in ApiVersions", strings.Join(missing, ", "))
	}
}

// decodeJSON unmarshals a command's JSON output into v.
func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
}

// jsonLines decodes one JSON object per line.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		decodeJSON(t, l, &m)
		out = append(out, m)
	}
	return out
}

// background runs kbox in a goroutine; done closes when it returns, and
// wait returns its result.
func background(t *testing.T, stdin string, args ...string) (done <-chan struct{}, wait func() result) {
	t.Helper()
	var (
		ch = make(chan struct{})
		r  result
	)
	go func() {
		defer close(ch)
		var out, errb bytes.Buffer
		root := newRootCommand(&out, &errb)
		root.SetIn(strings.NewReader(stdin))
		root.SetArgs(args)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err := root.ExecuteContext(ctx)
		r = result{stdout: out.String(), stderr: errb.String(), err: err}
	}()
	t.Cleanup(func() { <-ch })
	return ch, func() result { <-ch; return r }
}

// eventually polls fn until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		<-tick.C
	}
	t.Fatalf("not within %s: %v", d, err)
}
