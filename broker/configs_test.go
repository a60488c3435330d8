package broker

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

func op(name string, o kmsg.IncrementalAlterConfigOp, value ...string) configOp {
	c := configOp{name: name, op: o}
	if len(value) > 0 {
		c.value = &value[0]
	}
	return c
}

func TestIncrementalConfigs(t *testing.T) {
	const (
		set = kmsg.IncrementalAlterConfigOpSet
		del = kmsg.IncrementalAlterConfigOpDelete
		add = kmsg.IncrementalAlterConfigOpAppend
		sub = kmsg.IncrementalAlterConfigOpSubtract
	)
	tests := []struct {
		name    string
		current map[string]string
		ops     []configOp
		want    map[string]string
		code    int16  // expected error code, 0 for success
		key     string // the error message must name it
	}{
		{"set", nil, []configOp{op("retention.ms", set, "1000")}, map[string]string{"retention.ms": "1000"}, 0, ""},
		{"set replaces", map[string]string{"retention.ms": "1"}, []configOp{op("retention.ms", set, "2")}, map[string]string{"retention.ms": "2"}, 0, ""},
		{"delete", map[string]string{"retention.ms": "1", "segment.ms": "5"}, []configOp{op("retention.ms", del)}, map[string]string{"segment.ms": "5"}, 0, ""},
		{"delete unset key", nil, []configOp{op("retention.ms", del)}, map[string]string{}, 0, ""},
		{"delete unknown key", nil, []configOp{op("no.such", del)}, map[string]string{}, 0, ""},
		{"append to default", nil, []configOp{op("cleanup.policy", add, "compact")}, map[string]string{"cleanup.policy": "delete,compact"}, 0, ""},
		{"append present element", map[string]string{"cleanup.policy": "compact"}, []configOp{op("cleanup.policy", add, "compact")}, map[string]string{"cleanup.policy": "compact"}, 0, ""},
		{"subtract", map[string]string{"cleanup.policy": "delete,compact"}, []configOp{op("cleanup.policy", sub, "delete")}, map[string]string{"cleanup.policy": "compact"}, 0, ""},
		{"subtract absent element", nil, []configOp{op("cleanup.policy", sub, "compact")}, map[string]string{"cleanup.policy": "delete"}, 0, ""},
		{"subtract to empty", nil, []configOp{op("cleanup.policy", sub, "delete")}, map[string]string{"cleanup.policy": ""}, 0, ""}, // Kafka 4 accepts an empty policy: keep everything
		{"append to non-list", nil, []configOp{op("retention.ms", add, "5")}, nil, kerr.InvalidConfig.Code, "retention.ms"},
		{"subtract from non-list", nil, []configOp{op("segment.ms", sub, "5")}, nil, kerr.InvalidConfig.Code, "segment.ms"},
		{"bad value", nil, []configOp{op("retention.ms", set, "x")}, nil, kerr.InvalidConfig.Code, "retention.ms"},
		{"below minimum", nil, []configOp{op("min.insync.replicas", set, "0")}, nil, kerr.InvalidConfig.Code, "min.insync.replicas"},
		{"unknown key", nil, []configOp{op("retention.hours", set, "1")}, nil, kerr.InvalidConfig.Code, "retention.hours"},
		{"null set", nil, []configOp{op("retention.ms", set)}, nil, kerr.InvalidRequest.Code, "retention.ms"},
		{"duplicate key", nil, []configOp{op("retention.ms", set, "1"), op("retention.ms", del)}, nil, kerr.InvalidRequest.Code, "retention.ms"},
		{"unknown op", nil, []configOp{op("retention.ms", 9, "1")}, nil, kerr.InvalidRequest.Code, "retention.ms"},
		{"ops in order", map[string]string{"segment.ms": "5"}, []configOp{
			op("retention.ms", set, "9"), op("cleanup.policy", add, "compact"), op("segment.ms", del),
		}, map[string]string{"retention.ms": "9", "cleanup.policy": "delete,compact"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(tt.current)
			got, err := incrementalConfigs(tt.current, tt.ops)
			if !maps.Equal(tt.current, before) {
				t.Error("current configs were modified")
			}
			code, msg := answer(err)
			if code != tt.code {
				t.Fatalf("code %d (%v), want %d", code, err, tt.code)
			}
			if tt.code != 0 {
				if msg == nil || !strings.Contains(*msg, tt.key) {
					t.Errorf("message %v does not name %s", err, tt.key)
				}
				return
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEditList(t *testing.T) {
	tests := []struct {
		base, value string
		add         bool
		want        string
	}{
		{"delete", "compact", true, "delete,compact"},
		{"delete", "delete", true, "delete"},
		{"", "compact", true, "compact"},
		{"delete,compact", "compact", false, "delete"},
		{"delete,compact", "delete,compact", false, ""},
		{"delete", "compact", false, "delete"},
		{"a,,b", "c,a", true, "a,b,c"},
	}
	for _, tt := range tests {
		if got := editList(tt.base, tt.value, tt.add); got != tt.want {
			t.Errorf("editList(%q, %q, %v) = %q, want %q", tt.base, tt.value, tt.add, got, tt.want)
		}
	}
}

func TestConfigDiff(t *testing.T) {
	tests := []struct {
		current, next map[string]string
		set           map[string]string
		del           []string
	}{
		{nil, nil, nil, nil},
		{map[string]string{"a": "1"}, map[string]string{"a": "1"}, nil, nil},
		{map[string]string{"a": "1"}, map[string]string{"a": "2"}, map[string]string{"a": "2"}, nil},
		{map[string]string{"a": "1", "b": "2"}, map[string]string{"c": "3"}, map[string]string{"c": "3"}, []string{"a", "b"}},
	}
	for _, tt := range tests {
		set, del := configDiff(tt.current, tt.next)
		if !maps.Equal(set, tt.set) || !slices.Equal(del, tt.del) {
			t.Errorf("configDiff(%v, %v) = %v %v, want %v %v", tt.current, tt.next, set, del, tt.set, tt.del)
		}
	}
}

func TestValidateTopicConfigs(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		names  []string
		values []*string
		code   int16
	}{
		{[]string{"retention.ms", "cleanup.policy"}, []*string{s("1"), s("compact,delete")}, 0},
		{[]string{"retention.ms"}, []*string{nil}, kerr.InvalidConfig.Code},
		{[]string{"retention.ms", "retention.ms"}, []*string{s("1"), s("2")}, kerr.InvalidRequest.Code},
		{[]string{"bogus"}, []*string{s("1")}, kerr.InvalidConfig.Code},
		{[]string{"message.timestamp.type"}, []*string{s("Now")}, kerr.InvalidConfig.Code},
	}
	for _, tt := range tests {
		_, err := validateTopicConfigs(tt.names, tt.values)
		if code, _ := answer(err); code != tt.code {
			t.Errorf("%v: code %d (%v), want %d", tt.names, code, err, tt.code)
		}
	}
}

// TestBrokerSynonyms pins the Kafka names of the broker configs behind
// topic defaults (ServerTopicConfigSynonyms) and checks that each one is
// a dynamic broker config kbox reports.
func TestBrokerSynonyms(t *testing.T) {
	want := map[string]string{
		"retention.ms":                          "log.retention.ms",
		"retention.bytes":                       "log.retention.bytes",
		"max.message.bytes":                     "message.max.bytes",
		"cleanup.policy":                        "log.cleanup.policy",
		"segment.ms":                            "log.roll.ms",
		"segment.jitter.ms":                     "log.roll.jitter.ms",
		"segment.bytes":                         "log.segment.bytes",
		"delete.retention.ms":                   "log.cleaner.delete.retention.ms",
		"min.insync.replicas":                   "min.insync.replicas",
		"min.cleanable.dirty.ratio":             "log.cleaner.min.cleanable.ratio",
		"message.timestamp.type":                "log.message.timestamp.type",
		"segment.index.bytes":                   "log.index.size.max.bytes",
		"file.delete.delay.ms":                  "log.segment.delete.delay.ms",
		"flush.messages":                        "log.flush.interval.messages",
		"flush.ms":                              "log.flush.interval.ms",
		"compression.type":                      "compression.type",
		"compression.zstd.level":                "compression.zstd.level",
		"local.retention.ms":                    "log.local.retention.ms",
		"unclean.leader.election.enable":        "unclean.leader.election.enable",
		"remote.storage.enable":                 "",
		"leader.replication.throttled.replicas": "",
	}
	for topic, broker := range want {
		if got := brokerSynonym(topic); got != broker {
			t.Errorf("brokerSynonym(%s) = %q, want %q", topic, got, broker)
		}
	}
	b := New(Config{}, nil, nil)
	defer b.Close()
	reported := map[string]brokerConfig{}
	for _, c := range b.brokerConfigs() {
		if _, dup := reported[c.name]; dup {
			t.Errorf("broker config %s listed twice", c.name)
		}
		reported[c.name] = c
	}
	for _, tc := range storage.TopicConfigs() {
		syn := brokerSynonym(tc.Name)
		if syn == "" {
			continue
		}
		if c, ok := reported[syn]; !ok || c.topic != tc.Name || c.typ != tc.Type || c.static != nil {
			t.Errorf("topic config %s: broker synonym %s reported as %+v, want dynamic, of type %d", tc.Name, syn, c, tc.Type)
		}
		for _, n := range synonymGroup(syn) {
			if _, ok := reported[n]; !ok {
				t.Errorf("%s falls back to %s, which is not reported", syn, n)
			}
		}
	}
}

// TestBrokerSynonymChains checks values, sources and synonyms against what
// Apache Kafka 4.1 answers for a new cluster and after cluster-wide
// defaults are set (observed with DescribeConfigs, e2e/diff_test.go).
func TestBrokerSynonymChains(t *testing.T) {
	b := New(Config{NodeID: 1}, nil, nil)
	defer b.Close()
	const (
		dd  = kmsg.ConfigSourceDynamicDefaultBrokerConfig
		def = kmsg.ConfigSourceDefaultConfig
	)
	tests := []struct {
		name     string
		defaults map[string]string // by topic config
		config   string            // broker config
		want     []configSynonym
	}{
		{"unset ms, hours by default", nil, "log.retention.ms", nil},
		{"hours", nil, "log.retention.hours", []configSynonym{{"log.retention.hours", "168", def}}},
		{"minutes", nil, "log.retention.minutes", nil},
		{"roll", nil, "log.roll.ms", nil},
		{"flush", nil, "log.flush.interval.ms", nil},
		{"plain default", nil, "message.max.bytes", []configSynonym{{"message.max.bytes", "1048588", def}}},
		{"cluster ms", map[string]string{"retention.ms": "1000"}, "log.retention.ms",
			[]configSynonym{{"log.retention.ms", "1000", dd}, {"log.retention.hours", "168", def}}},
		{"cluster min isr", map[string]string{"min.insync.replicas": "1"}, "min.insync.replicas",
			[]configSynonym{{"min.insync.replicas", "1", dd}, {"min.insync.replicas", "1", def}}},
		{"static id", nil, "broker.id", []configSynonym{{"broker.id", "1", kmsg.ConfigSourceStaticBrokerConfig}, {"broker.id", "-1", def}}},
		{"static, no default", nil, "node.id", []configSynonym{{"node.id", "1", kmsg.ConfigSourceStaticBrokerConfig}}},
	}
	for _, tt := range tests {
		if got := b.viewBrokerConfigs(tt.defaults).of(tt.config); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: synonyms of %s = %v, want %v", tt.name, tt.config, got, tt.want)
		}
	}
}

func TestTopicEntriesSources(t *testing.T) {
	b := New(Config{}, nil, nil)
	defer b.Close()
	entries := b.topicEntries(map[string]string{"retention.ms": "5", "preallocate": "true", "remote.storage.enable": "false"})
	if len(entries) != len(storage.TopicConfigs()) {
		t.Fatalf("%d entries", len(entries))
	}
	byName := map[string]configEntry{}
	for _, e := range entries {
		byName[e.name] = e
		if e.source != kmsg.ConfigSourceDynamicTopicConfig && e.source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("%s: source %v", e.name, e.source)
		}
		if e.typ == 0 || e.doc == "" || e.readOnly || e.null {
			t.Errorf("%s: type %d, doc %q, read-only %v, null %v", e.name, e.typ, e.doc, e.readOnly, e.null)
		}
	}
	for name, want := range map[string]struct {
		value    string
		source   kmsg.ConfigSource
		synonyms []configSynonym
	}{
		// log.retention.ms is unset: Kafka lists no broker synonym.
		"retention.ms": {"5", kmsg.ConfigSourceDynamicTopicConfig, []configSynonym{{"retention.ms", "5", kmsg.ConfigSourceDynamicTopicConfig}}},
		"segment.ms":   {"604800000", kmsg.ConfigSourceDefaultConfig, nil},
		"preallocate": {"true", kmsg.ConfigSourceDynamicTopicConfig, []configSynonym{
			{"preallocate", "true", kmsg.ConfigSourceDynamicTopicConfig}, {"log.preallocate", "false", kmsg.ConfigSourceDefaultConfig}}},
		"cleanup.policy":        {"delete", kmsg.ConfigSourceDefaultConfig, []configSynonym{{"log.cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig}}},
		"remote.storage.enable": {"false", kmsg.ConfigSourceDynamicTopicConfig, []configSynonym{{"remote.storage.enable", "false", kmsg.ConfigSourceDynamicTopicConfig}}},
	} {
		e := byName[name]
		if e.value != want.value || e.source != want.source || !reflect.DeepEqual(e.synonyms, want.synonyms) {
			t.Errorf("%s: %+v, want %+v", name, e, want)
		}
	}
}

// TestPlanBrokerAlter checks changes of BROKER resources against Apache
// Kafka 4.1's answers (codes and messages observed on a single KRaft node).
func TestPlanBrokerAlter(t *testing.T) {
	s, err := storage.Open(filepath.Join(t.TempDir(), "state.db"), storage.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data, _ := storage.Encode(storage.AlterDefaults{Set: map[string]string{"retention.ms": "1000"}})
	if _, err := s.ApplyBatch([]storage.Entry{{Index: 1, Data: data}}); err != nil {
		t.Fatal(err)
	}
	b := New(Config{NodeID: 1}, s, nil)
	defer b.Close()
	const (
		set = kmsg.IncrementalAlterConfigOpSet
		del = kmsg.IncrementalAlterConfigOpDelete
		add = kmsg.IncrementalAlterConfigOpAppend
		sub = kmsg.IncrementalAlterConfigOpSubtract
	)
	bad, req := kerr.InvalidConfig.Code, kerr.InvalidRequest.Code
	tests := []struct {
		name    string
		cluster bool
		replace bool
		ops     []configOp
		code    int16
		msg     string
		cmd     storage.Command
	}{
		{"set", true, false, []configOp{op("message.max.bytes", set, "2000000"), op("log.retention.ms", del)}, 0, "",
			storage.AlterDefaults{Set: map[string]string{"max.message.bytes": "2000000"}, Delete: []string{"retention.ms"}}},
		{"append from the default", true, false, []configOp{op("log.cleanup.policy", add, "compact")}, 0, "",
			storage.AlterDefaults{Set: map[string]string{"cleanup.policy": "delete,compact"}}},
		{"delete unset, read-only or unknown", true, false, []configOp{op("log.roll.ms", del), op("log.retention.hours", del), op("no.such", del)}, 0, "", nil},
		{"same value", true, false, []configOp{op("log.retention.ms", set, "1000")}, 0, "", nil},
		{"read-only", true, false, []configOp{op("message.max.bytes", set, "abc"), op("log.retention.hours", set, "5"), op("num.partitions", set, "3")}, req,
			"Cannot update these configs dynamically: Set(log.retention.hours, num.partitions)", nil},
		{"unknown", true, false, []configOp{op("no.such.config", set, "3")}, req, "Cannot update these configs dynamically: Set(no.such.config)", nil},
		{"bad value", true, false, []configOp{op("message.max.bytes", set, "abc")}, req, "Invalid value abc for configuration message.max.bytes", nil},
		{"below minimum", true, false, []configOp{op("min.insync.replicas", set, "0")}, req, "Invalid value 0 for configuration min.insync.replicas", nil},
		{"append to int", true, false, []configOp{op("message.max.bytes", add, "5")}, bad, "Config value append is not allowed for config key: message.max.bytes", nil},
		{"subtract from int", true, false, []configOp{op("message.max.bytes", sub, "5")}, bad, "Config value subtract is not allowed for config key: message.max.bytes", nil},
		{"null", true, false, []configOp{op("message.max.bytes", set)}, req, "Null value not supported for : message.max.bytes", nil},
		{"duplicate", true, false, []configOp{op("message.max.bytes", set, "5"), op("message.max.bytes", set, "6")}, req, "Error due to duplicate config keys", nil},
		{"unknown op", true, false, []configOp{op("message.max.bytes", 7, "5")}, req, "Unknown operations type 7", nil},
		{"delete min isr", true, false, []configOp{op("min.insync.replicas", del)}, bad, "Cluster-level min.insync.replicas cannot be removed while ELR is enabled.", nil},
		{"replace without min isr", true, true, []configOp{op("log.retention.ms", set, "5000")}, bad, "Cluster-level min.insync.replicas cannot be removed", nil},
		{"replace read-only first", true, true, []configOp{op("log.retention.hours", set, "5")}, req, "Cannot update these configs dynamically", nil},
		{"replace", true, true, []configOp{op("log.retention.ms", set, "5000"), op("min.insync.replicas", set, "1")}, 0, "",
			storage.AlterDefaults{Replace: true, Set: map[string]string{"retention.ms": "5000", "min.insync.replicas": "1"}}},
		{"per broker min isr", false, false, []configOp{op("min.insync.replicas", set, "1")}, bad, "Broker-level min.insync.replicas cannot be altered while ELR is enabled.", nil},
		{"per broker delete min isr", false, false, []configOp{op("min.insync.replicas", del)}, bad, "Broker-level min.insync.replicas cannot be altered", nil},
		{"per broker set", false, false, []configOp{op("log.retention.ms", set, "2000")}, bad, "Broker-level log.retention.ms cannot be altered", nil},
		{"per broker delete", false, false, []configOp{op("log.retention.ms", del)}, 0, "", nil},
		{"per broker replace with nothing", false, true, nil, 0, "", nil},
	}
	for _, tt := range tests {
		cmd, err := b.planBrokerAlter(tt.cluster, tt.ops, tt.replace)
		code, msg := answer(err)
		if code != tt.code || tt.msg != "" && (msg == nil || !strings.Contains(*msg, tt.msg)) {
			t.Errorf("%s: code %d (%v), want %d with %q", tt.name, code, err, tt.code, tt.msg)
		}
		if !reflect.DeepEqual(cmd, tt.cmd) {
			t.Errorf("%s: command %#v, want %#v", tt.name, cmd, tt.cmd)
		}
	}
}

// followerReplicator is a node that follows another leader and cannot get
// commands committed: the Replicator contract's ErrNotLeader path.
type followerReplicator struct{ store *storage.Store }

func (followerReplicator) Propose(context.Context, storage.Command) (any, error) {
	return nil, ErrNotLeader
}

func (r followerReplicator) Leader() (int32, int32, bool) { return 2, r.store.Epoch(), true }

// followerStore opens a store holding topic "t" with two partitions,
// applied directly as a committed log entry would be.
func followerStore(t *testing.T) *storage.Store {
	t.Helper()
	s, err := storage.Open(filepath.Join(t.TempDir(), "state.db"), storage.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	data, err := storage.Encode(storage.CreateTopic{Name: "t", ID: [16]byte{7}, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.ApplyBatch([]storage.Entry{{Index: 1, Data: data}}); err != nil || res[0] != nil {
		t.Fatalf("create topic: %v %v", res, err)
	}
	return s
}

func TestAdminFollowerAnswers(t *testing.T) {
	s := followerStore(t)
	b := New(Config{NodeID: 1, Brokers: func() []BrokerInfo {
		return []BrokerInfo{{NodeID: 1, Host: "127.0.0.1", Port: 1}, {NodeID: 2, Host: "127.0.0.1", Port: 2}}
	}}, s, followerReplicator{s})
	defer b.Close()
	call := func(req kmsg.Request) kmsg.Response {
		t.Helper()
		a := b.apis[req.Key()]
		req.SetVersion(a.max)
		resp, err := a.handle(b, context.Background(), &request{Request: req})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	notController := kerr.NotController.Code

	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "new", NumPartitions: 1, ReplicationFactor: 2}}
	if r := call(ct).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != notController {
		t.Errorf("create topics: %+v", r.Topics[0])
	}
	ct.ValidateOnly = true
	if r := call(ct).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 || r.Topics[0].ReplicationFactor != 2 {
		t.Errorf("validate-only create on a follower: %+v", r.Topics[0])
	}
	dt := kmsg.NewPtrDeleteTopicsRequest()
	name := "t"
	dt.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: &name}}
	if r := call(dt).(*kmsg.DeleteTopicsResponse); r.Topics[0].ErrorCode != notController {
		t.Errorf("delete topics: %+v", r.Topics[0])
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "t", Count: 3}}
	if r := call(cp).(*kmsg.CreatePartitionsResponse); r.Topics[0].ErrorCode != notController {
		t.Errorf("create partitions: %+v", r.Topics[0])
	}
	v := "1000"
	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: &v}}}}
	if r := call(ia).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != notController {
		t.Errorf("incremental alter: %+v", r.Resources[0])
	}
	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: &v}}}}
	if r := call(ac).(*kmsg.AlterConfigsResponse); r.Resources[0].ErrorCode != notController {
		t.Errorf("alter configs: %+v", r.Resources[0])
	}
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "t", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}}}
	if r := call(dr).(*kmsg.DeleteRecordsResponse); r.Topics[0].Partitions[0].ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("delete records: %+v", r.Topics[0].Partitions[0])
	}
	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1}}}}
	if r := call(oe).(*kmsg.OffsetForLeaderEpochResponse); r.Topics[0].Partitions[0].ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("offset for leader epoch: %+v", r.Topics[0].Partitions[0])
	}
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t"}}
	if r := call(dc).(*kmsg.DescribeConfigsResponse); r.Resources[0].ErrorCode != 0 || len(r.Resources[0].Configs) == 0 {
		t.Errorf("describe configs on a follower: %+v", r.Resources[0])
	}
	cl := kmsg.NewPtrDescribeClusterRequest()
	if r := call(cl).(*kmsg.DescribeClusterResponse); r.ControllerID != 2 || len(r.Brokers) != 2 {
		t.Errorf("describe cluster on a follower: %+v", r)
	}
}

// TestClusterDefaultsTakeEffect sets cluster-wide defaults through kadm, as
// kafka-configs --entity-default does, and checks that kbox really uses
// them: appends are held to message.max.bytes, the cleaner to
// log.retention.ms, DescribeConfigs reports them with Kafka's sources, and
// a topic's own configs still win.
func TestClusterDefaultsTakeEffect(t *testing.T) {
	e := newCleanerEnv(t, 0)
	ctx := testCtx(t)
	e.createTopic(t, "follows", nil)
	e.createTopic(t, "own", map[string]string{"retention.ms": "-1", "max.message.bytes": "1000000"})
	old := e.clock.now().Add(-2 * time.Hour)
	for _, topic := range []string{"follows", "own"} {
		e.produce(t, topic, old, one("k", val("old")))
	}

	rs, err := e.adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Name: "log.retention.ms", Value: kadm.StringPtr("3600000")},
		{Name: "message.max.bytes", Value: kadm.StringPtr("100")},
	})
	if err != nil || len(rs) != 1 || rs[0].Err != nil || rs[0].Name != "" {
		t.Fatalf("alter cluster defaults: %v %+v", err, rs)
	}
	big := kgo.Record{Topic: "follows", Value: make([]byte, 200)}
	for i := range big.Value { // no repeats: the producer's compression keeps it big
		big.Value[i] = byte(i * 7 % 251)
	}
	if err := e.cl.ProduceSync(ctx, &big).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Errorf("200-byte record under a cluster message.max.bytes of 100: %v, want MESSAGE_TOO_LARGE", err)
	}
	big.Topic = "own"
	if err := e.cl.ProduceSync(ctx, &big).FirstErr(); err != nil {
		t.Errorf("200-byte record to a topic with its own max.message.bytes: %v", err)
	}
	e.clean(t)
	if got := e.startOffset(t, "follows"); got != 1 {
		t.Errorf("follows: log start %d after a pass with log.retention.ms=1h, want 1", got)
	}
	if got := e.startOffset(t, "own"); got != 0 {
		t.Errorf("own (retention.ms=-1): log start %d, want 0", got)
	}

	described, err := e.adm.DescribeTopicConfigs(ctx, "follows")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := described.On("follows", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key != "retention.ms" && c.Key != "max.message.bytes" && c.Key != "min.insync.replicas" {
			continue
		}
		want := map[string]string{"retention.ms": "3600000", "max.message.bytes": "100", "min.insync.replicas": "1"}[c.Key]
		if c.MaybeValue() != want || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Errorf("follows %s = %s (%v), want %s from DYNAMIC_DEFAULT_BROKER_CONFIG", c.Key, c.MaybeValue(), c.Source, want)
		}
	}
	cluster, err := e.adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, rc := range cluster {
		for _, c := range rc.Configs {
			keys = append(keys, c.Key+"="+c.MaybeValue())
		}
	}
	slices.Sort(keys)
	if want := []string{"log.retention.ms=3600000", "message.max.bytes=100", "min.insync.replicas=1"}; !slices.Equal(keys, want) {
		t.Errorf("cluster-wide defaults %v, want %v", keys, want)
	}

	// Back to Kafka's defaults: the deletes replicate, min.insync.replicas stays.
	rs, err = e.adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: "log.retention.ms"}, {Op: kadm.DeleteConfig, Name: "message.max.bytes"},
	})
	if err != nil || rs[0].Err != nil {
		t.Fatalf("delete cluster defaults: %v %+v", err, rs)
	}
	if got, want := e.store.Defaults(), map[string]string{"min.insync.replicas": "1"}; !maps.Equal(got, want) {
		t.Errorf("stored defaults %v, want %v", got, want)
	}
	rs, err = e.adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "min.insync.replicas"}})
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Errorf("delete the cluster min.insync.replicas: %v %+v, want INVALID_CONFIG", err, rs)
	}
	rs, err = e.adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: kadm.StringPtr("1")}}, 1)
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) || !strings.Contains(rs[0].ErrMessage, "cluster-wide default") {
		t.Errorf("set log.retention.ms on broker 1: %v %+v, want INVALID_CONFIG naming the cluster-wide default", err, rs)
	}
}
