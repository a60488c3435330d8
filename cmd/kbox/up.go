package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kbox-dev/kbox/cluster"
)

// upFlags is the table of `kbox up` flags (DESIGN.md, "Default endpoints").
var upFlags = []flagSpec{
	{Name: "kafka-addr", Env: envName("kafka-addr"), Default: "127.0.0.1:9092", Usage: "Kafka protocol listener"},
	{Name: "advertised-addr", Env: envName("advertised-addr"), Default: "", Usage: "address given to Kafka clients (default: the bound kafka-addr)"},
	{Name: "sql-addr", Env: envName("sql-addr"), Default: "127.0.0.1:8088", Usage: "SQL REST listener (ksqlDB API), or off"},
	{Name: "connect-addr", Env: envName("connect-addr"), Default: "127.0.0.1:8083", Usage: "Connect REST listener, or off"},
	{Name: "http-addr", Env: envName("http-addr"), Default: "127.0.0.1:8080", Usage: "/healthz and /metrics listener, or off"},
	{Name: "data-dir", Env: envName("data-dir"), Default: "./.kbox", Usage: "directory for all data"},
	{Name: "ephemeral", Env: envName("ephemeral"), Default: "false", Usage: "keep data in a temp dir removed on exit"},
	{Name: "fsync", Env: envName("fsync"), Default: "false", Usage: "fsync every commit (survives power loss)"},
	{Name: "demo", Env: envName("demo"), Default: "false", Usage: "run the offline Twitter demo (needs SQL and connect)"},
	{Name: "log-level", Env: envName("log-level"), Default: "info", Usage: "debug, info, warn or error"},
	{Name: "node-id", Env: envName("node-id"), Default: "1", Usage: "node ID, also the Kafka broker ID"},
	{Name: "raft-addr", Env: envName("raft-addr"), Default: "", Usage: "Raft listener for cluster mode (empty: single node)"},
	{Name: "join", Env: envName("join"), Default: "", Usage: "raft address of an existing member to join"},
	{Name: "partitions", Env: envName("partitions"), Default: "1", Usage: "num.partitions for auto-created topics"},
}

// brokerGCPercent is the Go GC target `kbox up` runs with unless GOGC is
// set. A broker's live heap is small (metadata, groups, the requests in
// flight) while it allocates a request buffer per produce request, MiBs
// each: at the default 100 the collector ran several times a second under
// load and the heap kept handing pages back to the OS and faulting them in
// again (a fifth of the broker's CPU in perf). At 400, `make bench` produce
// rose by a third for 1 KiB records and a sixth for 100 B, for ~60 MiB more
// peak memory (most of a loaded broker's RSS is the mapped state file).
const brokerGCPercent = 400

func newUpCommand() *cobra.Command {
	var o struct {
		kafka, advertised, sql, connect, http, dataDir, logLevel, raftAddr, join string
		ephemeral, fsync, demo                                                   bool
		nodeID, partitions                                                       int32
	}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start kbox: a Kafka-compatible broker (and, as they land, SQL and connect)",
		Long: `Start a kbox node in the foreground and print where everything is.

Every flag can also be set from the environment: --kafka-addr is
KBOX_KAFKA_ADDR, and so on. An address of "off" disables that part.

Example:
  kbox up --ephemeral --kafka-addr 127.0.0.1:19092 --http-addr off`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyEnv(cmd.Flags(), upFlags); err != nil {
				return err
			}
			lvl := new(slog.LevelVar)
			if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: %w", o.logLevel, err)
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			dir := o.dataDir
			if o.ephemeral {
				tmp, err := os.MkdirTemp("", "kbox-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			if o.demo {
				return fmt.Errorf("--demo runs the Twitter demo on kbox's SQL and connect layers, which are not built yet; kbox up without --demo runs the broker")
			}
			if o.join != "" && o.raftAddr == "" {
				return fmt.Errorf("--join needs --raft-addr: the address other members reach this node on")
			}
			cfg := cluster.Config{
				NodeID:            o.nodeID,
				DataDir:           dir,
				KafkaAddr:         o.kafka,
				AdvertisedAddr:    o.advertised,
				HTTPAddr:          o.http,
				RaftAddr:          o.raftAddr,
				Join:              o.join,
				Fsync:             o.fsync,
				AutoCreateTopics:  true,
				DefaultPartitions: o.partitions,
				Logger:            log,
			}
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(brokerGCPercent)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			for {
				again, err := serveNode(ctx, cmd, cfg, o.sql, o.connect)
				if err != nil || !again {
					return err
				}
				log.Info("restarting in place", "node", cfg.NodeID)
			}
		},
	}
	f := cmd.Flags()
	str := map[string]*string{
		"kafka-addr": &o.kafka, "advertised-addr": &o.advertised, "sql-addr": &o.sql, "connect-addr": &o.connect,
		"http-addr": &o.http, "data-dir": &o.dataDir, "log-level": &o.logLevel, "raft-addr": &o.raftAddr, "join": &o.join,
	}
	bindStrings(cmd, upFlags, str)
	for _, s := range upFlags {
		switch s.Name {
		case "ephemeral":
			f.BoolVar(&o.ephemeral, s.Name, false, usageWithEnv(s))
		case "fsync":
			f.BoolVar(&o.fsync, s.Name, false, usageWithEnv(s))
		case "demo":
			f.BoolVar(&o.demo, s.Name, false, usageWithEnv(s))
		case "node-id":
			f.Int32Var(&o.nodeID, s.Name, 1, usageWithEnv(s))
		case "partitions":
			v, _ := strconv.Atoi(s.Default)
			f.Int32Var(&o.partitions, s.Name, int32(v), usageWithEnv(s))
		}
	}
	return cmd
}

// serveNode runs one incarnation of the node until a signal or until the
// node stops, and reports whether it asked to be restarted in place
// (kbox cluster rolling-restart). A cluster node waits for a leader as
// long as it takes: its peers may start later.
func serveNode(ctx context.Context, cmd *cobra.Command, cfg cluster.Config, sql, connect string) (restart bool, err error) {
	start := time.Now()
	n, err := cluster.StartNode(cfg)
	if err != nil {
		return false, err
	}
	defer n.Close()
	var (
		wctx   context.Context
		cancel context.CancelFunc
	)
	if cfg.RaftAddr == "" {
		wctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	} else {
		cfg.Logger.Info("waiting for a Raft leader", "node", cfg.NodeID, "raft_addr", n.RaftAddr(), "join", cfg.Join)
		wctx, cancel = context.WithCancel(ctx)
	}
	err = n.WaitLeader(wctx)
	cancel()
	if err != nil && ctx.Err() == nil && n.Err() == nil {
		return false, err
	}
	if err == nil {
		printBanner(cmd, n, cfg.DataDir, sql, connect, time.Since(start))
	}
	select {
	case <-ctx.Done():
		cfg.Logger.Info("shutting down")
	case <-n.Done():
	}
	if err := n.Close(); err != nil {
		return false, fmt.Errorf("shutdown: %w", err)
	}
	switch {
	case errors.Is(n.Err(), cluster.ErrRestartRequested):
		return ctx.Err() == nil, nil
	case errors.Is(n.Err(), cluster.ErrRemoved):
		cfg.Logger.Info("this node was removed from the cluster; exiting", "node", cfg.NodeID)
		return false, nil
	}
	return false, n.Err()
}

func printBanner(cmd *cobra.Command, n *cluster.Node, dir, sql, connect string, took time.Duration) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "kbox %s is up in %s (node %d, data in %s)\n", version, took.Round(time.Millisecond), n.ID(), dir)
	fmt.Fprintf(w, "  Kafka     %s\n", n.KafkaAddr())
	if a := n.RaftAddr(); a != "" {
		fmt.Fprintf(w, "  Raft      %s  (kbox cluster status --http-addr %s)\n", a, orDash(n.HTTPAddr()))
	}
	if a := n.HTTPAddr(); a != "" {
		fmt.Fprintf(w, "  HTTP      http://%s  (/healthz, /metrics, /cluster, /debug/pprof)\n", a)
	}
	if sql != "off" {
		fmt.Fprintf(w, "  SQL       not built yet (ksqlDB API will be at %s)\n", sql)
	}
	if connect != "off" {
		fmt.Fprintf(w, "  Connect   not built yet (Connect REST will be at %s)\n", connect)
	}
	fmt.Fprintf(w, "Try: kcat -b %s -L\n", n.KafkaAddr())
}
