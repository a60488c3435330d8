package broker

// Metadata, key 3, versions 0-13.
//
// Behaviour: lists every node from Config.Brokers; every partition is led
// by the Raft leader (the leader epoch is the Raft term) with all nodes as
// replicas and the caught-up ones as ISR. With AutoCreateTopics, unknown
// topics are created when the request allows it (v4+), like
// auto.create.topics.enable. Without a leader, partitions report
// LEADER_NOT_AVAILABLE so clients retry.
//
// Omissions: authorized operations are reported as "not requested"
// (-2147483648); there are no ACLs.
//
// Version notes: v10 adds topic IDs (KIP-516), v12 allows lookups by ID
// alone; v13 adds a top-level error code (KIP-1102, for rebootstrapping),
// always 0 here.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var metadataAPI = api{key: 3, min: 0, max: 13, handle: handleMetadata}

func handleMetadata(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	brokers := b.brokers()
	for _, bi := range brokers {
		rb := kmsg.NewMetadataResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = bi.NodeID, bi.Host, bi.Port, bi.Rack
		resp.Brokers = append(resp.Brokers, rb)
	}
	cid := b.cfg.ClusterID
	resp.ClusterID = &cid
	leader, epoch, hasLeader := b.repl.Leader()
	resp.ControllerID = leader
	if !hasLeader {
		resp.ControllerID = -1
	}
	replicas, isr, offline := b.replicaSets(brokers)

	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	var infos []storage.TopicInfo
	if all {
		infos = b.store.Topics()
	}
	for _, t := range r.Topics {
		rt := kmsg.NewMetadataResponseTopic()
		rt.AuthorizedOperations = -2147483648
		var (
			info storage.TopicInfo
			ok   bool
		)
		switch {
		case t.Topic != nil:
			info, ok = b.store.Topic(*t.Topic)
			rt.Topic = t.Topic
		case t.TopicID != [16]byte{}:
			info, ok = b.store.TopicByID(t.TopicID)
			rt.TopicID = t.TopicID
		}
		if !ok && t.Topic != nil && b.cfg.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation) {
			err := b.createTopic(ctx, *t.Topic, -1, nil)
			switch {
			case err == nil || errors.Is(err, storage.ErrTopicExists):
				info, ok = b.store.Topic(*t.Topic)
			case errors.Is(err, storage.ErrInvalidTopic):
				rt.ErrorCode = kerr.InvalidTopicException.Code
			default:
				rt.ErrorCode = kerr.LeaderNotAvailable.Code
			}
		}
		if !ok {
			if rt.ErrorCode == 0 {
				rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if t.Topic == nil {
					rt.ErrorCode = kerr.UnknownTopicID.Code
				}
			}
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		infos = append(infos, info)
	}
	for _, info := range infos {
		rt := kmsg.NewMetadataResponseTopic()
		rt.AuthorizedOperations = -2147483648
		name := info.Name
		rt.Topic, rt.TopicID = &name, info.ID
		for p := int32(0); p < info.Partitions; p++ {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition, rp.Leader, rp.LeaderEpoch = p, leader, epoch
			rp.Replicas, rp.ISR, rp.OfflineReplicas = replicas, isr, offline
			if !hasLeader {
				rp.ErrorCode, rp.Leader = kerr.LeaderNotAvailable.Code, -1
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// replicaSets returns the replica, in-sync and offline replica lists every
// partition shares: all members (Config.Replicas, else the listed nodes),
// those Config.InSync reports caught up, and the members missing from
// brokers.
func (b *Broker) replicaSets(brokers []BrokerInfo) (replicas, isr, offline []int32) {
	listed := map[int32]bool{}
	for _, bi := range brokers {
		replicas = append(replicas, bi.NodeID)
		listed[bi.NodeID] = true
	}
	if b.cfg.Replicas != nil {
		if all := b.cfg.Replicas(); len(all) > 0 {
			replicas = all
		}
	}
	offline = []int32{}
	for _, id := range replicas {
		if !listed[id] {
			offline = append(offline, id)
		}
	}
	isr = replicas
	if b.cfg.InSync != nil {
		isr = b.cfg.InSync()
	}
	return replicas, isr, offline
}
