/**
 * `npm start`: the API on Node with SQLite in a local folder. Flags: --port (8787), --host
 * (127.0.0.1), --data-dir (./.data), and the limits of node-server.ts (--queue-per-client,
 * --queue-total, --body-timeout-ms, --body-budget-mb); env PORT, HOST, L2O_DATA_DIR, L2O_ADMIN_KEY,
 * L2O_CLIENT_KEY, each limit's L2O_ variable, and L2O_KERNEL (fused, the default, or tfjs: what
 * learned optimizers run on).
 */
import { parseArgs } from 'node:util'
import { ensureKeys, seedVersions } from '../server/bootstrap'
import { createNodeApp, createNodeDeps } from './node'
import { consoleBuilt, folderAssets } from './node-assets'
import { nodeLimitSettings, nodeLimitsFrom, serveNode } from './node-server'
import { readShippedVersions } from './shipped-weights'

const limitFlags = Object.fromEntries(
  Object.values(nodeLimitSettings).map(({ flag }) => [flag, { type: 'string' as const }]),
)
const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'data-dir': { type: 'string' },
    ...limitFlags,
  },
})
const port = Number(values.port ?? process.env.PORT ?? 8787)
const host = values.host ?? process.env.HOST ?? '127.0.0.1'
const dataDir = values['data-dir'] ?? process.env.L2O_DATA_DIR ?? '.data'
if (!Number.isInteger(port) || port < 0 || port > 65535)
  throw new Error(`invalid port ${values.port ?? process.env.PORT}`)
const limits = nodeLimitsFrom(values as Record<string, string | undefined>, process.env)

const deps = createNodeDeps({ dataDir, kernel: process.env.L2O_KERNEL })
const now = new Date()
for (const r of await seedVersions(deps.db, await readShippedVersions(), now)) {
  if (r.outcome === 'created') console.log(`registered ${r.name}@${r.version}`)
  if (r.outcome === 'refused') console.warn(`not registering ${r.name}@${r.version}: ${r.detail}`)
}
const random = (n: number) => crypto.getRandomValues(new Uint8Array(n))
const keys = await ensureKeys(
  deps.db,
  { admin: process.env.L2O_ADMIN_KEY, client: process.env.L2O_CLIENT_KEY },
  now,
  random,
)
if (keys.admin !== undefined || keys.client !== undefined) {
  console.log('\nAPI keys (shown once; only their SHA-256 is stored):')
  if (keys.admin !== undefined) console.log(`  admin:  ${keys.admin}`)
  if (keys.client !== undefined) console.log(`  client: ${keys.client}`)
  console.log('')
}
const backend = await deps.initTf()

if (!consoleBuilt()) console.warn('the console is not built (npm run build:console): / and /docs show no UI')
const app = createNodeApp({ ...deps, assets: folderAssets() }, limits)
const server = serveNode(app.fetch, { port, hostname: host, limits }, (listening) => {
  console.log(
    `l2o listening on http://${host}:${listening} (data ${dataDir}, tfjs ${backend}, learned optimizers on ${deps.kernel === undefined ? 'tfjs' : 'the fused kernel'}); console at /, docs at /docs\n` +
      `limits: ${limits.queuePerClient} steps in flight per client, ${limits.queueTotal} in all, ` +
      `bodies in ${limits.bodyTimeoutMs} ms and ${limits.bodyBudgetBytes / 1048576} MiB together`,
  )
})
const stop = () =>
  server.close(() => {
    deps.close()
    process.exit(0)
  })
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
