#!/usr/bin/env node
// tests/k8s/validate.mjs - offline checks of the Kubernetes manifests in k8s/.
//
// Renders every kustomization (built-in renderer in kustomize.mjs; when kubectl is installed also
// `kubectl kustomize`, and both renderings must be identical), then checks every object:
//   schema   the kubernetes-models class (types, enums, required fields) + no unknown fields;
//            hand-written checks for the Strimzi and CloudNativePG custom resources
//   config   every CHAT_* name in ConfigMaps and env is a known config key of the service that
//            reads it; secrets come from Secrets; required keys are set; numbers parse and fit
//   wiring   probes and Prometheus annotations point to declared ports, which equal the ports in
//            the config; selectors match their pods; Services, Ingresses, PDBs, HPAs,
//            NetworkPolicies, ConfigMaps, Secrets and ServiceAccounts referenced exist
//   policy   non-root, read-only root fs, no capabilities, resources, drain settings, ...
//   kafka    KafkaTopics carry the contract's names and partition counts and match the brokers
// Usage: node validate.mjs [--renderer=auto|builtin|kubectl] [--selftest] [--dump=DIR] [-v]
//        [--yamllint=pass|fail]   (run.sh passes yamllint's result so the closing line counts it)
// With CHAT_BIN=<build/bin> the CHAT_* names are also compared with each binary's --help.
// Exit status 0 when everything passed, 1 otherwise. The last line is "N passed, M failed".

import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { render, resId, loadYamlDocs } from "./kustomize.mjs";
import { hasModel, validateModel, unknownFields, isCustom, validateCustom } from "./schema.mjs";
import { projectChecks, exampleSecretChecks, kafkaCrossChecks, docChecks, loadDocs, SERVICES } from "./checks.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const K8S = path.resolve(HERE, "../../k8s");

// What gets rendered, and the namespace every namespaced object must end up in.
export const TARGETS = [
  { dir: "base", namespace: "chatcluster", app: true },
  { dir: "overlays/dev", namespace: "chatcluster-dev", app: true },
  { dir: "overlays/prod", namespace: "chatcluster", app: true },
  { dir: "kafka/dev", namespace: "kafka", app: false },
  { dir: "kafka/prod", namespace: "kafka", app: false },
];

const args = process.argv.slice(2);
const opt = (name, def) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : def;
};
const VERBOSE = args.includes("-v") || args.includes("--verbose");

let passed = 0;
let failed = 0;

function report(name, errors) {
  if (errors.length === 0) {
    passed++;
    if (VERBOSE) console.log(`ok    ${name}`);
    return;
  }
  failed++;
  console.log(`FAIL  ${name}`);
  for (const e of errors.slice(0, 25)) console.log(`        ${e}`);
  if (errors.length > 25) console.log(`        ... ${errors.length - 25} more`);
}

function haveKubectl() {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function kubectlRender(dir) {
  const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return YAML.parseAllDocuments(out).map((d) => d.toJS()).filter((d) => d !== null && d !== undefined);
}

function canonical(v) {
  return JSON.stringify(v, (k, x) =>
    x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x);
}

function compareRenders(a, b) {
  const errs = [];
  const ma = new Map(a.map((d) => [resId(d), d]));
  const mb = new Map(b.map((d) => [resId(d), d]));
  for (const id of new Set([...ma.keys(), ...mb.keys()])) {
    if (!ma.has(id)) errs.push(`${id}: only in kubectl's output`);
    else if (!mb.has(id)) errs.push(`${id}: only in the built-in renderer's output`);
    else if (canonical(ma.get(id)) !== canonical(mb.get(id))) errs.push(`${id}: renderings differ`);
  }
  return errs;
}

async function schemaErrors(doc) {
  if (isCustom(doc)) return validateCustom(doc);
  if (!hasModel(doc.apiVersion, doc.kind)) return [`no schema known for ${doc.apiVersion} ${doc.kind}`];
  return [...(await validateModel(doc)), ...unknownFields(doc)];
}

// Runs every check on one rendered target; returns nothing, reports as it goes.
export async function checkTarget(t, docs, reportFn = report) {
  const schema = [];
  for (const d of docs) {
    for (const e of await schemaErrors(d)) schema.push(`${d.kind}/${d.metadata?.name}: ${e}`);
  }
  reportFn(`${t.dir}: ${docs.length} objects valid against their schemas, no unknown fields`, schema);
  for (const [name, errs] of projectChecks(t, docs)) reportFn(`${t.dir}: ${name}`, errs);
}

function lintedFiles() {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name)) out.push(p);
    }
  };
  walk(K8S);
  return out;
}

async function main() {
  const mode = opt("renderer", "auto");
  const useKubectl = mode === "kubectl" || (mode === "auto" && haveKubectl());
  const useBuiltin = mode !== "kubectl";
  const dump = opt("dump", "");
  if (!useKubectl) console.log(`note: ${mode === "auto" ? "kubectl not found; " : ""}rendering with the built-in renderer only`);

  // Every YAML file parses, and is referenced by some kustomization or is the secret example.
  const parseErrs = [];
  for (const f of lintedFiles()) {
    try {
      loadYamlDocs(f);
    } catch (e) {
      parseErrs.push(String(e.message));
    }
  }
  report("k8s/**/*.yaml parse", parseErrs);
  const lint = opt("yamllint", "");
  if (lint) report("yamllint k8s/ (run by run.sh)", lint === "pass" ? [] : ["see the yamllint output above"]);

  const rendered = new Map();
  for (const t of TARGETS) {
    const dir = path.join(K8S, t.dir);
    let docs = null;
    if (useBuiltin) {
      try {
        docs = render(dir);
        report(`${t.dir}: rendered (built-in)`, []);
      } catch (e) {
        report(`${t.dir}: rendered (built-in)`, [String(e.message)]);
      }
    }
    if (useKubectl) {
      try {
        const kdocs = kubectlRender(dir);
        report(`${t.dir}: rendered (kubectl kustomize)`, []);
        if (docs) report(`${t.dir}: built-in rendering identical to kubectl's`, compareRenders(docs, kdocs));
        docs = kdocs; // check what operators will actually apply
      } catch (e) {
        report(`${t.dir}: rendered (kubectl kustomize)`, [String(e.stderr || e.message).trim()]);
      }
    }
    if (!docs) continue;
    rendered.set(t.dir, docs);
    if (dump) {
      fs.mkdirSync(dump, { recursive: true });
      const file = path.join(dump, `${t.dir.replace(/\//g, "_")}.yaml`);
      fs.writeFileSync(file, docs.map((d) => YAML.stringify(d)).join("---\n"));
    }
    await checkTarget(t, docs);
  }

  for (const [name, errs] of kafkaCrossChecks(rendered)) report(name, errs);
  const exampleDocs = loadYamlDocs(path.join(K8S, "base/secret.example.yaml"));
  const exampleSchema = [];
  for (const d of exampleDocs) exampleSchema.push(...(await schemaErrors(d)));
  report("base/secret.example.yaml: valid Secret", exampleSchema);
  for (const [name, errs] of exampleSecretChecks(exampleDocs, rendered)) report(name, errs);
  for (const [name, errs] of docChecks(loadDocs(), rendered)) report(name, errs);

  if (process.env.CHAT_BIN) binaryChecks(process.env.CHAT_BIN, rendered);

  if (args.includes("--selftest")) {
    const { selftest } = await import("./selftest.mjs");
    await selftest(rendered, checkTarget, schemaErrors, report);
  }

  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

// Compares the CHAT_* names the manifests set with the names each built binary documents in
// --help: a name the binary does not know is an error (the setting would be ignored); a name the
// binary knows that the table in checks.mjs lacks is an error too (the table is out of date).
// Also checks every value the manifests give an integer option against the range --help states.
function binaryChecks(bin, rendered) {
  const ranges = new Map();
  for (const [svc, spec] of Object.entries(SERVICES)) {
    const exe = path.join(bin, spec.binary);
    if (!fs.existsSync(exe)) {
      console.log(`note: ${exe} not built; skipping its --help comparison`);
      continue;
    }
    let help = "";
    try {
      help = execFileSync(exe, ["--help"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10000 });
    } catch (e) {
      help = String(e.stdout || "");
    }
    const names = new Set(help.match(/CHAT_[A-Z0-9_]+/g) || []);
    for (const m of help.matchAll(/env (CHAT_[A-Z0-9_]+), integer (-?\d+)\.\.(-?\d+)/g)) {
      ranges.set(`${svc} ${m[1]}`, [Number(m[2]), Number(m[3])]);
    }
    const errs = [];
    if (!names.size) errs.push(`${spec.binary} --help lists no CHAT_* variables`);
    for (const n of names) if (!spec.env.has(n)) errs.push(`${n}: documented by ${spec.binary} but missing from checks.mjs`);
    for (const n of spec.env) if (!names.has(n)) errs.push(`${n}: in checks.mjs but unknown to ${spec.binary}`);
    // the defaults the checks compute with when the manifests leave a setting out
    const defaults = new Map([...help.matchAll(/env (CHAT_[A-Z0-9_]+),[^\n]*default '([^']*)'/g)].map((m) => [m[1], m[2]]));
    for (const [k, v] of Object.entries(spec.defaults || {})) {
      if (defaults.get(k) !== v) errs.push(`${k}: checks.mjs assumes the default ${v}, ${spec.binary} --help says ${defaults.get(k)}`);
    }
    report(`${spec.binary} --help matches the known CHAT_* names (and the assumed defaults) of ${svc}`,
      names.size ? errs : errs.slice(0, 1));
  }
  for (const [dir, docs] of rendered) {
    const errs = [];
    const cms = new Map(docs.filter((d) => d.kind === "ConfigMap").map((d) => [d.metadata.name, d]));
    for (const w of docs.filter((d) => d.kind === "Deployment")) {
      const svc = w.spec.template.metadata?.labels?.["app.kubernetes.io/component"];
      const c = w.spec.template.spec.containers[0];
      const vals = [];
      for (const ef of c.envFrom || []) {
        for (const [k, v] of Object.entries(cms.get(ef.configMapRef?.name)?.data || {})) vals.push([k, v]);
      }
      for (const e of c.env || []) if (e.value !== undefined) vals.push([e.name, e.value]);
      for (const [k, v] of vals) {
        const r = ranges.get(`${svc} ${k}`);
        if (r && !(/^-?\d+$/.test(v) && Number(v) >= r[0] && Number(v) <= r[1])) {
          errs.push(`${w.metadata.name}: ${k}="${v}" outside ${r[0]}..${r[1]} (--help of the binary)`);
        }
      }
    }
    if (ranges.size && docs.some((d) => d.kind === "Deployment")) report(`${dir}: integer settings within the ranges the binaries document`, errs);
  }
}

main().catch((e) => {
  console.error(e);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exitCode = 1;
});
