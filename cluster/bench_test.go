package cluster_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kbox-dev/kbox/cluster"
)

// quietLogs keeps the nodes' logs out of the benchmark output, which make
// bench prints: elections, joins, and the dial errors a killed leader
// causes by design. A failure still fails the benchmark.
func quietLogs() cluster.Option {
	return cluster.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// BenchmarkClusterProduce measures acks=all produce throughput of 100-byte
// records on one node and on three (go test -bench ClusterProduce -run '^$'
// ./cluster/).
func BenchmarkClusterProduce(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			c := cluster.Start(b, cluster.Nodes(nodes), cluster.Topics("bench"), cluster.Partitions(3), cluster.FastTimeouts(), quietLogs())
			cl, err := kgo.NewClient(seeds(c), kgo.DefaultProduceTopic("bench"), kgo.MaxBufferedRecords(100_000), kgo.ProducerLinger(time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			value := make([]byte, 100)
			var wg sync.WaitGroup
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				wg.Add(1)
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
					wg.Done()
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}

// BenchmarkClusterFailover measures, over b.N kills of the leader, the time
// from the kill to the first acknowledged produce on the new leader, with
// kbox's default Raft timeouts and with FastTimeouts; it reports the
// median (go test -bench ClusterFailover -benchtime 5x -run '^$' ./cluster/).
func BenchmarkClusterFailover(b *testing.B) {
	for _, fast := range []bool{false, true} {
		b.Run(fmt.Sprintf("fast=%v", fast), func(b *testing.B) {
			opts := []cluster.Option{cluster.Nodes(3), cluster.Topics("bench"), quietLogs()}
			if fast {
				opts = append(opts, cluster.FastTimeouts())
			}
			c := cluster.Start(b, opts...)
			cl, err := kgo.NewClient(seeds(c), kgo.DefaultProduceTopic("bench"), kgo.MetadataMinAge(10*time.Millisecond),
				kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := cl.ProduceSync(ctx, kgo.StringRecord("warm-up")).FirstErr(); err != nil {
				b.Fatal(err)
			}
			var took []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				old, err := c.WaitLeader(ctx)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				c.Kill(old)
				if err := cl.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				b.StopTimer()
				if err := c.Restart(old); err != nil {
					b.Fatal(err)
				}
				if err := c.WaitHealthy(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "ms-median-failover")
		})
	}
}
