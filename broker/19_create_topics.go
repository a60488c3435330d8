package broker

// CreateTopics, key 19, versions 2-7.
//
// Behaviour: topics are created through the replicated log. A node that
// cannot get the command committed (a follower that does not forward it
// to the Raft leader, or no leader at all) answers NOT_CONTROLLER, so the
// client refreshes Metadata, whose controller is the Raft leader, and
// retries there. Each topic is checked as Apache Kafka checks it: a legal name that
// does not collide with an existing topic when '.' and '_' are equated
// (INVALID_TOPIC_EXCEPTION), not already existing (TOPIC_ALREADY_EXISTS),
// a partition count above 0 or -1 for num.partitions (INVALID_PARTITIONS),
// a replication factor of -1 or at most the number of nodes
// (INVALID_REPLICATION_FACTOR), and known, valid configs (INVALID_CONFIG,
// naming the key). A name given twice in one request is INVALID_REQUEST.
// ValidateOnly runs every check and creates nothing. Successful answers
// (v5+) carry the partition count, the replication factor and every
// effective topic config with a real source: TOPIC_CONFIG for those set,
// DEFAULT_CONFIG for the rest; the Java Admin client fails on a null
// config list or a source of -1.
//
// Omissions: every partition lives on every node (Raft replicates the whole
// log), so a manual replica assignment is checked for shape and broker IDs
// and then only its partition count is used, and the reported replication
// factor is the number of nodes.
//
// Version notes: v0-1 are not served (Kafka 4 removed them, KIP-896); v4
// allows -1 partitions and replication factor (KIP-464); v5 is flexible and
// returns configs (KIP-525); v6 may return THROTTLING_QUOTA_EXCEEDED
// (KIP-599, never here); v7 returns topic IDs (KIP-516).

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var createTopicsAPI = api{key: 19, min: 2, max: 7, handle: handleCreateTopics}

// maxPartitions bounds one topic's partition count: each partition is
// created inside one state-machine transaction.
const maxPartitions = 10000

// adminTimeout bounds an admin request whose timeout field is not positive.
const adminTimeout = 60 * time.Second

func adminContext(ctx context.Context, millis int32) (context.Context, context.CancelFunc) {
	d := time.Duration(millis) * time.Millisecond
	if d <= 0 {
		d = adminTimeout
	}
	return context.WithTimeout(ctx, d)
}

// topicPlan is a checked CreateTopics entry.
type topicPlan struct {
	partitions int32
	rf         int16
	configs    map[string]string
}

func handleCreateTopics(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	count := map[string]int{}
	for _, t := range r.Topics {
		count[t.Topic]++
	}
	ctx, cancel := adminContext(ctx, r.TimeoutMillis)
	defer cancel()
	done := map[string]bool{}
	for i := range r.Topics {
		t := &r.Topics[i]
		if done[t.Topic] {
			continue
		}
		done[t.Topic] = true
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		var err error
		switch {
		case count[t.Topic] > 1:
			err = newAPIErr(kerr.InvalidRequest.Code, "topic %s is listed more than once", t.Topic)
		default:
			err = b.createOneTopic(ctx, t, r.ValidateOnly, &rt)
		}
		rt.ErrorCode, rt.ErrorMessage = answer(err)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// createOneTopic checks one topic, creates it unless validateOnly, and
// fills the success fields of rt.
func (b *Broker) createOneTopic(ctx context.Context, t *kmsg.CreateTopicsRequestTopic, validateOnly bool, rt *kmsg.CreateTopicsResponseTopic) error {
	plan, err := b.planTopic(t)
	if err != nil {
		return err
	}
	if !validateOnly {
		if err := b.createTopic(ctx, t.Topic, plan.partitions, plan.configs); err != nil {
			if errors.Is(err, storage.ErrTopicExists) {
				return topicExists(t.Topic)
			}
			return b.proposeErr(err)
		}
		if info, ok := b.store.Topic(t.Topic); ok {
			rt.TopicID = info.ID
		}
	}
	rt.NumPartitions, rt.ReplicationFactor = plan.partitions, plan.rf
	for _, e := range b.topicEntries(plan.configs) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		v := e.value
		c.Name, c.Value, c.ReadOnly, c.Source = e.name, &v, e.readOnly, int8(e.source)
		rt.Configs = append(rt.Configs, c)
	}
	return nil
}

func topicExists(name string) error {
	return newAPIErr(kerr.TopicAlreadyExists.Code, "topic '%s' already exists", name)
}

// planTopic runs every check of one CreateTopics entry against the
// current state.
func (b *Broker) planTopic(t *kmsg.CreateTopicsRequestTopic) (topicPlan, error) {
	if err := storage.ValidateTopicName(t.Topic); err != nil {
		return topicPlan{}, err
	}
	if _, ok := b.store.Topic(t.Topic); ok {
		return topicPlan{}, topicExists(t.Topic)
	}
	if other, ok := b.collision(t.Topic); ok {
		return topicPlan{}, newAPIErr(kerr.InvalidTopicException.Code, "topic '%s' collides with existing topic '%s': '.' and '_' are equivalent in metric names", t.Topic, other)
	}
	nodes := len(b.brokers())
	plan := topicPlan{partitions: t.NumPartitions, rf: int16(nodes)}
	switch {
	case len(t.ReplicaAssignment) > 0:
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return topicPlan{}, newAPIErr(kerr.InvalidRequest.Code, "a manual partition assignment was given, so numPartitions and replicationFactor must be -1")
		}
		if err := b.checkAssignment(t.ReplicaAssignment); err != nil {
			return topicPlan{}, err
		}
		plan.partitions = int32(len(t.ReplicaAssignment))
	case t.NumPartitions == 0 || t.NumPartitions < -1:
		return topicPlan{}, newAPIErr(kerr.InvalidPartitions.Code, "number of partitions was set to an invalid non-positive value %d", t.NumPartitions)
	case t.ReplicationFactor == 0 || t.ReplicationFactor < -1:
		return topicPlan{}, newAPIErr(kerr.InvalidReplicationFactor.Code, "replication factor must be larger than 0, or -1 to use the default value")
	case int(t.ReplicationFactor) > nodes:
		return topicPlan{}, newAPIErr(kerr.InvalidReplicationFactor.Code, "unable to replicate the partition %d time(s): the target replication factor of %d cannot be reached because only %d broker(s) are registered", t.ReplicationFactor, t.ReplicationFactor, nodes)
	}
	if plan.partitions == -1 {
		plan.partitions = b.cfg.DefaultPartitions
	}
	if plan.partitions > maxPartitions {
		return topicPlan{}, newAPIErr(kerr.InvalidPartitions.Code, "%d partitions is more than kbox's limit of %d per topic", plan.partitions, maxPartitions)
	}
	names := make([]string, len(t.Configs))
	values := make([]*string, len(t.Configs))
	for i, c := range t.Configs {
		names[i], values[i] = c.Name, c.Value
	}
	cfgs, err := validateTopicConfigs(names, values)
	if err != nil {
		return topicPlan{}, err
	}
	if len(cfgs) > 0 {
		plan.configs = cfgs
	}
	return plan, nil
}

// collision finds an existing topic whose name equals name once '.' and
// '_' are equated, as Kafka refuses such pairs.
func (b *Broker) collision(name string) (string, bool) {
	norm := strings.ReplaceAll(name, ".", "_")
	for _, t := range b.store.Topics() {
		if t.Name != name && strings.ReplaceAll(t.Name, ".", "_") == norm {
			return t.Name, true
		}
	}
	return "", false
}

// checkAssignment validates a manual replica assignment: partitions
// numbered from 0 without gaps, each on distinct, existing brokers.
func (b *Broker) checkAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) error {
	known := map[int32]bool{}
	for _, bi := range b.brokers() {
		known[bi.NodeID] = true
	}
	seen := map[int32]bool{}
	for _, a := range as {
		if a.Partition < 0 || int(a.Partition) >= len(as) || seen[a.Partition] {
			return newAPIErr(kerr.InvalidReplicaAssignment.Code, "partitions must be numbered 0 to %d, each once; got %d", len(as)-1, a.Partition)
		}
		seen[a.Partition] = true
		if err := checkReplicas(a.Partition, a.Replicas, known); err != nil {
			return err
		}
	}
	return nil
}

func checkReplicas(p int32, replicas []int32, known map[int32]bool) error {
	if len(replicas) == 0 {
		return newAPIErr(kerr.InvalidReplicaAssignment.Code, "partition %d has an empty replica list", p)
	}
	dup := map[int32]bool{}
	for _, id := range replicas {
		if !known[id] {
			return newAPIErr(kerr.InvalidReplicaAssignment.Code, "partition %d names unknown broker %d", p, id)
		}
		if dup[id] {
			return newAPIErr(kerr.InvalidReplicaAssignment.Code, "partition %d lists broker %d twice", p, id)
		}
		dup[id] = true
	}
	return nil
}
