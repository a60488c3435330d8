package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kbox-dev/kbox/cluster"
)

// clusterFlags is the table of flags the cluster verbs share. --http-addr
// names the same listener (and env var) as `kbox up --http-addr`.
var clusterFlags = []flagSpec{
	{Name: "http-addr", Env: envName("http-addr"), Default: "127.0.0.1:8080", Usage: "comma-separated HTTP addresses of kbox nodes (their kbox up --http-addr); the first that answers is asked"},
	{Name: "format", Env: envName("format"), Default: "table", Usage: "output format: table or json"},
	{Name: "timeout", Env: envName("timeout"), Default: "2m", Usage: "how long wait and rolling-restart may take"},
}

// clusterOpts are the values of clusterFlags.
type clusterOpts struct {
	httpAddrs, format string
	timeout           time.Duration
	// discovered holds the HTTP addresses of members learnt from a status,
	// asked after the given ones (a node may be restarting).
	discovered []string
}

func newClusterCommand() *cobra.Command {
	o := &clusterOpts{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show and change the membership of a multi-node kbox cluster",
		Long: `Inspect and operate a kbox cluster through any node's HTTP API
(GET /cluster, POST and DELETE /cluster/members, POST /cluster/restart).

A cluster forms as nodes start: the first bootstraps, the others join it.
Three nodes on one machine:

  kbox up --node-id 1 --data-dir n1 --kafka-addr 127.0.0.1:19092 --raft-addr 127.0.0.1:19093 --http-addr 127.0.0.1:18080 --sql-addr off --connect-addr off
  kbox up --node-id 2 --data-dir n2 --kafka-addr 127.0.0.1:29092 --raft-addr 127.0.0.1:29093 --http-addr 127.0.0.1:28080 --sql-addr off --connect-addr off --join 127.0.0.1:19093
  kbox up --node-id 3 --data-dir n3 --kafka-addr 127.0.0.1:39092 --raft-addr 127.0.0.1:39093 --http-addr 127.0.0.1:38080 --sql-addr off --connect-addr off --join 127.0.0.1:19093

Example:
  kbox cluster status --http-addr 127.0.0.1:18080`,
	}
	for _, s := range clusterFlags {
		switch s.Name {
		case "http-addr":
			cmd.PersistentFlags().StringVar(&o.httpAddrs, s.Name, s.Default, usageWithEnv(s))
		case "format":
			cmd.PersistentFlags().StringVar(&o.format, s.Name, s.Default, usageWithEnv(s))
		case "timeout":
			d, _ := time.ParseDuration(s.Default)
			cmd.PersistentFlags().DurationVar(&o.timeout, s.Name, d, usageWithEnv(s))
		}
	}
	cmd.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		return applyEnv(cmd.Flags(), clusterFlags)
	}
	cmd.AddCommand(
		newClusterStatusCommand(o),
		newClusterAddCommand(o),
		newClusterRemoveCommand(o),
		newClusterWaitCommand(o),
		newClusterRollingRestartCommand(o),
	)
	return cmd
}

func newClusterStatusCommand(o *clusterOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the nodes, the leader, applied indexes, lag and snapshots",
		Long: `Show the cluster as one node sees it: every member with its state, Kafka and
Raft addresses, applied index and lag behind the leader, whether it is in the
ISR, its latest snapshot (size and index), how many snapshots it installed
from a leader and how long after start it caught up.

Example:
  kbox cluster status --http-addr 127.0.0.1:18080 --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := newPrinter(cmd.OutOrStdout(), o.format)
			if err != nil {
				return err
			}
			cs, _, err := o.status(cmd.Context())
			if err != nil {
				return err
			}
			return p.print(cs, statusTable(cs))
		},
	}
}

func statusTable(cs cluster.ClusterStatus) table {
	t := table{
		title:  fmt.Sprintf("leader %s, epoch %d (as node %d sees it)", nodeOrNone(cs.Leader), cs.Epoch, cs.Node),
		header: []string{"NODE", "STATE", "KAFKA", "RAFT", "HTTP", "APPLIED", "LAG", "ISR", "LOG", "SNAPSHOT", "INSTALLED", "CATCH-UP"},
	}
	for _, m := range cs.Members {
		state := m.State
		switch {
		case !m.Reachable:
			state = "unreachable"
		case !m.Voter:
			state += " (non-voter)"
		}
		snap := "-"
		if m.SnapshotIndex > 0 {
			snap = fmt.Sprintf("%s @ %d", bytesize(m.SnapshotBytes), m.SnapshotIndex)
		}
		catchUp := "-"
		if m.CatchUpMs >= 0 {
			catchUp = (time.Duration(m.CatchUpMs) * time.Millisecond).String()
		}
		t.add(m.ID, state, orDash(m.KafkaAddr), m.RaftAddr, orDash(m.HTTPAddr), m.AppliedIndex, m.Lag, yesNo(m.InSync),
			fmt.Sprintf("%d-%d", m.FirstLogIndex, m.LastLogIndex), snap, m.SnapshotsInstalled, catchUp)
	}
	return t
}

func newClusterAddCommand(o *clusterOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "add NODE_ID RAFT_ADDR",
		Short: "Add a running node as a voter",
		Long: `Add the node NODE_ID, listening for Raft at RAFT_ADDR, to the cluster as a voter.
A node started with --join asks for this itself; use add for one whose --join
target was unreachable. The node must be running without state of another
cluster.

Example:
  kbox cluster add 4 127.0.0.1:49093 --http-addr 127.0.0.1:18080`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := nodeID(args[0])
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]any{"id": id, "raft_addr": args[1]})
			if err := o.call(cmd.Context(), http.MethodPost, "/cluster/members", body); err != nil {
				return fmt.Errorf("add node %d: %w", id, err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "node %d added\n", id)
			return err
		},
	}
}

func newClusterRemoveCommand(o *clusterOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NODE_ID",
		Short: "Remove a node from the cluster",
		Long: `Remove the node NODE_ID: the leader stops listing it to Kafka clients and takes
it out of the Raft configuration; the removed node's kbox up then exits. To
bring it back, start it again with an empty data dir and --join.

Example:
  kbox cluster remove 3 --http-addr 127.0.0.1:18080`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := nodeID(args[0])
			if err != nil {
				return err
			}
			if err := o.call(cmd.Context(), http.MethodDelete, "/cluster/members/"+strconv.Itoa(int(id)), nil); err != nil {
				return fmt.Errorf("remove node %d: %w", id, err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "node %d removed\n", id)
			return err
		},
	}
}

func newClusterWaitCommand(o *clusterOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "wait",
		Short: "Wait until the cluster is healthy",
		Long: `Wait (up to --timeout) until there is a leader and every member is reachable
and in the ISR: zero under-replicated partitions. Useful between the steps of
a manual rolling upgrade.

Example:
  kbox cluster wait --http-addr 127.0.0.1:18080 --timeout 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			cs, err := o.waitHealthy(ctx, nil)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "healthy: leader %d, %d members in sync\n", cs.Leader, len(cs.Members))
			return err
		},
	}
}

func newClusterRollingRestartCommand(o *clusterOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "rolling-restart",
		Short: "Restart every node, one at a time, without losing availability",
		Long: `Restart the nodes one by one, followers first and the leader last: each node
hands over leadership if it leads, closes Raft, its store and its listeners,
and starts again from its data dir in the same process (POST /cluster/restart).
Before the next node, the command waits for a leader and for the restarted
node to be back, caught up and in the ISR. It starts only on a healthy
cluster.

To restart processes instead (a binary upgrade), do the same by hand, one node
at a time: stop it (SIGTERM), start it again with the same flags, then run
  kbox cluster wait --http-addr ANY_NODE
before the next.

Example:
  kbox cluster rolling-restart --http-addr 127.0.0.1:18080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			cs, err := o.waitHealthy(ctx, nil)
			if err != nil {
				return fmt.Errorf("the cluster is not healthy, not restarting: %w", err)
			}
			for _, m := range restartOrder(cs) {
				if m.HTTPAddr == "" {
					return fmt.Errorf("node %d serves no HTTP API; restart it by hand", m.ID)
				}
				start := time.Now()
				fmt.Fprintf(cmd.OutOrStdout(), "node %d: restarting\n", m.ID)
				if err := postRestart(ctx, m.HTTPAddr); err != nil {
					return fmt.Errorf("restart node %d: %w", m.ID, err)
				}
				back := restartedSince(m)
				if _, err := o.waitHealthy(ctx, back); err != nil {
					return fmt.Errorf("node %d did not come back healthy: %w", m.ID, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "node %d: back and in sync after %v\n", m.ID, time.Since(start).Round(time.Millisecond))
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "rolling restart done")
			return err
		},
	}
}

// restartOrder lists followers by ID, then the leader.
func restartOrder(cs cluster.ClusterStatus) []cluster.MemberStatus {
	var out []cluster.MemberStatus
	var leader *cluster.MemberStatus
	for i, m := range cs.Members {
		if m.ID == cs.Leader {
			leader = &cs.Members[i]
			continue
		}
		out = append(out, m)
	}
	if leader != nil {
		out = append(out, *leader)
	}
	return out
}

// restartedSince checks, on a status the restarted node gave, that it is a
// new incarnation (shorter uptime than before) that has caught up.
func restartedSince(before cluster.MemberStatus) func(cluster.ClusterStatus) error {
	asked := time.Now()
	return func(cs cluster.ClusterStatus) error {
		for _, m := range cs.Members {
			if m.ID != before.ID {
				continue
			}
			if !m.Reachable || time.Duration(m.UptimeMs)*time.Millisecond > time.Since(asked) {
				return fmt.Errorf("node %d has not restarted yet", m.ID)
			}
			if m.CatchUpMs < 0 {
				return fmt.Errorf("node %d has not caught up yet", m.ID)
			}
			return nil
		}
		return fmt.Errorf("node %d is not a member", before.ID)
	}
}

func postRestart(ctx context.Context, httpAddr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+httpAddr+"/cluster/restart", nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return httpError(resp)
}

// waitHealthy polls until some node reports a healthy cluster (and extra
// accepts its status).
func (o *clusterOpts) waitHealthy(ctx context.Context, extra func(cluster.ClusterStatus) error) (cluster.ClusterStatus, error) {
	var last error
	for {
		cs, _, err := o.status(ctx)
		if err == nil {
			err = healthy(cs)
		}
		if err == nil && extra != nil {
			err = extra(cs)
		}
		if err == nil {
			return cs, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return cs, fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// healthy reports why a status is not healthy: no leader, or a member that
// is unreachable, behind or out of the ISR.
func healthy(cs cluster.ClusterStatus) error {
	if cs.Leader < 0 {
		return errors.New("no leader")
	}
	for _, m := range cs.Members {
		switch {
		case !m.Reachable:
			return fmt.Errorf("node %d is unreachable", m.ID)
		case m.Leader != cs.Leader:
			return fmt.Errorf("node %d follows %s, not %d", m.ID, nodeOrNone(m.Leader), cs.Leader)
		case !m.InSync:
			return fmt.Errorf("node %d is not in the ISR (lag %d)", m.ID, m.Lag)
		}
	}
	return nil
}

// httpClient is the cluster commands' HTTP client.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// status asks the first node that answers for GET /cluster.
func (o *clusterOpts) status(ctx context.Context) (cluster.ClusterStatus, string, error) {
	var cs cluster.ClusterStatus
	var errs []error
	for _, addr := range o.addrs() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/cluster", nil)
		if err != nil {
			return cs, "", err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = httpError(resp)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&cs)
		}
		resp.Body.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		o.learn(cs)
		return cs, addr, nil
	}
	return cs, "", fmt.Errorf("no kbox node answered: %w", errors.Join(errs...))
}

// call sends a membership request to the first node that answers.
func (o *clusterOpts) call(ctx context.Context, method, path string, body []byte) error {
	var errs []error
	for _, addr := range o.addrs() {
		req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = httpError(resp)
		resp.Body.Close()
		return err
	}
	return fmt.Errorf("no kbox node answered: %w", errors.Join(errs...))
}

// addrs lists the HTTP addresses to try: the given ones, then the
// discovered ones.
func (o *clusterOpts) addrs() []string {
	var out []string
	for _, a := range append(strings.Split(o.httpAddrs, ","), o.discovered...) {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func (o *clusterOpts) learn(cs cluster.ClusterStatus) {
	for _, m := range cs.Members {
		if m.HTTPAddr != "" && !slices.Contains(o.discovered, m.HTTPAddr) {
			o.discovered = append(o.discovered, m.HTTPAddr)
		}
	}
}

// httpError turns a non-2xx answer into an error with the API's message.
func httpError(resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return fmt.Errorf("%s: %s", resp.Status, e.Error)
	}
	return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
}

func nodeID(s string) (int32, error) {
	id, err := strconv.ParseInt(s, 10, 32)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("node id %q: want a positive integer", s)
	}
	return int32(id), nil
}

func nodeOrNone(id int32) string {
	if id < 0 {
		return "none"
	}
	return strconv.Itoa(int(id))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// bytesize formats a byte count with a binary unit.
func bytesize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
