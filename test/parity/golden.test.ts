import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { lstmSpec } from '../../src/contract'
import { type LstmWeights, lstmOptimizer } from '../../src/core'
import { fusedLstmOptimizer } from '../../src/core/fused/lstm-fused'
import { preprocessInto } from '../../src/core/preprocess'
import { fusedKernel } from '../../src/runtime/kernel-node'
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
const weightsRoot = path.join(import.meta.dirname, '../../weights')
const relativeTolerance = 1e-5
const absoluteTolerance = 1e-7

/** Every shipped version that has golden vectors, as `name@version` → folder. */
function shippedGoldens(): Map<string, string> {
  const found = new Map<string, string>()
  const folders = (dir: string) =>
    readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
  for (const name of folders(weightsRoot)) {
    for (const version of folders(path.join(weightsRoot, name))) {
      const dir = path.join(weightsRoot, name, version)
      if (readdirSync(dir).includes('golden.safetensors')) found.set(`${name}@${version}`, dir)
    }
  }
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
 * Σ|terms| of the largest gate pre-activation of every unit, [N, L·H]: W_ih·x + b_ih + W_hh·h + b_hh
 * summed in absolute value (float64). A float32 sum's rounding error grows with this, not with the
 * sum itself: a unit whose weights are ~10 (a clone of momentum SGD learns input-gate weights
 * of about p on log|g|/p) has gates ten times less exact in absolute terms than one whose are ~1.
 */
function gateOperandSums(
  weights: LstmWeights,
  grads: Float32Array,
  stateIn: Float32Array,
  stateOut: Float32Array,
) {
  const a = weights.architecture
  const { hidden, layers } = a
  const { stateSize, inputSize: inputs0 } = lstmSpec(a)
  const n = grads.length
  const features = new Float64Array(n * inputs0)
  preprocessInto(a, grads, features, inputs0)
  const sums = new Float64Array(n * layers * hidden)
  for (let i = 0; i < n; i++) {
    let x: ArrayLike<number> = features.subarray(i * inputs0, (i + 1) * inputs0)
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

/** Scale of the operands behind each state element: 1 + |c| before the step + the gate sums. */
function stateScales(
  stateIn: Float32Array,
  gates: Float64Array,
  hidden: number,
  stateSize: number,
): Float32Array {
  const scales = new Float32Array(stateIn.length)
  for (let i = 0; i < stateIn.length; i++) {
    const offset = i % stateSize
    const layerStart = i - offset + Math.floor(offset / (2 * hidden)) * 2 * hidden
    const unit =
      Math.floor(i / stateSize) * (stateSize / 2) +
      Math.floor(offset / (2 * hidden)) * hidden +
      (offset % hidden)
    scales[i] = 1 + Math.abs(stateIn[layerStart + hidden + (offset % hidden)]) + gates[unit]
  }
  return scales
}

/** Scale behind each update: 1 + Σ_j |outputScale·W_out,j|·(1 + |c_L,j| + gate sum of j). */
function updateScales(
  weights: LstmWeights,
  stateIn: Float32Array,
  gates: Float64Array,
  numParams: number,
): Float32Array {
  const { hidden, layers, outputScale } = weights.architecture
  const { stateSize } = lstmSpec(weights.architecture)
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
    scales[i] = scale
  }
  return scales
}

function expectClose(actual: Float32Array, expected: Float32Array, scales: Float32Array, what: string): void {
  expect(actual.length, what).toBe(expected.length)
  let worst = 0
  for (let i = 0; i < expected.length; i++) {
    const tolerance = relativeTolerance * Math.abs(expected[i]) + absoluteTolerance * scales[i]
    const error = Math.abs(actual[i] - expected[i])
    if (!(error <= tolerance)) {
      throw new Error(
        `${what}: element ${i} is ${actual[i]}, PyTorch gave ${expected[i]} (tolerance ${tolerance})`,
      )
    }
    worst = Math.max(worst, error / tolerance)
  }
  worstRatio = Math.max(worstRatio, worst)
}

let worstRatio = 0

const goldens = shippedGoldens()
const backends: Array<NodeTfBackend | 'fused'> = ['wasm', 'cpu', 'fused']
const disposers: Array<() => void> = []
afterAll(() => {
  for (const dispose of disposers) dispose()
  console.info(`parity: worst error was ${worstRatio.toFixed(3)} of the tolerance`)
})

describe('the TypeScript core matches PyTorch on the shipped golden vectors', () => {
  it('ships goldens for the quadratic and the MNIST optimizers', () => {
    expect([...goldens.keys()].map((id) => id.split('@')[0]).sort()).toEqual(
      expect.arrayContaining(['l2o-mnist', 'l2o-quadratic']),
    )
  })

  for (const [id, dir] of goldens) {
    for (const backend of backends) {
      const name = backend === 'fused' ? 'the fused kernel' : `tfjs-${backend}`
      it(`${id} on ${name}: every step, fed PyTorch's state and chained on its own`, async () => {
        if (backend !== 'fused') await initTf(backend)
        const bytes = new Uint8Array(readFileSync(path.join(dir, 'model.safetensors')))
        const { weights, digest } = await readWeightFile(bytes)
        const golden = readGolden(dir)
        expect(digest).toBe(golden.digest)

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

          const gates = gateOperandSums(weights, grads, stateIn, stateOut)
          const fed = optimizer.update(grads, stateIn)
          expectClose(
            fed.updates,
            updates,
            updateScales(weights, stateIn, gates, n),
            `${id} step ${t} updates`,
          )
          expectClose(
            fed.state,
            stateOut,
            stateScales(stateIn, gates, weights.architecture.hidden, golden.stateSize),
            `${id} step ${t} state`,
          )

          // Chained on its own states, the trajectory must stay as close (errors must not compound).
          const own = optimizer.update(grads, chained)
          expectClose(
            own.updates,
            updates,
            updateScales(weights, chained, gateOperandSums(weights, grads, chained, own.state), n),
            `${id} chained step ${t} updates`,
          )
          chained = own.state
        }
      })
    }
  }
})
