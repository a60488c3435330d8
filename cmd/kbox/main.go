// Command kbox is a local event-streaming appliance: a Kafka-compatible
// broker on Raft and bbolt, with streaming SQL, connect and a Kubernetes
// exporter to follow.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kbox:", err)
		os.Exit(1)
	}
}
