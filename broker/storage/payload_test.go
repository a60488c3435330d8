package storage_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/kbox-dev/kbox/broker/storage"
)

// applyPayload applies c as entry index the way a node applies a large
// Raft entry: its data first stored as the entry's payload.
func applyPayload(t testing.TB, s *storage.Store, index uint64, c storage.Command) any {
	t.Helper()
	data, err := storage.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPayloads([]storage.Payload{{Index: index, Data: data}}); err != nil {
		t.Fatal(err)
	}
	res, err := s.ApplyBatch([]storage.Entry{{Index: index, Data: data, Payload: true}})
	if err != nil {
		t.Fatalf("apply payload entry %d: %v", index, err)
	}
	return res[0]
}

func readAll(t testing.TB, s *storage.Store, topic string, p int32) []byte {
	t.Helper()
	rr, err := s.Read(topic, p, 0, 1<<30, nil)
	if err != nil {
		t.Fatalf("read %s/%d: %v", topic, p, err)
	}
	return rr.Records
}

// A batch stored by reference reads back byte for byte as one stored
// whole, LogAppendTime stamps (which change the CRC) included.
func TestPayloadBatchesReadLikeCopiedOnes(t *testing.T) {
	for _, configs := range []map[string]string{nil, {"message.timestamp.type": "LogAppendTime"}} {
		copied, referenced := openStore(t), openStore(t)
		for _, s := range []*storage.Store{copied, referenced} {
			mustCreate(t, s, "a", 2, configs)
		}
		for i := range 3 {
			c := storage.Append{Now: 5000 + int64(i), Parts: []storage.AppendPart{
				{Topic: "a", Partition: 0, Batch: plain(3, 100).build(t)},
				{Topic: "a", Partition: 1, Batch: idem(2, 7, 0, int32(2*i)).build(t)},
			}}
			want := apply1(t, copied, c)
			if got := applyPayload(t, referenced, referenced.Applied()+1, c); !equalResults(got, want) {
				t.Fatalf("append %d: result %+v, want %+v", i, got, want)
			}
		}
		for p := int32(0); p < 2; p++ {
			got, want := readAll(t, referenced, "a", p), readAll(t, copied, "a", p)
			if !bytes.Equal(got, want) {
				t.Fatalf("configs %v partition %d: referenced batches read differently", configs, p)
			}
			for _, b := range parseBatches(t, got) {
				if !storage.CheckBatchCRC(b.AppendTo(nil)) {
					t.Fatalf("configs %v partition %d: batch at %d fails its CRC", configs, p, b.FirstOffset)
				}
			}
		}
		// Retention and compaction walk headers only; both kinds agree.
		headers := func(s *storage.Store) (hs []storage.BatchHeader, sizes []int) {
			err := s.BatchHeaders("a", 1, 0, 1<<62, func(h storage.BatchHeader, size int) error {
				hs, sizes = append(hs, h), append(sizes, size)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return hs, sizes
		}
		h1, s1 := headers(copied)
		h2, s2 := headers(referenced)
		if len(h1) != 3 || !reflect.DeepEqual(h1, h2) || !reflect.DeepEqual(s1, s2) {
			t.Errorf("BatchHeaders: copied %v %v, referenced %v %v", h1, s1, h2, s2)
		}
		var offs []storage.PartitionOffsets
		for _, s := range []*storage.Store{copied, referenced} {
			o, err := s.Offsets("a", 0)
			if err != nil {
				t.Fatal(err)
			}
			offs = append(offs, o)
		}
		if offs[0] != offs[1] {
			t.Errorf("offsets differ: copied %+v, referenced %+v", offs[0], offs[1])
		}
	}
}

func equalResults(a, b any) bool {
	ar, ok1 := a.(storage.AppendResult)
	br, ok2 := b.(storage.AppendResult)
	if !ok1 || !ok2 || len(ar.Parts) != len(br.Parts) {
		return false
	}
	for i := range ar.Parts {
		if ar.Parts[i] != br.Parts[i] {
			return false
		}
	}
	return true
}

// A payload lives while the Raft log holds it or any batch refers to it,
// and is deleted when neither does.
func TestPayloadLivesWhileLogOrBatchesHoldIt(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "a", 2, nil)
	mustCreate(t, s, "b", 1, nil)
	idx := s.Applied() + 1
	applyPayload(t, s, idx, storage.Append{Now: 1, Parts: []storage.AppendPart{
		{Topic: "a", Partition: 0, Batch: plain(2, 1).build(t)},
		{Topic: "a", Partition: 1, Batch: plain(2, 1).build(t)},
		{Topic: "b", Partition: 0, Batch: plain(2, 1).build(t)},
	}})
	present := func(want bool, when string) {
		t.Helper()
		_, err := s.Payload(idx)
		if got := err == nil; got != want {
			t.Fatalf("%s: payload present %v, want %v (err %v)", when, got, want, err)
		}
		if err != nil && !errors.Is(err, storage.ErrMissingPayload) {
			t.Fatalf("%s: %v", when, err)
		}
	}
	if err := s.ReleasePayloads(0, idx); err != nil {
		t.Fatal(err)
	}
	present(true, "after the log let go, with three batches on it")
	apply1(t, s, storage.DeleteRecords{Parts: []storage.DeleteRecordsPart{{Topic: "a", Partition: 0, Offset: -1}}})
	present(true, "after deleting one of three batches")
	apply1(t, s, storage.DeleteTopic{Name: "a"})
	present(true, "after deleting a topic with two of them")
	if got := readAll(t, s, "b", 0); len(parseBatches(t, got)) != 1 {
		t.Fatal("the batch of topic b is gone")
	}
	apply1(t, s, storage.DeleteRecords{Parts: []storage.DeleteRecordsPart{{Topic: "b", Partition: 0, Offset: -1}}})
	present(false, "after the last batch went")

	// The other order: batches go first, the log lets go last.
	idx2 := s.Applied() + 1
	applyPayload(t, s, idx2, storage.Append{Now: 1, Parts: []storage.AppendPart{{Topic: "b", Partition: 0, Batch: plain(1, 1).build(t)}}})
	apply1(t, s, storage.DeleteRecords{Parts: []storage.DeleteRecordsPart{{Topic: "b", Partition: 0, Offset: -1}}})
	if _, err := s.Payload(idx2); err != nil {
		t.Fatalf("payload the log still holds: %v", err)
	}
	if err := s.ReleasePayloads(idx2, idx2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Payload(idx2); !errors.Is(err, storage.ErrMissingPayload) {
		t.Fatalf("payload neither holds: %v", err)
	}
}

// Committed entries never change: a payload batches refer to cannot be
// replaced; one nothing refers to (an uncommitted entry) can.
func TestPutPayloadsRefusesToReplaceReferencedData(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "a", 1, nil)
	if err := s.PutPayloads([]storage.Payload{{Index: 100, Data: []byte("uncommitted")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPayloads([]storage.Payload{{Index: 100, Data: []byte("the leader's")}}); err != nil {
		t.Fatalf("replace an unreferenced payload: %v", err)
	}
	if d, _ := s.Payload(100); string(d) != "the leader's" {
		t.Fatalf("payload 100 is %q", d)
	}
	idx := s.Applied() + 1
	applyPayload(t, s, idx, storage.Append{Now: 1, Parts: []storage.AppendPart{{Topic: "a", Partition: 0, Batch: plain(1, 1).build(t)}}})
	if err := s.PutPayloads([]storage.Payload{{Index: idx, Data: []byte("x")}}); err == nil {
		t.Fatal("a referenced payload was replaced")
	}
}

// An entry flagged as a payload entry whose payload is not there cannot be
// applied: that is a broken store, not a request error.
func TestApplyWithoutItsPayloadIsFatal(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "a", 1, nil)
	data, err := storage.Encode(storage.Append{Now: 1, Parts: []storage.AppendPart{{Topic: "a", Partition: 0, Batch: plain(1, 1).build(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	before := s.Applied()
	if _, err := s.ApplyBatch([]storage.Entry{{Index: before + 1, Data: data, Payload: true}}); !errors.Is(err, storage.ErrMissingPayload) {
		t.Fatalf("apply: %v, want ErrMissingPayload", err)
	}
	if s.Applied() != before {
		t.Fatal("the failed entry counts as applied")
	}
}

// A restored snapshot carries the leader's payloads; the restoring node
// keeps the ones its own Raft log holds, gets the ones its batches need,
// and drops the leader's log-only ones.
func TestRestoreAdoptsPayloads(t *testing.T) {
	leader := openStore(t)
	mustCreate(t, leader, "a", 1, nil)
	idx := leader.Applied() + 1
	applyPayload(t, leader, idx, storage.Append{Now: 1, Parts: []storage.AppendPart{{Topic: "a", Partition: 0, Batch: plain(4, 1).build(t)}}})
	// An entry the leader's log holds beyond the snapshot, and one only
	// its log holds below it.
	if err := leader.PutPayloads([]storage.Payload{{Index: idx + 5, Data: []byte("leader's tail")}, {Index: 1, Data: []byte("log only")}}); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, leader, "a", 0)
	sn, err := leader.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	sn.Release()

	follower := openStore(t)
	if err := follower.PutPayloads([]storage.Payload{{Index: idx + 5, Data: []byte("follower's tail")}}); err != nil {
		t.Fatal(err)
	}
	if err := follower.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, follower, "a", 0); !bytes.Equal(got, want) {
		t.Fatal("restored batches read differently")
	}
	if d, err := follower.Payload(idx + 5); err != nil || string(d) != "follower's tail" {
		t.Fatalf("the follower's own log entry: %q, %v", d, err)
	}
	if _, err := follower.Payload(1); !errors.Is(err, storage.ErrMissingPayload) {
		t.Fatalf("the leader's log-only payload came along: %v", err)
	}
	// Which payloads a Raft log holds is each node's own: the digests agree.
	_, d1, _ := leader.Digest()
	_, d2, _ := follower.Digest()
	if d1 != d2 {
		t.Error("digests of the leader and the restored follower differ")
	}
	// The referenced payload is no longer held by any log here: once its
	// batch goes, so does it.
	apply1(t, follower, storage.DeleteRecords{Parts: []storage.DeleteRecordsPart{{Topic: "a", Partition: 0, Offset: -1}}})
	if _, err := follower.Payload(idx); !errors.Is(err, storage.ErrMissingPayload) {
		t.Fatalf("payload outlived its batches: %v", err)
	}
}

// Compaction replaces referenced batches with copied ones: the payload
// loses its references, and the log reads the replacements.
func TestReplaceBatchesReleasesPayloads(t *testing.T) {
	s := openStore(t)
	mustCreate(t, s, "c", 1, map[string]string{"cleanup.policy": "compact"})
	idx := s.Applied() + 1
	applyPayload(t, s, idx, storage.Append{Now: 1, Parts: []storage.AppendPart{
		{Topic: "c", Partition: 0, Batch: batchSpec{keys: []string{"a", "b", "a"}, ts: 1, pid: -1, epoch: -1, seq: -1}.build(t)},
	}})
	// The rewrite keeps the last record (offset 2, key "a"), as the
	// cleaner would: rebuilt from the stored batch, restamped at offset 0
	// and carrying offset delta 2.
	stored := parseBatches(t, readAll(t, s, "c", 0))
	if len(stored) != 1 {
		t.Fatalf("%d batches stored", len(stored))
	}
	kept := batchSpec{keys: []string{"a"}, ts: 1, pid: -1, epoch: -1, seq: -1}.build(t)
	if r := apply1(t, s, storage.ReplaceBatches{Topic: "c", Partition: 0, From: 0, To: 3, Batches: [][]byte{kept}}); r != nil {
		t.Fatalf("replace: %v", r)
	}
	if err := s.ReleasePayloads(0, idx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Payload(idx); !errors.Is(err, storage.ErrMissingPayload) {
		t.Fatalf("payload after its only batch was replaced and the log let go: %v", err)
	}
	if got := readAll(t, s, "c", 0); !bytes.Equal(got, kept) {
		t.Fatalf("log after replace: %d bytes, want the %d-byte replacement", len(got), len(kept))
	}
}
