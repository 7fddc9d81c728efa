// Kernel benchmark (not a test): coordinates per second of one LSTM optimizer update at paper size
// (L=2, H=20, log-sign p=10, random weights), timed end to end through Optimizer.update: checks,
// preprocessing, upload of grads + state, compute, download of updates + state.
// Run: npm run bench:kernel   (about a minute; tfjs-cpu dominates)
import os from 'node:os'
import * as tf from '@tensorflow/tfjs-core'
import { lstmOptimizer, type Optimizer } from '../src/core'
import { lstmPlainOptimizer } from '../src/core/lstm-plain'
import { lstmReferenceOptimizer } from '../src/core/lstm-reference'
import { initTf } from '../src/runtime/tf-node'
import { paperArchitecture, randomGradients, randomLstmWeights, randomUniform } from '../test/support/random'
import { progress } from './progress'

const SIZES = [1_000, 10_000, 65_536]

interface Path {
  name: string
  backend?: 'wasm' | 'cpu'
  make: () => Optimizer
  /** Timed runs per size, after `warmup` untimed ones: tfjs-cpu is ~100× slower than wasm. */
  runs: (n: number) => number
  warmup: number
}

const weights = randomLstmWeights(paperArchitecture, 2016)

const paths: Path[] = [
  {
    name: 'tfjs-wasm (SIMD, 1 thread)',
    backend: 'wasm',
    make: () => lstmOptimizer(weights),
    runs: (n) => (n <= 10_000 ? 31 : 15),
    warmup: 3,
  },
  {
    name: 'tfjs-cpu',
    backend: 'cpu',
    make: () => lstmOptimizer(weights),
    runs: (n) => (n <= 1_000 ? 5 : 3),
    warmup: 1,
  },
  {
    name: 'plain TS, float32 weights (lstmPlainOptimizer)',
    make: () => lstmPlainOptimizer(weights),
    runs: (n) => (n <= 10_000 ? 7 : 3),
    warmup: 1,
  },
  {
    name: 'plain TS, float64 oracle (lstmReferenceOptimizer)',
    make: () => lstmReferenceOptimizer(weights),
    runs: (n) => (n <= 10_000 ? 7 : 3),
    warmup: 1,
  },
]

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

interface Row {
  path: string
  n: number
  medianMs: number
  minMs: number
  runs: number
  coordsPerSecond: number
}

const rows: Row[] = []
const bar = progress({
  label: 'bench:kernel',
  total: paths.reduce((sum, p) => sum + SIZES.reduce((s, n) => s + p.warmup + p.runs(n), 0), 0),
})
for (const path of paths) {
  if (path.backend) await initTf(path.backend)
  const opt = path.make()
  for (const n of SIZES) {
    const grads = randomGradients(n, n)
    // A realistic mid-run state rather than zeros.
    const state = randomUniform(n * opt.stateSize, n + 1, 0.5)
    const what = `${path.name} N=${n.toLocaleString('en-US')}`
    for (let i = 0; i < path.warmup; i++) {
      opt.update(grads, state)
      bar.tick(1, what)
    }
    const times: number[] = []
    for (let i = 0; i < path.runs(n); i++) {
      const t0 = performance.now()
      opt.update(grads, state)
      times.push(performance.now() - t0)
      bar.tick(1, what)
    }
    const medianMs = median(times)
    rows.push({
      path: path.name,
      n,
      medianMs,
      minMs: Math.min(...times),
      runs: times.length,
      coordsPerSecond: n / (medianMs / 1000),
    })
  }
  opt.dispose?.()
}
bar.done()

const fastest = new Map<number, number>()
for (const r of rows) fastest.set(r.n, Math.max(fastest.get(r.n) ?? 0, r.coordsPerSecond))

const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')
console.log(
  `\nLSTM optimizer update, L=2 H=20 log-sign p=10; Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} ×${os.cpus().length}, wasm SIMD ${simd}, load average ${os.loadavg()[0].toFixed(1)} at the end; median of timed runs after warm-up (min shown for noise); ratio = coords/s ÷ fastest at that N\n`,
)
console.log('| implementation | N | median ms | min ms | runs | coords/s (median) | ratio to fastest |')
console.log('|---|---:|---:|---:|---:|---:|---:|')
for (const r of rows) {
  const cps =
    r.coordsPerSecond >= 1e6
      ? `${(r.coordsPerSecond / 1e6).toFixed(2)} M`
      : `${(r.coordsPerSecond / 1e3).toFixed(1)} k`
  const ratio = r.coordsPerSecond / (fastest.get(r.n) ?? 1)
  console.log(
    `| ${r.path} | ${r.n.toLocaleString('en-US')} | ${r.medianMs.toFixed(2)} | ${r.minMs.toFixed(2)} | ${r.runs} | ${cps} | ${ratio >= 0.01 ? ratio.toFixed(2) : ratio.toExponential(1)} |`,
  )
}
