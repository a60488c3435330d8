package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// target is one broker under test: how to start it as a process.
type target struct {
	name string
	// skip, when set, is why this target is not measured.
	skip string
	// argv is the command line of a broker listening on 127.0.0.1:port
	// with its data in dir and auto-created topics of partitions partitions.
	argv func(dir string, port, partitions int) ([]string, error)
	// marker is the log fragment that marks the broker proper starting,
	// for launchers that do work first (see proc.started).
	marker string
	// grace is how long a clean shutdown may take.
	grace time.Duration
}

// prepareTargets builds kbox and the kfake server fresh into tmp and
// fetches Apache Kafka's jars, and returns the targets named in names.
func prepareTargets(ctx context.Context, o options, root, tmp string) ([]*target, error) {
	var out []*target
	for _, name := range o.targets {
		var (
			t   *target
			err error
		)
		switch name {
		case "kbox":
			t, err = kboxTarget(ctx, o, root, tmp)
		case "kfake":
			t, err = kfakeTarget(ctx, root, tmp)
		case "kafka":
			t = kafkaTarget(ctx, root)
		default:
			return nil, fmt.Errorf("unknown target %q (want kbox, kfake or kafka)", name)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func kboxTarget(ctx context.Context, o options, root, tmp string) (*target, error) {
	bin := o.kboxBin
	if bin == "" {
		bin = filepath.Join(tmp, "kbox")
		if err := goBuild(ctx, root, bin, "./cmd/kbox"); err != nil {
			return nil, err
		}
	}
	return &target{
		name:  "kbox",
		grace: 20 * time.Second,
		argv: func(dir string, port, partitions int) ([]string, error) {
			return []string{bin, "up",
				"--data-dir", dir,
				"--kafka-addr", "127.0.0.1:" + strconv.Itoa(port),
				"--http-addr", "off", "--sql-addr", "off", "--connect-addr", "off",
				"--log-level", "warn",
				"--partitions", strconv.Itoa(partitions),
			}, nil
		},
	}, nil
}

func kfakeTarget(ctx context.Context, root, tmp string) (*target, error) {
	bin := filepath.Join(tmp, "kfakeserver")
	if err := goBuild(ctx, root, bin, "./bench/kfakeserver"); err != nil {
		return nil, err
	}
	return &target{
		name:  "kfake",
		grace: 20 * time.Second,
		argv: func(dir string, port, partitions int) ([]string, error) {
			return []string{bin, "-port", strconv.Itoa(port), "-data-dir", dir, "-partitions", strconv.Itoa(partitions)}, nil
		},
	}, nil
}

// kafkaTarget runs Apache Kafka through peers/kafka/kafka.sh, the one
// launcher of the reference broker (peers/README.md).
func kafkaTarget(ctx context.Context, root string) *target {
	t := &target{name: "kafka", marker: "kafka.sh: Apache Kafka", grace: 60 * time.Second}
	if _, err := exec.LookPath("java"); err != nil {
		t.skip = "skipped: no java"
		return t
	}
	script := filepath.Join(root, "peers", "kafka", "kafka.sh")
	if _, err := os.Stat(script); err != nil {
		t.skip = "skipped: no peers/kafka/kafka.sh"
		return t
	}
	fetch := exec.CommandContext(ctx, "bash", script, "fetch")
	fetch.Stderr = os.Stderr
	if out, err := fetch.Output(); err != nil {
		t.skip = fmt.Sprintf("skipped: kafka.sh fetch failed (%v)", err)
		return t
	} else {
		fmt.Fprintf(os.Stderr, "bench: Apache Kafka jars in %s\n", strings.TrimSpace(string(out)))
	}
	t.argv = func(dir string, port, partitions int) ([]string, error) {
		cport, err := freePort()
		if err != nil {
			return nil, err
		}
		return []string{"bash", script, "run",
			"--port", strconv.Itoa(port), "--controller-port", strconv.Itoa(cport),
			"--dir", dir, "--config", "num.partitions=" + strconv.Itoa(partitions),
		}, nil
	}
	return t
}

func goBuild(ctx context.Context, root, out, pkg string) error {
	fmt.Fprintf(os.Stderr, "bench: go build -o %s %s\n", out, pkg)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// broker is a running target process.
type broker struct {
	t          *target
	dir        string
	logDir     string
	runs       int
	port       int
	partitions int
	p          *proc
}

// addr is the broker's Kafka address.
func (b *broker) addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

// launch starts a broker process on a fresh port with data in dir.
func launch(t *target, dir, logDir string, partitions int) (*broker, error) {
	b := &broker{t: t, dir: dir, logDir: logDir}
	return b, b.start(partitions)
}

func (b *broker) start(partitions int) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	argv, err := b.t.argv(b.dir, port, partitions)
	if err != nil {
		return err
	}
	b.runs++
	log := filepath.Join(b.logDir, fmt.Sprintf("%s-%s-%d.log", b.t.name, filepath.Base(b.dir), b.runs))
	p, err := spawn(argv, filepath.Dir(b.dir), log, b.t.marker)
	if err != nil {
		return err
	}
	b.p, b.port, b.partitions = p, port, partitions
	return nil
}

// launchReady launches a broker and waits for its first Metadata answer,
// returning when that came. A launcher that dies before its start marker
// (Kafka's storage format step) is retried once on a fresh dir, with a
// note, so one flaky format does not cost a whole run.
func launchReady(ctx context.Context, t *target, dir, logDir string, partitions int) (*broker, time.Time, string, error) {
	b, err := launch(t, dir, logDir, partitions)
	if err != nil {
		return nil, time.Time{}, "", err
	}
	at, err := firstMetadata(ctx, b)
	if err == nil {
		return b, at, "", nil
	}
	exited, _ := b.p.exited()
	if !exited || len(t.marker) == 0 || b.p.mark.sawMarker() {
		b.stop()
		return nil, time.Time{}, "", err
	}
	note := fmt.Sprintf("the launcher failed before starting the broker once (%v, log in %s); retried on a fresh dir", err, logDir)
	progress("%s: %s", t.name, note)
	b, err = launch(t, dir+"-retry", logDir, partitions)
	if err != nil {
		return nil, time.Time{}, "", err
	}
	if at, err = firstMetadata(ctx, b); err != nil {
		b.stop()
		return nil, time.Time{}, "", err
	}
	return b, at, note, nil
}

// restart stops the broker and starts it again on the same data dir.
func (b *broker) restart(ctx context.Context, partitions int) error {
	if err := b.stop(); err != nil {
		return err
	}
	if err := b.start(partitions); err != nil {
		return err
	}
	_, err := firstMetadata(ctx, b)
	return err
}

// stop stops the broker process; an unclean exit is an error.
func (b *broker) stop() error {
	if b.p == nil {
		return nil
	}
	p := b.p
	b.p = nil
	if err := p.stop(b.t.grace); err != nil {
		return fmt.Errorf("%s: %w", b.t.name, err)
	}
	var ee *exec.ExitError
	if err := p.err; err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 143) {
		// 143 is bash's status after SIGTERM, also what the JVM exits with.
		return fmt.Errorf("%s exited with %v (log in %s)", b.t.name, err, b.logDir)
	}
	return nil
}

// firstMetadata polls the broker until a Metadata request is answered
// with a controller (a broker that can take writes) and returns when the
// answer arrived. Each attempt uses a fresh client, so no cached metadata
// and no client back-off stand between the broker and the answer.
func firstMetadata(ctx context.Context, b *broker) (time.Time, error) {
	deadline := time.Now().Add(3 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		if ok, err := b.p.exited(); ok {
			return time.Time{}, fmt.Errorf("%s exited during start-up: %v (log in %s)", b.t.name, err, b.logDir)
		}
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		t, err := metadataOnce(ctx, b.addr())
		if err == nil {
			return t, nil
		}
		last = err
		time.Sleep(time.Millisecond) // poll interval: the thing measured is the broker's start
	}
	return time.Time{}, fmt.Errorf("%s: no Metadata answer in 3m: %w", b.t.name, last)
}

func metadataOnce(ctx context.Context, addr string) (time.Time, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.DialTimeout(500*time.Millisecond),
		kgo.RequestRetries(0),
		kgo.RetryBackoffFn(func(int) time.Duration { return time.Millisecond }),
	)
	if err != nil {
		return time.Time{}, err
	}
	defer cl.Close()
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).BrokerMetadata(actx)
	at := time.Now()
	if err != nil {
		return time.Time{}, err
	}
	if len(m.Brokers) == 0 || m.Controller < 0 {
		return time.Time{}, errors.New("metadata answer names no controller yet")
	}
	return at, nil
}
