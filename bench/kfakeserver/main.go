// Command kfakeserver runs franz-go's kfake as a separate process: one
// broker on a fixed loopback port, persisting to a data dir, until SIGINT
// or SIGTERM. It is the kfake column of `make bench` (see bench/README.md),
// so kfake is measured as a process (RSS, CPU, start-up) exactly as kbox is.
//
//	go run ./bench/kfakeserver -port 19092 -data-dir /tmp/kfake
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kfakeserver:", err)
		os.Exit(1)
	}
}

func run() error {
	port := flag.Int("port", 0, "loopback port to listen on (required)")
	dataDir := flag.String("data-dir", "", "persistence directory (required)")
	partitions := flag.Int("partitions", 1, "num.partitions for auto-created topics")
	syncWrites := flag.Bool("sync", false, "fsync every write")
	flag.Parse()
	if *port <= 0 || *dataDir == "" {
		flag.Usage()
		return fmt.Errorf("-port and -data-dir are required")
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(*port),
		kfake.DataDir(*dataDir),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions),
	}
	if *syncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	fmt.Println(c.ListenAddrs()[0])
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	<-sigs
	c.Close()
	return nil
}
