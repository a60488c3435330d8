package broker

// The log cleaner: retention and log compaction.
//
// Behaviour: on the Raft leader only, every Config.CleanerInterval (default
// 5s) the cleaner visits every partition. Writes go through the replicated
// log like everything else, so followers apply the same deletions.
//
//   - cleanup.policy=delete (the default) enforces retention.ms by each
//     batch's max timestamp and retention.bytes per partition, oldest
//     batches first, by proposing storage.DeleteRecords to the base offset
//     of the first batch kept (the high watermark when every batch went).
//     Kbox's unit of deletion is a batch where Kafka's is a segment; as in
//     Kafka an expired last batch goes too, and the log start offset never
//     passes the high watermark.
//   - cleanup.policy=compact keeps the latest record per key below the
//     active segment. The last batch is the active segment, and batches
//     from the first one newer than min.compaction.lag.ms are not touched.
//     A record survives if no later record in that range has its key;
//     tombstones (null values) survive until delete.retention.ms after
//     their timestamp; records without a key are dropped, as Kafka's
//     cleaner drops them. Changed batches are rewritten with the same base
//     offset, last offset delta, producer fields and codec (so offsets stay
//     where they were, with gaps), a batch left empty is dropped, and each
//     run of changed batches is proposed as one storage.ReplaceBatches.
//     A partition is compacted when its dirty bytes (batches appended since
//     its last compaction) reach min.cleanable.dirty.ratio of the
//     cleanable bytes, when its oldest dirty batch passed
//     max.compaction.lag.ms, or when a kept tombstone expires.
//   - cleanup.policy=compact,delete does both: compaction, then retention.
//
// Omissions: Kafka's delete horizon in the batch header (KIP-534) is not
// written: tombstones age by their own timestamp. Control batches are kept
// as they are (kbox has no transactions). The cleaner's progress is kept in
// memory, so a new leader compacts every partition once.
//
// Goroutine: the Broker owns one cleaner goroutine, started in New and
// stopped in Close. [Broker.CleanLogs] runs a pass on demand (tests);
// passes never overlap.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kbox-dev/kbox/broker/records"
	"github.com/kbox-dev/kbox/broker/storage"
)

// defaultCleanerInterval is how often the cleaner runs unless
// Config.CleanerInterval says otherwise.
const defaultCleanerInterval = 5 * time.Second

// maxReplaceBytes bounds the replacement batches of one ReplaceBatches
// command, so one compaction never makes a huge log entry.
const maxReplaceBytes = 4 << 20

// cleaner runs retention and compaction passes; see the file header.
type cleaner struct {
	b    *Broker
	stop chan struct{}
	done chan struct{}

	// mu serialises passes and guards state.
	mu    sync.Mutex
	state map[storage.TopicPartition]*cleanState
}

// cleanState is the compaction progress of one partition.
type cleanState struct {
	topicID [16]byte
	// seenHW is the high watermark when the partition was last found not
	// due; until it moves (or a lag or tombstone clock runs) it is not
	// scanned again.
	seenHW int64
	// warned is set once an undecodable batch was logged.
	warned bool
	// cleanedTo is the end of the range the last compaction covered:
	// batches from here on are dirty.
	cleanedTo int64
	// tombstoneDue is when the earliest kept tombstone expires (Unix ms),
	// 0 if none was kept.
	tombstoneDue int64
}

// startCleaner starts the broker's cleaner goroutine; a negative interval
// starts none (passes then run only through CleanLogs).
func startCleaner(b *Broker) *cleaner {
	c := &cleaner{b: b, stop: make(chan struct{}), done: make(chan struct{}), state: map[storage.TopicPartition]*cleanState{}}
	interval := b.cfg.CleanerInterval
	if interval == 0 {
		interval = defaultCleanerInterval
	}
	if interval < 0 {
		close(c.done)
		return c
	}
	go c.run(interval)
	return c
}

func (c *cleaner) run(interval time.Duration) {
	defer close(c.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if !c.b.isLeader() {
				continue
			}
			if err := c.pass(c.b.ctx); err != nil && c.b.ctx.Err() == nil && !errors.Is(err, ErrNotLeader) {
				c.b.log.Warn("log cleaner pass", "err", err)
			}
		}
	}
}

// close stops the goroutine and waits for it; the broker's context must be
// cancelled first so a pass in flight returns.
func (c *cleaner) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// CleanLogs runs one retention and compaction pass over every partition
// now, as the background cleaner does every Config.CleanerInterval, and
// returns when its deletions are applied. It returns ErrNotLeader on a node
// that does not lead.
func (b *Broker) CleanLogs(ctx context.Context) error {
	if !b.isLeader() {
		return ErrNotLeader
	}
	return b.cleaner.pass(ctx)
}

// now is the broker's clock for what it proposes: Config.Now or time.Now.
func (b *Broker) now() time.Time {
	if b.cfg.Now != nil {
		return b.cfg.Now()
	}
	return time.Now()
}

// pass cleans every partition once.
func (c *cleaner) pass(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.b.now().UnixMilli()
	var deletes []storage.DeleteRecordsPart
	var errs []error
	live := map[storage.TopicPartition]bool{}
	for _, t := range c.b.store.Topics() {
		del, compact := cleanupPolicy(t.Config("cleanup.policy"))
		for p := int32(0); p < t.Partitions; p++ {
			tp := storage.TopicPartition{Topic: t.Name, Partition: p}
			if compact {
				live[tp] = true
				if err := c.compact(ctx, t, p, now); err != nil {
					errs = append(errs, fmt.Errorf("compact %s/%d: %w", t.Name, p, err))
				}
			}
			if del {
				off, ok, err := c.retention(t, p, now)
				if err != nil {
					errs = append(errs, fmt.Errorf("retention %s/%d: %w", t.Name, p, err))
				} else if ok {
					deletes = append(deletes, storage.DeleteRecordsPart{Topic: t.Name, Partition: p, Offset: off})
				}
			}
		}
	}
	for tp := range c.state {
		if !live[tp] {
			delete(c.state, tp)
		}
	}
	if len(deletes) > 0 {
		if err := c.proposeDeletes(ctx, deletes); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanupPolicy parses cleanup.policy, a list of delete and compact.
func cleanupPolicy(v string) (del, compact bool) {
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "delete":
			del = true
		case "compact":
			compact = true
		}
	}
	return del, compact
}

// batchInfo is what the cleaner needs of a stored batch's header.
type batchInfo struct {
	base, last     int64
	firstTs, maxTs int64
	size           int64
}

// scan reads the headers of a partition's batches from its log start.
func (c *cleaner) scan(topic string, p int32) (storage.PartitionOffsets, []batchInfo, error) {
	offs, err := c.b.store.Offsets(topic, p)
	if err != nil {
		return offs, nil, err
	}
	var out []batchInfo
	err = c.b.store.BatchHeaders(topic, p, 0, offs.HighWatermark, func(h storage.BatchHeader, size int) error {
		if h.LastOffset() < offs.LogStart {
			return nil
		}
		out = append(out, batchInfo{base: h.BaseOffset, last: h.LastOffset(), firstTs: h.BaseTimestamp, maxTs: h.MaxTimestamp, size: int64(size)})
		return nil
	})
	return offs, out, err
}

// retention returns the offset below which retention.ms and
// retention.bytes delete, and whether that moves the log start. It reads
// batch headers from the log start only as far as the first batch kept.
func (c *cleaner) retention(t storage.TopicInfo, p int32, now int64) (int64, bool, error) {
	retMs, retBytes := t.ConfigLong("retention.ms"), t.ConfigLong("retention.bytes")
	if retMs < 0 && retBytes < 0 {
		return 0, false, nil
	}
	offs, err := c.b.store.Offsets(t.Name, p)
	if err != nil || offs.HighWatermark == offs.LogStart {
		return 0, false, err
	}
	excess := offs.Bytes - retBytes
	upTo := offs.HighWatermark // when every batch goes
	err = c.b.store.BatchHeaders(t.Name, p, 0, offs.HighWatermark, func(h storage.BatchHeader, size int) error {
		if h.LastOffset() < offs.LogStart {
			return nil
		}
		expired := retMs >= 0 && h.MaxTimestamp < now-retMs
		oversize := retBytes >= 0 && excess-int64(size) >= 0
		if !expired && !oversize {
			upTo = h.BaseOffset
			return errRetentionDone
		}
		excess -= int64(size)
		return nil
	})
	if err != nil && !errors.Is(err, errRetentionDone) {
		return 0, false, err
	}
	return upTo, upTo > offs.LogStart, nil
}

// errRetentionDone ends retention's walk at the first batch kept.
var errRetentionDone = errors.New("stop scan")

func (c *cleaner) proposeDeletes(ctx context.Context, parts []storage.DeleteRecordsPart) error {
	res, err := c.b.propose(ctx, storage.DeleteRecords{Parts: parts})
	if err != nil {
		return fmt.Errorf("propose retention: %w", err)
	}
	rs, _ := res.([]storage.DeleteRecordsResult)
	var errs []error
	for i, r := range rs {
		if r.Err != nil && i < len(parts) {
			errs = append(errs, fmt.Errorf("retention %s/%d: %w", parts[i].Topic, parts[i].Partition, r.Err))
		}
	}
	return errors.Join(errs...)
}

// compactConfig holds a compacted topic's settings, in milliseconds.
type compactConfig struct {
	minLag, maxLag, deleteRetention int64
	dirtyRatio                      float64
}

func compactConfigOf(t storage.TopicInfo) compactConfig {
	ratio, err := strconv.ParseFloat(t.Config("min.cleanable.dirty.ratio"), 64)
	if err != nil {
		ratio = 0.5
	}
	return compactConfig{
		minLag:          t.ConfigLong("min.compaction.lag.ms"),
		maxLag:          t.ConfigLong("max.compaction.lag.ms"),
		deleteRetention: t.ConfigLong("delete.retention.ms"),
		dirtyRatio:      ratio,
	}
}

// before reports whether ts is at least lag before now, without overflow.
func before(ts, now, lag int64) bool {
	if lag >= math.MaxInt64/2 {
		return false
	}
	return ts <= now-lag
}

// compact compacts one partition if it is due.
func (c *cleaner) compact(ctx context.Context, t storage.TopicInfo, p int32, now int64) error {
	tp := storage.TopicPartition{Topic: t.Name, Partition: p}
	st := c.state[tp]
	if st == nil || st.topicID != t.ID {
		st = &cleanState{topicID: t.ID, seenHW: -1}
		c.state[tp] = st
	}
	cfg := compactConfigOf(t)
	clocked := cfg.minLag > 0 || cfg.maxLag < math.MaxInt64/2 || st.tombstoneDue > 0 && now >= st.tombstoneDue
	if offs, err := c.b.store.Offsets(t.Name, p); err != nil || offs.HighWatermark == st.seenHW && !clocked {
		return err
	}
	offs, batches, err := c.scan(t.Name, p)
	if err != nil || len(batches) < 2 {
		return err
	}
	// The last batch is the active segment; batches from the first one
	// younger than min.compaction.lag.ms on are not cleanable either.
	n := len(batches) - 1
	for i, b := range batches[:n] {
		if cfg.minLag > 0 && !before(b.maxTs, now, cfg.minLag) {
			n = i
			break
		}
	}
	if n == 0 {
		return nil
	}
	end := batches[n].base
	if !c.due(st, batches[:n], cfg, now) {
		st.seenHW = offs.HighWatermark
		return nil
	}
	k := keeper{logStart: offs.LogStart, retention: cfg.deleteRetention, horizon: now - cfg.deleteRetention}
	if cfg.deleteRetention >= math.MaxInt64/2 {
		k.horizon = math.MinInt64 // tombstones never expire
	}
	if k.latest, err = c.offsetMap(t.Name, p, offs.LogStart, end, &k); err != nil {
		return err
	}
	if k.undecodable > 0 && !st.warned {
		st.warned = true
		c.b.log.Warn("log cleaner: batches whose records cannot be decoded are kept as they are", "topic", t.Name, "partition", p, "batches", k.undecodable)
	}
	// batches[0] is the first batch holding offsets at or after the log start.
	for from := batches[0].base; from < end; {
		run, next, err := c.rewrite(t.Name, p, from, end, &k)
		if err != nil {
			return err
		}
		if run.changed {
			if err := c.replace(ctx, t, p, run); err != nil {
				return err
			}
		}
		from = next
	}
	st.cleanedTo, st.tombstoneDue, st.seenHW = end, k.tombstoneDue, -1
	return nil
}

// due decides whether a partition's cleanable batches need compacting.
func (c *cleaner) due(st *cleanState, batches []batchInfo, cfg compactConfig, now int64) bool {
	if st.tombstoneDue > 0 && now >= st.tombstoneDue {
		return true
	}
	var dirty, total int64
	for _, b := range batches {
		total += b.size
		if b.base >= st.cleanedTo {
			dirty += b.size
			if before(b.firstTs, now, cfg.maxLag) {
				return true
			}
		}
	}
	return dirty > 0 && float64(dirty) >= cfg.dirtyRatio*float64(total)
}

// offsetMap maps every key in [logStart, end) to the offset of its latest
// record there, counting the batches it cannot decode in k.
func (c *cleaner) offsetMap(topic string, p int32, logStart, end int64, k *keeper) (map[string]int64, error) {
	latest := map[string]int64{}
	err := c.b.store.Batches(topic, p, 0, end, func(raw []byte) error {
		b, err := decodeForCompaction(raw)
		if err != nil {
			k.undecodable++
			return nil
		}
		if b.Attributes&records.AttrControl != 0 {
			return nil
		}
		for _, r := range b.Records {
			if r.Key != nil && r.Offset >= logStart {
				latest[string(r.Key)] = r.Offset
			}
		}
		return nil
	})
	return latest, err
}

// decodeForCompaction decodes a stored batch and checks that its records'
// offset deltas rise within the batch's offset range, so that a rebuilt
// batch covers the same offsets. Produce does not look inside batches, so
// a client can store anything that has a valid CRC.
func decodeForCompaction(raw []byte) (records.Batch, error) {
	b, err := records.Decode(raw)
	if err != nil {
		return b, err
	}
	prev := int32(-1)
	for _, r := range b.Records {
		if r.OffsetDelta <= prev || r.OffsetDelta > b.LastOffsetDelta {
			return b, fmt.Errorf("batch at %d: record offset delta %d out of order or past the last offset delta %d", b.BaseOffset, r.OffsetDelta, b.LastOffsetDelta)
		}
		prev = r.OffsetDelta
	}
	return b, nil
}

// keeper decides which records compaction keeps.
type keeper struct {
	latest   map[string]int64 // key -> offset of its latest record
	logStart int64
	// retention is delete.retention.ms; horizon is now minus it: older
	// tombstones are dropped. math.MinInt64 keeps every tombstone.
	retention, horizon int64
	// tombstoneDue is when the earliest kept tombstone expires (Unix ms),
	// 0 if none.
	tombstoneDue int64
	// undecodable counts batches whose records do not decode; they are
	// kept verbatim.
	undecodable int
}

// keep reports whether compaction keeps r: it has a key, it is the latest
// record of that key, and it is not an expired tombstone.
func (k *keeper) keep(r records.Record) bool {
	if r.Key == nil || r.Offset < k.logStart || k.latest[string(r.Key)] != r.Offset {
		return false
	}
	return r.Value != nil || r.Timestamp >= k.horizon
}

// replaceRun is one run of consecutive batches to replace.
type replaceRun struct {
	from, to int64
	batches  [][]byte
	bytes    int
	changed  bool
}

var errRunDone = errors.New("run complete")

// rewrite filters batches from `from` until it has a run of changed
// batches that ends at an unchanged batch, at end, or at maxReplaceBytes.
// It returns the run and where the next one starts.
func (c *cleaner) rewrite(topic string, p int32, from, end int64, k *keeper) (replaceRun, int64, error) {
	run := replaceRun{from: from}
	next := end
	err := c.b.store.Batches(topic, p, from, end, func(raw []byte) error {
		b, err := decodeForCompaction(raw)
		if err != nil { // counted by offsetMap; kept as it is
			h, _ := storage.ParseBatchHeader(raw)
			b.BaseOffset, b.LastOffsetDelta = h.BaseOffset, h.LastOffsetDelta
		}
		kept := b.Records[:0:0]
		if err != nil || b.Attributes&records.AttrControl != 0 {
			kept = b.Records
		} else {
			for _, r := range b.Records {
				if k.keep(r) {
					kept = append(kept, r)
					k.noteTombstone(r)
				}
			}
		}
		if len(kept) == len(b.Records) {
			if run.changed {
				next = b.BaseOffset
				return errRunDone
			}
			run.from = b.LastOffset() + 1
			return nil
		}
		if !run.changed {
			run.from, run.changed = b.BaseOffset, true
		}
		run.to = b.LastOffset() + 1
		if len(kept) > 0 {
			out, err := rebuild(b, kept)
			if err != nil {
				return err
			}
			run.batches = append(run.batches, out)
			run.bytes += len(out)
		}
		if run.bytes >= maxReplaceBytes {
			next = run.to
			return errRunDone
		}
		return nil
	})
	if errors.Is(err, errRunDone) {
		err = nil
	}
	return run, next, err
}

// noteTombstone tracks when the earliest kept tombstone expires.
func (k *keeper) noteTombstone(r records.Record) {
	if r.Value != nil || k.horizon == math.MinInt64 {
		return
	}
	// Dropped once r.Timestamp < now - retention.
	due := r.Timestamp + k.retention + 1
	if k.tombstoneDue == 0 || due < k.tombstoneDue {
		k.tombstoneDue = due
	}
}

// rebuild encodes a batch with only the kept records, keeping its header:
// base offset, offset range, producer fields, codec and timestamp type.
func rebuild(b records.Batch, kept []records.Record) ([]byte, error) {
	nb := b
	nb.Records = kept
	if !b.LogAppendTime() {
		nb.MaxTimestamp = b.FirstTimestamp
		for _, r := range kept {
			nb.MaxTimestamp = max(nb.MaxTimestamp, r.Timestamp)
		}
	}
	out, err := records.Encode(nb)
	if err != nil {
		return nil, fmt.Errorf("rebuild batch at %d: %w", b.BaseOffset, err)
	}
	return out, nil
}

// replace proposes one run, unless the topic was recreated meanwhile.
func (c *cleaner) replace(ctx context.Context, t storage.TopicInfo, p int32, run replaceRun) error {
	if cur, ok := c.b.store.Topic(t.Name); !ok || cur.ID != t.ID {
		return nil
	}
	res, err := c.b.propose(ctx, storage.ReplaceBatches{Topic: t.Name, Partition: p, From: run.from, To: run.to, Batches: run.batches})
	if err != nil {
		return fmt.Errorf("propose compaction of [%d, %d): %w", run.from, run.to, err)
	}
	if e, ok := res.(error); ok && e != nil {
		return fmt.Errorf("compaction of [%d, %d): %w", run.from, run.to, e)
	}
	return nil
}
