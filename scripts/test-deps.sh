#!/usr/bin/env bash
# The Debian packages the tests need, checked before `npm test` and by CI (.ci/run): one list, one
# check. All present: says nothing. Some missing: as root it installs them with apt-get (CI and a
# fresh machine of this kind run as root); otherwise it stops at once with the exact command to run.
# With --kernel-toolchain (CI) it also checks the fused kernel's pinned toolchain, Debian's clang 14
# and lld 14 (src/core/fused/build.sh), so that a fresh machine needs one apt-get update, not two.
set -euo pipefail

# What each package gives the tests, checked directly (so any way of installing it counts).
PY=/usr/bin/python3
missing=()
if [ -x "$PY" ]; then
  # Debian's python3 lacks ensurepip without python3-venv; `python3 -m venv` needs it.
  while read -r package; do missing+=("$package"); done < <(
    "$PY" - <<'PY'
import importlib.util
for module, package in [("torch", "python3-torch"), ("numpy", "python3-numpy"),
                        ("matplotlib", "python3-matplotlib"), ("tqdm", "python3-tqdm"),
                        ("pytest", "python3-pytest"), ("setuptools", "python3-setuptools"),
                        ("wheel", "python3-wheel"), ("ensurepip", "python3-venv")]:
    if importlib.util.find_spec(module) is None:
        print(package)
PY
  )
else
  missing+=(python3 python3-torch python3-numpy python3-matplotlib python3-tqdm python3-pytest
    python3-setuptools python3-wheel python3-venv)
fi
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
command -v pyflakes3 >/dev/null || missing+=(pyflakes3)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${1:-}" = "--kernel-toolchain" ]; then
  command -v clang-14 >/dev/null || missing+=(clang-14)
  command -v wasm-ld-14 >/dev/null || missing+=(lld-14)
fi

[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: the tests need these Debian packages: ${missing[*]}" >&2
  echo "Install them, then run the tests again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "test-deps: installing ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
