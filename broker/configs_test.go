package broker

import (
	"context"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
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
// a broker config kbox reports.
func TestBrokerSynonyms(t *testing.T) {
	want := map[string]string{
		"retention.ms":                   "log.retention.ms",
		"retention.bytes":                "log.retention.bytes",
		"max.message.bytes":              "message.max.bytes",
		"cleanup.policy":                 "log.cleanup.policy",
		"segment.ms":                     "log.roll.ms",
		"segment.bytes":                  "log.segment.bytes",
		"delete.retention.ms":            "log.cleaner.delete.retention.ms",
		"min.insync.replicas":            "min.insync.replicas",
		"min.cleanable.dirty.ratio":      "log.cleaner.min.cleanable.ratio",
		"message.timestamp.type":         "log.message.timestamp.type",
		"segment.index.bytes":            "log.index.size.max.bytes",
		"file.delete.delay.ms":           "log.segment.delete.delay.ms",
		"flush.messages":                 "log.flush.interval.messages",
		"compression.type":               "compression.type",
		"unclean.leader.election.enable": "unclean.leader.election.enable",
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
		if c, ok := reported[syn]; !ok || c.value != tc.Default {
			t.Errorf("topic config %s: broker synonym %s reported as %+v, want value %s", tc.Name, syn, c, tc.Default)
		}
	}
}

func TestTopicEntriesSources(t *testing.T) {
	b := New(Config{}, nil, nil)
	defer b.Close()
	entries := b.topicEntries(map[string]string{"retention.ms": "5", "preallocate": "true"})
	if len(entries) != len(storage.TopicConfigs()) {
		t.Fatalf("%d entries", len(entries))
	}
	byName := map[string]configEntry{}
	for _, e := range entries {
		byName[e.name] = e
		if e.source != kmsg.ConfigSourceDynamicTopicConfig && e.source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("%s: source %v", e.name, e.source)
		}
		if e.typ == 0 || e.doc == "" || e.readOnly {
			t.Errorf("%s: type %d, doc %q, read-only %v", e.name, e.typ, e.doc, e.readOnly)
		}
	}
	rm := byName["retention.ms"]
	wantSyn := []configSynonym{
		{"retention.ms", "5", kmsg.ConfigSourceDynamicTopicConfig},
		{"log.retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig},
	}
	if rm.value != "5" || rm.source != kmsg.ConfigSourceDynamicTopicConfig || !reflect.DeepEqual(rm.synonyms, wantSyn) {
		t.Errorf("retention.ms: %+v", rm)
	}
	if cp := byName["cleanup.policy"]; cp.value != "delete" || cp.source != kmsg.ConfigSourceDefaultConfig || len(cp.synonyms) != 1 {
		t.Errorf("cleanup.policy: %+v", cp)
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
