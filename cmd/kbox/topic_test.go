package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/cluster"
)

// needTopicAdmin checks that the broker serves the topic admin APIs.
func needTopicAdmin(t *testing.T, addr string) {
	t.Helper()
	needAPIs(t, addr, kmsg.CreateTopics.Int16(), kmsg.DeleteTopics.Int16(), kmsg.CreatePartitions.Int16(),
		kmsg.DescribeConfigs.Int16(), kmsg.IncrementalAlterConfigs.Int16())
}

// describeJSON runs topic describe --format json.
func describeJSON(t *testing.T, addr, topic string) describedTopic {
	t.Helper()
	var d describedTopic
	decodeJSON(t, mustKbox(t, "", "topic", "describe", topic, "--bootstrap", addr, "--format", "json").stdout, &d)
	return d
}

func configOf(d describedTopic, name string) (value, source string) {
	for _, c := range d.Configs {
		if c.Name == name {
			if c.Value == nil {
				return "<null>", c.Source
			}
			return *c.Value, c.Source
		}
	}
	return "", ""
}

func TestTopicCreateListDescribe(t *testing.T) {
	addr := startNode(t)
	needTopicAdmin(t, addr)
	var c createdTopic
	decodeJSON(t, mustKbox(t, "", "topic", "create", "orders", "--bootstrap", addr, "--partitions", "2",
		"--replication-factor", "1", "--config", "retention.ms=1000", "--format", "json").stdout, &c)
	if c.Topic != "orders" || c.Partitions != 2 || c.ReplicationFactor != 1 || len(c.ID) != 22 || c.Configs["retention.ms"] != "1000" {
		t.Fatalf("created %+v", c)
	}

	r := kbox(t, "", "topic", "create", "orders", "--bootstrap", addr)
	if r.err == nil || !strings.Contains(r.err.Error(), "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("second create: %v", r.err)
	}
	r = mustKbox(t, "", "topic", "create", "orders", "--bootstrap", addr, "--if-not-exists")
	if !containsRow(r.stdout, "orders", c.ID, "2", "1", "exists") {
		t.Fatalf("--if-not-exists:\n%s", r.stdout)
	}
	r = mustKbox(t, "", "topic", "create", "dry", "--bootstrap", addr, "--dry-run", "-p", "5")
	if !strings.Contains(r.stdout, "valid (dry run)") {
		t.Fatalf("--dry-run:\n%s", r.stdout)
	}
	if r := kbox(t, "", "topic", "create", "bad", "--bootstrap", addr, "--config", "retention.ms=soon"); r.err == nil ||
		!strings.Contains(r.err.Error(), "INVALID_CONFIG") {
		t.Fatalf("invalid config: %v", r.err)
	}

	r = mustKbox(t, "", "topic", "list", "--bootstrap", addr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "TOPIC PARTITIONS REPLICATION-FACTOR ID" ||
		strings.Join(strings.Fields(lines[1]), " ") != "orders 2 1 "+c.ID {
		t.Fatalf("topic list (dry run and failed creates must not appear):\n%s", r.stdout)
	}

	produceN(t, addr, "orders", 1, 3)
	d := describeJSON(t, addr, "orders")
	if d.Topic != "orders" || d.ID != c.ID || len(d.Partitions) != 2 {
		t.Fatalf("describe %+v", d)
	}
	for i, p := range d.Partitions {
		wantEnd := int64(0)
		if i == 1 {
			wantEnd = 3
		}
		if p.Partition != int32(i) || p.Leader != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 || p.StartOffset != 0 || p.EndOffset != wantEnd {
			t.Errorf("partition %d: %+v, want leader 1, one replica in ISR, offsets 0..%d", i, p, wantEnd)
		}
	}
	if v, src := configOf(d, "retention.ms"); v != "1000" || src != "DYNAMIC_TOPIC_CONFIG" {
		t.Errorf("retention.ms = %s from %s", v, src)
	}
	if v, src := configOf(d, "cleanup.policy"); v != "delete" || src != "DEFAULT_CONFIG" {
		t.Errorf("cleanup.policy = %s from %s", v, src)
	}

	out := mustKbox(t, "", "topic", "describe", "orders", "--bootstrap", addr).stdout
	for _, want := range []string{"NAME                orders\n", "PARTITIONS          2\n", "REPLICATION-FACTOR  1\n",
		"PARTITION  LEADER  EPOCH  REPLICAS  ISR  LOG-START-OFFSET  HIGH-WATERMARK\n", "\nCONFIGS\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe table lacks %q:\n%s", want, out)
		}
	}
	if !containsRow(out, "1", "1", "*", "1", "1", "0", "3") || !containsRow(out, "retention.ms", "1000", "DYNAMIC_TOPIC_CONFIG") {
		t.Errorf("describe table rows:\n%s", out)
	}

	if r := kbox(t, "", "topic", "describe", "nosuch", "--bootstrap", addr); r.err == nil || !strings.Contains(r.err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("describe unknown topic: %v", r.err)
	}
}

// containsRow reports whether some line of a table has exactly these
// cells ("*" matches any cell).
func containsRow(out string, cells ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != len(cells) {
			continue
		}
		ok := true
		for i := range f {
			ok = ok && (cells[i] == "*" || f[i] == cells[i])
		}
		if ok {
			return true
		}
	}
	return false
}

func TestTopicAlter(t *testing.T) {
	addr := startNode(t)
	needTopicAdmin(t, addr)
	mustKbox(t, "", "topic", "create", "alt", "--bootstrap", addr, "-p", "1")
	alter := func(args ...string) result {
		return kbox(t, "", append([]string{"topic", "alter", "alt", "--bootstrap", addr}, args...)...)
	}
	if r := alter("--config", "retention.ms=5000"); r.err != nil || !containsRow(r.stdout, "alt", "set", "retention.ms", "5000") {
		t.Fatalf("set: %v\n%s", r.err, r.stdout)
	}
	// Incremental: setting another key leaves retention.ms alone.
	if r := alter("--config", "cleanup.policy=compact", "--format", "json"); r.err != nil ||
		strings.Join(strings.Fields(r.stdout), "") != `{"topic":"alt","set":{"cleanup.policy":"compact"}}` {
		t.Fatalf("set json: %v\n%s", r.err, r.stdout)
	}
	d := describeJSON(t, addr, "alt")
	if v, _ := configOf(d, "retention.ms"); v != "5000" {
		t.Fatalf("retention.ms after another incremental set = %s", v)
	}
	if v, src := configOf(d, "cleanup.policy"); v != "compact" || src != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("cleanup.policy = %s from %s", v, src)
	}
	if r := alter("--delete-config", "retention.ms", "--partitions", "4"); r.err != nil {
		t.Fatal(r.err)
	}
	d = describeJSON(t, addr, "alt")
	if v, src := configOf(d, "retention.ms"); v != "604800000" || src != "DEFAULT_CONFIG" {
		t.Errorf("retention.ms after delete = %s from %s, want the default", v, src)
	}
	if len(d.Partitions) != 4 {
		t.Errorf("partitions after --partitions 4: %d", len(d.Partitions))
	}
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--partitions", "2"}, "INVALID_PARTITIONS"},
		{nil, "nothing to alter"},
		{[]string{"--config", "retention.ms"}, "want key=value"},
		{[]string{"--config", "retention.ms=-7"}, "INVALID_CONFIG"},
	} {
		if r := alter(tc.args...); r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
			t.Errorf("alter %s: %v, want %s", strings.Join(tc.args, " "), r.err, tc.wantErr)
		}
	}
}

func TestTopicDelete(t *testing.T) {
	addr := startNode(t)
	needTopicAdmin(t, addr)
	for _, n := range []string{"d1", "d2", "keep"} {
		mustKbox(t, "", "topic", "create", n, "--bootstrap", addr)
	}
	r := kbox(t, "", "topic", "delete", "d1", "nosuch", "d2", "--bootstrap", addr)
	if r.err == nil || !strings.Contains(r.err.Error(), "delete topic nosuch: UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("delete with a missing topic: %v", r.err)
	}
	if !containsRow(r.stdout, "d1", "deleted") || !containsRow(r.stdout, "d2", "deleted") || !strings.Contains(r.stdout, "nosuch  UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("delete output:\n%s", r.stdout)
	}
	var listed []listedTopic
	decodeJSON(t, mustKbox(t, "", "topic", "list", "--bootstrap", addr, "--format", "json").stdout, &listed)
	if len(listed) != 1 || listed[0].Topic != "keep" {
		t.Fatalf("after delete: %+v", listed)
	}
	var deleted []deletedTopic
	decodeJSON(t, mustKbox(t, "", "topic", "delete", "keep", "--bootstrap", addr, "--format", "json").stdout, &deleted)
	if len(deleted) != 1 || deleted[0] != (deletedTopic{Topic: "keep"}) {
		t.Fatalf("delete json: %+v", deleted)
	}
}

// TestClientCommandsOnThreeNodes: with a bootstrap list of three nodes,
// a replicated topic shows three replicas in sync, and records go round.
func TestClientCommandsOnThreeNodes(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.FastTimeouts())
	addr := c.Bootstrap()
	if strings.Count(addr, ",") != 2 {
		t.Fatalf("bootstrap %q: want three addresses", addr)
	}
	needTopicAdmin(t, addr)
	mustKbox(t, "", "topic", "create", "replicated", "--bootstrap", addr, "-p", "2", "-r", "3")
	eventually(t, 30*time.Second, func() error {
		// Every node learns of the topic when it applies the commit, a
		// heartbeat or so after the leader (as Kafka brokers learn it from
		// the controller): the node asked may not know it yet.
		r := kbox(t, "", "topic", "describe", "replicated", "--bootstrap", addr, "--format", "json")
		if r.err != nil {
			return r.err
		}
		var d describedTopic
		decodeJSON(t, r.stdout, &d)
		for _, p := range d.Partitions {
			if len(p.Replicas) != 3 || len(p.ISR) != 3 {
				return fmt.Errorf("partition %d: replicas %v ISR %v", p.Partition, p.Replicas, p.ISR)
			}
		}
		return nil
	})
	mustKbox(t, "a=1\nb=2\n", "produce", "replicated", "--bootstrap", addr, "-K", "=", "-p", "1")
	if r := mustKbox(t, "", "consume", "replicated", "--bootstrap", addr, "--from", "beginning", "-n", "2", "--print", "key,value"); r.stdout != "a\t1\nb\t2\n" {
		t.Fatalf("consumed %q", r.stdout)
	}
}
