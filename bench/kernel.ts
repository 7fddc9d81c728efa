// Kernel benchmark (not a test): coordinates per second of one learned-optimizer step, end to end
// through Optimizer.updateInto (checks, inputs in, compute, updates and state out), the state stepped
// in place as the server steps it. The fused kernel on Node and inside workerd, side by side in the
// same run with PyTorch on one thread doing the same math (bench/kernel_torch.py through
// /usr/bin/python3, the fastest of its three ways), for:
// - the paper's shape: L=2, H=20, log-sign p=10 (random weights);
// - the extended fixture's: L=2, H=8, moments K=3, an ELU input layer E=8, tanh output.
// The fused kernel and PyTorch take turns step by step (PyTorch serves timing requests on a pipe),
// so both see the same machine load; inside workerd the kernel is timed after them, and the tfjs
// and plain-TypeScript paths once, on the paper's shape, for context.
// Run: npm run bench:kernel [-- --pairs 15 --sizes 1000,10000,65536 --no-torch --no-workerd --no-tfjs]
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { lstmOptimizer, type Optimizer } from '../src/core'
import type { KernelModel } from '../src/core/fused/kernel'
import { fusedKernelOptimizer, kernelModel } from '../src/core/fused/lstm-fused'
import { lstmPlainOptimizer } from '../src/core/lstm-plain'
import { lstmReferenceOptimizer } from '../src/core/lstm-reference'
import { fusedKernel } from '../src/runtime/kernel-node'
import { initTf } from '../src/runtime/tf-node'
import { decodeLstmWeights, encodeLstmWeights } from '../src/weights'
import { paperArchitecture, randomGradients, randomLstmWeights, randomUniform } from '../test/support/random'
import { progress } from './progress'
import { startBenchWorker } from './workerd/start'

const { values: flags } = parseArgs({
  options: {
    pairs: { type: 'string' },
    sizes: { type: 'string' },
    'no-torch': { type: 'boolean' },
    'no-workerd': { type: 'boolean' },
    'no-tfjs': { type: 'boolean' },
  },
})
const SIZES = (flags.sizes ?? '1000,10000,65536').split(',').map(Number)
const WARMUP = 2
/** Timed steps of each implementation at N: fewer at large N, where one step takes long. */
const runsAt = (n: number) => Number(flags.pairs ?? (n <= 10_000 ? 21 : 11))
const python = '/usr/bin/python3'
const root = path.resolve(import.meta.dirname, '..')

interface Shape {
  name: string
  model: KernelModel
  /** The weight file, for PyTorch. */
  file: string
  /** The paper's weights, for the TypeScript paths (which read the paper's form only). */
  weights?: ReturnType<typeof randomLstmWeights>
}

const scratch = mkdtempSync(path.join(os.tmpdir(), 'l2o-bench-kernel-'))
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }))
const paperWeights = randomLstmWeights(paperArchitecture, 2016)
writeFileSync(path.join(scratch, 'paper.safetensors'), encodeLstmWeights(paperWeights))
const extendedFile = path.join(root, 'test/fixtures/extended/moments-elu-tanh/model.safetensors')
const shapes: Shape[] = [
  {
    name: 'paper: L=2, H=20, log-sign p=10',
    model: kernelModel(paperWeights),
    file: path.join(scratch, 'paper.safetensors'),
    weights: paperWeights,
  },
  {
    name: 'extended: L=2, H=8, moments K=3, ELU input layer E=8, tanh output',
    model: kernelModel(decodeLstmWeights(readFileSync(extendedFile))),
    file: extendedFile,
  },
]

/** A realistic mid-run state: LSTM part uniform in ±0.5; moment slots r ≥ 0 and z = 1 (seen). */
function inputs(model: KernelModel, stateSize: number, n: number) {
  const grads = randomGradients(n, n)
  const state = randomUniform(n * stateSize, n + 1, 0.5)
  if (model.features.kind === 'moments') {
    const k = model.features.beta1.length
    const slots = 2 * model.layers * model.hidden
    for (let i = 0; i < n; i++) {
      state[i * stateSize + slots + k] = Math.abs(state[i * stateSize + slots + k])
      state[i * stateSize + slots + k + 1] = 1
    }
  }
  return { grads, state }
}

function timeSteps(opt: Optimizer, grads: Float32Array, state: Float32Array, runs: number, warmup: number) {
  // As the server steps (src/server/compute.ts): the state in place, the updates into a buffer made
  // once. `update` allocated a new state each step (21 MB at N = 65,536 and S = 80), and a separate
  // output state cost the fused kernel ~25% at that N, in the memory traffic of writing it (2.0 M
  // coordinates/s at N = 10,000 and 1.5 M at 65,536, against 2.0 M at both in place). PyTorch is
  // timed both ways (addmm, addmm-inplace).
  const out = { updates: new Float32Array(grads.length), state }
  for (let i = 0; i < warmup; i++) opt.updateInto(grads, state, out)
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const start = performance.now()
    opt.updateInto(grads, state, out)
    times.push(performance.now() - start)
  }
  return times
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

const torchVersion = (() => {
  if (flags['no-torch']) return undefined
  const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' })
  return probe.status === 0 ? probe.stdout.trim() : undefined
})()

/** bench/kernel_torch.py as a server: one JSON request per line in, one answer per line out. */
function torchServer() {
  const child = spawn(python, [path.join(import.meta.dirname, 'kernel_torch.py')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const ask = async (request: object) => {
    child.stdin.write(`${JSON.stringify(request)}\n`)
    const { value, done } = await lines.next()
    if (done) throw new Error('bench/kernel_torch.py stopped')
    return JSON.parse(value)
  }
  return {
    load: (file: string) => ask({ load: file }) as Promise<{ stateSize: number }>,
    time: async (impl: string, n: number) =>
      ((await ask({ impl, n, runs: 1, warmup: WARMUP })) as { times: number[] }).times[0],
    close: () => child.stdin.end(),
  }
}

// --- the measurements---------------------------------------------------------------------------------

const loadStart = os.loadavg()
/** implementation|shape|n → ms per step, one entry per timed step. */
const times = new Map<string, number[]>()
const record = (impl: string, shape: Shape, n: number, ms: number[]) => {
  const key = `${impl}|${shape.name}|${n}`
  times.set(key, [...(times.get(key) ?? []), ...ms])
}

// Context: the TypeScript paths on the paper's shape, once.
const context: {
  name: string
  backend?: 'wasm' | 'cpu'
  make: () => Optimizer
  runs: (n: number) => number
}[] = flags['no-tfjs']
  ? []
  : [
      {
        name: 'tfjs-wasm (SIMD, 1 thread)',
        backend: 'wasm',
        make: () => lstmOptimizer(paperWeights),
        runs: runsAt,
      },
      { name: 'tfjs-cpu', backend: 'cpu', make: () => lstmOptimizer(paperWeights), runs: () => 3 },
      { name: 'plain TypeScript, float32', make: () => lstmPlainOptimizer(paperWeights), runs: () => 3 },
      {
        name: 'plain TypeScript, float64 (the test oracle)',
        make: () => lstmReferenceOptimizer(paperWeights),
        runs: () => 3,
      },
    ]
const bar = progress({ label: 'bench:kernel', total: (shapes.length + context.length) * SIZES.length })
const torch = torchVersion === undefined ? undefined : torchServer()
const worker = flags['no-workerd'] ? undefined : await startBenchWorker()
try {
  for (const shape of shapes) {
    const fused = fusedKernelOptimizer(shape.model, fusedKernel())
    if (torch !== undefined && (await torch.load(shape.file)).stateSize !== fused.stateSize)
      throw new Error('PyTorch and the kernel disagree on S')
    for (const n of SIZES) {
      const { grads, state } = inputs(shape.model, fused.stateSize, n)
      timeSteps(fused, grads, state, 0, WARMUP)
      // One step of each in turn, the order rotating, so a change of load falls on all of them.
      const turns: Array<[string, () => Promise<number>]> = [
        ['fused kernel, Node', async () => timeSteps(fused, grads, state, 1, 0)[0]],
      ]
      if (torch !== undefined) {
        turns.push(['PyTorch, addmm', () => torch.time('addmm', n)])
        turns.push(['PyTorch, addmm in place', () => torch.time('addmm-inplace', n)])
        turns.push(['PyTorch, lstmcell', () => torch.time('lstmcell', n)])
      }
      for (let i = 0; i < runsAt(n); i++) {
        for (let j = 0; j < turns.length; j++) {
          const [impl, run] = turns[(i + j) % turns.length]
          record(impl, shape, n, [await run()])
        }
      }
      if (worker !== undefined) {
        await worker.load(shape.model)
        const repeat = Math.max(1, Math.round(20_000 / n))
        record('fused kernel, workerd', shape, n, await worker.time(grads, state, runsAt(n), WARMUP, repeat))
      }
      bar.tick(1, `${shape.name}, N = ${n.toLocaleString('en-US')}`)
    }
  }
} finally {
  torch?.close()
  await worker?.dispose()
}

for (const c of context) {
  if (c.backend) await initTf(c.backend)
  const opt = c.make()
  for (const n of SIZES) {
    const { grads, state } = inputs(shapes[0].model, opt.stateSize, n)
    record(c.name, shapes[0], n, timeSteps(opt, grads, state, c.runs(n), 1))
    bar.tick(1, `${c.name}, N = ${n.toLocaleString('en-US')}`)
  }
  opt.dispose?.()
}
bar.done()

// --- the tables ---------------------------------------------------------------------------------------

const rate = (impl: string, shape: Shape, n: number) => {
  const ms = times.get(`${impl}|${shape.name}|${n}`)
  return ms === undefined ? undefined : n / (median(ms) / 1000)
}
const fmtRate = (r: number | undefined) =>
  r === undefined ? '–' : r >= 1e6 ? `${(r / 1e6).toFixed(2)} M` : `${(r / 1e3).toFixed(0)} k`
const fmtN = (n: number) => n.toLocaleString('en-US')

const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
const load = (l: number[]) => l.map((x) => x.toFixed(1)).join(' ')
console.log(
  `\nOne learned-optimizer step, coordinates per second (median). Node ${process.version}, ${os.cpus().length}× ${cpu}, ` +
    `load average ${load(loadStart)} at the start, ${load(os.loadavg())} at the end. ` +
    (torchVersion === undefined
      ? `PyTorch: not installed for ${python}, so no PyTorch column. `
      : `PyTorch ${torchVersion} on 1 thread, no autograd. `) +
    `The fused kernel and PyTorch take turns step by step (${SIZES.map(runsAt).join('/')} steps each).\n`,
)
const implementations = [
  'fused kernel, Node',
  'fused kernel, workerd',
  'PyTorch, addmm',
  'PyTorch, addmm in place',
  'PyTorch, lstmcell',
  ...context.map((c) => c.name),
]
const labels: Record<string, string> = {
  'PyTorch, addmm': 'PyTorch, addmm on a feature-major state',
  'PyTorch, addmm in place': 'PyTorch, the same, the state in place',
  'PyTorch, lstmcell': 'PyTorch, nn.LSTMCell on the [N, S] state',
}
for (const shape of shapes) {
  console.log(`${shape.name}\n`)
  console.log(`| implementation | ${SIZES.map((n) => `N = ${fmtN(n)}`).join(' | ')} |`)
  console.log(`|---|${SIZES.map(() => '---:').join('|')}|`)
  for (const impl of implementations) {
    const rates = SIZES.map((n) => rate(impl, shape, n))
    if (rates.every((r) => r === undefined)) continue
    console.log(`| ${labels[impl] ?? impl} | ${rates.map(fmtRate).join(' | ')} |`)
  }
  if (torchVersion !== undefined) {
    const ratios = SIZES.map((n) => {
      const torch = Math.max(
        ...['PyTorch, addmm', 'PyTorch, addmm in place', 'PyTorch, lstmcell'].map(
          (i) => rate(i, shape, n) ?? 0,
        ),
      )
      return `**${((rate('fused kernel, Node', shape, n) ?? 0) / torch).toFixed(2)}×**`
    })
    console.log(`| fused kernel (Node) ÷ the fastest PyTorch | ${ratios.join(' | ')} |`)
  }
  console.log('')
}
