package broker

// Classic consumer groups (the JoinGroup / SyncGroup protocol).
//
// Membership, generations and assignments are in memory, as in Kafka's
// coordinator cache; committed offsets are durable through the replicated
// log (storage.CommitOffsets). Unlike Kafka, membership is not written to
// the log: after a restart or a leader change members rejoin with
// UNKNOWN_MEMBER_ID, which every client handles, and resume from their
// committed offsets.
//
// Goroutines: groups owns one goroutine per live group (group.manage). All
// of a group's state is touched only there; handlers hand it closures
// through group.ctl and timers post closures the same way, so no group
// state needs a lock. A group that empties stays Empty, as Kafka keeps it
// (DescribeGroups and ListGroups show it with its protocol type, a new
// join continues its generations), for groupsConfig.emptyRetention; then,
// or at once for a group that never had a member, its goroutine stops and
// the group is forgotten, its protocol type remembered while it has
// committed offsets. The next request creates it again. A group also
// stops when this node stops leading (checked on every request and every
// groupsConfig.leaderCheck) and when the broker closes. Requests parked
// in JoinGroup or SyncGroup are always answered: by the rebalance, by a
// removal or fencing, or with NOT_COORDINATOR when the group stops; their
// handlers also give up when the broker closes.
//
// The state machine follows Apache Kafka's classic group coordinator
// (GroupMetadataManager / ClassicGroup in group-coordinator): Empty ->
// PreparingRebalance -> CompletingRebalance -> Stable, with Dead for a
// stopped group. The broker never assigns: the leader member's SyncGroup
// carries every assignment.

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// groupsConfig holds the coordinator's settings; newGroups sets kbox's
// defaults, tests shorten them.
type groupsConfig struct {
	// initialDelay is group.initial.rebalance.delay.ms: how long the first
	// rebalance of an empty group waits for more members. Kafka's default
	// is 3000 ms, meant for production start-ups; kbox is a development
	// broker and uses 50 ms so a lone consumer starts at once.
	initialDelay time.Duration
	// minSession and maxSession are group.min.session.timeout.ms (6000)
	// and group.max.session.timeout.ms (1800000), as in Kafka, so client
	// settings that work here work there.
	minSession, maxSession time.Duration
	// newMemberJoin bounds how long a new member's parked JoinGroup may
	// wait (Kafka's fixed 5 minutes).
	newMemberJoin time.Duration
	// leaderCheck is how often an idle group checks that this node still
	// leads; requests check on every call.
	leaderCheck time.Duration
	// maxMetadata is offset.metadata.max.bytes (4096).
	maxMetadata int
	// emptyRetention is how long a group that emptied stays Empty before
	// it is forgotten. Kafka removes an Empty group without offsets at
	// its next offsets.retention.check.interval.ms (600000) check.
	emptyRetention time.Duration
}

func defaultGroupsConfig() groupsConfig {
	return groupsConfig{
		initialDelay:   50 * time.Millisecond,
		minSession:     6 * time.Second,
		maxSession:     30 * time.Minute,
		newMemberJoin:  5 * time.Minute,
		leaderCheck:    time.Second,
		maxMetadata:    4096,
		emptyRetention: 10 * time.Minute,
	}
}

// groupState is a classic group's state; String gives Kafka's names.
type groupState uint8

const (
	groupEmpty groupState = iota
	groupPreparingRebalance
	groupCompletingRebalance
	groupStable
	groupDead
)

func (s groupState) String() string {
	switch s {
	case groupEmpty:
		return "Empty"
	case groupPreparingRebalance:
		return "PreparingRebalance"
	case groupCompletingRebalance:
		return "CompletingRebalance"
	case groupStable:
		return "Stable"
	}
	return "Dead"
}

// groups coordinates classic consumer groups for one broker.
type groups struct {
	b   *Broker
	cfg groupsConfig

	mu    sync.Mutex
	epoch int32 // leader epoch the live groups belong to
	live  map[string]*group
	// types remembers the protocol type of groups whose goroutine stopped
	// while Empty with committed offsets: Kafka keeps a group's metadata,
	// so DescribeGroups and ListGroups still say "consumer" for a group
	// that only has offsets.
	types  map[string]string
	closed bool
	wg     sync.WaitGroup
}

func newGroups(b *Broker) *groups {
	return &groups{b: b, cfg: defaultGroupsConfig(), live: map[string]*group{}, types: map[string]string{}}
}

// close stops every group's goroutine and waits for them.
func (gs *groups) close() {
	gs.mu.Lock()
	gs.closed = true
	gs.stopAllLocked()
	gs.mu.Unlock()
	gs.wg.Wait()
}

func (gs *groups) stopAllLocked() {
	for name, g := range gs.live {
		delete(gs.live, name)
		g.stop()
	}
}

// coordinator reports the leader epoch when this node coordinates groups,
// or the error code to answer with.
func (gs *groups) coordinator() (int32, int16) {
	id, epoch, ok := gs.b.repl.Leader()
	switch {
	case !ok:
		return 0, kerr.CoordinatorNotAvailable.Code
	case id != gs.b.cfg.NodeID:
		return 0, kerr.NotCoordinator.Code
	}
	return epoch, 0
}

// currentLocked checks leadership and drops the groups of an older leader
// epoch; callers hold gs.mu.
func (gs *groups) currentLocked() int16 {
	epoch, code := gs.coordinator()
	if code != 0 {
		return code
	}
	if gs.closed {
		return kerr.CoordinatorNotAvailable.Code
	}
	if epoch != gs.epoch {
		gs.stopAllLocked()
		gs.epoch = epoch
	}
	return 0
}

// get returns the live group name, creating it when create is set. A nil
// group with code 0 means it does not exist.
func (gs *groups) get(name string, create bool) (*group, int16) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if code := gs.currentLocked(); code != 0 {
		return nil, code
	}
	g := gs.live[name]
	if g == nil && create {
		g = newGroup(gs, name, gs.epoch)
		gs.live[name] = g
		gs.wg.Add(1)
		go g.manage()
	}
	return g, 0
}

// run executes fn on the goroutine of group name and returns once it has
// run. found is false when the group does not exist (and create is off)
// or when code is set.
func (gs *groups) run(ctx context.Context, name string, create bool, fn func(*group)) (found bool, code int16) {
	for {
		g, code := gs.get(name, create)
		if code != 0 || g == nil {
			return false, code
		}
		done := make(chan struct{})
		select {
		case g.ctl <- func() { fn(g); close(done) }:
			<-done
			return true, 0
		case <-g.quit: // stopped meanwhile: look it up again
		case <-ctx.Done():
			return false, kerr.CoordinatorNotAvailable.Code
		}
	}
}

// groupListing is one group as ListGroups shows it.
type groupListing struct {
	name, protocolType string
	state              groupState
}

// list returns the live groups and the groups that only have committed
// offsets (Empty), or the error code when this node does not coordinate.
func (gs *groups) list() ([]groupListing, int16) {
	names, err := gs.b.store.Groups()
	if err != nil {
		return nil, kerr.UnknownServerError.Code
	}
	var stored []string
	for _, name := range names {
		if gs.hasOffsets(name) { // OffsetDelete may have emptied it
			stored = append(stored, name)
		}
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if code := gs.currentLocked(); code != 0 {
		return nil, code
	}
	var out []groupListing
	for name, g := range gs.live {
		out = append(out, groupListing{name: name, protocolType: g.pubType, state: g.pubState})
	}
	for _, name := range stored {
		if gs.live[name] == nil {
			out = append(out, groupListing{name: name, protocolType: gs.types[name], state: groupEmpty})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, 0
}

// hasOffsets reports whether the store holds committed offsets for group.
func (gs *groups) hasOffsets(group string) bool {
	offs, err := gs.b.store.GroupOffsets(group)
	return err == nil && len(offs) > 0
}

// Entry points for the handlers.

// join validates and runs a JoinGroup and waits for its answer.
func (gs *groups) join(ctx context.Context, name string, a *joinArgs) joinResult {
	fail := func(code int16) joinResult { return joinResult{code: code, generation: -1, memberID: a.memberID} }
	switch {
	case name == "":
		return fail(kerr.InvalidGroupID.Code)
	case a.sessionTimeout < gs.cfg.minSession || a.sessionTimeout > gs.cfg.maxSession:
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	a.reply = make(chan joinResult, 1)
	if _, code := gs.run(ctx, name, true, func(g *group) { g.join(a) }); code != 0 {
		return fail(code)
	}
	select {
	case res := <-a.reply:
		return res
	case <-ctx.Done():
		return fail(kerr.NotCoordinator.Code)
	}
}

// sync runs a SyncGroup and waits for its answer.
func (gs *groups) sync(ctx context.Context, name string, a *syncArgs) syncResult {
	if name == "" {
		return syncResult{code: kerr.InvalidGroupID.Code}
	}
	a.reply = make(chan syncResult, 1)
	found, code := gs.run(ctx, name, false, func(g *group) { g.sync(a) })
	switch {
	case code != 0:
		return syncResult{code: code}
	case !found:
		return syncResult{code: kerr.UnknownMemberID.Code}
	}
	select {
	case res := <-a.reply:
		return res
	case <-ctx.Done():
		return syncResult{code: kerr.NotCoordinator.Code}
	}
}

// heartbeat runs a Heartbeat.
func (gs *groups) heartbeat(ctx context.Context, name string, gen int32, id string, instanceID *string) int16 {
	if name == "" {
		return kerr.InvalidGroupID.Code
	}
	var res int16
	found, code := gs.run(ctx, name, false, func(g *group) { res = g.heartbeat(gen, id, instanceID) })
	switch {
	case code != 0:
		return code
	case !found:
		return kerr.UnknownMemberID.Code
	}
	return res
}

// leave runs a LeaveGroup, filling each entry's code; the returned code is
// for the whole request. Every member of an unknown group gets
// UNKNOWN_MEMBER_ID and the request none, as Kafka answers (v0-v2 carry
// the member's code at the top level).
func (gs *groups) leave(ctx context.Context, name string, ls []leaving) int16 {
	if name == "" {
		return kerr.InvalidGroupID.Code
	}
	found, code := gs.run(ctx, name, false, func(g *group) { g.leave(ls) })
	if code != 0 {
		return code
	}
	if !found {
		for i := range ls {
			ls[i].code = kerr.UnknownMemberID.Code
		}
	}
	return 0
}

// validateCommit checks whether an OffsetCommit may be stored. A group
// that is not live accepts simple commits (generation < 0); others get
// UNKNOWN_MEMBER_ID if it has offsets, else GROUP_ID_NOT_FOUND from v9
// and ILLEGAL_GENERATION before, as Kafka answers.
func (gs *groups) validateCommit(ctx context.Context, name string, version int16, gen int32, id string, instanceID *string) int16 {
	if name == "" {
		return kerr.InvalidGroupID.Code
	}
	var res int16
	found, code := gs.run(ctx, name, false, func(g *group) { res = g.validateCommit(gen, id, instanceID) })
	switch {
	case code != 0:
		return code
	case found:
		return res
	case gen < 0:
		return 0
	case gs.hasOffsets(name):
		return kerr.UnknownMemberID.Code
	case version >= 9:
		return kerr.GroupIDNotFound.Code
	}
	return kerr.IllegalGeneration.Code
}

// describe describes one group: a live one from its goroutine, one with
// only offsets as Empty. found is false for any other, described as Dead
// (Kafka's answer for unknown groups, with GROUP_ID_NOT_FOUND from
// DescribeGroups v6).
func (gs *groups) describe(ctx context.Context, name string) (d groupDescription, found bool, code int16) {
	found, code = gs.run(ctx, name, false, func(g *group) { d = g.describe() })
	switch {
	case code != 0:
		return groupDescription{state: groupDead}, false, code
	case found:
		return d, true, 0
	case gs.hasOffsets(name):
		gs.mu.Lock()
		typ := gs.types[name]
		gs.mu.Unlock()
		return groupDescription{state: groupEmpty, protocolType: typ}, true, 0
	}
	return groupDescription{state: groupDead}, false, 0
}

// retireForDelete stops a live group that has no members so its offsets
// can be deleted. It reports whether the group was live and the code
// (NON_EMPTY_GROUP for a group with members).
func (gs *groups) retireForDelete(ctx context.Context, name string) (bool, int16) {
	var res int16
	found, code := gs.run(ctx, name, false, func(g *group) {
		if g.active() {
			res = kerr.NonEmptyGroup.Code
			return
		}
		g.state = groupDead
	})
	if res == 0 {
		gs.mu.Lock()
		delete(gs.types, name)
		gs.mu.Unlock()
	}
	if code != 0 {
		return false, code
	}
	return found, res
}

// offsetDeleteCheck reports, for OffsetDelete, whether the group is live,
// whether it has members, its protocol type and its subscribed topics.
type offsetDeleteCheck struct {
	live, active bool
	protocolType string
	subscribed   map[string]bool
}

func (gs *groups) checkOffsetDelete(ctx context.Context, name string) (offsetDeleteCheck, int16) {
	var c offsetDeleteCheck
	found, code := gs.run(ctx, name, false, func(g *group) {
		c = offsetDeleteCheck{active: g.active(), protocolType: g.protocolType, subscribed: g.subscribed}
	})
	c.live = found
	return c, code
}

// subscribedTo reports whether an active group consumes topic, so its
// offsets must stay (GROUP_SUBSCRIBED_TO_TOPIC). Unknown subscriptions
// count as subscribed.
func (c offsetDeleteCheck) subscribedTo(topic string) bool {
	return c.active && (c.subscribed == nil || c.subscribed[topic])
}

// coordinatorCode maps a propose error for a group API: a node that lost
// the lead is no longer the coordinator.
func coordinatorCode(err error) int16 {
	if errors.Is(err, ErrNotLeader) {
		return kerr.NotCoordinator.Code
	}
	return errorCode(err)
}
