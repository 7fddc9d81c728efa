// Simulation (not a test; `npm run bench:sessions`): 1, 10 and 100 sessions stepping at once for a
// bounded time inside workerd, the shard states in D1 rows (the SQL store) and in Durable Objects
// (the Workers store), through the Worker's own app: auth, the session index and the pin in D1, the
// step where the store keeps the shard. Each session holds one full shard of the paper's optimizer
// (6,160 coordinates, S = 80, F32: 1.97 MB of state). Prints throughput and latency percentiles.
import { env } from 'cloudflare:workers'
import { drizzle } from 'drizzle-orm/d1'
import { beforeAll, it } from 'vitest'
import * as schema from '../../src/db/schema'
import { initTf } from '../../src/runtime/tf-workers'
import { encode } from '../../src/safetensors'
import { createApp } from '../../src/server/app'
import { durableSessionStore } from '../../src/server/sessions/durable-store'
import { sqlSessionStore } from '../../src/server/sessions/sql-store'
import { randomGradients } from '../../test/support/random'
import { auth, seed } from '../../test/workers/seed'

declare global {
  namespace Cloudflare {
    interface Env {
      SIM_SECONDS: number
      SIM_SESSIONS: number[]
      SIM_HOST: string
    }
  }
}

const optimizer = 'l2o-mnist@1.1.0'
const numParams = 6_160
const now = () => new Date()
const db = drizzle(env.DB, { schema })
const stores = {
  'D1 rows': sqlSessionStore(db, now),
  'Durable Objects': durableSessionStore(db, (name) => env.SESSION_SHARDS.getByName(name), now),
}
type Backend = keyof typeof stores
const apps = Object.fromEntries(
  Object.entries(stores).map(([name, sessions]) => [
    name,
    createApp(() => ({ db, initTf, runtime: 'workers', sessions })),
  ]),
) as Record<Backend, ReturnType<typeof createApp>>

const request = (backend: Backend, method: string, path: string, body?: BodyInit, type?: string) =>
  apps[backend].fetch(
    new Request(`http://l2o.sim${path}`, {
      method,
      body,
      headers: { ...auth('client'), ...(type === undefined ? {} : { 'content-type': type }) },
    }),
    env,
  )

async function run(backend: Backend, sessions: number) {
  const ids = await Promise.all(
    Array.from({ length: sessions }, async () => {
      const created = await request(
        backend,
        'POST',
        '/v1/sessions',
        JSON.stringify({ optimizer, numParams }),
        'application/json',
      )
      if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`)
      return ((await created.json()) as { id: string }).id
    }),
  )
  const latencies: number[] = []
  const start = performance.now()
  const deadline = start + env.SIM_SECONDS * 1000
  await Promise.all(
    ids.map(async (id, i) => {
      const body = encode({
        grads: { dtype: 'F32', shape: [numParams], data: randomGradients(numParams, i) },
      })
      for (let t = 1; performance.now() < deadline; t++) {
        const sent = performance.now()
        const response = await request(
          backend,
          'POST',
          `/v1/sessions/${id}/shards/0/steps/${t}`,
          body,
          'application/vnd.l2o.safetensors',
        )
        await response.arrayBuffer()
        if (response.status !== 200) throw new Error(`step ${t}: ${response.status}`)
        latencies.push(performance.now() - sent)
      }
    }),
  )
  const elapsed = (performance.now() - start) / 1000
  await Promise.all(ids.map((id) => request(backend, 'DELETE', `/v1/sessions/${id}`)))
  latencies.sort((a, b) => a - b)
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]
  return { steps: latencies.length, elapsed, p50: at(0.5), p99: at(0.99) }
}

beforeAll(seed)

it('simulates concurrent sessions on D1 rows and on Durable Objects', async () => {
  const lines = [
    `${env.SIM_HOST}; ${env.SIM_SECONDS} s per run; one shard of ${numParams} coordinates of ${optimizer} per session`,
    '| sessions | store | steps | steps/s | coordinates/s | p50 ms | p99 ms |',
    '|---:|---|---:|---:|---:|---:|---:|',
  ]
  // Warm up both (tfjs, weights, the first objects) outside the measurement.
  for (const backend of Object.keys(stores) as Backend[]) await run(backend, 1)
  for (const sessions of env.SIM_SESSIONS) {
    for (const backend of Object.keys(stores) as Backend[]) {
      const r = await run(backend, sessions)
      const rate = r.steps / r.elapsed
      lines.push(
        `| ${sessions} | ${backend} | ${r.steps} | ${rate.toFixed(1)} | ${Math.round(rate * numParams).toLocaleString('en-US')} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} |`,
      )
      console.log(lines.at(-1))
    }
  }
  console.log(lines.join('\n'))
})
