package cluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kbox-dev/kbox/cluster"
)

// TestClusterHTTPAPI checks GET /cluster, /metrics, POST /cluster/snapshot
// and the membership errors on a 3-node cluster, and that an isolated
// follower shows as unreachable and out of the ISR, then comes back.
func TestClusterHTTPAPI(t *testing.T) {
	c := cluster.Start(t, cluster.Nodes(3), cluster.Topics("orders"), cluster.FastTimeouts())
	ctx := waitCtx(t, 30*time.Second)
	leader, err := c.WaitLeader(ctx)
	must(t, err)
	follower := (leader + 1) % 3
	api := "http://" + c.Node(follower).HTTPAddr()

	var cs cluster.ClusterStatus
	must(t, getJSON(api+"/cluster", &cs))
	if cs.Node != int32(follower+1) || cs.Leader != int32(leader+1) || len(cs.Members) != 3 {
		t.Fatalf("GET /cluster from node %d: %+v", follower+1, cs)
	}
	for _, m := range cs.Members {
		if !m.Reachable || !m.InSync || !m.Voter || m.KafkaAddr == "" || m.HTTPAddr == "" || m.AppliedIndex == 0 {
			t.Errorf("member %+v", m)
		}
	}

	// Profiles are served beside the API (net/http/pprof).
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap"} {
		resp, err := http.Get(api + path)
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %s, %d bytes", path, resp.Status, len(body))
		}
	}

	resp, err := http.Post("http://"+c.Node(leader).HTTPAddr()+"/cluster/snapshot", "", nil)
	must(t, err)
	var snap struct {
		Index uint64 `json:"snapshot_index"`
		Bytes int64  `json:"snapshot_bytes"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&snap))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || snap.Index == 0 || snap.Bytes <= 0 {
		t.Errorf("POST /cluster/snapshot: %s %+v", resp.Status, snap)
	}

	metrics := get(t, api+"/metrics")
	for _, want := range []string{"kbox_cluster_member_in_sync{node=\"1\"} 1", "kbox_raft_applied_index", "kbox_cluster_member_lag", "kbox_raft_payload_bytes", "kbox_raft_payloads{held_by=\"referenced\"}"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	req, _ := http.NewRequest(http.MethodDelete, api+"/cluster/members/99", nil)
	resp, err = http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("removing a non-member: %s, want 409", resp.Status)
	}

	c.Isolate(follower)
	must(t, retry(ctx, func() error {
		var cs cluster.ClusterStatus
		if err := getJSON("http://"+c.Node(leader).HTTPAddr()+"/cluster", &cs); err != nil {
			return err
		}
		for _, m := range cs.Members {
			if m.ID == int32(follower+1) && (m.Reachable || m.InSync) {
				return fmt.Errorf("isolated node %d: reachable %v, in sync %v", m.ID, m.Reachable, m.InSync)
			}
		}
		return nil
	}))
	c.Heal(follower)
	must(t, c.WaitHealthy(ctx))
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	return string(b)
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
