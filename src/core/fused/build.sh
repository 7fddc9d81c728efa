#!/usr/bin/env bash
# Builds src/core/fused/lstm.wasm from lstm.c with Debian bookworm's clang 14 and lld 14 (apt-get install
# clang-14 lld-14), the pinned toolchain: the output is byte-for-byte reproducible, and the committed
# .wasm must equal what this makes (`build.sh --check`, run by CI).
# Usage: bash src/core/fused/build.sh [--check]
set -euo pipefail
cd "$(dirname "$0")"

clang=clang-14
version=$("$clang" --version 2>/dev/null | head -1 || true)
if [[ "$version" != *"clang version 14.0.6"* ]]; then
  echo "build.sh: needs clang 14.0.6 (Debian: apt-get install clang-14 lld-14); found: ${version:-none}" >&2
  exit 1
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# wasm32 with SIMD and bulk memory (memory.copy for struct copies), no libc, no entry point; only
# the EXPORT()ed functions, the memory and __heap_base are exported; no names or producers section.
"$clang" --target=wasm32 -std=c11 -O3 -msimd128 -mbulk-memory -ffp-contract=off \
  -nostdlib -fno-builtin -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--export=__heap_base -Wl,--strip-all -Wl,-z,stack-size=65536 \
  -o "$out/lstm.wasm" lstm.c

if [[ "${1:-}" == "--check" ]]; then
  if cmp -s "$out/lstm.wasm" lstm.wasm; then
    echo "src/core/fused/lstm.wasm is what lstm.c builds to ($(wc -c <lstm.wasm) bytes)"
  else
    echo "src/core/fused/lstm.wasm differs from what lstm.c builds to: run bash src/core/fused/build.sh and commit it" >&2
    exit 1
  fi
else
  cp "$out/lstm.wasm" lstm.wasm
  echo "wrote src/core/fused/lstm.wasm ($(wc -c <lstm.wasm) bytes)"
fi
