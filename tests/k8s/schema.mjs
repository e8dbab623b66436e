// tests/k8s/schema.mjs - schema checks of single Kubernetes objects:
//  * validateModel(): the kubernetes-models class of the object's apiVersion/kind (JSON schema of
//    the Kubernetes OpenAPI: required fields, types, enums, formats);
//  * unknownFields(): fields the API does not define (a misspelt "readinesProbe" passes the
//    schema above but would be dropped, or rejected with --validate=strict, by the API server).
//    The field lists come from the TypeScript declarations shipped with kubernetes-models;
//  * validateCustom(): hand-written checks of the custom resources used here (Strimzi KafkaTopic
//    and KafkaUser, CloudNativePG Cluster), for which no models are installed.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const MODELS_DIR = path.dirname(require.resolve("kubernetes-models/package.json"));
const APIMACHINERY_DIR = path.dirname(require.resolve("@kubernetes-models/apimachinery/package.json"));

function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return group ? `${group}/${version}/${kind}` : `${version}/${kind}`;
}

export function hasModel(apiVersion, kind) {
  return fs.existsSync(path.join(MODELS_DIR, `${modelPath(apiVersion, kind)}.d.ts`));
}

// Returns a list of error strings (empty when the object is valid).
export async function validateModel(doc) {
  const rel = modelPath(doc.apiVersion, doc.kind);
  let mod;
  try {
    mod = await import(`kubernetes-models/${rel}`);
  } catch {
    return [`no Kubernetes model for ${doc.apiVersion} ${doc.kind}`];
  }
  const Cls = mod[doc.kind];
  try {
    new Cls(doc).validate();
    return [];
  } catch (e) {
    const errs = e.errors || e.details;
    if (Array.isArray(errs) && errs.length) {
      return errs.map((x) => `${x.instancePath || "/"} ${x.message}${x.params ? " " + JSON.stringify(x.params) : ""}`);
    }
    return [String(e.message || e)];
  }
}

// ---- unknown fields, from the .d.ts interfaces ----------------------------------------------

const dtsCache = new Map();

function resolveImport(fromFile, spec) {
  if (spec.startsWith(".")) return path.resolve(path.dirname(fromFile), `${spec}.d.ts`);
  const pfx = "@kubernetes-models/apimachinery/";
  if (spec.startsWith(pfx)) return path.join(APIMACHINERY_DIR, `${spec.slice(pfx.length)}.d.ts`);
  return null;
}

// Parses the first exported interface of a declaration file: {props: Map(name -> type text),
// imports: Map(identifier -> file)}; null when the file declares no interface (type aliases such
// as IntOrString and Quantity are leaves).
function parseDts(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  let result = null;
  if (file && fs.existsSync(file)) {
    const lines = fs.readFileSync(file, "utf8").split("\n");
    const imports = new Map();
    for (const l of lines) {
      const m = /^import \{ ([^}]+) \} from "([^"]+)";/.exec(l);
      if (!m) continue;
      for (const id of m[1].split(",").map((s) => s.trim())) imports.set(id, resolveImport(file, m[2]));
    }
    const start = lines.findIndex((l) => /^export interface I\w+/.test(l));
    if (start >= 0) {
      const props = new Map();
      if (/extends TypeMeta/.test(lines[start])) {
        props.set("apiVersion", "string");
        props.set("kind", "string");
      }
      for (let i = start + 1; i < lines.length && lines[i] !== "}"; i++) {
        const m = /^ {4}"([^"]+)"\??: (.*)$/.exec(lines[i]);
        if (m) props.set(m[1], m[2]);
      }
      result = { props, imports };
    }
  }
  dtsCache.set(file, result);
  return result;
}

function walkUnknown(value, file, where, out) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  const info = parseDts(file);
  if (!info) return;
  for (const [k, v] of Object.entries(value)) {
    if (!info.props.has(k)) {
      out.push(`${where}.${k}: unknown field`);
      continue;
    }
    const type = info.props.get(k);
    if (type.startsWith("{")) continue; // map[string]X or an inline object: not checked
    const ref = /IIoK8s\w+/.exec(type);
    if (!ref) continue;
    const child = info.imports.get(ref[0]);
    if (!child) continue;
    if (type.startsWith("Array<")) {
      if (Array.isArray(v)) v.forEach((item, i) => walkUnknown(item, child, `${where}.${k}[${i}]`, out));
    } else {
      walkUnknown(v, child, `${where}.${k}`, out);
    }
  }
}

export function unknownFields(doc) {
  const out = [];
  const file = path.join(MODELS_DIR, `${modelPath(doc.apiVersion, doc.kind)}.d.ts`);
  if (!parseDts(file)) return [`cannot read the field list of ${doc.apiVersion} ${doc.kind}`];
  walkUnknown(doc, file, "", out);
  return out;
}

// ---- custom resources ------------------------------------------------------------------------

function keysOnly(obj, allowed, where, out) {
  if (obj === null || typeof obj !== "object") return;
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) out.push(`${where}.${k}: unknown field`);
}

function isInt(v, min, max) {
  return Number.isInteger(v) && v >= min && v <= max;
}

const TOP = ["apiVersion", "kind", "metadata", "spec"];
const META = ["name", "namespace", "labels", "annotations"];

const CUSTOM = {
  "kafka.strimzi.io/v1beta2 KafkaTopic"(d, out) {
    keysOnly(d, TOP, "", out);
    keysOnly(d.metadata, META, ".metadata", out);
    const s = d.spec || {};
    keysOnly(s, ["topicName", "partitions", "replicas", "config"], ".spec", out);
    if (!d.metadata?.labels?.["strimzi.io/cluster"]) out.push(".metadata.labels: strimzi.io/cluster missing");
    if (!isInt(s.partitions, 1, 10000)) out.push(".spec.partitions: integer >= 1 required");
    if (!isInt(s.replicas, 1, 32767)) out.push(".spec.replicas: integer >= 1 required");
    const topic = s.topicName ?? d.metadata?.name;
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(topic || "")) out.push(`topic name "${topic}" is not a legal Kafka topic`);
    const isr = Number(s.config?.["min.insync.replicas"] ?? 1);
    if (isr > s.replicas) out.push(`min.insync.replicas ${isr} > replicas ${s.replicas}: produce with acks=all fails`);
    for (const [k, v] of Object.entries(s.config || {})) {
      if (!["string", "number", "boolean"].includes(typeof v)) out.push(`.spec.config.${k}: scalar required`);
    }
  },
  "kafka.strimzi.io/v1beta2 KafkaUser"(d, out) {
    keysOnly(d, TOP, "", out);
    keysOnly(d.metadata, META, ".metadata", out);
    const s = d.spec || {};
    keysOnly(s, ["authentication", "authorization", "quotas", "template"], ".spec", out);
    if (!d.metadata?.labels?.["strimzi.io/cluster"]) out.push(".metadata.labels: strimzi.io/cluster missing");
    const auth = s.authentication?.type;
    if (!["tls", "tls-external", "scram-sha-512"].includes(auth)) out.push(`.spec.authentication.type "${auth}" invalid`);
    if (s.authorization) {
      if (s.authorization.type !== "simple") out.push(".spec.authorization.type must be simple");
      const ops = ["Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "AlterConfigs",
        "DescribeConfigs", "IdempotentWrite", "All"];
      for (const [i, acl] of (s.authorization.acls || []).entries()) {
        keysOnly(acl, ["resource", "type", "host", "operations", "operation"], `.spec.authorization.acls[${i}]`, out);
        const r = acl.resource || {};
        if (!["topic", "group", "cluster", "transactionalId"].includes(r.type)) out.push(`acls[${i}]: bad resource.type`);
        if (r.type !== "cluster" && !r.name) out.push(`acls[${i}]: resource.name required`);
        if (r.patternType && !["literal", "prefix"].includes(r.patternType)) out.push(`acls[${i}]: bad patternType`);
        for (const op of acl.operations || []) if (!ops.includes(op)) out.push(`acls[${i}]: bad operation ${op}`);
      }
    }
  },
  "postgresql.cnpg.io/v1 Cluster"(d, out) {
    keysOnly(d, TOP, "", out);
    keysOnly(d.metadata, META, ".metadata", out);
    const s = d.spec || {};
    keysOnly(s, ["instances", "imageName", "primaryUpdateStrategy", "primaryUpdateMethod", "storage", "walStorage",
      "bootstrap", "postgresql", "resources", "affinity", "monitoring", "backup", "description",
      "enableSuperuserAccess", "managed", "topologySpreadConstraints"], ".spec", out);
    if (!isInt(s.instances, 1, 99)) out.push(".spec.instances: integer >= 1 required");
    if (!s.storage?.size) out.push(".spec.storage.size required");
    if (s.primaryUpdateStrategy && !["supervised", "unsupervised"].includes(s.primaryUpdateStrategy)) {
      out.push(".spec.primaryUpdateStrategy invalid");
    }
    const init = s.bootstrap?.initdb;
    if (init) keysOnly(init, ["database", "owner", "secret", "encoding", "localeCollate", "localeCType",
      "dataChecksums", "postInitSQL", "postInitApplicationSQL"], ".spec.bootstrap.initdb", out);
    for (const [k, v] of Object.entries(s.postgresql?.parameters || {})) {
      if (typeof v !== "string") out.push(`.spec.postgresql.parameters.${k}: must be a string`);
    }
  },
};

export function isCustom(doc) {
  return Object.hasOwn(CUSTOM, `${doc.apiVersion} ${doc.kind}`);
}

export function validateCustom(doc) {
  const out = [];
  CUSTOM[`${doc.apiVersion} ${doc.kind}`](doc, out);
  return out;
}
