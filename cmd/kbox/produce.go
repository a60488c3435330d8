package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// maxLine is the longest input line produce accepts (one record).
const maxLine = 64 << 20

// produceOptions are the flags of kbox produce.
type produceOptions struct {
	file, keySep, acks, compression string
	headers                         []string
	partition                       int32
	timeout                         time.Duration
}

// produceSummary is what produce reports on stderr when it is done.
type produceSummary struct {
	Topic      string          `json:"topic"`
	Records    int64           `json:"records"`
	Bytes      int64           `json:"bytes"`
	Partitions map[int32]int64 `json:"partitions"`
	Millis     int64           `json:"elapsed_ms"`
}

func newProduceCommand(g *globals) *cobra.Command {
	o := produceOptions{}
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce one record per input line",
		Long: `Produce one record per line of standard input (or --file) to TOPIC,
which is auto-created if the broker allows it. With --key-separator, each
line is split at the first separator into key and value; a line without
it is an error. Every record gets the --header values. A summary goes to
standard error (as JSON with --format json).

Records are sent without waiting for each other; produce exits non-zero if
any record failed, after the others have been acknowledged.

Example:
  printf 'alice=1\nbob=2\n' | kbox produce clicks --key-separator = --header source=cli --compression zstd`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProduce(cmd, g, o, args[0])
		},
	}
	bindClientFlags(cmd, g)
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "read lines from this file instead of standard input")
	f.StringVarP(&o.keySep, "key-separator", "K", "", "split each line into key and value at this separator (e.g. = or :)")
	f.StringArrayVarP(&o.headers, "header", "H", nil, "record header key=value, added to every record (repeatable)")
	f.Int32VarP(&o.partition, "partition", "p", -1, "produce every record to this partition (-1: the key's partition, sticky when unkeyed)")
	f.StringVar(&o.acks, "acks", "all", "acks: all (-1), 1 or 0")
	f.StringVarP(&o.compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "fail a record not acknowledged within this long, at least 1s (delivery.timeout.ms)")
	return cmd
}

// produceClientOpts maps the produce flags to franz-go options.
func produceClientOpts(topic string, o produceOptions) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(), kgo.RecordDeliveryTimeout(o.timeout)}
	switch o.acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("--acks %q: want all, -1, 1 or 0", o.acks)
	}
	codec, err := compressionCodec(o.compression)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if o.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	return opts, nil
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

// recordFromLine builds the record for one input line.
func recordFromLine(line, keySep string, headers []kgo.RecordHeader, partition int32) (*kgo.Record, error) {
	r := &kgo.Record{Value: []byte(line), Headers: headers, Partition: partition}
	if keySep != "" {
		k, v, ok := strings.Cut(line, keySep)
		if !ok {
			return nil, fmt.Errorf("no key separator %q", keySep)
		}
		r.Key, r.Value = []byte(k), []byte(v)
	}
	return r, nil
}

func runProduce(cmd *cobra.Command, g *globals, o produceOptions, topic string) error {
	if _, err := newPrinter(io.Discard, g.format); err != nil {
		return err
	}
	var headers []kgo.RecordHeader
	for _, h := range o.headers {
		k, v, err := parseKV("header", h)
		if err != nil {
			return err
		}
		headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	opts, err := produceClientOpts(topic, o)
	if err != nil {
		return err
	}
	in := cmd.InOrStdin()
	if o.file != "" && o.file != "-" {
		f, err := os.Open(o.file)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		in = f
	}
	cl, err := g.client(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	sum, err := produceLines(cmd.Context(), cl, in, o, headers)
	sum.Topic, sum.Millis = topic, time.Since(start).Milliseconds()
	if perr := printProduceSummary(cmd.ErrOrStderr(), g.format, sum); perr != nil && err == nil {
		err = perr
	}
	return err
}

// produceLines sends one record per line of in and waits for every ack.
// It returns the first error: a bad line stops reading, a failed record
// is reported after the rest are flushed.
func produceLines(ctx context.Context, cl *kgo.Client, in io.Reader, o produceOptions, headers []kgo.RecordHeader) (produceSummary, error) {
	var (
		mu      sync.Mutex
		sum     = produceSummary{Partitions: map[int32]int64{}}
		prodErr error
	)
	done := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if prodErr == nil {
				prodErr = fmt.Errorf("produce to %s: %w", r.Topic, err)
			}
			return
		}
		sum.Records++
		sum.Bytes += int64(len(r.Key) + len(r.Value))
		sum.Partitions[r.Partition]++
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var readErr error
	for n := 1; sc.Scan(); n++ {
		r, err := recordFromLine(sc.Text(), o.keySep, headers, o.partition)
		if err != nil {
			readErr = fmt.Errorf("line %d: %w", n, err)
			break
		}
		cl.Produce(ctx, r, done)
	}
	if readErr == nil && sc.Err() != nil {
		readErr = fmt.Errorf("read input: %w", sc.Err())
	}
	flushErr := cl.Flush(ctx)
	mu.Lock()
	defer mu.Unlock()
	return sum, errors.Join(readErr, prodErr, flushErr)
}

func printProduceSummary(w io.Writer, format string, s produceSummary) error {
	p, err := newPrinter(w, format)
	if err != nil {
		return err
	}
	parts := make([]int32, 0, len(s.Partitions))
	for k := range s.Partitions {
		parts = append(parts, k)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	counts := make([]string, len(parts))
	for i, k := range parts {
		counts[i] = fmt.Sprintf("%d:%d", k, s.Partitions[k])
	}
	if p.json {
		return p.print(s)
	}
	_, err = fmt.Fprintf(w, "produced %d %s (%d bytes) to %s in %dms; per partition %s\n",
		s.Records, plural(int(s.Records), "record"), s.Bytes, s.Topic, s.Millis, orDash(strings.Join(counts, " ")))
	return err
}
