#!/usr/bin/env bash
# Runs the AWS SAM CLI against template.yaml: `scripts/sam.sh validate --lint`, `scripts/sam.sh build`, ...
#
# aws-sam-cli pins its own dependencies (boto3, cfn-lint, pydantic, ...), so it lives in its own venv
# under .local/sam-venv, never in the project's .venv. Idempotent: the venv is created and SAM installed
# only when missing or when SAM_CLI_VERSION changes (a stamp file tracks it).
#
# Offline by default: a dummy region and credentials are set (only when none are configured) so that
# `sam validate` / `sam build` never need an AWS account; nothing here contacts AWS. For `sam deploy`
# export your own AWS_PROFILE / credentials first (they win over the dummies).
#
# `sam build` additionally: builds without containers (no Docker here), then precompiles bytecode for
# the Lambda runtime (python3.12) with unchecked-hash .pyc files (valid regardless of mtimes in the zip).
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_CLI_SPEC=${SAM_CLI_SPEC:-"aws-sam-cli>=1.130,<2"}
VENV=.local/sam-venv
TEMPLATE=template.yaml

# The SAM venv needs Python 3.12: it is also the interpreter `sam build` uses for the python3.12 runtime.
PY312=""
for c in "${PYTHON312:-}" python3.12 "$(command -v pyenv >/dev/null 2>&1 && ls -d "$(pyenv root)"/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)"; do
  [ -n "$c" ] || continue
  if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then PY312=$c; break; fi
done
if [ -z "$PY312" ]; then
  cand=$(scripts/find-python.sh)
  if "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then PY312=$cand; fi
fi
if [ -z "$PY312" ]; then
  echo "error: Python 3.12 (the Lambda runtime) is needed for SAM builds (pyenv install 3.12)" >&2
  exit 1
fi

stamp="$VENV/.installed-$(printf '%s' "$SAM_CLI_SPEC" | sha1sum | cut -c1-12)"
if [ ! -x "$VENV/bin/sam" ] || [ ! -f "$stamp" ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    echo "sam.sh: creating $VENV with $PY312"
    mkdir -p .local
    "$PY312" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
  echo "sam.sh: installing $SAM_CLI_SPEC into $VENV"
  "$VENV/bin/python" -m pip install -q "$SAM_CLI_SPEC"
  rm -f "$VENV"/.installed-*; touch "$stamp"
fi

# sam build's python workflow looks up `python3.12` on PATH: put the 3.12 interpreter's dir first.
export PATH="$(dirname "$("$PY312" -c 'import sys; print(sys.executable)')"):$PATH"
export SAM_CLI_TELEMETRY=0

export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-${AWS_REGION:-eu-north-1}}
export AWS_REGION=${AWS_REGION:-$AWS_DEFAULT_REGION}
if [ -z "${AWS_PROFILE:-}" ] && [ -z "${AWS_ACCESS_KEY_ID:-}" ] && [ ! -f "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" ]; then
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
  export AWS_EC2_METADATA_DISABLED=true
fi

# Trims what the Lambda never loads, so function + layer stay under the 250 MB unzipped limit
# (measured figures: docs/deployment.md). Runs on every build; `sam deploy` packages these trimmed dirs.
prune_build() {
  local root=$1 d
  [ -d "$root" ] || return 0
  for d in "$root"/*/; do
    if [ -d "$d/ortools" ]; then
      # OR-Tools declares numpy and pandas for math_opt / model_builder / cp_model helpers; the routing
      # solver (ortools.constraint_solver) needs neither (tests/architecture checks that with both
      # blocked). ~150 MB unzipped on aarch64 -- without this the dispatch functions exceed the limit.
      rm -rf "$d"pandas "$d"pandas.libs "$d"pandas-*.dist-info "$d"numpy "$d"numpy.libs "$d"numpy-*.dist-info
    fi
    # Type stubs, third-party test suites and bytecode of other interpreters are never used at runtime.
    find "$d" -name '*.pyi' -type f -delete
    find "$d" -depth -type d -name tests \
      ! -path "*/homevisits/*" ! -path "*/booking/*" ! -path "*/dispatch/*" ! -path "*/payments/*" \
      -exec rm -rf {} +
    find "$d" -name '*.pyc' ! -name '*.cpython-312*.pyc' -type f -delete
  done
}

cmd=${1:-}
if [ -z "$cmd" ]; then exec "$VENV/bin/sam" --help; fi
shift

case "$cmd" in
  build)
    build_dir=.aws-sam/build
    args=("$@")
    for i in "${!args[@]}"; do
      case "${args[$i]}" in
        -b|--build-dir) build_dir=${args[$((i + 1))]:-$build_dir} ;;
        --build-dir=*) build_dir=${args[$i]#--build-dir=} ;;
      esac
    done
    "$VENV/bin/sam" build --template-file "$TEMPLATE" "$@"
    prune_build "$build_dir"
    # Precompile bytecode for python3.12 (the runtime), so cold starts skip compilation. Lambda's
    # /var/task and /opt are read-only, so without this every cold start compiles in memory.
    # unchecked-hash: the .pyc stays valid whatever timestamps the deployment zip gives the sources.
    echo "sam.sh: precompiling bytecode (python3.12, unchecked-hash) in $build_dir"
    "$PY312" -m compileall -q -j0 --invalidation-mode unchecked-hash "$build_dir" || {
      echo "sam.sh: compileall reported errors (files that do not compile on 3.12?)" >&2; exit 1; }
    # Sizes against Lambda's 250 MB unzipped limit (function + layers); fails the build when over.
    "$PY312" scripts/function_sizes.py --build-dir "$build_dir"
    ;;
  validate)
    exec "$VENV/bin/sam" validate --template-file "$TEMPLATE" "$@"
    ;;
  *)
    exec "$VENV/bin/sam" "$cmd" "$@"
    ;;
esac
