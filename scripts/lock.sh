#!/usr/bin/env bash
# Resolves the locks with uv from pyproject.toml's ranges; commit what it writes:
#   requirements/dev.txt            the venv, CI and the local stack (every platform, Python 3.11-3.13)
#   functions/*/requirements.txt    what `sam build` installs per CodeUri (python3.12, arm64), at the
#                                   same versions as requirements/dev.txt, from functions/*/requirements.in
# Exact versions with hashes; pins already in the files are kept unless a range excludes them.
# `scripts/lock.sh --upgrade` (or --upgrade-package NAME) moves them on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
[ -x "$UV" ] || { echo "error: run make setup first (it installs uv into .venv)" >&2; exit 1; }
compile=("$UV" pip compile --generate-hashes --quiet --custom-compile-command "scripts/lock.sh" "$@")
"${compile[@]}" pyproject.toml --extra dev --universal --python-version 3.11 -o requirements/dev.txt
for in_file in functions/*/requirements.in; do
  "${compile[@]}" "$in_file" --constraint requirements/dev.txt --python-version 3.12 \
    --python-platform aarch64-manylinux_2_28 -o "$(dirname "$in_file")/requirements.txt"
done
echo "lock: requirements/dev.txt and functions/*/requirements.txt written"
