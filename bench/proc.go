package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one broker process started by the bench. Its waiter goroutine
// (started by spawn) owns cmd.Wait and closes done when the process ends.
type proc struct {
	cmd     *exec.Cmd
	pid     int
	spawned time.Time
	mark    *markWriter
	done    chan struct{}
	err     error // cmd.Wait's result, valid once done is closed
}

// spawn starts argv in its own process group with stdout and stderr going
// to logPath. marker, if not empty, is a log line fragment that marks the
// moment the broker proper starts (see [proc.started]).
func spawn(argv []string, dir, logPath, marker string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	w := &markWriter{w: f, marker: []byte(marker), seen: make(chan time.Time, 1)}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{cmd: cmd, mark: w, done: make(chan struct{})}
	p.spawned = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p.pid = cmd.Process.Pid
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// started is when the broker process began: the spawn time, or, with a
// marker, the time its log showed the marker (Kafka's launcher formats
// the storage in a first JVM, then execs the broker JVM in the same PID).
func (p *proc) started(timeout time.Duration) (time.Time, error) {
	if len(p.mark.marker) == 0 {
		return p.spawned, nil
	}
	select {
	case t := <-p.mark.seen:
		p.mark.seen <- t
		return t, nil
	case <-p.done:
		return time.Time{}, fmt.Errorf("process exited before logging %q: %v", p.mark.marker, p.err)
	case <-time.After(timeout):
		return time.Time{}, fmt.Errorf("no %q in the log after %s", p.mark.marker, timeout)
	}
}

// exited reports the process's exit error once it has ended.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process group the bench created, waits up to
// grace for the process to exit, then sends SIGKILL to the group.
func (p *proc) stop(grace time.Duration) error {
	if ok, _ := p.exited(); ok {
		return nil
	}
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("pid %d ignored SIGTERM for %s; killed", p.pid, grace)
}

// markWriter copies a process's output to w and notes when a line
// containing marker first appears.
type markWriter struct {
	mu     sync.Mutex
	w      io.Writer
	marker []byte
	line   []byte
	found  bool
	seen   chan time.Time
}

// sawMarker reports whether the marker has appeared.
func (m *markWriter) sawMarker() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.found
}

func (m *markWriter) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.marker) > 0 && !m.found {
		m.line = append(m.line, b...)
		for !m.found {
			i := bytes.IndexByte(m.line, '\n')
			if i < 0 {
				break
			}
			if bytes.Contains(m.line[:i], m.marker) {
				m.found = true
				m.seen <- time.Now()
			}
			m.line = m.line[i+1:]
		}
	}
	return m.w.Write(b)
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds is the user plus system CPU time a process has used so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("cpu time: malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("cpu time: short /proc stat")
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	return float64(utime+stime) / clockTicks, nil
}

// rssBytes is a process's resident set size (VmRSS).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("rss: no VmRSS line")
}
