package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kbox-dev/kbox/broker/storage"
)

// Option configures a [Cluster] started by [Start] or [New].
type Option func(*options)

type options struct {
	nodes      int
	topics     []string
	partitions int32
	fast       bool
	logger     *slog.Logger
	dir        string
	snapEvery  uint64
	noAuto     bool
}

// Nodes sets how many nodes the cluster starts with. Default 3.
func Nodes(n int) Option { return func(o *options) { o.nodes = n } }

// Topics creates these topics, each with [Partitions] partitions, before
// Start returns.
func Topics(names ...string) Option {
	return func(o *options) { o.topics = append(o.topics, names...) }
}

// Partitions is the partition count of [Topics] and of auto-created topics
// (num.partitions). Default 1.
func Partitions(n int32) Option { return func(o *options) { o.partitions = n } }

// FastTimeouts gives every node 100ms Raft heartbeat, election and lease
// timeouts (Config.FastTimeouts): the cluster starts in tens of
// milliseconds and elects a new leader within a few hundred after a kill.
// Without it nodes use kbox's defaults (500ms), as `kbox up` does.
func FastTimeouts() Option { return func(o *options) { o.fast = true } }

// WithLogger sends node logs to l, each with a "node" attribute. Default:
// the test's t.Log (prefixed "node N:") for [Start], discarded for [New].
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// DataDir keeps the nodes' data under dir (dir/node-1, …). Default: a
// temporary directory, t.TempDir() for [Start], removed by Close for [New].
func DataDir(dir string) Option { return func(o *options) { o.dir = dir } }

// SnapshotEvery makes nodes snapshot after every n log entries and keep
// only n/4 of them (at least 1) behind a snapshot, checking every 50ms, so
// that restarted or added nodes catch up from snapshots. Default: kbox's
// (16384 entries, 10240 kept, checked every 120s).
func SnapshotEvery(n uint64) Option { return func(o *options) { o.snapEvery = n } }

// NoAutoCreateTopics turns auto.create.topics.enable off (default on).
func NoAutoCreateTopics() Option { return func(o *options) { o.noAuto = true } }

// Cluster is a set of kbox nodes running in this process, Raft-replicated
// over real TCP on 127.0.0.1, for tests ([Start]) and programs ([New]).
// Nodes are numbered by index from 0; node i has ID (and Kafka broker ID)
// i+1 and keeps its addresses and data directory across [Cluster.Kill] and
// [Cluster.Restart]. A Cluster's methods are safe for concurrent use.
type Cluster struct {
	o      options
	tb     testing.TB // nil from New
	logs   *tbLogs
	ownDir bool

	mu     sync.Mutex
	slots  []*slot
	closed bool
	// failures are nodes that stopped by themselves with an error.
	failures []error
	wg       sync.WaitGroup // restart supervisors
}

type slot struct {
	cfg      Config
	node     *Node // nil while killed
	removed  bool
	isolated bool
}

// defaultWait bounds the methods that take no context.
const defaultWait = 30 * time.Second

// Start starts a cluster for a test: nodes on random 127.0.0.1 ports with
// data in t.TempDir(), logs to t.Log, closed by t.Cleanup, which first
// checks that every live node's state digest is equal at the same applied
// index. It fails the test if the cluster does not start.
func Start(tb testing.TB, opts ...Option) *Cluster {
	tb.Helper()
	o := buildOptions(opts)
	if o.dir == "" {
		o.dir = tb.TempDir()
	}
	c := &Cluster{o: o, tb: tb}
	if o.logger == nil {
		c.logs = &tbLogs{tb: tb}
	}
	tb.Cleanup(func() {
		if err := c.checkDigests(); err != nil {
			tb.Error(err)
		}
		if err := c.Err(); err != nil {
			tb.Error(err)
		}
		if err := c.Close(); err != nil {
			tb.Logf("closing the cluster: %v", err)
		}
	})
	if err := c.start(); err != nil {
		tb.Fatalf("start cluster: %v", err)
	}
	return c
}

// New starts a cluster for a program. Call Close when done.
func New(opts ...Option) (*Cluster, error) {
	o := buildOptions(opts)
	c := &Cluster{o: o}
	if o.logger == nil {
		c.o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.dir == "" {
		dir, err := os.MkdirTemp("", "kbox-cluster-")
		if err != nil {
			return nil, err
		}
		c.o.dir, c.ownDir = dir, true
	}
	if err := c.start(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func buildOptions(opts []Option) options {
	o := options{nodes: 3, partitions: 1}
	for _, opt := range opts {
		opt(&o)
	}
	o.nodes = max(o.nodes, 1)
	return o
}

func (c *Cluster) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultWait)
	defer cancel()
	c.mu.Lock()
	for i := 0; i < c.o.nodes; i++ {
		c.slots = append(c.slots, &slot{cfg: c.nodeConfig(i)})
	}
	first, err := c.startSlot(0)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := first.WaitLeader(ctx); err != nil {
		return err
	}
	// The others start at once and join in the background; the leader
	// adds them one by one.
	c.mu.Lock()
	for i := 1; i < c.o.nodes; i++ {
		c.slots[i].cfg.Join = first.RaftAddr()
		if _, err := c.startSlot(i); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Unlock()
	if err := c.WaitHealthy(ctx); err != nil {
		return err
	}
	return c.createTopics(ctx)
}

func (c *Cluster) nodeConfig(i int) Config {
	id := int32(i + 1)
	return Config{
		NodeID:            id,
		DataDir:           filepath.Join(c.o.dir, fmt.Sprintf("node-%d", id)),
		KafkaAddr:         "127.0.0.1:0",
		HTTPAddr:          "127.0.0.1:0",
		RaftAddr:          "127.0.0.1:0",
		FastTimeouts:      c.o.fast,
		AutoCreateTopics:  !c.o.noAuto,
		DefaultPartitions: c.o.partitions,
		SnapshotThreshold: c.o.snapEvery,
		TrailingLogs:      max(c.o.snapEvery/4, min(c.o.snapEvery, 1)),
		SnapshotInterval:  snapshotInterval(c.o.snapEvery),
		Logger:            c.nodeLogger(id),
	}
}

func snapshotInterval(every uint64) time.Duration {
	if every == 0 {
		return 0
	}
	return 50 * time.Millisecond
}

func (c *Cluster) nodeLogger(id int32) *slog.Logger {
	if c.logs != nil {
		return slog.New(slog.NewTextHandler(c.logs.writer(id), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return c.o.logger.With("node", id)
}

// startSlot starts node i on its pinned addresses (the first start pins
// the random ports it bound) and supervises restart requests. c.mu is
// held.
func (c *Cluster) startSlot(i int) (*Node, error) {
	s := c.slots[i]
	s.cfg.isolated = s.isolated
	n, err := StartNode(s.cfg)
	if err != nil {
		return nil, fmt.Errorf("start node %d: %w", s.cfg.NodeID, err)
	}
	s.cfg.RaftAddr, s.cfg.KafkaAddr, s.cfg.HTTPAddr = n.RaftAddr(), n.KafkaAddr(), n.HTTPAddr()
	s.node = n
	c.wg.Add(1)
	go c.supervise(i, n)
	return n, nil
}

// supervise watches node i until it stops. A node that stops by itself
// is restarted when it asked to be (ErrRestartRequested), marked removed
// when it was removed (say through the HTTP API), and otherwise marked
// dead, its error kept for Start's cleanup to report.
func (c *Cluster) supervise(i int, n *Node) {
	defer c.wg.Done()
	<-n.Done()
	n.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.slots[i]
	if c.closed || s.node != n {
		return // closed, killed or restarted by the cluster itself
	}
	err := n.Err()
	switch {
	case errors.Is(err, ErrRestartRequested):
		if _, err := c.startSlot(i); err != nil {
			s.node = nil
			c.failures = append(c.failures, fmt.Errorf("restart of node %d failed: %w", i+1, err))
		}
	case errors.Is(err, ErrRemoved):
		s.node, s.removed = nil, true
	default:
		s.node = nil
		c.failures = append(c.failures, fmt.Errorf("node %d stopped: %w", i+1, err))
	}
}

func (c *Cluster) logf(format string, args ...any) {
	if c.logs != nil {
		c.logs.logf(format, args...)
		return
	}
	c.o.logger.Info(fmt.Sprintf(format, args...))
}

func (c *Cluster) createTopics(ctx context.Context) error {
	for _, name := range c.o.topics {
		cmd := storage.CreateTopic{Name: name, Partitions: c.o.partitions}
		rand.Read(cmd.ID[:])
		err := c.waitFor(ctx, func() error {
			l := c.leaderNode()
			if l == nil {
				return errors.New("no leader")
			}
			res, err := l.Propose(ctx, cmd)
			if err != nil {
				return err
			}
			if e, ok := res.(error); ok && !errors.Is(e, storage.ErrTopicExists) {
				return e
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("create topic %s: %w", name, err)
		}
	}
	if l := c.leaderNode(); l != nil {
		return c.WaitApplied(ctx, l.store.Applied())
	}
	return nil
}

// Len is the number of node slots, including killed and removed nodes.
func (c *Cluster) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.slots)
}

// Node returns node i, or nil while it is killed or after it was removed.
func (c *Cluster) Node(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.slots) || c.slots[i].removed {
		return nil
	}
	return c.slots[i].node
}

// Bootstrap is the Kafka bootstrap list: the addresses of every node not
// removed, comma-separated. Addresses survive Kill and Restart, so one
// list serves a whole test.
func (c *Cluster) Bootstrap() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var addrs []string
	for _, s := range c.slots {
		if !s.removed {
			addrs = append(addrs, s.cfg.KafkaAddr)
		}
	}
	return strings.Join(addrs, ",")
}

// Leader returns the index of the node that leads and takes writes now, or
// -1. When an isolated old leader still believes it leads, the one with
// the higher term wins.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	best, term := -1, uint64(0)
	for i, s := range c.slots {
		if s.node == nil || s.removed || !s.node.leading() {
			continue
		}
		if t := s.node.raft.CurrentTerm(); best < 0 || t > term {
			best, term = i, t
		}
	}
	return best
}

func (c *Cluster) leaderNode() *Node {
	if i := c.Leader(); i >= 0 {
		return c.Node(i)
	}
	return nil
}

// Kill stops node i abruptly: its listeners close and Raft stops without
// handing over leadership. Its data stays for Restart.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	var n *Node
	if i >= 0 && i < len(c.slots) {
		n, c.slots[i].node = c.slots[i].node, nil
	}
	c.mu.Unlock()
	if n != nil {
		n.Close()
	}
}

// Restart stops node i if it runs and starts it again from its data
// directory, on the same addresses. It returns once the node runs, not
// once it has caught up: use WaitHealthy for that.
func (c *Cluster) Restart(i int) error {
	c.Kill(i)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("cluster closed")
	}
	if i < 0 || i >= len(c.slots) {
		return fmt.Errorf("restart: no node %d", i)
	}
	s := c.slots[i]
	if s.removed {
		return fmt.Errorf("node %d was removed", i+1)
	}
	s.cfg.Join = c.joinAddr(i)
	_, err := c.startSlot(i)
	return err
}

// joinAddr is the Raft address of a member other than i, for a node that
// has no state yet. c.mu is held.
func (c *Cluster) joinAddr(i int) string {
	for j, s := range c.slots {
		if j != i && s.node != nil && !s.removed {
			return s.cfg.RaftAddr
		}
	}
	return ""
}

// Isolate cuts node i off from every other node, in both directions, as a
// network partition would: its Raft and cluster connections close and new
// ones are refused until Heal. Its Kafka listener stays reachable, so
// clients can still talk to it. Isolation survives Restart.
func (c *Cluster) Isolate(i int) { c.setIsolated(i, true) }

// Heal reconnects node i after Isolate.
func (c *Cluster) Heal(i int) { c.setIsolated(i, false) }

func (c *Cluster) setIsolated(i int, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.slots) {
		return
	}
	s := c.slots[i]
	s.isolated = on
	if s.node != nil && s.node.mux != nil {
		s.node.mux.setIsolated(on)
	}
}

// AddNode starts a new node that joins the cluster as a voter and returns
// its index once it is a member that follows the leader.
func (c *Cluster) AddNode() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultWait)
	defer cancel()
	c.mu.Lock()
	i := len(c.slots)
	s := &slot{cfg: c.nodeConfig(i)}
	c.slots = append(c.slots, s)
	s.cfg.Join = c.joinAddr(i)
	if s.cfg.Join == "" {
		c.mu.Unlock()
		return -1, errors.New("add node: no running member to join")
	}
	n, err := c.startSlot(i)
	c.mu.Unlock()
	if err != nil {
		return -1, err
	}
	err = c.waitFor(ctx, func() error {
		if !n.isMember() {
			return fmt.Errorf("node %d is not a member yet", i+1)
		}
		if _, _, ok := n.Leader(); !ok {
			return fmt.Errorf("node %d has no leader yet", i+1)
		}
		return nil
	})
	return i, err
}

// RemoveNode takes node i out of the cluster through the leader, waits
// (a few seconds at most) for it to notice and stop with ErrRemoved, and
// closes it. Its index is not reused.
func (c *Cluster) RemoveNode(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultWait)
	defer cancel()
	id := int32(i + 1)
	err := c.waitFor(ctx, func() error {
		via := c.leaderNode()
		if via == nil {
			return errors.New("no leader")
		}
		if !via.hasMember(id) {
			return nil // done, though an earlier attempt's answer was lost
		}
		return via.RemoveMember(ctx, id)
	})
	if err != nil {
		return fmt.Errorf("remove node %d: %w", id, err)
	}
	c.mu.Lock()
	if i < 0 || i >= len(c.slots) {
		c.mu.Unlock()
		return fmt.Errorf("remove: no node %d", i)
	}
	s := c.slots[i]
	s.removed = true
	n := s.node
	s.node = nil
	c.mu.Unlock()
	if n != nil {
		select {
		case <-n.Done():
		case <-time.After(5 * time.Second):
		}
		n.Close()
	}
	return nil
}

// running lists the nodes that run (neither killed nor removed).
func (c *Cluster) running() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, s := range c.slots {
		if s.node != nil && !s.removed {
			out = append(out, s.node)
		}
	}
	return out
}

// WaitLeader waits until a node leads and takes writes, and returns its
// index.
func (c *Cluster) WaitLeader(ctx context.Context) (int, error) {
	return c.WaitNewLeader(ctx, -1)
}

// WaitNewLeader waits until a node other than old leads and takes writes,
// and returns its index.
func (c *Cluster) WaitNewLeader(ctx context.Context, old int) (int, error) {
	leader := -1
	err := c.waitFor(ctx, func() error {
		leader = c.Leader()
		switch {
		case leader < 0:
			return errors.New("no leader")
		case leader == old:
			return fmt.Errorf("node %d still leads", old+1)
		}
		return nil
	})
	return leader, err
}

// WaitApplied waits until every running node has applied the Raft log up
// to index.
func (c *Cluster) WaitApplied(ctx context.Context, index uint64) error {
	return c.waitFor(ctx, func() error {
		for _, n := range c.running() {
			if a := n.store.Applied(); a < index {
				return fmt.Errorf("node %d applied %d of %d", n.ID(), a, index)
			}
		}
		return nil
	})
}

// WaitHealthy waits until a leader takes writes and every running node —
// isolated ones included, killed ones not — is a voter that follows it, is
// registered for Metadata, has applied the log as far as it was committed
// when WaitHealthy was called, and is in the leader's ISR: the state Kafka
// calls zero under-replicated partitions.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var target uint64
	return c.waitFor(ctx, func() error {
		if target == 0 {
			if l := c.leaderNode(); l != nil {
				target = max(l.raft.CommitIndex(), 1)
			}
		}
		return c.healthy(target)
	})
}

func (c *Cluster) healthy(target uint64) error {
	l := c.leaderNode()
	if l == nil {
		return errors.New("no leader")
	}
	cf := l.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	voters := map[raft.ServerID]bool{}
	for _, s := range cf.Configuration().Servers {
		voters[s.ID] = s.Suffrage == raft.Voter
	}
	regs, err := l.store.Nodes()
	if err != nil {
		return err
	}
	registered := map[int32]string{}
	for _, r := range regs {
		registered[r.ID] = r.Addr
	}
	isr := l.inSync()
	for _, n := range c.running() {
		id := n.ID()
		if !voters[n.raftID()] {
			return fmt.Errorf("node %d is not a voter", id)
		}
		if lid, _, ok := n.Leader(); !ok || lid != l.ID() {
			return fmt.Errorf("node %d does not follow leader %d", id, l.ID())
		}
		if registered[id] != n.advertised {
			return fmt.Errorf("node %d is not registered at %s", id, n.advertised)
		}
		if !containsID(isr, id) {
			return fmt.Errorf("node %d is not in the ISR %v", id, isr)
		}
		if a := n.store.Applied(); a < target {
			return fmt.Errorf("node %d applied %d of %d", id, a, target)
		}
	}
	// Every node's Metadata must show the same, complete ISR.
	for _, n := range c.running() {
		for _, m := range c.running() {
			if view := n.inSync(); !containsID(view, m.ID()) {
				return fmt.Errorf("node %d reports ISR %v, without node %d", n.ID(), view, m.ID())
			}
		}
	}
	return nil
}

func containsID(ids []int32, id int32) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// waitFor polls cond until it returns nil or ctx ends, and then reports
// cond's last error.
func (c *Cluster) waitFor(ctx context.Context, cond func() error) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// checkDigests heals every node, waits for the running ones to apply the
// same log, and compares their state digests. Without a leader (no quorum
// left running) there is nothing to converge on and it reports nothing.
func (c *Cluster) checkDigests() error {
	c.mu.Lock()
	for i, s := range c.slots {
		if s.isolated {
			s.isolated = false
			if s.node != nil && s.node.mux != nil {
				s.node.mux.setIsolated(false)
			}
			c.logf("healing node %d before the digest check", i+1)
		}
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last error
	err := c.waitFor(ctx, func() error {
		l := c.leaderNode()
		if l == nil {
			return errNoLeader
		}
		target := l.raft.CommitIndex()
		type digest struct {
			applied uint64
			sum     [32]byte
		}
		sums := map[int32]digest{}
		for _, n := range c.running() {
			applied, sum, err := n.store.Digest()
			if err != nil {
				return err
			}
			if applied < target {
				return fmt.Errorf("node %d applied %d of %d", n.ID(), applied, target)
			}
			sums[n.ID()] = digest{applied, sum}
		}
		var ref *digest
		for id, d := range sums {
			if ref == nil {
				ref = &d
				continue
			}
			if d.applied != ref.applied {
				return fmt.Errorf("node %d applied %d, another %d", id, d.applied, ref.applied)
			}
			if d.sum != ref.sum {
				last = fmt.Errorf("state digests differ at applied index %d: %v", d.applied, sums)
				return nil
			}
		}
		last = nil
		return nil
	})
	if errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), errNoLeader.Error()) {
		c.logf("digest check skipped: %v", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("digest check: %w", err)
	}
	return last
}

var errNoLeader = errors.New("no leader")

// Err reports the nodes that stopped by themselves with an error (not by
// Kill, removal or a requested restart), such as a failed apply.
func (c *Cluster) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.failures...)
}

// Close stops every node and, for a cluster from New without DataDir,
// removes its data.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	var nodes []*Node
	for _, s := range c.slots {
		if s.node != nil {
			nodes = append(nodes, s.node)
			s.node = nil
		}
	}
	c.mu.Unlock()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.Close()
		}()
	}
	wg.Wait()
	c.wg.Wait()
	if c.logs != nil {
		c.logs.stop()
	}
	if c.ownDir {
		errs = append(errs, os.RemoveAll(c.o.dir))
	}
	return errors.Join(errs...)
}

// tbLogs writes node logs to a test's log until the cluster closes; after
// that (raft's last goroutines may still log) lines are dropped, since
// t.Log after a test ends panics.
type tbLogs struct {
	tb   testing.TB
	mu   sync.Mutex
	done bool
}

func (l *tbLogs) writer(id int32) io.Writer {
	return tbWriter{l: l, prefix: "node " + strconv.Itoa(int(id)) + ": "}
}

func (l *tbLogs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.tb.Logf(format, args...)
	}
}

func (l *tbLogs) stop() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}

type tbWriter struct {
	l      *tbLogs
	prefix string
}

func (w tbWriter) Write(p []byte) (int, error) {
	w.l.logf("%s%s", w.prefix, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
