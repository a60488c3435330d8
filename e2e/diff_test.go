package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDiff sends the same kmsg request sequences to kbox, kfake and (where
// Java is present) Apache Kafka 4.1 and compares the answers field by
// field: unknown topics and partitions, offsets out of range, ListOffsets
// by timestamp, DeleteRecords, config validation, DescribeConfigs defaults,
// group errors, produce errors and advertised API versions. Versions are
// pinned to the highest all targets serve.
func TestDiff(t *testing.T) {
	targets := diffTargets(t)
	runDiff(t, targets, []diffCase{
		{name: "UnknownTopic", run: diffUnknownTopic, needs: keys(kmsg.Metadata, kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets,
			kmsg.DeleteRecords, kmsg.DescribeConfigs, kmsg.OffsetForLeaderEpoch, kmsg.CreatePartitions, kmsg.DeleteTopics, kmsg.CreateTopics)},
		{name: "OffsetOutOfRange", run: diffOffsetOutOfRange, needs: keys(kmsg.CreateTopics, kmsg.Produce, kmsg.Fetch, kmsg.DeleteRecords, kmsg.ListOffsets)},
		{name: "ListOffsetsByTimestamp", run: diffListOffsetsByTimestamp, needs: keys(kmsg.CreateTopics, kmsg.Produce, kmsg.ListOffsets)},
		{name: "DeleteRecords", run: diffDeleteRecords,
			kfakeDeviates: []string{"1.delete p0@0", "2.delete", "6.delete", "7.delete"}, needs: keys(kmsg.CreateTopics, kmsg.Produce, kmsg.DeleteRecords, kmsg.ListOffsets, kmsg.Fetch)},
		{name: "CreateTopicsValidation", run: diffCreateTopicsValidation,
			kfakeDeviates: []string{"good.config.", "defaults(-1,-1).config.", "min.insync.replicas=2.config.", "cleanup.policy=compact,delete.config.",
				"validate only.config.", "retention.ms=abc.", "unknown config key.", "cleanup.policy=bogus.", "max.message.bytes=-5.",
				"message.timestamp.type=Bogus.", "rf=0.", "name ", "validate only, bad config."}, needs: keys(kmsg.CreateTopics, kmsg.Metadata)},
		{name: "AlterConfigsValidation", run: diffAlterConfigs,
			kfakeDeviates: []string{"incremental: set retention.ms=abc", "incremental: set unknown key", "incremental: set max.message.bytes=-1",
				"incremental: append retention.ms", "alter: retention.ms=abc", "createpartitions 2->2"}, needs: keys(kmsg.CreateTopics, kmsg.IncrementalAlterConfigs, kmsg.AlterConfigs, kmsg.DescribeConfigs, kmsg.CreatePartitions)},
		{name: "DescribeConfigsDefaults", run: diffDescribeConfigs,
			kfakeDeviates: []string{"topic.", "set.", "broker."}, needs: keys(kmsg.CreateTopics, kmsg.DescribeConfigs)},
		{name: "ProduceErrors", run: diffProduceErrors, needs: keys(kmsg.CreateTopics, kmsg.Produce, kmsg.InitProducerID, kmsg.Fetch),
			kfakeDeviates: []string{"idempotent seq 5 (gap)", "idempotent seq 1", "logappendtime."}},
		{name: "StaticMembership", run: diffStaticMembership, needs: keys(kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat,
			kmsg.LeaveGroup, kmsg.DescribeGroups)},
		{name: "TopicLifecycle", run: diffTopicLifecycle, needs: keys(kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.Produce, kmsg.ListOffsets, kmsg.Metadata),
			kfakeDeviates: []string{"delete by unknown topic id"}},
		{name: "FetchBehaviour", run: diffFetchBehaviour, needs: keys(kmsg.CreateTopics, kmsg.Produce, kmsg.Fetch)},
		{name: "MetadataAutoCreate", run: diffMetadataAutoCreate, needs: keys(kmsg.Metadata)},
		{name: "ApiVersions", run: diffAPIVersions, needs: keys(kmsg.ApiVersions), kfakeDeviates: []string{""}},
		{name: "GroupErrors", run: diffGroupErrors,
			kfakeDeviates: []string{"offsetfetch unknown group", "heartbeat unknown group", "syncgroup unknown group", "leavegroup unknown group",
				"offsetfetch after offsetdelete"}, needs: keys(kmsg.CreateTopics, kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat,
				kmsg.LeaveGroup, kmsg.OffsetCommit, kmsg.OffsetFetch, kmsg.DescribeGroups, kmsg.ListGroups, kmsg.DeleteGroups, kmsg.OffsetDelete)},
	})
}

func keys(ks ...kmsg.Key) []int16 {
	out := make([]int16, len(ks))
	for i, k := range ks {
		out[i] = k.Int16()
	}
	return out
}

// diffUnknownTopic asks every API that takes a topic about one that does
// not exist, and about a partition that does not exist.
func diffUnknownTopic(p *probe) {
	missing := p.topicName("missing")
	md := p.metadata(missing)
	p.seeErr("metadata.topic.error", md.Topics[0].ErrorCode)
	p.see("metadata.topic.partitions", len(md.Topics[0].Partitions))

	pr := p.produce(missing, [16]byte{}, 0, time.Now().UnixMilli())
	p.seeErr("produce.error", pr.ErrorCode)

	f := p.fetch(missing, [16]byte{}, 0, 0)
	p.seeErr("fetch.error", f.ErrorCode)

	lo := p.listOffsets(missing, 0, -1)
	p.seeErr("listoffsets.error", lo.ErrorCode)

	dr := p.deleteRecords(missing, 0, 0)
	p.seeErr("deleterecords.error", dr.ErrorCode)

	dc := p.describeConfigs(kmsg.ConfigResourceTypeTopic, missing, nil, false)
	p.seeErr("describeconfigs.error", dc.ErrorCode)
	p.see("describeconfigs.configs", len(dc.Configs))

	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.ReplicaID = -1
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = missing
	op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	op.Partition, op.CurrentLeaderEpoch, op.LeaderEpoch = 0, -1, 0
	ot.Partitions = append(ot.Partitions, op)
	oe.Topics = append(oe.Topics, ot)
	oer := p.do(oe).(*kmsg.OffsetForLeaderEpochResponse)
	p.seeErr("offsetforleaderepoch.error", oer.Topics[0].Partitions[0].ErrorCode)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.TimeoutMillis = 15000
	ct := kmsg.NewCreatePartitionsRequestTopic()
	ct.Topic, ct.Count = missing, 3
	cp.Topics = append(cp.Topics, ct)
	p.seeErr("createpartitions.error", p.do(cp).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode)

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TimeoutMillis = 15000
	dt.TopicNames = []string{missing}
	dtt := kmsg.NewDeleteTopicsRequestTopic()
	dtt.Topic = kmsg.StringPtr(missing)
	dt.Topics = append(dt.Topics, dtt)
	p.seeErr("deletetopics.error", p.do(dt).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode)

	// An existing topic with one partition, asked about partition 7.
	topic := p.topicName("one")
	id := p.createTopic(topic, 1, nil)
	p.seeErr("unknownpartition.produce.error", p.produce(topic, id, 7, time.Now().UnixMilli()).ErrorCode)
	p.seeErr("unknownpartition.fetch.error", p.fetch(topic, id, 7, 0).ErrorCode)
	p.seeErr("unknownpartition.listoffsets.error", p.listOffsets(topic, 7, -1).ErrorCode)
	p.seeErr("unknownpartition.deleterecords.error", p.deleteRecords(topic, 7, 0).ErrorCode)
	md = p.metadata(topic)
	p.see("existing.metadata.partitions", len(md.Topics[0].Partitions))
	p.see("existing.metadata.topicid.set", md.Topics[0].TopicID != [16]byte{})
}

// diffOffsetOutOfRange fetches around and beyond the log's ends, before and
// after moving the log start with DeleteRecords.
func diffOffsetOutOfRange(p *probe) {
	topic := p.topicName("t")
	id := p.createTopic(topic, 1, nil)
	now := time.Now().Add(-time.Minute).UnixMilli()
	p.mustProduce(topic, id, 0, now, now+1, now+2)
	for _, off := range []int64{0, 1, 2, 3, 4, 100, -1} {
		f := p.fetch(topic, id, 0, off)
		key := fmt.Sprintf("fetch@%d.", off)
		p.seeErr(key+"error", f.ErrorCode)
		if f.ErrorCode == 0 {
			p.see(key+"hwm", f.HighWatermark)
			p.see(key+"logstart", f.LogStartOffset)
			p.see(key+"batches", describeBatches(f.RecordBatches))
		}
	}
	dr := p.deleteRecords(topic, 0, 2)
	p.seeErr("deleterecords@2.error", dr.ErrorCode)
	p.see("deleterecords@2.lowwatermark", dr.LowWatermark)
	for _, off := range []int64{0, 1, 2, 3} {
		f := p.fetch(topic, id, 0, off)
		key := fmt.Sprintf("afterdelete.fetch@%d.", off)
		p.seeErr(key+"error", f.ErrorCode)
		if f.ErrorCode == 0 {
			p.see(key+"logstart", f.LogStartOffset)
			p.see(key+"batches", describeBatches(f.RecordBatches))
		}
	}
	lo := p.listOffsets(topic, 0, -2)
	p.see("afterdelete.earliest", fmt.Sprintf("%s offset %d", errName(lo.ErrorCode), lo.Offset))
}

// diffListOffsetsByTimestamp looks up timestamps before, between, inside
// and after batches whose timestamps are not in offset order.
func diffListOffsetsByTimestamp(p *probe) {
	topic := p.topicName("t")
	id := p.createTopic(topic, 1, nil)
	t0 := time.Now().Add(-10 * time.Minute).UnixMilli()
	p.mustProduce(topic, id, 0, t0)                  // offset 0
	p.mustProduce(topic, id, 0, t0+10)               // 1
	p.mustProduce(topic, id, 0, t0+30, t0+40, t0+50) // 2, 3, 4
	p.mustProduce(topic, id, 0, t0+20)               // 5
	for _, d := range []int64{-1, 0, 5, 10, 15, 25, 35, 45, 50, 51} {
		lo := p.listOffsets(topic, 0, t0+d)
		ts := fmt.Sprint(lo.Timestamp)
		if lo.Timestamp >= 0 {
			ts = fmt.Sprintf("T0%+d", lo.Timestamp-t0)
		}
		p.see(fmt.Sprintf("T0%+d", d), fmt.Sprintf("%s offset %d ts %s", errName(lo.ErrorCode), lo.Offset, ts))
	}
	for _, spec := range []struct {
		name string
		ts   int64
	}{{"latest(-1)", -1}, {"earliest(-2)", -2}, {"maxtimestamp(-3)", -3}, {"earliestlocal(-4)", -4}, {"latesttiered(-5)", -5}} {
		lo := p.listOffsets(topic, 0, spec.ts)
		ts := lo.Timestamp
		if ts >= 0 {
			ts -= t0
		}
		p.see(spec.name, fmt.Sprintf("%s offset %d ts %d", errName(lo.ErrorCode), lo.Offset, ts))
	}
}

// diffDeleteRecords moves the log start forward, backward, past the end
// and to the end.
func diffDeleteRecords(p *probe) {
	topic := p.topicName("t")
	id := p.createTopic(topic, 2, nil)
	now := time.Now().Add(-time.Minute).UnixMilli()
	p.mustProduce(topic, id, 0, now, now+1)
	p.mustProduce(topic, id, 0, now+2, now+3, now+4)
	for i, step := range []struct {
		partition int32
		offset    int64
	}{{0, 1}, {0, 0}, {0, 6}, {0, 3}, {0, -1}, {1, 0}, {1, 1}, {9, 0}} {
		dr := p.deleteRecords(topic, step.partition, step.offset)
		p.see(fmt.Sprintf("%d.delete p%d@%d", i, step.partition, step.offset), fmt.Sprintf("%s low %d", errName(dr.ErrorCode), dr.LowWatermark))
	}
	for _, ts := range []int64{-2, -1} {
		lo := p.listOffsets(topic, 0, ts)
		p.see(fmt.Sprintf("listoffsets p0 %d", ts), fmt.Sprintf("%s offset %d", errName(lo.ErrorCode), lo.Offset))
	}
	r := p.produce(topic, id, 0, now+5)
	p.see("produce after delete", fmt.Sprintf("%s base %d logstart %d", errName(r.ErrorCode), r.BaseOffset, r.LogStartOffset))
	f := p.fetch(topic, id, 0, 5)
	p.see("fetch@5", fmt.Sprintf("%s logstart %d batches %s", errName(f.ErrorCode), f.LogStartOffset, describeBatches(f.RecordBatches)))
}

// diffCreateTopicsValidation sends invalid and valid CreateTopics.
func diffCreateTopicsValidation(p *probe) {
	type tc struct {
		name       string
		topic      string
		partitions int32
		rf         int16
		configs    map[string]string
		validate   bool
	}
	long := p.topicName(strings.Repeat("x", 250))
	cases := []tc{
		{name: "good", topic: p.topicName("good"), partitions: 2, rf: 1, configs: map[string]string{"retention.ms": "1000"}},
		{name: "defaults(-1,-1)", topic: p.topicName("defaults"), partitions: -1, rf: -1},
		{name: "retention.ms=abc", topic: p.topicName("c1"), partitions: 1, rf: 1, configs: map[string]string{"retention.ms": "abc"}},
		{name: "unknown config key", topic: p.topicName("c2"), partitions: 1, rf: 1, configs: map[string]string{"no.such.config": "1"}},
		{name: "cleanup.policy=bogus", topic: p.topicName("c3"), partitions: 1, rf: 1, configs: map[string]string{"cleanup.policy": "bogus"}},
		{name: "max.message.bytes=-5", topic: p.topicName("c4"), partitions: 1, rf: 1, configs: map[string]string{"max.message.bytes": "-5"}},
		{name: "message.timestamp.type=Bogus", topic: p.topicName("c5"), partitions: 1, rf: 1, configs: map[string]string{"message.timestamp.type": "Bogus"}},
		{name: "min.insync.replicas=2", topic: p.topicName("c6"), partitions: 1, rf: 1, configs: map[string]string{"min.insync.replicas": "2"}},
		{name: "cleanup.policy=compact,delete", topic: p.topicName("c7"), partitions: 1, rf: 1, configs: map[string]string{"cleanup.policy": "compact,delete"}},
		{name: "partitions=0", topic: p.topicName("p0"), partitions: 0, rf: 1},
		{name: "rf=3", topic: p.topicName("rf3"), partitions: 1, rf: 3},
		{name: "rf=0", topic: p.topicName("rf0"), partitions: 1, rf: 0},
		{name: "name with /", topic: p.topicName("bad/name"), partitions: 1, rf: 1},
		{name: "name ..", topic: "..", partitions: 1, rf: 1},
		{name: "name empty", topic: "", partitions: 1, rf: 1},
		{name: "name 250+ chars", topic: long, partitions: 1, rf: 1},
		{name: "validate only", topic: p.topicName("vo"), partitions: 1, rf: 1, validate: true},
		{name: "validate only, bad config", topic: p.topicName("vo2"), partitions: 1, rf: 1, configs: map[string]string{"retention.ms": "x"}, validate: true},
	}
	for _, c := range cases {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis, req.ValidateOnly = 15000, c.validate
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = c.topic, c.partitions, c.rf
		for k, v := range c.configs {
			cfg := kmsg.NewCreateTopicsRequestTopicConfig()
			cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, cfg)
		}
		req.Topics = append(req.Topics, rt)
		resp := p.do(req).(*kmsg.CreateTopicsResponse)
		r := resp.Topics[0]
		p.seeErr(c.name+".error", r.ErrorCode)
		if r.ErrorCode == 0 {
			p.see(c.name+".partitions", r.NumPartitions)
			p.see(c.name+".rf", r.ReplicationFactor)
			for _, cfg := range r.Configs {
				if cfg.Name == "retention.ms" || cfg.Name == "cleanup.policy" {
					p.see(c.name+".config."+cfg.Name, fmt.Sprintf("%s source %d", deref(cfg.Value), cfg.Source))
				}
			}
		}
	}
	md := p.metadata(p.topicName("vo"))
	p.seeErr("validate only: not created", md.Topics[0].ErrorCode)

	// Twice the same topic in one request, then an existing topic.
	dup := kmsg.NewPtrCreateTopicsRequest()
	dup.TimeoutMillis = 15000
	for i := 0; i < 2; i++ {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = p.topicName("dup"), 1, 1
		dup.Topics = append(dup.Topics, rt)
	}
	var codes []string
	for _, r := range p.do(dup).(*kmsg.CreateTopicsResponse).Topics {
		codes = append(codes, errName(r.ErrorCode))
	}
	p.see("duplicate in request", codes)
	p.waitTopic(p.topicName("good"), 2)
	again := kmsg.NewPtrCreateTopicsRequest()
	again.TimeoutMillis = 15000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = p.topicName("good"), 1, 1
	again.Topics = append(again.Topics, rt)
	p.seeErr("already exists", p.do(again).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
}

// diffAlterConfigs sends valid and invalid (Incremental)AlterConfigs and
// CreatePartitions, and reads the result back.
func diffAlterConfigs(p *probe) {
	topic := p.topicName("t")
	p.createTopic(topic, 2, map[string]string{"cleanup.policy": "delete"})
	type op struct {
		name  string
		key   string
		op    kmsg.IncrementalAlterConfigOp
		value string
	}
	for _, o := range []op{
		{"set retention.ms=abc", "retention.ms", kmsg.IncrementalAlterConfigOpSet, "abc"},
		{"set unknown key", "no.such.config", kmsg.IncrementalAlterConfigOpSet, "1"},
		{"set max.message.bytes=-1", "max.message.bytes", kmsg.IncrementalAlterConfigOpSet, "-1"},
		{"set retention.ms=5000", "retention.ms", kmsg.IncrementalAlterConfigOpSet, "5000"},
		{"append cleanup.policy compact", "cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, "compact"},
		{"subtract cleanup.policy delete", "cleanup.policy", kmsg.IncrementalAlterConfigOpSubtract, "delete"},
		{"append retention.ms (not a list)", "retention.ms", kmsg.IncrementalAlterConfigOpAppend, "1"},
		{"delete segment.ms (unset)", "segment.ms", kmsg.IncrementalAlterConfigOpDelete, ""},
	} {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op = o.key, o.op
		if o.op != kmsg.IncrementalAlterConfigOpDelete {
			c.Value = kmsg.StringPtr(o.value)
		}
		rr.Configs = append(rr.Configs, c)
		req.Resources = append(req.Resources, rr)
		resp := p.do(req).(*kmsg.IncrementalAlterConfigsResponse)
		p.seeErr("incremental: "+o.name, resp.Resources[0].ErrorCode)
	}
	dc := p.describeConfigs(kmsg.ConfigResourceTypeTopic, topic, []string{"retention.ms", "cleanup.policy", "segment.ms"}, false)
	for _, c := range dc.Configs {
		p.see("after incremental: "+c.Name, fmt.Sprintf("%s %s", deref(c.Value), c.Source))
	}

	missing := kmsg.NewPtrIncrementalAlterConfigsRequest()
	mr := kmsg.NewIncrementalAlterConfigsRequestResource()
	mr.ResourceType, mr.ResourceName = kmsg.ConfigResourceTypeTopic, p.topicName("missing")
	mc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	mc.Name, mc.Value = "retention.ms", kmsg.StringPtr("1000")
	mr.Configs = append(mr.Configs, mc)
	missing.Resources = append(missing.Resources, mr)
	p.seeErr("incremental: unknown topic", p.do(missing).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode)

	// Legacy AlterConfigs replaces the whole set.
	for _, o := range []struct{ name, key, value string }{
		{"retention.ms=abc", "retention.ms", "abc"},
		{"retention.bytes=1048576", "retention.bytes", "1048576"},
	} {
		req := kmsg.NewPtrAlterConfigsRequest()
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = o.key, kmsg.StringPtr(o.value)
		rr.Configs = append(rr.Configs, c)
		req.Resources = append(req.Resources, rr)
		p.seeErr("alter: "+o.name, p.do(req).(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode)
	}
	dc = p.describeConfigs(kmsg.ConfigResourceTypeTopic, topic, []string{"retention.ms", "retention.bytes", "cleanup.policy"}, false)
	for _, c := range dc.Configs {
		p.see("after alter: "+c.Name, fmt.Sprintf("%s %s", deref(c.Value), c.Source))
	}

	for _, c := range []struct {
		name     string
		count    int32
		validate bool
	}{{"2->2", 2, false}, {"2->1", 1, false}, {"2->4 validate only", 4, true}, {"2->4", 4, false}, {"4->3", 3, false}} {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis, req.ValidateOnly = 15000, c.validate
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = topic, c.count
		req.Topics = append(req.Topics, rt)
		p.seeErr("createpartitions "+c.name, p.do(req).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode)
	}
	p.waitTopic(topic, 4)
	p.see("partitions after", len(p.metadata(topic).Topics[0].Partitions))
}

// diffDescribeConfigs compares every topic config of a new topic (value,
// source, read-only, sensitive, type), synonyms of a set config, and the
// broker configs clients read.
func diffDescribeConfigs(p *probe) {
	topic := p.topicName("plain")
	p.createTopic(topic, 1, nil)
	dc := p.describeConfigs(kmsg.ConfigResourceTypeTopic, topic, nil, false)
	p.seeErr("topic.error", dc.ErrorCode)
	sort.Slice(dc.Configs, func(i, j int) bool { return dc.Configs[i].Name < dc.Configs[j].Name })
	var names []string
	for _, c := range dc.Configs {
		names = append(names, c.Name)
		p.see("topic."+c.Name, fmt.Sprintf("value=%s source=%s readonly=%v sensitive=%v type=%s",
			deref(c.Value), c.Source, c.ReadOnly, c.IsSensitive, c.ConfigType))
	}

	set := p.topicName("set")
	p.createTopic(set, 1, map[string]string{"retention.ms": "1000", "cleanup.policy": "compact"})
	dc = p.describeConfigs(kmsg.ConfigResourceTypeTopic, set, []string{"retention.ms", "cleanup.policy", "max.message.bytes", "no.such.config"}, true)
	p.see("set.count", len(dc.Configs))
	for _, c := range dc.Configs {
		var syn []string
		for _, s := range c.ConfigSynonyms {
			syn = append(syn, fmt.Sprintf("%s=%s(%s)", s.Name, deref(s.Value), s.Source))
		}
		p.see("set."+c.Name, fmt.Sprintf("value=%s source=%s synonyms=%v", deref(c.Value), c.Source, syn))
	}

	// Broker configs that the Kafka peer does not set in server.properties
	// compare with their sources; the ones it sets, by value only.
	node := fmt.Sprint(p.tg.node)
	bc := p.describeConfigs(kmsg.ConfigResourceTypeBroker, node, []string{
		"message.max.bytes", "log.retention.hours", "log.retention.ms", "log.segment.bytes", "default.replication.factor",
		"min.insync.replicas", "log.cleanup.policy", "compression.type", "log.message.timestamp.type",
		"num.partitions", "auto.create.topics.enable",
	}, false)
	p.seeErr("broker.error", bc.ErrorCode)
	for _, c := range bc.Configs {
		if c.Name == "num.partitions" || c.Name == "auto.create.topics.enable" {
			p.see("broker."+c.Name, "value="+deref(c.Value))
			continue
		}
		p.see("broker."+c.Name, fmt.Sprintf("value=%s source=%s readonly=%v", deref(c.Value), c.Source, c.ReadOnly))
	}
}

// diffGroupErrors walks a classic group through its error paths.
func diffGroupErrors(p *probe) {
	topic := p.topicName("t")
	id := p.createTopic(topic, 1, nil)
	group := p.topicName("g")
	p.waitCoordinator(group)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = group, []string{group}
	fr := p.do(fc).(*kmsg.FindCoordinatorResponse)
	code, node := fr.ErrorCode, fr.NodeID
	if len(fr.Coordinators) > 0 {
		code, node = fr.Coordinators[0].ErrorCode, fr.Coordinators[0].NodeID
	}
	p.seeErr("findcoordinator.error", code)
	p.see("findcoordinator.is this broker", node == p.tg.node)

	of := p.offsetFetch(group, topic, id)
	p.see("offsetfetch unknown group", of)

	p.seeErr("heartbeat unknown group", p.heartbeat(group, 1, "nobody"))
	p.seeErr("syncgroup unknown group", p.syncGroup(group, 1, "nobody", nil).ErrorCode)
	p.see("leavegroup unknown group", p.leaveGroup(group, "nobody"))

	p.seeErr("join empty group id", p.joinGroup("", "", "consumer", 10000).ErrorCode)
	p.seeErr("join session 1ms", p.joinGroup(group, "", "consumer", 1).ErrorCode)
	p.seeErr("join session 1h", p.joinGroup(group, "", "consumer", 3600000).ErrorCode)

	first := p.joinGroup(group, "", "consumer", 10000)
	p.seeErr("join no member id", first.ErrorCode)
	p.see("join no member id: member id given", first.MemberID != "")
	member := first.MemberID
	j := p.joinGroup(group, member, "consumer", 10000)
	p.seeErr("join", j.ErrorCode)
	p.see("join.generation", j.Generation)
	p.see("join.protocol", deref(j.Protocol))
	p.see("join.leader is member", j.LeaderID == member)
	p.see("join.members", len(j.Members))
	p.seeErr("join other protocol type", p.joinGroup(group, "", "connect", 10000).ErrorCode)

	p.seeErr("sync wrong generation", p.syncGroup(group, j.Generation+5, member, nil).ErrorCode)
	p.seeErr("sync unknown member", p.syncGroup(group, j.Generation, "nobody", nil).ErrorCode)
	s := p.syncGroup(group, j.Generation, member, []byte{0, 1, 2})
	p.seeErr("sync", s.ErrorCode)
	p.see("sync.assignment", s.MemberAssignment)
	p.seeErr("heartbeat", p.heartbeat(group, j.Generation, member))
	p.seeErr("heartbeat wrong generation", p.heartbeat(group, j.Generation+5, member))
	p.seeErr("heartbeat unknown member", p.heartbeat(group, j.Generation, "nobody"))

	p.see("commit", p.offsetCommit(group, j.Generation, member, topic, id, 0, 7))
	p.see("commit wrong generation", p.offsetCommit(group, j.Generation+5, member, topic, id, 0, 8))
	p.see("commit unknown member", p.offsetCommit(group, j.Generation, "nobody", topic, id, 0, 8))
	p.see("commit simple (generation -1) to active group", p.offsetCommit(group, -1, "", topic, id, 0, 9))
	p.see("commit unknown topic", p.offsetCommit(group, j.Generation, member, p.topicName("missing"), [16]byte{}, 0, 1))
	p.see("offsetfetch after commit", p.offsetFetch(group, topic, id))

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{group, p.topicName("nogroup")}
	for i, g := range p.do(dg).(*kmsg.DescribeGroupsResponse).Groups {
		p.see(fmt.Sprintf("describegroups[%d]", i), fmt.Sprintf("%s state=%s type=%s protocol=%s members=%d",
			errName(g.ErrorCode), g.State, g.ProtocolType, g.Protocol, len(g.Members)))
	}
	lg := p.do(kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
	p.seeErr("listgroups.error", lg.ErrorCode)
	for _, g := range lg.Groups {
		if g.Group == group {
			p.see("listgroups.group", fmt.Sprintf("type=%s state=%s", g.ProtocolType, g.GroupState))
		}
	}
	p.see("deletegroups non-empty", p.deleteGroup(group))
	p.see("leavegroup", p.leaveGroup(group, member))
	p.see("describegroups after leave", p.describeGroup(group))
	p.see("offsetdelete", p.offsetDelete(group, topic))
	p.see("offsetfetch after offsetdelete", p.offsetFetch(group, topic, id))
	p.see("deletegroups empty", p.deleteGroup(group))
	p.see("deletegroups again", p.deleteGroup(group))
	p.see("offsetdelete unknown group", p.offsetDelete(p.topicName("nogroup"), topic))

	simple := p.topicName("simple")
	p.see("simple commit", p.offsetCommit(simple, -1, "", topic, id, 0, 3))
	p.see("simple offsetfetch", p.offsetFetch(simple, topic, id))
	p.see("simple describegroups", p.describeGroup(simple))
}

// waitCoordinator waits (setup, not compared) until the group coordinator
// answers: a new Kafka creates __consumer_offsets on the first
// FindCoordinator and answers COORDINATOR_NOT_AVAILABLE and
// COORDINATOR_LOAD_IN_PROGRESS until it is loaded.
func (p *probe) waitCoordinator(group string) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	probeGroup := group + "-ready"
	for {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey, fc.CoordinatorKeys = probeGroup, []string{probeGroup}
		fr := p.do(fc).(*kmsg.FindCoordinatorResponse)
		code := fr.ErrorCode
		if len(fr.Coordinators) > 0 {
			code = fr.Coordinators[0].ErrorCode
		}
		if code == 0 && !strings.Contains(p.offsetFetch(probeGroup, "", [16]byte{}), "COORDINATOR") {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: group coordinator not ready: %s", p.tg.name, errName(code))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// diffProduceErrors sends corrupt, oversized and out-of-sequence batches,
// an invalid acks value, idempotent duplicates, and produces to a
// LogAppendTime topic.
func diffProduceErrors(p *probe) {
	topic := p.topicName("t")
	id := p.createTopic(topic, 1, map[string]string{"max.message.bytes": "1000"})
	now := time.Now().Add(-time.Minute).UnixMilli()
	p.mustProduce(topic, id, 0, now)

	bad := recordBatch(now, now+1)
	bad[len(bad)-1] ^= 0xff // the CRC covers the records
	r := p.produceRaw(topic, id, 0, -1, bad)
	p.seeErr("bad crc", r.ErrorCode)
	r = p.produceRaw(topic, id, 0, 2, recordBatch(now))
	p.seeErr("acks=2", r.ErrorCode)
	r = p.produceRaw(topic, id, 0, -1, makeBatch(batchOpts{pid: -1, epoch: -1, seq: -1, valueSize: 2000}, now))
	p.seeErr("batch over max.message.bytes", r.ErrorCode)
	r = p.produceRaw(topic, id, 0, 1, makeBatch(batchOpts{pid: -1, epoch: -1, seq: -1, valueSize: 900}, now))
	p.see("batch under max.message.bytes, acks=1", fmt.Sprintf("%s base %d", errName(r.ErrorCode), r.BaseOffset))

	var ip *kmsg.InitProducerIDResponse
	deadline := time.Now().Add(30 * time.Second)
	for { // a new Kafka answers COORDINATOR_LOAD_IN_PROGRESS for a while
		ip = p.do(kmsg.NewPtrInitProducerIDRequest()).(*kmsg.InitProducerIDResponse)
		if ip.ErrorCode != 14 && ip.ErrorCode != 15 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.seeErr("initproducerid", ip.ErrorCode)
	p.see("initproducerid.epoch", ip.ProducerEpoch)
	idem := func(seq int32, n int) string {
		ts := make([]int64, n)
		for i := range ts {
			ts[i] = now + int64(i)
		}
		r := p.produceRaw(topic, id, 0, -1, makeBatch(batchOpts{pid: ip.ProducerID, epoch: ip.ProducerEpoch, seq: seq}, ts...))
		return fmt.Sprintf("%s base %d", errName(r.ErrorCode), r.BaseOffset)
	}
	p.see("idempotent seq 0 x3", idem(0, 3))
	p.see("idempotent seq 0 x3 again (duplicate)", idem(0, 3))
	p.see("idempotent seq 5 (gap)", idem(5, 1))
	p.see("idempotent seq 3", idem(3, 2))
	p.see("idempotent seq 3 again (duplicate)", idem(3, 2))
	p.see("idempotent seq 1 (old, not the last batch)", idem(1, 2))
	stale := p.produceRaw(topic, id, 0, -1, makeBatch(batchOpts{pid: ip.ProducerID, epoch: ip.ProducerEpoch + 3, seq: 7}, now))
	p.seeErr("idempotent future epoch, seq 7", stale.ErrorCode)

	lat := p.topicName("lat")
	lid := p.createTopic(lat, 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	before := time.Now().Add(-time.Second).UnixMilli()
	var lr kmsg.ProduceResponseTopicPartition
	deadline = time.Now().Add(20 * time.Second)
	for {
		lr = p.produce(lat, lid, 0, now-5000, now-4000)
		if lr.ErrorCode != 6 && lr.ErrorCode != 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.seeErr("logappendtime.produce", lr.ErrorCode)
	p.see("logappendtime.answer is broker time", lr.LogAppendTime >= before && lr.LogAppendTime <= time.Now().Add(time.Second).UnixMilli())
	f := p.fetch(lat, lid, 0, 0)
	var b kmsg.RecordBatch
	if err := b.ReadFrom(f.RecordBatches); err == nil {
		p.see("logappendtime.batch timestamp type", b.Attributes&0x08 != 0)
		p.see("logappendtime.batch max timestamp = answer", b.MaxTimestamp == lr.LogAppendTime)
	} else {
		p.see("logappendtime.batch", "undecodable: "+err.Error())
	}
}

// diffStaticMembership joins with a group.instance.id (KIP-345), rejoins
// the same instance as a new member (fencing the old one) and leaves by
// instance ID.
func diffStaticMembership(p *probe) {
	group := p.topicName("g")
	p.waitCoordinator(group)
	join := func(member string) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.InstanceID, req.ProtocolType = group, member, kmsg.StringPtr("instance-1"), "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 3000
		pr := kmsg.NewJoinGroupRequestProtocol()
		pr.Name, pr.Metadata = "range", []byte{0, 1, 0, 0, 0, 0}
		req.Protocols = append(req.Protocols, pr)
		return p.do(req).(*kmsg.JoinGroupResponse)
	}
	heartbeat := func(gen int32, member string) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.Generation, req.MemberID, req.InstanceID = group, gen, member, kmsg.StringPtr("instance-1")
		return p.do(req).(*kmsg.HeartbeatResponse).ErrorCode
	}
	j1 := join("")
	p.seeErr("join static, no member id", j1.ErrorCode)
	p.see("join static: member id given", j1.MemberID != "")
	p.see("join static: generation", j1.Generation)
	s := p.syncGroup(group, j1.Generation, j1.MemberID, []byte{9})
	p.seeErr("sync", s.ErrorCode)
	p.seeErr("heartbeat", heartbeat(j1.Generation, j1.MemberID))

	j2 := join("")
	p.seeErr("rejoin same instance, no member id", j2.ErrorCode)
	p.see("rejoin: new member id", j2.MemberID != "" && j2.MemberID != j1.MemberID)
	p.see("rejoin: generation unchanged", j2.Generation == j1.Generation)
	p.seeErr("old member heartbeat", heartbeat(j1.Generation, j1.MemberID))
	p.seeErr("new member heartbeat", heartbeat(j2.Generation, j2.MemberID))

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{group}
	g := p.do(dg).(*kmsg.DescribeGroupsResponse).Groups[0]
	p.see("describe", fmt.Sprintf("%s state=%s members=%d", errName(g.ErrorCode), g.State, len(g.Members)))
	for _, m := range g.Members {
		p.see("describe.member instance", deref(m.InstanceID))
	}

	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group = group
	m := kmsg.NewLeaveGroupRequestMember()
	m.InstanceID = kmsg.StringPtr("instance-1")
	lv.Members = append(lv.Members, m)
	lr := p.do(lv).(*kmsg.LeaveGroupResponse)
	out := errName(lr.ErrorCode)
	for _, m := range lr.Members {
		out += " member " + errName(m.ErrorCode)
	}
	p.see("leave by instance id", out)
	p.see("describe after leave", p.describeGroup(group))
}

// diffTopicLifecycle deletes a topic with records and creates it again:
// the new topic has a new ID and starts at offset 0.
func diffTopicLifecycle(p *probe) {
	topic := p.topicName("t")
	id := p.createTopic(topic, 1, nil)
	now := time.Now().Add(-time.Minute).UnixMilli()
	p.mustProduce(topic, id, 0, now, now+1, now+2)

	del := func(name *string, tid [16]byte) int16 {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TimeoutMillis = 15000
		if name != nil {
			req.TopicNames = []string{*name}
		}
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic, rt.TopicID = name, tid
		req.Topics = append(req.Topics, rt)
		return p.do(req).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode
	}
	p.seeErr("delete", del(kmsg.StringPtr(topic), [16]byte{}))
	deadline := time.Now().Add(20 * time.Second)
	// Kafka removes the topic asynchronously: metadata first, the log later.
	for (p.metadata(topic).Topics[0].ErrorCode == 0 || p.listOffsets(topic, 0, -1).ErrorCode == 0) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	p.seeErr("metadata after delete", p.metadata(topic).Topics[0].ErrorCode)
	p.seeErr("listoffsets after delete", p.listOffsets(topic, 0, -1).ErrorCode)

	var code int16
	deadline = time.Now().Add(20 * time.Second)
	for { // Kafka may still be removing the old topic: TOPIC_ALREADY_EXISTS
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 15000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
		req.Topics = append(req.Topics, rt)
		code = p.do(req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
		if code != 36 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.seeErr("create again", code)
	nid := p.waitTopic(topic, 1)
	p.see("new topic id", nid != id && nid != [16]byte{})
	lo := p.listOffsets(topic, 0, -1)
	p.see("latest after recreate", fmt.Sprintf("%s offset %d", errName(lo.ErrorCode), lo.Offset))
	p.see("produce after recreate", fmt.Sprintf("base %d", p.mustProduce(topic, nid, 0, now)))
	p.seeErr("delete by unknown topic id", del(nil, [16]byte{1, 2, 3}))
	p.seeErr("delete by topic id", del(nil, nid))
}

// diffFetchBehaviour checks long polling (MaxWait honoured on an empty
// partition, not waited out when data is there), that a batch larger than
// every byte limit still comes back whole (KIP-74), the last stable offset
// at read_committed, and the answer to a fetch session request.
func diffFetchBehaviour(p *probe) {
	topic := p.topicName("t")
	id := p.createTopic(topic, 1, nil)
	now := time.Now().Add(-time.Minute).UnixMilli()
	p.mustProduce(topic, id, 0, now, now+1)

	fetch := func(offset int64, maxWait int32, maxBytes int32, isolation int8, sessionID, sessionEpoch int32) (*kmsg.FetchResponse, time.Duration) {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.IsolationLevel = -1, maxWait, 1, maxBytes, isolation
		req.SessionID, req.SessionEpoch = sessionID, sessionEpoch
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = 0, offset, maxBytes, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		resp := p.do(req).(*kmsg.FetchResponse)
		return resp, time.Since(start)
	}
	part := func(r *kmsg.FetchResponse) kmsg.FetchResponseTopicPartition {
		if len(r.Topics) == 1 && len(r.Topics[0].Partitions) == 1 {
			return r.Topics[0].Partitions[0]
		}
		return kmsg.FetchResponseTopicPartition{ErrorCode: -1}
	}
	r, took := fetch(2, 400, 1<<20, 0, 0, -1)
	p.see("empty partition, MaxWait 400ms: waited at least 300ms", took >= 300*time.Millisecond)
	p.see("empty partition: answer", fmt.Sprintf("%s %s", errName(part(r).ErrorCode), describeBatches(part(r).RecordBatches)))
	r, took = fetch(0, 5000, 1<<20, 0, 0, -1)
	p.see("data there, MaxWait 5s: answered within 2s", took < 2*time.Second)
	r, _ = fetch(0, 0, 1, 0, 0, -1)
	p.see("MaxBytes 1: first batch whole", describeBatches(part(r).RecordBatches))
	r, _ = fetch(0, 0, 1<<20, 1, 0, -1)
	p.see("read_committed", fmt.Sprintf("%s hwm %d lso %d", errName(part(r).ErrorCode), part(r).HighWatermark, part(r).LastStableOffset))
	r, _ = fetch(0, 0, 1<<20, 0, 0, 0)
	p.see("new fetch session (id 0, epoch 0)", fmt.Sprintf("%s %s", errName(r.ErrorCode), errName(part(r).ErrorCode)))
	r, _ = fetch(0, 0, 1<<20, 0, 12345, 7)
	p.seeErr("unknown fetch session (id 12345, epoch 7)", r.ErrorCode)
}

// diffMetadataAutoCreate asks for an unknown topic with auto creation
// allowed (auto.create.topics.enable is on in all targets).
func diffMetadataAutoCreate(p *probe) {
	topic := p.topicName("auto")
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	first := p.do(req).(*kmsg.MetadataResponse).Topics[0]
	// While its controller creates the topic, Kafka 4.1 answers
	// UNKNOWN_TOPIC_OR_PARTITION (LEADER_NOT_AVAILABLE in older versions,
	// NONE once created: it depends on timing); clients retry all three.
	p.see("first answer: ready or retriable", first.ErrorCode == 0 || first.ErrorCode == 3 || first.ErrorCode == 5)
	p.waitTopic(topic, 1)
	md := p.metadata(topic).Topics[0]
	p.see("then", fmt.Sprintf("%s partitions %d internal %v", errName(md.ErrorCode), len(md.Partitions), md.IsInternal))
	for _, pt := range md.Partitions {
		p.see("then.partition", fmt.Sprintf("%s replicas %d isr %d leader is this broker %v",
			errName(pt.ErrorCode), len(pt.Replicas), len(pt.ISR), pt.Leader == p.tg.node))
	}
}

// diffAPIVersions compares the advertised version range of every API key
// issue 8 requires, capped at what kmsg (and so kbox) knows.
func diffAPIVersions(p *probe) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "kbox-e2e", "1.0" // v3+: Kafka refuses empty ones
	resp := p.do(req).(*kmsg.ApiVersionsResponse)
	p.seeErr("error", resp.ErrorCode)
	served := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range resp.ApiKeys {
		served[k.ApiKey] = k
	}
	for _, key := range keys(kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets, kmsg.Metadata, kmsg.OffsetCommit, kmsg.OffsetFetch,
		kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.Heartbeat, kmsg.LeaveGroup, kmsg.SyncGroup, kmsg.DescribeGroups,
		kmsg.ListGroups, kmsg.ApiVersions, kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.DeleteRecords, kmsg.InitProducerID,
		kmsg.OffsetForLeaderEpoch, kmsg.DescribeConfigs, kmsg.AlterConfigs, kmsg.CreatePartitions, kmsg.DeleteGroups,
		kmsg.IncrementalAlterConfigs, kmsg.OffsetDelete, kmsg.DescribeCluster) {
		k, ok := served[key]
		if !ok {
			p.see(kmsg.NameForKey(key), "not served")
			continue
		}
		p.see(kmsg.NameForKey(key)+".min", k.MinVersion)
		p.see(kmsg.NameForKey(key)+".max (capped at kmsg's)", min(k.MaxVersion, kmsg.RequestForKey(key).MaxVersion()))
	}
}

// fetch reads one partition from offset (MaxWait 0) and returns its answer.
func (p *probe) fetch(topic string, id [16]byte, partition int32, offset int64) kmsg.FetchResponseTopicPartition {
	p.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 1, 1<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = partition, offset, 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := p.do(req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return kmsg.FetchResponseTopicPartition{ErrorCode: resp.ErrorCode}
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		p.t.Fatalf("%s: fetch answer has %d topics", p.tg.name, len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// listOffsets asks for one partition's offset at a timestamp (or -1 latest,
// -2 earliest, -3 max timestamp, ...).
func (p *probe) listOffsets(topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	p.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = partition, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := p.do(req).(*kmsg.ListOffsetsResponse)
	return resp.Topics[0].Partitions[0]
}

func (p *probe) deleteRecords(topic string, partition int32, offset int64) kmsg.DeleteRecordsResponseTopicPartition {
	p.t.Helper()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 15000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return p.do(req).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
}

func (p *probe) describeConfigs(typ kmsg.ConfigResourceType, name string, names []string, synonyms bool) kmsg.DescribeConfigsResponseResource {
	p.t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = synonyms
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = typ, name, names
	req.Resources = append(req.Resources, rr)
	return p.do(req).(*kmsg.DescribeConfigsResponse).Resources[0]
}

func (p *probe) joinGroup(group, member, protocolType string, sessionMs int32) *kmsg.JoinGroupResponse {
	p.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.ProtocolType = group, member, protocolType
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = sessionMs, 3000
	for _, name := range []string{"range", "roundrobin"} {
		pr := kmsg.NewJoinGroupRequestProtocol()
		pr.Name, pr.Metadata = name, []byte{0, 1, 0, 0, 0, 0}
		req.Protocols = append(req.Protocols, pr)
	}
	return p.do(req).(*kmsg.JoinGroupResponse)
}

func (p *probe) syncGroup(group string, gen int32, member string, assignment []byte) *kmsg.SyncGroupResponse {
	p.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.Generation, req.MemberID = group, gen, member
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	if assignment != nil {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = member, assignment
		req.GroupAssignment = append(req.GroupAssignment, a)
	}
	return p.do(req).(*kmsg.SyncGroupResponse)
}

func (p *probe) heartbeat(group string, gen int32, member string) int16 {
	p.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = group, gen, member
	return p.do(req).(*kmsg.HeartbeatResponse).ErrorCode
}

// leaveGroup returns the top-level and per-member error codes.
func (p *probe) leaveGroup(group, member string) string {
	p.t.Helper()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group, req.MemberID = group, member
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = member
	req.Members = append(req.Members, m)
	resp := p.do(req).(*kmsg.LeaveGroupResponse)
	out := errName(resp.ErrorCode)
	for _, m := range resp.Members {
		out += " member " + errName(m.ErrorCode)
	}
	return out
}

// offsetCommit commits one offset and returns the partition's error.
func (p *probe) offsetCommit(group string, gen int32, member, topic string, id [16]byte, partition int32, offset int64) string {
	p.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = group, gen, member
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = partition, offset, -1, kmsg.StringPtr("meta")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := p.do(req).(*kmsg.OffsetCommitResponse)
	if len(resp.Topics) == 0 || len(resp.Topics[0].Partitions) == 0 {
		return "no partitions answered"
	}
	return errName(resp.Topics[0].Partitions[0].ErrorCode)
}

// offsetFetch fetches partition 0 of topic and renders the answer.
func (p *probe) offsetFetch(group, topic string, id [16]byte) string {
	p.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	gt := kmsg.NewOffsetFetchRequestGroupTopic()
	gt.Topic, gt.TopicID, gt.Partitions = topic, id, []int32{0}
	rg.Topics = append(rg.Topics, gt)
	req.Groups = append(req.Groups, rg)
	resp := p.do(req).(*kmsg.OffsetFetchResponse)
	if len(resp.Groups) > 0 {
		g := resp.Groups[0]
		out := "group " + errName(g.ErrorCode)
		for _, t := range g.Topics {
			for _, pt := range t.Partitions {
				out += fmt.Sprintf(" p%d %s offset %d metadata %q", pt.Partition, errName(pt.ErrorCode), pt.Offset, deref(pt.Metadata))
			}
		}
		return out
	}
	out := "group " + errName(resp.ErrorCode)
	for _, t := range resp.Topics {
		for _, pt := range t.Partitions {
			out += fmt.Sprintf(" p%d %s offset %d metadata %q", pt.Partition, errName(pt.ErrorCode), pt.Offset, deref(pt.Metadata))
		}
	}
	return out
}

func (p *probe) describeGroup(group string) string {
	p.t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	g := p.do(req).(*kmsg.DescribeGroupsResponse).Groups[0]
	return fmt.Sprintf("%s state=%s type=%s protocol=%s members=%d", errName(g.ErrorCode), g.State, g.ProtocolType, g.Protocol, len(g.Members))
}

func (p *probe) deleteGroup(group string) string {
	p.t.Helper()
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Groups = []string{group}
	return errName(p.do(req).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode)
}

// offsetDelete deletes partition 0's offset and returns the top-level and
// partition errors.
func (p *probe) offsetDelete(group, topic string) string {
	p.t.Helper()
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	rt := kmsg.NewOffsetDeleteRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetDeleteRequestTopicPartition()
	rp.Partition = 0
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := p.do(req).(*kmsg.OffsetDeleteResponse)
	out := errName(resp.ErrorCode)
	for _, t := range resp.Topics {
		for _, pt := range t.Partitions {
			out += fmt.Sprintf(" p%d %s", pt.Partition, errName(pt.ErrorCode))
		}
	}
	return out
}

// describeBatches renders the record batches of a fetch answer as
// base offset and record count, e.g. "[0+3]".
func describeBatches(raw []byte) string {
	var out []string
	for len(raw) >= 61 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			out = append(out, "undecodable: "+err.Error())
			break
		}
		out = append(out, fmt.Sprintf("%d+%d", b.FirstOffset, b.NumRecords))
		size := 12 + int(b.Length)
		if size > len(raw) {
			break
		}
		raw = raw[size:]
	}
	return "[" + strings.Join(out, " ") + "]"
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}
