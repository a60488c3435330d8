package main

// Go benchmarks of kbox's own hot paths, beside the cross-broker program:
//
//	go test ./bench -run '^$' -bench . -benchtime 2s
//	go test ./bench -run '^$' -bench BrokerProduce -benchtime 500000x -cpuprofile /tmp/cpu.out
//	go tool pprof -top -cum /tmp/cpu.out
//
// BenchmarkStorage* drive broker/storage directly (no Raft, no network);
// BenchmarkBrokerProduce runs a whole node in-process (cluster.StartNode)
// behind a kgo producer, which is how bench/README.md profiles kbox.

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	bolt "go.etcd.io/bbolt"

	"github.com/kbox-dev/kbox/broker/storage"
	"github.com/kbox-dev/kbox/cluster"
)

// recordBatch builds a v2 record batch of n records with values of size
// bytes, no keys, no producer ID, as kgo sends it uncompressed.
func recordBatch(n, size int) []byte {
	var recs []byte
	value := make([]byte, size)
	for i := range n {
		var body []byte
		body = append(body, 0)                             // attributes
		body = binary.AppendVarint(body, 0)                // timestamp delta
		body = binary.AppendVarint(body, int64(i))         // offset delta
		body = binary.AppendVarint(body, -1)               // key: null
		body = binary.AppendVarint(body, int64(size))      // value length
		body = append(body, value...)                      // value
		body = binary.AppendVarint(body, 0)                // headers
		recs = binary.AppendVarint(recs, int64(len(body))) // record length
		recs = append(recs, body...)
	}
	b := make([]byte, storage.BatchHeaderLen, storage.BatchHeaderLen+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(len(b)+len(recs)-12)) // batch length
	b[16] = 2                                        // magic
	be.PutUint32(b[23:], uint32(n-1))                // last offset delta
	be.PutUint64(b[27:], uint64(time.Now().UnixMilli()))
	be.PutUint64(b[35:], uint64(time.Now().UnixMilli()))
	be.PutUint64(b[43:], ^uint64(0)) // producer ID -1
	be.PutUint16(b[51:], ^uint16(0)) // producer epoch -1
	be.PutUint32(b[53:], ^uint32(0)) // base sequence -1
	be.PutUint32(b[57:], uint32(n))
	b = append(b, recs...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// benchStore opens a store in a temp dir with one topic "t" of one partition.
func benchStore(b *testing.B) *storage.Store {
	b.Helper()
	s, err := storage.Open(filepath.Join(b.TempDir(), "state.db"), storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	applyEntries(b, s, storage.CreateTopic{Name: "t", ID: [16]byte{1}, Partitions: 1})
	return s
}

// applyEntries applies cmds as the next log entries, in one ApplyBatch as
// Raft's BatchingFSM hands them over, and fails on any error result.
func applyEntries(b *testing.B, s *storage.Store, cmds ...storage.Command) {
	entries := make([]storage.Entry, len(cmds))
	for i, c := range cmds {
		data, err := storage.Encode(c)
		if err != nil {
			b.Fatal(err)
		}
		entries[i] = storage.Entry{Index: s.Applied() + 1 + uint64(i), Data: data}
	}
	res, err := s.ApplyBatch(entries)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range res {
		switch r := r.(type) {
		case error:
			b.Fatal(r)
		case storage.AppendResult:
			for _, p := range r.Parts {
				if p.Err != nil {
					b.Fatal(p.Err)
				}
			}
		}
	}
}

// BenchmarkStorageAppend measures Apply of Append commands of one batch of
// 100-byte records each: 16 KiB batches (160 records, what kgo's 10 ms
// linger collects at moderate rates) and ~930 KiB batches (near kgo's 1 MB largest, what
// it sends when the broker falls behind), with 1 or 16 commands per bbolt
// transaction (Raft hands the FSM what it committed together).
func BenchmarkStorageAppend(b *testing.B) {
	for _, records := range []int{160, 9000} {
		batch := recordBatch(records, 100)
		for _, per := range []int{1, 16} {
			b.Run(fmt.Sprintf("batch=%dKiB/entries=%d", len(batch)>>10, per), func(b *testing.B) {
				s := benchStore(b)
				cmds := make([]storage.Command, per)
				for i := range cmds {
					cmds[i] = storage.Append{Now: time.Now().UnixMilli(), Parts: []storage.AppendPart{{Topic: "t", Batch: batch}}}
				}
				b.SetBytes(int64(len(batch) * per))
				b.ResetTimer()
				for range b.N {
					applyEntries(b, s, cmds...)
				}
				b.ReportMetric(float64(b.N*per*records)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkStorageRead measures sequential reads of 1 MiB (a Fetch's
// partition max bytes) from a partition of 64 MiB of 16 KiB batches.
func BenchmarkStorageRead(b *testing.B) {
	s := benchStore(b)
	batch := recordBatch(160, 100)
	cmds := make([]storage.Command, 64)
	for i := range cmds {
		cmds[i] = storage.Append{Now: time.Now().UnixMilli(), Parts: []storage.AppendPart{{Topic: "t", Batch: batch}}}
	}
	for range 64 {
		applyEntries(b, s, cmds...)
	}
	end := int64(64 * 64 * 160)
	var buf []byte
	var off int64
	b.ResetTimer()
	for range b.N {
		res, err := s.Read("t", 0, off, 1<<20, buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		buf = res.Records
		b.SetBytes(int64(len(res.Records)))
		if off += int64(len(res.Records)/len(batch)) * 160; off >= end {
			off = 0
		}
	}
}

// BenchmarkBrokerProduce produces b.N records with acks=all through a kgo
// client to a whole kbox node in this process: the Kafka listener, the
// produce handler, Raft (one voter) and the store, for the record sizes
// and partition counts of `make bench`. Run it with -cpuprofile to see
// where kbox's produce time goes.
func BenchmarkBrokerProduce(b *testing.B) {
	for _, c := range []struct {
		name       string
		size       int
		partitions int32
	}{
		{"100B-1p", 100, 1},
		{"100B-6p", 100, 6},
		{"1KiB-1p", 1024, 1},
		{"1KiB-6p", 1024, 6},
	} {
		b.Run(c.name, func(b *testing.B) { benchProduce(b, c.size, c.partitions) })
	}
}

func benchProduce(b *testing.B, size int, partitions int32) {
	n, err := cluster.StartNode(cluster.Config{
		DataDir: b.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "off",
		AutoCreateTopics: true, DefaultPartitions: partitions,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		b.Fatal(err)
	}
	var stats produceStats
	cl, err := kgo.NewClient(produceOpts(n.KafkaAddr(), kgo.DefaultProduceTopic("p"), kgo.AllowAutoTopicCreation(), kgo.WithHooks(&stats))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, size)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	failed := make(chan error, 1)
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			select {
			case failed <- err:
			default:
			}
		}
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		cl.Produce(ctx, &kgo.Record{Value: value}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	select {
	case err := <-failed:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if stats.requests > 0 {
		b.ReportMetric(float64(stats.bytes)/float64(stats.requests)/1024, "KiB/request")
		b.ReportMetric(float64(stats.e2e)/float64(stats.requests)/float64(time.Millisecond), "ms/request")
	}
}

// BenchmarkBoltAppend isolates the write pattern both of kbox's bbolt
// files have (the Raft log in raft.db, the partition logs in state.db):
// one large value per transaction under ever-growing keys. "amplification"
// is the page bytes bbolt allocated (and so wrote) per value byte. A leaf
// is not split below 2×MinKeysPerPage = 4 values, so each commit rewrites
// the last leaf with up to 3 earlier values; one value per nested bucket
// (layout=nested) writes each value once.
func BenchmarkBoltAppend(b *testing.B) {
	for _, layout := range []string{"flat", "nested"} {
		for _, size := range []int{16 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("layout=%s/value=%dKiB", layout, size>>10), func(b *testing.B) {
				benchBoltAppend(b, layout == "nested", size)
			})
		}
	}
}

func benchBoltAppend(b *testing.B, nested bool, size int) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "x.db"), 0o600, &bolt.Options{
		NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType, InitialMmapSize: 1 << 30,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	name := []byte("log")
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(name); return err }); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, size)
	before := db.Stats().TxStats
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		err := db.Update(func(tx *bolt.Tx) error {
			key := binary.BigEndian.AppendUint64(nil, uint64(i))
			if !nested {
				return tx.Bucket(name).Put(key, value)
			}
			vb, err := tx.Bucket(name).CreateBucket(key)
			if err != nil {
				return err
			}
			return vb.Put([]byte{0}, value)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	after := db.Stats().TxStats
	b.ReportMetric(float64(after.GetPageAlloc()-before.GetPageAlloc())/float64(b.N*size), "amplification")
}
