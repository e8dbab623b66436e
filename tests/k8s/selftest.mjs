// tests/k8s/selftest.mjs - proves the checks catch what they claim to: each case breaks one thing
// in a copy of a rendered target and requires a failure mentioning the expected text. Also unit
// cases for the built-in renderer. Run with: node validate.mjs --selftest

import { strategicMerge, applyJson6902, parseSelector } from "./kustomize.mjs";
import { docChecks, loadDocs } from "./checks.mjs";

const dep = (docs, name) => docs.find((d) => d.kind === "Deployment" && d.metadata.name === name);
const cm = (docs, name) => docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === name);
const gwc = (docs) => dep(docs, "chat-gateway").spec.template.spec.containers[0];
const apic = (docs) => dep(docs, "chat-api").spec.template.spec.containers[0];
const np = (docs, name) => docs.find((d) => d.kind === "NetworkPolicy" && d.metadata.name === name);
const ing = (docs, name) => docs.find((d) => d.kind === "Ingress" && d.metadata.name === name);
const hpa = (docs, name) => docs.find((d) => d.kind === "HorizontalPodAutoscaler" && d.metadata.name === name);
const pgEnv = { name: "CHAT_PG_DSN", valueFrom: { secretKeyRef: { name: "chatcluster-secrets", key: "CHAT_PG_DSN" } } };

// [description, target dir, mutation, text expected in some failure]
const CASES = [
  ["misspelt field (readinesProbe)", "overlays/prod", (d) => {
    const c = gwc(d);
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
  }, "readinesProbe: unknown field"],
  ["wrong type (replicas: \"two\")", "base", (d) => { dep(d, "chat-persister").spec.replicas = "two"; }, "must be integer"],
  ["bad enum (imagePullPolicy)", "base", (d) => { gwc(d).imagePullPolicy = "Sometimes"; }, "imagePullPolicy"],
  ["unknown CHAT_* key in a ConfigMap", "base", (d) => { cm(d, "chatcluster-common").data.CHAT_BOGUS = "1"; },
    "CHAT_BOGUS is not a known"],
  ["gateway-only key given to the persister", "base", (d) => {
    cm(d, "chatcluster-persister").data.CHAT_JWT_ISSUER = "x";
  }, "CHAT_JWT_ISSUER (from configmap:chatcluster-persister) is not a setting of chat-persister"],
  ["secret in a ConfigMap", "overlays/dev", (d) => { cm(d, "chatcluster-common").data.CHAT_PG_DSN = "host=x"; },
    "must come from a Secret"],
  ["integer out of range", "base", (d) => { cm(d, "chatcluster-persister").data.CHAT_BATCH_MAX = "0"; },
    "CHAT_BATCH_MAX=\"0\""],
  ["metrics bound to loopback", "overlays/prod", (d) => {
    cm(d, "chatcluster-presence").data.CHAT_METRICS_ADDR = "127.0.0.1";
  }, "bind 0.0.0.0"],
  ["probe on an undeclared port", "base", (d) => { gwc(d).readinessProbe.httpGet.port = "htp"; },
    "port htp is not a port"],
  ["container port differs from CHAT_PORT", "base", (d) => { cm(d, "chatcluster-gateway").data.CHAT_PORT = "9090"; },
    "but CHAT_PORT is 9090"],
  ["Prometheus annotation on the wrong port", "base", (d) => {
    dep(d, "chat-persister").spec.template.metadata.annotations["prometheus.io/port"] = "9102";
  }, "prometheus.io/port"],
  ["Service selector matching nothing", "base", (d) => {
    d.find((x) => x.kind === "Service").spec.selector["app.kubernetes.io/component"] = "gw";
  }, "selector matches no pods"],
  ["Deployment selector not matching its pods", "base", (d) => {
    dep(d, "chat-presence").spec.selector.matchLabels["app.kubernetes.io/component"] = "presense";
  }, "does not match its pod template"],
  ["HPA pointing to a missing Deployment", "base", (d) => {
    d.find((x) => x.kind === "HorizontalPodAutoscaler").spec.scaleTargetRef.name = "chat-gw";
  }, "does not exist"],
  ["missing Secret key", "overlays/prod", (d) => {
    gwc(d).env.find((e) => e.name === "CHAT_JWT_KEYS").valueFrom.secretKeyRef.key = "JWT";
  }, "has no key JWT"],
  ["root filesystem writable", "base", (d) => { gwc(d).securityContext.readOnlyRootFilesystem = false; },
    "readOnlyRootFilesystem"],
  ["no preStop on the gateway", "base", (d) => { delete gwc(d).lifecycle; }, "preStop hook required"],
  ["CHAT_NODE_NAME not per pod", "base", (d) => {
    const e = gwc(d).env.find((x) => x.name === "CHAT_NODE_NAME");
    delete e.valueFrom;
    e.value = "gw";
  }, "unique per pod"],
  ["short WebSocket timeout on the Ingress", "base", (d) => {
    d.find((x) => x.kind === "Ingress" && x.metadata.name === "chatcluster")
      .metadata.annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] = "60";
  }, "proxy-read-timeout must be >= 3600"],
  ["undefined $(VAR) reference", "overlays/prod", (d) => {
    const env = gwc(d).env;
    env.splice(env.findIndex((e) => e.name === "KAFKA_SASL_PASSWORD"), 1);
  }, "references $(KAFKA_SASL_PASSWORD)"],
  ["wrong namespace", "overlays/dev", (d) => { dep(d, "chat-redis").metadata.namespace = "default"; },
    "expected \"chatcluster-dev\""],
  ["chat-api without CHAT_PG_DSN", "base", (d) => {
    const env = apic(d).env;
    env.splice(env.findIndex((e) => e.name === "CHAT_PG_DSN"), 1);
  }, "Deployment/chat-api: required CHAT_PG_DSN is not set"],
  ["CHAT_PG_DSN given to the gateway (it has no database)", "base", (d) => { gwc(d).env.push(structuredClone(pgEnv)); },
    "Deployment/chat-gateway: CHAT_PG_DSN: only chat-api and chat-persister may have database access"],
  ["CHAT_PG_DSN given to presence", "overlays/dev", (d) => {
    dep(d, "chat-presence").spec.template.spec.containers[0].env.push(structuredClone(pgEnv));
  }, "Deployment/chat-presence: CHAT_PG_DSN: only chat-api and chat-persister"],
  ["CloudNativePG component not patching chat-api", "overlays/prod", (d) => {
    apic(d).env.find((e) => e.name === "CHAT_PG_DSN").valueFrom.secretKeyRef = { name: "chatcluster-secrets", key: "CHAT_PG_DSN" };
  }, "Deployment/chat-api: CHAT_PG_DSN from chatcluster-secrets although CloudNativePG renders"],
  ["CHAT_TRUSTED_PROXY_HOPS out of range", "base", (d) => {
    cm(d, "chatcluster-api").data.CHAT_TRUSTED_PROXY_HOPS = "17";
  }, "CHAT_TRUSTED_PROXY_HOPS=\"17\""],
  ["CHAT_TRUSTED_PROXY_HOPS left at 0 behind the Ingress", "overlays/prod", (d) => {
    delete cm(d, "chatcluster-api").data.CHAT_TRUSTED_PROXY_HOPS;
  }, "Deployment/chat-api: CHAT_TRUSTED_PROXY_HOPS is 0"],
  ["proxy hops given to the gateway (it keeps no client addresses)", "base", (d) => {
    cm(d, "chatcluster-shared").data.CHAT_TRUSTED_PROXY_HOPS = "1";
  }, "CHAT_TRUSTED_PROXY_HOPS (from configmap:chatcluster-shared) is not a setting of chat-gateway"],
  ["a shared setting overridden for chat-api only", "overlays/prod", (d) => {
    cm(d, "chatcluster-api").data.CHAT_ACCESS_TTL_S = "600";
  }, "CHAT_ACCESS_TTL_S: the gateway and chat-api disagree"],
  ["the gateway verifying with another JWT key", "base", (d) => {
    gwc(d).env.find((e) => e.name === "CHAT_JWT_KEYS").valueFrom.secretKeyRef.name = "other-secrets";
  }, "CHAT_JWT_KEYS: the gateway and chat-api disagree"],
  ["chat-api setting out of range", "base", (d) => { cm(d, "chatcluster-api").data.CHAT_API_THREADS = "0"; },
    "CHAT_API_THREADS=\"0\""],
  ["outbox poll out of range", "base", (d) => { cm(d, "chatcluster-api").data.CHAT_OUTBOX_POLL_MS = "10"; },
    "CHAT_OUTBOX_POLL_MS=\"10\""],
  ["chat-api bound to loopback", "base", (d) => { cm(d, "chatcluster-api").data.CHAT_API_ADDR = "127.0.0.1"; },
    "CHAT_API_ADDR=127.0.0.1"],
  ["chat-api container port differs from CHAT_API_PORT", "base", (d) => { cm(d, "chatcluster-api").data.CHAT_API_PORT = "8082"; },
    "but CHAT_API_PORT is 8082"],
  ["an accounts setting left on the gateway", "base", (d) => { cm(d, "chatcluster-gateway").data.CHAT_LOGIN_PER_IP = "30"; },
    "CHAT_LOGIN_PER_IP (from configmap:chatcluster-gateway) is not a setting of chat-gateway"],
  ["chat-api without a PodDisruptionBudget", "base", (d) => {
    d.splice(d.findIndex((x) => x.kind === "PodDisruptionBudget" && x.metadata.name === "chat-api"), 1);
  }, "Deployment/chat-api: no PodDisruptionBudget"],
  ["chat-api without an HPA", "overlays/prod", (d) => {
    d.splice(d.findIndex((x) => x.kind === "HorizontalPodAutoscaler" && x.metadata.name === "chat-api"), 1);
  }, "chat-api: no HorizontalPodAutoscaler"],
  ["chat-api HPA of one pod", "overlays/dev", (d) => { hpa(d, "chat-api").spec.minReplicas = 1; },
    "chat-api HPA: minReplicas >= 2"],
  ["replicas on chat-api, which has an HPA (every apply resets it)", "overlays/dev", (d) => { dep(d, "chat-api").spec.replicas = 2; },
    "Deployment/chat-api has HorizontalPodAutoscaler/chat-api, so no replicas field"],
  ["replicas on the gateway in prod (a kustomize replicas: entry)", "overlays/prod", (d) => {
    dep(d, "chat-gateway").spec.replicas = 3;
  }, "Deployment/chat-gateway has HorizontalPodAutoscaler/chat-gateway, so no replicas field"],
  ["chat-api grace period shorter than its drain", "base", (d) => {
    dep(d, "chat-api").spec.template.spec.terminationGracePeriodSeconds = 15;
  }, "chat-api: terminationGracePeriodSeconds must cover"],
  ["chat-api grace period of 30 s (request timeout instead of the real waits)", "overlays/prod", (d) => {
    dep(d, "chat-api").spec.template.spec.terminationGracePeriodSeconds = 30;
  }, "chat-api: terminationGracePeriodSeconds must cover"],
  ["chat-api PostgreSQL timeout raised without the grace period", "base", (d) => {
    cm(d, "chatcluster-api").data.CHAT_PG_TIMEOUT_MS = "10000";
  }, "chat-api: terminationGracePeriodSeconds must cover"],
  ["chat-api Kafka timeout raised without the grace period (shared ConfigMap)", "base", (d) => {
    cm(d, "chatcluster-shared").data.CHAT_PRODUCE_TIMEOUT_MS = "10000";
  }, "chat-api: terminationGracePeriodSeconds must cover"],
  ["persister grace period below its drain and consumer closes", "base", (d) => {
    dep(d, "chat-persister").spec.template.spec.terminationGracePeriodSeconds = 20;
  }, "chat-persister: terminationGracePeriodSeconds 20 must cover its stop"],
  ["persister rollout with a surge pod (hangs at 12 pods)", "base", (d) => {
    dep(d, "chat-persister").spec.strategy.rollingUpdate = { maxSurge: 1, maxUnavailable: 0 };
  }, "Deployment/chat-persister: rollouts must stop one pod before starting its replacement"],
  ["gateway memory limit too small for CHAT_MAX_CONNS", "base", (d) => {
    cm(d, "chatcluster-gateway").data.CHAT_MAX_CONNS = "100000";
  }, "Deployment/chat-gateway: memory limit 1Gi"],
  ["gateway memory limit without room for the recovery cache", "overlays/prod", (d) => {
    cm(d, "chatcluster-gateway").data.CHAT_RECOVERY_BYTES = "268435456";
  }, "Deployment/chat-gateway: memory limit 2Gi"],
  ["chat-api HPA maximum beyond max_connections", "overlays/prod", (d) => { hpa(d, "chat-api").spec.maxReplicas = 40; },
    "Cluster/chat-pg: max_connections 200"],
  ["no preStop on chat-api", "base", (d) => { delete apic(d).lifecycle; }, "chat-api: preStop hook required"],
  ["/api/ routed to the gateway", "base", (d) => {
    ing(d, "chatcluster-api").spec.rules[0].http.paths[0].backend.service.name = "chat-gateway";
  }, "/api/ must go to Service chat-api"],
  ["no /api/ route", "overlays/prod", (d) => { d.splice(d.findIndex((x) => x.kind === "Ingress" && x.metadata.name === "chatcluster-api"), 1); },
    "no Ingress routes /api/ to chat-api"],
  ["/api/v1 to the gateway on the WebSocket Ingress", "base", (d) => {
    ing(d, "chatcluster").spec.rules[0].http.paths.push({ path: "/api/v1", pathType: "Prefix",
      backend: { service: { name: "chat-gateway", port: { name: "http" } } } });
  }, "/api/v1 must go to Service chat-api, not chat-gateway"],
  ["/ws not routed", "base", (d) => { ing(d, "chatcluster").spec.rules[0].http.paths.shift(); }, "no Ingress routes /ws"],
  ["REST request buffering off (slow clients hold chat-api threads)", "base", (d) => {
    ing(d, "chatcluster-api").metadata.annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] = "off";
  }, "proxy-request-buffering off would let slow clients"],
  ["Ingress body limit below CHAT_API_MAX_BODY", "base", (d) => {
    ing(d, "chatcluster-api").metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"] = "8k";
  }, "proxy-body-size 8k is below CHAT_API_MAX_BODY 16384"],
  ["/api/ served without the TLS of the host", "overlays/prod", (d) => { delete ing(d, "chatcluster-api").spec.tls; },
    "TLS differs from Ingress/chatcluster"],
  ["gateway allowed to reach PostgreSQL", "base", (d) => {
    np(d, "chat-gateway").spec.egress.push({ to: [{ podSelector: { matchLabels: { "cnpg.io/cluster": "chat-pg" } } }],
      ports: [{ protocol: "TCP", port: 5432 }] });
  }, "Deployment/chat-gateway may not reach PostgreSQL"],
  ["gateway egress open to everything", "overlays/prod", (d) => { np(d, "chat-gateway").spec.egress.push({}); },
    "Deployment/chat-gateway may not reach PostgreSQL"],
  ["chat-api without egress to PostgreSQL", "base", (d) => {
    const e = np(d, "chat-api").spec.egress;
    e.splice(e.findIndex((r) => r.ports?.some((p) => p.port === 5432)), 1);
  }, "Deployment/chat-api: no egress to PostgreSQL"],
  ["chat-api reachable from any pod of the namespace", "base", (d) => {
    np(d, "chat-api").spec.ingress[0].from.push({ podSelector: {} });
  }, "NetworkPolicy/chat-api: Deployment/chat-api admits ingress from"],
  ["persister reachable from the ingress controller", "base", (d) => {
    np(d, "chat-persister").spec.ingress[0].from.push({ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } } });
  }, "Deployment/chat-persister admits ingress from"],
  ["chat-api without a NetworkPolicy", "overlays/dev", (d) => {
    d.splice(d.findIndex((x) => x.kind === "NetworkPolicy" && x.metadata.name === "chat-api"), 1);
  }, "Deployment/chat-api: no NetworkPolicy with policyTypes Ingress and Egress"],
  ["Redis NetworkPolicy not admitting chat-api", "overlays/prod", (d) => {
    np(d, "chat-redis").spec.ingress[0].from[0].podSelector.matchExpressions[0].values = ["gateway", "presence"];
  }, "NetworkPolicy of chat-redis does not admit Deployment/chat-api"],
  ["presence without egress to Kafka's TLS port", "overlays/prod", (d) => {
    for (const r of np(d, "chat-presence").spec.egress) if (r.ports) r.ports = r.ports.filter((p) => p.port !== 9093);
  }, "Deployment/chat-presence: no egress to Kafka (port 9093"],
  ["session warning not shorter than the access token", "base", (d) => {
    cm(d, "chatcluster-gateway").data.CHAT_SESSION_WARN_S = "900";
  }, "CHAT_SESSION_WARN_S 900 >= CHAT_ACCESS_TTL_S 900"],
  ["accounts setting out of range", "base", (d) => { cm(d, "chatcluster-api").data.CHAT_PASSWORD_COST = "12"; },
    "CHAT_PASSWORD_COST=\"12\""],
  ["ad-hoc rooms", "overlays/dev", (d) => { cm(d, "chatcluster-shared").data.CHAT_ROOMS_ADHOC = "1"; },
    "Deployment/chat-api: CHAT_ROOMS_ADHOC must be 0"],
  ["ad-hoc rooms on the gateway only", "base", (d) => { cm(d, "chatcluster-gateway").data.CHAT_ROOMS_ADHOC = "1"; },
    "CHAT_ROOMS_ADHOC: the gateway and chat-api disagree"],
  ["grant lifetime overridden for chat-api only", "base", (d) => { cm(d, "chatcluster-api").data.CHAT_GRANT_TTL_S = "600"; },
    "CHAT_GRANT_TTL_S: the gateway and chat-api disagree"],
  ["chat-api assuming a longer recent cache than the persister keeps", "overlays/prod", (d) => {
    const e = apic(d).env.find((x) => x.name === "CHAT_RECENT_PER_ROOM");
    delete e.valueFrom;
    e.value = "1000";
  }, "CHAT_RECENT_PER_ROOM: chat-api and the persister disagree"],
  ["default member limit above the largest", "base", (d) => { cm(d, "chatcluster-api").data.CHAT_ROOM_MEMBER_LIMIT = "20000"; },
    "CHAT_ROOM_MEMBER_LIMIT 20000 > CHAT_ROOM_MEMBER_LIMIT_MAX 10000"],
  ["persister without egress to Redis (its recent cache)", "base", (d) => {
    const e = np(d, "chat-persister").spec.egress;
    e.splice(e.findIndex((r) => r.ports?.some((p) => p.port === 6379)), 1);
  }, "Deployment/chat-persister: no egress to Redis"],
];

// [description, file, text to replace, replacement, text expected in some failure]: the commands
// of k8s/README.md and the manifests' comments (docChecks).
const README = "k8s/README.md";
const DOC_CASES = [
  ["README loading the prod tag for the dev overlay", README, /chatcluster:dev\b/g, "chatcluster:0.1.0",
    "\"kubectl apply -k k8s/overlays/dev\" runs ghcr.io/chatcluster/chatcluster:dev, but the image built or loaded before it is :0.1.0"],
  ["README restarting every part-of=chatcluster Deployment (chat-redis too)", README,
    "-l 'app.kubernetes.io/part-of=chatcluster,app.kubernetes.io/component!=redis'", "-l app.kubernetes.io/part-of=chatcluster",
    "restarts Deployment/chat-redis in overlays/prod"],
  ["a ConfigMap comment restarting chat-redis", "k8s/base/configmap.yaml", "app.kubernetes.io/component!=redis",
    "app.kubernetes.io/name=chatcluster", "restarts Deployment/chat-redis in overlays/dev"],
  ["README restart selector missing a service", README, "app.kubernetes.io/component!=redis'\n",
    "app.kubernetes.io/component notin (redis,presence)'\n", "does not restart Deployment/chat-presence"],
  ["README rollout undo without the namespace", README, "kubectl -n chatcluster rollout undo", "kubectl rollout undo",
    "\"kubectl rollout undo deploy/chat-gateway\" has no -n <namespace>"],
];

function docCases(rendered, report) {
  const texts = loadDocs();
  for (const [what, file, from, to, expect] of DOC_CASES) {
    const copy = { ...texts };
    const before = copy[file] ?? "";
    copy[file] = before.replace(from, to);
    if (copy[file] === before) {
      report(`selftest: ${what} is caught`, [`${file} does not contain ${from}`]);
      continue;
    }
    const failures = docChecks(copy, rendered).flatMap(([name, errs]) => errs.map((e) => `${name}: ${e}`));
    report(`selftest: ${what} is caught`, failures.some((f) => f.includes(expect)) ? [] :
      [`no failure mentions "${expect}"`, ...failures.slice(0, 5)]);
  }
}

function rendererCases() {
  const errs = [];
  const eq = (what, a, b) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) errs.push(`${what}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`);
  };
  const base = { spec: { containers: [{ name: "a", env: [{ name: "X", value: "1" }], ports: [{ containerPort: 1 }] }],
    topologySpreadConstraints: [{ topologyKey: "z", whenUnsatisfiable: "ScheduleAnyway", maxSkew: 1 }] } };
  const m = strategicMerge(base, { spec: { containers: [{ name: "a", env: [{ name: "Y", value: "2" }, { name: "X", value: "3" }] },
    { name: "b" }], topologySpreadConstraints: [{ topologyKey: "z", whenUnsatisfiable: "DoNotSchedule", maxSkew: 1 }] } });
  // kubectl kustomize puts the items a patch names first (patch order), then the other base items.
  eq("SMP merges containers/env by name, patch items first", m.spec.containers[0].env,
    [{ name: "Y", value: "2" }, { name: "X", value: "3" }]);
  const envs = strategicMerge({ env: [{ name: "A" }, { name: "B", value: "1" }, { name: "C" }] },
    { env: [{ name: "B", value: "2" }] }).env;
  eq("SMP moves a patched env entry to the front", envs.map((e) => e.name + (e.value ?? "")), ["B2", "A", "C"]);
  const tsc = (k, s) => ({ topologyKey: k, whenUnsatisfiable: "ScheduleAnyway", ...(s ? { maxSkew: s } : {}) });
  const spread = strategicMerge({ topologySpreadConstraints: [tsc("z"), tsc("h")] },
    { topologySpreadConstraints: [tsc("n"), tsc("h", 2)] }).topologySpreadConstraints;
  eq("SMP spread constraints: new items first, named ones merged in place",
    spread.map((c) => c.topologyKey + (c.maxSkew ?? "")), ["n", "z", "h2"]);
  eq("SMP adds new containers after the named ones", m.spec.containers.map((c) => c.name), ["a", "b"]);
  eq("SMP keys spread constraints by topologyKey+whenUnsatisfiable", m.spec.topologySpreadConstraints.length, 2);
  eq("SMP null deletes", strategicMerge({ a: 1, b: 2 }, { a: null }), { b: 2 });
  eq("SMP $patch: delete removes a list item",
    strategicMerge({ env: [{ name: "A" }, { name: "B" }] }, { env: [{ name: "A", $patch: "delete" }] }), { env: [{ name: "B" }] });
  const j = applyJson6902({ a: { b: [1] }, "x/y": 1 }, [{ op: "add", path: "/a/b/-", value: 2 },
    { op: "replace", path: "/x~1y", value: 5 }, { op: "remove", path: "/a/b/0" }], "t");
  eq("JSON 6902 add/replace/remove", j, { a: { b: [2] }, "x/y": 5 });
  let threw = false;
  try {
    applyJson6902({ a: 1 }, [{ op: "test", path: "/a", value: 2 }], "t");
  } catch {
    threw = true;
  }
  eq("JSON 6902 failing test op throws", threw, true);
  const sel = parseSelector("app.kubernetes.io/component in (gateway,presence), tier!=db, !skip");
  eq("label selector in/!=/!", [sel({ "app.kubernetes.io/component": "gateway" }), sel({ "app.kubernetes.io/component": "redis" }),
    sel({ "app.kubernetes.io/component": "gateway", skip: "1" })], [true, false, false]);
  return errs;
}

export async function selftest(rendered, checkTarget, schemaErrors, report) {
  void schemaErrors;
  report("selftest: built-in renderer unit cases", rendererCases());
  docCases(rendered, report);
  for (const [what, dir, mutate, expect] of CASES) {
    const docs = rendered.get(dir);
    if (!docs) {
      report(`selftest: ${what} is caught`, [`${dir} did not render`]);
      continue;
    }
    const copy = structuredClone(docs);
    mutate(copy);
    const failures = [];
    await checkTarget({ dir, namespace: dir === "overlays/dev" ? "chatcluster-dev" : "chatcluster", app: true }, copy,
      (name, errs) => { failures.push(...errs.map((e) => `${name}: ${e}`)); });
    const hit = failures.some((f) => f.includes(expect));
    report(`selftest: ${what} is caught`, hit ? [] : [`no failure mentions "${expect}"`, ...failures.slice(0, 5)]);
  }
}
