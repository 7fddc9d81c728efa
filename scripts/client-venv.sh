#!/usr/bin/env bash
# A virtual environment with the PyTorch client installed as a package: made with Debian's python3
# and --system-site-packages (so it sees Debian's torch), the client installed by pip from
# clients/python without the network (--no-index; setuptools and wheel come from Debian).
#   bash scripts/client-venv.sh [DIR]     (default .venv; prints nothing but pip's errors)
# Then DIR/bin/python imports l2o_client. `npm run example:torch` and scripts/test-py.sh use it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
# Built from a copy, so the build leaves no build/ or .egg-info in the repo.
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
cp -r clients/python/. "$src/"
rm -rf "$src/tests"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --no-build-isolation \
  --no-deps --force-reinstall "$src"
