# kbox: `make run` starts a broker on the default ports, `make test` runs
# the whole suite (unit tests, then the end-to-end tests against the real
# binary with every installed peer). `make peers` prepares the Java and
# npm peers; .ci/run does that and more on a fresh machine.

GO      ?= go
BIN     ?= bin/kbox
ARGS    ?=
GOFILES  = $(shell git ls-files -co --exclude-standard '*.go')
UNIT     = $(shell $(GO) list ./... | grep -v '/e2e$$')

.PHONY: build run test test-unit test-e2e bench lint peers clean

## build: the kbox binary in bin/
build:
	$(GO) build -o $(BIN) ./cmd/kbox

## run: kbox up with the defaults (Kafka on 127.0.0.1:9092, data in ./.kbox); ARGS="--ephemeral" etc.
run: build
	./$(BIN) up $(ARGS)

## test: every package with -race, then the end-to-end tests
test: test-unit test-e2e

test-unit:
	$(GO) test -race -timeout 8m $(UNIT)

# The e2e tests build and start the kbox binary themselves; go test cannot
# see that its sources changed, hence -count=1.
test-e2e:
	$(GO) test -race -count=1 -timeout 8m ./e2e/

## bench: kbox beside kfake and Apache Kafka (bench/README.md); ARGS="-quick" for a smoke run;
## then a 3-node in-process cluster beside one node, and failover times (cluster/bench_test.go)
bench:
	$(GO) run ./bench $(ARGS)
	$(GO) test -run '^$$' -bench 'Cluster' -benchtime 2s ./cluster/

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt -l reports:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## peers: build peers/java, fetch the Apache Kafka jars, npm ci peers/kafkajs (kcat comes from apt)
peers:
	bash peers/install.sh

clean:
	rm -rf bin peers/java/target peers/kafkajs/node_modules
