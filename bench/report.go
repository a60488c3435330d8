package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// columns are the brokers of the table, in order; kbox is compared with
// the other two.
var columns = []string{"kbox", "kfake", "kafka"}

// report renders the results of one run.
type report struct {
	o       options
	results map[string]*result
	took    time.Duration
	host    string
}

// metric is one row: how to read it from a result and how to print it.
type metric struct {
	name   string
	better string // "↑" higher is better, "↓" lower is better
	value  func(*result) (float64, bool)
	format func(float64) string
}

func (rep report) metrics() []metric {
	var ms []metric
	for i, w := range workloads(rep.o.scale) {
		ms = append(ms, throughputRows("produce "+w.label(), func(r *result) []throughput { return r.produce }, i)...)
	}
	for i, w := range workloads(rep.o.scale) {
		ms = append(ms, throughputRows("consume "+w.label(), func(r *result) []throughput { return r.consume }, i)...)
	}
	lat := fmt.Sprintf("produce latency at %s rec/s, 100 B, acks=all", thousands(float64(rep.o.latencyRate)))
	ms = append(ms,
		metric{lat + ", p50 (ms)", "↓", func(r *result) (float64, bool) { return ms2(r.lat.p50), r.lat.records > 0 }, fixed(2)},
		metric{lat + ", p99 (ms)", "↓", func(r *result) (float64, bool) { return ms2(r.lat.p99), r.lat.records > 0 }, fixed(2)},
		metric{fmt.Sprintf("start-up to first Metadata answer, median of %d (ms)", rep.o.starts), "↓", func(r *result) (float64, bool) {
			if len(r.startups) == 0 {
				return 0, false
			}
			return ms2(median(r.startups)), true
		}, fixed(1)},
		metric{"idle RSS after start-up and one Metadata request (MiB)", "↓", func(r *result) (float64, bool) {
			if len(r.rss) == 0 {
				return 0, false
			}
			return float64(median(r.rss)) / (1 << 20), true
		}, fixed(1)},
	)
	for _, size := range []int{100, 1024} {
		ms = append(ms, metric{fmt.Sprintf("broker CPU s per 1M records produced+consumed, %s", sizeLabel(size)), "↓", func(r *result) (float64, bool) {
			c := r.cpu[size]
			if c == nil || c.records == 0 {
				return 0, false
			}
			return c.perMillion(), true
		}, fixed(2)})
	}
	return ms
}

func throughputRows(prefix string, phase func(*result) []throughput, i int) []metric {
	get := func(r *result) (throughput, bool) {
		ts := phase(r)
		if i >= len(ts) {
			return throughput{}, false
		}
		return ts[i], true
	}
	return []metric{
		{prefix + " (rec/s)", "↑", func(r *result) (float64, bool) { t, ok := get(r); return t.recordsPerSec(), ok }, thousands},
		{prefix + " (MB/s)", "↑", func(r *result) (float64, bool) { t, ok := get(r); return t.mbPerSec(), ok }, fixed(1)},
	}
}

func ms2(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fixed(prec int) func(float64) string {
	return func(v float64) string { return fmt.Sprintf("%.*f", prec, v) }
}

// thousands formats v rounded to an integer with comma separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%d", int64(math.Round(v)))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ratio prints r with two decimals, or two significant digits below 0.1.
func ratio(r float64) string {
	if r < 0.1 {
		return fmt.Sprintf("%.2g×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

// cells renders the table body: metric, one value per column, then kbox
// divided by each other column.
func (rep report) cells() [][]string {
	rows := [][]string{{"metric", "kbox", "kfake", "kafka", "kbox/kfake", "kbox/kafka"}}
	for _, m := range rep.metrics() {
		row := []string{m.name + " " + m.better}
		vals := map[string]float64{}
		for _, c := range columns {
			row = append(row, rep.cell(c, m, vals))
		}
		for _, c := range columns[1:] {
			kv, ok1 := vals["kbox"]
			cv, ok2 := vals[c]
			if !ok1 || !ok2 || cv == 0 {
				row = append(row, "—")
				continue
			}
			row = append(row, ratio(kv/cv))
		}
		rows = append(rows, row)
	}
	return rows
}

func (rep report) cell(col string, m metric, vals map[string]float64) string {
	r, ok := rep.results[col]
	switch {
	case !ok:
		return "not run"
	case r.skip != "":
		return r.skip
	}
	v, ok := m.value(r)
	if !ok {
		if r.err != nil {
			return "FAILED"
		}
		return "—"
	}
	vals[col] = v
	return m.format(v)
}

// table is the result table as aligned markdown, for the terminal.
func (rep report) table() string {
	rows := rep.cells()
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				fmt.Fprintf(&b, " %s%s |", c, pad)
			} else {
				fmt.Fprintf(&b, " %s%s |", pad, c)
			}
		}
		b.WriteString("\n")
	}
	line(rows[0])
	b.WriteString("|")
	for i, w := range width {
		if i == 0 {
			b.WriteString(" " + strings.Repeat("-", w) + " |")
		} else {
			b.WriteString(" " + strings.Repeat("-", w-1) + ": |")
		}
	}
	b.WriteString("\n")
	for _, row := range rows[1:] {
		line(row)
	}
	return b.String()
}

// markdown is the whole report: how the run was made, the table, notes.
func (rep report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kbox benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "`go run ./bench %s` on %s; the run took %s.\n\n", strings.Join(os.Args[1:], " "), rep.host, rep.took.Round(time.Second))
	b.WriteString(rep.table())
	b.WriteString("\n↑ higher is better, ↓ lower is better; the ratios are kbox divided by the other broker.\n")
	var notes []string
	for _, c := range columns {
		r, ok := rep.results[c]
		if !ok {
			continue
		}
		if r.err != nil {
			notes = append(notes, fmt.Sprintf("**%s FAILED**: %v", c, r.err))
		}
		for _, n := range r.notes {
			notes = append(notes, c+": "+n)
		}
		if spread := r.spread(rep.o.scale); spread != "" {
			notes = append(notes, c+": "+spread)
		}
		if len(r.startups) > 0 {
			var ss []string
			for _, s := range r.startups {
				ss = append(ss, s.Round(time.Millisecond).String())
			}
			notes = append(notes, fmt.Sprintf("%s: start-ups %s; latency max %s over %s records", c, strings.Join(ss, ", "), r.lat.max.Round(100*time.Microsecond), thousands(float64(r.lat.records))))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// hostInfo describes the machine: CPUs, kernel, Go and Java versions.
func hostInfo() string {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	s := fmt.Sprintf("%d CPUs, Linux %s, %s", runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version())
	if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
		first, _, _ := strings.Cut(string(out), "\n")
		s += ", " + strings.TrimSpace(first)
	}
	return s
}

// spread lists each produce phase's records/s over the rounds, lowest to
// highest, so a reader sees how far one median can be trusted.
func (r *result) spread(scale float64) string {
	if len(r.rounds) < 2 {
		return ""
	}
	var parts []string
	for i, w := range workloads(scale) {
		var rates []float64
		for _, rr := range r.rounds {
			if i < len(rr.produce) {
				rates = append(rates, rr.produce[i].recordsPerSec())
			}
		}
		if len(rates) == 0 {
			continue
		}
		slices.Sort(rates)
		var ss []string
		for _, v := range rates {
			ss = append(ss, thousands(v))
		}
		parts = append(parts, fmt.Sprintf("%s %s", w.label(), strings.Join(ss, " / ")))
	}
	return fmt.Sprintf("produce rec/s of the %d rounds: %s", len(r.rounds), strings.Join(parts, "; "))
}
