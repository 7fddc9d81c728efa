#!/usr/bin/env bash
# Python test suites on CPU with Debian's interpreter (python3-torch, -numpy, -pytest, …).
# train/tests is required; clients/python/tests runs when present, and "no tests collected"
# (pytest exit 5) there is not a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
status=0

$PY -m pytest -q -p no:cacheprovider train/tests || status=$?

if [ -d clients/python/tests ]; then
  rc=0
  $PY -m pytest -q -p no:cacheprovider clients/python/tests || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=$rc; fi
fi

exit "$status"
