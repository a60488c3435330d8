// Package e2e holds kbox's end-to-end tests: each test builds nothing
// itself but starts the real kbox binary (built once by TestMain, with -race
// when the tests run with -race) as a child process on random loopback
// ports with a temporary data directory, and judges it with unmodified
// clients: franz-go, kcat (librdkafka), Java kafka-clients, kafkajs,
// segmentio/kafka-go and sarama. The differential tests (diff_test.go) send
// the same kmsg request sequences to kbox, to Apache Kafka 4.x (started
// from peers/kafka) and to kfake in-process, and compare the answers field
// by field; where kbox and Kafka disagree, Kafka is right.
//
// Peers that are not Go modules (kcat, java and mvn, node and npm) are
// installed by .ci/run. Without them a test skips with a message saying
// what to install; with CI=true a missing peer fails the test instead.
// `make peers` prepares the Maven and npm projects under peers/.
//
// The package has no non-test code; this file only documents it.
package e2e
