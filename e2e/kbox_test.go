package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kboxProc is one running `kbox up` child process.
type kboxProc struct {
	t     testing.TB
	dir   string
	extra []string // flags beyond the defaults, kept for Restart
	// Addr is the Kafka listener the banner printed.
	Addr string

	cmd    *exec.Cmd
	logs   *procLog
	exited chan struct{} // closed once Wait returned; waitErr is set before
	// waitErr is cmd.Wait's result, valid after exited is closed.
	waitErr error
}

// startKbox starts kbox on a fresh data directory.
func startKbox(t testing.TB, extra ...string) *kboxProc {
	t.Helper()
	return startKboxIn(t, t.TempDir(), extra...)
}

// startKboxIn starts kbox on dir (existing data is reused) with every
// listener but Kafka off and Kafka on a random loopback port, and waits
// for the banner.
func startKboxIn(t testing.TB, dir string, extra ...string) *kboxProc {
	t.Helper()
	args := append([]string{"up",
		"--kafka-addr", "127.0.0.1:0",
		"--http-addr", "off", "--sql-addr", "off", "--connect-addr", "off",
		"--data-dir", dir,
	}, extra...)
	k := &kboxProc{t: t, dir: dir, extra: extra, logs: &procLog{}, exited: make(chan struct{})}
	k.cmd = exec.Command(kboxBin, args...)
	k.cmd.Stdout = k.logs
	k.cmd.Stderr = k.logs
	start := time.Now()
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start kbox: %v", err)
	}
	go func() { // owned by the process: ends when it exits
		k.waitErr = k.cmd.Wait()
		close(k.exited)
	}()
	t.Cleanup(k.cleanup)
	addr, err := k.logs.waitBanner(k.exited, 60*time.Second)
	if err != nil {
		t.Fatalf("kbox did not start: %v\n%s", err, k.logs.tail(60))
	}
	k.Addr = addr
	t.Logf("kbox up on %s (data %s) in %s", addr, dir, time.Since(start).Round(time.Millisecond))
	return k
}

// Restart stops k with SIGTERM and starts a new kbox on the same data
// directory with the same flags.
func (k *kboxProc) Restart(t testing.TB) *kboxProc {
	t.Helper()
	k.Stop(t)
	return startKboxIn(t, k.dir, k.extra...)
}

// Stop sends SIGTERM and fails t unless kbox exits cleanly within 30s.
func (k *kboxProc) Stop(t testing.TB) {
	t.Helper()
	if err := k.signalAndWait(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("kbox stop: %v\n%s", err, k.logs.tail(40))
	}
	k.checkRaces(t)
}

// Kill sends SIGKILL and waits for the process to go.
func (k *kboxProc) Kill(t testing.TB) {
	t.Helper()
	err := k.signalAndWait(syscall.SIGKILL, 10*time.Second)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("kbox kill: %v", err)
	}
	k.checkRaces(t)
}

func (k *kboxProc) signalAndWait(sig syscall.Signal, d time.Duration) error {
	select {
	case <-k.exited:
		return fmt.Errorf("kbox had already exited: %v", k.waitErr)
	default:
	}
	if err := k.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v: %w", sig, err)
	}
	select {
	case <-k.exited:
		return k.waitErr
	case <-time.After(d):
		_ = k.cmd.Process.Kill()
		<-k.exited
		return fmt.Errorf("still running %s after %v", d, sig)
	}
}

// cleanup kills a still-running process, reports races and, when the
// test failed, the end of kbox's log.
func (k *kboxProc) cleanup() {
	select {
	case <-k.exited:
	default:
		_ = k.cmd.Process.Kill()
		<-k.exited
	}
	k.checkRaces(k.t)
	if k.t.Failed() {
		k.t.Logf("kbox log (%s, last lines):\n%s", k.dir, k.logs.tail(80))
	}
}

func (k *kboxProc) checkRaces(t testing.TB) {
	t.Helper()
	if log := k.logs.String(); strings.Contains(log, "WARNING: DATA RACE") {
		i := strings.Index(log, "WARNING: DATA RACE")
		t.Errorf("kbox reported a data race:\n%s", log[i:min(len(log), i+6000)])
	}
}

// bannerRE matches the banner line of `kbox up` that gives the Kafka
// listener (cmd/kbox/up.go printBanner).
var bannerRE = regexp.MustCompile(`(?m)^\s+Kafka\s+(\S+:\d+)\s*$`)

// procLog collects a child process's stdout and stderr.
type procLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// tail is the last n lines.
func (l *procLog) tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitBanner polls the log until the banner names the Kafka address.
func (l *procLog) waitBanner(exited <-chan struct{}, d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := bannerRE.FindStringSubmatch(l.String()); m != nil {
			return m[1], nil
		}
		select {
		case <-exited:
			if m := bannerRE.FindStringSubmatch(l.String()); m != nil {
				return "", fmt.Errorf("exited right after the banner")
			}
			return "", fmt.Errorf("exited before the banner")
		case <-ctx.Done():
			return "", fmt.Errorf("no banner after %s", d)
		case <-tick.C:
		}
	}
}
