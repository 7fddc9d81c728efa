import { lstmSpec } from '../contract'
import { cellInputsInto, gainPass, maskUnseen, outputReader } from './kinds'
import { assertLstmWeights, type LstmWeights } from './lstm-weights'
import type { CallPool, Optimizer } from './optimizer'
import { defineOptimizer } from './validate'

/**
 * The coordinatewise LSTM of DESIGN §2 as a plain TypeScript loop, no tfjs: weights stored
 * float32 with W_ih and W_hh joined per gate row, four rows per pass; sums in float64.
 * About 2× the float64 oracle's speed and 2–3× tfjs-cpu's, far below tfjs-wasm's (bench/kernel.ts): a
 * dependency-free fallback and the plain-TypeScript row of the kernel benchmark.
 */
export function lstmPlainOptimizer(weights: LstmWeights): Optimizer {
  assertLstmWeights(weights)
  const spec = lstmSpec(weights.architecture)
  const { hidden, layers, stateSize, inputSize: inputs0 } = spec
  const outputAt = outputReader(spec)
  const gain = gainPass(spec)
  const gates4 = 4 * hidden
  // Per layer: [4H, in+H], row r = gate r's weights on [x, h] (PyTorch rows, W_ih and W_hh side by side).
  const joined = weights.cells.map((cell, k) => {
    const inputSize = k === 0 ? inputs0 : hidden
    const width = inputSize + hidden
    const w = new Float32Array(gates4 * width)
    for (let r = 0; r < gates4; r++) {
      for (let j = 0; j < inputSize; j++) w[r * width + j] = cell.weightIh[r * inputSize + j]
      for (let j = 0; j < hidden; j++) w[r * width + inputSize + j] = cell.weightHh[r * hidden + j]
    }
    return w
  })
  const biases = weights.cells.map((cell) => Float64Array.from(cell.biasIh, (b, r) => b + cell.biasHh[r]))
  const headWeight = weights.head.weight
  const headBias = weights.head.bias[0]

  const step = (grads: Float32Array, state: Float32Array, pool?: CallPool) => {
    const n = grads.length
    // The gain's pool (docs/optimizer-math.md §6) reads the old state: before anything is written.
    const pooled = gain === undefined ? undefined : (pool ?? gain.pool(grads, state))
    const updates = new Float32Array(n)
    const next = new Float32Array(n * stateSize)
    const features = new Float64Array(n * inputs0)
    const seen = cellInputsInto(weights, spec, grads, state, next, features, inputs0)
    const v = new Float64Array(Math.max(inputs0, hidden) + hidden)
    const z = new Float64Array(gates4)
    for (let i = 0; i < n; i++) {
      const row = i * stateSize
      for (let j = 0; j < inputs0; j++) v[j] = features[i * inputs0 + j]
      let inputSize = inputs0
      for (let k = 0; k < layers; k++) {
        const hOff = row + 2 * k * hidden
        for (let j = 0; j < hidden; j++) v[inputSize + j] = state[hOff + j]
        const w = joined[k]
        const bias = biases[k]
        const width = inputSize + hidden
        // Four gate rows per pass: each v[j] load feeds four multiply-adds held in locals.
        let r = 0
        for (; r + 4 <= gates4; r += 4) {
          let z0 = bias[r]
          let z1 = bias[r + 1]
          let z2 = bias[r + 2]
          let z3 = bias[r + 3]
          const o0 = r * width
          for (let j = 0; j < width; j++) {
            const vj = v[j]
            z0 += w[o0 + j] * vj
            z1 += w[o0 + width + j] * vj
            z2 += w[o0 + 2 * width + j] * vj
            z3 += w[o0 + 3 * width + j] * vj
          }
          z[r] = z0
          z[r + 1] = z1
          z[r + 2] = z2
          z[r + 3] = z3
        }
        for (; r < gates4; r++) {
          let zr = bias[r]
          for (let j = 0; j < width; j++) zr += w[r * width + j] * v[j]
          z[r] = zr
        }
        for (let u = 0; u < hidden; u++) {
          const inGate = 1 / (1 + Math.exp(-z[u]))
          const forget = 1 / (1 + Math.exp(-z[hidden + u]))
          const candidate = Math.tanh(z[2 * hidden + u])
          const outGate = 1 / (1 + Math.exp(-z[3 * hidden + u]))
          const c = forget * state[hOff + hidden + u] + inGate * candidate
          const h = outGate * Math.tanh(c)
          next[hOff + hidden + u] = c
          next[hOff + u] = h
          // This layer's new h is the next layer's x.
          v[u] = h
        }
        inputSize = hidden
      }
      let out = headBias
      for (let j = 0; j < hidden; j++) out += headWeight[j] * v[j]
      updates[i] = outputAt(out, next, row)
    }
    if (gain !== undefined && pooled !== undefined) gain.apply(pooled, grads, state, next, updates)
    maskUnseen(updates, seen)
    return { updates, state: next }
  }
  return defineOptimizer(stateSize, step, { pool: gain?.pool })
}
