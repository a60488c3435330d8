package broker

// Configs as the admin APIs show them: the effective topic configs with
// their source and synonyms (CreateTopics v5+, DescribeConfigs), the broker
// configs clients read, and the config arithmetic of AlterConfigs and
// IncrementalAlterConfigs.
//
// Topic configs come from storage.TopicConfigs, the one list of keys,
// defaults, types and validation. A topic config unset on the topic takes
// its default from the broker config Kafka names as its synonym
// (ServerTopicConfigSynonyms: retention.ms <- log.retention.ms,
// max.message.bytes <- message.max.bytes, ...); kbox's broker configs are
// fixed at start-up, so the broker side of that synonym is reported with
// the value the topic default has, DEFAULT_CONFIG when it equals Apache
// Kafka's default and STATIC_BROKER_CONFIG when kbox was started with
// another value.

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

// apiErr is the answer for one topic or resource: a Kafka error code and a
// message for the client.
type apiErr struct {
	code int16
	msg  string
}

func (e *apiErr) Error() string { return e.msg }

func newAPIErr(code int16, format string, args ...any) *apiErr {
	return &apiErr{code: code, msg: fmt.Sprintf(format, args...)}
}

// answer turns an error into the code and message of a response entry:
// an *apiErr as it is, anything else through errorCode.
func answer(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	if e, ok := err.(*apiErr); ok {
		return e.code, &e.msg
	}
	return errorCode(err), errorMessage(err)
}

// notController is the answer to a metadata change this node could not
// get committed because it does not lead the Raft group, so the client
// refreshes its metadata (whose ControllerID is the Raft leader) and
// retries there.
func (b *Broker) notController() *apiErr {
	return newAPIErr(kerr.NotController.Code, "node %d is not the controller (the Raft leader is %d)", b.cfg.NodeID, b.leaderID())
}

// proposeErr maps a failed proposal: losing leadership mid-request means
// NOT_CONTROLLER for metadata changes, not NOT_LEADER_OR_FOLLOWER.
func (b *Broker) proposeErr(err error) error {
	if errors.Is(err, ErrNotLeader) {
		return b.notController()
	}
	return err
}

// configEntry is one config as DescribeConfigs and CreateTopics report it.
type configEntry struct {
	name     string
	value    string
	source   kmsg.ConfigSource
	readOnly bool
	typ      storage.ConfigType
	doc      string
	synonyms []configSynonym
}

// configSynonym is one place a config's value can come from, most
// specific first.
type configSynonym struct {
	name   string
	value  string
	source kmsg.ConfigSource
}

// brokerSynonym is the broker config that sets a topic config's default,
// as Kafka's ServerTopicConfigSynonyms maps them, or "".
func brokerSynonym(topicConfig string) string {
	switch topicConfig {
	case "segment.bytes", "retention.bytes", "index.interval.bytes", "cleanup.policy",
		"preallocate", "message.timestamp.type", "message.timestamp.before.max.ms",
		"message.timestamp.after.max.ms", "message.downconversion.enable":
		return "log." + topicConfig
	case "delete.retention.ms", "min.compaction.lag.ms", "max.compaction.lag.ms":
		return "log.cleaner." + topicConfig
	case "min.insync.replicas", "compression.type", "unclean.leader.election.enable":
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

// brokerConfig is one broker config: the value kbox runs with and Apache
// Kafka's default, which decides its reported source.
type brokerConfig struct {
	name         string
	value        string
	kafkaDefault string
	typ          storage.ConfigType
	doc          string
}

func (c brokerConfig) source() kmsg.ConfigSource {
	if c.value == c.kafkaDefault {
		return kmsg.ConfigSourceDefaultConfig
	}
	return kmsg.ConfigSourceStaticBrokerConfig
}

// brokerConfigs lists the broker configs DescribeConfigs reports for this
// node, sorted by name: the synonyms of every topic config, then the
// broker's own settings.
func (b *Broker) brokerConfigs() []brokerConfig {
	var out []brokerConfig
	for _, tc := range storage.TopicConfigs() {
		if syn := brokerSynonym(tc.Name); syn != "" {
			doc := tc.Doc
			if doc == "" {
				doc = "The default of the topic config " + tc.Name + "."
			}
			out = append(out, brokerConfig{name: syn, value: tc.Default, kafkaDefault: tc.Default, typ: tc.Type, doc: doc})
		}
	}
	id := strconv.Itoa(int(b.cfg.NodeID))
	rf := strconv.Itoa(len(b.brokers()))
	out = append(out,
		brokerConfig{"broker.id", id, "-1", storage.ConfigInt, "This broker's ID (the kbox node ID)."},
		brokerConfig{"node.id", id, "-1", storage.ConfigInt, "This node's ID (the kbox node ID)."},
		brokerConfig{"process.roles", "broker,controller", "", storage.ConfigList, "Every kbox node is a broker and a Raft voter."},
		brokerConfig{"advertised.listeners", "PLAINTEXT://" + b.cfg.Advertised, "", storage.ConfigString, "The address clients are told to connect to."},
		brokerConfig{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions)), "1", storage.ConfigInt, "The partition count of topics created with -1 partitions or auto-created."},
		brokerConfig{"default.replication.factor", rf, "1", storage.ConfigInt, "Every partition is replicated to every node of the kbox cluster."},
		brokerConfig{"auto.create.topics.enable", strconv.FormatBool(b.cfg.AutoCreateTopics), "true", storage.ConfigBoolean, "Whether Metadata and Produce create unknown topics."},
		brokerConfig{"delete.topic.enable", "true", "true", storage.ConfigBoolean, "Topics can be deleted."},
		brokerConfig{"socket.request.max.bytes", strconv.Itoa(int(b.cfg.MaxRequestBytes)), "104857600", storage.ConfigInt, "The largest request frame accepted; larger ones close the connection."},
		brokerConfig{"log.retention.hours", "168", "168", storage.ConfigInt, "Retention in hours; log.retention.ms takes precedence."},
	)
	if b.store != nil {
		dir := filepath.Dir(b.store.Path())
		out = append(out, brokerConfig{"log.dirs", dir, "", storage.ConfigString, "The directory holding this node's state store (every partition's log)."})
	}
	slices.SortFunc(out, func(x, y brokerConfig) int { return strings.Compare(x.name, y.name) })
	return out
}

func (b *Broker) lookupBrokerConfig(name string) (brokerConfig, bool) {
	for _, c := range b.brokerConfigs() {
		if c.name == name {
			return c, true
		}
	}
	return brokerConfig{}, false
}

// brokerEntries renders the broker configs for DescribeConfigs. Every one
// is read-only: kbox takes broker settings from its flags.
func (b *Broker) brokerEntries() []configEntry {
	cfgs := b.brokerConfigs()
	out := make([]configEntry, 0, len(cfgs))
	for _, c := range cfgs {
		src := c.source()
		out = append(out, configEntry{
			name: c.name, value: c.value, source: src, readOnly: true, typ: c.typ, doc: c.doc,
			synonyms: []configSynonym{{c.name, c.value, src}},
		})
	}
	return out
}

// topicEntries renders every effective config of a topic: those set on it
// with source TOPIC_CONFIG, the rest with the source of their default.
func (b *Broker) topicEntries(configs map[string]string) []configEntry {
	tcs := storage.TopicConfigs()
	brokerCfgs := map[string]brokerConfig{}
	for _, bc := range b.brokerConfigs() {
		brokerCfgs[bc.name] = bc
	}
	out := make([]configEntry, 0, len(tcs))
	for _, tc := range tcs {
		e := configEntry{name: tc.Name, value: tc.Default, source: kmsg.ConfigSourceDefaultConfig, typ: tc.Type, doc: tc.Doc}
		if e.doc == "" {
			e.doc = "See Apache Kafka's topic config " + tc.Name + "."
		}
		if v, ok := configs[tc.Name]; ok {
			e.value, e.source = v, kmsg.ConfigSourceDynamicTopicConfig
			e.synonyms = append(e.synonyms, configSynonym{tc.Name, v, kmsg.ConfigSourceDynamicTopicConfig})
		}
		if syn := brokerSynonym(tc.Name); syn != "" {
			if bc, ok := brokerCfgs[syn]; ok {
				e.synonyms = append(e.synonyms, configSynonym{bc.name, bc.value, bc.source()})
				if len(e.synonyms) == 1 {
					e.source = bc.source()
				}
			}
		}
		out = append(out, e)
	}
	return out
}

// validateTopicConfigs checks configs as given in CreateTopics or
// AlterConfigs: no null values, no duplicates, every key known and valid.
func validateTopicConfigs(names []string, values []*string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for i, name := range names {
		if values[i] == nil {
			return nil, newAPIErr(kerr.InvalidConfig.Code, "null value not supported for topic config %s", name)
		}
		if _, dup := out[name]; dup {
			return nil, newAPIErr(kerr.InvalidRequest.Code, "duplicate config key %s", name)
		}
		if err := storage.ValidateConfig(name, *values[i]); err != nil {
			return nil, err
		}
		out[name] = *values[i]
	}
	return out, nil
}

// configOp is one operation of an IncrementalAlterConfigs resource.
type configOp struct {
	name  string
	op    kmsg.IncrementalAlterConfigOp
	value *string
}

// incrementalConfigs applies ops, in order, to a topic's current configs
// and returns the configs it would then have. SET replaces, DELETE reverts
// to the default, APPEND and SUBTRACT edit LIST configs element-wise
// starting from the effective value (Kafka's semantics: APPEND skips
// elements already present).
func incrementalConfigs(current map[string]string, ops []configOp) (map[string]string, error) {
	next := make(map[string]string, len(current)+len(ops))
	for k, v := range current {
		next[k] = v
	}
	seen := map[string]bool{}
	for _, o := range ops {
		if seen[o.name] {
			return nil, newAPIErr(kerr.InvalidRequest.Code, "duplicate config key %s", o.name)
		}
		seen[o.name] = true
		tc, known := storage.LookupTopicConfig(o.name)
		if !known && o.op != kmsg.IncrementalAlterConfigOpDelete {
			return nil, newAPIErr(kerr.InvalidConfig.Code, "unknown topic config %s", o.name)
		}
		if o.op != kmsg.IncrementalAlterConfigOpDelete && o.value == nil {
			return nil, newAPIErr(kerr.InvalidRequest.Code, "null value not supported for %s of %s", o.op, o.name)
		}
		switch o.op {
		case kmsg.IncrementalAlterConfigOpSet:
			next[o.name] = *o.value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, o.name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if tc.Type != storage.ConfigList {
				return nil, newAPIErr(kerr.InvalidConfig.Code, "can't %s to key %s because its type is not LIST", o.op, o.name)
			}
			base, ok := next[o.name]
			if !ok {
				base = tc.Default
			}
			next[o.name] = editList(base, *o.value, o.op == kmsg.IncrementalAlterConfigOpAppend)
		default:
			return nil, newAPIErr(kerr.InvalidRequest.Code, "unknown operation %d for config %s", int8(o.op), o.name)
		}
	}
	for k, v := range next {
		if err := storage.ValidateConfig(k, v); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// editList appends or subtracts the comma-separated elements of value to
// or from the list base.
func editList(base, value string, add bool) string {
	var list []string
	for _, s := range strings.Split(base, ",") {
		if s != "" {
			list = append(list, s)
		}
	}
	for _, s := range strings.Split(value, ",") {
		switch {
		case add && !slices.Contains(list, s):
			list = append(list, s)
		case !add:
			if i := slices.Index(list, s); i >= 0 {
				list = slices.Delete(list, i, i+1)
			}
		}
	}
	return strings.Join(list, ",")
}

// configDiff turns a topic's current and wanted configs into the Set and
// Delete of an incremental AlterConfigs command, so concurrent changes to
// other keys are not lost.
func configDiff(current, next map[string]string) (set map[string]string, del []string) {
	for k, v := range next {
		if cur, ok := current[k]; !ok || cur != v {
			if set == nil {
				set = map[string]string{}
			}
			set[k] = v
		}
	}
	for k := range current {
		if _, ok := next[k]; !ok {
			del = append(del, k)
		}
	}
	slices.Sort(del)
	return set, del
}

// brokerResource checks the name of a BROKER config resource: "" is the
// cluster-wide default, otherwise it must be this node's ID.
func (b *Broker) brokerResource(name string) error {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return newAPIErr(kerr.InvalidRequest.Code, "broker id must be an integer, but it is: %s", name)
	}
	if int32(id) != b.cfg.NodeID {
		return newAPIErr(kerr.InvalidRequest.Code, "unexpected broker id, expected %d or empty string, but received %s", b.cfg.NodeID, name)
	}
	return nil
}

// alterBrokerConfig is the answer to any change of a broker config: kbox
// fixes them at start-up.
func (b *Broker) alterBrokerConfig(name string) error {
	if _, ok := b.lookupBrokerConfig(name); !ok {
		return newAPIErr(kerr.InvalidConfig.Code, "unknown broker config %s", name)
	}
	return newAPIErr(kerr.InvalidConfig.Code, "broker config %s cannot be changed at run time: kbox takes it from its start-up flags", name)
}
