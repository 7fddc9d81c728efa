#!/usr/bin/env bash
# `npm run dev:edge`: the Worker locally, offline and without prompts (DESIGN §7): applies migrations/
# to the local D1, seeds the shipped optimizers and the local keys, then runs `wrangler dev` on
# http://127.0.0.1:8787. Extra arguments go to `wrangler dev`. State lives in .wrangler/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."

# Offline: no telemetry, no error reports, no update check, no Request.cf download (stack-recipes §6).
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false WRANGLER_HIDE_BANNER=true
export CLOUDFLARE_CF_FETCH_ENABLED=false
wrangler=node_modules/.bin/wrangler

# Local keys: made once, kept in the gitignored .dev.vars, printed only when made. The Worker never
# reads them: the seed stores their SHA-256 in D1, as the Node runtime does.
if [[ ! -f .dev.vars ]]; then
  key() { node -e "console.log('l2o_' + require('node:crypto').randomBytes(32).toString('hex'))"; }
  admin=$(key)
  client=$(key)
  (umask 077 && printf 'L2O_ADMIN_KEY=%s\nL2O_CLIENT_KEY=%s\n' "$admin" "$client" > .dev.vars)
  printf '\nNew local API keys (kept in .dev.vars; shown once):\n  admin:  %s\n  client: %s\n\n' "$admin" "$client"
fi
set -a
# shellcheck disable=SC1091
source .dev.vars
set +a

"$wrangler" d1 migrations apply DB --local
mkdir -p .wrangler
node_modules/.bin/tsx scripts/seed-d1.ts --out .wrangler/seed.sql
"$wrangler" d1 execute DB --local --file .wrangler/seed.sql >/dev/null
echo "seeded the local D1 from weights/"

exec "$wrangler" dev "$@"
