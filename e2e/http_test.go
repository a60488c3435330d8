package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBinaryHTTPEndpoints starts kbox with its HTTP listener, reads the
// address from the banner, and checks /healthz and that /metrics counts
// the requests a client just made.
func TestBinaryHTTPEndpoints(t *testing.T) {
	k := startKbox(t, "--http-addr", "127.0.0.1:0")
	m := regexp.MustCompile(`(?m)^\s+HTTP\s+http://(\S+)`).FindStringSubmatch(k.logs.String())
	if m == nil {
		t.Fatalf("banner names no HTTP address:\n%s", k.logs.tail(20))
	}
	base := "http://" + m[1]
	createTopic(t, k.Addr, "http-metrics", 1, nil)
	produceSync(t, k.Addr, numbered("http-metrics", "v", 0, 10))

	cl := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := cl.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusOK || !strings.HasPrefix(body, "ok") {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	produced := regexp.MustCompile(`(?m)^kbox_broker_requests_total\{[^}]*api="Produce"[^}]*\} (\d+)`).FindStringSubmatch(body)
	if produced == nil || produced[1] == "0" {
		t.Errorf("/metrics has no Produce request count:\n%s", firstLines(body, "kbox_broker_requests_total", 20))
	}
	if !strings.Contains(body, "kbox_raft_applied_index") {
		t.Errorf("/metrics lacks kbox_raft_applied_index")
	}
}

// firstLines returns up to n lines of text that contain substr.
func firstLines(text, substr string, n int) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
