// Cost benchmark (not a test): what one step costs, per coordinate, for each shipped learned optimizer
// next to Adam: FLOPs, state and wire bytes, CPU time measured on Node and inside workerd, and the
// price of a million coordinate-steps on Cloudflare Workers Paid; then, per step, for models of 10^4
// to 10^8 parameters. Prices and the cost of a step on Workers are scripts/capacity.ts's (its named,
// dated constants; docs/capacity.md), run with the CPU time measured here.
// Run: npm run bench:cost [-- --no-workerd]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { measured as assumed, prices, read, stepCost } from '../scripts/capacity'
import { defaultMaxCoordinatesPerRequest, metadataKeys, tensorNames } from '../src/contract'
import { adam, type Optimizer } from '../src/core'
import type { KernelModel } from '../src/core/fused/kernel'
import { fusedKernelOptimizer, kernelModel } from '../src/core/fused/lstm-fused'
import { fusedKernel } from '../src/runtime/kernel-node'
import { readShippedVersions } from '../src/runtime/shipped-weights'
import { encode } from '../src/safetensors'
import { stepAnswerLayout } from '../src/server/safetensors-out'
import { shardSizeFor } from '../src/server/sessions/shards'
import { decodeLstmWeights } from '../src/weights'
import { randomGradients, randomUniform } from '../test/support/random'
import { startBenchWorker } from './workerd/start'

const { values: flags } = parseArgs({ options: { 'no-workerd': { type: 'boolean' } } })
const N = 65_536
const RUNS = 15

interface Subject {
  name: string
  /** The version a name's `stable` alias names (weights/<name>/aliases.json). */
  stable?: boolean
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
  let transcendentals = 5 * h * m.layers + (m.output.kind === 'linear' ? 0 : 1)
  if (m.output.kind === 'tanh-rms') {
    flops += 2 // power · log r', and the product with r'^power
    transcendentals += 2 // log r' and 2^t
    if (m.output.decay !== undefined || m.output.gain !== undefined) {
      // the count: two digits clamped and joined, t + 1 and its cap, the two new digits
      flops += 8
    }
    if (m.output.decay !== undefined) {
      // past T the factor (T/t')^d: a division, d · log, and the product (log and 2^x apart)
      flops += 3
      transcendentals += 2
    }
    if (m.output.gain !== undefined) {
      // the pool: r' again (3, and its sqrt), g·p, r'·r', the division, the clamp (2) and the sum;
      // a + X; past T the level A·(a/(T − 1) − C) (3), its clamp (2) and the product (exp apart)
      flops += 3 + 6 + 1 + 6
      transcendentals += 2
    }
  }
  let x = m.featureSize
  if (m.features.kind === 'log-sign') {
    flops += 2 // |g| / p or e^p·g, and the threshold's compare
    transcendentals += 1 // log
  } else if (m.features.kind === 'moments') {
    const k = m.features.beta1.length
    flops += 4 * k + 6 + (k + 1) // each m_k', r'², r' + ε, the K + 1 quotients
    transcendentals += 1 // sqrt
    if (m.features.logRms !== undefined) {
      flops += 2 // max(r', e^-q) and the division by q
      transcendentals += 1 // log
    }
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
  const opt = fusedKernelOptimizer(model, fusedKernel())
  subjects.push({
    name: `${v.name}@${v.version}`,
    stable: v.aliases?.includes('stable') ?? false,
    model,
    // from the architecture (2·L·H, plus K + 2 slots for K moments, plus 2 for the step count of a
    // decay or a gain, plus 2 for a gain's [p, a])
    stateSize: opt.stateSize,
    ...lstmCount(model),
    make: () => opt,
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

/**
 * CPU time per coordinate-step on Node (process.cpuUsage), ns, for every subject: the median of RUNS
 * steps of N each. The subjects take turns, one step each per round, so that a drift in the machine
 * (frequency, a neighbour's load, the heap growing) lands on all of them alike; timed one after
 * another, the last ones measured up to 20% slower than the same optimizer timed first.
 */
function nodeCpuNs(subjects: Subject[]): Map<string, number> {
  const runs = subjects.map((s) => {
    const grads = randomGradients(N, 1)
    const state = subjectState(s)
    const opt = s.make()
    // As the server steps, and as workerd's column is timed: the state in place, updates into one buffer
    const out = { updates: new Float32Array(N), state }
    opt.updateInto(grads, state, out)
    return { name: s.name, step: () => opt.updateInto(grads, state, out), times: [] as number[] }
  })
  for (let i = 0; i < RUNS; i++)
    for (const r of runs) {
      const start = process.cpuUsage()
      r.step()
      const used = process.cpuUsage(start)
      r.times.push(((used.user + used.system) * 1000) / N)
    }
  return new Map(runs.map((r) => [r.name, median(r.times)]))
}

/** A state for N coordinates of `s`, random but valid (Adam's step-count slot a count). */
function subjectState(s: Subject): Float32Array {
  const state = randomUniform(N * s.stateSize, 2, 0.5)
  if (s.model === 'adam') for (let i = 2; i < state.length; i += 3) state[i] = 10
  return state
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

const scratch = mkdtempSync(path.join(os.tmpdir(), 'l2o-bench-cost-'))
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }))
const loadStart = os.loadavg()
// Node's times first, before workerd starts: its start-up would share the 2 vCPUs with the timed steps
const node = nodeCpuNs(subjects)
const worker = flags['no-workerd'] ? undefined : await startBenchWorker()
const measured = new Map<string, { node: number; workerd?: number }>()
try {
  for (const s of subjects) {
    let workerd: number | undefined
    if (worker !== undefined) {
      await worker.load(s.model)
      const times = await worker.time(
        randomGradients(N, 1),
        subjectState(s),
        RUNS,
        1,
        s.model === 'adam' ? 20 : 2,
      )
      workerd = (median(times) * 1e6) / N
    }
    measured.set(s.name, { node: node.get(s.name)!, workerd })
    process.stderr.write(`${s.name}: done\n`)
  }
} finally {
  await worker?.dispose()
}

// --- prices ------------------------------------------------------------------------------------------

/** The CPU time priced: workerd's, or Node's without it. */
const cpuNsOf = (name: string) => {
  const m = measured.get(name)!
  return m.workerd ?? m.node
}

/** scripts/capacity.ts's cost of one step of `numParams` coordinates on Workers, at the measured speed. */
const costOf = (s: Subject, numParams: number, mode: 'stateless' | 'session') =>
  stepCost(numParams, mode, { stateSize: s.stateSize, coordinatesPerCpuMs: 1e6 / cpuNsOf(s.name) })

// --- tables ------------------------------------------------------------------------------------------

const fmt = (x: number, digits = 3) =>
  x === 0 ? '0' : x >= 1e4 || x < 1e-3 ? x.toExponential(digits - 1) : x.toPrecision(digits)
const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(' ')
console.log(
  `\nWhat a step costs, per coordinate. Node ${process.version}, ${os.cpus().length}× ${os.cpus()[0]?.model ?? '?'}, ` +
    `load average ${load(loadStart)} at the start, ${load(os.loadavg())} at the end. Learned optimizers on the fused ` +
    `kernel, Adam in plain TypeScript (the service's baseline); CPU time at N = ${N.toLocaleString('en-US')}, median of ` +
    `${RUNS} steps. Wire bytes are bodies (safetensors framing included) at ${N.toLocaleString('en-US')} coordinates a ` +
    `request (session: a shard), HTTP headers aside. Prices: Workers Paid, marginal, read ${read.on} (` +
    `${read.workersPricing}; ${read.doPricing}): $${prices.workerRequestsPerMillion} per million requests, ` +
    `$${prices.workerCpuPerMillionMs} per million CPU ms; sessions add Durable Object requests, duration and rows ` +
    `(scripts/capacity.ts). The priced CPU is workerd's (Node's without it) plus ${assumed.requestOverheadCpuMs} ms a ` +
    `request; a request carries at most what the Worker's 4 MiB step budget allows.\n`,
)
console.log(
  '| optimizer | S | FLOPs | transcendentals | state bytes (F32) | wire F32 | wire F16 | wire BF16 | wire session | CPU ns, Node | CPU ns, workerd | $ per 10⁶ coordinate-steps, stateless / session |',
)
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const s of subjects) {
  const w = wireBytes(s.stateSize, N)
  const m = measured.get(s.name)!
  const dollars = `${fmt(costOf(s, 1e6, 'stateless').usd)} / ${fmt(costOf(s, 1e6, 'session').usd)}`
  console.log(
    `| ${s.name} | ${s.stateSize} | ${s.flops.toLocaleString('en-US')} | ${s.transcendentals} | ${4 * s.stateSize} | ` +
      `${w.f32.toFixed(1)} | ${w.f16.toFixed(1)} | ${w.bf16.toFixed(1)} | ${w.session.toFixed(2)} | ${m.node.toFixed(0)} | ` +
      `${m.workerd?.toFixed(0) ?? '–'} | ${dollars} |`,
  )
}

// Per step, for models of 10^4 … 10^8 parameters: the default learned optimizer next to Adam,
// the one plain `l2o-mlp` names for new users (README), else the first shipped
const learned = subjects.find((s) => s.name.startsWith('l2o-mlp@') && s.stable) ?? subjects[0]
const baseline = subjects.find((s) => s.model === 'adam')!
console.log(
  `\nPer step, by model size, on Workers Paid: ${learned.name} (S = ${learned.stateSize}), stateless (F32 state) and ` +
    `in a session, next to Adam (S = 3) served the same way; CPU in the Worker and its objects; storage aside.\n`,
)
console.log(
  '| parameters | requests, stateless / session | bytes on the wire, stateless / session | CPU, stateless / session | $ per 1,000 steps, stateless / session | Adam: $ per 1,000 steps, stateless / session |',
)
console.log('|---:|---:|---:|---:|---:|---:|')
const bytes = (b: number) =>
  b >= 1e9
    ? `${(b / 1e9).toFixed(1)} GB`
    : b >= 1e6
      ? `${(b / 1e6).toFixed(1)} MB`
      : `${(b / 1e3).toFixed(0)} kB`
const time = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`)
const both = (s: Subject, p: number, f: (c: ReturnType<typeof costOf>) => string) =>
  `${f(costOf(s, p, 'stateless'))} / ${f(costOf(s, p, 'session'))}`
for (const p of [1e4, 1e5, 1e6, 1e7, 1e8]) {
  console.log(
    `| 10^${Math.log10(p)} | ${both(learned, p, (c) => c.requests.toLocaleString('en-US'))} | ` +
      `${both(learned, p, (c) => bytes(c.wireBytes))} | ${both(learned, p, (c) => time(c.workerCpuMs + c.objectCpuMs))} | ` +
      `${both(learned, p, (c) => `$${fmt(1000 * c.usd)}`)} | ${both(baseline, p, (c) => `$${fmt(1000 * c.usd)}`)} |`,
  )
}

// When is it worth it? A run that takes k steps with the learned optimizer instead of Adam's kₐ costs
// k·(T + L) against kₐ·T: T your own cost of a training step, L the service's price of a learned
// step, Adam run on your own machine (its arithmetic is nothing next to a training step). It pays
// when k/kₐ < T/(T + L).
const gpuPerHour = 2
const stepsPerSecond = 10
const t = gpuPerHour / 3600 / stepsPerSecond
const sizes = [1e5, 1e6, 1e7]
const share = (p: number) => t / (t + costOf(learned, p, 'stateless').usd)
console.log(
  `\nWorth it? ${learned.name} costs $${fmt(costOf(learned, 1e6, 'stateless').usd)} per million coordinate-steps ` +
    `on Workers Paid (stateless). Against Adam on your own machine, with training steps on a $${gpuPerHour}/hour GPU ` +
    `at ${stepsPerSecond} steps a second ($${fmt(t)} a step), it pays for itself when it reaches the same loss in ` +
    `fewer than ${sizes.map((p) => `${(100 * share(p)).toFixed(0)}% of Adam's steps at 10^${Math.log10(p)} parameters`).join(', ')}.`,
)
