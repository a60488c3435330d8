package storage_test

import (
	"bytes"
	"errors"
	"maps"
	"path/filepath"
	"testing"

	"github.com/kbox-dev/kbox/broker/storage"
)

func TestDefaultsInitialAndAltered(t *testing.T) {
	s := openStore(t)
	if got, want := s.Defaults(), map[string]string{"min.insync.replicas": "1"}; !maps.Equal(got, want) {
		t.Fatalf("initial defaults %v, want %v", got, want)
	}
	mustCreate(t, s, "t", 1, map[string]string{"retention.ms": "5"})
	info, _ := s.Topic("t")
	if got := info.Config("min.insync.replicas"); got != "1" {
		t.Errorf("min.insync.replicas %q, want the cluster default 1", got)
	}

	if r := apply1(t, s, storage.AlterDefaults{Set: map[string]string{"retention.ms": "1000", "cleanup.policy": "compact"}}); r != nil {
		t.Fatalf("alter defaults: %v", r)
	}
	info, _ = s.Topic("t")
	for name, want := range map[string]string{"retention.ms": "5", "cleanup.policy": "compact", "min.insync.replicas": "1", "segment.ms": "604800000"} {
		if got := info.Config(name); got != want {
			t.Errorf("%s = %q, want %q (topic, then cluster default, then Kafka's)", name, got, want)
		}
	}

	r := apply1(t, s, storage.AlterDefaults{Set: map[string]string{"retention.ms": "abc", "segment.ms": "1"}})
	if err, _ := r.(error); !errors.Is(err, storage.ErrInvalidConfig) {
		t.Fatalf("invalid default: result %v, want ErrInvalidConfig", r)
	}
	if got := s.Defaults()["segment.ms"]; got != "" {
		t.Errorf("a refused AlterDefaults changed segment.ms to %q", got)
	}

	apply1(t, s, storage.AlterDefaults{Delete: []string{"cleanup.policy", "min.insync.replicas"}})
	if got, want := s.Defaults(), map[string]string{"retention.ms": "1000"}; !maps.Equal(got, want) {
		t.Errorf("after delete %v, want %v", got, want)
	}
	apply1(t, s, storage.AlterDefaults{Replace: true, Set: map[string]string{"max.message.bytes": "10"}})
	if got, want := s.Defaults(), map[string]string{"max.message.bytes": "10"}; !maps.Equal(got, want) {
		t.Errorf("after replace %v, want %v", got, want)
	}
}

// TestDefaultsApplyToAppends: max.message.bytes and message.timestamp.type
// as cluster defaults bind every topic that does not set them.
func TestDefaultsApplyToAppends(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "plain", 1, nil)
	mustCreate(t, s, "own", 1, map[string]string{"max.message.bytes": "1000000", "message.timestamp.type": "CreateTime"})
	batch := plain(3, 1000).build(t)
	apply1(t, s, storage.AlterDefaults{Set: map[string]string{"max.message.bytes": "10", "message.timestamp.type": "LogAppendTime"}})
	if r := appendBatch(t, s, 5000, "plain", 0, batch); !errors.Is(r.Err, storage.ErrMessageTooLarge) {
		t.Errorf("append over the cluster max.message.bytes: %v, want ErrMessageTooLarge", r.Err)
	}
	if r := appendBatch(t, s, 5000, "own", 0, batch); r.Err != nil || r.LogAppendTime != -1 {
		t.Errorf("append to a topic with its own configs: err %v, log append time %d; want nil, -1", r.Err, r.LogAppendTime)
	}
	apply1(t, s, storage.AlterDefaults{Delete: []string{"max.message.bytes"}})
	if r := appendBatch(t, s, 5000, "plain", 0, batch); r.Err != nil || r.LogAppendTime != 5000 {
		t.Errorf("append under the cluster LogAppendTime: err %v, log append time %d; want nil, 5000", r.Err, r.LogAppendTime)
	}
}

// TestDefaultsSurviveReopenAndSnapshot: the defaults are replicated state,
// identical on a reopened store, a restored snapshot and a store that
// replays the same log.
func TestDefaultsSurviveReopenAndSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := storage.Open(path, storage.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cmds := []storage.Command{
		storage.AlterDefaults{Set: map[string]string{"retention.ms": "1000"}},
		storage.AlterDefaults{Delete: []string{"min.insync.replicas"}},
	}
	apply(t, s, cmds...)
	want := map[string]string{"retention.ms": "1000"}
	var snap bytes.Buffer
	sn, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	sn.Release()
	_, digest, _ := s.Digest()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = storage.Open(path, storage.Options{InitialMmapSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Defaults(); !maps.Equal(got, want) {
		t.Errorf("reopened: %v, want %v", got, want)
	}

	restored := openStore(t)
	if err := restored.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	if got := restored.Defaults(); !maps.Equal(got, want) {
		t.Errorf("restored: %v, want %v", got, want)
	}

	replayed := openStore(t)
	apply(t, replayed, cmds...)
	if _, d, _ := replayed.Digest(); d != digest {
		t.Error("a store replaying the same log has another digest")
	}
}
