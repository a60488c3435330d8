#!/usr/bin/env bash
# Prepares the peers of the end-to-end tests that are not Go modules:
# compiles peers/java (Maven Central), fetches the Apache Kafka broker jars
# (peers/kafka/kafka.sh fetch) and installs kafkajs (npm ci). System tools
# (java, mvn, node, npm, kcat) come from the machine; .ci/run installs them
# with apt-get when missing. With CI=true a missing tool is an error;
# otherwise the step is skipped with a note (its tests then skip too).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing() {
	if [[ "${CI:-}" == "true" ]]; then
		echo "peers/install.sh: $1 not found (CI=true): $2" >&2
		exit 1
	fi
	echo "peers/install.sh: skipping: $1 not found; $2" >&2
}

if command -v mvn >/dev/null && command -v java >/dev/null; then
	echo "peers: building peers/java" >&2
	(cd "$here/java" && mvn -B -q package && touch target/kbox-e2e.stamp)
	echo "peers: fetching Apache Kafka jars" >&2
	"$here/kafka/kafka.sh" fetch >/dev/null
else
	missing "java/mvn" "apt-get install -y openjdk-17-jdk-headless maven"
fi

if command -v npm >/dev/null; then
	echo "peers: npm ci in peers/kafkajs" >&2
	(cd "$here/kafkajs" && npm ci --no-audit --no-fund --loglevel=error)
else
	missing "npm" "apt-get install -y nodejs npm"
fi

command -v kcat >/dev/null || missing "kcat" "apt-get install -y kcat"
