package broker

// Broker configs as DescribeConfigs shows them and AlterConfigs and
// IncrementalAlterConfigs change them.
//
// kbox reports two kinds. The broker synonyms of topic configs (Kafka's
// ServerTopicConfigSynonyms: log.retention.ms for retention.ms,
// message.max.bytes for max.message.bytes, ...) are dynamic, as in Kafka:
// their cluster-wide default (the BROKER resource with the empty name) is
// replicated state (storage.AlterDefaults) that every topic not setting the
// topic config follows, in retention, compaction and appends alike. Their
// secondary synonyms (log.retention.hours, log.roll.hours, ...) and kbox's
// own settings (broker.id, num.partitions, ...) come from the start-up
// flags and are read-only.
//
// As in Apache Kafka 4.1, a cluster starts with a cluster-level
// min.insync.replicas of 1 (source DYNAMIC_DEFAULT_BROKER_CONFIG): Kafka
// writes it when it bootstraps a cluster with Eligible Leader Replicas,
// enabled by default since 4.1 (KIP-966), and then refuses to remove it or
// to set it per broker. kbox follows those rules.
//
// Deviation: kbox has no per-broker dynamic configs. Every node holds
// every partition and applies the same replicated log, so a log config set
// on one broker would have no meaning of its own; setting one on a broker
// ID is INVALID_CONFIG, naming the cluster-wide default instead (deleting
// one is a no-op, as nothing is set). Unknown keys are refused like
// read-only ones, where Kafka stores them.

import (
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

// brokerSynonym is the broker config that sets a topic config's default,
// the first of its ServerTopicConfigSynonyms (Kafka 4.1), or "" for topic
// configs without one (remote storage, replication throttles).
func brokerSynonym(topicConfig string) string {
	switch topicConfig {
	case "segment.bytes", "retention.bytes", "index.interval.bytes", "cleanup.policy",
		"preallocate", "message.timestamp.type", "message.timestamp.before.max.ms",
		"message.timestamp.after.max.ms", "local.retention.ms", "local.retention.bytes":
		return "log." + topicConfig
	case "delete.retention.ms", "min.compaction.lag.ms", "max.compaction.lag.ms":
		return "log.cleaner." + topicConfig
	case "min.insync.replicas", "compression.type", "unclean.leader.election.enable",
		"compression.gzip.level", "compression.lz4.level", "compression.zstd.level":
		return topicConfig
	case "segment.ms":
		return "log.roll.ms"
	case "segment.jitter.ms":
		return "log.roll.jitter.ms"
	case "segment.index.bytes":
		return "log.index.size.max.bytes"
	case "flush.messages":
		return "log.flush.interval.messages"
	case "flush.ms":
		return "log.flush.interval.ms"
	case "retention.ms":
		return "log.retention.ms"
	case "max.message.bytes":
		return "message.max.bytes"
	case "file.delete.delay.ms":
		return "log.segment.delete.delay.ms"
	case "min.cleanable.dirty.ratio":
		return "log.cleaner.min.cleanable.ratio"
	}
	return ""
}

// synonymGroup lists the broker configs that give a broker config its
// value, highest priority first (Kafka's
// DynamicBrokerConfig.brokerConfigSynonyms): log.retention.ms falls back
// to log.retention.minutes, then log.retention.hours, and so on.
func synonymGroup(name string) []string {
	switch name {
	case "log.retention.ms", "log.retention.minutes", "log.retention.hours":
		return []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}
	case "log.roll.ms", "log.roll.hours":
		return []string{"log.roll.ms", "log.roll.hours"}
	case "log.roll.jitter.ms", "log.roll.jitter.hours":
		return []string{"log.roll.jitter.ms", "log.roll.jitter.hours"}
	case "log.flush.interval.ms":
		return []string{"log.flush.interval.ms", "log.flush.scheduler.interval.ms"}
	}
	return []string{name}
}

// brokerConfig is one broker config kbox reports.
type brokerConfig struct {
	name string
	// static is the value kbox was started with, reported as
	// STATIC_BROKER_CONFIG, where that is not Kafka's default; else nil.
	static *string
	// kafkaDefault is Apache Kafka's default; nil where it has none.
	kafkaDefault *string
	// topic names the topic config this broker config is the cluster-wide
	// default of: such a config is dynamic. "" for read-only ones.
	topic string
	typ   storage.ConfigType
	doc   string
}

// setting is a read-only broker config kbox runs with value.
func setting(name, value string, kafkaDefault *string, typ storage.ConfigType, doc string) brokerConfig {
	c := brokerConfig{name: name, kafkaDefault: kafkaDefault, typ: typ, doc: doc}
	if kafkaDefault == nil || *kafkaDefault != value {
		c.static = &value
	}
	return c
}

func strPtr(s string) *string { return &s }

// brokerConfigs lists the broker configs DescribeConfigs reports for this
// node, sorted by name: the synonyms of every topic config, then the
// broker's own settings.
func (b *Broker) brokerConfigs() []brokerConfig {
	var out []brokerConfig
	for _, tc := range storage.TopicConfigs() {
		syn := brokerSynonym(tc.Name)
		if syn == "" {
			continue
		}
		c := brokerConfig{name: syn, topic: tc.Name, typ: tc.Type,
			doc: "The cluster-wide default of the topic config " + tc.Name + ": " + tc.Doc + "."}
		// A synonym that others back up has no default of its own in
		// Kafka: log.retention.ms is unset, log.retention.hours=168 holds.
		if len(synonymGroup(syn)) == 1 {
			c.kafkaDefault = strPtr(tc.Default)
		}
		out = append(out, c)
	}
	const fallback = "Read-only; the default of "
	out = append(out,
		brokerConfig{name: "log.retention.minutes", typ: storage.ConfigInt, doc: fallback + "retention.ms when log.retention.ms is unset (unset)."},
		brokerConfig{name: "log.retention.hours", kafkaDefault: strPtr("168"), typ: storage.ConfigInt, doc: fallback + "retention.ms when log.retention.ms and log.retention.minutes are unset."},
		brokerConfig{name: "log.roll.hours", kafkaDefault: strPtr("168"), typ: storage.ConfigInt, doc: fallback + "segment.ms when log.roll.ms is unset."},
		brokerConfig{name: "log.roll.jitter.hours", kafkaDefault: strPtr("0"), typ: storage.ConfigInt, doc: fallback + "segment.jitter.ms when log.roll.jitter.ms is unset."},
		brokerConfig{name: "log.flush.scheduler.interval.ms", kafkaDefault: strPtr("9223372036854775807"), typ: storage.ConfigLong, doc: fallback + "flush.ms when log.flush.interval.ms is unset."},
	)
	id := strconv.Itoa(int(b.cfg.NodeID))
	rf := strconv.Itoa(len(b.brokers()))
	out = append(out,
		setting("broker.id", id, strPtr("-1"), storage.ConfigInt, "This broker's ID (the kbox node ID)."),
		setting("node.id", id, nil, storage.ConfigInt, "This node's ID (the kbox node ID)."),
		setting("process.roles", "broker,controller", nil, storage.ConfigList, "Every kbox node is a broker and a Raft voter."),
		setting("advertised.listeners", "PLAINTEXT://"+b.cfg.Advertised, nil, storage.ConfigString, "The address clients are told to connect to."),
		setting("num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions)), strPtr("1"), storage.ConfigInt, "The partition count of topics created with -1 partitions or auto-created."),
		setting("default.replication.factor", rf, strPtr("1"), storage.ConfigInt, "Every partition is replicated to every node of the kbox cluster."),
		setting("auto.create.topics.enable", strconv.FormatBool(b.cfg.AutoCreateTopics), strPtr("true"), storage.ConfigBoolean, "Whether Metadata and Produce create unknown topics."),
		setting("delete.topic.enable", "true", strPtr("true"), storage.ConfigBoolean, "Topics can be deleted."),
		setting("socket.request.max.bytes", strconv.Itoa(int(b.cfg.MaxRequestBytes)), strPtr("104857600"), storage.ConfigInt, "The largest request frame accepted; larger ones close the connection."),
	)
	if b.store != nil {
		dir := filepath.Dir(b.store.Path())
		out = append(out, setting("log.dirs", dir, nil, storage.ConfigString, "The directory holding this node's state store (every partition's log)."))
	}
	slices.SortFunc(out, func(x, y brokerConfig) int { return strings.Compare(x.name, y.name) })
	return out
}

// brokerView is the broker configs with the cluster-wide defaults in
// force, from which values, sources and synonyms are worked out.
type brokerView struct {
	cfgs    []brokerConfig
	byName  map[string]brokerConfig
	dynamic map[string]string // cluster-wide defaults by broker config name
}

// viewBrokerConfigs builds the view for the cluster-wide topic config
// defaults (by topic config name).
func (b *Broker) viewBrokerConfigs(defaults map[string]string) brokerView {
	v := brokerView{cfgs: b.brokerConfigs(), byName: map[string]brokerConfig{}, dynamic: map[string]string{}}
	for _, c := range v.cfgs {
		v.byName[c.name] = c
	}
	for topic, value := range defaults {
		if syn := brokerSynonym(topic); syn != "" {
			v.dynamic[syn] = value
		}
	}
	return v
}

// of returns a broker config's synonyms as Kafka's ConfigHelper builds
// them: every config of its group that has a value, level by level
// (dynamic cluster default, static, default), then dropping those before
// the config itself, so that an unset log.retention.ms has none.
func (v brokerView) of(name string) []configSynonym {
	group := synonymGroup(name)
	var out []configSynonym
	for _, n := range group {
		if val, ok := v.dynamic[n]; ok {
			out = append(out, configSynonym{n, val, kmsg.ConfigSourceDynamicDefaultBrokerConfig})
		}
	}
	for _, n := range group {
		if c := v.byName[n]; c.static != nil {
			out = append(out, configSynonym{n, *c.static, kmsg.ConfigSourceStaticBrokerConfig})
		}
	}
	for _, n := range group {
		if c := v.byName[n]; c.kafkaDefault != nil {
			out = append(out, configSynonym{n, *c.kafkaDefault, kmsg.ConfigSourceDefaultConfig})
		}
	}
	for len(out) > 0 && out[0].name != name {
		out = out[1:]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// brokerEntries renders this node's broker configs for DescribeConfigs:
// each takes the value and source of its first synonym, and is null with
// source DEFAULT_CONFIG without one.
func (b *Broker) brokerEntries() []configEntry {
	v := b.viewBrokerConfigs(b.clusterDefaults())
	out := make([]configEntry, 0, len(v.cfgs))
	for _, c := range v.cfgs {
		e := configEntry{name: c.name, readOnly: c.topic == "", typ: c.typ, doc: c.doc, synonyms: v.of(c.name)}
		e.null, e.source = true, kmsg.ConfigSourceDefaultConfig
		if len(e.synonyms) > 0 {
			e.value, e.null, e.source = e.synonyms[0].value, false, e.synonyms[0].source
		}
		out = append(out, e)
	}
	return out
}

// clusterDefaultEntries renders the BROKER resource with the empty name:
// the cluster-wide defaults that are set, each its own only synonym.
func (b *Broker) clusterDefaultEntries() []configEntry {
	v := b.viewBrokerConfigs(b.clusterDefaults())
	var out []configEntry
	for _, c := range v.cfgs {
		if val, ok := v.dynamic[c.name]; ok {
			src := kmsg.ConfigSourceDynamicDefaultBrokerConfig
			out = append(out, configEntry{name: c.name, value: val, source: src, typ: c.typ, doc: c.doc,
				synonyms: []configSynonym{{c.name, val, src}}})
		}
	}
	return out
}

// brokerResource checks the name of a BROKER config resource: "" is the
// cluster-wide default, otherwise it must be this node's ID.
func (b *Broker) brokerResource(name string, describe bool) error {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		if describe {
			return newAPIErr(kerr.InvalidRequest.Code, "broker id must be an integer, but it is: %s", name)
		}
		return newAPIErr(kerr.InvalidRequest.Code, "Node id must be an integer, but it is: %s", name)
	}
	if int32(id) != b.cfg.NodeID {
		if describe {
			return newAPIErr(kerr.InvalidRequest.Code, "Unexpected broker id, expected %d or empty string, but received %s", b.cfg.NodeID, name)
		}
		return newAPIErr(kerr.InvalidRequest.Code, "Unexpected broker id, expected %d, but received %s", b.cfg.NodeID, name)
	}
	return nil
}

// ELR's rules on min.insync.replicas (KIP-966), with Kafka's messages.
const minISR = "min.insync.replicas"

func errRemoveClusterMinISR() error {
	return newAPIErr(kerr.InvalidConfig.Code, "Cluster-level min.insync.replicas cannot be removed while ELR is enabled.")
}

func errBrokerMinISR() error {
	return newAPIErr(kerr.InvalidConfig.Code, "Broker-level min.insync.replicas cannot be altered while ELR is enabled.")
}

// planBrokerAlter checks a change of a BROKER resource's configs, in
// Kafka's order (request shape, then which keys are dynamic, then values,
// then ELR's rules), and returns the command that makes it, nil when
// nothing changes. cluster is the empty resource name; replace is
// AlterConfigs, whose configs become exactly those given.
func (b *Broker) planBrokerAlter(cluster bool, ops []configOp, replace bool) (storage.Command, error) {
	v := b.viewBrokerConfigs(b.clusterDefaults())
	if err := checkBrokerOps(v, ops); err != nil {
		return nil, err
	}
	next := map[string]string{}
	if !replace {
		for k, val := range v.dynamic {
			next[k] = val
		}
	}
	for _, o := range ops {
		c := v.byName[o.name]
		switch o.op {
		case kmsg.IncrementalAlterConfigOpSet:
			next[o.name] = *o.value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, o.name)
			continue
		default:
			base, ok := next[o.name]
			if !ok {
				tc, _ := storage.LookupTopicConfig(c.topic)
				base = tc.Default
			}
			next[o.name] = editList(base, *o.value, o.op == kmsg.IncrementalAlterConfigOpAppend)
		}
		if err := storage.ValidateConfig(c.topic, next[o.name]); err != nil {
			reason := strings.TrimPrefix(err.Error(), storage.ErrInvalidConfig.Error()+": "+c.topic+": ")
			return nil, newAPIErr(kerr.InvalidRequest.Code, "Invalid value %s for configuration %s: %s", next[o.name], o.name, reason)
		}
	}
	if !cluster {
		return nil, perBrokerAlter(ops)
	}
	if _, ok := next[minISR]; !ok {
		return nil, errRemoveClusterMinISR()
	}
	return defaultsCommand(v, next, replace), nil
}

// checkBrokerOps checks the shape of the operations and that every key
// set is dynamic; deleting any key is allowed (a no-op when unset).
func checkBrokerOps(v brokerView, ops []configOp) error {
	seen := map[string]bool{}
	var fixed []string
	for _, o := range ops {
		if seen[o.name] {
			return newAPIErr(kerr.InvalidRequest.Code, "Error due to duplicate config keys")
		}
		seen[o.name] = true
		switch o.op {
		case kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
		case kmsg.IncrementalAlterConfigOpDelete:
			continue
		default:
			return newAPIErr(kerr.InvalidRequest.Code, "Unknown operations type %d", int8(o.op))
		}
		if o.value == nil {
			return newAPIErr(kerr.InvalidRequest.Code, "Null value not supported for : %s", o.name)
		}
		if v.byName[o.name].topic == "" {
			fixed = append(fixed, o.name)
		}
	}
	if len(fixed) > 0 {
		return newAPIErr(kerr.InvalidRequest.Code, "Cannot update these configs dynamically: Set(%s)", strings.Join(fixed, ", "))
	}
	for _, o := range ops {
		if (o.op == kmsg.IncrementalAlterConfigOpAppend || o.op == kmsg.IncrementalAlterConfigOpSubtract) && v.byName[o.name].typ != storage.ConfigList {
			return newAPIErr(kerr.InvalidConfig.Code, "Config value %s is not allowed for config key: %s", strings.ToLower(o.op.String()), o.name)
		}
	}
	return nil
}

// perBrokerAlter answers a valid change of a broker ID's configs: kbox has
// none of its own, so only deletes (of nothing) succeed.
func perBrokerAlter(ops []configOp) error {
	for _, o := range ops {
		switch {
		case o.name == minISR:
			return errBrokerMinISR()
		case o.op != kmsg.IncrementalAlterConfigOpDelete:
			return newAPIErr(kerr.InvalidConfig.Code, "Broker-level %s cannot be altered: kbox applies log configs to every node alike, alter the cluster-wide default (the empty broker name) instead", o.name)
		}
	}
	return nil
}

// defaultsCommand turns the wanted cluster-wide defaults (by broker config
// name) into the AlterDefaults that makes them, by topic config name: all
// of them for replace, else only the changes; nil when nothing changes.
func defaultsCommand(v brokerView, next map[string]string, replace bool) storage.Command {
	byTopic := func(m map[string]string) map[string]string {
		out := make(map[string]string, len(m))
		for k, val := range m {
			out[v.byName[k].topic] = val
		}
		return out
	}
	if replace {
		return storage.AlterDefaults{Replace: true, Set: byTopic(next)}
	}
	set, del := configDiff(byTopic(v.dynamic), byTopic(next))
	if set == nil && del == nil {
		return nil
	}
	return storage.AlterDefaults{Set: set, Delete: del}
}
