package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newTopicCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
		Long: `Manage topics on any Kafka-compatible cluster (kbox or Apache Kafka).

Example:
  kbox topic list --bootstrap 127.0.0.1:9092`,
	}
	bindClientFlags(cmd, g)
	cmd.AddCommand(
		newTopicCreateCommand(g),
		newTopicListCommand(g),
		newTopicDescribeCommand(g),
		newTopicAlterCommand(g),
		newTopicDeleteCommand(g),
	)
	return cmd
}

// topicID formats a topic ID as Kafka prints it (URL-safe base64, no padding).
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// withMessage adds the broker's error message to a Kafka error code.
func withMessage(err error, msg string) error {
	if err == nil || msg == "" || strings.Contains(err.Error(), msg) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}

// isKafkaError reports whether err is the Kafka error code with this
// protocol name (kerr's errors print as "NAME: description"). cmd/kbox names
// codes instead of importing kerr, which stays inside broker/.
func isKafkaError(err error, name string) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if strings.HasPrefix(err.Error(), name+":") {
			return true
		}
	}
	return false
}

// createdTopic is the output of topic create.
type createdTopic struct {
	Topic             string            `json:"topic"`
	ID                string            `json:"id,omitempty"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs,omitempty"`
	Existed           bool              `json:"existed,omitempty"`
	DryRun            bool              `json:"dry_run,omitempty"`
}

func newTopicCreateCommand(g *globals) *cobra.Command {
	var (
		partitions          int32
		replicationFactor   int16
		configs             []string
		ifNotExists, dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Long: `Create a topic. Partitions and replication factor default to the
broker's num.partitions and default.replication.factor; --config sets a
topic config (repeatable).

Example:
  kbox topic create clicks --partitions 3 --config retention.ms=86400000 --config cleanup.policy=delete`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.printer(cmd)
			if err != nil {
				return err
			}
			cfg, err := parseConfigs("config", configs)
			if err != nil {
				return err
			}
			ctx, adm, done, err := g.admin(cmd)
			if err != nil {
				return err
			}
			defer done()
			create := adm.CreateTopics
			if dryRun {
				create = adm.ValidateCreateTopics
			}
			resps, err := create(ctx, partitions, replicationFactor, cfg, args[0])
			if err != nil {
				return fmt.Errorf("create topic %s: %w", args[0], err)
			}
			r, err := resps.On(args[0], nil)
			if err != nil {
				return fmt.Errorf("create topic %s: %w", args[0], err)
			}
			out := createdTopic{Topic: r.Topic, ID: topicID(r.ID), Partitions: r.NumPartitions,
				ReplicationFactor: r.ReplicationFactor, Configs: nonDefaultConfigs(r.Configs), DryRun: dryRun}
			if isKafkaError(r.Err, "TOPIC_ALREADY_EXISTS") && ifNotExists {
				if out, err = existingTopic(ctx, adm, args[0]); err != nil {
					return fmt.Errorf("create topic %s: it exists: %w", args[0], err)
				}
			} else if r.Err != nil {
				return fmt.Errorf("create topic %s: %w", args[0], withMessage(r.Err, r.ErrMessage))
			}
			t := table{header: []string{"TOPIC", "ID", "PARTITIONS", "REPLICATION-FACTOR", "STATUS"}}
			t.add(out.Topic, orDash(out.ID), out.Partitions, out.ReplicationFactor, createStatus(out))
			return p.print(out, t)
		},
	}
	f := cmd.Flags()
	f.Int32VarP(&partitions, "partitions", "p", -1, "number of partitions (-1: broker default)")
	f.Int16VarP(&replicationFactor, "replication-factor", "r", -1, "replicas per partition (-1: broker default)")
	f.StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	f.BoolVar(&ifNotExists, "if-not-exists", false, "succeed if the topic already exists")
	f.BoolVar(&dryRun, "dry-run", false, "validate only (CreateTopics validate_only): create nothing")
	return cmd
}

// existingTopic describes a topic create --if-not-exists found.
func existingTopic(ctx context.Context, adm *kadm.Client, name string) (createdTopic, error) {
	tds, err := adm.ListTopics(ctx, name)
	if err != nil {
		return createdTopic{}, err
	}
	td := tds[name]
	if td.Err != nil {
		return createdTopic{}, td.Err
	}
	return createdTopic{Topic: name, ID: topicID(td.ID), Partitions: int32(len(td.Partitions)),
		ReplicationFactor: int16(td.Partitions.NumReplicas()), Existed: true}, nil
}

func createStatus(c createdTopic) string {
	switch {
	case c.Existed:
		return "exists"
	case c.DryRun:
		return "valid (dry run)"
	}
	return "created"
}

// nonDefaultConfigs keeps the configs a create or describe set explicitly.
func nonDefaultConfigs(cs map[string]kadm.Config) map[string]string {
	out := map[string]string{}
	for k, c := range cs {
		if c.Source.String() == "DYNAMIC_TOPIC_CONFIG" {
			out[k] = c.MaybeValue()
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// listedTopic is one row of topic list.
type listedTopic struct {
	Topic             string `json:"topic"`
	ID                string `json:"id,omitempty"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal,omitempty"`
}

func newTopicListCommand(g *globals) *cobra.Command {
	var internal bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Long: `List topics with their partition count and replication factor.

Example:
  kbox topic list --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, adm, p, done, err := g.adminSession(cmd)
			if err != nil {
				return err
			}
			defer done()
			list := adm.ListTopics
			if internal {
				list = adm.ListTopicsWithInternal
			}
			tds, err := list(ctx)
			if err != nil {
				return fmt.Errorf("list topics: %w", err)
			}
			out := []listedTopic{}
			t := table{header: []string{"TOPIC", "PARTITIONS", "REPLICATION-FACTOR", "ID"}}
			for _, td := range tds.Sorted() {
				if td.Err != nil {
					return fmt.Errorf("list topics: %s: %w", td.Topic, td.Err)
				}
				lt := listedTopic{Topic: td.Topic, ID: topicID(td.ID), Partitions: len(td.Partitions),
					ReplicationFactor: td.Partitions.NumReplicas(), Internal: td.IsInternal}
				out = append(out, lt)
				t.add(lt.Topic, lt.Partitions, lt.ReplicationFactor, orDash(lt.ID))
			}
			return p.print(out, t)
		},
	}
	cmd.Flags().BoolVar(&internal, "internal", false, "include internal topics")
	return cmd
}

// describedTopic is the output of topic describe.
type describedTopic struct {
	Topic      string               `json:"topic"`
	ID         string               `json:"id,omitempty"`
	Internal   bool                 `json:"internal"`
	Partitions []describedPartition `json:"partitions"`
	Configs    []describedConfig    `json:"configs"`
}

type describedPartition struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	StartOffset int64   `json:"start_offset"`
	EndOffset   int64   `json:"end_offset"`
}

type describedConfig struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive,omitempty"`
}

func newTopicDescribeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a topic's partitions, offsets and configs",
		Long: `Show a topic's ID, each partition's leader, replicas, in-sync replicas,
log start and end offsets, and every topic config with its source.

Example:
  kbox topic describe clicks`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, adm, p, done, err := g.adminSession(cmd)
			if err != nil {
				return err
			}
			defer done()
			d, err := describeTopic(ctx, adm, args[0])
			if err != nil {
				return fmt.Errorf("describe topic %s: %w", args[0], err)
			}
			return p.print(d, d.tables()...)
		},
	}
}

func describeTopic(ctx context.Context, adm *kadm.Client, name string) (describedTopic, error) {
	tds, err := adm.ListTopics(ctx, name)
	if err != nil {
		return describedTopic{}, err
	}
	td, ok := tds[name]
	if !ok {
		return describedTopic{}, errors.New("not in the metadata answer")
	}
	if td.Err != nil {
		return describedTopic{}, td.Err
	}
	starts, err := adm.ListStartOffsets(ctx, name)
	if err != nil {
		return describedTopic{}, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, name)
	if err != nil {
		return describedTopic{}, fmt.Errorf("list end offsets: %w", err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return describedTopic{}, fmt.Errorf("describe configs: %w", err)
	}
	rc, err := rcs.On(name, nil)
	if err == nil {
		err = withMessage(rc.Err, rc.ErrMessage)
	}
	if err != nil {
		return describedTopic{}, fmt.Errorf("describe configs: %w", err)
	}
	d := describedTopic{Topic: name, ID: topicID(td.ID), Internal: td.IsInternal, Partitions: []describedPartition{}}
	for _, pd := range td.Partitions.Sorted() {
		dp := describedPartition{Partition: pd.Partition, Leader: pd.Leader, LeaderEpoch: pd.LeaderEpoch,
			Replicas: nonNil(pd.Replicas), ISR: nonNil(pd.ISR), StartOffset: -1, EndOffset: -1}
		if o, ok := starts.Lookup(name, pd.Partition); ok && o.Err == nil {
			dp.StartOffset = o.Offset
		}
		if o, ok := ends.Lookup(name, pd.Partition); ok && o.Err == nil {
			dp.EndOffset = o.Offset
		}
		d.Partitions = append(d.Partitions, dp)
	}
	d.Configs = []describedConfig{}
	for _, c := range rc.Configs {
		d.Configs = append(d.Configs, describedConfig{Name: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive})
	}
	sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
	return d, nil
}

func nonNil(v []int32) []int32 {
	if v == nil {
		return []int32{}
	}
	return v
}

func (d describedTopic) tables() []table {
	rf := 0
	if len(d.Partitions) > 0 {
		rf = len(d.Partitions[0].Replicas)
	}
	summary := table{}
	summary.add("NAME", d.Topic)
	summary.add("ID", orDash(d.ID))
	summary.add("PARTITIONS", len(d.Partitions))
	summary.add("REPLICATION-FACTOR", rf)
	if d.Internal {
		summary.add("INTERNAL", true)
	}
	parts := table{title: "PARTITIONS", header: []string{"PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"}}
	for _, p := range d.Partitions {
		parts.add(p.Partition, p.Leader, p.LeaderEpoch, int32s(p.Replicas), int32s(p.ISR), p.StartOffset, p.EndOffset)
	}
	cfgs := table{title: "CONFIGS", header: []string{"NAME", "VALUE", "SOURCE"}}
	for _, c := range d.Configs {
		v := "<null>"
		switch {
		case c.Sensitive:
			v = "<sensitive>"
		case c.Value != nil:
			v = *c.Value
		}
		cfgs.add(c.Name, v, c.Source)
	}
	return []table{summary, parts, cfgs}
}

// alteredTopic is the output of topic alter.
type alteredTopic struct {
	Topic      string            `json:"topic"`
	Partitions int32             `json:"partitions,omitempty"`
	Set        map[string]string `json:"set,omitempty"`
	Deleted    []string          `json:"deleted,omitempty"`
	alters     []kadm.AlterConfig
}

func newTopicAlterCommand(g *globals) *cobra.Command {
	var (
		partitions int32
		set, del   []string
	)
	cmd := &cobra.Command{
		Use:   "alter NAME",
		Short: "Change a topic's configs or grow its partitions",
		Long: `Change a topic: --config key=value sets a config, --delete-config key
returns it to its default (IncrementalAlterConfigs; other configs are left
alone), and --partitions N grows the topic to N partitions (CreatePartitions;
partitions never shrink). Partitions change first.

Example:
  kbox topic alter clicks --config retention.ms=3600000 --delete-config cleanup.policy --partitions 6`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newTopicAlter(args[0], partitions, set, del)
			if err != nil {
				return err
			}
			ctx, adm, p, done, err := g.adminSession(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := a.apply(ctx, adm); err != nil {
				return fmt.Errorf("alter topic %s: %w", a.Topic, err)
			}
			return p.print(a, a.table())
		},
	}
	f := cmd.Flags()
	f.Int32VarP(&partitions, "partitions", "p", 0, "grow the topic to this many partitions")
	f.StringArrayVarP(&set, "config", "c", nil, "set a topic config key=value (repeatable)")
	f.StringArrayVar(&del, "delete-config", nil, "return a topic config to its default (repeatable)")
	return cmd
}

// newTopicAlter validates the alter flags into one change.
func newTopicAlter(topic string, partitions int32, set, del []string) (alteredTopic, error) {
	a := alteredTopic{Topic: topic, Partitions: partitions, Deleted: del}
	if partitions == 0 && len(set) == 0 && len(del) == 0 {
		return a, errors.New("nothing to alter: give --config, --delete-config or --partitions")
	}
	for _, s := range set {
		k, v, err := parseKV("config", s)
		if err != nil {
			return a, err
		}
		if a.Set == nil {
			a.Set = map[string]string{}
		}
		a.Set[k] = v
		a.alters = append(a.alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
	}
	for _, k := range del {
		a.alters = append(a.alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	return a, nil
}

// apply grows the partitions, then alters the configs incrementally.
func (a alteredTopic) apply(ctx context.Context, adm *kadm.Client) error {
	if a.Partitions != 0 {
		rs, err := adm.UpdatePartitions(ctx, int(a.Partitions), a.Topic)
		if err == nil {
			var r kadm.CreatePartitionsResponse
			if r, err = rs.On(a.Topic, nil); err == nil {
				err = withMessage(r.Err, r.ErrMessage)
			}
		}
		if err != nil {
			return fmt.Errorf("partitions to %d: %w", a.Partitions, err)
		}
	}
	if len(a.alters) == 0 {
		return nil
	}
	rs, err := adm.AlterTopicConfigs(ctx, a.alters, a.Topic)
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = rs.On(a.Topic, nil); err == nil {
			err = withMessage(r.Err, r.ErrMessage)
		}
	}
	if err != nil {
		return fmt.Errorf("configs: %w", err)
	}
	return nil
}

func (a alteredTopic) table() table {
	t := table{header: []string{"TOPIC", "CHANGE", "VALUE"}}
	if a.Partitions != 0 {
		t.add(a.Topic, "partitions", a.Partitions)
	}
	for _, c := range a.alters {
		if c.Op == kadm.SetConfig {
			t.add(a.Topic, "set "+c.Name, *c.Value)
		} else {
			t.add(a.Topic, "delete "+c.Name, "(default)")
		}
	}
	return t
}

// deletedTopic is one row of topic delete.
type deletedTopic struct {
	Topic string `json:"topic"`
	Error string `json:"error,omitempty"`
}

func newTopicDeleteCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete topics",
		Long: `Delete one or more topics and all their records.

Example:
  kbox topic delete clicks`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, adm, p, done, err := g.adminSession(cmd)
			if err != nil {
				return err
			}
			defer done()
			rs, err := adm.DeleteTopics(ctx, args...)
			if err != nil {
				return fmt.Errorf("delete topics: %w", err)
			}
			out := []deletedTopic{}
			t := table{header: []string{"TOPIC", "STATUS"}}
			var firstErr error
			for _, name := range args {
				r, err := rs.On(name, nil)
				if err == nil {
					err = withMessage(r.Err, r.ErrMessage)
				}
				d := deletedTopic{Topic: name}
				status := "deleted"
				if err != nil {
					d.Error, status = err.Error(), err.Error()
					if firstErr == nil {
						firstErr = fmt.Errorf("delete topic %s: %w", name, err)
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
