package broker

// ListGroups, key 16, versions 0-5.
//
// Behaviour: lists the live groups and the groups that have committed
// offsets but no members (state Empty, protocol type unknown: kbox keeps
// no group metadata once the last member has left). Only the coordinator
// (the Raft leader) answers; other nodes say NOT_COORDINATOR. Every group
// is a classic group.
//
// Version notes: v3 is flexible, v4 filters by state (KIP-518), v5 by
// type (KIP-848); both filters ignore case, as Kafka's do.

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var listGroupsAPI = api{key: 16, min: 0, max: 5, handle: handleListGroups}

func handleListGroups(b *Broker, _ context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.ListGroupsRequest)
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	all, code := b.groups.list()
	if resp.ErrorCode = code; code != 0 {
		return resp, nil
	}
	for _, g := range all {
		if !matchesAny(r.StatesFilter, g.state.String()) || !matchesAny(r.TypesFilter, "classic") {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = g.name, g.protocolType, g.state.String(), "classic"
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}

// matchesAny reports whether s is in filter, ignoring case; an empty
// filter matches everything.
func matchesAny(filter []string, s string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		if strings.EqualFold(f, s) {
			return true
		}
	}
	return false
}
