package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newGroupCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe, reset and delete consumer groups",
		Long: `Inspect and manage consumer groups on any Kafka-compatible cluster.

Example:
  kbox group list --bootstrap 127.0.0.1:9092`,
	}
	bindClientFlags(cmd, g)
	cmd.AddCommand(
		newGroupListCommand(g),
		newGroupDescribeCommand(g),
		newGroupResetOffsetsCommand(g),
		newGroupDeleteCommand(g),
	)
	return cmd
}

// listedGroup is one row of group list.
type listedGroup struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
}

func newGroupListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups",
		Long: `List consumer groups with their state and protocol type.

Example:
  kbox group list --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, adm, p, done, err := g.adminSession(cmd)
			if err != nil {
				return err
			}
			defer done()
			ls, err := adm.ListGroups(ctx)
			if err != nil {
				return fmt.Errorf("list groups: %w", err)
			}
			out := []listedGroup{}
			t := table{header: []string{"GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR"}}
			for _, l := range ls.Sorted() {
				lg := listedGroup{Group: l.Group, State: l.State, ProtocolType: l.ProtocolType, Coordinator: l.Coordinator}
				out = append(out, lg)
				t.add(lg.Group, orDash(lg.State), orDash(lg.ProtocolType), lg.Coordinator)
			}
			return p.print(out, t)
		},
	}
}

// describedGroup is the output of group describe.
type describedGroup struct {
	Group        string            `json:"group"`
	State        string            `json:"state"`
	ProtocolType string            `json:"protocol_type"`
	Protocol     string            `json:"protocol"`
	Coordinator  int32             `json:"coordinator"`
	Members      []groupMember     `json:"members"`
	Offsets      []groupOffsetLag  `json:"offsets"`
	TotalLag     int64             `json:"total_lag"`
	assigned     map[string]string // member ID -> "topic[0,1]" for the table
}

type groupMember struct {
	MemberID    string            `json:"member_id"`
	InstanceID  string            `json:"instance_id,omitempty"`
	ClientID    string            `json:"client_id"`
	Host        string            `json:"host"`
	Assignments []groupAssignment `json:"assignments"`
}

type groupAssignment struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// groupOffsetLag is one partition's committed offset and lag; Committed
// is -1 when the group has no commit there.
type groupOffsetLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	LogEnd    int64  `json:"log_end"`
	Lag       int64  `json:"lag"`
	MemberID  string `json:"member_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

func newGroupDescribeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's members, assignments, committed offsets and lag",
		Long: `Show a consumer group's state, its members and the partitions assigned to
each, and per partition the committed offset, the log end offset and the lag.

Example:
  kbox group describe clicks-reader`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, adm, p, done, err := g.adminSession(cmd)
			if err != nil {
				return err
			}
			defer done()
			d, err := describeGroup(ctx, adm, args[0])
			if err != nil {
				return fmt.Errorf("describe group %s: %w", args[0], err)
			}
			return p.print(d, d.tables()...)
		},
	}
}

func describeGroup(ctx context.Context, adm *kadm.Client, group string) (describedGroup, error) {
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return describedGroup{}, err
	}
	l, ok := lags[group]
	if !ok {
		return describedGroup{}, errors.New("not in the answer")
	}
	if l.DescribeErr != nil {
		return describedGroup{}, l.DescribeErr
	}
	if l.FetchErr != nil {
		return describedGroup{}, fmt.Errorf("fetch offsets: %w", l.FetchErr)
	}
	if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
		return describedGroup{}, errors.New("group does not exist")
	}
	d := describedGroup{Group: group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Coordinator: l.Coordinator.NodeID, Members: []groupMember{}, Offsets: []groupOffsetLag{}, assigned: map[string]string{}}
	for _, m := range l.Members {
		gm := groupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assignments: []groupAssignment{}}
		if m.InstanceID != nil {
			gm.InstanceID = *m.InstanceID
		}
		var cells []string
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				ps := append([]int32(nil), t.Partitions...)
				sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
				gm.Assignments = append(gm.Assignments, groupAssignment{Topic: t.Topic, Partitions: ps})
				cells = append(cells, fmt.Sprintf("%s[%s]", t.Topic, int32s(ps)))
			}
		}
		d.assigned[m.MemberID] = strings.Join(cells, " ")
		d.Members = append(d.Members, gm)
	}
	for _, ml := range l.Lag.Sorted() {
		o := groupOffsetLag{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, LogEnd: ml.End.Offset, Lag: ml.Lag}
		if ml.Member != nil {
			o.MemberID = ml.Member.MemberID
		}
		if ml.Err != nil {
			o.Error = ml.Err.Error()
		}
		if ml.Lag > 0 {
			d.TotalLag += ml.Lag
		}
		d.Offsets = append(d.Offsets, o)
	}
	return d, nil
}

func (d describedGroup) tables() []table {
	summary := table{}
	summary.add("GROUP", d.Group)
	summary.add("STATE", d.State)
	summary.add("PROTOCOL", orDash(strings.TrimSpace(d.ProtocolType+" "+d.Protocol)))
	summary.add("COORDINATOR", d.Coordinator)
	summary.add("MEMBERS", len(d.Members))
	summary.add("TOTAL-LAG", d.TotalLag)
	members := table{title: "MEMBERS", header: []string{"MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENTS"}}
	for _, m := range d.Members {
		members.add(m.MemberID, orDash(m.InstanceID), m.ClientID, m.Host, orDash(d.assigned[m.MemberID]))
	}
	offsets := table{title: "OFFSETS", header: []string{"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID"}}
	for _, o := range d.Offsets {
		cur, lag := fmt.Sprint(o.Committed), fmt.Sprint(o.Lag)
		if o.Committed < 0 {
			cur = "-"
		}
		if o.Error != "" {
			lag = "error: " + o.Error
		}
		offsets.add(o.Topic, o.Partition, cur, o.LogEnd, lag, orDash(o.MemberID))
	}
	return []table{summary, members, offsets}
}

// resetTarget is where reset-offsets moves a group's offsets.
type resetTarget struct {
	earliest, latest bool
	offset           int64 // -1: not given
	datetime         string
	since            int64 // datetime in Unix milliseconds
}

// resetRow is one partition of reset-offsets' plan.
type resetRow struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   int64  `json:"current"`
	New       int64  `json:"new"`
}

// resetResult is the output of reset-offsets.
type resetResult struct {
	Executed bool       `json:"executed"`
	Offsets  []resetRow `json:"offsets"`
}

func newGroupResetOffsetsCommand(g *globals) *cobra.Command {
	var (
		topics                  []string
		allTopics, dry, execute bool
		to                      = resetTarget{offset: -1}
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP",
		Short: "Move a group's committed offsets (dry run unless --execute)",
		Long: `Plan, and with --execute commit, new offsets for GROUP on every partition
of each --topic (or, with --all-topics, of each topic it has commits on).
The group must have no active members. --to-offset is clamped to each
partition's log start and end, as Kafka's tool does; --to-datetime picks the
first record at or after the time (the log end if there is none).

Without --execute nothing changes (--dry-run is the default).

Example:
  kbox group reset-offsets clicks-reader --topic clicks --to-earliest --execute`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(topics) == 0 && !allTopics {
				return errors.New("give --topic (repeatable) or --all-topics")
			}
			ctx, adm, p, done, err := g.adminSession(cmd)
			if err != nil {
				return err
			}
			defer done()
			rows, err := planReset(ctx, adm, args[0], topics, allTopics, to)
			if err != nil {
				return fmt.Errorf("reset offsets of %s: %w", args[0], err)
			}
			if execute {
				if err := commitReset(ctx, adm, args[0], rows); err != nil {
					return fmt.Errorf("reset offsets of %s: %w", args[0], err)
				}
			} else {
				fmt.Fprintln(cmd.ErrOrStderr(), "dry run: nothing committed; add --execute to commit these offsets")
			}
			t := table{header: []string{"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"}}
			for _, r := range rows {
				cur := fmt.Sprint(r.Current)
				if r.Current < 0 {
					cur = "-"
				}
				t.add(r.Group, r.Topic, r.Partition, cur, r.New)
			}
			return p.print(resetResult{Executed: execute, Offsets: rows}, t)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&topics, "topic", nil, "topic whose partitions to reset (repeatable)")
	f.BoolVar(&allTopics, "all-topics", false, "reset every topic the group has committed offsets on")
	f.BoolVar(&to.earliest, "to-earliest", false, "reset to each partition's log start")
	f.BoolVar(&to.latest, "to-latest", false, "reset to each partition's log end")
	f.Int64Var(&to.offset, "to-offset", -1, "reset to this offset (clamped to the log)")
	f.StringVar(&to.datetime, "to-datetime", "", "reset to the first record at or after this RFC 3339 time")
	f.BoolVar(&dry, "dry-run", false, "show the plan only (the default)")
	f.BoolVar(&execute, "execute", false, "commit the new offsets")
	cmd.MarkFlagsMutuallyExclusive("to-earliest", "to-latest", "to-offset", "to-datetime")
	cmd.MarkFlagsOneRequired("to-earliest", "to-latest", "to-offset", "to-datetime")
	cmd.MarkFlagsMutuallyExclusive("dry-run", "execute")
	cmd.MarkFlagsMutuallyExclusive("topic", "all-topics")
	return cmd
}

// planReset computes each partition's new offset without changing anything.
func planReset(ctx context.Context, adm *kadm.Client, group string, topics []string, all bool, to resetTarget) ([]resetRow, error) {
	if to.datetime != "" {
		t, err := time.Parse(time.RFC3339Nano, to.datetime)
		if err != nil {
			return nil, fmt.Errorf("--to-datetime: %w", err)
		}
		to.since = t.UnixMilli()
	}
	if err := checkInactive(ctx, adm, group); err != nil {
		return nil, err
	}
	in, err := loadResetInputs(ctx, adm, group, topics, all, to)
	if err != nil {
		return nil, err
	}
	return to.plan(group, in)
}

// checkInactive refuses a group that has members: their commits would
// overwrite the reset, as Kafka's tool warns.
func checkInactive(ctx context.Context, adm *kadm.Client, group string) error {
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group: %w", err)
	}
	d, ok := dg[group]
	if !ok {
		return nil
	}
	if d.Err != nil {
		return fmt.Errorf("describe group: %w", withMessage(d.Err, d.ErrMessage))
	}
	if len(d.Members) > 0 || (d.State != "Empty" && d.State != "Dead") {
		return fmt.Errorf("group is %s with %d members: offsets can only be reset when it has none (stop its consumers first)", d.State, len(d.Members))
	}
	return nil
}

// resetInputs are the offsets a reset plan is computed from.
type resetInputs struct {
	committed           kadm.OffsetResponses
	topics              kadm.TopicDetails
	starts, ends, after kadm.ListedOffsets
}

func loadResetInputs(ctx context.Context, adm *kadm.Client, group string, topics []string, all bool, to resetTarget) (resetInputs, error) {
	var in resetInputs
	var err error
	if in.committed, err = adm.FetchOffsets(ctx, group); err == nil {
		err = in.committed.Error()
	}
	if err != nil {
		return in, fmt.Errorf("fetch offsets: %w", err)
	}
	if all {
		if topics = in.committed.Partitions().Topics(); len(topics) == 0 {
			return in, errors.New("--all-topics: the group has no committed offsets")
		}
	}
	if in.topics, err = adm.ListTopics(ctx, topics...); err == nil {
		err = in.topics.Error()
	}
	if err != nil {
		return in, fmt.Errorf("list topics: %w", err)
	}
	if in.starts, err = adm.ListStartOffsets(ctx, topics...); err != nil {
		return in, fmt.Errorf("list start offsets: %w", err)
	}
	if in.ends, err = adm.ListEndOffsets(ctx, topics...); err != nil {
		return in, fmt.Errorf("list end offsets: %w", err)
	}
	if to.datetime != "" {
		if in.after, err = adm.ListOffsetsAfterMilli(ctx, to.since, topics...); err != nil {
			return in, fmt.Errorf("list offsets after %s: %w", to.datetime, err)
		}
	}
	return in, nil
}

// plan picks each partition's new offset from the inputs.
func (to resetTarget) plan(group string, in resetInputs) ([]resetRow, error) {
	var rows []resetRow
	for _, td := range in.topics.Sorted() {
		for _, pd := range td.Partitions.Sorted() {
			r := resetRow{Group: group, Topic: td.Topic, Partition: pd.Partition, Current: -1}
			if c, ok := in.committed.Lookup(td.Topic, pd.Partition); ok {
				r.Current = c.At
			}
			start, sok := in.starts.Lookup(td.Topic, pd.Partition)
			end, eok := in.ends.Lookup(td.Topic, pd.Partition)
			if !sok || !eok || start.Err != nil || end.Err != nil {
				return nil, fmt.Errorf("%s[%d]: no log start or end offset", td.Topic, pd.Partition)
			}
			switch {
			case to.earliest:
				r.New = start.Offset
			case to.latest:
				r.New = end.Offset
			case to.offset >= 0:
				r.New = min(max(to.offset, start.Offset), end.Offset)
			default: // datetime: the first at or after, else the end
				r.New = end.Offset
				if a, ok := in.after.Lookup(td.Topic, pd.Partition); ok && a.Err == nil && a.Offset >= 0 {
					r.New = a.Offset
				}
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

func commitReset(ctx context.Context, adm *kadm.Client, group string, rows []resetRow) error {
	os := kadm.Offsets{}
	for _, r := range rows {
		os.AddOffset(r.Topic, r.Partition, r.New, -1)
	}
	rs, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = rs.Error()
	}
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// deletedGroup is one row of group delete.
type deletedGroup struct {
	Group string `json:"group"`
	Error string `json:"error,omitempty"`
}

func newGroupDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP...",
		Short: "Delete consumer groups and their committed offsets",
		Long: `Delete one or more consumer groups that have no active members, with
their committed offsets.

Example:
  kbox group delete clicks-reader`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, adm, p, done, err := g.adminSession(cmd)
			if err != nil {
				return err
			}
			defer done()
			rs, err := adm.DeleteGroups(ctx, args...)
			if err != nil {
				return fmt.Errorf("delete groups: %w", err)
			}
			out := []deletedGroup{}
			t := table{header: []string{"GROUP", "STATUS"}}
			var firstErr error
			for _, name := range args {
				r, err := rs.On(name, nil)
				if err == nil {
					err = r.Err
				}
				d, status := deletedGroup{Group: name}, "deleted"
				if err != nil {
					d.Error, status = err.Error(), err.Error()
					if firstErr == nil {
						firstErr = fmt.Errorf("delete group %s: %w", name, err)
					}
				}
				out = append(out, d)
				t.add(name, status)
			}
			if err := p.print(out, t); err != nil {
				return err
			}
			return firstErr
		},
	}
}
