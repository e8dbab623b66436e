#!/usr/bin/env bash
# scripts/deps.sh - installs the Debian 12 packages chatcluster needs to build, test and run
# locally (see /work/shared/STACK.md), then fetches the pinned Apache Kafka broker from Maven
# Central with Maven (tools/kafka/pom.xml, scripts/lib/kafka.sh) into its cache
# (CHAT_KAFKA_HOME, default ~/.cache/chatcluster/kafka-VERSION). Idempotent: when every package
# is installed and the broker is cached it does nothing, never calls apt and downloads nothing.
# Runs apt-get as root, or through sudo otherwise.
#   --check   only report what is missing (exit 1 when something is)
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config
    librdkafka-dev libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libpq-dev
    libhiredis-dev libjwt-dev libssl-dev libjansson-dev libcrypt-dev libcmocka-dev
    libmicrohttpd-dev
    postgresql redis-server nginx kcat curl clang-format git jq gnuplot-nox
    openjdk-17-jre-headless maven iproute2
    # tests/web (ctest it.web): the browser playwright-core drives (never downloads one)
    chromium
    # tests/web and tests/k8s (web.unit, it.web, k8s.manifests: registered only where node is):
    # node (npm too: below) and the manifests' YAML linter
    nodejs yamllint
    # scripts/fuzz.sh: clang with libFuzzer; its runtime (libclang_rt.fuzzer) is only a
    # Recommends of clang-14, so it is listed explicitly
    clang-14 libclang-rt-14-dev
)

# shellcheck source=scripts/lib/kafka.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/kafka.sh"

check_only=0
case ${1:-} in
--check) check_only=1 ;;
"") ;;
*)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

command -v dpkg-query >/dev/null 2>&1 || {
    echo "deps: dpkg-query not found: this script supports Debian 12 (or derivatives) only" >&2
    exit 1
}

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case $status in
    ii*) ;;
    *) missing+=("$p") ;;
    esac
done
# a NodeSource nodejs carries its own npm; Debian's nodejs needs the package npm
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PACKAGES[@]} packages are installed"
    if [ "$check_only" -eq 1 ]; then
        kafka_fetched || {
            echo "deps: missing: Apache Kafka $(kafka_version) in $(kafka_home)"
            exit 1
        }
        exit 0
    fi
    kafka_fetch
    exit 0
fi
echo "deps: missing: ${missing[*]}"
[ "$check_only" -eq 1 ] && exit 1

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "deps: not root and no sudo: install them by hand: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "deps: installed: ${missing[*]}"
kafka_fetch
