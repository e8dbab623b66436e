# shellcheck shell=bash
# scripts/lib/kafka.sh - the Apache Kafka broker of local clusters, tests and benchmarks.
#
# Source from bash (set -euo pipefail friendly: functions return non-zero, never exit).
#
#   kafka_version           the pinned version (read from tools/kafka/pom.xml, its one place)
#   kafka_home              the cache holding the broker's jars: CHAT_KAFKA_HOME, default
#                           ${XDG_CACHE_HOME:-~/.cache}/chatcluster/kafka-VERSION (libs/*.jar)
#   kafka_fetched           true when kafka_home holds a complete download of this version
#   kafka_fetch             downloads the broker from Maven Central with Maven's own client
#                           (mvn dependency:copy-dependencies on tools/kafka/pom.xml) into
#                           kafka_home; does nothing when it is there already
#   kafka_java              prints the java binary ($JAVA_HOME/bin/java, else java on PATH)
#   kafka_topic_specs       the topics of chatcluster as `chatctl topics` specs, with the
#                           settings of k8s/kafka/base/kafka-topics.yaml (replication and
#                           min.insync.replicas as one broker allows)
#   kafka_write_config KDIR PORT CONTROLLER_PORT
#                           writes KDIR/server.properties: one KRaft node (broker and
#                           controller) on 127.0.0.1, log dir KDIR/data, with
#                           CHAT_KAFKA_NETWORK_THREADS (default 1) network and
#                           CHAT_KAFKA_IO_THREADS (default 2) request handler threads
#   kafka_format KDIR       formats KDIR/data (a new cluster id) unless it is formatted already
#   kafka_jvm_opts KDIR     the JVM flags: bounded heap (CHAT_KAFKA_HEAP, default 512m), G1,
#                           heap touched at start (flat RSS), temporary files under KDIR/tmp,
#                           no hsperfdata file in /tmp
#   kafka_main_args KDIR    the java arguments after the JVM flags that run the broker
#
# scripts/lib/cluster.sh starts the broker through these (service "kafka").

KAFKA_LIB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KAFKA_POM=$KAFKA_LIB_REPO/tools/kafka/pom.xml

_kafka_err() {
    printf 'kafka: error: %s\n' "$*" >&2
    return 1
}

kafka_version() {
    local v
    v=$(sed -n 's:.*<kafka\.version>\([0-9A-Za-z.-]*\)</kafka\.version>.*:\1:p' "$KAFKA_POM")
    [ -n "$v" ] || {
        _kafka_err "no <kafka.version> in $KAFKA_POM"
        return 1
    }
    printf '%s\n' "$v"
}

kafka_home() {
    local v
    if [ -n "${CHAT_KAFKA_HOME:-}" ]; then
        printf '%s\n' "$CHAT_KAFKA_HOME"
        return 0
    fi
    v=$(kafka_version) || return 1
    printf '%s\n' "${XDG_CACHE_HOME:-$HOME/.cache}/chatcluster/kafka-$v"
}

# The marker names the version and the pom it came from: a changed pom downloads again.
_kafka_marker() {
    printf 'kafka %s pom %s\n' "$(kafka_version)" "$(cksum <"$KAFKA_POM" | cut -d' ' -f1)"
}

kafka_fetched() {
    local home
    home=$(kafka_home) || return 1
    [ -f "$home/complete" ] && [ "$(cat "$home/complete")" = "$(_kafka_marker)" ] &&
        compgen -G "$home/libs/kafka_2.13-*.jar" >/dev/null
}

kafka_fetch() {
    local home v tmp
    v=$(kafka_version) || return 1
    home=$(kafka_home) || return 1
    if kafka_fetched; then
        printf 'kafka: %s cached in %s\n' "$v" "$home"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || {
        _kafka_err "mvn not found (Debian package maven): run scripts/deps.sh"
        return 1
    }
    printf 'kafka: fetching Apache Kafka %s from Maven Central into %s\n' "$v" "$home"
    mkdir -p "$home" || return 1
    tmp=$home/libs.tmp
    rm -rf "$tmp"
    # -f with -DoutputDirectory: nothing is written next to the pom (packaging pom builds nothing)
    mkdir -p "$home/tmp" || return 1
    # Maven's JVM: temporary files in the cache, no hsperfdata directory in /tmp
    MAVEN_OPTS="${MAVEN_OPTS:-} -XX:-UsePerfData -Djava.io.tmpdir=$home/tmp" \
        mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" || {
        rm -rf "$tmp"
        _kafka_err "mvn could not fetch org.apache.kafka:kafka_2.13:$v"
        return 1
    }
    compgen -G "$tmp/kafka_2.13-$v.jar" >/dev/null || {
        rm -rf "$tmp"
        _kafka_err "the download holds no kafka_2.13-$v.jar"
        return 1
    }
    rm -rf "$home/libs" && mv "$tmp" "$home/libs" || return 1
    _kafka_marker >"$home/complete"
    printf 'kafka: %s ready (%s jars)\n' "$v" "$(find "$home/libs" -name '*.jar' | wc -l)"
}

kafka_java() {
    local j=java
    [ -n "${JAVA_HOME:-}" ] && j=$JAVA_HOME/bin/java
    command -v "$j" >/dev/null 2>&1 || {
        _kafka_err "no java ($j; Debian package openjdk-17-jre-headless): run scripts/deps.sh"
        return 1
    }
    printf '%s\n' "$j"
}

# Topic names follow the services' settings (CHAT_TOPIC_*). Partition counts are the contract
# (chat.messages is keyed by room: never change its count on a live cluster). chat.presence is
# keyed by room too and only the newest count of a room matters: compacted, and deleted after
# an hour; its segments roll every 10 minutes so both apply (a 7-day default segment would keep
# everything for a week). chat.rooms holds each room's settings (key = room) for ever: compacted
# only, a deleted room's tombstone removes it; chat.sanctions likewise holds every mute and ban in
# force (a lifted one's tombstone removes it). One broker: one replica, min.insync.replicas 1.
kafka_topic_specs() {
    local isr=min.insync.replicas=1
    printf '%s:12:cleanup.policy=delete:retention.ms=604800000:max.message.bytes=1048576:%s\n' \
        "${CHAT_TOPIC_MESSAGES:-chat.messages}" "$isr"
    printf '%s:12:cleanup.policy=delete:retention.ms=604800000:%s\n' \
        "${CHAT_TOPIC_EVENTS:-chat.events}" "$isr"
    printf '%s:3:cleanup.policy=compact,delete:retention.ms=3600000:segment.ms=600000:%s\n' \
        "${CHAT_TOPIC_PRESENCE:-chat.presence}" "$isr"
    printf '%s:3:cleanup.policy=compact:min.compaction.lag.ms=0:segment.ms=3600000:%s\n' \
        "${CHAT_TOPIC_ROOMS:-chat.rooms}" "$isr"
    printf '%s:3:cleanup.policy=compact:min.compaction.lag.ms=0:segment.ms=3600000:%s\n' \
        "${CHAT_TOPIC_SANCTIONS:-chat.sanctions}" "$isr"
}

kafka_write_config() {
    local kdir=$1 port=$2 cport=$3 net=${CHAT_KAFKA_NETWORK_THREADS:-1} io=${CHAT_KAFKA_IO_THREADS:-2}
    [[ $net =~ ^[1-9][0-9]?$ && $io =~ ^[1-9][0-9]?$ ]] || {
        _kafka_err "CHAT_KAFKA_NETWORK_THREADS and CHAT_KAFKA_IO_THREADS must be 1-99: '$net', '$io'"
        return 1
    }
    mkdir -p "$kdir/data" "$kdir/tmp" || return 1
    cat >"$kdir/server.properties.tmp" <<EOF || return 1
# generated by scripts/lib/kafka.sh: one KRaft node, broker and controller, on 127.0.0.1
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$kdir/data

# topics are created by chatctl topics with their own settings; nothing is auto-created
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1

# internal topics on one broker
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0

# A broker killed and restarted registers again only once the controller has expired its old
# registration: 5 s instead of 9 s (heartbeats every second) keeps a local kill-and-restart
# short; the rest of the outage behaves as in production.
broker.session.timeout.ms=5000
broker.heartbeat.interval.ms=1000

# sized for two cores and a 512 MiB heap: one network thread (one selector for every
# connection: fewer thread hand-offs per request; 2 network + 4 I/O threads cost the broker 10-20 %
# more CPU per message in many small rooms, docs/BENCHMARKS.md "The local broker's threads")
num.network.threads=$net
num.io.threads=$io
num.recovery.threads.per.data.dir=2
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.segment.bytes=268435456
log.retention.check.interval.ms=60000
EOF
    mv -f "$kdir/server.properties.tmp" "$kdir/server.properties"
}

# A Kafka cluster id: 16 random bytes, base64url without padding (what `random-uuid` prints).
# Like Kafka's Uuid.randomUuid(), never one starting with '-' (a command line would read it as
# an option).
_kafka_cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ $id == -* ]] || break
    done
    printf '%s\n' "$id"
}

# Checks CHAT_KAFKA_HEAP (call before kafka_jvm_opts: a process substitution hides failures).
kafka_heap_ok() {
    [[ ${CHAT_KAFKA_HEAP:-512m} =~ ^[0-9]+[mMgG]$ ]] || {
        _kafka_err "CHAT_KAFKA_HEAP must look like 512m or 1g: '${CHAT_KAFKA_HEAP:-}'"
        return 1
    }
}

kafka_jvm_opts() {
    local kdir=$1 heap=${CHAT_KAFKA_HEAP:-512m}
    kafka_heap_ok || return 1
    printf '%s\n' "-Xms$heap" "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
        -XX:+AlwaysPreTouch -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData -Djava.awt.headless=true \
        "-Djava.io.tmpdir=$kdir/tmp" \
        "-Dlog4j.configuration=file:$KAFKA_LIB_REPO/tools/kafka/log4j.properties"
}

kafka_main_args() {
    local kdir=$1 home
    home=$(kafka_home) || return 1
    printf '%s\n' -cp "$home/libs/*" kafka.Kafka "$kdir/server.properties"
}

kafka_format() {
    local kdir=$1 home java
    local -a opts
    [ -f "$kdir/data/meta.properties" ] && return 0
    home=$(kafka_home) || return 1
    java=$(kafka_java) || return 1
    kafka_heap_ok || return 1
    mapfile -t opts < <(kafka_jvm_opts "$kdir")
    # the storage tool needs little: a small heap starts faster
    "$java" "${opts[@]}" -Xms64m -Xmx256m -cp "$home/libs/*" kafka.tools.StorageTool format \
        -t "$(_kafka_cluster_id)" -c "$kdir/server.properties" --ignore-formatted
}
