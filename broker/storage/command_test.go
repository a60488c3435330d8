package storage_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kbox-dev/kbox/broker/storage"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// commandCases holds one command per op, with values that exercise every
// field. The golden files pin their encodings.
var commandCases = []storage.Command{
	storage.CreateTopic{Name: "orders", ID: [16]byte{0xde, 0xad, 0xbe, 0xef, 15: 1}, Partitions: 3, Configs: map[string]string{"retention.ms": "1000", "cleanup.policy": "compact"}},
	storage.DeleteTopic{Name: "orders"},
	storage.Append{Now: 1700000000123, Parts: []storage.AppendPart{
		{Topic: "orders", Partition: 0, Batch: []byte{1, 2, 3}},
		{Topic: "t", Partition: 7, Batch: []byte{}},
	}},
	storage.InitProducerID{ProducerID: 42, Epoch: 3},
	storage.CommitOffsets{Group: "g", Now: 1700000000000, Offsets: []storage.OffsetCommit{
		{Topic: "orders", Partition: 1, Offset: 99, LeaderEpoch: 2, Metadata: "m"},
		{Topic: "orders", Partition: 2, Offset: 0, LeaderEpoch: -1},
	}},
	storage.DeleteRecords{Parts: []storage.DeleteRecordsPart{{Topic: "orders", Partition: 0, Offset: 10}, {Topic: "orders", Partition: 1, Offset: -1}}},
	storage.AlterConfigs{Topic: "orders", Replace: true, Set: map[string]string{"retention.bytes": "1024"}, Delete: []string{"retention.ms"}},
	storage.CreatePartitions{Topic: "orders", Count: 6},
	storage.DeleteGroups{Groups: []string{"a", "b"}},
	storage.DeleteOffsets{Group: "g", Parts: []storage.TopicPartition{{Topic: "orders", Partition: 1}}},
	storage.ReplaceBatches{Topic: "orders", Partition: 2, From: 5, To: 50, Batches: [][]byte{{9, 8, 7}, {6}}},
	storage.NewEpoch{Epoch: 7},
	storage.RegisterNode{ID: 2, Addr: "127.0.0.1:9092"},
	storage.AlterDefaults{Replace: true, Set: map[string]string{"retention.ms": "1000", "min.insync.replicas": "1"}, Delete: []string{"cleanup.policy"}},
}

// TestCommandCasesCoverEveryOp fails when an op is added to command.go
// without a case (and so without a golden file) here.
func TestCommandCasesCoverEveryOp(t *testing.T) {
	have := map[storage.Op]bool{}
	for _, c := range commandCases {
		have[c.Op()] = true
	}
	for op := storage.Op(1); !strings.HasPrefix(op.String(), "Op("); op++ {
		if !have[op] {
			t.Errorf("no command case for %s", op)
		}
	}
}

func TestCommandEncodeDecodeRoundTrip(t *testing.T) {
	for _, c := range commandCases {
		t.Run(c.Op().String(), func(t *testing.T) {
			b, err := storage.Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			if storage.Op(b[0]) != c.Op() {
				t.Fatalf("op byte %d, want %d", b[0], c.Op())
			}
			got, err := storage.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("decoded\n%#v\nwant\n%#v", got, c)
			}
			again, err := storage.Encode(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n%x\n%x", again, b)
			}
		})
	}
}

// TestCommandEncodePointer checks that pointers encode like values.
func TestCommandEncodePointer(t *testing.T) {
	for _, c := range []struct{ val, ptr storage.Command }{
		{storage.Append{Now: 1, Parts: []storage.AppendPart{{Topic: "a", Batch: []byte{1}}}}, &storage.Append{Now: 1, Parts: []storage.AppendPart{{Topic: "a", Batch: []byte{1}}}}},
		{storage.NewEpoch{Epoch: 3}, &storage.NewEpoch{Epoch: 3}},
	} {
		a, err := storage.Encode(c.val)
		if err != nil {
			t.Fatal(err)
		}
		b, err := storage.Encode(c.ptr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: value and pointer encode differently", c.val.Op())
		}
	}
}

// TestCommandGolden pins every op's encoding: a change here changes the
// replicated log's format, which old logs must still decode.
func TestCommandGolden(t *testing.T) {
	for _, c := range commandCases {
		t.Run(c.Op().String(), func(t *testing.T) {
			b, err := storage.Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "commands", c.Op().String()+".golden")
			got := hex.Dump(b)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Fatalf("encoding of %s changed:\n got:\n%s\nwant:\n%s", c.Op(), got, want)
			}
			// The golden bytes must decode to the case, so old logs stay readable.
			raw, err := undump(string(want))
			if err != nil {
				t.Fatal(err)
			}
			dec, err := storage.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dec, c) {
				t.Fatalf("golden bytes decode to %#v", dec)
			}
		})
	}
}

// undump parses hex.Dump output back into bytes.
func undump(s string) ([]byte, error) {
	var out []byte
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		// "00000000  01 7b 22 ...  |.{"...|": the hex sits between offset and ASCII.
		if i := strings.Index(line, "|"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		b, err := hex.DecodeString(strings.Join(fields[1:], ""))
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

func TestCommandDecodeErrors(t *testing.T) {
	appendOK, err := storage.Encode(storage.Append{Now: 5, Parts: []storage.AppendPart{{Topic: "abc", Partition: 1, Batch: []byte{1, 2, 3, 4}}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown op 0", []byte{0}},
		{"unknown op 200", []byte{200, '{', '}'}},
		{"json op without payload", []byte{byte(storage.OpCreateTopic)}},
		{"bad json", []byte{byte(storage.OpDeleteTopic), '{', '"'}},
		{"wrong json type", []byte(string(rune(storage.OpCreatePartitions)) + `{"Count":"x"}`)},
		{"append header truncated", appendOK[:5]},
		{"append part count too large", append(append([]byte{}, appendOK[:9]...), 0xff, 0xff, 0xff, 0xff)},
		{"append topic truncated", appendOK[:15]},
		{"append batch truncated", appendOK[:len(appendOK)-1]},
		{"append trailing bytes", append(append([]byte{}, appendOK...), 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := storage.Decode(c.in)
			if !errors.Is(err, storage.ErrCorruptCommand) {
				t.Fatalf("Decode = %#v, %v; want ErrCorruptCommand", got, err)
			}
		})
	}
}
