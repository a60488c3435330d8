package storage

import (
	"encoding/binary"
	"fmt"
)

// partState is the per-partition bookkeeping kept beside its log, rewritten
// on every append, so it is binary-encoded.
type partState struct {
	LogStart     int64 // first offset still readable
	Next         int64 // offset the next record gets: the high watermark
	Bytes        int64 // bytes of batches in the log
	MaxTimestamp int64 // largest record timestamp seen, -1 if none
	MaxTsOffset  int64 // offset of the batch holding MaxTimestamp
	// Epochs is the leader epoch cache: the first offset written in each
	// leader epoch, for OffsetForLeaderEpoch.
	Epochs []epochStart
}

type epochStart struct {
	Epoch int32
	Start int64
}

func newPartState() partState { return partState{MaxTimestamp: -1, MaxTsOffset: -1} }

func (p partState) encode() []byte {
	b := make([]byte, 0, 44+12*len(p.Epochs))
	be := binary.BigEndian
	for _, v := range []int64{p.LogStart, p.Next, p.Bytes, p.MaxTimestamp, p.MaxTsOffset} {
		b = be.AppendUint64(b, uint64(v))
	}
	b = be.AppendUint32(b, uint32(len(p.Epochs)))
	for _, e := range p.Epochs {
		b = be.AppendUint32(b, uint32(e.Epoch))
		b = be.AppendUint64(b, uint64(e.Start))
	}
	return b
}

func decodePartState(b []byte) (partState, error) {
	if len(b) < 44 {
		return partState{}, fmt.Errorf("partition state: %d bytes", len(b))
	}
	be := binary.BigEndian
	p := partState{
		LogStart:     int64(be.Uint64(b)),
		Next:         int64(be.Uint64(b[8:])),
		Bytes:        int64(be.Uint64(b[16:])),
		MaxTimestamp: int64(be.Uint64(b[24:])),
		MaxTsOffset:  int64(be.Uint64(b[32:])),
	}
	n := int(be.Uint32(b[40:]))
	b = b[44:]
	if len(b) != 12*n {
		return partState{}, fmt.Errorf("partition state: %d epochs in %d bytes", n, len(b))
	}
	p.Epochs = make([]epochStart, n)
	for i := range p.Epochs {
		p.Epochs[i] = epochStart{Epoch: int32(be.Uint32(b)), Start: int64(be.Uint64(b[4:]))}
		b = b[12:]
	}
	return p, nil
}

// noteEpoch records the start of a leader epoch on the first append in it,
// as Kafka's leader epoch cache does.
func (p *partState) noteEpoch(epoch int32) {
	if n := len(p.Epochs); n == 0 || p.Epochs[n-1].Epoch < epoch {
		p.Epochs = append(p.Epochs, epochStart{Epoch: epoch, Start: p.Next})
	}
}

// producerState is what an idempotent producer left on one partition: its
// epoch and its last five batches, the window Kafka keeps for duplicate
// detection (max.in.flight.requests.per.connection ≤ 5).
type producerState struct {
	Epoch   int16
	Batches []producerBatch
}

type producerBatch struct {
	FirstSeq, LastSeq int32
	BaseOffset        int64
	LastOffsetDelta   int32
	Timestamp         int64
}

const producerWindow = 5

func (ps producerState) encode() []byte {
	be := binary.BigEndian
	b := be.AppendUint16(nil, uint16(ps.Epoch))
	b = append(b, byte(len(ps.Batches)))
	for _, x := range ps.Batches {
		b = be.AppendUint32(b, uint32(x.FirstSeq))
		b = be.AppendUint32(b, uint32(x.LastSeq))
		b = be.AppendUint64(b, uint64(x.BaseOffset))
		b = be.AppendUint32(b, uint32(x.LastOffsetDelta))
		b = be.AppendUint64(b, uint64(x.Timestamp))
	}
	return b
}

func decodeProducerState(b []byte) (producerState, error) {
	if len(b) < 3 || len(b) != 3+28*int(b[2]) {
		return producerState{}, fmt.Errorf("producer state: %d bytes", len(b))
	}
	be := binary.BigEndian
	ps := producerState{Epoch: int16(be.Uint16(b)), Batches: make([]producerBatch, b[2])}
	b = b[3:]
	for i := range ps.Batches {
		ps.Batches[i] = producerBatch{
			FirstSeq:        int32(be.Uint32(b)),
			LastSeq:         int32(be.Uint32(b[4:])),
			BaseOffset:      int64(be.Uint64(b[8:])),
			LastOffsetDelta: int32(be.Uint32(b[16:])),
			Timestamp:       int64(be.Uint64(b[20:])),
		}
		b = b[28:]
	}
	return ps, nil
}

// seqResult is what the idempotence check decided for a batch.
type seqResult int

const (
	seqAppend seqResult = iota
	seqDuplicate
)

// check applies Kafka's ProducerStateManager rules for a batch from a
// producer that exists on this partition (known) or not.
func (ps *producerState) check(known bool, h BatchHeader) (seqResult, producerBatch, error) {
	lastSeq := lastSequence(h)
	if !known {
		return seqAppend, producerBatch{}, nil
	}
	if h.ProducerEpoch < ps.Epoch {
		return 0, producerBatch{}, fmt.Errorf("%w: epoch %d is older than %d", ErrInvalidProducerEpoch, h.ProducerEpoch, ps.Epoch)
	}
	if h.ProducerEpoch > ps.Epoch {
		if h.BaseSequence != 0 {
			return 0, producerBatch{}, fmt.Errorf("%w: new epoch %d must start at sequence 0, got %d", ErrOutOfOrderSequence, h.ProducerEpoch, h.BaseSequence)
		}
		return seqAppend, producerBatch{}, nil
	}
	for _, b := range ps.Batches {
		if b.FirstSeq == h.BaseSequence && b.LastSeq == lastSeq {
			return seqDuplicate, b, nil
		}
	}
	if n := len(ps.Batches); n > 0 {
		last := ps.Batches[n-1].LastSeq
		next := last + 1
		if last == 2147483647 {
			next = 0
		}
		if h.BaseSequence != next {
			return 0, producerBatch{}, fmt.Errorf("%w: expected sequence %d, got %d", ErrOutOfOrderSequence, next, h.BaseSequence)
		}
	} else if h.BaseSequence != 0 {
		return 0, producerBatch{}, fmt.Errorf("%w: expected sequence 0, got %d", ErrOutOfOrderSequence, h.BaseSequence)
	}
	return seqAppend, producerBatch{}, nil
}

// lastSequence is the sequence number of the batch's last record; sequences
// wrap from MaxInt32 to 0 (DefaultRecordBatch.incrementSequence).
func lastSequence(h BatchHeader) int32 {
	if h.BaseSequence > 2147483647-h.LastOffsetDelta {
		return h.LastOffsetDelta - (2147483647 - h.BaseSequence) - 1
	}
	return h.BaseSequence + h.LastOffsetDelta
}

func (ps *producerState) record(h BatchHeader, base, ts int64) {
	if h.ProducerEpoch != ps.Epoch {
		ps.Batches = ps.Batches[:0]
	}
	ps.Epoch = h.ProducerEpoch
	ps.Batches = append(ps.Batches, producerBatch{
		FirstSeq:        h.BaseSequence,
		LastSeq:         lastSequence(h),
		BaseOffset:      base,
		LastOffsetDelta: h.LastOffsetDelta,
		Timestamp:       ts,
	})
	if len(ps.Batches) > producerWindow {
		ps.Batches = append(ps.Batches[:0], ps.Batches[len(ps.Batches)-producerWindow:]...)
	}
}
