package cluster_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/cluster"
)

// TestMetadataListsDownNodeAsOfflineReplica: with one node of three
// killed, the leader still lists all three as replicas of every partition,
// the dead one as offline and out of the ISR, and brokers only the live ones.
func TestMetadataListsDownNodeAsOfflineReplica(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("r"), cluster.FastTimeouts())
	ctx := waitCtx(t, 30*time.Second)
	leader, err := c.WaitLeader(ctx)
	must(t, err)
	victim := (leader + 1) % 3
	c.Kill(victim)
	deadID := int32(victim + 1)

	// Ask the leader itself: only it drops unreachable nodes from Brokers.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Node(leader).KafkaAddr()))
	must(t, err)
	defer cl.Close()
	err = retry(ctx, func() error {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("r")
		req.Topics = append(req.Topics, rt)
		r, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.MetadataResponse)
		for _, b := range resp.Brokers {
			if b.NodeID == deadID {
				return fmt.Errorf("broker %d still listed", deadID)
			}
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) == 0 {
			return fmt.Errorf("topics %+v", resp.Topics)
		}
		for _, p := range resp.Topics[0].Partitions {
			switch {
			case !slices.Equal(p.Replicas, []int32{1, 2, 3}):
				return fmt.Errorf("partition %d replicas %v, want all three", p.Partition, p.Replicas)
			case !slices.Equal(p.OfflineReplicas, []int32{deadID}):
				return fmt.Errorf("partition %d offline %v, want [%d]", p.Partition, p.OfflineReplicas, deadID)
			case slices.Contains(p.ISR, deadID):
				return fmt.Errorf("partition %d ISR %v still holds %d", p.Partition, p.ISR, deadID)
			}
		}
		return nil
	})
	must(t, err)
}
