#!/usr/bin/env bash
# Python: pyflakes over clients/python, train/ and examples/; train/'s tests with Debian's python3;
# the PyTorch client installed as a package (scripts/client-venv.sh) into a fresh venv, its tests
# run there against the installed package, and the PyTorch example importing it.
# "no tests collected" (pytest exit 5) in clients/python/tests is not a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
status=0

pyflakes3 clients/python train examples || status=$?

$PY -m pytest -q -p no:cacheprovider train/tests || status=$?

venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
if bash scripts/client-venv.sh "$venv"; then
  # The installed package, not a folder on sys.path.
  "$venv/bin/python" -c 'import l2o_client, sys; f = l2o_client.__file__; print("l2o_client from", f); sys.exit("site-packages" not in f)' \
    || status=1
  "$venv/bin/python" examples/torch_mnist.py --help >/dev/null || status=1
  rc=0
  "$venv/bin/python" -m pytest -q -p no:cacheprovider clients/python/tests || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=$rc; fi
else
  echo "test-py: pip could not install clients/python" >&2
  status=1
fi

exit "$status"
