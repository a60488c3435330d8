package broker

// DescribeGroups, key 15, versions 0-6.
//
// Behaviour: describes live groups from their goroutines: state, protocol
// type, members with client ID and host, and, for Stable groups only (as
// Kafka), the selected protocol and each member's metadata and
// assignment. A group whose members all left stays Empty with its
// protocol type (see groups.go), as does a group with committed offsets
// but no members. An unknown group is Dead: with no error before v6, with
// GROUP_ID_NOT_FOUND and Kafka's message "Group <id> not found." from v6.
// Authorized operations (v3+) report every group operation allowed: kbox
// has no ACLs.
//
// Version notes: v1 adds throttle time, v3 authorized operations
// (KIP-430), v4 group.instance.id (KIP-345), v5 is flexible, v6 adds the
// error message and GROUP_ID_NOT_FOUND for unknown groups (KIP-1043).

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var describeGroupsAPI = api{key: 15, min: 0, max: 6, handle: handleDescribeGroups}

// groupOperations is the authorized-operations bit set of a group with no
// ACLs: READ (3), DELETE (6) and DESCRIBE (8).
const groupOperations = 1<<3 | 1<<6 | 1<<8

func handleDescribeGroups(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.DescribeGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range r.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = name
		if r.IncludeAuthorizedOperations {
			rg.AuthorizedOperations = groupOperations
		}
		if name == "" {
			rg.ErrorCode, rg.State = kerr.InvalidGroupID.Code, groupDead.String()
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		d, found, code := b.groups.describe(ctx, name)
		rg.ErrorCode, rg.State, rg.ProtocolType, rg.Protocol = code, d.state.String(), d.protocolType, d.protocol
		if code == 0 && !found && r.Version >= 6 {
			rg.ErrorCode = kerr.GroupIDNotFound.Code
			rg.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Group %s not found.", name))
		}
		for _, m := range d.members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.id, m.instanceID, m.clientID, m.host
			rm.ProtocolMetadata, rm.MemberAssignment = m.metadata, m.assignment
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}
