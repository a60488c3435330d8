package cluster_test

import (
	"testing"
	"time"

	"github.com/kbox-dev/kbox/cluster"
)

// TestClusterStartsFast: a 3-node cluster (FastTimeouts) is up — a leader,
// every node a voter, registered and in sync, the topics created — in well
// under a second. Best of three, as the machine may be busy.
func TestClusterStartsFast(t *testing.T) {
	var best time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		c, err := cluster.New(cluster.Nodes(3), cluster.Topics("orders"), cluster.FastTimeouts())
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		must(t, c.Close())
		if i == 0 || took < best {
			best = took
		}
	}
	t.Logf("3-node cluster up in %v (best of 3)", best)
	if best > time.Second {
		t.Errorf("3-node cluster took %v to start; want well under a second", best)
	}
}
