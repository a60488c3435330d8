package broker

// Configs as the admin APIs show them: the effective topic configs with
// their source and synonyms (CreateTopics v5+, DescribeConfigs), and the
// config arithmetic of AlterConfigs and IncrementalAlterConfigs on topics.
// Broker configs are in configs_broker.go.
//
// Topic configs come from storage.TopicConfigs, the one list of keys,
// defaults, types and validation. A topic config unset on the topic takes
// the cluster-wide default of the broker config Kafka names as its synonym
// (ServerTopicConfigSynonyms: retention.ms <- log.retention.ms,
// max.message.bytes <- message.max.bytes, ...) when one is set (storage
// keeps them: AlterDefaults), else Apache Kafka's default. Sources and
// synonyms follow Kafka's rules (kafka.server.ConfigHelper): the synonyms
// are the topic's own value, then the broker synonyms that have a value at
// each level (dynamic cluster default, static, default), and the source is
// the first synonym's, DEFAULT_CONFIG when there is none.

import (
	"errors"
	"fmt"
	"slices"
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
	null     bool // the value is null: the config is unset and has no default
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

// clusterDefaults returns the cluster-wide topic config defaults, by topic
// config name.
func (b *Broker) clusterDefaults() map[string]string {
	if b.store == nil {
		return nil
	}
	return b.store.Defaults()
}

// topicEntries renders every effective config of a topic: those set on it
// with source TOPIC_CONFIG, the rest with the value and source of their
// broker synonyms (a cluster-wide default, else Kafka's default).
func (b *Broker) topicEntries(configs map[string]string) []configEntry {
	tcs := storage.TopicConfigs()
	defaults := b.clusterDefaults()
	bs := b.viewBrokerConfigs(defaults)
	out := make([]configEntry, 0, len(tcs))
	for _, tc := range tcs {
		e := configEntry{name: tc.Name, value: tc.Default, typ: tc.Type, doc: tc.Doc}
		if e.doc == "" {
			e.doc = "See Apache Kafka's topic config " + tc.Name + "."
		}
		if v, ok := defaults[tc.Name]; ok {
			e.value = v
		}
		if v, ok := configs[tc.Name]; ok {
			e.value = v
			e.synonyms = append(e.synonyms, configSynonym{tc.Name, v, kmsg.ConfigSourceDynamicTopicConfig})
		}
		if syn := brokerSynonym(tc.Name); syn != "" {
			e.synonyms = append(e.synonyms, bs.of(syn)...)
		}
		e.source = kmsg.ConfigSourceDefaultConfig
		if len(e.synonyms) > 0 {
			e.source = e.synonyms[0].source
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
