package e2e

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// A differential test sends the same request sequence to every target
// (kbox, kfake, and Apache Kafka where Java is present), records what each
// answered as named observations, and compares them field by field. Apache
// Kafka is the reference; without it, kfake is, except where a case notes
// that kfake itself deviates from Kafka.

// diffTarget is one broker under differential test.
type diffTarget struct {
	name   string
	addr   string
	node   int32              // the broker's node ID, from Metadata
	cl     *kgo.Client        // requests go straight to the seed broker, versions pinned
	pinned *kversion.Versions // the versions cl uses, the same for every target
}

// diffCase is one request sequence.
type diffCase struct {
	name string
	// needs lists the API keys the sequence uses; a target that does not
	// serve one is skipped, and for kbox the case is skipped naming them.
	needs []int16
	// kfakeDeviates lists observation keys (prefixes) where kfake answers
	// differently from Apache Kafka 4.1; kbox is not compared with kfake
	// there.
	kfakeDeviates []string
	run           func(p *probe)
}

// probe runs one case against one target.
type probe struct {
	t    *testing.T
	ctx  context.Context
	tg   *diffTarget
	obs  *observations
	name string // a name unique to this case and run, the same on every target
}

// observations is what one target answered, by key, in the order seen.
type observations struct {
	keys []string
	vals map[string]string
}

func (o *observations) set(key string, v any) {
	if o.vals == nil {
		o.vals = map[string]string{}
	}
	if _, dup := o.vals[key]; !dup {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = fmt.Sprint(v)
}

// see records an observation.
func (p *probe) see(key string, v any) { p.obs.set(key, v) }

// seeErr records an error code by name.
func (p *probe) seeErr(key string, code int16) { p.obs.set(key, errName(code)) }

// errName names a Kafka error code, e.g. UNKNOWN_TOPIC_OR_PARTITION(3).
func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return fmt.Sprintf("%s(%d)", e.Message, code)
	}
	return fmt.Sprintf("UNKNOWN_CODE(%d)", code)
}

// do sends req to the target's broker, failing the test on a transport
// error (an answer with an error code is an observation, not a failure).
func (p *probe) do(req kmsg.Request) kmsg.Response {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	resp, err := p.tg.cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.tg.name, kmsg.NameForKey(req.Key()), err)
	}
	return resp
}

// topicName is this case's topic name with a suffix.
func (p *probe) topicName(suffix string) string { return p.name + "-" + suffix }

// createTopic creates a topic (setup, not compared) and waits until every
// partition has a leader.
func (p *probe) createTopic(topic string, partitions int32, configs map[string]string) [16]byte {
	p.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 15000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp := p.do(req).(*kmsg.CreateTopicsResponse)
	if c := resp.Topics[0].ErrorCode; c != 0 {
		p.t.Fatalf("%s: setup: create topic %s: %s", p.tg.name, topic, errName(c))
	}
	return p.waitTopic(topic, partitions)
}

// waitTopic polls Metadata until topic has n partitions with leaders and
// returns its topic ID.
func (p *probe) waitTopic(topic string, n int32) [16]byte {
	p.t.Helper()
	var id [16]byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		md := p.metadata(topic)
		if len(md.Topics) == 1 && md.Topics[0].ErrorCode == 0 && int32(len(md.Topics[0].Partitions)) == n {
			ready := true
			for _, pt := range md.Topics[0].Partitions {
				ready = ready && pt.Leader >= 0 && pt.ErrorCode == 0
			}
			if ready {
				return md.Topics[0].TopicID
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: topic %s not ready: %+v", p.tg.name, topic, md.Topics)
			return id
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metadata asks for one topic without creating it.
func (p *probe) metadata(topic string) *kmsg.MetadataResponse {
	p.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	return p.do(req).(*kmsg.MetadataResponse)
}

// produce sends one batch of records with timestamps ts to a partition
// (acks=all) and returns the partition's answer.
func (p *probe) produce(topic string, id [16]byte, partition int32, ts ...int64) kmsg.ProduceResponseTopicPartition {
	p.t.Helper()
	return p.produceRaw(topic, id, partition, -1, recordBatch(ts...))
}

// mustProduce is produce that retries what a new partition answers while
// its leader settles (Kafka just after CreateTopics) and fails the test on
// any other error code (setup).
func (p *probe) mustProduce(topic string, id [16]byte, partition int32, ts ...int64) int64 {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := p.produce(topic, id, partition, ts...)
		switch r.ErrorCode {
		case 0:
			return r.BaseOffset
		case 3, 5, 6: // UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER
			if time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
		}
		p.t.Fatalf("%s: setup: produce to %s/%d: %s", p.tg.name, topic, partition, errName(r.ErrorCode))
	}
}

// recordBatch encodes a v2 record batch, uncompressed, no producer ID, one
// record per timestamp with key k<i> and value v<i>.
func recordBatch(ts ...int64) []byte { return makeBatch(batchOpts{pid: -1, epoch: -1, seq: -1}, ts...) }

// batchOpts are the producer fields of a batch and its value size.
type batchOpts struct {
	pid       int64
	epoch     int16
	seq       int32
	valueSize int // 0: values are v<i>
}

func makeBatch(o batchOpts, ts ...int64) []byte {
	var recs []byte
	for i, t := range ts {
		v := []byte(fmt.Sprintf("v%d", i))
		if o.valueSize > 0 {
			v = bytes.Repeat([]byte{'x'}, o.valueSize)
		}
		r := kmsg.Record{TimestampDelta64: t - ts[0], OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: v}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the body after a one-byte varint 0
		recs = r.AppendTo(recs)
	}
	maxTS := ts[0]
	for _, t := range ts {
		maxTS = max(maxTS, t)
	}
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(ts) - 1),
		FirstTimestamp: ts[0], MaxTimestamp: maxTS, ProducerID: o.pid, ProducerEpoch: o.epoch, FirstSequence: o.seq,
		NumRecords: int32(len(ts)), Records: recs}
	raw := b.AppendTo(nil)
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// produceRaw sends one prepared batch to a partition with the given acks.
func (p *probe) produceRaw(topic string, id [16]byte, partition int32, acks int16, batch []byte) kmsg.ProduceResponseTopicPartition {
	p.t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 15000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := p.do(req).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		p.t.Fatalf("%s: produce answer has %d topics", p.tg.name, len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// diffTargets starts kbox and kfake, adds Apache Kafka where it can run,
// and pins every client to the highest versions all of them serve.
func diffTargets(t *testing.T) []*diffTarget {
	t.Helper()
	k := startKbox(t)
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(kf.Close)
	targets := []*diffTarget{{name: "kbox", addr: k.Addr}, {name: "kfake", addr: kf.ListenAddrs()[0]}}
	if addr, why := kafkaForDiff(t); addr != "" {
		targets = append(targets, &diffTarget{name: "kafka", addr: addr})
	} else {
		t.Logf("Apache Kafka reference not used (%s): comparing with kfake only", why)
	}
	var all []*kversion.Versions
	for _, tg := range targets {
		v, err := versionsOf(tg.addr)
		if err != nil {
			t.Fatalf("%s: ApiVersions: %v", tg.name, err)
		}
		all = append(all, v)
	}
	common := commonVersions(all)
	for _, tg := range targets {
		tg.cl, tg.pinned = newClient(t, tg.addr, kgo.MaxVersions(common), kgo.RequestRetries(0)), common
		md, err := kmsg.NewPtrMetadataRequest().RequestWith(testCtx(t, 20*time.Second), tg.cl)
		if err != nil || len(md.Brokers) == 0 {
			t.Fatalf("%s: metadata: %v", tg.name, err)
		}
		tg.node = md.Brokers[0].NodeID
	}
	return targets
}

// kafkaForDiff returns the Kafka peer's address, or "" and why not. Under
// CI=true a missing Java is a failure.
func kafkaForDiff(t *testing.T) (string, string) {
	t.Helper()
	if a := os.Getenv("KBOX_KAFKA_PEER"); a != "" {
		return a, ""
	}
	if testing.Short() {
		return "", "-short"
	}
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			if inCI() {
				t.Fatalf("%s is missing and CI=true: %s", tool, kafkaInstall)
			}
			return "", tool + " not found; " + kafkaInstall
		}
	}
	return needKafka(t), ""
}

// versionsOf asks a broker which versions it serves.
func versionsOf(addr string) (*kversion.Versions, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	return kversion.FromApiVersionsResponse(resp), nil
}

// commonVersions is, per key served by every broker and known to kmsg,
// the lowest of their maximum versions.
func commonVersions(all []*kversion.Versions) *kversion.Versions {
	common := kversion.FromApiVersionsResponse(&kmsg.ApiVersionsResponse{})
	for key := int16(0); key < 200; key++ {
		kmax := int16(-1)
		if r := kmsg.RequestForKey(key); r != nil {
			kmax = r.MaxVersion()
		}
		for _, v := range all {
			m, ok := v.LookupMaxKeyVersion(key)
			if !ok {
				kmax = -1
				break
			}
			kmax = min(kmax, m)
		}
		if kmax >= 0 {
			common.SetMaxKeyVersion(key, kmax)
		}
	}
	return common
}

// runDiff runs each case against every target and compares.
func runDiff(t *testing.T, targets []*diffTarget, cases []diffCase) {
	served := map[string]*kversion.Versions{}
	for _, tg := range targets {
		v, err := versionsOf(tg.addr)
		if err != nil {
			t.Fatal(err)
		}
		served[tg.name] = v
	}
	run := fmt.Sprintf("%x", time.Now().UnixNano()%0xffffff)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var missing []string
			for _, key := range c.needs {
				if _, ok := served["kbox"].LookupMaxKeyVersion(key); !ok {
					missing = append(missing, kmsg.NameForKey(key))
				}
			}
			if len(missing) > 0 {
				t.Skipf("kbox does not serve %v yet (issue 8)", missing)
			}
			var pins []string
			for _, key := range c.needs {
				if v, ok := targets[0].pinned.LookupMaxKeyVersion(key); ok {
					pins = append(pins, fmt.Sprintf("%s v%d", kmsg.NameForKey(key), v))
				}
			}
			t.Logf("versions (the highest every target serves): %s", strings.Join(pins, ", "))
			got := map[string]*observations{}
			for _, tg := range targets {
				ok := true
				for _, key := range c.needs {
					if _, has := served[tg.name].LookupMaxKeyVersion(key); !has {
						t.Logf("%s does not serve %s: not compared", tg.name, kmsg.NameForKey(key))
						ok = false
					}
				}
				if !ok {
					continue
				}
				o := &observations{}
				ctx := testCtx(t, 2*time.Minute)
				c.run(&probe{t: t, ctx: ctx, tg: tg, obs: o, name: strings.ToLower(fmt.Sprintf("diff-%s-%s", c.name, run))})
				got[tg.name] = o
			}
			compareObservations(t, c, got)
		})
	}
}

// compareObservations fails t for each key where kbox disagrees with the
// reference (Kafka, else kfake outside kfakeDeviates), and logs where kfake
// deviates from Kafka.
func compareObservations(t *testing.T, c diffCase, got map[string]*observations) {
	t.Helper()
	if os.Getenv("KBOX_DIFF_SHOW") != "" {
		for name, o := range got {
			var lines []string
			for _, k := range o.keys {
				lines = append(lines, "  "+k+": "+o.vals[k])
			}
			t.Logf("%s answered:\n%s", name, strings.Join(lines, "\n"))
		}
	}
	kb := got["kbox"]
	if kb == nil {
		return
	}
	ref, refName := got["kafka"], "Apache Kafka"
	if ref == nil {
		ref, refName = got["kfake"], "kfake"
	}
	if ref == nil {
		t.Fatalf("no reference target ran")
	}
	keys := append([]string(nil), ref.keys...)
	for _, k := range kb.keys {
		if _, ok := ref.vals[k]; !ok {
			keys = append(keys, k)
		}
	}
	deviates := func(key string) bool {
		for _, p := range c.kfakeDeviates {
			if strings.HasPrefix(key, p) {
				return true
			}
		}
		return false
	}
	var diffs, skipped []string
	for _, k := range keys {
		rv, rok := ref.vals[k]
		kv, kok := kb.vals[k]
		if rok && kok && rv == kv {
			continue
		}
		if refName == "kfake" && deviates(k) {
			skipped = append(skipped, fmt.Sprintf("  %s: kbox=%s kfake=%s", k, orMissing(kv, kok), orMissing(rv, rok)))
			continue
		}
		diffs = append(diffs, fmt.Sprintf("  %s: kbox=%s %s=%s", k, orMissing(kv, kok), refName, orMissing(rv, rok)))
	}
	if len(skipped) > 0 {
		t.Logf("%d observations not compared, where kfake deviates from Apache Kafka (install Java for the reference; KBOX_DIFF_SHOW=1 lists them)", len(skipped))
		if os.Getenv("KBOX_DIFF_SHOW") != "" {
			t.Logf("not compared:\n%s", strings.Join(skipped, "\n"))
		}
	}
	if kf := got["kfake"]; kf != nil && refName == "Apache Kafka" {
		var kd []string
		for _, k := range ref.keys {
			if kf.vals[k] != ref.vals[k] {
				kd = append(kd, fmt.Sprintf("  %s: kfake=%s kafka=%s", k, orMissing(kf.vals[k], kf.vals[k] != ""), ref.vals[k]))
			}
		}
		if len(kd) > 0 && os.Getenv("KBOX_DIFF_SHOW") != "" {
			t.Logf("kfake deviates from Apache Kafka (informational):\n%s", strings.Join(kd, "\n"))
		} else if len(kd) > 0 {
			t.Logf("kfake deviates from Apache Kafka on %d observations (KBOX_DIFF_SHOW=1 lists them)", len(kd))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("kbox disagrees with %s on %d of %d observations:\n%s", refName, len(diffs), len(keys), strings.Join(diffs, "\n"))
	}
}

func orMissing(v string, ok bool) string {
	if !ok {
		return "<missing>"
	}
	return v
}
