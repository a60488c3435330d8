package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPITableRoundTrips checks the one table behind dispatch and
// ApiVersions: every key appears once, every advertised version is one
// kmsg knows, and a default request of each version survives the
// connection's own decoding.
func TestAPITableRoundTrips(t *testing.T) {
	cc := &clientConn{b: &Broker{apis: newAPIIndex()}}
	seen := map[int16]bool{}
	for _, a := range apis() {
		name := kmsg.NameForKey(a.key)
		if seen[a.key] {
			t.Errorf("%s listed twice", name)
		}
		seen[a.key] = true
		req := kmsg.RequestForKey(a.key)
		if req == nil {
			t.Fatalf("key %d is unknown to kmsg", a.key)
		}
		if a.min < 0 || a.min > a.max || a.max > req.MaxVersion() {
			t.Errorf("%s advertises v%d-v%d; kmsg knows up to v%d", name, a.min, a.max, req.MaxVersion())
		}
		if a.handle == nil {
			t.Errorf("%s has no handler", name)
		}
		for v := a.min; v <= a.max; v++ {
			r := kmsg.RequestForKey(a.key)
			r.SetVersion(v)
			f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, r, 7)
			got, err := cc.decode(f[4:])
			if err != nil {
				t.Errorf("%s v%d: %v", name, v, err)
				continue
			}
			if got.Key() != a.key || got.GetVersion() != v || got.correlation != 7 || got.clientID != "t" {
				t.Errorf("%s v%d decoded as key %d v%d correlation %d client %q", name, v, got.Key(), got.GetVersion(), got.correlation, got.clientID)
			}
		}
		if a.max < req.MaxVersion() {
			r := kmsg.RequestForKey(a.key)
			r.SetVersion(a.max + 1)
			f := kmsg.NewRequestFormatter().AppendRequest(nil, r, 1)
			if _, err := cc.decode(f[4:]); err == nil && a.key != 18 {
				t.Errorf("%s v%d (above the advertised range) was accepted", name, a.max+1)
			}
		}
	}
}
