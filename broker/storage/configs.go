package storage

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ConfigType is the Kafka config type of a topic config (DescribeConfigs
// v3+ reports it).
type ConfigType int8

// Config types, numbered as in Kafka's DescribeConfigs.
const (
	ConfigBoolean  ConfigType = 1
	ConfigString   ConfigType = 2
	ConfigInt      ConfigType = 3
	ConfigShort    ConfigType = 4
	ConfigLong     ConfigType = 5
	ConfigDouble   ConfigType = 6
	ConfigList     ConfigType = 7
	ConfigClass    ConfigType = 8
	ConfigPassword ConfigType = 9
)

// TopicConfig describes one topic config key: its Kafka name, default,
// type and validation. It is the one list behind validation, defaults and
// DescribeConfigs.
type TopicConfig struct {
	Name    string
	Default string
	Type    ConfigType
	Doc     string
	// Check validates a value; nil accepts anything of the type.
	Check func(string) error
}

func parseLong(v string) (int64, error) { return strconv.ParseInt(strings.TrimSpace(v), 10, 64) }

func atLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := parseLong(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		if n < min {
			return fmt.Errorf("%d is below the minimum %d", n, min)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, part := range strings.Split(v, ",") {
			ok := false
			for _, want := range vals {
				if strings.TrimSpace(part) == want {
					ok = true
				}
			}
			if !ok {
				return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
			}
		}
		return nil
	}
}

// listOf accepts a comma-separated list of vals, or the empty list.
func listOf(vals ...string) func(string) error {
	one := oneOf(vals...)
	return func(v string) error {
		if strings.TrimSpace(v) == "" {
			return nil
		}
		return one(v)
	}
}

func intIn(min, max int64) func(string) error {
	return func(v string) error {
		n, err := parseLong(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		if n < min || n > max {
			return fmt.Errorf("%d is outside [%d, %d]", n, min, max)
		}
		return nil
	}
}

func ratio(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return fmt.Errorf("%q is not a number in [0, 1]", v)
	}
	return nil
}

func boolean(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("%q is not true or false", v)
	}
	return nil
}

// TopicConfigs are the topic-level configs kbox knows, with Apache Kafka
// 4.x's defaults. Keys outside this list are rejected.
var topicConfigs = []TopicConfig{
	{Name: "cleanup.policy", Default: "delete", Type: ConfigList, Doc: "delete (retention by time and size), compact (keep the latest value per key), both, or empty (keep everything)", Check: listOf("delete", "compact")},
	{Name: "compression.gzip.level", Default: "-1", Type: ConfigInt, Doc: "gzip level when compression.type is gzip; batches are stored as sent", Check: intIn(-1, 9)},
	{Name: "compression.lz4.level", Default: "9", Type: ConfigInt, Doc: "lz4 level when compression.type is lz4; batches are stored as sent", Check: intIn(1, 17)},
	{Name: "compression.type", Default: "producer", Type: ConfigString, Doc: "codec of stored batches; kbox stores batches as the producer sent them", Check: oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
	{Name: "compression.zstd.level", Default: "3", Type: ConfigInt, Doc: "zstd level when compression.type is zstd; batches are stored as sent", Check: intIn(-131072, 22)},
	{Name: "delete.retention.ms", Default: "86400000", Type: ConfigLong, Doc: "how long tombstones survive compaction", Check: atLeast(0)},
	{Name: "file.delete.delay.ms", Default: "60000", Type: ConfigLong, Doc: "accepted for compatibility; kbox deletes at once", Check: atLeast(0)},
	{Name: "flush.messages", Default: "9223372036854775807", Type: ConfigLong, Doc: "accepted for compatibility; durability follows kbox up --fsync", Check: atLeast(1)},
	{Name: "flush.ms", Default: "9223372036854775807", Type: ConfigLong, Doc: "accepted for compatibility; durability follows kbox up --fsync", Check: atLeast(0)},
	{Name: "follower.replication.throttled.replicas", Default: "", Type: ConfigList, Doc: "accepted for compatibility; kbox replicates through Raft"},
	{Name: "index.interval.bytes", Default: "4096", Type: ConfigInt, Doc: "accepted for compatibility; kbox indexes every batch", Check: atLeast(0)},
	{Name: "leader.replication.throttled.replicas", Default: "", Type: ConfigList, Doc: "accepted for compatibility; kbox replicates through Raft"},
	{Name: "local.retention.bytes", Default: "-2", Type: ConfigLong, Doc: "tiered storage only; kbox has no remote tier", Check: atLeast(-2)},
	{Name: "local.retention.ms", Default: "-2", Type: ConfigLong, Doc: "tiered storage only; kbox has no remote tier", Check: atLeast(-2)},
	{Name: "max.compaction.lag.ms", Default: "9223372036854775807", Type: ConfigLong, Doc: "longest a record stays uncompacted", Check: atLeast(1)},
	{Name: "max.message.bytes", Default: "1048588", Type: ConfigInt, Doc: "largest record batch accepted", Check: atLeast(0)},
	{Name: "message.timestamp.after.max.ms", Default: "3600000", Type: ConfigLong, Doc: "how far in the future a CreateTime timestamp may be", Check: atLeast(0)},
	{Name: "message.timestamp.before.max.ms", Default: "9223372036854775807", Type: ConfigLong, Doc: "how far in the past a CreateTime timestamp may be", Check: atLeast(0)},
	{Name: "message.timestamp.type", Default: "CreateTime", Type: ConfigString, Doc: "CreateTime (the producer's) or LogAppendTime (the broker's)", Check: oneOf("CreateTime", "LogAppendTime")},
	{Name: "min.cleanable.dirty.ratio", Default: "0.5", Type: ConfigDouble, Doc: "share of uncompacted log that triggers compaction", Check: ratio},
	{Name: "min.compaction.lag.ms", Default: "0", Type: ConfigLong, Doc: "shortest time a record stays uncompacted", Check: atLeast(0)},
	{Name: "min.insync.replicas", Default: "1", Type: ConfigInt, Doc: "accepted; every acknowledged write is committed by a Raft quorum", Check: atLeast(1)},
	{Name: "preallocate", Default: "false", Type: ConfigBoolean, Doc: "accepted for compatibility", Check: boolean},
	{Name: "remote.log.copy.disable", Default: "false", Type: ConfigBoolean, Doc: "tiered storage only; kbox has no remote tier", Check: boolean},
	{Name: "remote.log.delete.on.disable", Default: "false", Type: ConfigBoolean, Doc: "tiered storage only; kbox has no remote tier", Check: boolean},
	{Name: "remote.storage.enable", Default: "false", Type: ConfigBoolean, Doc: "tiered storage only; kbox has no remote tier", Check: boolean},
	{Name: "retention.bytes", Default: "-1", Type: ConfigLong, Doc: "per-partition size limit, -1 for none", Check: atLeast(-1)},
	{Name: "retention.ms", Default: "604800000", Type: ConfigLong, Doc: "how long records are kept, -1 for ever", Check: atLeast(-1)},
	{Name: "segment.bytes", Default: "1073741824", Type: ConfigInt, Doc: "accepted for compatibility; kbox has no segment files", Check: atLeast(14)},
	{Name: "segment.index.bytes", Default: "10485760", Type: ConfigInt, Doc: "accepted for compatibility; kbox has no segment files", Check: atLeast(4)},
	{Name: "segment.jitter.ms", Default: "0", Type: ConfigLong, Doc: "accepted for compatibility; kbox has no segment files", Check: atLeast(0)},
	{Name: "segment.ms", Default: "604800000", Type: ConfigLong, Doc: "accepted for compatibility; kbox has no segment files", Check: atLeast(1)},
	{Name: "unclean.leader.election.enable", Default: "false", Type: ConfigBoolean, Doc: "accepted; Raft never elects an unclean leader", Check: boolean},
}

// TopicConfigs returns the known topic configs, sorted by name.
func TopicConfigs() []TopicConfig {
	out := append([]TopicConfig(nil), topicConfigs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupTopicConfig finds a topic config by name.
func LookupTopicConfig(name string) (TopicConfig, bool) {
	for _, c := range topicConfigs {
		if c.Name == name {
			return c, true
		}
	}
	return TopicConfig{}, false
}

// ValidateConfig checks one topic config key and value.
func ValidateConfig(name, value string) error {
	c, ok := LookupTopicConfig(name)
	if !ok {
		return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, name)
	}
	if c.Check != nil {
		if err := c.Check(value); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, name, err)
		}
	}
	return nil
}

// ValidateTopicName applies Kafka's topic name rules.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is reserved", ErrInvalidTopic, name)
	case len(name) > 249:
		return fmt.Errorf("%w: %d characters, at most 249", ErrInvalidTopic, len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: %q contains %q; only ASCII letters, digits, '.', '_' and '-' are allowed", ErrInvalidTopic, name, r)
		}
	}
	return nil
}

// effective returns the value of a config for a topic: set on it, else
// the cluster-wide default ([AlterDefaults]), else Kafka's default.
func effective(set, defaults map[string]string, name string) string {
	if v, ok := set[name]; ok {
		return v
	}
	if v, ok := defaults[name]; ok {
		return v
	}
	c, _ := LookupTopicConfig(name)
	return c.Default
}

func effectiveLong(set, defaults map[string]string, name string) int64 {
	n, err := parseLong(effective(set, defaults, name))
	if err != nil {
		c, _ := LookupTopicConfig(name)
		n, _ = parseLong(c.Default)
	}
	return n
}
