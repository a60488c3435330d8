package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kbox-dev/kbox/cluster"
)

// TestClusterCommands drives kbox cluster status, rolling-restart, remove,
// add and wait against an in-process 3-node cluster.
func TestClusterCommands(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.FastTimeouts())
	http := c.Node(0).HTTPAddr()

	var cs cluster.ClusterStatus
	r := mustKbox(t, "", "cluster", "status", "--http-addr", http, "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &cs); err != nil {
		t.Fatalf("status json: %v\n%s", err, r.stdout)
	}
	if len(cs.Members) != 3 || cs.Leader < 1 {
		t.Fatalf("status: %+v", cs)
	}
	table := mustKbox(t, "", "cluster", "status", "--http-addr", http).stdout
	for _, want := range []string{"NODE", "APPLIED", "LAG", "SNAPSHOT", c.Node(2).KafkaAddr()} {
		if !strings.Contains(table, want) {
			t.Errorf("status table lacks %q:\n%s", want, table)
		}
	}

	before := map[int32]int64{}
	for _, m := range cs.Members {
		before[m.ID] = m.UptimeMs
	}
	start := time.Now()
	r = mustKbox(t, "", "cluster", "rolling-restart", "--http-addr", http, "--timeout", "30s")
	if !strings.Contains(r.stdout, "rolling restart done") {
		t.Fatalf("rolling-restart:\n%s", r.stdout)
	}
	for i := 0; i < 3; i++ {
		n := c.Node(i)
		if n == nil {
			t.Fatalf("node %d is not running after the rolling restart", i+1)
		}
		if up := time.Since(start); time.Duration(selfUptime(n))*time.Millisecond > up {
			t.Errorf("node %d has run %dms, longer than the rolling restart (%v): it did not restart", i+1, selfUptime(n), up)
		}
	}
	t.Logf("rolling restart of 3 nodes took %v:\n%s", time.Since(start), r.stdout)

	mustKbox(t, "", "cluster", "remove", "3", "--http-addr", http)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for c.Node(0).Status().Members[len(c.Node(0).Status().Members)-1].ID == 3 {
		if ctx.Err() != nil {
			t.Fatal("node 3 is still a member after kbox cluster remove 3")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := kbox(t, "", "cluster", "remove", "3", "--http-addr", http); r.err == nil || !strings.Contains(r.err.Error(), "not a member") {
		t.Errorf("removing a non-member: %v", r.err)
	}

	// A node whose --join target is unreachable waits; kbox cluster add
	// lets it in.
	waiting, err := cluster.StartNode(cluster.Config{
		NodeID: 7, DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "off",
		RaftAddr: "127.0.0.1:0", Join: "127.0.0.1:1", FastTimeouts: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	mustKbox(t, "", "cluster", "add", "7", waiting.RaftAddr(), "--http-addr", http)
	if err := waiting.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(r.stdout, "3 members in sync") {
		if ctx.Err() != nil {
			t.Fatalf("wait never saw node 7 in sync: %s", r.stdout)
		}
		r = mustKbox(t, "", "cluster", "wait", "--http-addr", http, "--timeout", "20s")
	}
	if err := c.Node(0).RemoveMember(ctx, 7); err != nil {
		t.Fatal(err)
	}
}

// TestClusterCommandErrors checks the answers to bad input.
func TestClusterCommandErrors(t *testing.T) {
	for _, args := range [][]string{
		{"cluster", "remove", "x", "--http-addr", "127.0.0.1:1"},
		{"cluster", "add", "0", "127.0.0.1:9093", "--http-addr", "127.0.0.1:1"},
		{"cluster", "status", "--http-addr", "127.0.0.1:1"},
		{"cluster", "status", "--format", "yaml", "--http-addr", "127.0.0.1:1"},
	} {
		if r := kbox(t, "", args...); r.err == nil {
			t.Errorf("kbox %s succeeded", strings.Join(args, " "))
		}
	}
}

// TestClusterFlagsEnv checks the cluster flag table: KBOX_ + the name.
func TestClusterFlagsEnv(t *testing.T) {
	for _, s := range clusterFlags {
		if s.Env != envName(s.Name) {
			t.Errorf("--%s: env %s, want %s", s.Name, s.Env, envName(s.Name))
		}
	}
}

func selfUptime(n *cluster.Node) int64 {
	for _, m := range n.Status().Members {
		if m.ID == n.ID() {
			return m.UptimeMs
		}
	}
	return -1
}

// TestClusterHelpExamplesRun runs the help example of kbox cluster and of
// each of its verbs against an in-process 3-node cluster, with the
// examples' addresses swapped for the cluster's.
func TestClusterHelpExamplesRun(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.FastTimeouts())
	waiting, err := cluster.StartNode(cluster.Config{
		NodeID: 4, DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "off",
		RaftAddr: "127.0.0.1:0", Join: "127.0.0.1:1", FastTimeouts: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	swap := strings.NewReplacer("127.0.0.1:18080", c.Node(0).HTTPAddr(), "127.0.0.1:49093", waiting.RaftAddr())
	root := newRootCommand(io.Discard, io.Discard)
	order := []string{"", "status", "wait", "rolling-restart", "remove", "add"}
	for _, verb := range order {
		cmd, _, err := root.Find(strings.Fields("cluster " + verb))
		if err != nil {
			t.Fatal(err)
		}
		_, args := example(t, cmd)
		for i := range args {
			args[i] = swap.Replace(args[i])
		}
		r := mustKbox(t, "", args...)
		t.Logf("$ kbox %s\n%s", strings.Join(args, " "), r.stdout)
	}
	noun, _, _ := root.Find([]string{"cluster"})
	for _, sub := range noun.Commands() {
		if !slices.Contains(order, sub.Name()) {
			t.Errorf("kbox cluster %s: its example does not run in this test", sub.Name())
		}
	}
}
