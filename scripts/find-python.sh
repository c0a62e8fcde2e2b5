#!/usr/bin/env bash
# Prints a Python interpreter for the venv: 3.12 (the Lambda runtime) when present, else 3.11.
set -u
for cand in python3.12 "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/3.12"*/bin/python3.12)" \
            /usr/local/bin/python3.12 python3.11 python3; do
  [ -n "$cand" ] || continue
  for c in $cand; do
    if "$c" -c 'import sys, venv; assert sys.version_info[:2] in ((3, 11), (3, 12), (3, 13))' >/dev/null 2>&1; then
      echo "$c"; exit 0
    fi
  done
done
echo "error: no Python 3.11-3.13 found (install python3.12)" >&2
exit 1
