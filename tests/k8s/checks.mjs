// tests/k8s/checks.mjs - chatcluster-specific checks of rendered manifests (see validate.mjs).
// Each check returns a list of error strings; an empty list is a pass.

import net from "node:net";
import fs from "node:fs";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { parseSelector } from "./kustomize.mjs";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// ---- the services' configuration contract ------------------------------------------------------
// Keep in step with the config tables (libchat/include/chat/kafka.h CHAT_KAFKA_CFG_OPTS and each
// service's main.c); with CHAT_BIN set, validate.mjs compares these lists with each --help.

const COMMON = [
  "CHAT_LOG_LEVEL", "CHAT_KAFKA_BROKERS", "CHAT_KAFKA_LINGER_MS", "CHAT_KAFKA_FETCH_WAIT_MS",
  "CHAT_KAFKA_FETCH_MIN_BYTES",
  "CHAT_KAFKA_SESSION_TIMEOUT_MS", "CHAT_KAFKA_HEARTBEAT_MS", "CHAT_KAFKA_EXTRA",
  "CHAT_TOPIC_MESSAGES", "CHAT_TOPIC_EVENTS", "CHAT_TOPIC_PRESENCE", "CHAT_TOPIC_ROOMS",
  "CHAT_TOPIC_SANCTIONS",
];

// Settings the gateway and chat-api both read (a name here that one of them does not know is
// skipped, see checkSharedSettings): their effective values must be the same in both
// Deployments (checkSharedSettings), which k8s/ gets by reading them from one ConfigMap
// (chatcluster-shared) and one Secret key (chatcluster-secrets/CHAT_JWT_KEYS).
export const SHARED = [
  "CHAT_JWT_KEYS", "CHAT_JWT_ISSUER", "CHAT_ACCESS_TTL_S", "CHAT_TOKEN_MAX_TTL_S",
  "CHAT_MAX_FRAME", "CHAT_MAX_TEXT", "CHAT_MAX_ROOMS", "CHAT_RATE_PER_S", "CHAT_RATE_BURST",
  "CHAT_PRODUCE_TIMEOUT_MS",
  // rooms (libchat/include/chat/shared_cfg.h CHAT_ROOM_CFG_OPTS): chat-api signs room grants that
  // the gateways check; both dedupe sends by client_msg_id under the same Redis keys, and take
  // sends to unknown public rooms (ad hoc) or not alike
  "CHAT_GRANT_TTL_S", "CHAT_IDEM_TTL_S", "CHAT_ROOMS_ADHOC",
  // the spam rule (libchat/include/chat/spam.h CHAT_SPAM_CFG_OPTS): gateways and chat-api count
  // one user's messages in the same Redis keys and must ban alike (issue 13)
  "CHAT_SPAM_SAME", "CHAT_SPAM_LAST", "CHAT_SPAM_BAN_S", "CHAT_SPAM_BAN_MAX_S", "CHAT_SPAM_WINDOW_S",
];

export const SERVICES = {
  gateway: {
    binary: "chat-gateway",
    env: new Set([...COMMON, "CHAT_LISTEN_ADDR", "CHAT_PORT", "CHAT_NODE_NAME", "CHAT_JWT_KEYS",
      "CHAT_JWT_ISSUER", "CHAT_REDIS_HOST", "CHAT_REDIS_PORT", "CHAT_WEB_ROOT",
      // limits and timeouts (gateway/src/core/main.c)
      "CHAT_MAX_FRAME", "CHAT_MAX_TEXT", "CHAT_MAX_ROOMS", "CHAT_MAX_CONNS", "CHAT_OUTQ_MAX_MSGS",
      "CHAT_OUTQ_MAX_BYTES", "CHAT_RATE_PER_S", "CHAT_RATE_BURST", "CHAT_MAX_PENDING",
      "CHAT_PRODUCE_TIMEOUT_MS", "CHAT_IDLE_PING_S", "CHAT_IDLE_TIMEOUT_S",
      "CHAT_DRAIN_MS", "CHAT_MAX_ERRORS", "CHAT_FRAME_RATE_PER_S", "CHAT_FRAME_RATE_BURST",
      "CHAT_HEADER_TIMEOUT_S", "CHAT_MAX_HANDSHAKES", "CHAT_LISTEN_BACKLOG",
      "CHAT_PARTITION_CHECK_MS", "CHAT_RECOVERY_BYTES", "CHAT_RECOVERY_PER_ROOM",
      // tokens: verified here, issued by chat-api (issue 10: the gateway has no database)
      "CHAT_TOKEN_MAX_TTL_S", "CHAT_ACCESS_TTL_S", "CHAT_SESSION_WARN_S",
      // rooms (issue 11): grants, idempotent sends, rooms not in chat.rooms
      "CHAT_GRANT_TTL_S", "CHAT_IDEM_TTL_S", "CHAT_ROOMS_ADHOC",
      // the spam rule (issue 13)
      "CHAT_SPAM_SAME", "CHAT_SPAM_LAST", "CHAT_SPAM_BAN_S", "CHAT_SPAM_BAN_MAX_S", "CHAT_SPAM_WINDOW_S"]),
    required: ["CHAT_KAFKA_BROKERS", "CHAT_JWT_KEYS", "CHAT_LISTEN_ADDR", "CHAT_NODE_NAME"],
    port: { name: "http", key: "CHAT_PORT", def: 8080 },
    addrKey: "CHAT_LISTEN_ADDR",
    perPod: "CHAT_NODE_NAME",
    redis: true,
    // the binary's defaults (--help) of what the checks compute with: drain, memory budget
    defaults: { CHAT_DRAIN_MS: "5000", CHAT_MAX_CONNS: "100000", CHAT_RECOVERY_BYTES: "67108864" },
  },
  api: {
    binary: "chat-api",
    env: new Set([...COMMON, "CHAT_API_ADDR", "CHAT_API_PORT", "CHAT_API_THREADS", "CHAT_API_NICE", "CHAT_API_MAX_BODY",
      "CHAT_API_REQUEST_TIMEOUT_S", "CHAT_API_MAX_CONNS", "CHAT_NODE_NAME", "CHAT_PG_DSN", "CHAT_PG_TIMEOUT_MS",
      "CHAT_REDIS_HOST", "CHAT_REDIS_PORT", "CHAT_REDIS_TIMEOUT_MS", "CHAT_JWT_KEYS", "CHAT_JWT_ISSUER", "CHAT_PASSWORD_COST",
      "CHAT_ACCESS_TTL_S", "CHAT_TOKEN_MAX_TTL_S", "CHAT_REFRESH_TTL_S", "CHAT_REFRESH_GRACE_S",
      "CHAT_TRUSTED_PROXY_HOPS", "CHAT_AUTH_WINDOW_S", "CHAT_LOGIN_PER_IP", "CHAT_LOGIN_FAILS_PER_NET",
      "CHAT_LOGIN_FAILS_PER_USER", "CHAT_LOGIN_NET_BITS_V4", "CHAT_LOGIN_NET_BITS_V6", "CHAT_PASSWORD_PER_USER",
      "CHAT_NICK_PER_USER", "CHAT_LOGOUT_PER_USER", "CHAT_REGISTER_PER_IP", "CHAT_LOGIN_NAME_KEY",
      "CHAT_RETAIN_LOGINS_S", "CHAT_RETAIN_SESSIONS_S", "CHAT_PURGE_INTERVAL_S", "CHAT_PURGE_BATCH",
      "CHAT_MAX_FRAME", "CHAT_MAX_TEXT", "CHAT_MAX_ROOMS", "CHAT_RATE_PER_S", "CHAT_RATE_BURST",
      "CHAT_PRODUCE_TIMEOUT_MS", "CHAT_OUTBOX_BATCH", "CHAT_OUTBOX_POLL_MS",
      // REST send (api/src/routes/r_messages.c)
      "CHAT_PARTITION_CHECK_MS", "CHAT_REST_MAX_PENDING",
      // history (api/src/routes/r_history.c)
      "CHAT_HISTORY_MAX", "CHAT_RECENT_PER_ROOM",
      // deleting and reporting messages, system messages (issue 13, r_messages_mod.c, r_system.c)
      "CHAT_SYSTEM_JOINS_MAX", "CHAT_REPORT_REASON_MAX",
      // rooms, invites, grants and idempotent sends (issue 11)
      "CHAT_ROOM_CREATE_PER_USER", "CHAT_REDEEM_PER_USER", "CHAT_EDIT_PER_USER", "CHAT_PINS_MAX", "CHAT_PIN_PER_USER", "CHAT_ROOM_MEMBER_LIMIT",
      "CHAT_ROOM_MEMBER_LIMIT_MAX", "CHAT_GRANT_TTL_S", "CHAT_IDEM_TTL_S", "CHAT_ROOMS_ADHOC",
      // the spam rule (issue 13)
      "CHAT_SPAM_SAME", "CHAT_SPAM_LAST", "CHAT_SPAM_BAN_S", "CHAT_SPAM_BAN_MAX_S", "CHAT_SPAM_WINDOW_S"]),
    required: ["CHAT_KAFKA_BROKERS", "CHAT_JWT_KEYS", "CHAT_API_ADDR", "CHAT_NODE_NAME", "CHAT_PG_DSN"],
    port: { name: "http", key: "CHAT_API_PORT", def: 8081 },
    addrKey: "CHAT_API_ADDR",
    perPod: "CHAT_NODE_NAME",
    redis: true,
    postgres: true,
    // the binary's defaults (--help) of what the checks compute with: shutdown bound, connections
    defaults: { CHAT_PG_TIMEOUT_MS: "5000", CHAT_REDIS_TIMEOUT_MS: "1000", CHAT_PRODUCE_TIMEOUT_MS: "5000",
      CHAT_PURGE_INTERVAL_S: "3600", CHAT_API_THREADS: "4" },
  },
  persister: {
    binary: "chat-persister",
    env: new Set([...COMMON, "CHAT_PG_DSN", "CHAT_METRICS_ADDR", "CHAT_METRICS_PORT", "CHAT_BATCH_MAX",
      "CHAT_BATCH_MS", "CHAT_PERSISTER_FETCH_MIN_BYTES", "CHAT_PERSISTER_GROUP", "CHAT_PARTITION_AHEAD_DAYS", "CHAT_MIGRATE_ONLY",
      "CHAT_PARTITION_LOCK_TIMEOUT_MS", "CHAT_PARTITION_RETRY_MS", "CHAT_PG_STATEMENT_TIMEOUT_MS",
      "CHAT_PG_LOCK_TIMEOUT_MS", "CHAT_PG_KEEPALIVES_IDLE_S", "CHAT_PG_KEEPALIVES_INTERVAL_S",
      "CHAT_PG_KEEPALIVES_COUNT", "CHAT_PG_TCP_USER_TIMEOUT_MS", "CHAT_PG_HANG_TIMEOUT_MS",
      "CHAT_READY_STUCK_WRITE_MS",
      "CHAT_COMMIT_INTERVAL_MS", "CHAT_HEALTH_DEADLINE_MS", "CHAT_HEALTH_MAX_CONNS",
      "CHAT_PARTITION_CHECK_MS",
      // the Redis recent cache and the chat.events consumer (issue 11: history, read markers)
      "CHAT_REDIS_HOST", "CHAT_REDIS_PORT", "CHAT_REDIS_TIMEOUT_MS", "CHAT_RECENT_PER_ROOM",
      "CHAT_RECENT_PER_USER", "CHAT_PERSISTER_EVENTS_GROUP"]),
    required: ["CHAT_KAFKA_BROKERS", "CHAT_PG_DSN", "CHAT_METRICS_ADDR"],
    port: { name: "metrics", key: "CHAT_METRICS_PORT", def: 9101 },
    addrKey: "CHAT_METRICS_ADDR",
    redis: true,
    postgres: true,
  },
  presence: {
    binary: "chat-presence",
    env: new Set([...COMMON, "CHAT_REDIS_HOST", "CHAT_REDIS_PORT", "CHAT_METRICS_ADDR", "CHAT_METRICS_PORT",
      "CHAT_PRESENCE_INTERVAL_MS", "CHAT_PRESENCE_LEASE_MS", "CHAT_INSTANCE_ID"]),
    required: ["CHAT_KAFKA_BROKERS", "CHAT_METRICS_ADDR", "CHAT_INSTANCE_ID"],
    port: { name: "metrics", key: "CHAT_METRICS_PORT", def: 9102 },
    addrKey: "CHAT_METRICS_ADDR",
    perPod: "CHAT_INSTANCE_ID",
    redis: true,
  },
};

// Only these services may reach PostgreSQL (CHAT_PG_DSN, egress to 5432); the rest talk to Kafka
// and Redis only. Public traffic reaches only the gateway and chat-api, through the ingress
// controller's namespace; Prometheus (its namespace) scrapes every service.
export const PG_CLIENTS = Object.keys(SERVICES).filter((k) => SERVICES[k].postgres);
const PUBLIC_SERVICES = new Set(["gateway", "api"]);
const INGRESS_NS = "ingress-nginx";
const PROMETHEUS_NS = "monitoring";
const PG_PORT = 5432;

export const KNOWN_ENV = new Set(Object.values(SERVICES).flatMap((s) => [...s.env]));

// Must only ever come from a Secret.
const SECRET_ONLY = new Set(["CHAT_JWT_KEYS", "CHAT_PG_DSN", "CHAT_LOGIN_NAME_KEY"]);

// Integer options and their ranges (as in the config tables; ports 0 = "any" is useless here).
const INT_RANGES = {
  CHAT_KAFKA_LINGER_MS: [0, 1000],
  CHAT_KAFKA_FETCH_WAIT_MS: [1, 10000],
  CHAT_KAFKA_FETCH_MIN_BYTES: [1, 52428800],
  CHAT_KAFKA_SESSION_TIMEOUT_MS: [1000, 300000],
  CHAT_KAFKA_HEARTBEAT_MS: [100, 60000],
  CHAT_PORT: [1, 65535],
  CHAT_API_PORT: [1, 65535],
  CHAT_API_THREADS: [1, 256],
  CHAT_API_NICE: [0, 19],
  CHAT_RECOVERY_BYTES: [0, 1073741824],
  CHAT_RECOVERY_PER_ROOM: [1, 100000],
  CHAT_API_MAX_BODY: [64, 16777216],
  CHAT_API_REQUEST_TIMEOUT_S: [1, 3600],
  CHAT_API_MAX_CONNS: [1, 1000000],
  CHAT_OUTBOX_BATCH: [1, 10000],
  CHAT_OUTBOX_POLL_MS: [50, 60000],
  CHAT_REDIS_TIMEOUT_MS: [50, 60000],
  CHAT_RECENT_PER_ROOM: [0, 100000],
  CHAT_RECENT_PER_USER: [0, 100000],
  CHAT_HISTORY_MAX: [1, 1000],
  CHAT_ROOM_CREATE_PER_USER: [1, 1000000],
  CHAT_REDEEM_PER_USER: [1, 1000000],
  CHAT_EDIT_PER_USER: [1, 1000000],
  CHAT_PINS_MAX: [1, 1000],
  CHAT_PIN_PER_USER: [1, 1000000],
  CHAT_ROOM_MEMBER_LIMIT: [2, 1000000],
  CHAT_ROOM_MEMBER_LIMIT_MAX: [2, 10000000],
  CHAT_GRANT_TTL_S: [30, 3600],
  CHAT_IDEM_TTL_S: [60, 604800],
  CHAT_ROOMS_ADHOC: [0, 1],
  CHAT_MAX_FRAME: [256, 1048576],
  CHAT_MAX_TEXT: [1, 100000],
  CHAT_MAX_ROOMS: [1, 10000],
  CHAT_MAX_CONNS: [1, 10000000],
  CHAT_RATE_PER_S: [1, 1000000],
  CHAT_RATE_BURST: [1, 1000000],
  CHAT_PRODUCE_TIMEOUT_MS: [100, 300000],
  CHAT_DRAIN_MS: [0, 600000],
  CHAT_IDLE_PING_S: [1, 3600],
  CHAT_IDLE_TIMEOUT_S: [2, 7200],
  CHAT_HEADER_TIMEOUT_S: [1, 60],
  CHAT_REST_MAX_PENDING: [1, 10000],
  CHAT_SYSTEM_JOINS_MAX: [0, 1000000],
  CHAT_REPORT_REASON_MAX: [1, 10000],
  CHAT_PARTITION_CHECK_MS: [100, 3600000],
  CHAT_MAX_HANDSHAKES: [1, 10000000],
  CHAT_LISTEN_BACKLOG: [1, 65535],
  CHAT_REDIS_PORT: [1, 65535],
  CHAT_METRICS_PORT: [1, 65535],
  CHAT_BATCH_MAX: [1, 100000],
  CHAT_BATCH_MS: [1, 10000],
  CHAT_PERSISTER_FETCH_MIN_BYTES: [1, 1048576],
  CHAT_PARTITION_AHEAD_DAYS: [0, 60],
  CHAT_PRESENCE_INTERVAL_MS: [50, 60000],
  CHAT_PRESENCE_LEASE_MS: [200, 600000],
  CHAT_PG_TIMEOUT_MS: [500, 600000],
  CHAT_PASSWORD_COST: [1, 11],
  CHAT_ACCESS_TTL_S: [30, 86400],
  CHAT_TOKEN_MAX_TTL_S: [30, 2592000],
  CHAT_REFRESH_TTL_S: [300, 31536000],
  CHAT_SESSION_WARN_S: [1, 3600],
  CHAT_AUTH_WINDOW_S: [1, 86400],
  CHAT_TRUSTED_PROXY_HOPS: [0, 16],
  CHAT_LOGIN_PER_IP: [1, 1000000],
  CHAT_LOGIN_FAILS_PER_NET: [1, 1000000],
  CHAT_LOGIN_FAILS_PER_USER: [1, 1000000],
  CHAT_LOGIN_NET_BITS_V4: [8, 32],
  CHAT_LOGIN_NET_BITS_V6: [16, 128],
  CHAT_PASSWORD_PER_USER: [1, 1000000],
  CHAT_NICK_PER_USER: [1, 1000000],
  CHAT_LOGOUT_PER_USER: [1, 1000000],
  CHAT_REGISTER_PER_IP: [1, 1000000],
  CHAT_REFRESH_GRACE_S: [0, 300],
  CHAT_RETAIN_LOGINS_S: [3600, 315360000],
  CHAT_RETAIN_SESSIONS_S: [3600, 315360000],
  CHAT_PURGE_INTERVAL_S: [0, 86400],
  CHAT_PURGE_BATCH: [10, 100000],
};
const ENUMS = { CHAT_LOG_LEVEL: ["debug", "info", "warn", "error"] };

// The Kafka contract (chat.messages keyed by room; partition counts are part of the protocol).
// chat.rooms (keyed by room) holds every room's settings and is compacted, never deleted.
// chat.sanctions (keyed by "USER ROOM KIND") holds every mute and ban in force, the same way.
export const TOPICS = { "chat.messages": 12, "chat.events": 12, "chat.presence": 3, "chat.rooms": 3,
  "chat.sanctions": 3 };
const TOPIC_KEYS = { CHAT_TOPIC_MESSAGES: "chat.messages", CHAT_TOPIC_EVENTS: "chat.events",
  CHAT_TOPIC_PRESENCE: "chat.presence", CHAT_TOPIC_ROOMS: "chat.rooms",
  CHAT_TOPIC_SANCTIONS: "chat.sanctions" };
// Topics that must be compacted only: a time or size limit would delete the state they hold.
const COMPACT_ONLY = ["chat.rooms", "chat.sanctions"];

// Secrets the manifests reference but do not create: created by the operator (README.md) or by an
// operator of the cluster (the CloudNativePG "<cluster>-app" Secret is handled separately).
const EXTERNAL_SECRETS = {
  "chatcluster-secrets": ["CHAT_JWT_KEYS", "CHAT_PG_DSN", "CHAT_LOGIN_NAME_KEY"],
  "chatcluster-kafka-user": ["password"],
  "chatcluster-kafka-ca": ["ca.crt"],
  "chatcluster-tls": ["tls.crt", "tls.key"],
};
const CNPG_APP_KEYS = ["uri", "host", "port", "dbname", "user", "username", "password", "pgpass", "jdbc-uri"];

const IMAGE_RE = /^ghcr\.io\/chatcluster\/chatcluster(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$/;
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet"]);

// ---- helpers -----------------------------------------------------------------------------------

const nm = (d) => `${d.kind}/${d.metadata?.name}`;

function selects(selector, labels) {
  if (!selector) return false;
  labels = labels || {};
  for (const [k, v] of Object.entries(selector.matchLabels || {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions || []) {
    const has = Object.hasOwn(labels, e.key);
    const v = labels[e.key];
    if (e.operator === "In" && !(has && e.values.includes(v))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(v)) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return Object.keys(selector.matchLabels || {}).length + (selector.matchExpressions || []).length > 0;
}

function selectsMap(map, labels) {
  return selects({ matchLabels: map }, labels);
}

function containersOf(w) {
  const s = w.spec?.template?.spec || {};
  return [...(s.initContainers || []), ...(s.containers || [])];
}

function portsOf(w) {
  return containersOf(w).flatMap((c) => c.ports || []);
}

function portExists(ports, ref) {
  if (typeof ref === "number") return ports.some((p) => p.containerPort === ref);
  if (/^\d+$/.test(String(ref))) return ports.some((p) => p.containerPort === Number(ref));
  return ports.some((p) => p.name === ref);
}

function resolvePort(ports, ref) {
  const p = ports.find((x) => (typeof ref === "number" ? x.containerPort === ref : x.name === ref));
  return p ? p.containerPort : null;
}

function serviceOf(w) {
  const comp = w.spec?.template?.metadata?.labels?.["app.kubernetes.io/component"];
  return Object.hasOwn(SERVICES, comp) ? comp : null;
}

// Effective environment of a container: name -> {value?, from: "configmap:NAME"|"env", entry?}.
function effectiveEnv(c, cms) {
  const env = new Map();
  for (const ef of c.envFrom || []) {
    const name = ef.configMapRef?.name;
    const cm = name && cms.get(name);
    if (!cm) continue;
    for (const [k, v] of Object.entries(cm.data || {})) env.set(k, { value: v, from: `configmap:${name}` });
  }
  for (const e of c.env || []) env.set(e.name, { value: e.value, from: "env", entry: e });
  return env;
}

// The effective integer value of setting key for workload w: its env (a value or a ConfigMap key)
// or its ConfigMaps, else the binary's default (SERVICES[svc].defaults, checked against --help
// when CHAT_BIN is set). NaN when neither is known.
function setting(w, cms, key) {
  const svc = serviceOf(w);
  const e = effectiveEnv(w.spec.template.spec.containers[0], cms).get(key);
  const ck = e?.entry?.valueFrom?.configMapKeyRef;
  const v = ck ? cms.get(ck.name)?.data?.[ck.key] : e?.value;
  return Number(v ?? SERVICES[svc]?.defaults?.[key] ?? NaN);
}

// A Kubernetes memory quantity ("1Gi", "512Mi", "2G", "1048576") in bytes; NaN when unparsable.
export function quantityBytes(q) {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q ?? "").trim());
  if (!m) return NaN;
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? unit[m[2]] : 1);
}


// ---- the checks --------------------------------------------------------------------------------

function checkNamespaces(t, docs) {
  const errs = [];
  for (const d of docs) {
    if (d.kind === "Namespace") {
      if (d.metadata.name !== t.namespace) errs.push(`Namespace ${d.metadata.name}, expected ${t.namespace}`);
    } else if (d.metadata?.namespace !== t.namespace) {
      errs.push(`${nm(d)} in namespace "${d.metadata?.namespace}", expected "${t.namespace}"`);
    }
  }
  return errs;
}

function checkValue(key, value, where, errs) {
  if (Object.hasOwn(INT_RANGES, key)) {
    const [lo, hi] = INT_RANGES[key];
    if (!/^-?\d+$/.test(String(value)) || Number(value) < lo || Number(value) > hi) {
      errs.push(`${where}: ${key}="${value}" is not an integer in [${lo}, ${hi}]`);
    }
  }
  if (Object.hasOwn(ENUMS, key) && !ENUMS[key].includes(value)) {
    errs.push(`${where}: ${key}="${value}" is not one of ${ENUMS[key].join("|")}`);
  }
  if (value === "" && (key === "CHAT_KAFKA_BROKERS" || Object.hasOwn(INT_RANGES, key))) {
    errs.push(`${where}: ${key} is empty (leave it out to get the default)`);
  }
}

function checkConfigMaps(docs) {
  const errs = [];
  for (const cm of docs.filter((d) => d.kind === "ConfigMap")) {
    if (cm.binaryData) errs.push(`${nm(cm)}: binaryData not expected`);
    for (const [k, v] of Object.entries(cm.data || {})) {
      if (!KNOWN_ENV.has(k)) errs.push(`${nm(cm)}: key ${k} is not a known CHAT_* setting`);
      if (SECRET_ONLY.has(k)) errs.push(`${nm(cm)}: ${k} is a secret and must come from a Secret`);
      if (typeof v !== "string") errs.push(`${nm(cm)}: ${k} must be a string`);
      checkValue(k, v, nm(cm), errs);
    }
  }
  return errs;
}

function checkServiceEnv(docs) {
  const errs = [];
  const cms = new Map(docs.filter((d) => d.kind === "ConfigMap").map((d) => [d.metadata.name, d]));
  for (const w of docs.filter((d) => WORKLOAD_KINDS.has(d.kind))) {
    const svc = serviceOf(w);
    if (!svc) continue;
    const spec = SERVICES[svc];
    const c = w.spec.template.spec.containers[0];
    const env = effectiveEnv(c, cms);
    const where = `${nm(w)}`;
    for (const ef of c.envFrom || []) {
      if (ef.secretRef) errs.push(`${where}: envFrom secretRef hides which secrets are used; use env secretKeyRef`);
      if (ef.prefix) errs.push(`${where}: envFrom prefix not expected`);
    }
    const defined = new Set();
    for (const [k, e] of env) {
      if (k.startsWith("CHAT_") && !spec.env.has(k)) {
        errs.push(`${where}: ${k} (from ${e.from}) is not a setting of ${spec.binary}`);
      }
      if (SECRET_ONLY.has(k) && !e.entry?.valueFrom?.secretKeyRef) errs.push(`${where}: ${k} must use secretKeyRef`);
      if (e.value !== undefined && k.startsWith("CHAT_")) checkValue(k, e.value, where, errs);
    }
    for (const e of c.env || []) {
      for (const m of String(e.value ?? "").matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
        if (!defined.has(m[1]) && !(env.get(m[1])?.from || "").startsWith("configmap:")) {
          errs.push(`${where}: ${e.name} references $(${m[1]}) which is not defined before it`);
        }
      }
      defined.add(e.name);
      if (!e.name.startsWith("CHAT_")) {
        const used = (c.env || []).some((o) => String(o.value ?? "").includes(`$(${e.name})`));
        if (!used) errs.push(`${where}: env ${e.name} is neither a CHAT_* setting nor referenced by one`);
      }
      const n = [e.value !== undefined, e.valueFrom !== undefined].filter(Boolean).length;
      if (n !== 1) errs.push(`${where}: env ${e.name} needs exactly one of value / valueFrom`);
    }
    for (const r of spec.required) if (!env.has(r)) errs.push(`${where}: required ${r} is not set`);
    const addr = env.get(spec.addrKey)?.value;
    if (addr !== undefined && addr !== "0.0.0.0" && addr !== "::") {
      errs.push(`${where}: ${spec.addrKey}=${addr}: the kubelet and Prometheus reach the pod IP, bind 0.0.0.0`);
    }
    if (spec.perPod && (w.spec.replicas ?? 1) > 0) {
      const fr = env.get(spec.perPod)?.entry?.valueFrom?.fieldRef?.fieldPath;
      if (fr !== "metadata.name") errs.push(`${where}: ${spec.perPod} must be unique per pod: fieldRef metadata.name`);
    }
    const hb = Number(env.get("CHAT_KAFKA_HEARTBEAT_MS")?.value ?? 1000);
    const st = Number(env.get("CHAT_KAFKA_SESSION_TIMEOUT_MS")?.value ?? 10000);
    if (hb * 3 > st) errs.push(`${where}: CHAT_KAFKA_HEARTBEAT_MS ${hb} should be <= 1/3 of the session timeout ${st}`);
    if (env.has("CHAT_PG_DSN") && !PG_CLIENTS.includes(svc)) {
      errs.push(`${where}: CHAT_PG_DSN: only ${PG_CLIENTS.map((k) => SERVICES[k].binary).join(" and ")} ` +
        "may have database access");
    }
    if (PUBLIC_SERVICES.has(svc) && spec.env.has("CHAT_TRUSTED_PROXY_HOPS")) {
      // Behind ingress-nginx the TCP peer is the controller pod, so the client address (login
      // history, per-IP attempt limits) is the X-Forwarded-For entry it sets (one entry with
      // compute-full-forwarded-for off, k8s/README.md "Client address"): at least one hop.
      const hops = Number(env.get("CHAT_TRUSTED_PROXY_HOPS")?.value ?? 0);
      if (hops < 1 && docs.some((d) => d.kind === "Ingress")) {
        errs.push(`${where}: CHAT_TRUSTED_PROXY_HOPS is 0: behind the Ingress every client would ` +
          "share the ingress controller's address (one hop: ingress-nginx)");
      }
    }
    const access = Number(env.get("CHAT_ACCESS_TTL_S")?.value ?? 900);
    if (svc === "gateway") {
      const warn = Number(env.get("CHAT_SESSION_WARN_S")?.value ?? 60);
      if (warn >= access) {
        errs.push(`${where}: CHAT_SESSION_WARN_S ${warn} >= CHAT_ACCESS_TTL_S ${access}: every socket is warned at once`);
      }
    }
    // Rooms must exist (created through chat-api, published on chat.rooms); 1 is for the local
    // test cluster only: any unknown public room id could be joined and sent to.
    const adhoc = env.get("CHAT_ROOMS_ADHOC");
    if (spec.env.has("CHAT_ROOMS_ADHOC") && adhoc && (adhoc.value ?? "") !== "0") {
      errs.push(`${where}: CHAT_ROOMS_ADHOC must be 0 (the default) in Kubernetes: rooms are created through chat-api`);
    }
    if (svc === "api") {
      const refresh = Number(env.get("CHAT_REFRESH_TTL_S")?.value ?? 2592000);
      if (refresh <= access) errs.push(`${where}: CHAT_REFRESH_TTL_S ${refresh} <= CHAT_ACCESS_TTL_S ${access}`);
      const ml = Number(env.get("CHAT_ROOM_MEMBER_LIMIT")?.value ?? 50);
      const mlMax = Number(env.get("CHAT_ROOM_MEMBER_LIMIT_MAX")?.value ?? 10000);
      if (ml > mlMax) errs.push(`${where}: CHAT_ROOM_MEMBER_LIMIT ${ml} > CHAT_ROOM_MEMBER_LIMIT_MAX ${mlMax}`);
    }
    // With CloudNativePG the DSN comes from the operator's "<cluster>-app" Secret and
    // chatcluster-secrets holds only CHAT_JWT_KEYS (README.md): a service still reading
    // chatcluster-secrets/CHAT_PG_DSN was left out of the component's patches.
    const cnpg = docs.filter((d) => d.kind === "Cluster" && d.apiVersion.startsWith("postgresql.cnpg.io/"))
      .map((d) => `${d.metadata.name}-app`);
    const dsnRef = env.get("CHAT_PG_DSN")?.entry?.valueFrom?.secretKeyRef;
    if (cnpg.length && dsnRef?.name === "chatcluster-secrets") {
      errs.push(`${where}: CHAT_PG_DSN from chatcluster-secrets although CloudNativePG renders; ` +
        `expected Secret ${cnpg.join(" or ")} (components/cloudnative-pg patch)`);
    }
    if (svc === "presence") {
      const iv = Number(env.get("CHAT_PRESENCE_INTERVAL_MS")?.value ?? 1000);
      const lease = Number(env.get("CHAT_PRESENCE_LEASE_MS")?.value ?? 3000);
      if (lease < 2 * iv) errs.push(`${where}: CHAT_PRESENCE_LEASE_MS ${lease} < 2 x interval ${iv}: leadership flaps`);
    }
  }
  return errs;
}

function checkPorts(docs) {
  const errs = [];
  const cms = new Map(docs.filter((d) => d.kind === "ConfigMap").map((d) => [d.metadata.name, d]));
  for (const w of docs.filter((d) => WORKLOAD_KINDS.has(d.kind))) {
    const ports = portsOf(w);
    const names = ports.map((p) => p.name).filter(Boolean);
    if (new Set(names).size !== names.length) errs.push(`${nm(w)}: duplicate port names`);
    for (const c of containersOf(w)) {
      for (const kind of ["livenessProbe", "readinessProbe", "startupProbe"]) {
        const p = c[kind];
        if (!p) continue;
        const ref = p.httpGet?.port ?? p.tcpSocket?.port ?? p.grpc?.port;
        if (ref !== undefined && !portExists(c.ports || [], ref)) {
          errs.push(`${nm(w)} ${c.name}.${kind}: port ${ref} is not a port of the container`);
        }
      }
      if (c.lifecycle?.preStop?.httpGet && !portExists(c.ports || [], c.lifecycle.preStop.httpGet.port)) {
        errs.push(`${nm(w)} ${c.name}.preStop: undeclared port`);
      }
    }
    const ann = w.spec.template.metadata?.annotations || {};
    if (ann["prometheus.io/port"] !== undefined && !portExists(ports, Number(ann["prometheus.io/port"]))) {
      errs.push(`${nm(w)}: prometheus.io/port ${ann["prometheus.io/port"]} is not a container port`);
    }
    const svc = serviceOf(w);
    if (!svc) continue;
    const spec = SERVICES[svc];
    const c = w.spec.template.spec.containers[0];
    const env = effectiveEnv(c, cms);
    const want = Number(env.get(spec.port.key)?.value ?? spec.port.def);
    const have = resolvePort(c.ports || [], spec.port.name);
    if (have === null) errs.push(`${nm(w)}: no container port named "${spec.port.name}"`);
    else if (have !== want) errs.push(`${nm(w)}: port "${spec.port.name}" is ${have} but ${spec.port.key} is ${want}`);
    if (ann["prometheus.io/scrape"] !== "true") errs.push(`${nm(w)}: prometheus.io/scrape annotation missing`);
    if (Number(ann["prometheus.io/port"]) !== want) errs.push(`${nm(w)}: prometheus.io/port must be ${want}`);
    if ((ann["prometheus.io/path"] ?? "/metrics") !== "/metrics") errs.push(`${nm(w)}: prometheus.io/path must be /metrics`);
    const lp = c.livenessProbe?.httpGet;
    const rp = c.readinessProbe?.httpGet;
    if (lp?.path !== "/healthz") errs.push(`${nm(w)}: livenessProbe must GET /healthz`);
    if (rp?.path !== "/readyz") errs.push(`${nm(w)}: readinessProbe must GET /readyz`);
    if (lp && resolvePort(c.ports || [], lp.port) !== want) errs.push(`${nm(w)}: livenessProbe not on ${spec.port.key}`);
    if (rp && resolvePort(c.ports || [], rp.port) !== want) errs.push(`${nm(w)}: readinessProbe not on ${spec.port.key}`);
  }
  return errs;
}

function checkSelectors(docs) {
  const errs = [];
  const workloads = docs.filter((d) => WORKLOAD_KINDS.has(d.kind));
  const byName = (kind, name) => docs.find((d) => d.kind === kind && d.metadata.name === name);
  for (const w of workloads) {
    const labels = w.spec.template.metadata?.labels;
    if (!selects(w.spec.selector, labels)) errs.push(`${nm(w)}: selector does not match its pod template labels`);
    for (const o of workloads) {
      if (o !== w && selects(w.spec.selector, o.spec.template.metadata?.labels)) {
        errs.push(`${nm(w)}: selector also matches the pods of ${nm(o)}`);
      }
    }
    for (const tsc of w.spec.template.spec.topologySpreadConstraints || []) {
      if (!selects(tsc.labelSelector, labels)) errs.push(`${nm(w)}: topologySpreadConstraint ${tsc.topologyKey} does not select its own pods`);
    }
    for (const [k, v] of Object.entries(w.metadata.labels || {})) {
      if (labels?.[k] !== undefined && labels[k] !== v) errs.push(`${nm(w)}: label ${k} differs from its pods'`);
    }
  }
  for (const s of docs.filter((d) => d.kind === "Service")) {
    const sel = s.spec.selector;
    const targets = workloads.filter((w) => selectsMap(sel, w.spec.template.metadata?.labels));
    if (!targets.length) {
      errs.push(`${nm(s)}: selector matches no pods`);
      continue;
    }
    for (const p of s.spec.ports || []) {
      for (const w of targets) {
        if (!portExists(portsOf(w), p.targetPort ?? p.port)) errs.push(`${nm(s)}: targetPort ${p.targetPort} not a port of ${nm(w)}`);
      }
    }
  }
  for (const pdb of docs.filter((d) => d.kind === "PodDisruptionBudget")) {
    const n = workloads.filter((w) => selects(pdb.spec.selector, w.spec.template.metadata?.labels)).length;
    if (n !== 1) errs.push(`${nm(pdb)}: selector matches ${n} workloads (expected 1)`);
  }
  for (const h of docs.filter((d) => d.kind === "HorizontalPodAutoscaler")) {
    const ref = h.spec.scaleTargetRef;
    const w = byName(ref.kind, ref.name);
    if (!w) {
      errs.push(`${nm(h)}: target ${ref.kind}/${ref.name} does not exist`);
      continue;
    }
    const min = h.spec.minReplicas ?? 1;
    if (min > h.spec.maxReplicas) errs.push(`${nm(h)}: minReplicas > maxReplicas`);
    // The HPA owns the count: a replicas field (in the base, or a kustomize "replicas:" entry)
    // would set it back at every kubectl apply, and a rollout would start from that size.
    if (w.spec.replicas !== undefined) {
      errs.push(`${nm(w)} has ${nm(h)}, so no replicas field (${w.spec.replicas} would reset the HPA's ` +
        "count at every kubectl apply); the HPA's minReplicas is the smallest size");
    }
    for (const m of h.spec.metrics || []) {
      const res = m.resource?.name;
      if (res && !containersOf(w).every((c) => c.resources?.requests?.[res])) {
        errs.push(`${nm(h)}: scales on ${res} but a container of ${nm(w)} has no ${res} request`);
      }
    }
  }
  for (const np of docs.filter((d) => d.kind === "NetworkPolicy")) {
    if (!workloads.some((w) => selects(np.spec.podSelector, w.spec.template.metadata?.labels))) {
      errs.push(`${nm(np)}: podSelector matches no pods`);
    }
    for (const rule of np.spec.ingress || []) {
      for (const f of rule.from || []) {
        if (f.podSelector && !f.namespaceSelector &&
            !workloads.some((w) => selects(f.podSelector, w.spec.template.metadata?.labels))) {
          errs.push(`${nm(np)}: an ingress podSelector matches no pods`);
        }
      }
    }
  }
  for (const ing of docs.filter((d) => d.kind === "Ingress")) {
    for (const rule of ing.spec.rules || []) {
      for (const p of rule.http?.paths || []) {
        const b = p.backend.service;
        const s = byName("Service", b.name);
        if (!s) {
          errs.push(`${nm(ing)}: backend Service ${b.name} does not exist`);
          continue;
        }
        const ok = (s.spec.ports || []).some((sp) => (b.port.name !== undefined ? sp.name === b.port.name : sp.port === b.port.number));
        if (!ok) errs.push(`${nm(ing)}: Service ${b.name} has no port ${b.port.name ?? b.port.number}`);
      }
    }
  }
  return errs;
}

function checkReferences(t, docs) {
  const errs = [];
  const has = (kind, name) => docs.some((d) => d.kind === kind && d.metadata.name === name);
  const cnpgSecrets = new Set(docs.filter((d) => d.kind === "Cluster" && d.apiVersion.startsWith("postgresql.cnpg.io/"))
    .map((d) => `${d.metadata.name}-app`));
  const secretKeys = (name) => {
    const s = docs.find((d) => d.kind === "Secret" && d.metadata.name === name);
    if (s) return Object.keys({ ...(s.data || {}), ...(s.stringData || {}) });
    if (cnpgSecrets.has(name)) return CNPG_APP_KEYS;
    return EXTERNAL_SECRETS[name] ?? null;
  };
  const checkSecret = (where, name, key) => {
    const keys = secretKeys(name);
    if (!keys) errs.push(`${where}: Secret ${name} is neither rendered nor a documented external Secret`);
    else if (key !== undefined && !keys.includes(key)) errs.push(`${where}: Secret ${name} has no key ${key}`);
  };
  for (const w of docs.filter((d) => WORKLOAD_KINDS.has(d.kind))) {
    const ps = w.spec.template.spec;
    if (ps.serviceAccountName && !has("ServiceAccount", ps.serviceAccountName)) {
      errs.push(`${nm(w)}: ServiceAccount ${ps.serviceAccountName} does not exist`);
    }
    for (const c of containersOf(w)) {
      for (const ef of c.envFrom || []) {
        if (ef.configMapRef && !ef.configMapRef.optional && !has("ConfigMap", ef.configMapRef.name)) {
          errs.push(`${nm(w)}: ConfigMap ${ef.configMapRef.name} does not exist`);
        }
      }
      for (const e of c.env || []) {
        const cmk = e.valueFrom?.configMapKeyRef;
        if (cmk) {
          const cm = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === cmk.name);
          if (!cm || !Object.hasOwn(cm.data || {}, cmk.key)) errs.push(`${nm(w)}: ConfigMap key ${cmk.name}/${cmk.key} missing`);
        }
        const sk = e.valueFrom?.secretKeyRef;
        // optional: true may name a key the Secret lacks (the setting then keeps its default)
        if (sk) checkSecret(`${nm(w)} env ${e.name}`, sk.name, sk.optional ? undefined : sk.key);
      }
      const vols = new Set((ps.volumes || []).map((v) => v.name));
      for (const m of c.volumeMounts || []) if (!vols.has(m.name)) errs.push(`${nm(w)}: volumeMount ${m.name} has no volume`);
    }
    for (const v of ps.volumes || []) {
      if (v.secret) for (const it of v.secret.items || [{}]) checkSecret(`${nm(w)} volume ${v.name}`, v.secret.secretName, it.key);
      if (v.configMap && !has("ConfigMap", v.configMap.name)) errs.push(`${nm(w)}: ConfigMap ${v.configMap.name} missing`);
    }
  }
  for (const ing of docs.filter((d) => d.kind === "Ingress")) {
    for (const tls of ing.spec.tls || []) checkSecret(nm(ing), tls.secretName);
  }
  void t;
  return errs;
}

function checkPodSecurity(docs) {
  const errs = [];
  for (const w of docs.filter((d) => WORKLOAD_KINDS.has(d.kind))) {
    const ps = w.spec.template.spec;
    const psc = ps.securityContext || {};
    if (ps.automountServiceAccountToken !== false) errs.push(`${nm(w)}: automountServiceAccountToken must be false`);
    if (ps.enableServiceLinks !== false) errs.push(`${nm(w)}: enableServiceLinks must be false (service env vars clash with CHAT_*)`);
    if (ps.hostNetwork || ps.hostPID || ps.hostIPC) errs.push(`${nm(w)}: host namespaces are not allowed`);
    for (const c of containersOf(w)) {
      const sc = c.securityContext || {};
      const where = `${nm(w)} ${c.name}`;
      if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) errs.push(`${where}: runAsNonRoot`);
      if ((sc.runAsUser ?? psc.runAsUser) === 0) errs.push(`${where}: runs as uid 0`);
      if (sc.readOnlyRootFilesystem !== true) errs.push(`${where}: readOnlyRootFilesystem`);
      if (sc.allowPrivilegeEscalation !== false) errs.push(`${where}: allowPrivilegeEscalation must be false`);
      if (sc.privileged) errs.push(`${where}: privileged`);
      if (!(sc.capabilities?.drop || []).includes("ALL")) errs.push(`${where}: capabilities must drop ALL`);
      if ((sc.capabilities?.add || []).length) errs.push(`${where}: adds capabilities`);
      if ((sc.seccompProfile ?? psc.seccompProfile)?.type !== "RuntimeDefault") errs.push(`${where}: seccompProfile RuntimeDefault`);
      const r = c.resources || {};
      if (!r.requests?.cpu || !r.requests?.memory) errs.push(`${where}: cpu and memory requests required`);
      if (!r.limits?.memory) errs.push(`${where}: memory limit required`);
      if (/:latest$/.test(c.image) || !/[:@]/.test(c.image.split("/").pop())) errs.push(`${where}: image ${c.image} is not pinned`);
    }
  }
  return errs;
}

function preStopSleep(c) {
  const stop = c.lifecycle?.preStop;
  return stop?.sleep?.seconds ?? Number(stop?.exec?.command?.[0] === "sleep" ? stop.exec.command[1] : NaN);
}

// The public services (gateway, chat-api): an HPA of at least 2 pods that owns the count (the
// Deployment has no replicas field: checkSelectors), a preStop sleep so that the endpoint removal
// reaches ingress-nginx before SIGTERM, a grace period covering their drain, spreading, and a
// ClusterIP Service (exposed through the Ingress only).
function publicServiceErrors(name, w, docs, drainS, drainWhat) {
  const errs = [];
  const g = w.spec.template.spec;
  const hpa = docs.find((d) => d.kind === "HorizontalPodAutoscaler" && d.spec.scaleTargetRef.name === name);
  if (!hpa) errs.push(`${name}: no HorizontalPodAutoscaler`);
  else if ((hpa.spec.minReplicas ?? 1) < 2) errs.push(`${name} HPA: minReplicas >= 2 (at least 2 pods)`);
  const c = g.containers[0];
  const sleep = preStopSleep(c);
  if (!c.lifecycle?.preStop) errs.push(`${name}: preStop hook required (endpoint removal before SIGTERM)`);
  else if (!(sleep > 0)) errs.push(`${name}: preStop should be a sleep of a few seconds`);
  if (!((g.terminationGracePeriodSeconds ?? 30) >= (sleep || 0) + drainS + 10)) {
    errs.push(`${name}: terminationGracePeriodSeconds must cover preStop (${sleep} s) + ${drainWhat} ` +
      `(${drainS} s) + 10 s to finish and exit: ${(sleep || 0) + drainS + 10} s, not ` +
      `${g.terminationGracePeriodSeconds ?? 30}`);
  }
  if ((g.topologySpreadConstraints || []).length === 0) errs.push(`${name}: topologySpreadConstraints required`);
  const svc = docs.find((d) => d.kind === "Service" && selectsMap(d.spec.selector, w.spec.template.metadata.labels));
  if (!svc) errs.push(`${name}: no Service`);
  else if ((svc.spec.type ?? "ClusterIP") !== "ClusterIP") errs.push(`${nm(svc)}: must be ClusterIP (exposed via Ingress)`);
  return errs;
}

function checkServices(t, docs) {
  const errs = [];
  const dep = (name) => docs.find((d) => d.kind === "Deployment" && d.metadata.name === name);
  const gw = dep("chat-gateway");
  const api = dep("chat-api");
  const ps = dep("chat-persister");
  const pr = dep("chat-presence");
  if (!gw || !api || !ps || !pr) return ["chat-gateway, chat-api, chat-persister and chat-presence Deployments are all required"];
  for (const w of docs.filter((d) => WORKLOAD_KINDS.has(d.kind) && serviceOf(d))) {
    const svc = serviceOf(w);
    const c = w.spec.template.spec.containers[0];
    if (!IMAGE_RE.test(c.image)) errs.push(`${nm(w)}: image ${c.image} is not ghcr.io/chatcluster/chatcluster:<tag>`);
    if (JSON.stringify(c.command) !== JSON.stringify([SERVICES[svc].binary])) {
      errs.push(`${nm(w)}: command must be ["${SERVICES[svc].binary}"]`);
    }
    if (!docs.some((d) => d.kind === "PodDisruptionBudget" && selects(d.spec.selector, w.spec.template.metadata.labels))) {
      errs.push(`${nm(w)}: no PodDisruptionBudget`);
    }
    const ru = w.spec.strategy?.rollingUpdate;
    if (svc === "persister") {
      // With as many pods as chat.messages has partitions, a surge pod gets none, is never ready
      // (/readyz needs a partition) and the rollout hangs: replace one pod at a time instead.
      if (ru?.maxSurge !== 0 || ru?.maxUnavailable !== 1) {
        errs.push(`${nm(w)}: rollouts must stop one pod before starting its replacement (maxSurge 0, ` +
          `maxUnavailable 1), not maxSurge ${ru?.maxSurge} / maxUnavailable ${ru?.maxUnavailable}: a surge ` +
          `pod beyond the ${TOPICS["chat.messages"]} partitions of chat.messages is never ready`);
      }
    } else if (ru?.maxUnavailable !== 0) errs.push(`${nm(w)}: rollouts must keep capacity (maxUnavailable 0)`);
  }
  const cms = new Map(docs.filter((d) => d.kind === "ConfigMap").map((d) => [d.metadata.name, d]));
  // gateway: its drain closes every WebSocket (then the producer flush and the exit: the 10 s)
  errs.push(...publicServiceErrors("chat-gateway", gw, docs, setting(gw, cms, "CHAT_DRAIN_MS") / 1000,
    "CHAT_DRAIN_MS"));
  // chat-api (api/src/main.c): after SIGTERM, one after the other, each waiting its deadlines at
  // most: the requests in progress (a dependency that does not answer costs a request one
  // deadline: PostgreSQL drops the connection for the rest of the request, Redis retries a dropped
  // one after 1 s, so twice; a REST send then waits for Kafka), the retention purge's run (its
  // statement; none with CHAT_PURGE_INTERVAL_S 0), the outbox relay's batch (read, acks, delete),
  // rd_kafka_flush. CHAT_API_REQUEST_TIMEOUT_S is not in it: the stop closes idle connections.
  const ms = (k) => setting(api, cms, k);
  const pg = ms("CHAT_PG_TIMEOUT_MS");
  const produce = ms("CHAT_PRODUCE_TIMEOUT_MS");
  const apiDrainMs = (pg + 2 * ms("CHAT_REDIS_TIMEOUT_MS") + produce) + (ms("CHAT_PURGE_INTERVAL_S") > 0 ? pg : 0) +
    (2 * pg + produce) + produce;
  errs.push(...publicServiceErrors("chat-api", api, docs, apiDrainMs / 1000,
    "requests (CHAT_PG_TIMEOUT_MS + 2 x CHAT_REDIS_TIMEOUT_MS + CHAT_PRODUCE_TIMEOUT_MS), purge " +
    "(CHAT_PG_TIMEOUT_MS), outbox batch (2 x CHAT_PG_TIMEOUT_MS + CHAT_PRODUCE_TIMEOUT_MS), flush " +
    "(CHAT_PRODUCE_TIMEOUT_MS)"));
  errs.push(...gatewayMemoryErrors(gw, cms));
  errs.push(...pgConnectionErrors(docs, api, cms));
  const apiPdb = docs.find((d) => d.kind === "PodDisruptionBudget" && selects(d.spec.selector, api.spec.template.metadata.labels));
  if (apiPdb && apiPdb.spec.minAvailable === undefined && apiPdb.spec.maxUnavailable === undefined) {
    errs.push(`${nm(apiPdb)}: minAvailable or maxUnavailable required`);
  }
  const apiSvc = docs.find((d) => d.kind === "Service" && d.metadata.name === "chat-api");
  if (!apiSvc) errs.push("Service chat-api (the Ingress's /api/ backend) missing");
  // persister / presence
  if ((ps.spec.replicas ?? 1) > TOPICS["chat.messages"]) errs.push("chat-persister: more replicas than chat.messages partitions");
  if (t.dir === "base") {
    if (ps.spec.replicas !== 2) errs.push("base chat-persister: replicas 2");
    if (pr.spec.replicas !== 2) errs.push("base chat-presence: replicas 2 (one leader, one standby)");
  }
  const stop = persisterStopMs();
  const psGrace = ps.spec.template.spec.terminationGracePeriodSeconds ?? 30;
  if (stop.error) errs.push(`chat-persister: ${stop.error}`);
  else if (!(psGrace >= stop.ms / 1000 + 5)) {
    errs.push(`chat-persister: terminationGracePeriodSeconds ${psGrace} must cover its stop, ${stop.what} ` +
      `= ${stop.ms / 1000} s, + 5 s`);
  }
  return errs;
}

// The persister's stop (not configurable: persister/src): the drain of the last batch, its write
// in progress included (PS_DRAIN_MS or DRAIN_MS, ps.h or ps_consume.c), then closing the
// chat.messages consumer and the chat.events consumer (CLOSE_MS in ps_consume.c and ps_events.c),
// one after the other. Read from the source, so the check follows it.
let persisterStop = null;
export function persisterStopMs() {
  if (persisterStop) return persisterStop;
  const src = (f) => fs.readFileSync(path.join(REPO, "persister/src", f), "utf8");
  // "#define NAME 10000", or the value on the next line after a backslash
  const def = (files, names) => {
    for (const f of files) {
      const text = src(f);
      for (const name of names) {
        const m = new RegExp(`^#define\\s+${name}\\s+(?:\\\\\\s*\\n\\s*)?(\\d+)`, "m").exec(text);
        if (m) return [`${name} (${f})`, Number(m[1])];
      }
    }
    throw new Error(`no #define ${names.join(" or ")} in persister/src/${files.join(" or ")}`);
  };
  try {
    const parts = [def(["ps.h", "ps_consume.c"], ["PS_DRAIN_MS", "DRAIN_MS"]), def(["ps_consume.c"], ["CLOSE_MS"]),
      def(["ps_events.c"], ["CLOSE_MS"])];
    persisterStop = { ms: parts.reduce((a, [, v]) => a + v, 0), what: parts.map(([n, v]) => `${n} ${v}`).join(" + ") };
  } catch (e) {
    persisterStop = { error: `cannot read the shutdown bounds: ${e.message}` };
  }
  return persisterStop;
}

// Gateway memory: the container's memory limit holds the process and its Kafka clients
// (GW_FIXED_BYTES), the recovery cache (CHAT_RECOVERY_BYTES) and CHAT_MAX_CONNS sockets at
// GW_CONN_BYTES each: ~2 KiB of gateway state per idle socket (docs/BENCHMARKS.md, "Idle memory
// per connection"), the kernel's socket memory (charged to the pod) and a few frames of its own.
// Send queues (CHAT_OUTQ_MAX_BYTES) hold references to messages shared by every socket of a room
// and the recovery cache, so they are not in it (k8s/README.md, "Scaling").
export const GW_FIXED_BYTES = 256 * 2 ** 20;
export const GW_CONN_BYTES = 16 * 2 ** 10;
function gatewayMemoryErrors(gw, cms) {
  const c = gw.spec.template.spec.containers[0];
  const limit = quantityBytes(c.resources?.limits?.memory);
  const conns = setting(gw, cms, "CHAT_MAX_CONNS");
  const recovery = setting(gw, cms, "CHAT_RECOVERY_BYTES");
  const need = GW_FIXED_BYTES + recovery + conns * GW_CONN_BYTES;
  const mib = (b) => `${Math.round(b / 2 ** 20)} MiB`;
  if (!(need <= limit)) {
    return [`${nm(gw)}: memory limit ${c.resources?.limits?.memory} (${mib(limit)}) below ${mib(GW_FIXED_BYTES)} + ` +
      `CHAT_RECOVERY_BYTES ${mib(recovery)} + CHAT_MAX_CONNS ${conns} x ${GW_CONN_BYTES / 1024} KiB = ${mib(need)}: ` +
      "lower CHAT_MAX_CONNS or raise the limit"];
  }
  return [];
}

// PostgreSQL connections (with CloudNativePG rendered): chat-api's HPA maximum x (CHAT_API_THREADS
// + 2: a request thread each, the outbox relay, the retention purge) + one per persister (at most
// as many as chat.messages has partitions) must fit max_connections, less PG_RESERVED_CONNS for
// superusers (superuser_reserved_connections, 3) and the operator's own.
const PG_RESERVED_CONNS = 10;
function pgConnectionErrors(docs, api, cms) {
  const cluster = docs.find((d) => d.kind === "Cluster" && d.apiVersion.startsWith("postgresql.cnpg.io/"));
  if (!cluster) return [];
  const max = Number(cluster.spec.postgresql?.parameters?.max_connections ?? 100);
  const hpa = docs.find((d) => d.kind === "HorizontalPodAutoscaler" && d.spec.scaleTargetRef.name === api.metadata.name);
  const pods = hpa ? hpa.spec.maxReplicas : api.spec.replicas ?? 1;
  const threads = setting(api, cms, "CHAT_API_THREADS");
  const persisters = TOPICS["chat.messages"];
  const need = pods * (threads + 2) + persisters;
  if (!(need <= max - PG_RESERVED_CONNS)) {
    return [`${nm(cluster)}: max_connections ${max} - ${PG_RESERVED_CONNS} reserved < chat-api ${pods} pods x ` +
      `(CHAT_API_THREADS ${threads} + 2) + ${persisters} persisters = ${need}`];
  }
  return [];
}

// "1m", "16k", "1024" -> bytes (nginx size syntax); NaN when unparsable.
function nginxSize(v) {
  const m = /^(\d+)([kKmMgG]?)$/.exec(String(v ?? "").trim());
  if (!m) return NaN;
  return Number(m[1]) * { "": 1, k: 1024, m: 1048576, g: 1073741824 }[m[2].toLowerCase()];
}

function checkIngress(docs) {
  const errs = [];
  const ings = docs.filter((d) => d.kind === "Ingress");
  if (!ings.length) return ["no Ingress"];
  const routes = ings.flatMap((i) => (i.spec.rules || []).flatMap((r) => (r.http?.paths || []).map((p) => ({ ing: i, p }))));
  const pfx = "nginx.ingress.kubernetes.io/";
  // WebSockets: /ws to the gateway, through an Ingress tuned for long-lived sockets.
  const ws = routes.find((r) => r.p.path === "/ws");
  if (!ws) return ["no Ingress routes /ws to the gateway"];
  if (ws.p.backend.service?.name !== "chat-gateway") errs.push(`${nm(ws.ing)}: /ws must go to Service chat-gateway`);
  const pub = ws.ing;
  const a = pub.metadata.annotations || {};
  if (pub.spec.ingressClassName !== "nginx") errs.push(`${nm(pub)}: ingressClassName nginx`);
  for (const k of ["proxy-read-timeout", "proxy-send-timeout"]) {
    if (!(Number(a[pfx + k]) >= 3600)) errs.push(`${nm(pub)}: ${k} must be >= 3600 for idle WebSockets`);
  }
  if (a[pfx + "proxy-buffering"] !== "off") errs.push(`${nm(pub)}: proxy-buffering must be off`);
  if (a[pfx + "proxy-request-buffering"] !== "off") errs.push(`${nm(pub)}: proxy-request-buffering must be off`);
  // REST: /api/ (Prefix) to chat-api, and nothing else under /api to the gateway.
  const api = routes.find((r) => r.p.path === "/api/" || r.p.path === "/api");
  if (!api) errs.push("no Ingress routes /api/ to chat-api");
  else {
    if (api.p.pathType !== "Prefix") errs.push(`${nm(api.ing)}: /api/ must be a Prefix path`);
    if (api.p.backend.service?.name !== "chat-api") errs.push(`${nm(api.ing)}: /api/ must go to Service chat-api`);
    const aa = api.ing.metadata.annotations || {};
    if (api.ing.spec.ingressClassName !== "nginx") errs.push(`${nm(api.ing)}: ingressClassName nginx`);
    // chat-api serves each request on one thread start to finish: nginx must take the body from a
    // slow client first, and a body chat-api would refuse must reach it (its JSON 413 too_big).
    if (aa[pfx + "proxy-request-buffering"] === "off") {
      errs.push(`${nm(api.ing)}: proxy-request-buffering off would let slow clients hold chat-api's request threads`);
    }
    const cm = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === "chatcluster-api");
    const maxBody = Number(cm?.data?.CHAT_API_MAX_BODY ?? 16384);
    const body = nginxSize(aa[pfx + "proxy-body-size"] ?? "1m");
    if (!(body >= maxBody)) {
      errs.push(`${nm(api.ing)}: proxy-body-size ${aa[pfx + "proxy-body-size"]} is below CHAT_API_MAX_BODY ${maxBody}: ` +
        "nginx, not chat-api, would refuse those bodies");
    }
    const tlsOf = (i) => JSON.stringify((i.spec.tls || []).map((x) => [x.secretName, [...(x.hosts || [])].sort()]));
    if (tlsOf(api.ing) !== tlsOf(pub)) errs.push(`${nm(api.ing)}: TLS differs from ${nm(pub)} (same host, same certificate)`);
  }
  for (const r of routes) {
    if (/^\/api(\/|$)/.test(r.p.path) && r.p.backend.service?.name !== "chat-api") {
      errs.push(`${nm(r.ing)}: ${r.p.path} must go to Service chat-api, not ${r.p.backend.service?.name}`);
    }
  }
  for (const i of ings) {
    for (const [k, v] of Object.entries(i.metadata.annotations || {})) {
      if (typeof v !== "string") errs.push(`${nm(i)}: annotation ${k} must be a string`);
    }
  }
  const internal = ["/metrics", "/healthz", "/readyz"];
  for (const p of internal) {
    const guard = ings.find((i) => (i.spec.rules || []).some((r) => (r.http?.paths || []).some((x) => x.path === p && x.pathType === "Exact")));
    const allow = guard?.metadata.annotations?.[pfx + "allowlist-source-range"] ?? guard?.metadata.annotations?.[pfx + "whitelist-source-range"];
    if (!guard || !allow) errs.push(`${p} is reachable from the public Ingress`);
  }
  const hosts = new Set(ings.flatMap((i) => (i.spec.rules || []).map((r) => r.host)));
  if (hosts.size !== 1) errs.push(`Ingress objects disagree on the host: ${[...hosts].join(", ")}`);
  return errs;
}

// chat-api and the persister must agree on these (name -> the binaries' default): the persister
// keeps CHAT_RECENT_PER_ROOM messages per room in the Redis recent cache, and chat-api serves a
// history page from that cache only when it is at most this long (k8s/: one ConfigMap key,
// chatcluster-persister/CHAT_RECENT_PER_ROOM, which chat-api reads with configMapKeyRef).
export const SHARED_API_PERSISTER = { CHAT_RECENT_PER_ROOM: "500" };

// The gateway and chat-api must agree on what they share (SHARED): token issuer, keys and TTLs,
// the trusted proxy hops, the message limits, the grant and client_msg_id lifetimes; chat-api and
// the persister on SHARED_API_PERSISTER. Compares the effective values of the Deployments (a
// literal value, a ConfigMap key's value, or the Secret and key it comes from).
function checkSharedSettings(docs) {
  const errs = [];
  const cms = new Map(docs.filter((d) => d.kind === "ConfigMap").map((d) => [d.metadata.name, d]));
  const dep = (name) => docs.find((d) => d.kind === "Deployment" && d.metadata.name === name);
  const gw = dep("chat-gateway");
  const api = dep("chat-api");
  if (!gw || !api) return ["chat-gateway and chat-api are both required"];
  const eg = effectiveEnv(gw.spec.template.spec.containers[0], cms);
  const ea = effectiveEnv(api.spec.template.spec.containers[0], cms);
  const show = (e) => {
    if (!e) return "(default)";
    const sk = e.entry?.valueFrom?.secretKeyRef;
    if (sk) return `secret ${sk.name}/${sk.key}`;
    const ck = e.entry?.valueFrom?.configMapKeyRef;
    const cv = ck && cms.get(ck.name)?.data?.[ck.key];
    if (cv !== undefined) return `"${cv}" (configmap:${ck.name}/${ck.key})`;
    return e.value !== undefined ? `"${e.value}" (${e.from})` : JSON.stringify(e.entry?.valueFrom);
  };
  const key = (e) => show(e).replace(/ \(.*\)$/, "");
  for (const k of SHARED.filter((x) => SERVICES.gateway.env.has(x) && SERVICES.api.env.has(x))) {
    if (key(eg.get(k)) !== key(ea.get(k))) {
      errs.push(`${k}: the gateway and chat-api disagree: ${show(eg.get(k))} vs ${show(ea.get(k))}`);
    }
  }
  const ps = dep("chat-persister");
  if (!ps) return [...errs, "chat-persister is required"];
  const ep = effectiveEnv(ps.spec.template.spec.containers[0], cms);
  for (const [k, def] of Object.entries(SHARED_API_PERSISTER)) {
    const v = (e) => (e ? key(e) : `"${def}"`);
    if (v(ea.get(k)) !== v(ep.get(k))) {
      errs.push(`${k}: chat-api and the persister disagree: ${show(ea.get(k))} vs ${show(ep.get(k))}`);
    }
  }
  return errs;
}

// NetworkPolicies: every service is selected by a policy with both directions (so what is not
// allowed is denied); public traffic only from the ingress controller's namespace, metrics only
// from Prometheus'; PostgreSQL only from PG_CLIENTS; each service can reach what it needs.
function npPeerNs(peer) {
  return peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"];
}

function ruleAllowsPort(rule, port) {
  if (!rule.ports || rule.ports.length === 0) return true;
  return rule.ports.some((p) => p.port === undefined || p.port === port ||
    (typeof p.port === "number" && p.endPort !== undefined && port >= p.port && port <= p.endPort));
}

function checkNetworkPolicies(docs) {
  const errs = [];
  const nps = docs.filter((d) => d.kind === "NetworkPolicy");
  const cms = new Map(docs.filter((d) => d.kind === "ConfigMap").map((d) => [d.metadata.name, d]));
  const kafkaPorts = [...new Set((cms.get("chatcluster-common")?.data?.CHAT_KAFKA_BROKERS ?? "").split(",")
    .map((b) => Number(b.trim().split(":").pop())).filter((n) => n > 0))];
  for (const w of docs.filter((d) => WORKLOAD_KINDS.has(d.kind) && serviceOf(d))) {
    const svc = serviceOf(w);
    const spec = SERVICES[svc];
    const labels = w.spec.template.metadata?.labels;
    const mine = nps.filter((np) => selects(np.spec.podSelector, labels));
    const where = nm(w);
    const types = new Set(mine.flatMap((np) => np.spec.policyTypes || ["Ingress"]));
    if (!types.has("Ingress") || !types.has("Egress")) {
      errs.push(`${where}: no NetworkPolicy with policyTypes Ingress and Egress selects it (nothing denied)`);
      continue;
    }
    // ingress: from the ingress controller (public services) and Prometheus only
    const allowedNs = PUBLIC_SERVICES.has(svc) ? [INGRESS_NS, PROMETHEUS_NS] : [PROMETHEUS_NS];
    for (const np of mine) {
      for (const rule of np.spec.ingress || []) {
        if (!rule.from || rule.from.length === 0) errs.push(`${nm(np)}: an ingress rule without "from" admits every pod`);
        for (const f of rule.from || []) {
          const ns = npPeerNs(f);
          if (!ns || !allowedNs.includes(ns) || f.ipBlock) {
            errs.push(`${nm(np)}: ${where} admits ingress from ${JSON.stringify(f)}; only namespaces ${allowedNs.join(", ")}`);
          }
        }
      }
    }
    if (PUBLIC_SERVICES.has(svc) && !mine.some((np) => (np.spec.ingress || []).some((r) => (r.from || []).some((f) => npPeerNs(f) === INGRESS_NS)))) {
      errs.push(`${where}: the ingress controller (namespace ${INGRESS_NS}) cannot reach it`);
    }
    // egress: PostgreSQL only for PG_CLIENTS; each service reaches DNS, Kafka, and Redis/PostgreSQL if it uses them
    const egress = mine.flatMap((np) => (np.spec.egress || []).map((r) => ({ np, r })));
    const reaches = (port) => egress.some(({ r }) => ruleAllowsPort(r, port));
    const pg = egress.filter(({ r }) => ruleAllowsPort(r, PG_PORT));
    if (!spec.postgres && pg.length) errs.push(`${nm(pg[0].np)}: ${where} may not reach PostgreSQL (port ${PG_PORT}); only ${PG_CLIENTS.join(", ")} do`);
    if (spec.postgres && !pg.length) errs.push(`${where}: no egress to PostgreSQL (port ${PG_PORT})`);
    if (!reaches(53)) errs.push(`${where}: no egress to DNS (port 53)`);
    for (const kp of kafkaPorts) if (!reaches(kp)) errs.push(`${where}: no egress to Kafka (port ${kp} of CHAT_KAFKA_BROKERS)`);
    const redisPort = Number(cms.get("chatcluster-redis")?.data?.CHAT_REDIS_PORT ?? 6379);
    if (spec.redis && !reaches(redisPort)) errs.push(`${where}: no egress to Redis (port ${redisPort})`);
    if (!spec.redis && reaches(redisPort)) {
      errs.push(`${where}: egress to Redis although ${spec.binary} does not use it`);
    }
  }
  // The in-namespace Redis (components/redis) admits exactly the services that use it.
  const redis = docs.find((d) => d.kind === "Deployment" && d.metadata.name === "chat-redis");
  if (redis) {
    const rnp = nps.filter((np) => selects(np.spec.podSelector, redis.spec.template.metadata.labels));
    for (const w of docs.filter((d) => WORKLOAD_KINDS.has(d.kind) && serviceOf(d))) {
      const admitted = rnp.some((np) => (np.spec.ingress || []).some((r) => (r.from || []).some((f) =>
        !f.namespaceSelector && selects(f.podSelector, w.spec.template.metadata.labels))));
      if (SERVICES[serviceOf(w)].redis && !admitted) errs.push(`NetworkPolicy of chat-redis does not admit ${nm(w)}, which uses Redis`);
      if (!SERVICES[serviceOf(w)].redis && admitted) errs.push(`NetworkPolicy of chat-redis admits ${nm(w)}, which does not use Redis`);
    }
  }
  return errs;
}

export function projectChecks(t, docs) {
  if (!t.app) return [[`every object in namespace ${t.namespace}`, checkNamespaces(t, docs)]];
  return [
    [`every object in namespace ${t.namespace}`, checkNamespaces(t, docs)],
    ["ConfigMap keys are known CHAT_* settings with valid values", checkConfigMaps(docs)],
    ["each service gets only its own, all required, secrets from Secrets", checkServiceEnv(docs)],
    ["probes and Prometheus annotations point to declared ports = configured ports", checkPorts(docs)],
    ["labels and selectors match (workloads, Services, PDBs, HPA, spread, NetworkPolicies, Ingress)", checkSelectors(docs)],
    ["referenced ConfigMaps, Secrets, keys, volumes and ServiceAccounts exist", checkReferences(t, docs)],
    ["pod security and resources (non-root, read-only, no capabilities)", checkPodSecurity(docs)],
    ["gateway/api/persister/presence: images, rollouts, drain, PDB, HPA, Service, gateway memory, PostgreSQL connections",
      checkServices(t, docs)],
    ["gateway and chat-api (and chat-api and the persister) agree on the settings they share", checkSharedSettings(docs)],
    ["NetworkPolicies: default deny per service, public only via ingress-nginx, PostgreSQL only for " +
      PG_CLIENTS.join("/"), checkNetworkPolicies(docs)],
    ["Ingress: /ws WebSocket-friendly to the gateway, /api/ to chat-api, internal endpoints not public", checkIngress(docs)],
  ];
}

// ---- Kafka: topics vs contract vs the apps' settings ---------------------------------------------

function brokersOf(docs) {
  const cm = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === "chatcluster-common");
  return { cm, brokers: cm?.data?.CHAT_KAFKA_BROKERS ?? "" };
}

// The topics the local broker is given (scripts/lib/kafka.sh kafka_topic_specs):
// { name: { partitions, config: { key: "value" } } }.
function localTopics() {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
  const text = execFileSync("bash", ["-c", `. "${repo}/scripts/lib/kafka.sh" && kafka_topic_specs`],
    { encoding: "utf8", env: { PATH: process.env.PATH, HOME: process.env.HOME ?? "/" } });
  const topics = {};
  for (const spec of text.split(/\s+/).filter(Boolean)) {
    const [name, parts, ...kv] = spec.split(":");
    topics[name] = { partitions: Number(parts), config: Object.fromEntries(kv.map((x) => [x.slice(0, x.indexOf("=")), x.slice(x.indexOf("=") + 1)])) };
  }
  return topics;
}

// kafka/dev (one broker) and the local broker of scripts/lib/kafka.sh: same topics, partitions
// and settings, key by key, both ways.
function localTopicErrors(devDocs) {
  const errs = [];
  let local;
  try {
    local = localTopics();
  } catch (e) {
    return [`scripts/lib/kafka.sh kafka_topic_specs failed: ${e.message}`];
  }
  const topics = devDocs.filter((d) => d.kind === "KafkaTopic");
  for (const [name, want] of Object.entries(local)) {
    const tp = topics.find((x) => (x.spec.topicName ?? x.metadata.name) === name);
    if (!tp) {
      errs.push(`local topic ${name} has no KafkaTopic in kafka/dev`);
      continue;
    }
    if (tp.spec.partitions !== want.partitions) errs.push(`${name}: ${tp.spec.partitions} partitions in kafka/dev, ${want.partitions} locally`);
    const cfg = Object.fromEntries(Object.entries(tp.spec.config || {}).map(([k, v]) => [k, String(v)]));
    for (const k of new Set([...Object.keys(cfg), ...Object.keys(want.config)])) {
      if (cfg[k] !== want.config[k]) errs.push(`${name}: ${k} is ${cfg[k] ?? "unset"} in kafka/dev, ${want.config[k] ?? "unset"} locally`);
    }
  }
  for (const tp of topics) {
    const name = tp.spec.topicName ?? tp.metadata.name;
    if (!local[name]) errs.push(`KafkaTopic ${name} is not created by the local broker (scripts/lib/kafka.sh)`);
  }
  return errs;
}

export function kafkaCrossChecks(rendered) {
  const out = [];
  if (rendered.get("kafka/dev")) {
    out.push(["the local broker's topics (scripts/lib/kafka.sh) = kafka/dev, setting by setting",
      localTopicErrors(rendered.get("kafka/dev"))]);
  }
  for (const kdir of ["kafka/dev", "kafka/prod"]) {
    const docs = rendered.get(kdir);
    if (!docs) continue;
    const errs = [];
    const topics = docs.filter((d) => d.kind === "KafkaTopic");
    for (const [name, parts] of Object.entries(TOPICS)) {
      const tp = topics.find((x) => (x.spec.topicName ?? x.metadata.name) === name);
      if (!tp) errs.push(`topic ${name} missing`);
      else if (tp.spec.partitions !== parts) errs.push(`topic ${name}: ${tp.spec.partitions} partitions, contract says ${parts}`);
      if (tp && COMPACT_ONLY.includes(name) && String(tp.spec.config?.["cleanup.policy"]) !== "compact") {
        errs.push(`topic ${name}: cleanup.policy must be compact (its records are state, never deleted by age)`);
      }
    }
    if (kdir === "kafka/prod") {
      for (const tp of topics) if (tp.spec.replicas < 3) errs.push(`${tp.metadata.name}: production topics need 3 replicas`);
    }
    out.push([`${kdir}: topics ${Object.keys(TOPICS).join(", ")} with the contract's partition counts` +
      ` (${COMPACT_ONLY.join(", ")} compacted only)`, errs]);
  }
  for (const [app, kdir] of [["base", "kafka/prod"], ["overlays/dev", "kafka/dev"], ["overlays/prod", "kafka/prod"]]) {
    const a = rendered.get(app);
    const k = rendered.get(kdir);
    if (!a || !k) continue;
    const errs = [];
    const { cm, brokers } = brokersOf(a);
    const topics = k.filter((d) => d.kind === "KafkaTopic");
    for (const [key, def] of Object.entries(TOPIC_KEYS)) {
      const name = cm?.data?.[key] ?? def;
      if (!topics.some((x) => (x.spec.topicName ?? x.metadata.name) === name)) errs.push(`${key}=${name} has no KafkaTopic in ${kdir}`);
    }
    for (const b of brokers.split(",")) {
      const m = /^([a-z0-9-]+)-kafka-bootstrap\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)$/.exec(b.trim());
      if (!m) {
        errs.push(`CHAT_KAFKA_BROKERS "${b}" is not a Strimzi bootstrap Service address`);
        continue;
      }
      for (const tp of topics) {
        if (tp.metadata.labels["strimzi.io/cluster"] !== m[1]) errs.push(`${tp.metadata.name}: cluster label != ${m[1]}`);
        if (tp.metadata.namespace !== m[2]) errs.push(`${tp.metadata.name}: namespace ${tp.metadata.namespace} != ${m[2]}`);
      }
      const extra = a.filter((d) => d.kind === "Deployment").flatMap((d) => d.spec.template.spec.containers[0].env || [])
        .find((e) => e.name === "CHAT_KAFKA_EXTRA")?.value ?? "";
      const tls = /security\.protocol=(SSL|SASL_SSL)/i.test(extra);
      if (m[3] === "9093" && !tls) errs.push("port 9093 is Strimzi's TLS listener but CHAT_KAFKA_EXTRA sets no TLS");
      if (m[3] === "9092" && tls) errs.push("port 9092 is Strimzi's plain listener but CHAT_KAFKA_EXTRA sets TLS");
      const user = /sasl\.username=([^,]+)/.exec(extra)?.[1];
      if (user) {
        const ku = k.find((d) => d.kind === "KafkaUser" && d.metadata.name === user);
        if (!ku) errs.push(`sasl.username=${user} but ${kdir} has no KafkaUser ${user}`);
        else errs.push(...aclErrors(ku, a));
      }
    }
    out.push([`${app}: Kafka brokers, topics and user agree with ${kdir}`, errs]);
  }
  return out;
}

function aclErrors(ku, appDocs) {
  const errs = [];
  const acls = ku.spec.authorization?.acls || [];
  const allows = (type, name, op) => acls.some((a) => a.resource.type === type &&
    (a.resource.patternType === "prefix" ? name.startsWith(a.resource.name) : a.resource.name === name) &&
    (a.operations || [a.operation]).some((o) => o === op || o === "All"));
  for (const name of Object.keys(TOPICS)) {
    for (const op of ["Read", "Write", "Describe"]) if (!allows("topic", name, op)) errs.push(`KafkaUser: no ${op} on topic ${name}`);
  }
  const cm = appDocs.find((d) => d.kind === "ConfigMap" && d.metadata.name === "chatcluster-persister");
  for (const group of [cm?.data?.CHAT_PERSISTER_GROUP ?? "chat-persister",
    cm?.data?.CHAT_PERSISTER_EVENTS_GROUP ?? "chat-persister-events"]) {
    if (!allows("group", group, "Read")) errs.push(`KafkaUser: no Read on group ${group}`);
  }
  return errs;
}

// ---- the example Secret ------------------------------------------------------------------------

export function exampleSecretChecks(exampleDocs, rendered) {
  const errs = [];
  const ex = exampleDocs.find((d) => d.kind === "Secret");
  if (!ex) return [["base/secret.example.yaml: placeholders only, never applied", ["no Secret in the file"]]];
  const data = ex.stringData || {};
  for (const k of ["CHAT_JWT_KEYS", "CHAT_PG_DSN"]) {
    if (!Object.hasOwn(data, k)) errs.push(`missing key ${k}`);
    else if (!/CHANGE-ME/.test(data[k])) errs.push(`${k} must be an obvious placeholder (contain CHANGE-ME)`);
  }
  for (const k of Object.keys(data)) if (!KNOWN_ENV.has(k)) errs.push(`unknown key ${k}`);
  if ((data.CHAT_JWT_KEYS || "").length >= 32) errs.push("placeholder CHAT_JWT_KEYS must be < 32 chars so the gateway refuses it");
  if (ex.metadata.name !== "chatcluster-secrets") errs.push("must be named chatcluster-secrets (what the Deployments reference)");
  for (const [dir, docs] of rendered) {
    for (const s of docs.filter((d) => d.kind === "Secret")) {
      const vals = Object.values({ ...(s.stringData || {}), ...(s.data || {}) }).join(" ");
      if (/CHANGE-ME/.test(vals)) errs.push(`${dir}: renders a placeholder Secret ${s.metadata.name}`);
      const jwt = s.stringData?.CHAT_JWT_KEYS;
      if (jwt !== undefined && jwt.split(",").some((p) => p.replace(/^[^:]{1,31}:/, "").length < 32)) {
        errs.push(`${dir}: Secret ${s.metadata.name} has a CHAT_JWT_KEYS secret shorter than 32 characters`);
      }
      if (dir === "overlays/prod") errs.push(`${dir}: must not ship Secret ${s.metadata.name}; operators create it`);
    }
  }
  return [["base/secret.example.yaml: placeholders only, never applied; shipped Secrets usable", errs]];
}

// ---- the documents: commands in k8s/README.md and in the manifests' comments ------------------

// k8s/README.md and every k8s/**/*.yaml, as { "k8s/<path>": text }.
export function loadDocs() {
  const root = path.join(REPO, "k8s");
  const out = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name) || p === path.join(root, "README.md")) out[path.relative(REPO, p)] = fs.readFileSync(p, "utf8");
    }
  };
  walk(root);
  return out;
}

// The shell commands of a document, one string per command: a YAML file's comment lines (without
// the "#"), a Markdown file's lines; a line ending in "\" continues on the next.
function docLines(file, text) {
  let lines = text.split("\n");
  if (!file.endsWith(".md")) lines = lines.map((l) => (/^\s*#/.test(l) ? l.replace(/^\s*#\s?/, "") : ""));
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i];
    while (/\\\s*$/.test(l) && i + 1 < lines.length) l = l.replace(/\\\s*$/, " ") + lines[++i].trim();
    out.push(l);
  }
  return out;
}

function kubectlCommands(file, text) {
  return docLines(file, text).flatMap((l) => [...l.matchAll(/kubectl\b[^`\n|]*/g)].map((m) => m[0].trim()));
}

const APP_DIRS = ["base", "overlays/dev", "overlays/prod"];
const imageTag = (docs) => docs.find((d) => d.kind === "Deployment" && d.metadata.name === "chat-gateway")
  ?.spec.template.spec.containers[0].image.replace(/^[^:@]*[:@]/, "");

export function docChecks(texts, rendered) {
  const restart = [];
  const ns = [];
  const images = [];
  for (const [file, text] of Object.entries(texts)) {
    for (const cmd of kubectlCommands(file, text)) {
      // a command naming objects of a namespace needs -n (the objects are in chatcluster or
      // chatcluster-dev, never in the default namespace)
      if (/\b(deploy|deployments?|svc|services?|secrets?|pods?|jobs?|configmaps?|hpa|statefulsets?)\b/.test(cmd) &&
          !/(^|\s)(-n|--namespace)(\s|=)/.test(cmd) && !/\bcreate\s+namespace\b/.test(cmd)) {
        ns.push(`${file}: "${cmd}" has no -n <namespace>`);
      }
      // restarting "the services" must restart exactly the four services: not chat-redis, which
      // keeps nothing on disk (a restart empties the cache and the leases)
      if (!/\brollout\s+restart\s+(deploy|deployments?)\b/.test(cmd)) continue;
      const m = /\s(?:-l|--selector)(?:\s+|=)(?:'([^']*)'|"([^"]*)"|([^\s'"]+))/.exec(cmd);
      if (!m) {
        if (!/\b(deploy|deployments?)\/\S+|\bdeploy(ments?)?\s+chat-/.test(cmd)) ns.push(`${file}: "${cmd}" restarts every Deployment`);
        continue;
      }
      let sel;
      try {
        sel = parseSelector(m[1] ?? m[2] ?? m[3]);
      } catch (e) {
        restart.push(`${file}: "${cmd}": ${e.message}`);
        continue;
      }
      for (const dir of APP_DIRS) {
        for (const d of (rendered.get(dir) || []).filter((x) => x.kind === "Deployment")) {
          const chosen = sel(d.metadata.labels);
          if (chosen && !serviceOf(d)) restart.push(`${file}: "${cmd}" restarts ${nm(d)} in ${dir}, not one of the services`);
          if (!chosen && serviceOf(d)) restart.push(`${file}: "${cmd}" does not restart ${nm(d)} in ${dir}`);
        }
      }
    }
    // README code blocks: an overlay applied after building or loading the image runs that image
    if (!file.endsWith(".md")) continue;
    for (const block of text.split(/^```.*$/m).filter((_, i) => i % 2 === 1)) {
      let built = null;
      for (const l of docLines(file, block)) {
        const tags = [...l.matchAll(/ghcr\.io\/chatcluster\/chatcluster:([A-Za-z0-9_][A-Za-z0-9_.-]*)/g)];
        if (tags.length) built = tags[tags.length - 1][1];
        const a = /kubectl\s+apply\s+-k\s+k8s\/(overlays\/[\w-]+)/.exec(l);
        if (!a) continue;
        const want = rendered.get(a[1]) && imageTag(rendered.get(a[1]));
        if (want === undefined) images.push(`${file}: "${l.trim()}": k8s/${a[1]} did not render`);
        else if (built === null) images.push(`${file}: "${l.trim()}" comes before any image is built or loaded`);
        else if (built !== want) {
          images.push(`${file}: "${l.trim()}" runs ghcr.io/chatcluster/chatcluster:${want}, but the image built or ` +
            `loaded before it is :${built}`);
        }
      }
    }
  }
  return [
    ["k8s/README.md and comments: rollout restart selects exactly the four services (not chat-redis)", restart],
    ["k8s/README.md and comments: kubectl commands on objects name the namespace", ns],
    ["k8s/README.md: an overlay is applied after building or loading the image tag it runs", images],
  ];
}
