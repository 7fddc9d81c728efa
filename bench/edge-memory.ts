// Memory benchmark (not a test): how much memory one step at the per-request coordinate limit takes
// inside workerd (issue: a step must fit a 128 MB isolate with room to spare). Each case runs in a
// fresh `wrangler dev` (bench/edge.ts); workerd's resident memory is read from /proc before any
// request and at its peak after the case. workerd also runs the local D1 and the Durable Objects,
// so peak − idle is an upper bound on what the Worker's isolate added (tfjs and its wasm heap, the
// weights, the request and response bodies, the state).
// Run: npm run bench:edge-memory [-- --steps 3 --fractions 1,0.5 --json-bytes 2097152]
import { parseArgs } from 'node:util'
import { randomGradients } from '../test/support/random'
import {
  coordinateLimit,
  createSession,
  type EdgeWorker,
  type HeldState,
  jsonStep,
  memoryOf,
  seededState,
  sessionStep,
  statelessStep,
  wideOptimizer,
  withWorker,
} from './edge'

const { values: flags } = parseArgs({
  options: { steps: { type: 'string' }, fractions: { type: 'string' }, 'json-bytes': { type: 'string' } },
})
const STEPS = Number(flags.steps ?? 3)
// Each stateless case runs at these fractions of the advertised limit.
const FRACTIONS = (flags.fractions ?? '1,0.5,0.25').split(',').map(Number)
// The Worker's JSON body limit (stepBudget in src/runtime/workers.ts).
const JSON_BYTES = Number(flags['json-bytes'] ?? 2 * 1024 * 1024)
const paper = 'l2o-mnist@1.1.0'

/** Stateless steps: a fresh state, then the state sent back each time (F32 both ways). */
const stateless = (optimizer: string, fraction: number) => async (worker: EdgeWorker) => {
  const n = Math.floor(fraction * (await coordinateLimit(worker, optimizer)))
  let held: HeldState | undefined
  for (let t = 1; t <= STEPS; t++) held = await statelessStep(worker, optimizer, randomGradients(n, t), held)
  const s = held!.state.shape[1]
  return `N = ${n.toLocaleString('en-US')}, S = ${s}, ${((n * (4 + 4 * s)) / 2 ** 20).toFixed(1)} MiB each way`
}

/** JSON steps with the state, at the most coordinates whose body stays under the JSON limit. */
const json = (optimizer: string) => async (worker: EdgeWorker) => {
  const probe = await jsonStep(worker, optimizer, randomGradients(100, 0))
  const withState = await jsonStep(worker, optimizer, randomGradients(100, 0), probe)
  const n = Math.min(
    Math.floor((0.95 * JSON_BYTES) / (withState.bodyBytes / 100)),
    await coordinateLimit(worker, optimizer),
  )
  let held: { state: number[]; digest: string } | undefined
  let bodyBytes = 0
  for (let t = 1; t <= STEPS; t++)
    ({ bodyBytes, ...held } = await jsonStep(worker, optimizer, randomGradients(n, t), held))
  return `N = ${n.toLocaleString('en-US')}, ${(bodyBytes / 2 ** 20).toFixed(1)} MiB request`
}

/** Session steps of one full shard: the state stays in its Durable Object. */
const session = (optimizer: string) => async (worker: EdgeWorker) => {
  const n = await coordinateLimit(worker, optimizer)
  const created = await createSession(worker, optimizer, n)
  // Shard 0: the first shardSize coordinates (the layout is compact: shardSize and shardCount).
  const shard = { length: Math.min(created.shardSize, created.numParams) }
  for (let t = 1; t <= STEPS; t++) {
    const status = await sessionStep(worker, created.id, 0, t, randomGradients(shard.length, t))
    if (status !== 200) throw new Error(`session step ${t}: ${status}`)
  }
  return `shard of ${shard.length.toLocaleString('en-US')} of a ${n.toLocaleString('en-US')}-coordinate session`
}

const cases: { name: string; run: (worker: EdgeWorker) => Promise<string> }[] = [
  { name: 'idle (no request)', run: async () => '' },
  ...[paper, wideOptimizer].flatMap((optimizer) =>
    FRACTIONS.map((f) => ({ name: `stateless ${optimizer}, ${f} × limit`, run: stateless(optimizer, f) })),
  ),
  { name: `stateless JSON ${paper}, state sent`, run: json(paper) },
  { name: `session ${paper}, one shard in its object`, run: session(paper) },
]

const dir = await seededState()
console.log(`| case | size | workerd idle MB | workerd peak MB | peak − idle MB |`)
console.log(`|---|---|---:|---:|---:|`)
for (const c of cases) {
  await withWorker(dir, async (worker) => {
    const idle = memoryOf(worker.workerd)
    const size = await c.run(worker)
    const after = memoryOf(worker.workerd)
    const row = [c.name, size, idle.rssMb, after.peakMb, after.peakMb - idle.rssMb]
    console.log(`| ${row.map((v) => (typeof v === 'number' ? v.toFixed(0) : v)).join(' | ')} |`)
  })
}
