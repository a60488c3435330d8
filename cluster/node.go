package cluster

import (
	"cmp"
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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kbox-dev/kbox/broker"
	"github.com/kbox-dev/kbox/broker/storage"
)

// Config configures one node. Addresses of "off" or "" disable a listener.
type Config struct {
	// NodeID is the Raft server ID and the Kafka broker ID, a positive
	// integer unique in the cluster. Default 1.
	NodeID int32
	// DataDir holds the state store, the Raft log and snapshots.
	DataDir string
	// KafkaAddr is the Kafka protocol listener, e.g. 127.0.0.1:9092.
	KafkaAddr string
	// AdvertisedAddr is the address clients are told to use; default the
	// bound KafkaAddr.
	AdvertisedAddr string
	// HTTPAddr serves /healthz, /metrics and /cluster.
	HTTPAddr string
	// RaftAddr is the Raft transport address (it also carries the cluster
	// RPCs), a concrete host:port other members can reach. Empty runs a
	// single node with an in-memory transport (no network port).
	RaftAddr string
	// Join is the Raft address of any member of an existing cluster. A node
	// without Raft state asks it to be added as a voter instead of
	// bootstrapping a new cluster; a node with state ignores it and rejoins
	// as the member it was.
	Join string
	// Fsync makes the Raft log and the store fsync every commit.
	Fsync bool
	// FastTimeouts shortens Raft's heartbeat, election and leader lease
	// timeouts to 100ms (default 500ms, 500ms, 250ms) and the status poll to
	// 50ms (default 200ms), for tests: failover then takes a fraction of a
	// second. A single node without RaftAddr always uses short timeouts: it
	// has no one to wait for.
	FastTimeouts bool
	// AutoCreateTopics is auto.create.topics.enable.
	AutoCreateTopics bool
	// DefaultPartitions is num.partitions.
	DefaultPartitions int32
	// SnapshotThreshold is how many Raft log entries since the last
	// snapshot make the node take a new one and truncate its log. Default
	// 16384.
	SnapshotThreshold uint64
	// TrailingLogs is how many entries a truncation keeps, so a follower
	// that was briefly away catches up from the log rather than from a
	// snapshot. Default 10240.
	TrailingLogs uint64
	// SnapshotInterval is how often Raft checks SnapshotThreshold. Default
	// 120s (Raft's).
	SnapshotInterval time.Duration
	// Logger receives the node's logs; default slog.Default().
	Logger *slog.Logger

	// isolated starts the node cut off from its peers (Cluster.Isolate).
	isolated bool
}

// Node is one kbox node: Raft, the state store, the Kafka broker and the
// HTTP endpoints. It implements broker.Replicator.
type Node struct {
	cfg   Config
	log   *slog.Logger
	store *storage.Store
	raft  *raft.Raft
	logs  *logStore
	snaps *raft.FileSnapshotStore
	fsm   *fsm
	trans raft.Transport
	mux   *muxLayer  // nil without RaftAddr
	rpc   *rpcClient // nil without RaftAddr
	brk   *broker.Broker
	reg   *prometheus.Registry

	kafkaLn    net.Listener
	advertised string
	httpSrv    *http.Server
	httpLn     net.Listener

	// epochReady is the Raft term for which this node, as leader, has
	// committed NewEpoch; writes are refused until it equals the term.
	epochReady atomic.Uint64

	waiters      waiters
	mon          monitor
	startedAt    time.Time
	lastRegister time.Time // owned by pollLoop

	// ready is closed once the node has started; RPCs that arrive earlier wait.
	ready     chan struct{}
	ctx       context.Context // ends at Close
	cancel    context.CancelFunc
	fatalOnce sync.Once
	fatalErr  atomic.Pointer[error]
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// StartNode opens the node's data, starts Raft (bootstrapping a new
// cluster when there is no state and no Join address, or joining through
// Join) and its listeners.
func StartNode(cfg Config) (_ *Node, err error) {
	if cfg.NodeID == 0 {
		cfg.NodeID = 1
	}
	if cfg.NodeID < 0 {
		return nil, fmt.Errorf("node id %d: must be positive", cfg.NodeID)
	}
	if cfg.Join != "" && cfg.RaftAddr == "" {
		return nil, errors.New("joining a cluster needs a raft address")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), ready: make(chan struct{}), reg: prometheus.NewRegistry(), startedAt: time.Now()}
	n.mon.catchUp = -1
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.store, err = storage.Open(filepath.Join(cfg.DataDir, "state.db"), storage.Options{Fsync: cfg.Fsync}); err != nil {
		return nil, err
	}
	existing, err := n.startRaft()
	if err != nil {
		return nil, err
	}
	if err := n.startBroker(); err != nil {
		return nil, err
	}
	if err := n.startHTTP(); err != nil {
		return nil, err
	}
	close(n.ready)
	n.wg.Add(2)
	go n.watchLeadership()
	go n.pollLoop()
	if cfg.Join != "" && !existing {
		n.wg.Add(1)
		go n.joinLoop(cfg.Join)
	}
	return n, nil
}

func (n *Node) raftID() raft.ServerID { return raft.ServerID(strconv.Itoa(int(n.cfg.NodeID))) }

func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = n.raftID()
	level := hclog.Warn
	if n.cfg.RaftAddr == "" {
		// A lone voter always "times out" and elects itself at start-up;
		// Raft's warnings about it are noise there.
		level = hclog.Error
	}
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: level, Output: slogWriter{n}, DisableTime: true})
	rc.NoSnapshotRestoreOnStart = true // the store is durable by itself; see recover
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.SnapshotThreshold = cmp.Or(n.cfg.SnapshotThreshold, 16384)
	rc.TrailingLogs = cmp.Or(n.cfg.TrailingLogs, 10240)
	rc.SnapshotInterval = cmp.Or(n.cfg.SnapshotInterval, rc.SnapshotInterval)
	switch {
	case n.cfg.RaftAddr == "":
		// One voter on the in-memory transport: nobody to wait for, so
		// elect at once (10-20ms) and let `kbox up` start in well under
		// 100ms.
		rc.HeartbeatTimeout = 10 * time.Millisecond
		rc.ElectionTimeout = 10 * time.Millisecond
		rc.LeaderLeaseTimeout = 10 * time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
	case n.cfg.FastTimeouts:
		rc.HeartbeatTimeout = fastTimeout
		rc.ElectionTimeout = fastTimeout
		rc.LeaderLeaseTimeout = fastTimeout
		rc.CommitTimeout = 5 * time.Millisecond
	default:
		rc.HeartbeatTimeout = 500 * time.Millisecond
		rc.ElectionTimeout = 500 * time.Millisecond
		rc.LeaderLeaseTimeout = 250 * time.Millisecond
	}
	return rc
}

// startRaft opens the Raft log and snapshots, the transport and Raft; it
// reports whether the node had Raft state already.
func (n *Node) startRaft() (bool, error) {
	rc := n.raftConfig()
	var err error
	if err := migratePayloads(filepath.Join(n.cfg.DataDir, "raft-payloads.db"), n.store); err != nil {
		return false, err
	}
	n.logs, err = openLogStore(filepath.Join(n.cfg.DataDir, "raft.db"), n.store, n.cfg.Fsync)
	if err != nil {
		return false, fmt.Errorf("open raft log: %w", err)
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, rc.Logger); err != nil {
		return false, fmt.Errorf("open snapshots: %w", err)
	}
	if err := n.recover(n.snaps); err != nil {
		return false, err
	}
	addr, err := n.startTransport(rc)
	if err != nil {
		return false, err
	}
	n.fsm = &fsm{store: n.store, fatal: n.fail, waiters: &n.waiters}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.logs, n.snaps, n.trans); err != nil {
		return false, fmt.Errorf("start raft: %w", err)
	}
	existing, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return false, fmt.Errorf("raft state: %w", err)
	}
	if !existing && n.cfg.Join == "" {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: n.raftID(), Address: addr}}}
		if err := n.raft.BootstrapCluster(cfg).Error(); err != nil {
			return false, fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	return existing, nil
}

// startTransport starts the in-memory transport of a single node, or the
// TCP listener Raft shares with the cluster RPCs.
func (n *Node) startTransport(rc *raft.Config) (raft.ServerAddress, error) {
	if n.cfg.RaftAddr == "" {
		addr, t := raft.NewInmemTransport(raft.ServerAddress("node-" + string(n.raftID())))
		n.trans = t
		return addr, nil
	}
	m, err := newMuxLayer(n.cfg.RaftAddr, n.log, n.serveRPC)
	if err != nil {
		return "", err
	}
	n.mux, n.rpc = m, newRPCClient(m)
	m.setIsolated(n.cfg.isolated)
	if tcp, ok := m.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return "", fmt.Errorf("raft address %s: give a host other members can reach, not an unspecified address", n.cfg.RaftAddr)
	}
	if n.cfg.Join == m.Addr().String() {
		return "", fmt.Errorf("--join %s is this node's own raft address", n.cfg.Join)
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftStream{m},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  rc.Logger,
	})
	return raft.ServerAddress(m.Addr().String()), nil
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
	n.advertised = cmp.Or(n.cfg.AdvertisedAddr, ln.Addr().String())
	n.brk = broker.New(broker.Config{
		NodeID:            n.cfg.NodeID,
		ClusterID:         "kbox",
		Advertised:        n.advertised,
		Brokers:           n.brokers,
		Replicas:          n.replicas,
		InSync:            n.inSync,
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

// ID is the node's ID (its Kafka broker ID).
func (n *Node) ID() int32 { return n.cfg.NodeID }

// RaftAddr is the bound Raft address, or "" for a single node without one.
func (n *Node) RaftAddr() string {
	if n.mux == nil {
		return ""
	}
	return n.mux.Addr().String()
}

// AdvertisedAddr is the Kafka address clients are given, or "" when the
// Kafka listener is off.
func (n *Node) AdvertisedAddr() string { return n.advertised }

// Snapshot takes a Raft snapshot now and truncates the log behind it,
// keeping Config.TrailingLogs entries.
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
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
func (n *Node) fail(err error) { n.stopWith(err) }

// stopWith records why the node stops and closes it in the background.
func (n *Node) stopWith(err error) {
	n.fatalOnce.Do(func() {
		n.fatalErr.Store(&err)
		if errors.Is(err, ErrRemoved) || errors.Is(err, ErrRestartRequested) {
			n.log.Info("node stopping", "reason", err)
		} else {
			n.log.Error("node stopping", "err", err)
		}
		go n.Close()
	})
}

// RequestRestart stops the node with ErrRestartRequested, first handing
// leadership to another voter if it leads, so that its supervisor can
// start it again from disk (POST /cluster/restart, kbox cluster
// rolling-restart).
func (n *Node) RequestRestart() {
	if n.raft != nil && n.raft.State() == raft.Leader && n.mux != nil {
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		if err := waitFuture(ctx, n.raft.LeadershipTransfer()); err != nil {
			n.log.Warn("leadership transfer before restart", "err", err)
		}
		cancel()
	}
	n.stopWith(ErrRestartRequested)
}

// Close stops the listeners, Raft and the store, in that order.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		n.cancel()
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
		if n.mux != nil {
			n.mux.Close()
			n.rpc.close()
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

// fastTimeout is Raft's heartbeat, election and lease timeout with
// Config.FastTimeouts.
const fastTimeout = 100 * time.Millisecond

// slogWriter feeds hclog's text lines ("[WARN]  raft: msg: k=v") into the
// node's slog logger at their level; once the node stops, Raft's
// complaints about closed connections go to debug.
type slogWriter struct{ n *Node }

func (w slogWriter) Write(p []byte) (int, error) {
	line := string(trimNewline(p))
	level := slog.LevelWarn
	for prefix, l := range map[string]slog.Level{"[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelInfo, "[DEBUG]": slog.LevelDebug, "[TRACE]": slog.LevelDebug} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			line, level = strings.TrimSpace(rest), l
			break
		}
	}
	select {
	case <-w.n.stop:
		level = slog.LevelDebug
	default:
	}
	w.n.log.Log(context.Background(), level, line, "component", "raft")
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
