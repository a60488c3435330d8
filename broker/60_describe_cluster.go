package broker

// DescribeCluster, key 60, versions 0-2.
//
// Behaviour: the cluster ID, the controller (the Raft leader, or -1 while
// there is none) and every node with its advertised address, as Metadata
// reports them. Every kbox node is both broker and controller, so a v1
// request for either endpoint type gets the same node list, echoing the
// type asked for. Without ACLs, authorized operations are every cluster
// operation when asked for and "not requested" (-2147483648) otherwise.
//
// kbox has no fenced brokers: every listed node is unfenced, whether or
// not v2's IncludeFencedBrokers asks for fenced ones too.
//
// Version notes: v1 adds EndpointType (KIP-919); v2 adds fenced brokers
// (KIP-1073), as Kafka 4.1 serves it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var describeClusterAPI = api{key: 60, min: 0, max: 2, handle: handleDescribeCluster}

// clusterOperations is the authorized-operations bitfield of every
// operation Kafka defines on the CLUSTER resource.
const clusterOperations int32 = 1<<kmsg.ACLOperationCreate | 1<<kmsg.ACLOperationAlter |
	1<<kmsg.ACLOperationDescribe | 1<<kmsg.ACLOperationClusterAction |
	1<<kmsg.ACLOperationDescribeConfigs | 1<<kmsg.ACLOperationAlterConfigs |
	1<<kmsg.ACLOperationIdempotentWrite

func handleDescribeCluster(b *Broker, _ context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = r.EndpointType
	resp.ClusterID = b.cfg.ClusterID
	resp.ControllerID = b.leaderID()
	resp.ClusterAuthorizedOperations = -2147483648
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOperations
	}
	for _, bi := range b.brokers() {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = bi.NodeID, bi.Host, bi.Port, bi.Rack
		resp.Brokers = append(resp.Brokers, rb)
	}
	return resp, nil
}
