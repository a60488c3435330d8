package broker

// DeleteGroups, key 42, versions 0-2.
//
// Behaviour: deletes groups without members and their committed offsets
// through the replicated log (one DeleteGroups command for the request).
// A group with members gets NON_EMPTY_GROUP; a group that is neither live
// nor has offsets gets GROUP_ID_NOT_FOUND.
//
// Omissions: v3 (error messages).
//
// Version notes: v1 is v0 with throttling, v2 is flexible.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kbox-dev/kbox/broker/storage"
)

var deleteGroupsAPI = api{key: 42, min: 0, max: 2, handle: handleDeleteGroups}

func handleDeleteGroups(b *Broker, ctx context.Context, req *request) (kmsg.Response, error) {
	r := req.Request.(*kmsg.DeleteGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	var (
		cmd   storage.DeleteGroups
		slots []int  // response index of each group in cmd
		live  []bool // whether that group was live
	)
	for _, name := range r.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = name
		if name == "" {
			rg.ErrorCode = kerr.InvalidGroupID.Code
		} else {
			wasLive, code := b.groups.retireForDelete(ctx, name)
			if rg.ErrorCode = code; code == 0 {
				cmd.Groups = append(cmd.Groups, name)
				slots, live = append(slots, len(resp.Groups)), append(live, wasLive)
			}
		}
		resp.Groups = append(resp.Groups, rg)
	}
	if len(cmd.Groups) == 0 {
		return resp, nil
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	res, err := b.propose(pctx, cmd)
	cancel()
	errs, _ := res.([]error)
	for i, at := range slots {
		rg := &resp.Groups[at]
		switch {
		case err != nil:
			rg.ErrorCode = coordinatorCode(err)
		case i < len(errs) && errors.Is(errs[i], storage.ErrUnknownGroup) && live[i]:
			// A live group without offsets: deleting it was all there was.
		case i < len(errs):
			rg.ErrorCode = errorCode(errs[i])
		}
	}
	return resp, nil
}
