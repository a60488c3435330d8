// Package records decodes and encodes Kafka v2 record batches (message
// format v2, KIP-98), including their compressed payloads.
//
// The broker stores batches as producers send them; it only looks inside
// when a question needs record-level answers: ListOffsets by timestamp and
// by max timestamp, and log compaction, which rewrites batches keeping the
// latest record per key. [Decode] and [DecodeRecords] read a batch;
// [Encode] builds one, compressed or not, from a [Batch] whose records
// carry their offset and timestamp deltas.
//
// Codecs: gzip, snappy (both the raw block format and the xerial framing
// the Java client writes; Encode writes xerial, which every client reads),
// lz4 (the frame format) and zstd. The functions are safe for concurrent
// use; decompression is bounded by [MaxDecodedBytes] so a small batch
// cannot expand without limit.
//
// Decoded records alias the batch when it is uncompressed: copy keys and
// values that must outlive it.
package records
