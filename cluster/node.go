package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kbox-dev/kbox/broker"
	"github.com/kbox-dev/kbox/broker/storage"
)

// Config configures one node. Addresses of "off" or "" disable a listener.
type Config struct {
	// NodeID is the Raft server ID and the Kafka broker ID. Default 1.
	NodeID int32
	// DataDir holds the state store, the Raft log and snapshots.
	DataDir string
	// KafkaAddr is the Kafka protocol listener, e.g. 127.0.0.1:9092.
	KafkaAddr string
	// AdvertisedAddr is the address clients are told to use; default the
	// bound KafkaAddr.
	AdvertisedAddr string
	// HTTPAddr serves /healthz and /metrics.
	HTTPAddr string
	// RaftAddr is the Raft transport address. Empty runs a single node
	// with an in-memory transport (no network port).
	RaftAddr string
	// Fsync makes the Raft log and the store fsync every commit.
	Fsync bool
	// FastTimeouts shortens Raft's heartbeat and election timeouts, for
	// tests. A single node always uses short timeouts: it has no one to
	// wait for.
	FastTimeouts bool
	// AutoCreateTopics is auto.create.topics.enable.
	AutoCreateTopics bool
	// DefaultPartitions is num.partitions.
	DefaultPartitions int32
	// Logger receives the node's logs; default slog.Default().
	Logger *slog.Logger
}

// Node is one kbox node: Raft, the state store, the Kafka broker and the
// HTTP endpoints. It implements broker.Replicator.
type Node struct {
	cfg   Config
	log   *slog.Logger
	store *storage.Store
	raft  *raft.Raft
	logs  *raftboltdb.BoltStore
	trans raft.Transport
	brk   *broker.Broker
	reg   *prometheus.Registry

	kafkaLn net.Listener
	httpSrv *http.Server
	httpLn  net.Listener

	// epochReady is the Raft term for which this node, as leader, has
	// committed NewEpoch; writes are refused until it equals the term.
	epochReady atomic.Uint64

	fatalOnce sync.Once
	fatalErr  atomic.Pointer[error]
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// StartNode opens the node's data, starts Raft (bootstrapping a new single
// voter when there is no state yet) and its listeners.
func StartNode(cfg Config) (_ *Node, err error) {
	if cfg.NodeID == 0 {
		cfg.NodeID = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.store, err = storage.Open(filepath.Join(cfg.DataDir, "state.db"), storage.Options{Fsync: cfg.Fsync}); err != nil {
		return nil, err
	}
	if err := n.startRaft(); err != nil {
		return nil, err
	}
	if err := n.startBroker(); err != nil {
		return nil, err
	}
	if err := n.startHTTP(); err != nil {
		return nil, err
	}
	n.wg.Add(1)
	go n.watchLeadership()
	return n, nil
}

func (n *Node) raftID() raft.ServerID { return raft.ServerID(strconv.Itoa(int(n.cfg.NodeID))) }

func (n *Node) startRaft() error {
	rc := raft.DefaultConfig()
	rc.LocalID = n.raftID()
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{n.log}})
	rc.NoSnapshotRestoreOnStart = true // the store is durable by itself; see recover
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.SnapshotThreshold = 16384
	rc.TrailingLogs = 10240
	if n.cfg.RaftAddr == "" || n.cfg.FastTimeouts {
		rc.HeartbeatTimeout = 50 * time.Millisecond
		rc.ElectionTimeout = 50 * time.Millisecond
		rc.LeaderLeaseTimeout = 50 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
	}
	var err error
	n.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(n.cfg.DataDir, "raft.db"), NoSync: !n.cfg.Fsync})
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, rc.Logger)
	if err != nil {
		return fmt.Errorf("open snapshots: %w", err)
	}
	if err := n.recover(snaps); err != nil {
		return err
	}
	addr := raft.ServerAddress(n.cfg.RaftAddr)
	if n.cfg.RaftAddr == "" {
		addr, n.trans = raft.NewInmemTransport(raft.ServerAddress("node-" + string(n.raftID())))
	} else {
		t, err := raft.NewTCPTransportWithLogger(n.cfg.RaftAddr, nil, 3, 10*time.Second, rc.Logger)
		if err != nil {
			return fmt.Errorf("raft transport %s: %w", n.cfg.RaftAddr, err)
		}
		n.trans, addr = t, t.LocalAddr()
	}
	f := &fsm{store: n.store, fatal: n.fail}
	if n.raft, err = raft.NewRaft(rc, f, n.logs, n.logs, snaps, n.trans); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	existing, err := raft.HasExistingState(n.logs, n.logs, snaps)
	if err != nil {
		return fmt.Errorf("raft state: %w", err)
	}
	if !existing {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: n.raftID(), Address: addr}}}
		if err := n.raft.BootstrapCluster(cfg).Error(); err != nil {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	return nil
}

// recover restores the latest Raft snapshot into the store when the store
// is behind it. With fsync off and a power loss, bbolt may have lost
// recent commits that the snapshot holds; the Raft log replays the rest.
func (n *Node) recover(snaps *raft.FileSnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	if list[0].Index <= n.store.Applied() {
		return nil
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	defer rc.Close()
	n.log.Warn("store is behind the latest snapshot; restoring", "store_applied", n.store.Applied(), "snapshot_index", list[0].Index)
	return n.store.Restore(rc)
}

func (n *Node) startBroker() error {
	if off(n.cfg.KafkaAddr) {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.KafkaAddr)
	if err != nil {
		return fmt.Errorf("kafka listener: %w", err)
	}
	n.kafkaLn = ln
	adv := n.cfg.AdvertisedAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	n.brk = broker.New(broker.Config{
		NodeID:            n.cfg.NodeID,
		ClusterID:         "kbox",
		Advertised:        adv,
		AutoCreateTopics:  n.cfg.AutoCreateTopics,
		DefaultPartitions: n.cfg.DefaultPartitions,
		Logger:            n.log,
		Metrics:           broker.NewMetrics(n.reg),
	}, n.store, n)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.brk.Serve(ln); err != nil {
			n.fail(fmt.Errorf("kafka listener: %w", err))
		}
	}()
	return nil
}

func off(addr string) bool { return addr == "" || addr == "off" }

// watchLeadership commits a NewEpoch whenever this node becomes leader, so
// every partition's leader epoch moves forward with the Raft term before
// the new leader takes writes.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	ch := n.raft.LeaderCh()
	for {
		select {
		case <-n.stop:
			return
		case isLeader := <-ch:
			if isLeader {
				n.claimEpoch()
			}
		}
	}
}

func (n *Node) claimEpoch() {
	for n.raft.State() == raft.Leader {
		term := n.raft.CurrentTerm()
		data, _ := storage.Encode(storage.NewEpoch{Epoch: int32(term)})
		err := n.raft.Apply(data, 5*time.Second).Error()
		if err == nil {
			n.epochReady.Store(term)
			return
		}
		n.log.Warn("claim leader epoch", "term", term, "err", err)
		select {
		case <-n.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Propose implements broker.Replicator.
func (n *Node) Propose(ctx context.Context, cmd storage.Command) (any, error) {
	if n.raft.State() != raft.Leader || n.epochReady.Load() != n.raft.CurrentTerm() {
		return nil, broker.ErrNotLeader
	}
	data, err := storage.Encode(cmd)
	if err != nil {
		return nil, err
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return nil, broker.ErrNotLeader
		}
		if errors.Is(err, raft.ErrEnqueueTimeout) {
			return nil, context.DeadlineExceeded
		}
		return nil, fmt.Errorf("propose %s: %w", cmd.Op(), err)
	}
	if e, ok := f.Response().(errApplyFailed); ok {
		return nil, e.err
	}
	return f.Response(), nil
}

// Leader implements broker.Replicator.
func (n *Node) Leader() (id, epoch int32, ok bool) {
	if n.raft.State() == raft.Leader {
		if n.epochReady.Load() != n.raft.CurrentTerm() {
			return -1, n.store.Epoch(), false
		}
		return n.cfg.NodeID, n.store.Epoch(), true
	}
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return -1, n.store.Epoch(), false
	}
	v, err := strconv.Atoi(string(lid))
	if err != nil {
		return -1, n.store.Epoch(), false
	}
	return int32(v), n.store.Epoch(), true
}

// WaitLeader blocks until the cluster has a leader that can take writes.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if _, _, ok := n.Leader(); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for leader: %w", ctx.Err())
		case <-n.stop:
			return errors.New("node stopped")
		case <-t.C:
		}
	}
}

// KafkaAddr is the bound Kafka listener address, or "" when off.
func (n *Node) KafkaAddr() string {
	if n.kafkaLn == nil {
		return ""
	}
	return n.kafkaLn.Addr().String()
}

// HTTPAddr is the bound HTTP address, or "" when off.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// Store is the node's state store, for reads.
func (n *Node) Store() *storage.Store { return n.store }

// Done is closed when the node stops, by Close or a fatal error.
func (n *Node) Done() <-chan struct{} { return n.stop }

// Err is the fatal error that stopped the node, if any.
func (n *Node) Err() error {
	if p := n.fatalErr.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records a fatal error and stops the node.
func (n *Node) fail(err error) {
	n.fatalOnce.Do(func() {
		n.fatalErr.Store(&err)
		n.log.Error("node stopping", "err", err)
		go n.Close()
	})
}

// Close stops the listeners, Raft and the store, in that order.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		var errs []error
		if n.httpSrv != nil {
			errs = append(errs, n.httpSrv.Close())
		}
		if n.brk != nil {
			errs = append(errs, n.brk.Close())
		} else if n.kafkaLn != nil {
			n.kafkaLn.Close()
		}
		if n.raft != nil {
			errs = append(errs, n.raft.Shutdown().Error())
		}
		if c, ok := n.trans.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
		n.wg.Wait()
		if n.logs != nil {
			errs = append(errs, n.logs.Close())
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// slogWriter feeds hclog's text lines into slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(string(trimNewline(p)), "component", "raft")
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

func (n *Node) startHTTP() error {
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.reg.MustRegister(newRaftCollector(n))
	if off(n.cfg.HTTPAddr) {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	n.httpLn = ln
	n.httpSrv = &http.Server{Handler: n.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server", "err", err)
		}
	}()
	return nil
}
