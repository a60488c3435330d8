package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topicSpec is one topic a target needs before the workloads run.
type topicSpec struct {
	name       string
	partitions int
}

// createTopicsKey is CreateTopics' API key.
const createTopicsKey = 19

// createTopics creates every topic up front with its partition count:
// with CreateTopics where the broker serves it, otherwise (kbox before it
// serves CreateTopics) by auto-creation through Metadata, restarting the
// broker with --partitions for each partition count. It returns a note
// for the report when it had to fall back.
func createTopics(ctx context.Context, b *broker, topics []topicSpec) (string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr()))
	if err != nil {
		return "", err
	}
	adm := kadm.NewClient(cl)
	vs, err := adm.ApiVersions(ctx)
	serves := false
	if err == nil {
		vs.Each(func(v kadm.BrokerApiVersions) {
			_, serves = v.KeyMaxVersion(createTopicsKey)
		})
	}
	cl.Close()
	if err != nil {
		return "", fmt.Errorf("api versions: %w", err)
	}
	if serves {
		return "", createWithRequest(ctx, b, topics)
	}
	return autoCreate(ctx, b, topics)
}

func createWithRequest(ctx context.Context, b *broker, topics []topicSpec) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr()))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range topics {
		res, err := adm.CreateTopic(ctx, int32(t.partitions), 1, nil, t.name)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			return fmt.Errorf("create topic %s: %w", t.name, err)
		}
	}
	return waitTopics(ctx, b, topics)
}

func autoCreate(ctx context.Context, b *broker, topics []topicSpec) (string, error) {
	byCount := map[int][]topicSpec{}
	var counts []int
	for _, t := range topics {
		if byCount[t.partitions] == nil {
			counts = append(counts, t.partitions)
		}
		byCount[t.partitions] = append(byCount[t.partitions], t)
	}
	sort.Ints(counts)
	for _, n := range counts {
		if n != b.partitions {
			if err := b.restart(ctx, n); err != nil {
				return "", fmt.Errorf("restart with %d partitions: %w", n, err)
			}
		}
		if err := metadataAutoCreate(ctx, b, byCount[n]); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%s does not serve CreateTopics yet: topics were auto-created through Metadata, restarting it with --partitions for each partition count", b.t.name), nil
}

// metadataAutoCreate asks for topics in a Metadata request that allows
// auto-creation (kgo sets AllowAutoTopicCreation from its config on the
// requests behind kadm's Metadata).
func metadataAutoCreate(ctx context.Context, b *broker, topics []topicSpec) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		return err
	}
	defer cl.Close()
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.name
	}
	if _, err := kadm.NewClient(cl).Metadata(ctx, names...); err != nil {
		return fmt.Errorf("auto-create %v: %w", names, err)
	}
	return waitTopics(ctx, b, topics)
}

// waitTopics waits until every topic exists with its partition count and
// every partition has a leader.
func waitTopics(ctx context.Context, b *broker, topics []topicSpec) error {
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		if last = topicsReady(ctx, b, topics); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("topics not ready after 1m: %w", last)
}

func topicsReady(ctx context.Context, b *broker, topics []topicSpec) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr()))
	if err != nil {
		return err
	}
	defer cl.Close()
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.name
	}
	details, err := kadm.NewClient(cl).ListTopics(ctx, names...)
	if err != nil {
		return err
	}
	for _, t := range topics {
		d, ok := details[t.name]
		switch {
		case !ok:
			return fmt.Errorf("topic %s missing", t.name)
		case d.Err != nil:
			return fmt.Errorf("topic %s: %w", t.name, d.Err)
		case len(d.Partitions) != t.partitions:
			return fmt.Errorf("topic %s has %d partitions, want %d", t.name, len(d.Partitions), t.partitions)
		}
		for _, p := range d.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return errors.Join(fmt.Errorf("topic %s partition %d has no leader", t.name, p.Partition), p.Err)
			}
		}
	}
	return nil
}
