package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpHandler serves /healthz (200 once the node can serve Kafka requests),
// /metrics (Prometheus text format) and the cluster API:
//
//	GET    /cluster              ClusterStatus as JSON
//	POST   /cluster/members      add a voter: {"id": 4, "raft_addr": "host:port"}
//	DELETE /cluster/members/{id} remove a member
//	POST   /cluster/restart      restart this node in place (202; see RequestRestart)
//	POST   /cluster/snapshot     take a Raft snapshot and truncate the log
//
// and Go's profiles under /debug/pprof/ (net/http/pprof), so a slow broker
// can be profiled where it runs: `go tool pprof
// http://127.0.0.1:8080/debug/pprof/profile?seconds=10`. The HTTP address
// is loopback unless set otherwise.
func (n *Node) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		id, epoch, ok := n.Leader()
		if !ok {
			http.Error(w, "no raft leader yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok: node %d, leader %d, epoch %d, applied %d\n", n.cfg.NodeID, id, epoch, n.store.Applied())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /cluster", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Status())
	})
	mux.HandleFunc("POST /cluster/members", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID       int32  `json:"id"`
			RaftAddr string `json:"raft_addr"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("decode body: %w", err))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := n.AddVoter(ctx, req.ID, req.RaftAddr); err != nil {
			writeError(w, httpStatus(err), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"added": req.ID})
	})
	mux.HandleFunc("DELETE /cluster/members/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 32)
		if err != nil || id <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("node id %q: want a positive integer", r.PathValue("id")))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := n.RemoveMember(ctx, int32(id)); err != nil {
			writeError(w, httpStatus(err), err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"removed": id})
	})
	mux.HandleFunc("POST /cluster/restart", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusAccepted, map[string]any{"restarting": n.cfg.NodeID})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go n.RequestRestart()
	})
	mux.HandleFunc("POST /cluster/snapshot", func(w http.ResponseWriter, r *http.Request) {
		if err := n.Snapshot(); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		idx, size := n.snapshotInfo()
		writeJSON(w, http.StatusOK, map[string]any{"snapshot_index": idx, "snapshot_bytes": size})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// httpStatus maps a membership error to an HTTP status: 409 for a
// rejected request, 503 when no leader could take it.
func httpStatus(err error) int {
	var re *rpcError
	switch {
	case errors.As(err, &re) && re.code == codeRejected:
		return http.StatusConflict
	case errors.As(err, &re) && re.code == codeNotLeader, errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// raftCollector exports Raft state and store figures at scrape time.
type raftCollector struct {
	n                                  *Node
	state, term, applied, lastIndex    *prometheus.Desc
	partitionBytes, partitionHWM, tops *prometheus.Desc
	snapshotBytes, memberLag, inSync   *prometheus.Desc
	payloads, payloadBytes             *prometheus.Desc
}

func newRaftCollector(n *Node) *raftCollector {
	return &raftCollector{
		n:              n,
		state:          prometheus.NewDesc("kbox_raft_state", "Raft state: 0 follower, 1 candidate, 2 leader, 3 shutdown.", nil, nil),
		term:           prometheus.NewDesc("kbox_raft_term", "Current Raft term (the leader epoch).", nil, nil),
		applied:        prometheus.NewDesc("kbox_raft_applied_index", "Last log index applied to the store.", nil, nil),
		lastIndex:      prometheus.NewDesc("kbox_raft_last_index", "Last index in the Raft log.", nil, nil),
		partitionBytes: prometheus.NewDesc("kbox_partition_bytes", "Bytes stored per partition.", []string{"topic", "partition"}, nil),
		partitionHWM:   prometheus.NewDesc("kbox_partition_high_watermark", "High watermark per partition.", []string{"topic", "partition"}, nil),
		tops:           prometheus.NewDesc("kbox_topics", "Number of topics.", nil, nil),
		snapshotBytes:  prometheus.NewDesc("kbox_raft_snapshot_bytes", "Size of the latest Raft snapshot.", nil, nil),
		memberLag:      prometheus.NewDesc("kbox_cluster_member_lag", "Log entries each member's applied index trails the leader's, as this node sees it.", []string{"node"}, nil),
		inSync:         prometheus.NewDesc("kbox_cluster_member_in_sync", "1 if the member is in the ISR, as this node sees it.", []string{"node"}, nil),
		payloads:       prometheus.NewDesc("kbox_raft_payloads", "Large Raft entries whose data state.db holds, by who needs them: referenced (stored batches point into them) or log_only (only the Raft log, until it compacts).", []string{"held_by"}, nil),
		payloadBytes:   prometheus.NewDesc("kbox_raft_payload_bytes", "Bytes of Raft entry data held in state.db (the produced records, written once).", nil, nil),
	}
}

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.term, c.applied, c.lastIndex, c.partitionBytes, c.partitionHWM, c.tops, c.snapshotBytes, c.memberLag, c.inSync, c.payloads, c.payloadBytes} {
		ch <- d
	}
}

func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.n.raft
	if r == nil {
		return
	}
	state := r.State()
	ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, float64(raftStateValue(state)))
	ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(r.CurrentTerm()))
	ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, float64(c.n.store.Applied()))
	ch <- prometheus.MustNewConstMetric(c.lastIndex, prometheus.GaugeValue, float64(r.LastIndex()))
	_, snapBytes := c.n.snapshotInfo()
	ch <- prometheus.MustNewConstMetric(c.snapshotBytes, prometheus.GaugeValue, float64(snapBytes))
	for _, m := range c.n.Status().Members {
		id := strconv.Itoa(int(m.ID))
		ch <- prometheus.MustNewConstMetric(c.memberLag, prometheus.GaugeValue, float64(m.Lag), id)
		in := 0.0
		if m.InSync {
			in = 1
		}
		ch <- prometheus.MustNewConstMetric(c.inSync, prometheus.GaugeValue, in, id)
	}
	if ps, err := c.n.store.PayloadStats(); err == nil {
		ch <- prometheus.MustNewConstMetric(c.payloads, prometheus.GaugeValue, float64(ps.Referenced), "referenced")
		ch <- prometheus.MustNewConstMetric(c.payloads, prometheus.GaugeValue, float64(ps.Count-ps.Referenced), "log_only")
		ch <- prometheus.MustNewConstMetric(c.payloadBytes, prometheus.GaugeValue, float64(ps.Bytes))
	}
	topics := c.n.store.Topics()
	ch <- prometheus.MustNewConstMetric(c.tops, prometheus.GaugeValue, float64(len(topics)))
	for _, t := range topics {
		for p := int32(0); p < t.Partitions; p++ {
			offs, err := c.n.store.Offsets(t.Name, p)
			if err != nil {
				continue
			}
			ps := fmt.Sprint(p)
			ch <- prometheus.MustNewConstMetric(c.partitionBytes, prometheus.GaugeValue, float64(offs.Bytes), t.Name, ps)
			ch <- prometheus.MustNewConstMetric(c.partitionHWM, prometheus.GaugeValue, float64(offs.HighWatermark), t.Name, ps)
		}
	}
}

func raftStateValue(s raft.RaftState) int {
	switch s {
	case raft.Follower:
		return 0
	case raft.Candidate:
		return 1
	case raft.Leader:
		return 2
	}
	return 3
}
