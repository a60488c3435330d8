package cluster_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/cluster"
)

// ExampleNew starts a 3-node cluster in a program, writes through the
// leader, kills it, and writes again once a new leader took over.
func ExampleNew() {
	c, err := cluster.New(cluster.Nodes(3), cluster.Topics("orders"), cluster.FastTimeouts())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...),
		kgo.DefaultProduceTopic("orders"),
		kgo.MetadataMinAge(50*time.Millisecond), // notice the new leader at once
	)
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
		log.Fatal(err)
	}

	old, err := c.WaitLeader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	c.Kill(old)
	next, err := c.WaitNewLeader(ctx, old)
	if err != nil {
		log.Fatal(err)
	}
	r, err := cl.ProduceSync(ctx, kgo.StringRecord("after")).First()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leader moved:", next != old)
	fmt.Println("second record at offset", r.Offset)
	// Output:
	// leader moved: true
	// second record at offset 1
}

// TestExampleOrdersSurviveFailover is the example test of the package
// documentation and cluster/README.md, run as written.
func TestExampleOrdersSurviveFailover(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.FastTimeouts())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...),
		kgo.DefaultProduceTopic("orders"), kgo.ConsumeTopics("orders"), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	if err := cl.ProduceSync(ctx, kgo.StringRecord("order-1")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.Kill(c.Leader()) // the acknowledged record must survive
	if err := cl.ProduceSync(ctx, kgo.StringRecord("order-2")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %v: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if got[0] != "order-1" || got[1] != "order-2" {
		t.Fatalf("consumed %v", got)
	}
}
