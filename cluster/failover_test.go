package cluster_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/cluster"
)

// failoverRecords is how many records the failover tests write.
const failoverRecords = 100_000

// TestClusterLeaderKillAcksSurvive kills the leader three times while an
// acks=all idempotent producer writes; every acknowledged record must be
// in the log exactly once, in order per partition, and a consumer group
// must resume from its committed offsets on the new coordinator.
func TestClusterLeaderKillAcksSurvive(t *testing.T) {
	testLeaderKills(t, failoverRecords, 8, true)
}

// TestClusterLeaderKillPayloadEntries is the same with 1 KiB values and
// no group, so that every produce request is a Raft payload entry whose
// batches the stores keep by reference, on the leader that dies and on
// the followers that take over.
func TestClusterLeaderKillPayloadEntries(t *testing.T) {
	testLeaderKills(t, 16_000, 1<<10, false)
}

func testLeaderKills(t *testing.T, records uint64, size int, group bool) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.Partitions(3), cluster.FastTimeouts())
	ctx := waitCtx(t, 90*time.Second)
	prod := newClient(t, c, kgo.DefaultProduceTopic("orders"), kgo.MaxBufferedRecords(20_000))
	a := newAcks()
	produced := make(chan struct{})
	start := time.Now()
	go produceSeqSized(ctx, prod, a, 0, records, size, func() { close(produced) })

	for k := 1; k <= 3; k++ {
		must(t, a.waitCount(ctx, int64(k)*int64(records)/4))
		old, err := c.WaitLeader(ctx)
		must(t, err)
		killedAt := time.Now()
		c.Kill(old)
		next, err := c.WaitNewLeader(ctx, old)
		must(t, err)
		t.Logf("kill %d: node %d killed at %d acks, node %d leads after %v", k, old+1, a.n.Load(), next+1, time.Since(killedAt))
		must(t, c.Restart(old))
		must(t, c.WaitHealthy(ctx))
	}
	select {
	case <-produced:
	case <-ctx.Done():
		t.Fatalf("producer did not finish: %d acknowledged", a.n.Load())
	}
	t.Logf("%d records acknowledged in %v", records, time.Since(start))
	start = time.Now()
	log := readLog(ctx, t, c, "orders")
	checkLog(t, a, log, records)
	t.Logf("log read back and checked in %v", time.Since(start))
	if !group {
		return
	}
	start = time.Now()
	checkGroupResumes(ctx, t, c, "orders", highWatermarks(log))
	t.Logf("group resumed in %v", time.Since(start))
}

// checkGroupResumes consumes about half of topic in a group, committing
// as it goes, kills the leader (the group coordinator), and checks that
// the committed offsets survived and that the group's next member reads
// every partition from exactly its committed offset to its end, with no
// gap and no duplicate. ends are the partitions' high watermarks.
func checkGroupResumes(ctx context.Context, t *testing.T, c *cluster.Cluster, topic string, ends map[int32]int64) {
	t.Helper()
	const group = "resumer"
	var total int64
	for _, e := range ends {
		total += e
	}
	first := newClient(t, c, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := map[int32]int64{}
	for consumed := int64(0); consumed < total/2; {
		fs := first.PollRecords(ctx, 500)
		if ctx.Err() != nil {
			t.Fatalf("first group member: %v after %d records", ctx.Err(), consumed)
		}
		recs := fs.Records()
		// A spontaneous leader change moves the coordinator, which then
		// fails commits until the member has rejoined: retry, as
		// applications do.
		must(t, retry(ctx, func() error { return first.CommitRecords(ctx, recs...) }))
		for _, r := range recs {
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
		}
		consumed = 0
		for _, n := range next {
			consumed += n
		}
	}
	first.Close()
	adm := kadm.NewClient(newClient(t, c))
	var committed kadm.OffsetResponses
	must(t, retry(ctx, func() (err error) {
		committed, err = adm.FetchOffsets(ctx, group)
		if err == nil {
			err = committed.Error()
		}
		return err
	}))

	old, err := c.WaitLeader(ctx)
	must(t, err)
	c.Kill(old)
	_, err = c.WaitNewLeader(ctx, old)
	must(t, err)
	// The coordinator died with the leader. kgo (v1.22.3) keeps a dead
	// coordinator cached for sharded requests such as OffsetFetch and
	// returns the failed dial, so read through a new client, retrying
	// while the dead node is still listed.
	adm = kadm.NewClient(newClient(t, c))
	var after kadm.OffsetResponses
	must(t, retry(ctx, func() (err error) {
		after, err = adm.FetchOffsets(ctx, group)
		return err
	}))
	from := map[int32]int64{}
	committed.Each(func(o kadm.OffsetResponse) {
		from[o.Partition] = o.At
		if a, ok := after.Lookup(o.Topic, o.Partition); !ok || a.At != o.At {
			t.Errorf("%s/%d: committed %d before the failover, %d after", o.Topic, o.Partition, o.At, a.At)
		}
	})

	second := newClient(t, c, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	read := map[int32][]int64{}
	for done := false; !done; {
		fs := second.PollRecords(ctx, 1000)
		if ctx.Err() != nil {
			t.Fatalf("second group member: %v", ctx.Err())
		}
		for _, r := range fs.Records() {
			read[r.Partition] = append(read[r.Partition], r.Offset)
		}
		done = true
		for p, end := range ends {
			if l := read[p]; from[p] < end && (len(l) == 0 || l[len(l)-1] < end-1) {
				done = false
			}
		}
	}
	for p, end := range ends {
		offs := read[p]
		if int64(len(offs)) != end-from[p] || (len(offs) > 0 && offs[0] != from[p]) {
			t.Errorf("partition %d: the second member read %d records from offset %v, want %d from its commit at %d", p, len(offs), first0(offs), end-from[p], from[p])
			continue
		}
		for i, o := range offs {
			if o != from[p]+int64(i) {
				t.Errorf("partition %d: offset %d at position %d: gap or duplicate", p, o, i)
				break
			}
		}
	}
	must(t, c.Restart(old))
}

func first0(offs []int64) any {
	if len(offs) == 0 {
		return "-"
	}
	return offs[0]
}

// TestClusterLeaderIsolatedNoAcks cuts the leader off from the other nodes
// while an acks=all idempotent producer writes. The isolated old leader,
// which clients can still reach, must not acknowledge a single write
// (probed with produce requests sent straight to it); the majority elects
// a new leader and takes the producer's writes; after healing, every
// acknowledged record is in the log exactly once and no probe is.
func TestClusterLeaderIsolatedNoAcks(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.Partitions(3), cluster.FastTimeouts())
	ctx := waitCtx(t, 90*time.Second)
	prod := newClient(t, c, kgo.DefaultProduceTopic("orders"), kgo.MaxBufferedRecords(20_000))
	a := newAcks()
	produced := make(chan struct{})
	go produceSeq(ctx, prod, a, 0, failoverRecords, func() { close(produced) })

	must(t, a.waitCount(ctx, failoverRecords/3))
	old, err := c.WaitLeader(ctx)
	must(t, err)
	probe := newClient(t, c, kgo.SeedBrokers(c.Node(old).KafkaAddr()))
	c.Isolate(old)
	isolatedAt, ackedAt := time.Now(), a.n.Load()
	probes := make(chan map[int16]int, 1)
	stopProbe := make(chan struct{})
	info, _ := c.Node(old).Store().Topic("orders")
	go func() { probes <- probeProduce(ctx, t, probe, info.ID, stopProbe) }()

	next, err := c.WaitNewLeader(ctx, old)
	must(t, err)
	t.Logf("node %d isolated at %d acks; node %d leads after %v", old+1, ackedAt, next+1, time.Since(isolatedAt))
	must(t, a.waitCount(ctx, ackedAt+failoverRecords/3))
	close(stopProbe)
	codes := <-probes
	t.Logf("probes of the isolated node answered %v (error code: count); the majority acknowledged %d records meanwhile", codes, a.n.Load()-ackedAt)
	if codes[0] > 0 {
		t.Errorf("the isolated old leader acknowledged %d writes", codes[0])
	}
	answered := 0
	for code, n := range codes {
		switch code {
		case -1, 0:
		case 6, 7: // NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT
			answered += n
		default:
			t.Errorf("the isolated node answered %d probes with error code %d", n, code)
		}
	}
	if answered == 0 {
		t.Error("no probe of the isolated node was answered: the test saw nothing")
	}
	c.Heal(old)
	must(t, c.WaitHealthy(ctx))
	select {
	case <-produced:
	case <-ctx.Done():
		t.Fatalf("producer did not finish: %d acknowledged", a.n.Load())
	}
	checkLog(t, a, readLog(ctx, t, c, "orders"), failoverRecords)
}

// probeProduce sends acks=all produce requests, one at a time, straight to
// the probe client's seed broker until stop, and counts the answers by
// error code (-1 for a request that failed without an answer). Probe
// values are 8-byte sequence numbers with the top bit set, which checkLog
// reports if any reaches the log.
func probeProduce(ctx context.Context, t *testing.T, cl *kgo.Client, topicID [16]byte, stop <-chan struct{}) map[int16]int {
	codes := map[int16]int{}
	seed := cl.SeedBrokers()[0]
	for i := uint64(0); ; i++ {
		select {
		case <-stop:
			return codes
		case <-time.After(5 * time.Millisecond):
		}
		batch := encodeBatch(t, binary.BigEndian.AppendUint64(nil, 1<<63|i))
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 500
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "orders", topicID // v13+ names topics by ID
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = int32(i%3), batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := seed.Request(rctx, req)
		cancel()
		if err != nil {
			codes[-1]++
			continue
		}
		pr := resp.(*kmsg.ProduceResponse)
		for _, t := range pr.Topics {
			for _, p := range t.Partitions {
				codes[p.ErrorCode]++
			}
		}
	}
}
