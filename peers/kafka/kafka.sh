#!/usr/bin/env bash
# Apache Kafka 4.x, single-node KRaft, from its Maven Central jars: the
# reference broker of kbox's differential tests and benchmarks.
# Interface (documented in peers/README.md):
#
#   kafka.sh fetch                      put the jars in the cache; print the lib dir
#   kafka.sh classpath                  print a java -cp classpath (fetches first)
#   kafka.sh run --port P [--controller-port C] [--dir D] [--config k=v]...
#                                       format D and run the broker in the foreground
#                                       (exec java: SIGTERM stops it cleanly)
#   kafka.sh wait --port P [--timeout S] wait until 127.0.0.1:P accepts connections
#   kafka.sh tool MAINCLASS ARGS...     run a Kafka tool main class on the classpath
#
# Environment:
#   KAFKA_VERSION    default 4.1.1
#   KBOX_PEER_CACHE  cache root, default ${XDG_CACHE_HOME:-$HOME/.cache}/kbox
#   KAFKA_JVM_OPTS   JVM options, default "-Xms512m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20"
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="${KAFKA_VERSION:-4.1.1}"
cache="${KBOX_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kbox}"
home="$cache/kafka-$version"
libs="$home/libs"

die() { echo "kafka.sh: $*" >&2; exit 2; }

# pom_sum identifies the dependency set: a changed pom.xml refetches.
pom_sum() { cksum <"$here/pom.xml" | cut -d' ' -f1; }

fetch() {
	if [[ -f "$libs/.complete" && "$(cat "$libs/.complete")" == "$(pom_sum)" ]]; then
		return
	fi
	command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install -y maven) and a JDK 17+"
	command -v java >/dev/null || die "java not found: install a JDK 17+ (apt-get install -y openjdk-17-jdk-headless)"
	rm -rf "$libs"
	mkdir -p "$libs"
	echo "kafka.sh: fetching Apache Kafka $version jars into $libs" >&2
	mvn -B -q -f "$here/pom.xml" -Dkafka.version="$version" \
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" >&2 ||
		die "mvn dependency:copy-dependencies failed for Kafka $version"
	[[ -f "$libs/kafka_2.13-$version.jar" ]] || die "kafka_2.13-$version.jar missing after fetch"
	pom_sum >"$libs/.complete"
}

classpath() {
	fetch
	echo "$libs/*"
}

# random_cluster_id prints a KRaft cluster ID: 16 random bytes, URL-safe
# base64 without padding, as `kafka-storage random-uuid` prints; like
# Kafka's Uuid.randomUuid it never starts with '-', which the tool's
# argument parser would take for an option.
random_cluster_id() {
	local id
	while :; do
		id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
		[[ "$id" == -* ]] || break
	done
	echo "$id"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
		die "need --controller-port (python3 not found to pick a free one)"
}

run() {
	local port="" cport="" dir="" extra=()
	while [[ $# -gt 0 ]]; do
		case "$1" in
		--port) port="$2"; shift 2 ;;
		--controller-port) cport="$2"; shift 2 ;;
		--dir) dir="$2"; shift 2 ;;
		--config) extra+=("$2"); shift 2 ;;
		*) die "run: unknown argument $1" ;;
		esac
	done
	[[ -n "$port" ]] || die "run: --port is required"
	[[ -n "$cport" ]] || cport="$(free_port)"
	[[ -n "$dir" ]] || dir="$(mktemp -d -t kafka-peer-XXXXXX)"
	fetch
	mkdir -p "$dir"
	local props="$dir/server.properties"
	cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
	local kv
	for kv in "${extra[@]}"; do
		echo "$kv" >>"$props"
	done
	cat >"$dir/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
EOF
	local jvm=(${KAFKA_JVM_OPTS:--Xms512m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20})
	local common=("${jvm[@]}" -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$libs/*")
	if [[ ! -f "$dir/data/meta.properties" ]]; then
		java "${common[@]}" kafka.tools.StorageTool format -t "$(random_cluster_id)" -c "$props" >"$dir/format.log" 2>&1 ||
			{ cat "$dir/format.log" >&2; die "kafka-storage format failed"; }
	fi
	echo "kafka.sh: Apache Kafka $version on 127.0.0.1:$port (controller $cport), dir $dir" >&2
	exec java "${common[@]}" kafka.Kafka "$props"
}

wait_port() {
	local port="" timeout=60
	while [[ $# -gt 0 ]]; do
		case "$1" in
		--port) port="$2"; shift 2 ;;
		--timeout) timeout="$2"; shift 2 ;;
		*) die "wait: unknown argument $1" ;;
		esac
	done
	[[ -n "$port" ]] || die "wait: --port is required"
	local deadline=$((SECONDS + timeout))
	until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		((SECONDS < deadline)) || die "wait: 127.0.0.1:$port not accepting after ${timeout}s"
		sleep 0.2
	done
}

tool() {
	[[ $# -ge 1 ]] || die "tool: MAINCLASS required (e.g. org.apache.kafka.tools.ProducerPerformance)"
	fetch
	local jvm=(${KAFKA_JVM_OPTS:--Xmx512m})
	exec java "${jvm[@]}" -cp "$libs/*" "$@"
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
fetch) fetch; echo "$libs" ;;
classpath) classpath ;;
run) run "$@" ;;
wait) wait_port "$@" ;;
tool) tool "$@" ;;
*) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
