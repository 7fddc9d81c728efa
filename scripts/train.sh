#!/usr/bin/env bash
# Meta-train / evaluate / export learned optimizers: `npm run train -- <command> …` (see train/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 -m train "$@"
