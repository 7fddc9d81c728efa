import { lstmSpec } from '../contract'
import { cellInputsInto, gainPass, maskUnseen, outputReader } from './kinds'
import { assertLstmWeights, type LstmWeights } from './lstm-weights'
import type { CallPool, Optimizer } from './optimizer'
import { defineOptimizer } from './validate'

/** One step of the float64 reference: updates [N] and state [N, S], both float64. */
export interface LstmReferenceResult {
  updates: Float64Array
  state: Float64Array
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z))

/**
 * The coordinatewise LSTM step of docs/optimizer-math.md in plain float64 TypeScript, written for
 * clarity, not speed: the oracle the tfjs implementation is tested against. Inputs are not checked
 * here beyond the weights; `state` is [N, S] as [h_1, c_1, …, h_L, c_L, feature slots] per
 * coordinate. The feature kinds are the shared ones of kinds.ts (`moments` defines its own float32
 * roundings, so its slots and features are the same bits on every path); the input layer, the
 * cells and the output are float64 throughout. A `gain` pools over these n coordinates, or uses
 * `pool` when given (the whole call's, when these are a part of it: Optimizer.pool).
 */
export function lstmReferenceStep(
  weights: LstmWeights,
  grads: ArrayLike<number>,
  state: ArrayLike<number>,
  pool?: CallPool,
): LstmReferenceResult {
  assertLstmWeights(weights)
  const a = weights.architecture
  const spec = lstmSpec(a)
  const { hidden, layers, stateSize, inputSize: inputs0 } = spec
  const outputAt = outputReader(spec)
  const gain = gainPass(spec)
  const pooled = gain === undefined ? undefined : (pool ?? gain.pool(grads, state))
  const n = grads.length
  const updates = new Float64Array(n)
  const next = new Float64Array(n * stateSize)
  const features = new Float64Array(n * inputs0)
  const seen = cellInputsInto(weights, spec, grads, state, next, features, inputs0)

  const gates = new Float64Array(4 * hidden)
  for (let i = 0; i < n; i++) {
    let x: ArrayLike<number> = features.subarray(i * inputs0, (i + 1) * inputs0)
    const row = i * stateSize
    for (let k = 0; k < layers; k++) {
      const cell = weights.cells[k]
      const inputSize = x.length
      const hOff = row + 2 * k * hidden
      const cOff = hOff + hidden
      // gates = W_ih·x + b_ih + W_hh·h + b_hh, rows in the order (i, f, g, o).
      for (let r = 0; r < 4 * hidden; r++) {
        let z = cell.biasIh[r] + cell.biasHh[r]
        for (let j = 0; j < inputSize; j++) z += cell.weightIh[r * inputSize + j] * x[j]
        for (let j = 0; j < hidden; j++) z += cell.weightHh[r * hidden + j] * state[hOff + j]
        gates[r] = z
      }
      for (let u = 0; u < hidden; u++) {
        const inGate = sigmoid(gates[u])
        const forget = sigmoid(gates[hidden + u])
        const candidate = Math.tanh(gates[2 * hidden + u])
        const outGate = sigmoid(gates[3 * hidden + u])
        const c = forget * state[cOff + u] + inGate * candidate
        next[cOff + u] = c
        next[hOff + u] = outGate * Math.tanh(c)
      }
      x = next.subarray(hOff, hOff + hidden)
    }
    let out = weights.head.bias[0]
    for (let j = 0; j < hidden; j++) out += weights.head.weight[j] * x[j]
    updates[i] = outputAt(out, next, row)
  }
  if (gain !== undefined && pooled !== undefined) gain.apply(pooled, grads, state, next, updates)
  maskUnseen(updates, seen)
  return { updates, state: next }
}

/**
 * The float64 reference behind the Optimizer interface (results rounded to float32 once): slow but
 * exact; used as an oracle in tests and as the plain-TypeScript row of the kernel benchmark.
 */
export function lstmReferenceOptimizer(weights: LstmWeights): Optimizer {
  assertLstmWeights(weights)
  const spec = lstmSpec(weights.architecture)
  const gain = gainPass(spec)
  return defineOptimizer(
    spec.stateSize,
    (grads, state, pool) => {
      const r = lstmReferenceStep(weights, grads, state, pool)
      return { updates: Float32Array.from(r.updates), state: Float32Array.from(r.state) }
    },
    { pool: gain?.pool },
  )
}
