import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { type LstmSpec, lstmSpec } from '../../src/contract'
import { type LstmWeights, lstmOptimizer } from '../../src/core'
import { fusedLstmOptimizer } from '../../src/core/fused/lstm-fused'
import { momentsInto, stepFactorReader } from '../../src/core/kinds'
import { preprocessInto } from '../../src/core/preprocess'
import { fusedKernel } from '../../src/runtime/kernel-node'
import { readShippedVersions } from '../../src/runtime/shipped-weights'
import { initTf, type NodeTfBackend } from '../../src/runtime/tf-node'
import { decode } from '../../src/safetensors'
import { readWeightFile } from '../../src/weights'

// Parity with PyTorch (DESIGN §2): train/ exports golden trajectories made by its nn.LSTMCell module
// from the shipped weight files; the TypeScript core must reproduce them on every backend, and so
// must the fused kernel (src/core/fused).
//
// Tolerance: |ts − torch| ≤ 1e-5·|torch| + 1e-7·scale, where `scale` is the size of the operands the
// value was computed from, so "absolute near zero" means near zero relative to them. A cell state
// c' = f·c + i·g with f, i ∈ (0, 1) and |g| ≤ 1 is a sum of terms up to 1 + |c| in size; when they
// cancel, the result carries the absolute rounding error of the terms (measured: PyTorch float32 is
// 0.65× this tolerance away from the float64 answer on such a coordinate), so two float32
// implementations with a different summation order can never agree to 1e-5 of the small result.
// h' = o·tanh(c') inherits c'’s error; the update sums |outputScale·W_out,j| times h'_j’s error.
//
// The extended kinds (docs/optimizer-math.md; goldens in test/fixtures/extended):
// - the `moments` features and slots are fixed to the bit by the doc (float64 arithmetic on float32
//   operands, the β's widened as the JSON numbers), so the new state's slots must equal PyTorch's
//   exactly, and the features enter the gate sums at their size |x|.
// - the ELU input layer: a = W_in·x + b_in has operands |b_in| + Σ|W_in·x|; ELU is 1-Lipschitz and
//   |ELU(a)| ≤ |a|, so e carries a's scale into the first cell's gate sums.
// - the output: tanh is 1-Lipschitz, so scale·tanh(y) has the linear head's scale (`tanh-rms`
//   multiplies it by r'^power, from the exact r' slot, so the update's scale too, and by its
//   `decay` and `gain` factors, from the exact count and gain slots); a coordinate that has never
//   seen a nonzero gradient must get exactly +0 on both sides.
// - the `gain` pools over the call: each golden step is one call over all its coordinates, as
//   PyTorch's is. Its slots [p, a] are exact like the features' (p' = g; a' = f32(a + X), X a mean
//   summed in another order, which moves it by ~1e-16 relative, far below a float32 rounding).
const weightsRoot = path.join(import.meta.dirname, '../../weights')
const fixturesRoot = path.join(import.meta.dirname, '../fixtures/extended')
const relativeTolerance = 1e-5
const absoluteTolerance = 1e-7

/** Every folder under `root/<name>/<version>` (shipped) or `root/<case>` (fixtures) with goldens. */
function goldenFolders(root: string, depth: 1 | 2, label: (parts: string[]) => string): Map<string, string> {
  const found = new Map<string, string>()
  const folders = (dir: string) =>
    readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
  const walk = (dir: string, parts: string[]) => {
    if (parts.length === depth) {
      if (readdirSync(dir).includes('golden.safetensors')) found.set(label(parts), dir)
      return
    }
    for (const name of folders(dir)) walk(path.join(dir, name), [...parts, name])
  }
  walk(root, [])
  return found
}

interface Golden {
  digest: string
  steps: number
  numParams: number
  stateSize: number
  grads: Float32Array
  states: Float32Array
  updates: Float32Array
}

function readGolden(dir: string): Golden {
  const file = decode(new Uint8Array(readFileSync(path.join(dir, 'golden.safetensors'))))
  expect(file.metadata?.format).toBe('l2o-golden/1')
  const tensor = (name: string) => {
    const t = file.tensors.get(name)
    if (t === undefined || t.dtype !== 'F32') throw new Error(`golden file lacks F32 tensor ${name}`)
    return t
  }
  const grads = tensor('grads')
  const states = tensor('states')
  const [steps, numParams] = grads.shape
  expect(states.shape).toEqual([steps + 1, numParams, states.shape[2]])
  expect(tensor('updates').shape).toEqual([steps, numParams])
  return {
    digest: file.metadata?.digest ?? '',
    steps,
    numParams,
    stateSize: states.shape[2],
    grads: grads.data as Float32Array,
    states: states.data as Float32Array,
    updates: tensor('updates').data as Float32Array,
  }
}

/**
 * The scale of each input of the first cell, [N, X] (float64): |x| for the features, and through
 * the input layer |b_in| + Σ|W_in·x|.
 */
function inputScales(weights: LstmWeights, spec: LstmSpec, grads: Float32Array, stateIn: Float32Array) {
  const n = grads.length
  const width = spec.featureSize
  const x = new Float64Array(n * width)
  if (spec.features.kind === 'moments') {
    const next = new Float64Array(stateIn.length)
    const slots = spec.state.features.offset
    momentsInto(spec.features, grads, stateIn, spec.stateSize, slots, x, width, next, new Uint8Array(n))
  } else {
    preprocessInto(weights.architecture, grads, x, width)
  }
  if (spec.inputLayer === null || weights.input === undefined) return x.map(Math.abs)
  const { weight, bias } = weights.input
  const size = spec.inputLayer.size
  const scales = new Float64Array(n * size)
  for (let i = 0; i < n; i++) {
    for (let e = 0; e < size; e++) {
      let sum = Math.abs(bias[e])
      for (let j = 0; j < width; j++) sum += Math.abs(weight[e * width + j] * x[i * width + j])
      scales[i * size + e] = sum
    }
  }
  return scales
}

/**
 * Σ|terms| of the largest gate pre-activation of every unit, [N, L·H]: W_ih·x + b_ih + W_hh·h + b_hh
 * summed in absolute value (float64), x at its scale (inputScales). A float32 sum's rounding error
 * grows with this, not with the sum itself: a unit whose weights are ~10 (a clone of momentum SGD
 * learns input-gate weights of about p on log|g|/p) has gates ten times less exact in absolute
 * terms than one whose are ~1.
 */
function gateOperandSums(
  weights: LstmWeights,
  spec: LstmSpec,
  inputs: ArrayLike<number> & { subarray(start: number, end: number): ArrayLike<number> },
  stateIn: Float32Array,
  stateOut: Float32Array,
) {
  const { hidden, layers, stateSize, inputSize: inputs0 } = spec
  const n = inputs.length / inputs0
  const sums = new Float64Array(n * layers * hidden)
  for (let i = 0; i < n; i++) {
    let x: ArrayLike<number> = inputs.subarray(i * inputs0, (i + 1) * inputs0)
    for (let k = 0; k < layers; k++) {
      const cell = weights.cells[k]
      const hOff = i * stateSize + 2 * k * hidden
      for (let u = 0; u < hidden; u++) {
        let worst = 0
        for (let q = 0; q < 4; q++) {
          const r = q * hidden + u
          let sum = Math.abs(cell.biasIh[r]) + Math.abs(cell.biasHh[r])
          for (let j = 0; j < x.length; j++) sum += Math.abs(cell.weightIh[r * x.length + j] * x[j])
          for (let j = 0; j < hidden; j++) sum += Math.abs(cell.weightHh[r * hidden + j] * stateIn[hOff + j])
          worst = Math.max(worst, sum)
        }
        sums[(i * layers + k) * hidden + u] = worst
      }
      x = stateOut.subarray(hOff, hOff + hidden)
    }
  }
  return sums
}

/** The scales behind one step: of every state element and every update. */
function stepScales(
  weights: LstmWeights,
  grads: Float32Array,
  stateIn: Float32Array,
  stateOut: Float32Array,
) {
  const spec = lstmSpec(weights.architecture)
  const gates = gateOperandSums(weights, spec, inputScales(weights, spec, grads, stateIn), stateIn, stateOut)
  return {
    state: stateScales(spec, stateIn, gates),
    updates: updateScales(weights, spec, stateIn, stateOut, gates, grads.length),
  }
}

/**
 * Scale of the operands behind each state element: 1 + |c| before the step + the gate sums; 0 for
 * the feature slots, which must be exact (see the top).
 */
function stateScales(spec: LstmSpec, stateIn: Float32Array, gates: Float64Array) {
  const { hidden, stateSize } = spec
  const lstm = spec.state.lstm.size
  const scales = new Float32Array(stateIn.length)
  for (let i = 0; i < stateIn.length; i++) {
    const offset = i % stateSize
    if (offset >= lstm) continue
    const layerStart = i - offset + Math.floor(offset / (2 * hidden)) * 2 * hidden
    const unit =
      Math.floor(i / stateSize) * (lstm / 2) + Math.floor(offset / (2 * hidden)) * hidden + (offset % hidden)
    scales[i] = 1 + Math.abs(stateIn[layerStart + hidden + (offset % hidden)]) + gates[unit]
  }
  return scales
}

/**
 * Scale behind each update: 1 + Σ_j |scale·W_out,j|·(1 + |c_L,j| + gate sum of j), times r'^power
 * for `tanh-rms` (its factor, computed from the exact r' slot, scales the whole update), times its
 * `decay` factor (from the exact step count) and its `gain`'s multiplier (from the exact a' slot).
 */
function updateScales(
  weights: LstmWeights,
  spec: LstmSpec,
  stateIn: Float32Array,
  stateOut: Float32Array,
  gates: Float64Array,
  numParams: number,
): Float32Array {
  const { hidden, layers, stateSize, output } = spec
  const outputScale = output.scale
  const factorAt = stepFactorReader(spec)
  const lastC = (layers - 1) * 2 * hidden + hidden
  const scales = new Float32Array(numParams)
  for (let i = 0; i < numParams; i++) {
    let scale = 1
    for (let u = 0; u < hidden; u++) {
      const gate = gates[(i * layers + layers - 1) * hidden + u]
      scale +=
        Math.abs(outputScale * weights.head.weight[u]) *
        (1 + Math.abs(stateIn[i * stateSize + lastC + u]) + gate)
    }
    scales[i] = scale * factorAt(stateOut, i * stateSize)
  }
  return scales
}

/**
 * The zero-gradient rule: where the new state's seen flag z is 0, both sides' update is exactly +0.
 * Returns the coordinates it checked.
 */
function expectUnseenExactlyZero(
  spec: LstmSpec,
  stateOut: Float32Array,
  ours: Float32Array,
  torch: Float32Array,
  what: string,
): number[] {
  if (spec.features.kind !== 'moments') return []
  const z = spec.state.features.offset + spec.features.beta1.length + 1
  const unseen: number[] = []
  for (let i = 0; i < ours.length; i++) {
    if (stateOut[i * spec.stateSize + z] !== 0) continue
    unseen.push(i)
    const exact = Object.is(ours[i], 0) && Object.is(torch[i], 0)
    expect(exact, `${what}: coordinate ${i} must be exactly +0 (${ours[i]}, PyTorch ${torch[i]})`).toBe(true)
  }
  return unseen
}

/** Scales that check only the feature slots (exactly): the LSTM's part gets an infinite tolerance. */
function slotsOnly(scales: Float32Array, spec: LstmSpec): Float32Array {
  return scales.map((_, i) => (i % spec.stateSize < spec.state.lstm.size ? Number.POSITIVE_INFINITY : 0))
}

function expectClose(
  actual: Float32Array,
  expected: Float32Array,
  scales: Float32Array,
  what: string,
  id: string,
): void {
  expect(actual.length, what).toBe(expected.length)
  let worst = 0
  for (let i = 0; i < expected.length; i++) {
    // A scale of 0 marks a value that must be exact (the feature slots).
    const tolerance =
      scales[i] === 0 ? 0 : relativeTolerance * Math.abs(expected[i]) + absoluteTolerance * scales[i]
    const error = Object.is(actual[i], expected[i]) ? 0 : Math.abs(actual[i] - expected[i])
    if (!(error <= tolerance)) {
      throw new Error(
        `${what}: element ${i} is ${actual[i]}, PyTorch gave ${expected[i]} (tolerance ${tolerance})`,
      )
    }
    if (tolerance > 0) worst = Math.max(worst, error / tolerance)
  }
  worstRatios.set(id, Math.max(worstRatios.get(id) ?? 0, worst))
}

/** Worst error as a fraction of its tolerance, per golden. */
const worstRatios = new Map<string, number>()

const goldens = new Map([
  ...goldenFolders(weightsRoot, 2, ([name, version]) => `${name}@${version}`),
  ...goldenFolders(fixturesRoot, 1, ([name]) => `fixture ${name}`),
])
const backends: Array<NodeTfBackend | 'fused'> = ['wasm', 'cpu', 'fused']
const disposers: Array<() => void> = []
afterAll(() => {
  for (const dispose of disposers) dispose()
  const ratios = [...worstRatios].map(([id, ratio]) => `${id} ${ratio.toFixed(3)}`).join(', ')
  console.info(`parity: worst error as a fraction of the tolerance: ${ratios}`)
})

describe('the TypeScript core matches PyTorch on the golden vectors', () => {
  it('has goldens for the quadratic, MNIST and MLP optimizers and for every extended fixture', () => {
    expect([...goldens.keys()].map((id) => id.split('@')[0]).sort()).toEqual(
      expect.arrayContaining([
        'fixture moments-elu-tanh',
        'fixture moments-linear',
        'fixture moments-logrms-elu-tanh',
        'fixture moments-logrms-elu-tanhrms',
        'fixture moments-logrms-elu-tanhrms-decay',
        'fixture moments-logrms-elu-tanhrms-decay-gain',
        'fixture moments-tanhrms-gain',
        'l2o-mlp',
        'l2o-mnist',
        'l2o-quadratic',
      ]),
    )
  })

  it('has a golden for every shipped version (every version the server registers)', async () => {
    const shipped = (await readShippedVersions(weightsRoot)).map((v) => `${v.name}@${v.version}`)
    expect(shipped.length).toBeGreaterThanOrEqual(4)
    expect(shipped.filter((id) => !goldens.has(id))).toEqual([])
  })

  for (const [id, dir] of goldens) {
    for (const backend of backends) {
      const name = backend === 'fused' ? 'the fused kernel' : `tfjs-${backend}`
      it(`${id} on ${name}: every step, fed PyTorch's state and chained on its own`, async () => {
        if (backend !== 'fused') await initTf(backend)
        const bytes = new Uint8Array(readFileSync(path.join(dir, 'model.safetensors')))
        const file = await readWeightFile(bytes)
        const golden = readGolden(dir)
        expect(file.digest).toBe(golden.digest)
        const weights = file.weights
        const spec = lstmSpec(weights.architecture)

        const optimizer =
          backend === 'fused' ? fusedLstmOptimizer(weights, fusedKernel()) : lstmOptimizer(weights)
        if ('dispose' in optimizer && typeof optimizer.dispose === 'function') {
          disposers.push(() => (optimizer.dispose as () => void)())
        }
        expect(optimizer.stateSize).toBe(golden.stateSize)
        const n = golden.numParams
        const stateLength = n * golden.stateSize
        let chained = optimizer.init(n)
        expect(chained).toEqual(golden.states.subarray(0, stateLength))
        for (let t = 0; t < golden.steps; t++) {
          const grads = golden.grads.subarray(t * n, (t + 1) * n)
          const stateIn = golden.states.subarray(t * stateLength, (t + 1) * stateLength)
          const stateOut = golden.states.subarray((t + 1) * stateLength, (t + 2) * stateLength)
          const updates = golden.updates.subarray(t * n, (t + 1) * n)

          const fed = optimizer.update(grads, stateIn)
          const scales = stepScales(weights, grads, stateIn, stateOut)
          expectClose(fed.updates, updates, scales.updates, `${id} step ${t} updates`, id)
          expectClose(fed.state, stateOut, scales.state, `${id} step ${t} state`, id)
          const unseen = expectUnseenExactlyZero(spec, stateOut, fed.updates, updates, `${id} step ${t}`)
          if (spec.features.kind === 'moments') {
            // The last 6 coordinates only ever see ±0; the 6 before them, for the first two steps.
            const zeros = Array.from({ length: t < 2 ? 12 : 6 }, (_, j) => n - (t < 2 ? 12 : 6) + j)
            expect(unseen, `${id} step ${t}`).toEqual(expect.arrayContaining(zeros))
            if (t >= 2) expect(unseen, `${id} step ${t}: late starters`).not.toContain(n - 7)
          }

          // Chained on its own states, the trajectory must stay as close (errors must not compound).
          const own = optimizer.update(grads, chained)
          const ownScales = stepScales(weights, grads, chained, own.state)
          expectClose(own.updates, updates, ownScales.updates, `${id} chained step ${t} updates`, id)
          expectClose(
            own.state,
            stateOut,
            slotsOnly(ownScales.state, spec),
            `${id} chained step ${t} slots`,
            id,
          )
          expectUnseenExactlyZero(spec, own.state, own.updates, updates, `${id} chained step ${t}`)
          chained = own.state
        }
      })
    }
  }
})
