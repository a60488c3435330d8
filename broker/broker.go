package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/kbox-dev/kbox/broker/storage"
)

// Replicator commits state changes through the replicated log.
// cluster.Node implements it.
type Replicator interface {
	// Propose returns once cmd is committed and applied on this node, with
	// what storage's apply returned for it. It returns ErrNotLeader when
	// this node cannot lead the write.
	Propose(ctx context.Context, cmd storage.Command) (any, error)
	// Leader reports the leader's broker ID and the current leader epoch.
	Leader() (id, epoch int32, ok bool)
}

// Submitter is implemented by a Replicator that can pipeline writes
// (cluster.Node does). Submit queues cmd in the replicated log before it
// returns, so calls made in order are applied in order, and the returned
// function blocks for what Propose would have returned. Produce uses it so
// that one connection's in-flight requests share Raft batches.
type Submitter interface {
	Submit(ctx context.Context, cmd storage.Command) (wait func() (any, error))
}

// ErrNotLeader is what a Replicator returns when this node is not the Raft
// leader; clients see NOT_LEADER_OR_FOLLOWER or NOT_COORDINATOR.
var ErrNotLeader = errors.New("not the leader")

// BrokerInfo is one node as Metadata and DescribeCluster report it.
type BrokerInfo struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   *string
}

// Config configures a Broker. The zero value of each field is a default.
type Config struct {
	// NodeID is this broker's ID in Metadata. Default 1.
	NodeID int32
	// ClusterID is reported by Metadata and DescribeCluster.
	ClusterID string
	// Advertised is the host:port clients are told to connect to. Default:
	// the listener's address.
	Advertised string
	// Brokers lists every node of the cluster; nil means just this one.
	Brokers func() []BrokerInfo
	// Replicas lists the IDs of every member of the cluster, reachable or
	// not: each partition's replica list. Members missing from Brokers are
	// reported as offline replicas. nil means the nodes of Brokers.
	Replicas func() []int32
	// InSync lists the IDs of nodes caught up with the leader (the ISR of
	// every partition); nil means all of Brokers.
	InSync func() []int32
	// AutoCreateTopics creates unknown topics on Metadata and Produce, like
	// Kafka's auto.create.topics.enable (default true there). Default off.
	AutoCreateTopics bool
	// DefaultPartitions is num.partitions for auto-created and CreateTopics
	// requests that leave the count at -1. Default 1.
	DefaultPartitions int32
	// MaxRequestBytes is socket.request.max.bytes: a larger frame closes the
	// connection. Default 100 MiB, as in Kafka.
	MaxRequestBytes int32
	// Logger receives connection and request errors. Default slog.Default().
	Logger *slog.Logger
	// Metrics, if set, observes every request.
	Metrics *Metrics
	// CleanerInterval is how often the leader's log cleaner enforces
	// retention and compacts (Kafka's log.retention.check.interval.ms,
	// 300000 there; a development broker checks every 5s). Negative stops
	// the background cleaner; CleanLogs still runs a pass. Default 5s.
	CleanerInterval time.Duration
	// Now is the clock behind the broker's time-based decisions (retention,
	// compaction lags). Default time.Now; tests inject their own.
	Now func() time.Time
}

// Broker serves the Kafka protocol for one node.
type Broker struct {
	cfg    Config
	store  *storage.Store
	repl   Replicator
	log    *slog.Logger
	groups *groups
	apis   apiIndex
	// cleaner enforces retention and compaction; see cleaner.go.
	cleaner *cleaner

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

// New returns a broker over store that writes through repl.
func New(cfg Config, store *storage.Store, repl Replicator) *Broker {
	if cfg.NodeID == 0 {
		cfg.NodeID = 1
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 100 << 20
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = "kbox"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{cfg: cfg, store: store, repl: repl, log: cfg.Logger, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	b.apis = newAPIIndex()
	b.groups = newGroups(b)
	if cfg.Metrics != nil {
		cfg.Metrics.groups.Store(b.groups)
	}
	b.cleaner = startCleaner(b)
	return b
}

// Serve accepts connections on ln until Close. It returns nil after Close.
func (b *Broker) Serve(ln net.Listener) error {
	b.mu.Lock()
	if b.ctx.Err() != nil {
		b.mu.Unlock()
		return nil
	}
	b.listeners = append(b.listeners, ln)
	if b.cfg.Advertised == "" {
		b.cfg.Advertised = ln.Addr().String()
	}
	b.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if b.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		b.mu.Lock()
		if b.ctx.Err() != nil {
			b.mu.Unlock()
			c.Close()
			return nil
		}
		b.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			newClientConn(b, c).serve()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

// Close stops accepting, closes every connection and waits for their
// goroutines and the group coordinator's to end.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.cancel()
	for _, ln := range b.listeners {
		ln.Close()
	}
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	b.groups.close()
	b.cleaner.close()
	return nil
}

// brokers returns the cluster's nodes for Metadata.
func (b *Broker) brokers() []BrokerInfo {
	if b.cfg.Brokers != nil {
		if bs := b.cfg.Brokers(); len(bs) > 0 {
			return bs
		}
	}
	host, port := splitHostPort(b.cfg.Advertised)
	return []BrokerInfo{{NodeID: b.cfg.NodeID, Host: host, Port: port}}
}

// leaderID is the broker ID clients should send writes to, or -1.
func (b *Broker) leaderID() int32 {
	id, _, ok := b.repl.Leader()
	if !ok {
		return -1
	}
	return id
}

// isLeader reports whether this node leads writes now.
func (b *Broker) isLeader() bool { return b.leaderID() == b.cfg.NodeID }

func (b *Broker) propose(ctx context.Context, cmd storage.Command) (any, error) {
	return b.repl.Propose(ctx, cmd)
}

func splitHostPort(addr string) (string, int32) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 9092
	}
	var port int32
	fmt.Sscan(p, &port)
	return host, port
}
