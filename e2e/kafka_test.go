package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaPeer is the Apache Kafka 4.x broker of peers/kafka/kafka.sh, started
// at most once per test binary (a JVM start costs seconds) and stopped by
// TestMain. Tests share it, so each uses its own topic and group names.
type kafkaPeer struct {
	once sync.Once
	addr string
	err  error

	dir    string
	cmd    *exec.Cmd
	logs   *procLog
	exited chan struct{}
}

// sharedKafka is the one Kafka peer of this test binary.
var sharedKafka = &kafkaPeer{}

// kafkaInstall says how to get what the Kafka peer needs.
const kafkaInstall = "apt-get install -y openjdk-17-jdk-headless maven (peers/kafka/kafka.sh fetches the jars from Maven Central)"

// needKafka returns the address of the Apache Kafka peer, starting it on
// first use. KBOX_KAFKA_PEER=host:port uses an already running broker.
func needKafka(t testing.TB) string {
	t.Helper()
	if a := os.Getenv("KBOX_KAFKA_PEER"); a != "" {
		return a
	}
	needTool(t, "java", kafkaInstall)
	needTool(t, "mvn", kafkaInstall)
	sharedKafka.once.Do(sharedKafka.start)
	if sharedKafka.err != nil {
		t.Fatalf("Apache Kafka peer: %v", sharedKafka.err)
	}
	return sharedKafka.addr
}

func (k *kafkaPeer) start() {
	script := filepath.Join(repoRoot, "peers", "kafka", "kafka.sh")
	fetch := exec.Command("bash", script, "fetch")
	if out, err := fetch.CombinedOutput(); err != nil {
		k.err = fmt.Errorf("kafka.sh fetch: %w\n%s", err, out)
		return
	}
	port, cport, err := freePort(), freePort(), error(nil)
	if port == 0 || cport == 0 {
		k.err = fmt.Errorf("no free loopback port")
		return
	}
	if k.dir, err = os.MkdirTemp("", "kbox-e2e-kafka-"); err != nil {
		k.err = err
		return
	}
	k.logs = &procLog{}
	k.exited = make(chan struct{})
	k.cmd = exec.Command("bash", script, "run", "--port", fmt.Sprint(port), "--controller-port", fmt.Sprint(cport), "--dir", k.dir)
	// A small heap and C1 only: the broker starts in a few seconds on
	// two cores and the tests send little.
	k.cmd.Env = append(os.Environ(), "KAFKA_JVM_OPTS=-Xms256m -Xmx768m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto")
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	start := time.Now()
	if err := k.cmd.Start(); err != nil {
		k.err = err
		return
	}
	go func() { // owned by the process: ends when it exits
		_ = k.cmd.Wait()
		close(k.exited)
	}()
	k.addr = fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitKafkaReady(k.addr, k.exited, 120*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(k.dir, "server.log"))
		k.err = fmt.Errorf("%w\n%s\nserver.log:\n%s", err, k.logs.tail(30), tailBytes(log, 4000))
		return
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: Apache Kafka peer on %s ready in %s\n", k.addr, time.Since(start).Round(time.Millisecond))
	}
}

// stop ends the broker (SIGTERM, then SIGKILL) and removes its directory.
func (k *kafkaPeer) stop() {
	if k.cmd == nil || k.cmd.Process == nil {
		return
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.exited:
	case <-time.After(20 * time.Second):
		_ = k.cmd.Process.Kill()
		<-k.exited
	}
	os.RemoveAll(k.dir)
}

// waitKafkaReady polls Metadata until the broker lists itself.
func waitKafkaReady(addr string, exited <-chan struct{}, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(rctx, cl)
		rcancel()
		if err == nil && len(resp.Brokers) > 0 {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("kafka exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("kafka not ready after %s: %v", d, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePort returns a loopback port that was free a moment ago, or 0.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
