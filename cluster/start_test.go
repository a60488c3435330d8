package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/cluster"
)

func TestClusterStartMetadata(t *testing.T) {
	start := time.Now()
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.Partitions(3), cluster.FastTimeouts())
	took := time.Since(start)
	t.Logf("3-node cluster started in %v", took)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 {
		t.Fatalf("brokers %v", md.Brokers)
	}
	t.Logf("%+v", md.Topics["orders"].Partitions)
}
