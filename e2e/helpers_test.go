package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// inCI reports whether missing peers must fail instead of skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// peerMissing skips t (or fails it under CI=true) because a peer is not
// installed; install says how to get it.
func peerMissing(t testing.TB, what, install string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s is missing and CI=true: %s", what, install)
	}
	t.Skipf("%s not found; to run this test: %s", what, install)
}

// needTool returns the path of an executable peer, or skips/fails t.
// With -short, the JVM peers (java, mvn) skip: they cost seconds each.
func needTool(t testing.TB, name, install string) string {
	t.Helper()
	if testing.Short() && (name == "java" || name == "mvn") {
		t.Skipf("-short: skipping the %s peer", name)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		peerMissing(t, name, install)
	}
	return p
}

// testCtx is a context that ends at d or with the test.
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient is a franz-go client on addr, closed with the test.
func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// waitFor polls fn every 20ms until it returns nil, failing t with the
// last error after d.
func waitFor(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// needAPIs skips t, naming what is missing, when the broker at addr does
// not serve every one of keys: the test covers an API another engineer is
// still writing and starts running once it lands.
func needAPIs(t testing.TB, addr string, keys ...int16) {
	t.Helper()
	missing, err := missingAPIs(addr, keys...)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	if len(missing) > 0 {
		t.Skipf("kbox does not serve %v yet (issue 8)", missing)
	}
}

// missingAPIs lists the names of keys the broker at addr does not advertise.
func missingAPIs(addr string, keys ...int16) ([]string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	served := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		served[k.ApiKey] = true
	}
	var missing []string
	for _, k := range keys {
		if !served[k] {
			missing = append(missing, kmsg.NameForKey(k))
		}
	}
	return missing, nil
}

// createTopic creates a topic through kadm, or through Metadata auto
// creation (one partition, no configs) where CreateTopics is not served.
func createTopic(t testing.TB, addr, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	cl := newClient(t, addr)
	if missing, err := missingAPIs(addr, kmsg.CreateTopics.Int16()); err != nil {
		t.Fatal(err)
	} else if len(missing) > 0 {
		if partitions != 1 || len(configs) > 0 {
			t.Skipf("kbox does not serve CreateTopics yet (issue 8); this test needs %d partitions and configs %v", partitions, configs)
		}
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = true
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		waitFor(t, 20*time.Second, func() error {
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err
			}
			if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) == 0 {
				return fmt.Errorf("auto-create %s: %+v", topic, resp.Topics)
			}
			return nil
		})
		return
	}
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}
