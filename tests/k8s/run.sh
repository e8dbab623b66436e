#!/usr/bin/env bash
# tests/k8s/run.sh - offline checks of the Kubernetes manifests in k8s/:
#   1. yamllint with k8s/.yamllint (installed with apt-get when missing and running as root)
#   2. node validate.mjs --selftest (npm deps installed with `npm ci` when missing)
# Exits non-zero when anything fails. Extra arguments go to validate.mjs (e.g. -v, --dump=DIR,
# --renderer=builtin). Set CHAT_BIN=<build>/bin to compare the CHAT_* names with each --help.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
rc=0

if ! command -v yamllint >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing yamllint" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq yamllint >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq yamllint >/dev/null; }
  fi
fi
if ! command -v yamllint >/dev/null 2>&1; then
  echo "run.sh: yamllint is not installed (apt-get install yamllint)" >&2
  exit 2
fi
if ! command -v node >/dev/null 2>&1; then
  echo "run.sh: node is not installed" >&2
  exit 2
fi

if [ ! -d "$here/node_modules/kubernetes-models" ] || [ ! -d "$here/node_modules/yaml" ] ||
   [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  echo "run.sh: npm ci in tests/k8s" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

echo "== yamllint k8s/"
lint=pass
yamllint --strict -c "$root/k8s/.yamllint" "$root/k8s" || { lint=fail; rc=1; }

echo "== validate.mjs"
# The yamllint result is counted in validate.mjs's closing "N passed, M failed" line.
node "$here/validate.mjs" --selftest --yamllint="$lint" "$@" || rc=1

exit "$rc"
