package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeOptions are the flags of kbox consume.
type consumeOptions struct {
	from, group, print string
	partition          int32
	count              int
	timeout            time.Duration
}

// recordFields are the names --print accepts, in their default JSON order.
var recordFields = []string{"topic", "partition", "offset", "timestamp", "key", "value", "headers"}

func newConsumeCommand(g *globals) *cobra.Command {
	o := consumeOptions{}
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records",
		Long: `Print TOPIC's records, one per line, until --count records, --timeout
without a new record, or Ctrl-C.

Where to start (--from): beginning, end, an offset N (in every partition
consumed), -N (N before the end of each partition) or an RFC 3339 time
(the first record at or after it). With --group G, consume is a member of
consumer group G: it starts at G's committed offsets (--from applies only to
partitions without one) and commits each record it printed.

Output (--format):
  table  the --print fields, tab-separated (default field: value)
  json   one JSON object per line with the --print fields (default: all)
  any Go template, e.g. '{{.Partition}}/{{.Offset}} {{.Key}}={{.Value}} {{.Header "source"}}'
         over .Topic .Partition .Offset .Timestamp .Key .Value .Headers;
         a newline is added unless the template ends with one.
--print takes a comma-separated list of topic, partition, offset,
timestamp, key, value, headers.

Example:
  kbox consume clicks --from beginning --count 2 --group clicks-reader --print partition,offset,key,value,headers`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConsume(cmd, g, o, args[0])
		},
	}
	bindClientFlags(cmd, g)
	cmd.PersistentFlags().Lookup("format").Usage = "record format: table, json or a Go template (env KBOX_FORMAT)"
	f := cmd.Flags()
	f.StringVarP(&o.from, "from", "o", "end", "where to start: beginning, end, N, -N or an RFC 3339 time")
	f.Int32VarP(&o.partition, "partition", "p", -1, "consume only this partition (-1: all; not with --group)")
	f.StringVarP(&o.group, "group", "g", "", "consume as a member of this consumer group and commit what is printed")
	f.IntVarP(&o.count, "count", "n", 0, "exit after this many records (0: no limit)")
	f.DurationVarP(&o.timeout, "timeout", "t", 0, "exit when no record arrives for this long (0: wait forever)")
	f.StringVar(&o.print, "print", "", "fields to print: topic,partition,offset,timestamp,key,value,headers")
	return cmd
}

// parseFrom turns --from into a franz-go start offset.
func parseFrom(s string) (kgo.Offset, error) {
	switch s {
	case "beginning", "earliest", "start":
		return kgo.NewOffset().AtStart(), nil
	case "end", "latest":
		return kgo.NewOffset().AtEnd(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return kgo.NewOffset().AtEnd().Relative(n), nil
		}
		return kgo.NewOffset().At(n), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return kgo.NewOffset().AfterMilli(t.UnixMilli()), nil
	}
	return kgo.Offset{}, fmt.Errorf("--from %q: want beginning, end, an offset, -N or an RFC 3339 time", s)
}

// consumeClientOpts maps the consume flags to franz-go options.
func consumeClientOpts(topic string, o consumeOptions) ([]kgo.Opt, error) {
	start, err := parseFrom(o.from)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500 * time.Millisecond)}
	switch {
	case o.group != "" && o.partition >= 0:
		return nil, errors.New("--partition and --group: a group member is assigned its partitions; give one of them")
	case o.group != "":
		opts = append(opts, kgo.ConsumerGroup(o.group), kgo.ConsumeTopics(topic), kgo.ConsumeStartOffset(start),
			kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
	case o.partition >= 0:
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {o.partition: start}}))
	default:
		opts = append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeStartOffset(start))
	}
	return opts, nil
}

func runConsume(cmd *cobra.Command, g *globals, o consumeOptions, topic string) error {
	rw, err := newRecordWriter(cmd.OutOrStdout(), g.format, o.print)
	if err != nil {
		return err
	}
	opts, err := consumeClientOpts(topic, o)
	if err != nil {
		return err
	}
	cl, err := g.client(opts...)
	if err != nil {
		return err
	}
	defer cl.CloseAllowingRebalance() // a group member leaves the group
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := consumeLoop(ctx, cl, rw, o)
	fmt.Fprintf(cmd.ErrOrStderr(), "consumed %d %s from %s\n", n, plural(n, "record"), topic)
	return err
}

// consumeLoop polls, prints and (in a group) commits until a stop
// condition; it returns how many records it printed.
func consumeLoop(ctx context.Context, cl *kgo.Client, rw *recordWriter, o consumeOptions) (int, error) {
	inGroup := o.group != ""
	n := 0
	for o.count == 0 || n < o.count {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if o.timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, o.timeout)
		}
		max := -1
		if o.count > 0 {
			max = o.count - n
		}
		fs := cl.PollRecords(pctx, max)
		idle := pctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return n, nil // interrupted
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && fetchErr == nil {
				fetchErr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return n, fetchErr
		}
		recs := fs.Records()
		for _, r := range recs {
			if err := rw.write(r); err != nil {
				return n, err
			}
			n++
		}
		if inGroup {
			if len(recs) > 0 {
				if err := cl.CommitRecords(ctx, recs...); err != nil {
					return n, fmt.Errorf("commit: %w", err)
				}
			}
			cl.AllowRebalance()
		}
		if idle && len(recs) == 0 {
			return n, nil
		}
	}
	return n, nil
}

// plural is word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// recordWriter prints consumed records in the --format and --print chosen.
type recordWriter struct {
	w      io.Writer
	mode   string // table, json or template
	fields []string
	tmpl   *template.Template
	buf    bytes.Buffer
}

func newRecordWriter(w io.Writer, format, print string) (*recordWriter, error) {
	rw := &recordWriter{w: w, mode: format}
	switch {
	case format == "table" || format == "":
		rw.mode, rw.fields = "table", []string{"value"}
	case format == "json":
		rw.fields = recordFields
	case strings.Contains(format, "{{"):
		t, err := template.New("record").Parse(format)
		if err != nil {
			return nil, fmt.Errorf("--format template: %w", err)
		}
		if !strings.HasSuffix(format, "\n") {
			t, _ = template.New("record").Parse(format + "\n")
		}
		rw.mode, rw.tmpl = "template", t
	default:
		return nil, fmt.Errorf("--format %q: want table, json or a Go template", format)
	}
	if print != "" {
		if rw.mode == "template" {
			return nil, errors.New("--print and a --format template: the template chooses the fields; give one of them")
		}
		fields, err := parsePrint(print)
		if err != nil {
			return nil, err
		}
		rw.fields = fields
	}
	return rw, nil
}

func parsePrint(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		ok := false
		for _, known := range recordFields {
			ok = ok || f == known
		}
		if !ok {
			return nil, fmt.Errorf("--print %q: unknown field %q (want %s)", s, f, strings.Join(recordFields, ","))
		}
		out = append(out, f)
	}
	return out, nil
}

// recordView is what a --format template sees.
type recordView struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       string
	Value     string
	Headers   []headerView
}

// headerView is one record header.
type headerView struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Header returns the value of the first header named key, or "".
func (r recordView) Header(key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return ""
}

func viewOf(r *kgo.Record) recordView {
	v := recordView{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(),
		Key: string(r.Key), Value: string(r.Value), Headers: []headerView{}}
	for _, h := range r.Headers {
		v.Headers = append(v.Headers, headerView{Key: h.Key, Value: string(h.Value)})
	}
	return v
}

const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

func (rw *recordWriter) write(r *kgo.Record) error {
	rw.buf.Reset()
	v := viewOf(r)
	switch rw.mode {
	case "template":
		if err := rw.tmpl.Execute(&rw.buf, v); err != nil {
			return fmt.Errorf("--format template: %w", err)
		}
	case "json":
		rw.writeJSON(r, v)
	default:
		rw.writeTable(v)
	}
	_, err := rw.w.Write(rw.buf.Bytes())
	return err
}

func (rw *recordWriter) writeTable(v recordView) {
	for i, f := range rw.fields {
		if i > 0 {
			rw.buf.WriteByte('\t')
		}
		switch f {
		case "topic":
			rw.buf.WriteString(v.Topic)
		case "partition":
			rw.buf.WriteString(strconv.Itoa(int(v.Partition)))
		case "offset":
			rw.buf.WriteString(strconv.FormatInt(v.Offset, 10))
		case "timestamp":
			rw.buf.WriteString(v.Timestamp.Format(timestampLayout))
		case "key":
			rw.buf.WriteString(v.Key)
		case "value":
			rw.buf.WriteString(v.Value)
		case "headers":
			for j, h := range v.Headers {
				if j > 0 {
					rw.buf.WriteByte(',')
				}
				rw.buf.WriteString(h.Key + "=" + h.Value)
			}
		}
	}
	rw.buf.WriteByte('\n')
}

// writeJSON writes one object with the chosen fields in their order; a
// missing key or value is null.
func (rw *recordWriter) writeJSON(r *kgo.Record, v recordView) {
	rw.buf.WriteByte('{')
	for i, f := range rw.fields {
		if i > 0 {
			rw.buf.WriteByte(',')
		}
		var val any
		switch f {
		case "topic":
			val = v.Topic
		case "partition":
			val = v.Partition
		case "offset":
			val = v.Offset
		case "timestamp":
			val = v.Timestamp.Format(timestampLayout)
		case "key":
			val = nullable(r.Key)
		case "value":
			val = nullable(r.Value)
		case "headers":
			val = v.Headers
		}
		b, _ := json.Marshal(val) // strings, numbers and headers always marshal
		fmt.Fprintf(&rw.buf, "%q:%s", f, b)
	}
	rw.buf.WriteString("}\n")
}

func nullable(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}
