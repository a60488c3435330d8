// Command bench measures kbox beside kfake and Apache Kafka in one run,
// on the same machine and the same workload, and prints one table with
// the ratios kbox/kfake and kbox/kafka (issue 8, "Benchmark"). `make bench`
// runs it; bench/README.md explains the method and quotes a run.
//
// Every broker is a separate process on a random loopback port with a
// fresh data dir: kbox is the real `kbox up` binary built fresh, kfake runs
// in bench/kfakeserver, Apache Kafka (KRaft, one node) is started by
// peers/kafka/kafka.sh where Java is present. The producers and consumers
// are franz-go (kgo) clients inside this process. Brokers run one at a
// time so they do not compete for the machine; the throughput phases run
// in rounds with the brokers taking turns, and the median round counts.
//
//	go run ./bench                  # full run, about 5 minutes
//	go run ./bench -quick           # a tenth of the records, a smoke run
//	go run ./bench -targets kbox,kfake -scale 0.5
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// options are the command line flags.
type options struct {
	targets      []string
	scale        float64
	starts       int
	rounds       int
	latencyRate  int
	latencyDur   time.Duration
	settle       time.Duration
	phaseTimeout time.Duration
	out          string
	kboxBin      string
	keep         bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	targets := fs.String("targets", "kbox,kfake,kafka", "comma-separated brokers to measure")
	quick := fs.Bool("quick", false, "smoke run: -scale 0.1, 2 starts, 3 s of latency")
	fs.Float64Var(&o.scale, "scale", 1, "multiplies the record counts (1,000,000 × 100 B and 200,000 × 1 KiB)")
	fs.IntVar(&o.starts, "starts", 3, "start-ups measured per broker (the median is reported)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of the throughput phases, brokers taking turns (the median is reported)")
	fs.IntVar(&o.latencyRate, "latency-rate", 5000, "records per second of the latency phase")
	fs.DurationVar(&o.latencyDur, "latency-duration", 10*time.Second, "length of the latency phase")
	fs.DurationVar(&o.settle, "settle", time.Second, "idle time after start-up before reading RSS")
	fs.DurationVar(&o.phaseTimeout, "phase-timeout", 5*time.Minute, "limit of each produce or consume phase")
	fs.StringVar(&o.out, "out", "bench/out/latest.md", "markdown report (a relative path is relative to the module root)")
	fs.StringVar(&o.kboxBin, "kbox", "", "kbox binary to measure (default: go build ./cmd/kbox into a temp dir)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (data dirs, binaries)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *quick {
		o.scale, o.starts, o.rounds, o.latencyDur = 0.1, 2, 1, 3*time.Second
	}
	o.targets = strings.Split(*targets, ",")
	if o.scale <= 0 || o.starts < 1 || o.rounds < 1 || o.latencyRate < 1 || o.latencyDur <= 0 {
		return o, fmt.Errorf("-scale, -starts, -rounds, -latency-rate and -latency-duration must be positive")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// workloads are the throughput phases, scaled.
func workloads(scale float64) []workload {
	n100, n1k := max(1, int(1_000_000*scale)), max(1, int(200_000*scale))
	return []workload{
		{records: n100, size: 100, partitions: 1},
		{records: n100, size: 100, partitions: 6},
		{records: n1k, size: 1024, partitions: 1},
		{records: n1k, size: 1024, partitions: 6},
	}
}

const latencyTopic = "bench-latency"

func run(ctx context.Context, o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "kbox-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(os.Stderr, "bench: keeping %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	logDir := filepath.Join(root, "bench", "out", "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	targets, err := prepareTargets(ctx, o, root, tmp)
	if err != nil {
		return err
	}
	began := time.Now()
	results := map[string]*result{}
	for _, t := range targets {
		r := &result{skip: t.skip, cpu: map[int]*cpuUse{}}
		results[t.name] = r
		if t.skip == "" {
			r.err = measureStartups(ctx, o, t, tmp, logDir, r)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	// The throughput phases run in rounds with the brokers taking turns,
	// so that a burst of load from elsewhere on the machine hits one
	// round of every broker rather than all of one broker's phases.
	for round := range o.rounds {
		for _, t := range targets {
			r := results[t.name]
			if t.skip != "" || r.err != nil {
				continue
			}
			progress("%s: round %d of %d", t.name, round+1, o.rounds)
			rr, err := measureWorkloads(ctx, o, t, filepath.Join(tmp, fmt.Sprintf("%s-data%d", t.name, round)), logDir, r, round == 0)
			r.rounds = append(r.rounds, rr)
			if err != nil {
				r.err = fmt.Errorf("round %d: %w", round+1, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	var failed []string
	for _, t := range targets {
		r := results[t.name]
		r.merge()
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", t.name, r.err))
		}
	}
	rep := report{o: o, results: results, took: time.Since(began), host: hostInfo()}
	md := rep.markdown()
	fmt.Println(rep.table())
	path := o.out
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: report in %s, broker logs in %s (%s)\n", path, logDir, rep.took.Round(time.Second))
	if len(failed) > 0 {
		return fmt.Errorf("FAILED:\n  %s", strings.Join(failed, "\n  "))
	}
	return nil
}

// result is everything measured of one target.
type result struct {
	skip     string
	err      error
	notes    []string
	startups []time.Duration
	rss      []int64
	rounds   []roundResult
	// produce, consume and cpu are the medians over rounds (see merge).
	produce []throughput // indexed like workloads()
	consume []throughput
	cpu     map[int]*cpuUse // by record size
	lat     latency
}

// roundResult is one round of the throughput phases on a fresh broker.
type roundResult struct {
	produce []throughput
	consume []throughput
	cpu     map[int]*cpuUse
}

// merge sets produce, consume and cpu to the median of the complete
// rounds, phase by phase.
func (r *result) merge() {
	var done []roundResult
	for _, rr := range r.rounds {
		if len(rr.produce) == len(rr.consume) && len(rr.produce) > 0 && (len(done) == 0 || len(rr.produce) == len(done[0].produce)) {
			done = append(done, rr)
		}
	}
	if len(done) == 0 {
		return
	}
	r.produce, r.consume = nil, nil
	for i := range done[0].produce {
		var ps, cs []throughput
		for _, rr := range done {
			ps, cs = append(ps, rr.produce[i]), append(cs, rr.consume[i])
		}
		r.produce, r.consume = append(r.produce, medianRate(ps)), append(r.consume, medianRate(cs))
	}
	for size := range done[0].cpu {
		var cs []cpuUse
		for _, rr := range done {
			if c := rr.cpu[size]; c != nil {
				cs = append(cs, *c)
			}
		}
		sort.Slice(cs, func(i, j int) bool { return cs[i].perMillion() < cs[j].perMillion() })
		m := cs[len(cs)/2]
		r.cpu[size] = &m
	}
}

// medianRate is the phase with the median records per second.
func medianRate(ts []throughput) throughput {
	s := append([]throughput(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i].recordsPerSec() < s[j].recordsPerSec() })
	return s[len(s)/2]
}

// cpuUse is broker CPU time spent moving records.
type cpuUse struct {
	seconds float64
	records int
}

func (c cpuUse) perMillion() float64 { return c.seconds / (float64(c.records) / 1e6) }

// measureStartups starts the target o.starts times on fresh data dirs,
// timing the first Metadata answer and reading the idle RSS.
func measureStartups(ctx context.Context, o options, t *target, tmp, logDir string, r *result) error {
	for i := range o.starts {
		up, err := startOnce(ctx, o, t, filepath.Join(tmp, fmt.Sprintf("%s-start%d", t.name, i)), logDir, r)
		if err != nil {
			return fmt.Errorf("start-up %d: %w", i+1, err)
		}
		progress("%s: start-up %d: first Metadata answer after %s", t.name, i+1, up.Round(100*time.Microsecond))
	}
	return nil
}

func startOnce(ctx context.Context, o options, t *target, dir, logDir string, r *result) (_ time.Duration, err error) {
	b, at, note, err := launchReady(ctx, t, dir, logDir, 1)
	if err != nil {
		return 0, err
	}
	defer func() {
		if serr := b.stop(); err == nil {
			err = serr
		}
	}()
	if note != "" {
		r.notes = append(r.notes, note)
	}
	began, err := b.p.started(time.Second)
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(o.settle):
	}
	rss, err := rssBytes(b.p.pid)
	if err != nil {
		return 0, err
	}
	up := at.Sub(began)
	r.startups, r.rss = append(r.startups, up), append(r.rss, rss)
	return up, nil
}

// measureWorkloads runs every throughput phase, and with withLatency the
// latency phase into r.lat, on one broker process with a fresh data dir.
func measureWorkloads(ctx context.Context, o options, t *target, dir, logDir string, r *result, withLatency bool) (rr roundResult, err error) {
	rr.cpu = map[int]*cpuUse{}
	b, _, note, err := launchReady(ctx, t, dir, logDir, 1)
	if err != nil {
		return rr, err
	}
	defer func() {
		if serr := b.stop(); err == nil {
			err = serr
		}
	}()
	if note != "" && withLatency {
		r.notes = append(r.notes, note)
	}
	ws := workloads(o.scale)
	topics := []topicSpec{{name: latencyTopic, partitions: 1}}
	for _, w := range ws {
		topics = append(topics, topicSpec{name: w.topic(), partitions: w.partitions})
	}
	note, err = createTopics(ctx, b, topics)
	if err != nil {
		return rr, fmt.Errorf("create topics: %w", err)
	}
	if note != "" && withLatency {
		r.notes = append(r.notes, note)
	}
	for _, w := range ws {
		if err := runWorkload(ctx, o, b, w, &rr); err != nil {
			return rr, fmt.Errorf("%s: %w", w.label(), err)
		}
	}
	if !withLatency {
		return rr, nil
	}
	lctx, cancel := context.WithTimeout(ctx, o.latencyDur+o.phaseTimeout)
	defer cancel()
	if r.lat, err = produceLatency(lctx, b.addr(), latencyTopic, o.latencyRate, o.latencyDur, 100); err != nil {
		return rr, fmt.Errorf("latency: %w", err)
	}
	progress("%s: latency at %d rec/s: p50 %s, p99 %s, max %s", t.name, o.latencyRate, r.lat.p50, r.lat.p99, r.lat.max)
	return rr, nil
}

func runWorkload(ctx context.Context, o options, b *broker, w workload, r *roundResult) error {
	values := payloads(w.records, w.size)
	cpu0, err := cpuSeconds(b.p.pid)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, o.phaseTimeout)
	var stats produceStats
	prod, perPart, err := produce(pctx, b.addr(), w.topic(), values, &stats)
	cancel()
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	values = nil
	progress("%s: produce %s: %s rec/s, %.1f MB/s (%s)", b.t.name, w.label(), thousands(prod.recordsPerSec()), prod.mbPerSec(), &stats)
	cctx, cancel := context.WithTimeout(ctx, o.phaseTimeout)
	cons, err := consume(cctx, b.addr(), w.topic(), perPart, w.size)
	cancel()
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	progress("%s: consume %s: %s rec/s, %.1f MB/s", b.t.name, w.label(), thousands(cons.recordsPerSec()), cons.mbPerSec())
	cpu1, err := cpuSeconds(b.p.pid)
	if err != nil {
		return err
	}
	r.produce, r.consume = append(r.produce, prod), append(r.consume, cons)
	c := r.cpu[w.size]
	if c == nil {
		c = &cpuUse{}
		r.cpu[w.size] = c
	}
	c.seconds += cpu1 - cpu0
	c.records += w.records
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// moduleRoot is the directory of the go.mod that holds this program.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run the bench from inside the kbox module")
	}
	return filepath.Dir(mod), nil
}

func median[T int64 | time.Duration](xs []T) T {
	s := append([]T(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
