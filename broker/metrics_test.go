package broker_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/cluster"
)

func TestMetricsCountRecordsBytesAndGroups(t *testing.T) {
	n, err := cluster.StartNode(cluster.Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()), kgo.DefaultProduceTopic("m"), kgo.AllowAutoTopicCreation(),
		kgo.ConsumerGroup("mg"), kgo.ConsumeTopics("m"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 5 {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < 5; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 5", got)
		}
		got += fs.NumRecords()
	}
	scrape := func() string {
		resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	body := scrape()
	for _, want := range []string{
		"kbox_broker_records_appended_total 5\n",
		`kbox_broker_groups{state="Stable"} 1` + "\n",
		`kbox_broker_requests_total{api="Produce",version="`,
		`kbox_partition_high_watermark{partition="0",topic="m"} 5` + "\n",
		"kbox_raft_state 2\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "kbox_broker_response_bytes_total 0\n") || !strings.Contains(body, "kbox_broker_response_bytes_total ") {
		t.Error("/metrics does not count response bytes")
	}
}
