package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
)

// kafka-go speaks the old group versions (JoinGroup v2, SyncGroup,
// Heartbeat and LeaveGroup v0, OffsetCommit v2, OffsetFetch v1): two
// readers share the partitions, and when one closes the other takes over
// from the committed offsets.
func TestGroupKafkaGoReadersRebalance(t *testing.T) {
	addr := startGroupNode(t)
	const topic, group = "kgo-old", "g-kafka-go"
	prod := newGroupClient(t, addr)
	produceN(t, prod, topic, "a", 100)

	newReader := func() *kafka.Reader {
		return kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{addr}, GroupID: group, Topic: topic,
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond,
			StartOffset: kafka.FirstOffset, CommitInterval: 0,
			HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 10 * time.Second,
			RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 100 * time.Millisecond,
		})
	}
	type read struct {
		reader int
		value  string
		part   int
	}
	var (
		mu   sync.Mutex
		seen = map[string]read{}
		dups []string
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	consume := func(i int, r *kafka.Reader) <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					return // closed or ctx done
				}
				mu.Lock()
				// Records produced while the group is stable are read once;
				// at-least-once allows repeats across a rebalance.
				if _, ok := seen[string(m.Value)]; ok && m.Value[0] != 'a' {
					dups = append(dups, string(m.Value))
				}
				seen[string(m.Value)] = read{reader: i, value: string(m.Value), part: m.Partition}
				mu.Unlock()
				if err := r.CommitMessages(ctx, m); err != nil {
					return
				}
			}
		}()
		return done
	}
	count := func(want int) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != want {
				return fmt.Errorf("read %d of %d distinct messages", len(seen), want)
			}
			return nil
		}
	}
	r1, r2 := newReader(), newReader()
	d1 := consume(1, r1)
	// Let r1 own the group first, so r2's join is a rebalance.
	waitFor(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			return fmt.Errorf("r1 read nothing yet")
		}
		return nil
	})
	d2 := consume(2, r2)
	waitFor(t, 30*time.Second, count(100))
	adm := kadm.NewClient(prod)
	stable := func(members int) {
		t.Helper()
		waitFor(t, 30*time.Second, func() error {
			ds, err := adm.DescribeGroups(ctx, group)
			if err != nil {
				return err
			}
			if d := ds[group]; d.State != "Stable" || len(d.Members) != members {
				return fmt.Errorf("group %s with %d members", d.State, len(d.Members))
			}
			return nil
		})
	}
	stable(2)
	produceN(t, prod, topic, "b", 20)
	waitFor(t, 30*time.Second, count(120))
	mu.Lock()
	byReader := map[int]map[int]bool{1: {}, 2: {}}
	for v, r := range seen {
		if v[0] == 'b' {
			byReader[r.reader][r.part] = true
		}
	}
	mu.Unlock()
	if len(byReader[1]) == 0 || len(byReader[2]) == 0 || len(byReader[1])+len(byReader[2]) != groupTestPartitions {
		t.Fatalf("after the rebalance the readers consumed partitions %v and %v", byReader[1], byReader[2])
	}

	// r2 leaves; r1 gets every partition and resumes r2's from its commits.
	if err := r2.Close(); err != nil {
		t.Errorf("close r2: %v", err)
	}
	<-d2
	stable(1)
	produceN(t, prod, topic, "c", 20)
	waitFor(t, 30*time.Second, count(140))
	mu.Lock()
	for v, r := range seen {
		if v[0] == 'c' && r.reader != 1 {
			t.Errorf("%s read by reader %d after it left", v, r.reader)
		}
	}
	if len(dups) > 0 {
		t.Errorf("messages read twice: %v", dups)
	}
	mu.Unlock()
	if err := r1.Close(); err != nil {
		t.Errorf("close r1: %v", err)
	}
	<-d1
}
