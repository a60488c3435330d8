package cluster_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/cluster"
)

// TestClusterMetadataEveryNode: every node's Metadata lists all nodes at
// their advertised addresses, every partition led by the Raft leader in
// the current epoch with all nodes as replicas and ISR; a killed node
// leaves the ISR and the leader's broker list.
func TestClusterMetadataEveryNode(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.Partitions(2), cluster.FastTimeouts())
	ctx := waitCtx(t, 30*time.Second)
	leader, err := c.WaitLeader(ctx)
	must(t, err)
	for i := 0; i < 3; i++ {
		md := metadata(ctx, t, c.Node(i).KafkaAddr(), "orders")
		var brokers []string
		for _, b := range md.Brokers {
			brokers = append(brokers, fmt.Sprintf("%d@%s", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))))
		}
		var want []string
		for j := 0; j < 3; j++ {
			want = append(want, fmt.Sprintf("%d@%s", j+1, c.Node(j).KafkaAddr()))
		}
		if !slices.Equal(brokers, want) {
			t.Errorf("node %d lists brokers %v, want %v", i+1, brokers, want)
		}
		for _, p := range md.Topics[0].Partitions {
			if p.Leader != int32(leader+1) || !slices.Equal(p.Replicas, []int32{1, 2, 3}) || !slices.Equal(p.ISR, []int32{1, 2, 3}) {
				t.Errorf("node %d: partition %d leader %d replicas %v isr %v; want leader %d, all three in both", i+1, p.Partition, p.Leader, p.Replicas, p.ISR, leader+1)
			}
			if want := int32(c.Node(leader).Status().Epoch); p.LeaderEpoch != want {
				t.Errorf("node %d: leader epoch %d, want %d", i+1, p.LeaderEpoch, want)
			}
		}
	}
	dead := (leader + 1) % 3
	c.Kill(dead)
	must(t, retry(ctx, func() error {
		md := metadata(ctx, t, c.Node(leader).KafkaAddr(), "orders")
		isr := md.Topics[0].Partitions[0].ISR
		if len(md.Brokers) != 2 || slices.Contains(isr, int32(dead+1)) {
			return fmt.Errorf("%d brokers, isr %v after node %d died", len(md.Brokers), isr, dead+1)
		}
		return nil
	}))
}

// TestClusterAdminFromFollower: admin requests and producer-ID requests
// sent to a follower work (it forwards them to the leader), while produce
// to a follower answers NOT_LEADER_OR_FOLLOWER so the client moves.
func TestClusterAdminFromFollower(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.FastTimeouts())
	ctx := waitCtx(t, 30*time.Second)
	leader, err := c.WaitLeader(ctx)
	must(t, err)
	follower := (leader + 1) % 3
	addr := c.Node(follower).KafkaAddr()

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "made-on-a-follower", 2, -1
	create.Topics, create.TimeoutMillis = append(create.Topics, ct), 5000
	cr := request(ctx, t, addr, create).(*kmsg.CreateTopicsResponse)
	if err := kerr.ErrorForCode(cr.Topics[0].ErrorCode); err != nil {
		t.Fatalf("CreateTopics on a follower: %v", err)
	}
	for i := 0; i < 3; i++ {
		if info, ok := c.Node(i).Store().Topic("made-on-a-follower"); !ok || info.Partitions != 2 {
			// The follower returns once it applied the topic; others soon.
			must(t, retry(ctx, func() error {
				if _, ok := c.Node(i).Store().Topic("made-on-a-follower"); !ok {
					return fmt.Errorf("node %d has no topic", i+1)
				}
				return nil
			}))
		}
	}

	pid := request(ctx, t, addr, kmsg.NewPtrInitProducerIDRequest()).(*kmsg.InitProducerIDResponse)
	if err := kerr.ErrorForCode(pid.ErrorCode); err != nil || pid.ProducerID < 0 {
		t.Fatalf("InitProducerID on a follower: %v, id %d", err, pid.ProducerID)
	}

	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("auto-made-on-a-follower")
	md.Topics, md.AllowAutoTopicCreation = append(md.Topics, mt), true
	mr := request(ctx, t, addr, md).(*kmsg.MetadataResponse)
	if err := kerr.ErrorForCode(mr.Topics[0].ErrorCode); err != nil {
		t.Fatalf("auto-creation through a follower's Metadata: %v", err)
	}

	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 1000
	pt := kmsg.NewProduceRequestTopic()
	info, _ := c.Node(follower).Store().Topic("orders")
	pt.Topic, pt.TopicID = "orders", info.ID // v13+ names topics by ID
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = encodeBatch(t, []byte("to a follower"))
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	pr := request(ctx, t, addr, prod).(*kmsg.ProduceResponse)
	if code := pr.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to a follower answered %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
	}
}

// request sends one request to the broker at addr and returns its answer.
func request(ctx context.Context, t *testing.T, addr string, req kmsg.Request) kmsg.Response {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	must(t, err)
	defer cl.Close()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	must(t, err)
	return resp
}

func metadata(ctx context.Context, t *testing.T, addr, topic string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	return request(ctx, t, addr, req).(*kmsg.MetadataResponse)
}
