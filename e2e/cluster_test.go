package e2e

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// freeAddr reserves a loopback port for a listener that must keep its
// address across restarts (a Raft address is part of the cluster's
// configuration).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestClusterOfProcessesLeaderKill runs three `kbox up` processes as one
// cluster (the first bootstraps, the others --join it), kills the leader
// with SIGKILL in the middle of an idempotent acks=all produce, and checks
// that every acknowledged record is on the survivors exactly once; the
// killed node then restarts from its data and rejoins.
func TestClusterOfProcessesLeaderKill(t *testing.T) {
	var nodes [3]*kboxProc
	raft := [3]string{freeAddr(t), freeAddr(t), freeAddr(t)}
	for i := range nodes {
		args := []string{"--node-id", strconv.Itoa(i + 1), "--raft-addr", raft[i]}
		if i > 0 {
			args = append(args, "--join", raft[0])
		}
		nodes[i] = startKbox(t, args...)
	}
	seeds := []string{nodes[0].Addr, nodes[1].Addr, nodes[2].Addr}
	ctx := testCtx(t, 90*time.Second)
	cl := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("ha"),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	waitFor(t, 30*time.Second, func() error {
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if len(resp.Brokers) != 3 {
			return fmt.Errorf("metadata lists %d brokers", len(resp.Brokers))
		}
		return nil
	})
	createTopic(t, seeds[1], "ha", 3, nil) // through a follower: forwarded to the leader

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
	)
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			wg.Add(1)
			v := fmt.Sprintf("r%05d", i)
			cl.Produce(ctx, kgo.StringRecord(v), func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err == nil {
					mu.Lock()
					acked[v] = true
					mu.Unlock()
				}
			})
		}
	}
	produce(0, 2000)
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	leader := int(resp.ControllerID) - 1
	if leader < 0 || leader > 2 {
		t.Fatalf("metadata names controller %d", resp.ControllerID)
	}
	produce(2000, 4000)
	nodes[leader].Kill(t)
	t.Logf("killed node %d (the leader) with SIGKILL", leader+1)
	produce(4000, 6000)
	wg.Wait()
	// kgo retries through the failover (idempotently), so every record is
	// acknowledged in the end.
	if len(acked) != 6000 {
		t.Fatalf("%d of 6000 records acknowledged across the kill", len(acked))
	}

	survivor := seeds[(leader+1)%3]
	counts := valueCounts(readAll(t, survivor, "ha"))
	for v := range acked {
		if counts[v] != 1 {
			t.Errorf("acknowledged record %s is in the log %d times", v, counts[v])
		}
	}
	for v, n := range counts {
		if n > 1 {
			t.Errorf("record %s is in the log %d times", v, n)
		}
	}

	// The killed node restarts from its data, rejoins and serves the same log.
	nodes[leader] = startKboxIn(t, nodes[leader].dir, nodes[leader].extra...)
	waitFor(t, 30*time.Second, func() error {
		got := valueCounts(readAll(t, nodes[leader].Addr, "ha"))
		if len(got) != len(counts) {
			return fmt.Errorf("restarted node reads %d records, survivors %d", len(got), len(counts))
		}
		return nil
	})
}
