package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kbox-dev/kbox/broker/records"
	"github.com/kbox-dev/kbox/broker/storage"
	"github.com/kbox-dev/kbox/cluster"
)

// adminDefaultPartitions is num.partitions of the admin tests' node.
const adminDefaultPartitions = 3

// adminNode is a one-node kbox with a kgo client and an admin client on it.
type adminNode struct {
	node *cluster.Node
	cl   *kgo.Client
	adm  *kadm.Client
}

func startAdminNode(t *testing.T, opts ...kgo.Opt) *adminNode {
	t.Helper()
	log := slog.New(slog.NewTextHandler(adminLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := cluster.StartNode(cluster.Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "off",
		DefaultPartitions: adminDefaultPartitions, Logger: log})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	ctx := adminCtx(t)
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	cl := adminClient(t, n.KafkaAddr(), opts...)
	return &adminNode{node: n, cl: cl, adm: kadm.NewClient(cl)}
}

type adminLogWriter struct{ t *testing.T }

func (w adminLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// adminClient returns a kgo client on addr, closed at cleanup.
func adminClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func adminCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ptr(s string) *string { return &s }

func (a *adminNode) createTopic(t *testing.T, name string, partitions int32, configs map[string]*string) kadm.CreateTopicResponse {
	t.Helper()
	r, err := a.adm.CreateTopic(adminCtx(t), partitions, 1, configs, name)
	if err != nil {
		t.Fatalf("create %s: %v (%s)", name, err, r.ErrMessage)
	}
	return r
}

// request sends a raw request straight to the node, bypassing kgo's
// sharding, at exactly the request's version (kgo otherwise picks the
// highest both sides support), and fails the test on a transport error.
func request[T kmsg.Response](t *testing.T, a *adminNode, req kmsg.Request) T {
	t.Helper()
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(req.Key(), req.GetVersion())
	cl := adminClient(t, a.node.KafkaAddr(), kgo.MaxVersions(vs))
	defer cl.Close()
	resp, err := cl.Broker(1).Request(adminCtx(t), req)
	if err != nil {
		t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if resp.GetVersion() != req.GetVersion() {
		t.Fatalf("%s answered at v%d, asked v%d", kmsg.NameForKey(req.Key()), resp.GetVersion(), req.GetVersion())
	}
	return resp.(T)
}

func TestAdminTopicLifecycle(t *testing.T) {
	a := startAdminNode(t)
	ctx := adminCtx(t)
	created := a.createTopic(t, "orders", 4, map[string]*string{"retention.ms": ptr("3600000"), "cleanup.policy": ptr("compact,delete")})
	if created.NumPartitions != 4 || created.ReplicationFactor != 1 || created.ID == (kadm.TopicID{}) {
		t.Errorf("create answer: %+v", created)
	}
	if c := created.Configs["retention.ms"]; c.MaybeValue() != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms in create answer: %+v", c)
	}
	if c := created.Configs["max.message.bytes"]; c.MaybeValue() != "1048588" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("max.message.bytes in create answer: %+v", c)
	}
	if len(created.Configs) != len(storage.TopicConfigs()) {
		t.Errorf("create answer lists %d configs, want all %d", len(created.Configs), len(storage.TopicConfigs()))
	}

	if _, err := a.adm.CreateTopic(ctx, 1, 1, nil, "orders"); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("second create: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	topics, err := a.adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := topics["orders"]; len(d.Partitions) != 4 || d.ID != created.ID {
		t.Errorf("listed: %+v", d)
	}
	rcs, err := a.adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = c
	}
	if c := got["cleanup.policy"]; c.MaybeValue() != "compact,delete" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("described cleanup.policy: %+v", c)
	}

	if r, err := a.adm.DeleteTopic(ctx, "orders"); err != nil || r.ID != created.ID {
		t.Fatalf("delete: %+v %v", r, err)
	}
	// kadm's ListTopics may answer from kgo's metadata cache; ask the node.
	metaReq := kmsg.NewPtrMetadataRequest()
	metaReq.Version = 12
	meta := request[*kmsg.MetadataResponse](t, a, metaReq)
	for _, mt := range meta.Topics {
		if mt.Topic != nil && *mt.Topic == "orders" {
			t.Error("topic still listed after delete")
		}
	}
	if _, err := a.adm.DeleteTopic(ctx, "orders"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("second delete: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	// The name is free again, and gets a new ID.
	if again := a.createTopic(t, "orders", 1, nil); again.ID == created.ID {
		t.Error("recreated topic kept the old ID")
	}
}

func TestAdminCreateTopicsChecks(t *testing.T) {
	a := startAdminNode(t)
	a.createTopic(t, "a.b", 1, nil)
	topic := func(name string, parts int32, rf int16, cfg ...string) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
		for i := 0; i+1 < len(cfg); i += 2 {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = cfg[i], &cfg[i+1]
			rt.Configs = append(rt.Configs, c)
		}
		return rt
	}
	nullValue := topic("null-value", 1, 1)
	nullValue.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms"}}
	assigned := topic("assigned", -1, -1)
	assigned.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}, {Partition: 1, Replicas: []int32{1}}}
	badAssign := topic("bad-assign", -1, -1)
	badAssign.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{9}}}
	tests := []struct {
		name      string
		topic     kmsg.CreateTopicsRequestTopic
		code      int16
		msg       string // a substring of the error message
		wantParts int32
	}{
		{"defaults", topic("defaults", -1, -1), 0, "", adminDefaultPartitions},
		{"explicit", topic("explicit", 5, 1, "retention.ms", "-1"), 0, "", 5},
		{"zero partitions", topic("zero", 0, 1), kerr.InvalidPartitions.Code, "partitions", 0},
		{"negative partitions", topic("neg", -7, 1), kerr.InvalidPartitions.Code, "partitions", 0},
		{"too many partitions", topic("huge", 1_000_000, 1), kerr.InvalidPartitions.Code, "limit", 0},
		{"replication factor above nodes", topic("rf2", 1, 2), kerr.InvalidReplicationFactor.Code, "only 1 broker", 0},
		{"zero replication factor", topic("rf0", 1, 0), kerr.InvalidReplicationFactor.Code, "larger than 0", 0},
		{"unknown config", topic("cfg1", 1, 1, "retention.msec", "1"), kerr.InvalidConfig.Code, "retention.msec", 0},
		{"bad config value", topic("cfg2", 1, 1, "retention.ms", "soon"), kerr.InvalidConfig.Code, "retention.ms", 0},
		{"bad enum value", topic("cfg3", 1, 1, "cleanup.policy", "shred"), kerr.InvalidConfig.Code, "cleanup.policy", 0},
		{"null config value", nullValue, kerr.InvalidConfig.Code, "retention.ms", 0},
		{"illegal name", topic("no spaces", 1, 1), kerr.InvalidTopicException.Code, "", 0},
		{"colliding name", topic("a_b", 1, 1), kerr.InvalidTopicException.Code, "collides", 0},
		{"exists", topic("a.b", 1, 1), kerr.TopicAlreadyExists.Code, "already exists", 0},
		{"assignment", assigned, 0, "", 2},
		{"assignment to unknown broker", badAssign, kerr.InvalidReplicaAssignment.Code, "broker 9", 0},
	}
	for _, validateOnly := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/validate=%v", tt.name, validateOnly), func(t *testing.T) {
				req := kmsg.NewPtrCreateTopicsRequest()
				req.Version, req.ValidateOnly, req.TimeoutMillis = 7, validateOnly, 10000
				req.Topics = []kmsg.CreateTopicsRequestTopic{tt.topic}
				resp := request[*kmsg.CreateTopicsResponse](t, a, req)
				if len(resp.Topics) != 1 {
					t.Fatalf("%d topics in answer", len(resp.Topics))
				}
				rt := resp.Topics[0]
				msg := ""
				if rt.ErrorMessage != nil {
					msg = *rt.ErrorMessage
				}
				if rt.ErrorCode != tt.code || !strings.Contains(msg, tt.msg) {
					t.Fatalf("code %d %q, want %d containing %q", rt.ErrorCode, msg, tt.code, tt.msg)
				}
				_, exists := a.node.Store().Topic(tt.topic.Topic)
				if tt.code != 0 {
					if rt.Configs != nil || rt.NumPartitions != -1 {
						t.Errorf("failed answer carries configs or counts: %+v", rt)
					}
					return
				}
				if exists == validateOnly {
					t.Errorf("validate_only=%v but topic exists=%v", validateOnly, exists)
				}
				if rt.NumPartitions != tt.wantParts || rt.ReplicationFactor != 1 {
					t.Errorf("answered %d partitions rf %d, want %d rf 1", rt.NumPartitions, rt.ReplicationFactor, tt.wantParts)
				}
				if (rt.TopicID == [16]byte{}) != validateOnly {
					t.Errorf("topic ID %x with validate_only=%v", rt.TopicID, validateOnly)
				}
				checkCreateConfigs(t, rt.Configs, tt.topic.Configs)
			})
		}
	}
	t.Run("duplicate in one request", func(t *testing.T) {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 5
		req.Topics = []kmsg.CreateTopicsRequestTopic{topic("twice", 1, 1), topic("twice", 2, 1), topic("once", 1, 1)}
		resp := request[*kmsg.CreateTopicsResponse](t, a, req)
		codes := map[string]int16{}
		for _, rt := range resp.Topics {
			codes[rt.Topic] = rt.ErrorCode
		}
		if len(resp.Topics) != 2 || codes["twice"] != kerr.InvalidRequest.Code || codes["once"] != 0 {
			t.Errorf("answers: %+v", resp.Topics)
		}
	})
	t.Run("v2", func(t *testing.T) {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 2
		req.Topics = []kmsg.CreateTopicsRequestTopic{topic("old-client", 2, 1)}
		resp := request[*kmsg.CreateTopicsResponse](t, a, req)
		if resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("v2 create: %+v", resp.Topics[0])
		}
		if info, ok := a.node.Store().Topic("old-client"); !ok || info.Partitions != 2 {
			t.Errorf("v2 create stored %+v %v", info, ok)
		}
	})
}

// checkCreateConfigs checks a CreateTopics v5+ config list the way the
// Java Admin client reads it: every topic config, each with a value and a
// source it can map (TOPIC_CONFIG for those set, DEFAULT_CONFIG else, but
// DYNAMIC_DEFAULT_BROKER_CONFIG for min.insync.replicas, which a new
// cluster sets cluster-wide as Kafka 4.1 does).
func checkCreateConfigs(t *testing.T, got []kmsg.CreateTopicsResponseTopicConfig, set []kmsg.CreateTopicsRequestTopicConfig) {
	t.Helper()
	want := map[string]string{}
	for _, c := range set {
		want[c.Name] = *c.Value
	}
	if len(got) != len(storage.TopicConfigs()) {
		t.Errorf("%d configs, want every one of %d", len(got), len(storage.TopicConfigs()))
	}
	for _, c := range got {
		tc, known := storage.LookupTopicConfig(c.Name)
		switch v, isSet := want[c.Name]; {
		case !known:
			t.Errorf("unknown config %s in answer", c.Name)
		case c.Value == nil:
			t.Errorf("%s: null value", c.Name)
		case isSet && (*c.Value != v || c.Source != int8(kmsg.ConfigSourceDynamicTopicConfig)):
			t.Errorf("%s = %s source %d, want %s source TOPIC_CONFIG", c.Name, *c.Value, c.Source, v)
		case !isSet && (*c.Value != tc.Default || c.Source != int8(defaultSource(c.Name))):
			t.Errorf("%s = %s source %d, want default %s source %v", c.Name, *c.Value, c.Source, tc.Default, defaultSource(c.Name))
		case c.ReadOnly || c.IsSensitive:
			t.Errorf("%s is read-only or sensitive", c.Name)
		}
	}
}

// defaultSource is the source of a topic config a new topic on a new
// cluster does not set.
func defaultSource(name string) kmsg.ConfigSource {
	if name == "min.insync.replicas" {
		return kmsg.ConfigSourceDynamicDefaultBrokerConfig
	}
	return kmsg.ConfigSourceDefaultConfig
}

func describeConfigs(t *testing.T, a *adminNode, version int16, res ...kmsg.DescribeConfigsRequestResource) *kmsg.DescribeConfigsResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version, req.IncludeSynonyms, req.IncludeDocumentation = version, true, true
	req.Resources = res
	return request[*kmsg.DescribeConfigsResponse](t, a, req)
}

func resource(typ kmsg.ConfigResourceType, name string, keys ...string) kmsg.DescribeConfigsRequestResource {
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.ConfigNames = typ, name, keys
	return r
}

func configsByName(cs []kmsg.DescribeConfigsResponseResourceConfig) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	m := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range cs {
		m[c.Name] = c
	}
	return m
}

func TestAdminDescribeConfigsDefaults(t *testing.T) {
	a := startAdminNode(t)
	a.createTopic(t, "plain", 1, nil)
	a.createTopic(t, "tuned", 1, map[string]*string{"max.message.bytes": ptr("2000000")})
	resp := describeConfigs(t, a, 4,
		resource(kmsg.ConfigResourceTypeTopic, "plain"),
		resource(kmsg.ConfigResourceTypeTopic, "tuned", "max.message.bytes", "retention.ms", "no.such.key"),
		resource(kmsg.ConfigResourceTypeTopic, "missing"),
		resource(kmsg.ConfigResourceTypeBroker, "1"),
		resource(kmsg.ConfigResourceTypeBroker, "2"),
		resource(kmsg.ConfigResourceTypeBroker, ""),
		resource(kmsg.ConfigResourceTypeBrokerLogger, "1"),
	)
	if len(resp.Resources) != 7 {
		t.Fatalf("%d resources answered", len(resp.Resources))
	}
	plain := resp.Resources[0]
	if plain.ErrorCode != 0 || len(plain.Configs) != len(storage.TopicConfigs()) {
		t.Fatalf("plain: code %d, %d configs", plain.ErrorCode, len(plain.Configs))
	}
	for _, c := range plain.Configs {
		tc, _ := storage.LookupTopicConfig(c.Name)
		if c.Value == nil || *c.Value != tc.Default || c.Source != defaultSource(c.Name) || c.ReadOnly || c.IsSensitive {
			t.Errorf("plain %s: %+v", c.Name, c)
		}
		if c.ConfigType != kmsg.ConfigType(tc.Type) || c.ConfigType == kmsg.ConfigTypeUnknown {
			t.Errorf("plain %s: type %v, want %v", c.Name, c.ConfigType, tc.Type)
		}
		if c.Documentation == nil || *c.Documentation == "" {
			t.Errorf("plain %s: no documentation", c.Name)
		}
	}
	// log.retention.ms is unset (log.retention.hours=168 holds): like
	// Kafka, no broker synonym for retention.ms.
	if rm := configsByName(plain.Configs)["retention.ms"]; len(rm.ConfigSynonyms) != 0 {
		t.Errorf("retention.ms synonyms: %+v", rm.ConfigSynonyms)
	}
	mir := configsByName(plain.Configs)["min.insync.replicas"]
	if s := mir.ConfigSynonyms; len(s) != 2 || s[0].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig || s[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("min.insync.replicas synonyms: %+v", s)
	}

	tuned := configsByName(resp.Resources[1].Configs)
	if len(tuned) != 2 {
		t.Errorf("filtered to %d configs, want 2", len(tuned))
	}
	mm := tuned["max.message.bytes"]
	if *mm.Value != "2000000" || mm.Source != kmsg.ConfigSourceDynamicTopicConfig || len(mm.ConfigSynonyms) != 2 ||
		mm.ConfigSynonyms[0].Source != kmsg.ConfigSourceDynamicTopicConfig || mm.ConfigSynonyms[1].Name != "message.max.bytes" {
		t.Errorf("tuned max.message.bytes: %+v", mm)
	}

	if code := resp.Resources[2].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("missing topic: code %d", code)
	}
	broker := resp.Resources[3]
	if broker.ErrorCode != 0 {
		t.Fatalf("broker: code %d", broker.ErrorCode)
	}
	bc := configsByName(broker.Configs)
	for key, want := range map[string]struct {
		value    *string
		source   kmsg.ConfigSource
		readOnly bool
	}{
		"log.retention.ms":           {nil, kmsg.ConfigSourceDefaultConfig, false},
		"log.retention.hours":        {ptr("168"), kmsg.ConfigSourceDefaultConfig, true},
		"num.partitions":             {ptr(fmt.Sprint(adminDefaultPartitions)), kmsg.ConfigSourceStaticBrokerConfig, true},
		"auto.create.topics.enable":  {ptr("false"), kmsg.ConfigSourceStaticBrokerConfig, true},
		"message.max.bytes":          {ptr("1048588"), kmsg.ConfigSourceDefaultConfig, false},
		"default.replication.factor": {ptr("1"), kmsg.ConfigSourceDefaultConfig, true},
		"min.insync.replicas":        {ptr("1"), kmsg.ConfigSourceDynamicDefaultBrokerConfig, false},
		"log.cleanup.policy":         {ptr("delete"), kmsg.ConfigSourceDefaultConfig, false},
		"broker.id":                  {ptr("1"), kmsg.ConfigSourceStaticBrokerConfig, true},
		"node.id":                    {ptr("1"), kmsg.ConfigSourceStaticBrokerConfig, true},
	} {
		c, ok := bc[key]
		if !ok || (c.Value == nil) != (want.value == nil) || c.Value != nil && *c.Value != *want.value ||
			c.Source != want.source || c.ReadOnly != want.readOnly {
			t.Errorf("broker %s: %+v, want %+v", key, c, want)
		}
	}
	if d := bc["log.dirs"]; d.Value == nil || !strings.HasPrefix(a.node.Store().Path(), *d.Value) {
		t.Errorf("log.dirs %+v, store at %s", d, a.node.Store().Path())
	}
	if code := resp.Resources[4].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Errorf("other broker: code %d", code)
	}
	if r := resp.Resources[5]; r.ErrorCode != 0 || len(r.Configs) != 1 || r.Configs[0].Name != "min.insync.replicas" ||
		r.Configs[0].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig || r.Configs[0].ReadOnly {
		t.Errorf("cluster default broker resource: %+v", r)
	}
	if code := resp.Resources[6].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Errorf("broker logger: code %d", code)
	}

	// v1 (no types, no docs on the wire) and kadm's view of the same.
	old := describeConfigs(t, a, 1, resource(kmsg.ConfigResourceTypeTopic, "plain", "cleanup.policy"))
	if c := old.Resources[0].Configs; len(c) != 1 || c[0].Source != kmsg.ConfigSourceDefaultConfig || c[0].Documentation != nil {
		t.Errorf("v1: %+v", c)
	}
	brokers, err := a.adm.DescribeBrokerConfigs(adminCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := brokers.On("1", nil); err != nil || len(r.Configs) == 0 {
		t.Errorf("kadm broker configs: %+v %v", r, err)
	}
}

func topicConfig(t *testing.T, a *adminNode, topic, key string) (string, kmsg.ConfigSource) {
	t.Helper()
	resp := describeConfigs(t, a, 4, resource(kmsg.ConfigResourceTypeTopic, topic, key))
	if len(resp.Resources) != 1 || len(resp.Resources[0].Configs) != 1 {
		t.Fatalf("describe %s %s: %+v", topic, key, resp.Resources)
	}
	c := resp.Resources[0].Configs[0]
	return *c.Value, c.Source
}

func TestAdminAlterConfigsRoundTrip(t *testing.T) {
	a := startAdminNode(t)
	ctx := adminCtx(t)
	a.createTopic(t, "conf", 1, map[string]*string{"segment.ms": ptr("60000")})
	alter := func(cfgs ...kadm.AlterConfig) error {
		t.Helper()
		rs, err := a.adm.AlterTopicConfigs(ctx, cfgs, "conf")
		if err != nil {
			t.Fatal(err)
		}
		r, err := rs.On("conf", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Err != nil {
			return fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
		}
		return nil
	}
	want := func(key, value string, src kmsg.ConfigSource) {
		t.Helper()
		if v, s := topicConfig(t, a, "conf", key); v != value || s != src {
			t.Errorf("%s = %s (%v), want %s (%v)", key, v, s, value, src)
		}
	}
	if err := alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("120000")}); err != nil {
		t.Fatal(err)
	}
	want("retention.ms", "120000", kmsg.ConfigSourceDynamicTopicConfig)
	want("segment.ms", "60000", kmsg.ConfigSourceDynamicTopicConfig)

	if err := alter(kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: ptr("compact")}); err != nil {
		t.Fatal(err)
	}
	want("cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig)
	if err := alter(kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: ptr("delete")}); err != nil {
		t.Fatal(err)
	}
	want("cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
	if err := alter(kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"}); err != nil {
		t.Fatal(err)
	}
	want("retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)

	for _, bad := range []struct {
		cfg  kadm.AlterConfig
		code *kerr.Error
		key  string
	}{
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "retention.ms", Value: ptr("5")}, kerr.InvalidConfig, "retention.ms"},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("a week")}, kerr.InvalidConfig, "retention.ms"},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "retention.weeks", Value: ptr("1")}, kerr.InvalidConfig, "retention.weeks"},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: ptr("0")}, kerr.InvalidConfig, "min.insync.replicas"},
	} {
		err := alter(bad.cfg)
		if !errors.Is(err, bad.code) || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("%+v: %v, want %v naming %s", bad.cfg, err, bad.code, bad.key)
		}
	}
	want("cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)

	// Validate-only changes nothing.
	rs, err := a.adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.ms", Value: ptr("1000")}}, "conf")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("validate alter: %v %+v", err, rs)
	}
	want("segment.ms", "60000", kmsg.ConfigSourceDynamicTopicConfig)

	// AlterConfigs replaces the whole set: cleanup.policy and segment.ms go back to defaults.
	rs, err = a.adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: ptr("1048576")}}, "conf")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter state: %v %+v", err, rs)
	}
	want("retention.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig)
	want("cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig)
	want("segment.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	rs, err = a.adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: ptr("lots")}}, "conf")
	if err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) || !strings.Contains(rs[0].ErrMessage, "retention.bytes") {
		t.Errorf("alter state with a bad value: %v %+v", err, rs)
	}
	want("retention.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig)

	rs, err = a.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: ptr("1")}}, "nope")
	if err != nil || !errors.Is(rs[0].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("alter unknown topic: %v %+v", err, rs)
	}
	brs, err := a.adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: ptr("9")}}, 1)
	if err != nil || !errors.Is(brs[0].Err, kerr.InvalidRequest) || brs[0].ErrMessage != "Cannot update these configs dynamically: Set(num.partitions)" {
		t.Errorf("alter a read-only broker config: %v %+v", err, brs)
	}
}

// produceBatch writes recs to one partition as a single batch: manual
// flushing buffers them all before the one produce request.
func produceBatch(t *testing.T, addr string, codec kgo.CompressionCodec, recs []*kgo.Record) {
	t.Helper()
	cl := adminClient(t, addr, kgo.ManualFlushing(), kgo.ProducerBatchCompression(codec), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := adminCtx(t)
	errs := make(chan error, len(recs))
	for _, r := range recs {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) { errs <- err })
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range recs {
		if err := <-errs; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

func TestListOffsetsByTimestampInsideCompressedBatches(t *testing.T) {
	a := startAdminNode(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		want  records.Codec
	}{
		{"none", kgo.NoCompression(), records.CodecNone},
		{"gzip", kgo.GzipCompression(), records.CodecGzip},
		{"snappy", kgo.SnappyCompression(), records.CodecSnappy},
		{"lz4", kgo.Lz4Compression(), records.CodecLZ4},
		{"zstd", kgo.ZstdCompression(), records.CodecZstd},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			var topic string
			for attempt := 0; ; attempt++ {
				topic = fmt.Sprintf("ts-%s-%d", c.name, attempt)
				a.createTopic(t, topic, 1, nil)
				// 20 records 10 ms apart, except record 13, which is the latest.
				var recs []*kgo.Record
				for i := range 20 {
					ts := base.Add(time.Duration(i) * 10 * time.Millisecond)
					if i == 13 {
						ts = base.Add(time.Minute)
					}
					recs = append(recs, &kgo.Record{Topic: topic, Timestamp: ts, Value: []byte(strings.Repeat("payload ", 20))})
				}
				produceBatch(t, a.node.KafkaAddr(), c.codec, recs)
				// kgo can flush the first record alone when the topic's
				// metadata arrives during Flush (seen once under load); that
				// is the client's choice, not the broker's, so try a fresh
				// topic rather than test a different batch layout.
				if n := countBatches(t, a.node.Store(), topic); n == 1 || attempt == 2 {
					break
				} else {
					t.Logf("kgo sent %d batches; retrying on a fresh topic", n)
				}
			}
			checkOneBatch(t, a.node.Store(), topic, c.want, 20)

			ms := base.UnixMilli()
			for _, tt := range []struct {
				ts         int64
				offset     int64
				recordTime int64
			}{
				{ms - 1000, 0, ms},
				{ms, 0, ms},
				{ms + 1, 1, ms + 10},
				{ms + 45, 5, ms + 50},
				{ms + 191, 13, ms + 60000}, // only record 13 is that late
				{ms + 60000, 13, ms + 60000},
				{ms + 60001, 20, -1}, // kadm turns "none" (-1) into the end offset
			} {
				lo := listAfter(t, a, topic, tt.ts)
				if lo.Offset != tt.offset || lo.Timestamp != tt.recordTime {
					t.Errorf("after %d: offset %d at %d, want %d at %d", tt.ts-ms, lo.Offset, lo.Timestamp-ms, tt.offset, tt.recordTime-ms)
				}
			}
			if lo := listRaw(t, a, topic, ms+60001); lo.Offset != -1 || lo.Timestamp != -1 || lo.ErrorCode != 0 {
				t.Errorf("after every record: %+v, want -1", lo)
			}
			maxes, err := a.adm.ListMaxTimestampOffsets(adminCtx(t), topic)
			if err != nil {
				t.Fatal(err)
			}
			if lo, _ := maxes.Lookup(topic, 0); lo.Offset != 13 || lo.Timestamp != ms+60000 || lo.LeaderEpoch < 0 {
				t.Errorf("max timestamp: %+v, want offset 13", lo)
			}
			// After deleting records 0-13, the max timestamp is the last record's.
			dr, err := a.adm.DeleteRecords(adminCtx(t), offsetsOf(topic, 0, 14))
			if err != nil || dr.Error() != nil {
				t.Fatalf("delete records: %v %v", err, dr.Error())
			}
			if lo := listAfter(t, a, topic, ms); lo.Offset != 14 || lo.Timestamp != ms+140 {
				t.Errorf("after deleting, first record from the start: %+v, want offset 14", lo)
			}
			maxes, _ = a.adm.ListMaxTimestampOffsets(adminCtx(t), topic)
			if lo, _ := maxes.Lookup(topic, 0); lo.Offset != 19 || lo.Timestamp != ms+190 {
				t.Errorf("max timestamp after delete: %+v, want offset 19", lo)
			}
		})
	}
}

func listRaw(t *testing.T, a *adminNode, topic string, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID = 10, -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return request[*kmsg.ListOffsetsResponse](t, a, req).Topics[0].Partitions[0]
}

func listAfter(t *testing.T, a *adminNode, topic string, ms int64) kadm.ListedOffset {
	t.Helper()
	los, err := a.adm.ListOffsetsAfterMilli(adminCtx(t), ms, topic)
	if err != nil {
		t.Fatal(err)
	}
	lo, ok := los.Lookup(topic, 0)
	if !ok || lo.Err != nil {
		t.Fatalf("list offsets after %d: %+v", ms, lo)
	}
	return lo
}

// checkOneBatch checks that partition 0 of topic holds one batch of n
// records with the given codec, so lookups really read inside a batch.
// countBatches counts the stored batches of partition 0 of topic.
func countBatches(t *testing.T, s *storage.Store, topic string) int {
	t.Helper()
	n := 0
	if err := s.Batches(topic, 0, 0, 1<<62, func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func checkOneBatch(t *testing.T, s *storage.Store, topic string, codec records.Codec, n int) {
	t.Helper()
	var batches []records.Batch
	err := s.Batches(topic, 0, 0, 1<<62, func(raw []byte) error {
		b, err := records.Decode(raw)
		batches = append(batches, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || batches[0].Codec() != codec || len(batches[0].Records) != n {
		t.Fatalf("stored %d batches; first: codec %v, %d records", len(batches), batches[0].Codec(), len(batches[0].Records))
	}
}

func offsetsOf(topic string, p int32, at int64) kadm.Offsets {
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	return os
}

func TestListOffsetsLogAppendTime(t *testing.T) {
	a := startAdminNode(t)
	a.createTopic(t, "lat", 1, map[string]*string{"message.timestamp.type": ptr("LogAppendTime")})
	before := time.Now().UnixMilli()
	var recs []*kgo.Record
	for range 5 {
		recs = append(recs, &kgo.Record{Topic: "lat", Timestamp: time.Unix(1, 0), Value: []byte("x")})
	}
	produceBatch(t, a.node.KafkaAddr(), kgo.Lz4Compression(), recs)
	lo := listAfter(t, a, "lat", before)
	if lo.Offset != 0 || lo.Timestamp < before {
		t.Errorf("append-time lookup: %+v, want offset 0 at the append time", lo)
	}
	if lo := listAfter(t, a, "lat", 2000); lo.Offset != 0 {
		t.Errorf("create times are ignored: %+v", lo)
	}
}

func TestAdminDeleteRecords(t *testing.T) {
	a := startAdminNode(t)
	ctx := adminCtx(t)
	a.createTopic(t, "dr", 2, nil)
	a.createTopic(t, "compacted", 1, map[string]*string{"cleanup.policy": ptr("compact")})
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: "dr", Partition: 0, Key: []byte{byte(i)}, Value: []byte("v")})
	}
	recs = append(recs, &kgo.Record{Topic: "compacted", Key: []byte("k"), Value: []byte("v")})
	produceBatch(t, a.node.KafkaAddr(), kgo.NoCompression(), recs)

	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "dr", Partition: 0, At: 4, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "dr", Partition: 1, At: 1, LeaderEpoch: -1}) // past the empty partition's end
	os.Add(kadm.Offset{Topic: "compacted", Partition: 0, At: 1, LeaderEpoch: -1})
	dr, err := a.adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.Lookup("dr", 0); r.Err != nil || r.LowWatermark != 4 {
		t.Errorf("dr/0: %+v", r)
	}
	if r, _ := dr.Lookup("dr", 1); !errors.Is(r.Err, kerr.OffsetOutOfRange) || r.LowWatermark != -1 {
		t.Errorf("dr/1: %+v, want OFFSET_OUT_OF_RANGE", r)
	}
	if r, _ := dr.Lookup("compacted", 0); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Errorf("compacted: %+v, want POLICY_VIOLATION", r)
	}
	starts, err := a.adm.ListStartOffsets(ctx, "dr")
	if err != nil {
		t.Fatal(err)
	}
	if lo, _ := starts.Lookup("dr", 0); lo.Offset != 4 {
		t.Errorf("earliest after delete: %+v, want 4", lo)
	}
	// Deleting below the start changes nothing; -1 means the high watermark.
	if dr, _ := a.adm.DeleteRecords(ctx, offsetsOf("dr", 0, 2)); dr.Error() != nil {
		t.Errorf("delete below the start: %v", dr.Error())
	} else if r, _ := dr.Lookup("dr", 0); r.LowWatermark != 4 {
		t.Errorf("delete below the start moved it to %d", r.LowWatermark)
	}
	if dr, _ := a.adm.DeleteRecords(ctx, offsetsOf("dr", 0, -1)); dr.Error() != nil {
		t.Errorf("delete to the end: %v", dr.Error())
	}
	starts, _ = a.adm.ListStartOffsets(ctx, "dr")
	ends, _ := a.adm.ListEndOffsets(ctx, "dr")
	if s, _ := starts.Lookup("dr", 0); s.Offset != 10 {
		t.Errorf("start after deleting everything: %d", s.Offset)
	}
	if e, _ := ends.Lookup("dr", 0); e.Offset != 10 {
		t.Errorf("end after deleting everything: %d", e.Offset)
	}
	// A consumer from the start sees nothing but new records.
	produceBatch(t, a.node.KafkaAddr(), kgo.NoCompression(), []*kgo.Record{{Topic: "dr", Partition: 0, Value: []byte("new")}})
	cl := adminClient(t, a.node.KafkaAddr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"dr": {0: kgo.NewOffset().AtStart()}}))
	fs := cl.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	if rs := fs.Records(); len(rs) != 1 || rs[0].Offset != 10 || string(rs[0].Value) != "new" {
		t.Errorf("consumed after delete: %d records, first %+v", len(rs), rs)
	}
}

func TestAdminOffsetForLeaderEpoch(t *testing.T) {
	a := startAdminNode(t)
	ctx := adminCtx(t)
	a.createTopic(t, "epochs", 1, nil)
	produceBatch(t, a.node.KafkaAddr(), kgo.NoCompression(), []*kgo.Record{{Topic: "epochs", Value: []byte("a")}, {Topic: "epochs", Value: []byte("b")}})
	ends, err := a.adm.ListEndOffsets(ctx, "epochs")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup("epochs", 0)
	epoch := end.LeaderEpoch
	if epoch <= 0 || end.Offset != 2 || epoch != a.node.Store().Epoch() {
		t.Fatalf("end offset %+v, store epoch %d", end, a.node.Store().Epoch())
	}
	ask := func(leaderEpoch, current int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.Version, req.ReplicaID = 4, -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "epochs"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.CurrentLeaderEpoch = 0, leaderEpoch, current
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := request[*kmsg.OffsetForLeaderEpochResponse](t, a, req)
		return resp.Topics[0].Partitions[0]
	}
	for _, tt := range []struct {
		name               string
		leaderEpoch, cur   int32
		code               int16
		wantEpoch, wantEnd int64
	}{
		{"current epoch", epoch, epoch, 0, int64(epoch), 2},
		{"current epoch unfenced", epoch, -1, 0, int64(epoch), 2},
		{"older than any write", epoch - 1, -1, 0, int64(epoch - 1), 0},
		{"future epoch", epoch + 1, -1, 0, -1, -1},
		{"fenced", epoch, epoch - 1, kerr.FencedLeaderEpoch.Code, -1, -1},
		{"unknown current", epoch, epoch + 1, kerr.UnknownLeaderEpoch.Code, -1, -1},
	} {
		got := ask(tt.leaderEpoch, tt.cur)
		if got.ErrorCode != tt.code || int64(got.LeaderEpoch) != tt.wantEpoch || got.EndOffset != tt.wantEnd {
			t.Errorf("%s: code %d epoch %d end %d, want %d %d %d", tt.name, got.ErrorCode, got.LeaderEpoch, got.EndOffset, tt.code, tt.wantEpoch, tt.wantEnd)
		}
	}
	var req kadm.OffsetForLeaderEpochRequest
	req.Add("epochs", 0, epoch)
	resps, err := a.adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := resps["epochs"][0]; r.Err != nil || r.EndOffset != 2 || r.LeaderEpoch != epoch {
		t.Errorf("kadm: %+v", r)
	}
}

func TestAdminCreatePartitions(t *testing.T) {
	a := startAdminNode(t)
	ctx := adminCtx(t)
	a.createTopic(t, "grow", 1, nil)
	if rs, err := a.adm.ValidateUpdatePartitions(ctx, 4, "grow"); err != nil || rs.Error() != nil {
		t.Fatalf("validate: %v %v", err, rs.Error())
	}
	if info, _ := a.node.Store().Topic("grow"); info.Partitions != 1 {
		t.Fatalf("validate-only grew the topic to %d", info.Partitions)
	}
	if rs, err := a.adm.UpdatePartitions(ctx, 3, "grow"); err != nil || rs.Error() != nil {
		t.Fatalf("grow: %v %v", err, rs.Error())
	}
	for _, tt := range []struct {
		set  int
		want *kerr.Error
	}{{3, kerr.InvalidPartitions}, {2, kerr.InvalidPartitions}, {20000, kerr.InvalidPartitions}} {
		rs, err := a.adm.UpdatePartitions(ctx, tt.set, "grow")
		if err != nil || !errors.Is(rs["grow"].Err, tt.want) {
			t.Errorf("set %d: %v %+v, want %v", tt.set, err, rs["grow"], tt.want)
		}
	}
	if rs, _ := a.adm.CreatePartitions(ctx, 1, "nope"); !errors.Is(rs["nope"].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("unknown topic: %+v", rs["nope"])
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.Version = 3
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = "grow", 5
	rt.Assignment = []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{1}}}
	req.Topics = append(req.Topics, rt)
	if resp := request[*kmsg.CreatePartitionsResponse](t, a, req); resp.Topics[0].ErrorCode != kerr.InvalidReplicaAssignment.Code {
		t.Errorf("short assignment: %+v", resp.Topics[0])
	}
	topics, err := a.adm.ListTopics(ctx, "grow")
	if err != nil || len(topics["grow"].Partitions) != 3 {
		t.Fatalf("metadata after growing: %v %+v", err, topics["grow"])
	}
	produceBatch(t, a.node.KafkaAddr(), kgo.NoCompression(), []*kgo.Record{{Topic: "grow", Partition: 2, Value: []byte("new partition")}})
	ends, _ := a.adm.ListEndOffsets(ctx, "grow")
	if lo, _ := ends.Lookup("grow", 2); lo.Offset != 1 {
		t.Errorf("partition 2 end offset %d", lo.Offset)
	}
}

func TestAdminDescribeClusterAndLogDirs(t *testing.T) {
	a := startAdminNode(t)
	ctx := adminCtx(t)
	a.createTopic(t, "sized", 2, nil)
	produceBatch(t, a.node.KafkaAddr(), kgo.NoCompression(), []*kgo.Record{{Topic: "sized", Partition: 1, Value: make([]byte, 1000)}})
	for _, v := range []int16{0, 1, 2} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version, req.IncludeClusterAuthorizedOperations, req.EndpointType = v, true, 1
		resp := request[*kmsg.DescribeClusterResponse](t, a, req)
		if resp.ErrorCode != 0 || resp.ClusterID != "kbox" || resp.ControllerID != 1 || len(resp.Brokers) != 1 ||
			resp.Brokers[0].NodeID != 1 || resp.ClusterAuthorizedOperations <= 0 {
			t.Errorf("v%d: %+v", v, resp)
		}
		if want := a.node.KafkaAddr(); fmt.Sprintf("%s:%d", resp.Brokers[0].Host, resp.Brokers[0].Port) != want {
			t.Errorf("v%d broker address %s:%d, want %s", v, resp.Brokers[0].Host, resp.Brokers[0].Port, want)
		}
	}
	dirs, err := a.adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sizes [2]int64
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == "sized" {
				sizes[p.Partition] = p.Size
			}
		})
	})
	if sizes[0] != 0 || sizes[1] < 1000 {
		t.Errorf("log dir sizes %v", sizes)
	}
}

// TestAdminOnFollower sends admin requests straight to a follower of a
// three-node cluster: metadata changes are forwarded to the Raft leader
// and applied everywhere; partition-bound requests name the leader.
func TestAdminOnFollower(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.FastTimeouts(), cluster.NoAutoCreateTopics(),
		cluster.WithLogger(slog.New(slog.NewTextHandler(adminLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	ctx := adminCtx(t)
	leader, err := c.WaitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := (leader + 1) % 3
	follower := &adminNode{node: c.Node(f)}
	fid := int32(f + 1)
	send := func(req kmsg.Request) kmsg.Response {
		t.Helper()
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(req.Key(), req.GetVersion())
		cl := adminClient(t, follower.node.KafkaAddr(), kgo.MaxVersions(vs))
		defer cl.Close()
		resp, err := cl.Broker(int(fid)).Request(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
		}
		return resp
	}

	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 7
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "via-follower", NumPartitions: 2, ReplicationFactor: 3}}
	rt := send(ct).(*kmsg.CreateTopicsResponse).Topics[0]
	if rt.ErrorCode != 0 || rt.TopicID == [16]byte{} || rt.ReplicationFactor != 3 || len(rt.Configs) == 0 {
		t.Fatalf("create on follower: %+v", rt)
	}
	if info, ok := c.Node(f).Store().Topic("via-follower"); !ok || info.ID != rt.TopicID {
		t.Errorf("the follower answered before applying the topic: %+v %v", info, ok)
	}
	for i := range 3 { // the third node may lag a little
		waitFor(t, 5*time.Second, func() error {
			if info, ok := c.Node(i).Store().Topic("via-follower"); !ok || info.ID != rt.TopicID {
				return fmt.Errorf("node %d: topic %+v %v", i, info, ok)
			}
			return nil
		})
	}

	v := "1000"
	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ia.Version = 1
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "via-follower",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: &v}}}}
	if r := send(ia).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]; r.ErrorCode != 0 {
		t.Errorf("alter on follower: %+v", r)
	}
	if info, _ := c.Node(f).Store().Topic("via-follower"); info.Config("retention.ms") != "1000" {
		t.Errorf("follower answered before applying: retention.ms %s", info.Config("retention.ms"))
	}
	waitFor(t, 5*time.Second, func() error {
		if info, _ := c.Node(leader).Store().Topic("via-follower"); info.Config("retention.ms") != "1000" {
			return fmt.Errorf("leader sees retention.ms %s", info.Config("retention.ms"))
		}
		return nil
	})

	// A cluster-wide default set on a follower is forwarded and replicated.
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "log.retention.ms", Value: &v}}}}
	if r := send(ia).(*kmsg.IncrementalAlterConfigsResponse).Resources[0]; r.ErrorCode != 0 {
		t.Errorf("alter cluster default on follower: %+v", r)
	}
	for i := range 3 {
		waitFor(t, 5*time.Second, func() error {
			if d := c.Node(i).Store().Defaults(); d["retention.ms"] != "1000" || d["min.insync.replicas"] != "1" {
				return fmt.Errorf("node %d: defaults %v", i, d)
			}
			return nil
		})
	}

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Version = 3
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "via-follower", Count: 4}}
	if r := send(cp).(*kmsg.CreatePartitionsResponse).Topics[0]; r.ErrorCode != 0 {
		t.Errorf("create partitions on follower: %+v", r)
	}

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Version = 2
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "via-follower", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}}}
	if r := send(dr).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]; r.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Errorf("delete records on follower: %+v", r)
	}

	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.Version = 2
	if r := send(dc).(*kmsg.DescribeClusterResponse); r.ControllerID != int32(leader+1) || len(r.Brokers) != 3 {
		t.Errorf("describe cluster on follower: controller %d, %d brokers", r.ControllerID, len(r.Brokers))
	}

	name := "via-follower"
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version = 6
	dt.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: &name}}
	if r := send(dt).(*kmsg.DeleteTopicsResponse).Topics[0]; r.ErrorCode != 0 || r.TopicID != rt.TopicID {
		t.Errorf("delete on follower: %+v", r)
	}
	if _, ok := c.Node(f).Store().Topic("via-follower"); ok {
		t.Error("follower still has the topic after deleting it")
	}
}
