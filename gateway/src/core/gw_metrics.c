/* gw_metrics.c - the gateway's Prometheus metrics. Event-loop thread (rendering reads atomics). */
#include "core/gw_metrics.h"

#include <stdio.h>

#include <unistd.h>

#include "core/gw.h"
#include "room/gw_recent.h"
#include "ws/gw_http.h"

int gw_metrics_render(struct gw *gw, struct chat_buf *out)
{
    struct gw_metrics *m = &gw->m;
    atomic_llong rss, kafka_outq, ready, rec_rooms, rec_events, rec_bytes, rec_evicted;
    struct gw_recent_stats rs;
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    atomic_init(&rss, (long long)resident * sysconf(_SC_PAGESIZE));
    atomic_init(&kafka_outq, gw->prod ? rd_kafka_outq_len(gw->prod) : 0);
    atomic_init(&ready, gw_http_ready(gw));
    gw_recent_get_stats(gw->recent, &rs);
    atomic_init(&rec_rooms, (long long)rs.rooms);
    atomic_init(&rec_events, (long long)rs.events);
    atomic_init(&rec_bytes, (long long)rs.bytes);
    atomic_init(&rec_evicted, (long long)rs.evicted_events);
    const struct chat_metric_def defs[] = {
        {"chat_gateway_ready", "1 when the node accepts traffic", CHAT_METRIC_GAUGE, &ready},
        {"chat_gateway_connections", "open WebSocket connections", CHAT_METRIC_GAUGE, &m->conns},
        {"chat_gateway_connections_authed", "connections of logged-in users", CHAT_METRIC_GAUGE,
         &m->conns_authed},
        {"chat_gateway_connections_total", "WebSocket connections accepted", CHAT_METRIC_COUNTER,
         &m->conns_total},
        {"chat_gateway_rooms", "rooms with local subscribers", CHAT_METRIC_GAUGE, &m->rooms},
        {"chat_gateway_recovery_rooms", "rooms whose recent events are kept (join since)",
         CHAT_METRIC_GAUGE, &rec_rooms},
        {"chat_gateway_recovery_events", "recent room events kept", CHAT_METRIC_GAUGE, &rec_events},
        {"chat_gateway_recovery_bytes", "bytes of recent room events kept (CHAT_RECOVERY_BYTES)",
         CHAT_METRIC_GAUGE, &rec_bytes},
        {"chat_gateway_recovery_evicted_total", "recent events dropped by the byte budget",
         CHAT_METRIC_COUNTER, &rec_evicted},
        {"chat_gateway_recovered_total", "joins with since answered recovered: true",
         CHAT_METRIC_COUNTER, &m->recovered},
        {"chat_gateway_recover_misses_total", "joins with since answered recovered: false",
         CHAT_METRIC_COUNTER, &m->recover_misses},
        {"chat_gateway_joins_refused_total",
         "joins refused: a restricted room without a valid grant, a removed member, an unknown "
         "room",
         CHAT_METRIC_COUNTER, &m->joins_refused},
        {"chat_gateway_rooms_known", "rooms whose settings this node holds (from chat.rooms)",
         CHAT_METRIC_GAUGE, &m->rooms_known},
        {"chat_gateway_sanctions", "mutes and bans this node knows (chat.sanctions, spam rule)",
         CHAT_METRIC_GAUGE, &m->sanctions},
        {"chat_gateway_sanctioned_total", "sends refused by a mute or a ban", CHAT_METRIC_COUNTER,
         &m->sanctioned},
        {"chat_gateway_kafka_replayed_total", "records consumed again, not sent twice",
         CHAT_METRIC_COUNTER, &m->kafka_replayed},
        {"chat_gateway_frames_in_total", "client frames received", CHAT_METRIC_COUNTER,
         &m->frames_in},
        {"chat_gateway_frames_bad_total", "client frames refused with an error",
         CHAT_METRIC_COUNTER, &m->frames_bad},
        {"chat_gateway_sends_total", "messages produced to Kafka", CHAT_METRIC_COUNTER, &m->sends},
        {"chat_gateway_acks_total", "sends acknowledged after Kafka delivery", CHAT_METRIC_COUNTER,
         &m->acks},
        {"chat_gateway_send_errors_total", "sends refused or failed", CHAT_METRIC_COUNTER,
         &m->send_errors},
        {"chat_gateway_rate_limited_total", "sends refused by the rate limit", CHAT_METRIC_COUNTER,
         &m->rate_limited},
        {"chat_gateway_idem_skipped_total",
         "sends with client_msg_id produced without dedupe (Redis out)", CHAT_METRIC_COUNTER,
         &m->idem_skipped},
        {"chat_gateway_spam_skipped_total",
         "sends not checked by the spam rule and slow mode (Redis out)", CHAT_METRIC_COUNTER,
         &m->spam_skipped},
        {"chat_gateway_spam_bans_total", "spam-rule chat bans imposed by this node",
         CHAT_METRIC_COUNTER, &m->spam_bans},
        {"chat_gateway_slow_mode_refused_total", "sends refused by a room's slow mode",
         CHAT_METRIC_COUNTER, &m->slow_refused},
        {"chat_gateway_idem_hits_total", "retries answered with the remembered ack (not produced)",
         CHAT_METRIC_COUNTER, &m->idem_hits},
        {"chat_gateway_reads_total", "read frames produced to chat.events", CHAT_METRIC_COUNTER,
         &m->reads},
        {"chat_gateway_kafka_records_total", "records consumed from Kafka", CHAT_METRIC_COUNTER,
         &m->kafka_in},
        {"chat_gateway_kafka_bad_records_total", "undecodable records skipped", CHAT_METRIC_COUNTER,
         &m->kafka_bad},
        {"chat_gateway_deliveries_total", "frames queued to local connections", CHAT_METRIC_COUNTER,
         &m->deliveries},
        {"chat_gateway_slow_consumer_closes_total", "connections closed for a full send queue",
         CHAT_METRIC_COUNTER, &m->slow_closes},
        {"chat_gateway_outq_dropped_total", "frames dropped for closing connections",
         CHAT_METRIC_COUNTER, &m->outq_dropped},
        {"chat_gateway_produce_queue_full_total", "sends refused: producer queue full",
         CHAT_METRIC_COUNTER, &m->produce_queue_full},
        {"chat_gateway_kafka_outq", "messages waiting in the producer", CHAT_METRIC_GAUGE,
         &kafka_outq},
        {"chat_gateway_redis_errors_total", "Redis errors and disconnects", CHAT_METRIC_COUNTER,
         &m->redis_errors},
        {"chat_gateway_redis_noscript_total",
         "script calls Redis did not know (its scripts flushed): that check skipped, the script "
         "loaded again",
         CHAT_METRIC_COUNTER, &m->redis_noscript},
        {"chat_gateway_presence_conflated_total",
         "presence counts that replaced an older count still queued on a connection",
         CHAT_METRIC_COUNTER, &m->conflated},
        {"chat_gateway_write_errors_total",
         "writes of queued frames that failed before the loop waited (the socket was gone)",
         CHAT_METRIC_COUNTER, &m->write_errors},
        {"chat_gateway_http_requests_total", "plain HTTP requests", CHAT_METRIC_COUNTER,
         &m->http_requests},
        {"chat_gateway_accepted_total", "TCP connections accepted", CHAT_METRIC_COUNTER,
         &m->accepted},
        {"chat_gateway_header_timeouts_total",
         "connections closed for sending nothing within CHAT_HEADER_TIMEOUT_S", CHAT_METRIC_COUNTER,
         &m->header_timeouts},
        {"chat_gateway_pings_total",
         "WebSocket pings sent to connections silent for CHAT_IDLE_PING_S", CHAT_METRIC_COUNTER,
         &m->pings},
        {"chat_gateway_idle_timeouts_total",
         "connections closed with 4009 idle_timeout: no frame or pong for CHAT_IDLE_TIMEOUT_S",
         CHAT_METRIC_COUNTER, &m->idle_timeouts},
        {"chat_gateway_accept_dropped_total",
         "connections dropped before their request: over CHAT_MAX_HANDSHAKES, or lws refused",
         CHAT_METRIC_COUNTER, &m->accept_dropped},
        {"chat_gateway_rss_bytes", "resident memory of the process", CHAT_METRIC_GAUGE, &rss},
        {"chat_gateway_send_check_seconds",
         "send frame read to produce: the client_msg_id claim and the spam and slow-mode script",
         CHAT_METRIC_HIST, &m->send_check_us},
        {"chat_gateway_send_ack_seconds", "produce to Kafka delivery report", CHAT_METRIC_HIST,
         &m->send_ack_us},
        {"chat_gateway_kafka_age_seconds", "produce timestamp to consumed on this node",
         CHAT_METRIC_HIST, &m->kafka_age_us},
        {"chat_gateway_deliver_seconds",
         "consumed on this node to written to a recipient's socket (one per delivery)",
         CHAT_METRIC_HIST, &m->deliver_us},
        {"chat_gateway_sessions_revoked_total", "connections made anonymous by a revocation",
         CHAT_METRIC_COUNTER, &m->sessions_revoked},
        {"chat_gateway_events_total", "chat.events records consumed", CHAT_METRIC_COUNTER,
         &m->events_in},
        {"chat_gateway_events_bad_total", "undecodable chat.events records skipped",
         CHAT_METRIC_COUNTER, &m->events_bad},
        {"chat_gateway_partition_changes_total",
         "partition count changes of the messages topic seen (the node then refuses to serve)",
         CHAT_METRIC_COUNTER, &m->partition_changes},
    };
    return chat_metrics_render(out, defs, sizeof(defs) / sizeof(defs[0]));
}
