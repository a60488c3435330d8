package broker

import "sort"

// api is one served API key: the version range and its handler. The table
// below is the one list behind dispatch and ApiVersions.
type api struct {
	key      int16
	min, max int16
	handle   handlerFunc
	// doneWithFrame says the handler keeps nothing of the request frame
	// once it returns (decoded byte fields alias the frame), so the
	// connection reads its next frame into the same memory.
	doneWithFrame bool
}

// apis lists every API key this broker serves. Each entry lives in the
// file of its key (produceAPI in 00_produce.go, ...).
func apis() []api {
	return []api{
		produceAPI,
		fetchAPI,
		listOffsetsAPI,
		metadataAPI,
		offsetCommitAPI,
		offsetFetchAPI,
		findCoordinatorAPI,
		joinGroupAPI,
		heartbeatAPI,
		leaveGroupAPI,
		syncGroupAPI,
		describeGroupsAPI,
		listGroupsAPI,
		apiVersionsAPI,
		createTopicsAPI,
		deleteTopicsAPI,
		deleteRecordsAPI,
		initProducerIDAPI,
		offsetForLeaderEpochAPI,
		describeConfigsAPI,
		alterConfigsAPI,
		describeLogDirsAPI,
		createPartitionsAPI,
		deleteGroupsAPI,
		incrementalAlterConfigsAPI,
		offsetDeleteAPI,
		describeClusterAPI,
	}
}

// apiIndex indexes apis by key; each Broker builds one in New.
type apiIndex map[int16]api

func newAPIIndex() apiIndex {
	m := apiIndex{}
	for _, a := range apis() {
		m[a.key] = a
	}
	return m
}

// sorted returns the served APIs in key order.
func (ix apiIndex) sorted() []api {
	out := make([]api, 0, len(ix))
	for _, a := range ix {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}
