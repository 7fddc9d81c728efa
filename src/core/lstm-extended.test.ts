import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { bits } from '../../test/support/bits'
import { firstMismatch, maxScaledError, RTOL, STATE_FLOOR, updatesFloors } from '../../test/support/close'
import {
  extendedArchitecture,
  randomGradients,
  randomLstmWeights,
  randomUniform,
  seededRandom,
} from '../../test/support/random'
import { type ExtendedArchitecture, extendedArchitectureSchema, lstmSpec } from '../contract'
import { fusedKernel } from '../runtime/kernel-node'
import { initTf } from '../runtime/tf-node'
import { fusedLstmOptimizer } from './fused/lstm-fused'
import { lstmOptimizer } from './lstm'
import { lstmPlainOptimizer } from './lstm-plain'
import { lstmReferenceStep } from './lstm-reference'
import type { Optimizer } from './optimizer'

// The extended kinds (docs/optimizer-math.md) on every path, against the float64 oracle, as
// lstm.test.ts does for the paper's: |path − oracle| ≤ 1e-5·max(|oracle|, floor), floors a tenth
// of the natural scale (1 for h and c, |scale| for the updates, |scale|·r'^power for `tanh-rms`). The feature slots are the same
// bits on every path (kinds.ts fixes them), and an unseen coordinate's update is exactly +0.

/**
 * Random small extended architectures: K, L, H, E (0: no input layer), the output kind (`tanh-rms`
 * with or without a `decay` and a `gain` that start within the histories' few steps).
 */
const architectures = fc
  .record({
    layers: fc.integer({ min: 1, max: 2 }),
    hidden: fc.integer({ min: 1, max: 8 }),
    // β₁ as a fraction of √β₂ (the schema's bound for bounded inputs)
    beta1: fc.array(fc.double({ min: 0, max: 0.999, noNaN: true }), { minLength: 1, maxLength: 4 }),
    beta2: fc.double({ min: 0.5, max: 0.99, noNaN: true }),
    eps: fc.constantFrom(1e-8, 1e-6, 1e-3),
    logRms: fc.option(fc.constantFrom(5, 10), { nil: undefined }),
    inputSize: fc.integer({ min: 0, max: 6 }),
    output: fc.constantFrom('linear', 'tanh', 'tanh-rms' as const),
    power: fc.double({ min: 0.05, max: 1, noNaN: true }),
    decay: fc.option(
      fc.record({
        after: fc.integer({ min: 1, max: 3 }),
        power: fc.double({ min: 0.05, max: 1, noNaN: true }),
      }),
      { nil: undefined },
    ),
    gain: fc.option(
      fc.record({
        kind: fc.constant('latch' as const),
        after: fc.integer({ min: 2, max: 3 }),
        center: fc.double({ min: -0.2, max: 0.2, noNaN: true }),
        strength: fc.double({ min: 0, max: 30, noNaN: true }),
        cap: fc.double({ min: 0.01, max: 1, noNaN: true }),
      }),
      { nil: undefined },
    ),
    scale: fc.double({ min: -1, max: 1, noNaN: true }).filter((s) => Math.abs(s) > 1e-3),
  })
  .map(
    (r): ExtendedArchitecture => ({
      kind: 'lstm-cw',
      layers: r.layers,
      hidden: r.hidden,
      features: {
        kind: 'moments',
        beta1: r.beta1.map((b) => b * Math.sqrt(r.beta2)),
        beta2: r.beta2,
        eps: r.eps,
        ...(r.logRms === undefined ? {} : { logRms: r.logRms }),
      },
      ...(r.inputSize > 0 ? { inputLayer: { size: r.inputSize, activation: 'elu' as const } } : {}),
      output:
        r.output === 'tanh-rms'
          ? {
              kind: r.output,
              scale: r.scale,
              power: r.power,
              ...(r.decay === undefined ? {} : { decay: r.decay }),
              ...(r.gain === undefined ? {} : { gain: r.gain }),
            }
          : { kind: r.output, scale: r.scale },
    }),
  )
  // A gain's e^cap must keep the largest step a float32 (the schema's bound).
  .filter((a) => extendedArchitectureSchema.safeParse(a).success)

/**
 * Gradients for `steps` steps of n coordinates (|g| from 1e-8 to 1e2, some ±0 and ±1e30); the
 * coordinates listed in `silent` get only ±0.
 */
function history(n: number, steps: number, seed: number, silent: Set<number>): Float32Array[] {
  const next = seededRandom(seed)
  return Array.from({ length: steps }, (_, t) => {
    const grads = randomGradients(n, seed * 31 + t)
    for (let i = 0; i < n; i++) {
      const u = next()
      if (silent.has(i) || u < 0.15) grads[i] = next() < 0.5 ? 0 : -0
      else if (u > 0.97) grads[i] = (next() < 0.5 ? -1 : 1) * 1e30
    }
    return grads
  })
}

/**
 * A random state: the LSTM's part uniform in [-2, 2), slots of a coordinate that has seen gradients
 * ([m…] in [-1, 1), r in [0, 1), z = 1; the output's slots, a count's digits and a gain's p and a,
 * anywhere in [-2, 300), junk included), except the `silent` ones, whose slots are fresh zeros.
 */
function randomState(a: ExtendedArchitecture, n: number, seed: number, silent: Set<number>): Float32Array {
  const spec = lstmSpec(a)
  const state = randomUniform(n * spec.stateSize, seed, 2)
  const k = a.features.beta1.length
  for (let i = 0; i < n; i++) {
    const slots = i * spec.stateSize + spec.state.features.offset
    for (let j = 0; j < k + 2; j++) state[slots + j] = silent.has(i) ? 0 : state[slots + j] / 2
    if (!silent.has(i)) {
      state[slots + k] = Math.abs(state[slots + k])
      state[slots + k + 1] = 1
    }
    const count = i * spec.stateSize + spec.state.output.offset
    for (let j = 0; j < spec.state.output.size; j++) {
      state[count + j] = silent.has(i) ? 0 : Math.fround((state[count + j] + 2) * 75.5 - 2)
    }
  }
  return state
}

/** The feature and output slots of a state, [N, Sf + So], as float32 bits. */
function slotBits(a: ExtendedArchitecture, state: ArrayLike<number>): number[] {
  const spec = lstmSpec(a)
  const { offset } = spec.state.features
  const size = spec.stateSize - offset
  const out: number[] = []
  for (let i = 0; i < state.length / spec.stateSize; i++) {
    out.push(
      ...bits(
        Array.prototype.slice.call(state, i * spec.stateSize + offset, i * spec.stateSize + offset + size),
      ),
    )
  }
  return out
}

type Path = {
  name: string
  backend?: 'wasm' | 'cpu'
  make: (w: ReturnType<typeof randomLstmWeights>) => Optimizer
}
const paths: Path[] = [
  { name: 'tfjs-wasm', backend: 'wasm', make: lstmOptimizer },
  { name: 'tfjs-cpu', backend: 'cpu', make: lstmOptimizer },
  { name: 'plain TypeScript', make: lstmPlainOptimizer },
  { name: 'the fused kernel', make: (w) => fusedLstmOptimizer(w, fusedKernel()) },
]

describe.each(paths)('extended architectures on $name', ({ backend, make }) => {
  beforeAll(async () => {
    await initTf(backend ?? 'wasm')
  })

  it('agree with the float64 oracle on random weights, states and histories', () => {
    fc.assert(
      fc.property(architectures, fc.integer({ min: 1, max: 1 << 30 }), fc.boolean(), (a, seed, fresh) => {
        const weights = randomLstmWeights(a, seed, 0.5)
        const opt = make(weights)
        const n = 40
        const silent = new Set([0, 7, 39])
        let state = fresh ? opt.init(n) : randomState(a, n, seed + 1, silent)
        let oracleState: ArrayLike<number> = Float64Array.from(state)
        try {
          for (const [t, grads] of history(n, 3, seed, silent).entries()) {
            const got = opt.update(grads, state)
            const want = lstmReferenceStep(weights, grads, oracleState)
            const floors = updatesFloors(a, want.state)
            const u = firstMismatch(got.updates, want.updates, RTOL, floors)
            expect(
              u,
              `step ${t} update ${u}: ${got.updates[u]} vs ${want.updates[u]} (worst ${maxScaledError(got.updates, want.updates, floors)})`,
            ).toBe(-1)
            const s = firstMismatch(got.state, want.state, RTOL, STATE_FLOOR)
            expect(s, `step ${t} state ${s}: ${got.state[s]} vs ${want.state[s]}`).toBe(-1)
            expect(slotBits(a, got.state), `step ${t} slots`).toEqual(slotBits(a, want.state))
            for (const i of silent) expect(Object.is(got.updates[i], 0), `unseen coordinate ${i}`).toBe(true)
            state = got.state
            oracleState = want.state
          }
        } finally {
          opt.dispose?.()
        }
      }),
      { numRuns: backend === 'cpu' ? 15 : 40 },
    )
  })

  it('give an update of exactly +0 to every coordinate that has seen only ±0, whatever its LSTM state', () => {
    fc.assert(
      fc.property(
        architectures,
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 29 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 6 }),
        (a, seed, silentList, steps) => {
          const weights = randomLstmWeights(a, seed, 2)
          const opt = make(weights)
          const silent = new Set(silentList)
          let state = randomState(a, 30, seed + 2, silent)
          try {
            for (const grads of history(30, steps, seed, silent)) {
              const out = opt.update(grads, state)
              for (let i = 0; i < 30; i++) {
                if (silent.has(i)) expect(Object.is(out.updates[i], 0), `coordinate ${i}`).toBe(true)
              }
              state = out.state
            }
          } finally {
            opt.dispose?.()
          }
        },
      ),
      { numRuns: backend === 'cpu' ? 15 : 50 },
    )
  })
})

describe('extended architectures at large N (tfjs-wasm)', () => {
  beforeAll(async () => {
    await initTf('wasm')
  })

  it("steps 20,000 coordinates of l2o-mlp's shape, matching the oracle on a sample, in place too", () => {
    const weights = randomLstmWeights(extendedArchitecture, 12, 0.6)
    const opt = lstmOptimizer(weights)
    const n = 20_000
    const silent = new Set([0, 19_999])
    const state = randomState(extendedArchitecture, n, 13, silent)
    const [grads] = history(n, 1, 14, silent)
    const got = opt.update(grads, state)
    const inPlace = state.slice()
    const updates = new Float32Array(n)
    opt.updateInto(grads, inPlace, { updates, state: inPlace })
    expect(bits(updates)).toEqual(bits(got.updates))
    expect(bits(inPlace)).toEqual(bits(got.state))
    const s = opt.stateSize
    for (const i of [0, 1, 8191, 8192, 12_345, 19_999]) {
      const want = lstmReferenceStep(weights, grads.subarray(i, i + 1), state.subarray(i * s, (i + 1) * s))
      expect(firstMismatch(got.updates.subarray(i, i + 1), want.updates, RTOL, 0.01)).toBe(-1)
      expect(firstMismatch(got.state.subarray(i * s, (i + 1) * s), want.state, RTOL, STATE_FLOOR)).toBe(-1)
    }
    expect(Object.is(got.updates[0], 0) && Object.is(got.updates[19_999], 0)).toBe(true)
    opt.dispose?.()
  })
})
