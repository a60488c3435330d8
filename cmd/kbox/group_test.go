package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// needGroups checks that the broker serves consumer groups.
func needGroups(t *testing.T, addr string) {
	t.Helper()
	needAPIs(t, addr, kmsg.FindCoordinator.Int16(), kmsg.JoinGroup.Int16(), kmsg.SyncGroup.Int16(),
		kmsg.Heartbeat.Int16(), kmsg.LeaveGroup.Int16(), kmsg.OffsetCommit.Int16(), kmsg.OffsetFetch.Int16(),
		kmsg.ListGroups.Int16(), kmsg.DescribeGroups.Int16(), kmsg.DeleteGroups.Int16())
}

func groupJSON(t *testing.T, addr, group string) describedGroup {
	t.Helper()
	var d describedGroup
	decodeJSON(t, mustKbox(t, "", "group", "describe", group, "--bootstrap", addr, "--format", "json").stdout, &d)
	return d
}

func committedAt(d describedGroup, topic string, p int32) int64 {
	for _, o := range d.Offsets {
		if o.Topic == topic && o.Partition == p {
			return o.Committed
		}
	}
	return -2
}

// TestGroupDescribeMembersAndLag: an empty group shows its commits and
// lag; a live franz-go member shows up with its assignment, and a reset is
// refused while it is there.
func TestGroupDescribeMembersAndLag(t *testing.T) {
	addr := startNode(t)
	needGroups(t, addr)
	produceN(t, addr, "events", 0, 5)
	mustKbox(t, "", "consume", "events", "--bootstrap", addr, "--group", "g1", "--from", "beginning", "--count", "2")

	d := groupJSON(t, addr, "g1")
	if d.Group != "g1" || d.State != "Empty" || len(d.Members) != 0 || d.TotalLag != 3 {
		t.Fatalf("describe g1: %+v", d)
	}
	if c := committedAt(d, "events", 0); c != 2 {
		t.Fatalf("committed at events[0] = %d, want 2", c)
	}
	out := mustKbox(t, "", "group", "describe", "g1", "--bootstrap", addr).stdout
	if !containsRow(out, "STATE", "Empty") || !containsRow(out, "TOTAL-LAG", "3") || !containsRow(out, "events", "0", "2", "5", "3", "-") {
		t.Fatalf("describe table:\n%s", out)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("g2"), kgo.ConsumeTopics("events"),
		kgo.ClientID("live-member"), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stopPolling := make(chan struct{})
	polled := make(chan struct{})
	go func() { // the member must poll to join and stay
		defer close(polled)
		for {
			select {
			case <-stopPolling:
				return
			default:
			}
			cl.PollFetches(t.Context())
		}
	}()
	defer func() { close(stopPolling); cl.Close(); <-polled }()
	eventually(t, 30*time.Second, func() error {
		r := kbox(t, "", "group", "describe", "g2", "--bootstrap", addr, "--format", "json")
		if r.err != nil {
			return r.err
		}
		d = describedGroup{}
		decodeJSON(t, r.stdout, &d)
		if d.State != "Stable" || len(d.Members) != 1 || len(d.Members[0].Assignments) != 1 {
			return fmt.Errorf("g2 is %s with members %+v", d.State, d.Members)
		}
		return nil
	})
	m := d.Members[0]
	if m.ClientID != "live-member" || m.Assignments[0].Topic != "events" || fmt.Sprint(m.Assignments[0].Partitions) != "[0 1 2]" {
		t.Fatalf("member %+v", m)
	}
	out = mustKbox(t, "", "group", "describe", "g2", "--bootstrap", addr).stdout
	if !containsRow(out, m.MemberID, "-", "live-member", m.Host, "events[0,1,2]") || !containsRow(out, "PROTOCOL", "consumer", d.Protocol) {
		t.Fatalf("describe table of a live group:\n%s", out)
	}
	r := kbox(t, "", "group", "reset-offsets", "g2", "--bootstrap", addr, "--topic", "events", "--to-earliest", "--execute")
	if r.err == nil || !strings.Contains(r.err.Error(), "offsets can only be reset when it has none") {
		t.Fatalf("reset of a live group: %v", r.err)
	}
	if r := kbox(t, "", "group", "describe", "nosuch", "--bootstrap", addr); r.err == nil {
		t.Fatalf("describe of an unknown group succeeded:\n%s", r.stdout)
	}
}

// TestGroupResetOffsets covers every target, dry run and execute.
func TestGroupResetOffsets(t *testing.T) {
	addr := startNode(t)
	needGroups(t, addr)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("reset"), kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "v%d", i), Timestamp: t0.Add(time.Duration(i) * time.Second)})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	mustKbox(t, "", "consume", "reset", "--bootstrap", addr, "--group", "r", "--from", "beginning", "--count", "4")

	reset := func(args ...string) result {
		return kbox(t, "", append([]string{"group", "reset-offsets", "r", "--bootstrap", addr, "--topic", "reset"}, args...)...)
	}
	r := reset("--to-earliest")
	if r.err != nil || !containsRow(r.stdout, "r", "reset", "0", "4", "0") || !strings.Contains(r.stderr, "dry run") {
		t.Fatalf("dry run: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if c := committedAt(groupJSON(t, addr, "r"), "reset", 0); c != 4 {
		t.Fatalf("a dry run moved the offset to %d", c)
	}
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{[]string{"--to-offset", "7"}, 7},
		{[]string{"--to-offset", "100"}, 10}, // clamped to the log end
		{[]string{"--to-earliest"}, 0},
		{[]string{"--to-latest"}, 10},
		{[]string{"--to-datetime", "2030-01-01T00:00:00Z"}, 10}, // after every record: the end
		{[]string{"--to-datetime", t0.Add(2500 * time.Millisecond).Format(time.RFC3339Nano)}, 3},
		{[]string{"--to-datetime", t0.Add(3 * time.Second).Format(time.RFC3339)}, 3},
	} {
		var res resetResult
		r := reset(append(tc.args, "--execute", "--format", "json")...)
		if r.err != nil {
			t.Fatalf("%s: %v", strings.Join(tc.args, " "), r.err)
		}
		decodeJSON(t, r.stdout, &res)
		if !res.Executed || len(res.Offsets) != testPartitions || res.Offsets[0].New != tc.want {
			t.Fatalf("%s: %+v", strings.Join(tc.args, " "), res)
		}
		if c := committedAt(groupJSON(t, addr, "r"), "reset", 0); c != tc.want {
			t.Fatalf("%s: committed %d, want %d", strings.Join(tc.args, " "), c, tc.want)
		}
	}
	if r := mustKbox(t, "", "consume", "reset", "--bootstrap", addr, "--group", "r", "--count", "1", "--timeout", "10s", "--print", "offset,value"); r.stdout != "3\tv3\n" {
		t.Fatalf("consume after the reset to 3: %q", r.stdout)
	}
	if r := kbox(t, "", "group", "reset-offsets", "r", "--bootstrap", addr, "--all-topics", "--to-earliest", "--execute"); r.err != nil ||
		!containsRow(r.stdout, "r", "reset", "0", "4", "0") {
		t.Fatalf("--all-topics: %v\n%s", r.err, r.stdout)
	}
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--to-earliest", "--to-latest"}, "none of the others can be"},
		{[]string{"--execute"}, "at least one of the flags"},
		{[]string{"--to-earliest", "--dry-run", "--execute"}, "none of the others can be"},
		{[]string{"--to-datetime", "yesterday"}, "--to-datetime"},
	} {
		if r := reset(tc.args...); r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
			t.Errorf("%s: %v, want %q", strings.Join(tc.args, " "), r.err, tc.wantErr)
		}
	}
	if r := kbox(t, "", "group", "reset-offsets", "r", "--bootstrap", addr, "--to-latest"); r.err == nil || !strings.Contains(r.err.Error(), "--topic") {
		t.Errorf("no topic: %v", r.err)
	}
}

func TestGroupListAndDelete(t *testing.T) {
	addr := startNode(t)
	needGroups(t, addr)
	produceN(t, addr, "gl", 0, 1)
	for _, g := range []string{"ga", "gb"} {
		mustKbox(t, "", "consume", "gl", "--bootstrap", addr, "--group", g, "--from", "beginning", "--count", "1")
	}
	list := func() []listedGroup {
		var ls []listedGroup
		decodeJSON(t, mustKbox(t, "", "group", "list", "--bootstrap", addr, "--format", "json").stdout, &ls)
		return ls
	}
	if ls := list(); len(ls) != 2 || ls[0].Group != "ga" || ls[1].Group != "gb" || ls[0].State != "Empty" || ls[0].Coordinator != 1 {
		t.Fatalf("group list: %+v", ls)
	}
	if out := mustKbox(t, "", "group", "list", "--bootstrap", addr).stdout; !containsRow(out, "GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR") || !strings.Contains(out, "\nga ") {
		t.Fatalf("group list table:\n%s", out)
	}
	r := kbox(t, "", "group", "delete", "ga", "nosuch", "--bootstrap", addr)
	if r.err == nil || !strings.Contains(r.err.Error(), "delete group nosuch") || !containsRow(r.stdout, "ga", "deleted") {
		t.Fatalf("delete: %v\n%s", r.err, r.stdout)
	}
	if ls := list(); len(ls) != 1 || ls[0].Group != "gb" {
		t.Fatalf("after delete: %+v", ls)
	}
	// A deleted group starts over: --from applies again.
	if r := mustKbox(t, "", "consume", "gl", "--bootstrap", addr, "--group", "ga", "--from", "beginning", "--count", "1", "--print", "offset"); r.stdout != "0\n" {
		t.Fatalf("consume in a re-created group: %q", r.stdout)
	}
}
