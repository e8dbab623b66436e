// tests/k8s/kustomize.mjs - a small, offline kustomize for the subset the chatcluster manifests use,
// so the manifests can be checked on machines without kubectl. When kubectl is present,
// validate.mjs renders with `kubectl kustomize` too and requires both results to be identical, so
// this renderer cannot silently drift from the real one.
//
// Supported kustomization fields: apiVersion, kind (Kustomization | Component), namespace,
// resources (files and directories), components, images, replicas, patches (strategic merge or
// JSON 6902, from path or inline, with or without target). Anything else is an error, on purpose:
// add it here (and to the comparison test) before using it in k8s/.

import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

const KUSTOMIZATION_FIELDS = new Set([
  "apiVersion", "kind", "namespace", "resources", "components", "images", "replicas", "patches",
]);

// Kinds that are not namespaced (the namespace transformer leaves them alone, except Namespace,
// whose name it sets, as kustomize does).
const CLUSTER_SCOPED = new Set([
  "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
  "StorageClass", "IngressClass", "PriorityClass", "ValidatingWebhookConfiguration",
  "MutatingWebhookConfiguration", "APIService", "Node", "RuntimeClass",
]);

// Strategic-merge keys of the list fields the manifests patch (the Kubernetes API's
// x-kubernetes-list-map-keys, which kustomize uses). Lists not listed here are replaced.
function mergeKeysFor(field, parentField) {
  switch (field) {
    case "containers":
    case "initContainers":
    case "ephemeralContainers":
    case "env":
    case "volumes":
    case "imagePullSecrets":
      return ["name"];
    case "volumeMounts":
      return ["mountPath"];
    case "ports":
      return parentField === "containers" || parentField === "initContainers"
        ? ["containerPort", "protocol"]
        : ["port", "protocol"];
    case "topologySpreadConstraints":
      return ["topologyKey", "whenUnsatisfiable"];
    case "hostAliases":
      return ["ip"];
    default:
      return null;
  }
}

// Values of absent "protocol" keys default to TCP, as the API server does.
function sameKey(a, b, keys) {
  return keys.every((k) => (a[k] ?? (k === "protocol" ? "TCP" : undefined)) === (b[k] ?? (k === "protocol" ? "TCP" : undefined)));
}

export class KustomizeError extends Error {}

export function loadYamlDocs(file) {
  const text = fs.readFileSync(file, "utf8");
  const docs = YAML.parseAllDocuments(text);
  const out = [];
  for (const d of docs) {
    if (d.errors.length) throw new KustomizeError(`${file}: ${d.errors[0].message}`);
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

function isObj(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function clone(v) {
  return structuredClone(v);
}

function groupOf(apiVersion) {
  return apiVersion && apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
}

function versionOf(apiVersion) {
  return apiVersion && apiVersion.includes("/") ? apiVersion.split("/")[1] : apiVersion;
}

export function resId(d) {
  const ns = d.metadata?.namespace ?? "";
  return `${groupOf(d.apiVersion) || "core"}/${d.kind}/${ns}/${d.metadata?.name}`;
}

// ---- label selectors -------------------------------------------------------------------------

// Parses "a=b,c!=d,e in (x,y),f notin (z),g,!h" into a matcher over a labels object.
export function parseSelector(s) {
  const reqs = [];
  const parts = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) parts.push(cur);
  for (const raw of parts) {
    const p = raw.trim();
    let m;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p))) {
      const vals = m[3].split(",").map((x) => x.trim()).filter(Boolean);
      reqs.push(m[2] === "in" ? (l) => vals.includes(l[m[1]]) : (l) => !vals.includes(l[m[1]]));
    } else if ((m = /^([\w./-]+)\s*!=\s*([\w./-]*)$/.exec(p))) {
      reqs.push((l) => l[m[1]] !== m[2]);
    } else if ((m = /^([\w./-]+)\s*==?\s*([\w./-]*)$/.exec(p))) {
      reqs.push((l) => l[m[1]] === m[2]);
    } else if ((m = /^!([\w./-]+)$/.exec(p))) {
      reqs.push((l) => !(m[1] in l));
    } else if ((m = /^([\w./-]+)$/.exec(p))) {
      reqs.push((l) => m[1] in l);
    } else {
      throw new KustomizeError(`unsupported label selector "${s}"`);
    }
  }
  return (labels) => reqs.every((r) => r(labels || {}));
}

function matchesTarget(d, t) {
  if (t.group !== undefined && groupOf(d.apiVersion) !== t.group) return false;
  if (t.version !== undefined && versionOf(d.apiVersion) !== t.version) return false;
  if (t.kind !== undefined && d.kind !== t.kind) return false;
  if (t.name !== undefined && !new RegExp(`^(?:${t.name})$`).test(d.metadata?.name ?? "")) return false;
  if (t.namespace !== undefined && (d.metadata?.namespace ?? "") !== t.namespace) return false;
  if (t.labelSelector !== undefined && !parseSelector(t.labelSelector)(d.metadata?.labels)) return false;
  if (t.annotationSelector !== undefined && !parseSelector(t.annotationSelector)(d.metadata?.annotations)) {
    return false;
  }
  return true;
}

// ---- strategic merge patch -------------------------------------------------------------------

export function strategicMerge(base, patch, field = "", parentField = "") {
  if (patch === null) return undefined; // null deletes the key
  if (isObj(patch)) {
    if (patch.$patch === "delete") return undefined;
    if (patch.$patch === "replace") {
      const r = clone(patch);
      delete r.$patch;
      return r;
    }
    const out = isObj(base) ? clone(base) : {};
    for (const [k, v] of Object.entries(patch)) {
      if (k === "$patch") continue;
      const merged = strategicMerge(out[k], v, k, field);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  if (Array.isArray(patch)) {
    const keys = mergeKeysFor(field, parentField);
    if (!keys || !Array.isArray(base) || !patch.every(isObj)) return clone(patch);
    // Order of the result, as `kubectl kustomize` (kustomize v5) produces it:
    //  - topologySpreadConstraints: items new in the patch first, in patch order, then the base
    //    items in base order, those the patch names merged in place;
    //  - every other merge-keyed list (env, containers, volumes, volumeMounts, ports, ...): the
    //    items the patch names first, in patch order (merged with their base item when there is
    //    one), then the base items the patch does not name, in base order. So a patched env entry
    //    moves to the front of its list, which matters for $(VAR) references.
    const inPlace = field === "topologySpreadConstraints";
    const rest = clone(base);
    const named = [];
    const added = [];
    for (const item of patch) {
      const idx = rest.findIndex((b) => isObj(b) && sameKey(b, item, keys));
      if (item.$patch === "delete") {
        if (idx >= 0) rest.splice(idx, 1);
      } else if (idx >= 0) {
        const merged = strategicMerge(rest[idx], item, field, parentField);
        if (inPlace) rest[idx] = merged;
        else {
          rest.splice(idx, 1);
          named.push(merged);
        }
      } else {
        const c = clone(item);
        delete c.$patch;
        (inPlace ? added : named).push(c);
      }
    }
    return [...added, ...named, ...rest];
  }
  return patch;
}

// ---- JSON 6902 -------------------------------------------------------------------------------

function splitPointer(p) {
  if (p === "") return [];
  if (!p.startsWith("/")) throw new KustomizeError(`bad JSON pointer "${p}"`);
  return p.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

export function applyJson6902(doc, ops, where) {
  const out = clone(doc);
  for (const op of ops) {
    const parts = splitPointer(op.path);
    const last = parts.pop();
    let parent = out;
    for (const p of parts) {
      parent = Array.isArray(parent) ? parent[Number(p)] : parent?.[p];
      if (parent === undefined || parent === null) {
        throw new KustomizeError(`${where}: path ${op.path} does not exist in ${resId(doc)}`);
      }
    }
    const has = Array.isArray(parent) ? Number(last) < parent.length : Object.hasOwn(parent, last);
    switch (op.op) {
      case "add":
        if (Array.isArray(parent)) {
          if (last === "-") parent.push(clone(op.value));
          else parent.splice(Number(last), 0, clone(op.value));
        } else parent[last] = clone(op.value);
        break;
      case "replace":
        if (!has) throw new KustomizeError(`${where}: replace of missing ${op.path} in ${resId(doc)}`);
        parent[last] = clone(op.value);
        break;
      case "remove":
        if (!has) throw new KustomizeError(`${where}: remove of missing ${op.path} in ${resId(doc)}`);
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else delete parent[last];
        break;
      case "test":
        if (!has || JSON.stringify(parent[last]) !== JSON.stringify(op.value)) {
          throw new KustomizeError(`${where}: test of ${op.path} failed in ${resId(doc)}`);
        }
        break;
      default:
        throw new KustomizeError(`${where}: JSON 6902 op "${op.op}" is not supported here`);
    }
  }
  return out;
}

// ---- transformers ----------------------------------------------------------------------------

function applyPatches(docs, patches, dir) {
  for (const [i, p] of (patches || []).entries()) {
    const where = `${dir}: patches[${i}]`;
    let parsed;
    if (p.path !== undefined) parsed = loadYamlDocs(path.join(dir, p.path));
    else if (p.patch !== undefined) parsed = YAML.parseAllDocuments(p.patch).map((d) => d.toJS());
    else throw new KustomizeError(`${where}: needs "path" or "patch"`);
    parsed = parsed.filter((x) => x !== null && x !== undefined);
    if (parsed.length === 1 && Array.isArray(parsed[0])) {
      if (!p.target) throw new KustomizeError(`${where}: a JSON 6902 patch needs a target`);
      let n = 0;
      for (let j = 0; j < docs.length; j++) {
        if (matchesTarget(docs[j], p.target)) {
          docs[j] = applyJson6902(docs[j], parsed[0], where);
          n++;
        }
      }
      if (!n) throw new KustomizeError(`${where}: target matches no resource`);
      continue;
    }
    for (const sp of parsed) {
      const t = p.target ?? {
        group: groupOf(sp.apiVersion),
        version: versionOf(sp.apiVersion),
        kind: sp.kind,
        name: escapeRe(sp.metadata?.name ?? ""),
        ...(sp.metadata?.namespace ? { namespace: sp.metadata.namespace } : {}),
      };
      let n = 0;
      for (let j = 0; j < docs.length; j++) {
        if (!matchesTarget(docs[j], t)) continue;
        const body = clone(sp);
        if (p.target) {
          // With an explicit target the patch's own name is a placeholder.
          delete body.metadata?.name;
        }
        docs[j] = strategicMerge(docs[j], body);
        n++;
      }
      if (!n) throw new KustomizeError(`${where}: patch for ${sp.kind}/${sp.metadata?.name} matches no resource`);
    }
  }
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function applyNamespace(docs, ns) {
  for (const d of docs) {
    d.metadata = d.metadata || {};
    if (d.kind === "Namespace") d.metadata.name = ns;
    else if (!CLUSTER_SCOPED.has(d.kind)) d.metadata.namespace = ns;
  }
}

function splitImage(image) {
  const at = image.indexOf("@");
  if (at >= 0) return { name: image.slice(0, at), tag: null, digest: image.slice(at + 1) };
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  if (colon > slash) return { name: image.slice(0, colon), tag: image.slice(colon + 1), digest: null };
  return { name: image, tag: null, digest: null };
}

function applyImages(docs, images) {
  const visit = (node, field) => {
    if (Array.isArray(node)) {
      for (const x of node) visit(x, field);
      return;
    }
    if (!isObj(node)) return;
    if ((field === "containers" || field === "initContainers") && typeof node.image === "string") {
      const cur = splitImage(node.image);
      for (const im of images) {
        if (cur.name !== im.name) continue;
        const name = im.newName ?? cur.name;
        if (im.digest) node.image = `${name}@${im.digest}`;
        else if (im.newTag) node.image = `${name}:${im.newTag}`;
        else if (cur.digest) node.image = `${name}@${cur.digest}`;
        else node.image = cur.tag ? `${name}:${cur.tag}` : name;
      }
    }
    for (const [k, v] of Object.entries(node)) visit(v, k);
  };
  for (const d of docs) visit(d, "");
}

function applyReplicas(docs, replicas, dir) {
  const kinds = new Set(["Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"]);
  for (const r of replicas) {
    let n = 0;
    for (const d of docs) {
      if (kinds.has(d.kind) && d.metadata?.name === r.name) {
        d.spec = d.spec || {};
        d.spec.replicas = r.count;
        n++;
      }
    }
    if (!n) throw new KustomizeError(`${dir}: replicas for "${r.name}" matches no workload`);
  }
}

// ---- driver ----------------------------------------------------------------------------------

function readKustomization(dir) {
  for (const n of ["kustomization.yaml", "kustomization.yml", "Kustomization"]) {
    const f = path.join(dir, n);
    if (fs.existsSync(f)) {
      const k = YAML.parse(fs.readFileSync(f, "utf8")) || {};
      for (const key of Object.keys(k)) {
        if (!KUSTOMIZATION_FIELDS.has(key)) {
          throw new KustomizeError(`${f}: field "${key}" is not supported by tests/k8s/kustomize.mjs`);
        }
      }
      return k;
    }
  }
  throw new KustomizeError(`${dir}: no kustomization.yaml`);
}

function applyOwnTransformers(docs, k, dir) {
  applyPatches(docs, k.patches, dir);
  if (k.namespace) applyNamespace(docs, k.namespace);
  if (k.replicas) applyReplicas(docs, k.replicas, dir);
  if (k.images) applyImages(docs, k.images);
}

// Renders the kustomization in dir; returns the list of resources (plain objects).
export function render(dir) {
  const k = readKustomization(dir);
  if (k.kind === "Component") throw new KustomizeError(`${dir}: a Component cannot be rendered alone`);
  const docs = [];
  for (const r of k.resources || []) {
    const p = path.resolve(dir, r);
    if (fs.statSync(p).isDirectory()) docs.push(...render(p));
    else docs.push(...loadYamlDocs(p));
  }
  for (const c of k.components || []) {
    const cdir = path.resolve(dir, c);
    const ck = readKustomization(cdir);
    if (ck.kind !== "Component") throw new KustomizeError(`${cdir}: not a Component`);
    for (const r of ck.resources || []) docs.push(...loadYamlDocs(path.resolve(cdir, r)));
    applyOwnTransformers(docs, ck, cdir);
  }
  applyOwnTransformers(docs, k, dir);
  const seen = new Set();
  for (const d of docs) {
    const id = resId(d);
    if (seen.has(id)) throw new KustomizeError(`${dir}: duplicate resource ${id}`);
    seen.add(id);
  }
  return docs;
}
