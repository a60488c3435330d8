package cluster

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kbox-dev/kbox/broker/storage"
)

// fsm adapts broker/storage to raft.BatchingFSM: one Raft batch is one
// bbolt transaction. Raft calls Apply, ApplyBatch, Snapshot and Restore on
// its FSM goroutine; Persist runs on the snapshot goroutine while applies
// continue, reading a bbolt transaction opened in Snapshot.
type fsm struct {
	store *storage.Store
	// fatal stops the node: a committed entry that cannot be applied must
	// never be skipped.
	fatal func(error)
	// waiters receive the results of commands this node forwarded to the
	// leader (forward.go), found by the nonce in the entry's Extensions.
	waiters *waiters

	// restores counts snapshots installed from the leader; lastRestore is
	// how long the latest took, in nanoseconds, and restoredBytes its size.
	restores      atomic.Int64
	lastRestore   atomic.Int64
	restoredBytes atomic.Int64
	// persisted counts snapshots this node wrote.
	persisted atomic.Int64
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]storage.Entry, len(logs))
	for i, l := range logs {
		entries[i].Index = l.Index
		if l.Type == raft.LogCommand {
			entries[i].Data = l.Data
			entries[i].Payload = outOfLine(l)
		}
	}
	res, err := f.store.ApplyBatch(entries)
	if err != nil {
		err = fmt.Errorf("apply log entries %d-%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
		f.fatal(err)
		res = make([]any, len(logs))
		for i := range res {
			res[i] = errApplyFailed{err}
		}
	}
	for i, l := range logs {
		if len(l.Extensions) > 0 && f.waiters != nil {
			f.waiters.deliver(l.Extensions, res[i])
		}
	}
	return res
}

// errApplyFailed is the result of entries whose batch failed to apply; the
// node is stopping.
type errApplyFailed struct{ err error }

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	sn, err := f.store.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{sn: sn, done: &f.persisted}, nil
}

// Restore replaces the store with a snapshot the leader sent (raft does
// not restore on start: the store is durable by itself, see Node.recover).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	start := time.Now()
	cr := &countingReader{r: rc}
	if err := f.store.Restore(cr); err != nil {
		return err
	}
	if f.waiters != nil {
		f.waiters.failAll()
	}
	f.lastRestore.Store(int64(time.Since(start)))
	f.restoredBytes.Store(cr.n)
	f.restores.Add(1)
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type fsmSnapshot struct {
	sn   *storage.Snapshot
	done *atomic.Int64
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.sn.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	err := sink.Close()
	s.done.Add(1)
	return err
}

func (s *fsmSnapshot) Release() { s.sn.Release() }
