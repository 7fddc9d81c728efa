// Cost benchmark (not a test): what one step costs, per coordinate, for each shipped learned optimizer
// next to Adam: FLOPs, state and wire bytes, CPU time measured on Node and inside workerd, and the
// price of a million coordinate-steps on Cloudflare Workers Paid (bench/prices.ts: named, dated
// constants); then, per step, for models of 10^4 to 10^8 parameters.
// Run: npm run bench:cost [-- --no-workerd]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { defaultMaxCoordinatesPerRequest, metadataKeys, tensorNames } from '../src/contract'
import { adam, type Optimizer } from '../src/core'
import type { KernelModel } from '../src/core/fused/kernel'
import { fusedKernelOptimizer, kernelModel } from '../src/core/fused/lstm-fused'
import { fusedKernel } from '../src/runtime/kernel-node'
import { readShippedVersions } from '../src/runtime/shipped-weights'
import { encode } from '../src/safetensors'
import { coordinateLimit } from '../src/server/compute'
import { stepAnswerLayout } from '../src/server/safetensors-out'
import { shardSizeFor } from '../src/server/sessions/shards'
import { decodeLstmWeights } from '../src/weights'
import { randomGradients, randomUniform } from '../test/support/random'
import { pricesReadOn, pricesSource, workersPaid } from './prices'
import { startBenchWorker } from './workerd/start'

const { values: flags } = parseArgs({ options: { 'no-workerd': { type: 'boolean' } } })
const N = 65_536
const RUNS = 9

interface Subject {
  name: string
  /** The kernel model, or Adam. */
  model: KernelModel | 'adam'
  stateSize: number
  flops: number
  transcendentals: number
  make: () => Optimizer
}

/**
 * Arithmetic per coordinate of docs/optimizer-math.md's step, counted as notes/stack-recipes.md
 * counts the paper's 10,282: per cell 2·4H·(in+H) for the two matrix products, 4H bias adds, 4H for
 * c' = f·c + i·g and h' = o·tanh(c'); 2H + 1 for the head, 1 for the output scale; the features and
 * the input layer on top. Transcendentals (exp, log, tanh, sqrt, expm1; a sigmoid is one) apart.
 */
function lstmCount(m: KernelModel): { flops: number; transcendentals: number } {
  const h = m.hidden
  let flops = 2 * h + 1 + 1
  let transcendentals = 5 * h * m.layers + (m.output.kind === 'tanh' ? 1 : 0)
  let x = m.featureSize
  if (m.features.kind === 'log-sign') {
    flops += 2 // |g| / p or e^p·g, and the threshold's compare
    transcendentals += 1 // log
  } else if (m.features.kind === 'moments') {
    const k = m.features.beta1.length
    flops += 4 * k + 6 + (k + 1) // each m_k', r'², r' + ε, the K + 1 quotients
    transcendentals += 1 // sqrt
  }
  if (m.inputLayer > 0) {
    flops += m.inputLayer * 2 * x
    transcendentals += m.inputLayer // expm1
    x = m.inputLayer
  }
  for (let k = 0; k < m.layers; k++) {
    const input = k === 0 ? x : h
    flops += 8 * h * (input + h) + 4 * h + 4 * h
  }
  return { flops, transcendentals }
}

const subjects: Subject[] = []
for (const v of await readShippedVersions()) {
  const model = kernelModel(decodeLstmWeights(v.weights))
  const { flops, transcendentals } = lstmCount(model)
  const stateSize = 2 * model.layers * model.hidden
  subjects.push({
    name: `${v.name}@${v.version}`,
    model,
    stateSize,
    flops,
    transcendentals,
    make: () => fusedKernelOptimizer(model, fusedKernel()),
  })
}
const extended = kernelModel(
  decodeLstmWeights(
    readFileSync(
      path.resolve(import.meta.dirname, '../test/fixtures/extended/moments-elu-tanh/model.safetensors'),
    ),
  ),
)
const extendedOpt = fusedKernelOptimizer(extended, fusedKernel())
subjects.push({
  name: 'extended fixture (moments K=3, ELU E=8, H=8, tanh)',
  model: extended,
  stateSize: extendedOpt.stateSize,
  ...lstmCount(extended),
  make: () => extendedOpt,
})
// Adam as torch.optim.Adam computes it per coordinate: m (3), v (4), √v / √(1 − β₂ᵗ) + ε (2),
// the quotient and the step size (2); its bias corrections are per step, not per coordinate.
subjects.push({
  name: 'adam',
  model: 'adam',
  stateSize: 3,
  flops: 11,
  transcendentals: 1,
  make: () => adam({ learningRate: 1e-3 }),
})

/** Bytes on the wire per coordinate, bodies only (safetensors framing included), at N coordinates. */
function wireBytes(s: number, n: number) {
  const meta = {
    [metadataKeys.optimizer]: 'l2o-mnist@1.1.0',
    [metadataKeys.digest]: `sha256:${'0'.repeat(64)}`,
  }
  const stateless = (dtype: 'F32' | 'F16' | 'BF16') => {
    const data = dtype === 'F32' ? new Float32Array(n * s) : new Uint16Array(n * s)
    const request = encode(
      {
        [tensorNames.grads]: { dtype: 'F32', shape: [n], data: new Float32Array(n) },
        [tensorNames.state]: { dtype, shape: [n, s], data } as never,
      },
      meta,
    )
    return (request.byteLength + stepAnswerLayout(n, s, dtype, meta).totalBytes) / n
  }
  const shard = Math.min(n, shardSizeFor(s, 'F32', defaultMaxCoordinatesPerRequest))
  const grads = encode({
    [tensorNames.grads]: { dtype: 'F32', shape: [shard], data: new Float32Array(shard) },
  })
  const updates = encode({
    [tensorNames.updates]: { dtype: 'F32', shape: [shard], data: new Float32Array(shard) },
  })
  return {
    f32: stateless('F32'),
    f16: stateless('F16'),
    bf16: stateless('BF16'),
    session: (grads.byteLength + updates.byteLength) / shard,
  }
}

/** CPU time per coordinate-step on Node (process.cpuUsage), ns: the median of RUNS steps of N. */
function nodeCpuNs(opt: Optimizer, grads: Float32Array, state: Float32Array): number {
  opt.update(grads, state)
  const times: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const start = process.cpuUsage()
    opt.update(grads, state)
    const used = process.cpuUsage(start)
    times.push(((used.user + used.system) * 1000) / N)
  }
  return median(times)
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

const scratch = mkdtempSync(path.join(os.tmpdir(), 'l2o-bench-cost-'))
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }))
const loadStart = os.loadavg()
const worker = flags['no-workerd'] ? undefined : await startBenchWorker()
const measured = new Map<string, { node: number; workerd?: number }>()
try {
  for (const s of subjects) {
    const grads = randomGradients(N, 1)
    const state = randomUniform(N * s.stateSize, 2, 0.5)
    if (s.model === 'adam') for (let i = 2; i < state.length; i += 3) state[i] = 10 // a step count
    const node = nodeCpuNs(s.make(), grads, state)
    let workerd: number | undefined
    if (worker !== undefined) {
      await worker.load(s.model)
      workerd = (median(await worker.time(grads, state, RUNS, 1, s.model === 'adam' ? 20 : 2)) * 1e6) / N
    }
    measured.set(s.name, { node, workerd })
    process.stderr.write(`${s.name}: done\n`)
  }
} finally {
  await worker?.dispose()
}

// --- prices ------------------------------------------------------------------------------------------

/** Workers Paid's marginal price of `requests` requests and `cpuMs` CPU milliseconds, USD. */
const price = (requests: number, cpuMs: number) =>
  (requests * workersPaid.perMillionRequests + cpuMs * workersPaid.perMillionCpuMs) / 1e6

/** Coordinates one stateless request carries for S floats of state (the server's limit). */
const perRequest = (s: number) => coordinateLimit(s, defaultMaxCoordinatesPerRequest)

const cpuNsOf = (name: string) => {
  const m = measured.get(name)!
  return m.workerd ?? m.node
}

// --- tables ------------------------------------------------------------------------------------------

const fmt = (x: number, digits = 3) =>
  x === 0 ? '0' : x >= 1e4 || x < 1e-3 ? x.toExponential(digits - 1) : x.toPrecision(digits)
const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(' ')
console.log(
  `\nWhat a step costs, per coordinate. Node ${process.version}, ${os.cpus().length}× ${os.cpus()[0]?.model ?? '?'}, ` +
    `load average ${load(loadStart)} at the start, ${load(os.loadavg())} at the end. Learned optimizers on the fused ` +
    `kernel, Adam in plain TypeScript (the service's baseline), CPU time at N = ${N.toLocaleString('en-US')}, median of ${RUNS} ` +
    `steps. Prices: Workers Paid, read ${pricesReadOn} from ${pricesSource}: $${workersPaid.perMillionRequests} per ` +
    `million requests and $${workersPaid.perMillionCpuMs} per million CPU ms beyond the plan's monthly ` +
    `${workersPaid.includedRequestsPerMonth / 1e6} M requests and ${workersPaid.includedCpuMsPerMonth / 1e6} M CPU ms ` +
    `($${workersPaid.monthlyBase} a month); the CPU time priced is workerd's (or Node's without it). Wire bytes are bodies ` +
    `(safetensors framing included) at ${N.toLocaleString('en-US')} coordinates a request, HTTP headers aside.\n`,
)
console.log(
  '| optimizer | S | FLOPs | transcendentals | state bytes (F32) | wire F32 | wire F16 | wire BF16 | wire session | CPU ns, Node | CPU ns, workerd | $ per 10⁶ coordinate-steps |',
)
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const s of subjects) {
  const w = wireBytes(s.stateSize, N)
  const m = measured.get(s.name)!
  const dollars = price(1e6 / perRequest(s.stateSize), cpuNsOf(s.name))
  console.log(
    `| ${s.name} | ${s.stateSize} | ${s.flops.toLocaleString('en-US')} | ${s.transcendentals} | ${4 * s.stateSize} | ` +
      `${w.f32.toFixed(1)} | ${w.f16.toFixed(1)} | ${w.bf16.toFixed(1)} | ${w.session.toFixed(2)} | ${m.node.toFixed(0)} | ` +
      `${m.workerd?.toFixed(0) ?? '–'} | ${fmt(dollars)} |`,
  )
}

// Per step, for models of 10^4 … 10^8 parameters: the default learned optimizer next to Adam.
const learned = subjects.find((s) => s.name.startsWith('l2o-mnist@1.1')) ?? subjects[0]
const baseline = subjects.find((s) => s.model === 'adam')!
console.log(
  `\nPer step, by model size: ${learned.name} (S = ${learned.stateSize}) next to Adam (S = 3), both served ` +
    `statelessly with an F32 state, or in a session (shards of ${shardSizeFor(learned.stateSize, 'F32', defaultMaxCoordinatesPerRequest).toLocaleString('en-US')} ` +
    `coordinates, one D1 row each; the storage is not priced); CPU time as measured above (workerd's), a request's ` +
    `parsing and checks aside.\n`,
)
console.log(
  '| parameters | requests (stateless / session) | bytes, stateless F32 | bytes, stateless BF16 | bytes, session | CPU | $ per 1,000 steps, learned (stateless / session) | $ per 1,000 steps, Adam (stateless) |',
)
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|')
const bytes = (b: number) =>
  b >= 1e9
    ? `${(b / 1e9).toFixed(1)} GB`
    : b >= 1e6
      ? `${(b / 1e6).toFixed(1)} MB`
      : `${(b / 1e3).toFixed(0)} kB`
const time = (ns: number) => (ns >= 1e9 ? `${(ns / 1e9).toFixed(2)} s` : `${(ns / 1e6).toFixed(1)} ms`)
for (const p of [1e4, 1e5, 1e6, 1e7, 1e8]) {
  const w = wireBytes(learned.stateSize, N)
  const shard = shardSizeFor(learned.stateSize, 'F32', defaultMaxCoordinatesPerRequest)
  const requests = Math.ceil(p / perRequest(learned.stateSize))
  const sessionRequests = Math.ceil(p / shard)
  const cost = (s: Subject) =>
    1000 * price(Math.ceil(p / perRequest(s.stateSize)), (cpuNsOf(s.name) * p) / 1e6)
  console.log(
    `| ${p.toExponential(0).replace('e+', 'e')} | ${requests} / ${sessionRequests} | ${bytes(w.f32 * p)} | ${bytes(w.bf16 * p)} | ` +
      `${bytes(w.session * p)} | ${time(cpuNsOf(learned.name) * p)} | ` +
      `$${fmt(cost(learned))} / $${fmt(1000 * price(sessionRequests, (cpuNsOf(learned.name) * p) / 1e6))} | ` +
      `$${fmt(cost(baseline))} |`,
  )
}

// When is it worth it? A run that takes k steps with the learned optimizer instead of Adam's kₐ costs
// k·(T + L) against kₐ·T: T your own cost of a training step, L the service's price of a learned
// step, Adam run on your own machine (its arithmetic is nothing next to a training step). It pays
// when k/kₐ < T/(T + L).
const perMillion = price(1e6 / perRequest(learned.stateSize), cpuNsOf(learned.name))
const gpuPerHour = 2
const stepsPerSecond = 10
const worth = (p: number) => {
  const t = gpuPerHour / 3600 / stepsPerSecond
  const l = (perMillion * p) / 1e6
  return { t, l, share: t / (t + l) }
}
const sizes = [1e5, 1e6, 1e7]
console.log(
  `\nWorth it? ${learned.name} costs $${fmt(perMillion)} per million coordinate-steps on Workers Paid (stateless). ` +
    `Against Adam on your own machine, with training steps on a $${gpuPerHour}/hour GPU at ${stepsPerSecond} steps a ` +
    `second ($${fmt(worth(1).t)} a step), it pays for itself when it reaches the same loss in fewer than ` +
    sizes
      .map(
        (p) =>
          `${(100 * worth(p).share).toFixed(0)}% of Adam's steps at ${p.toExponential(0).replace('e+', 'e')} parameters`,
      )
      .join(', ') +
    ` ($${sizes.map((p) => fmt(worth(p).l)).join(', $')} a learned step).`,
)
