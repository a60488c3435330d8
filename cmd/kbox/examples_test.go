package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// exampleOrder is the order in which the client commands' help examples
// run against one node: together they are a session (create a topic,
// produce, consume in a group, inspect, reset, clean up).
var exampleOrder = []string{
	"kbox topic create", "kbox topic", "kbox topic list", "kbox topic describe",
	"kbox produce", "kbox consume", "kbox topic alter",
	"kbox group", "kbox group list", "kbox group describe", "kbox group reset-offsets", "kbox group delete",
	"kbox topic delete",
}

// example returns the example that ends cmd's long help, split into the
// stdin a leading "printf '...' |" gives and the args after "kbox".
func example(t *testing.T, cmd *cobra.Command) (stdin string, args []string) {
	t.Helper()
	_, ex, ok := strings.Cut(cmd.Long, "\nExample:\n  ")
	if !ok {
		t.Fatalf("%s: no example", cmd.CommandPath())
	}
	if rest, ok := strings.CutPrefix(ex, "printf '"); ok {
		lit, pipe, ok := strings.Cut(rest, "' | ")
		if !ok {
			t.Fatalf("%s: cannot read the printf in %q", cmd.CommandPath(), ex)
		}
		stdin, ex = strings.ReplaceAll(lit, `\n`, "\n"), pipe
	}
	fields := strings.Fields(ex)
	if len(fields) == 0 || fields[0] != "kbox" || strings.ContainsAny(ex, `"'|;&$`) {
		t.Fatalf("%s: example %q is not a plain kbox command", cmd.CommandPath(), ex)
	}
	return stdin, fields[1:]
}

// TestLongHelpExamplesRun runs every client command's help example, in
// exampleOrder, against a real node (with --bootstrap pointed at it).
func TestLongHelpExamplesRun(t *testing.T) {
	addr := startNode(t)
	needAPIs(t, addr, kmsg.CreateTopics.Int16(), kmsg.DeleteTopics.Int16(), kmsg.CreatePartitions.Int16(),
		kmsg.DescribeConfigs.Int16(), kmsg.IncrementalAlterConfigs.Int16(), kmsg.FindCoordinator.Int16(),
		kmsg.JoinGroup.Int16(), kmsg.SyncGroup.Int16(), kmsg.Heartbeat.Int16(), kmsg.LeaveGroup.Int16(),
		kmsg.OffsetCommit.Int16(), kmsg.OffsetFetch.Int16(), kmsg.ListGroups.Int16(), kmsg.DescribeGroups.Int16(),
		kmsg.DeleteGroups.Int16())
	root := newRootCommand(io.Discard, io.Discard)
	cmds := map[string]*cobra.Command{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "cluster" {
			return // needs a cluster's HTTP API, not --bootstrap: see TestClusterHelpExamplesRun
		}
		if c.Name() != "up" && c.Name() != "version" && c.Name() != "help" && c.Name() != "completion" && c != root {
			cmds[c.CommandPath()] = c
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	for _, path := range exampleOrder {
		c, ok := cmds[path]
		if !ok {
			t.Fatalf("no command %q", path)
		}
		delete(cmds, path)
		stdin, args := example(t, c)
		r := kbox(t, stdin, append(args, "--bootstrap", addr)...)
		if r.err != nil {
			t.Fatalf("example of %s: kbox %s: %v\nstdout:\n%s\nstderr:\n%s", path, strings.Join(args, " "), r.err, r.stdout, r.stderr)
		}
		t.Logf("$ kbox %s\n%s%s", strings.Join(args, " "), r.stdout, r.stderr)
	}
	for path := range cmds {
		t.Errorf("%s: its example is not in exampleOrder", path)
	}
}
