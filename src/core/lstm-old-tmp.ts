import * as tf from '@tensorflow/tfjs-core'
import type { LstmWeights } from '../weights/types'
import { assertLstmWeights, featureCount, lstmStateSize } from './lstm-architecture'
import type { Optimizer } from './optimizer'
import { preprocessInto } from './preprocess'
import { defineOptimizer } from './validate'

/** One cell's weights as uploaded: one [in+H, H] matrix and [H] bias per gate, x rows then h rows. */
interface CellTensors {
  inGate: GateTensors
  forget: GateTensors
  outGate: GateTensors
  /** Weights and bias doubled: sigmoid(2z) = (1 + tanh z) / 2. */
  candidate: GateTensors
}

interface GateTensors {
  weight: tf.Tensor2D
  bias: tf.Tensor1D
}

interface ModelTensors {
  cells: CellTensors[]
  /** outputScale folded in: [H, 1] and [1]. */
  headWeight: tf.Tensor2D
  headBias: tf.Tensor1D
  one: tf.Scalar
  two: tf.Scalar
}

/** PyTorch's gate order in weight_ih / weight_hh / biases. */
const GATE_ROW = { inGate: 0, forget: 1, candidate: 2, outGate: 3 } as const

/**
 * The coordinatewise LSTM optimizer of DESIGN §2 computed with tfjs ops on the current tfjs backend
 * (the core never picks one). `update` is synchronous: use a synchronous backend (wasm, cpu).
 * Weight tensors are uploaded on first use per backend and kept until `dispose()`.
 *
 * @example
 * const opt = lstmOptimizer(weights)
 * let state = opt.init(grads.length)
 * const { updates, state: next } = opt.update(grads, state)
 */
export function lstmOptimizer(weights: LstmWeights): Optimizer {
  assertLstmWeights(weights)
  const a = weights.architecture
  const hidden = a.hidden
  const layers = a.layers
  const stateSize = lstmStateSize(a)
  const inputs0 = featureCount(a)
  const uploaded = new Map<tf.KernelBackend, ModelTensors>()

  const tensorsFor = (): ModelTensors => {
    const backend = tf.backend()
    let model = uploaded.get(backend)
    if (model === undefined) {
      model = uploadWeights(weights)
      // keep: survive a tidy() the caller may have wrapped around update().
      for (const t of allTensors(model)) tf.keep(t)
      uploaded.set(backend, model)
    }
    return model
  }

  const step = (grads: Float32Array, state: Float32Array) => {
    const n = grads.length
    if (n === 0) return { updates: new Float32Array(0), state: new Float32Array(0) }
    const model = tensorsFor()

    // Gather on the JS side what tfjs would otherwise slice out of strided rows (slow on wasm):
    // [x, h_1] for the first matmul, and h_k, c_k per layer, each [N, H] and contiguous.
    const first = new Float32Array(n * (inputs0 + hidden))
    preprocessInto(a, grads, first, inputs0 + hidden)
    const hOld: Float32Array[] = []
    const cOld: Float32Array[] = []
    for (let k = 0; k < layers; k++) {
      hOld.push(k === 0 ? first : new Float32Array(n * hidden))
      cOld.push(new Float32Array(n * hidden))
    }
    for (let i = 0; i < n; i++) {
      const row = i * stateSize
      for (let k = 0; k < layers; k++) {
        const hSrc = row + 2 * k * hidden
        const cSrc = hSrc + hidden
        const hDst = k === 0 ? i * (inputs0 + hidden) + inputs0 : i * hidden
        const h = hOld[k]
        const c = cOld[k]
        const cDst = i * hidden
        for (let u = 0; u < hidden; u++) {
          h[hDst + u] = state[hSrc + u]
          c[cDst + u] = state[cSrc + u]
        }
      }
    }

    const outputs = tf.tidy(() => {
      const { one, two } = model
      let input: tf.Tensor2D = tf.tensor2d(first, [n, inputs0 + hidden])
      const results: tf.Tensor[] = []
      for (let k = 0; k < layers; k++) {
        if (k > 0) input = tf.concat2d([input, tf.tensor2d(hOld[k], [n, hidden])], 1)
        const cell = model.cells[k]
        const gate = (g: GateTensors) =>
          tf.fused.matMul({ a: input, b: g.weight, bias: g.bias, activation: 'sigmoid' })
        const inGate = gate(cell.inGate)
        const forget = gate(cell.forget)
        const outGate = gate(cell.outGate)
        // tanh z = 2·sigmoid(2z) − 1: tfjs-wasm's sigmoid is vectorised, its tanh is ~15× slower.
        const candidate = tf.sub(tf.mul(gate(cell.candidate), two), one)
        const c = tf.add(tf.mul(forget, tf.tensor2d(cOld[k], [n, hidden])), tf.mul(inGate, candidate))
        const tanhC = tf.sub(tf.mul(tf.sigmoid(tf.mul(c, two)), two), one)
        const h = tf.mul(outGate, tanhC) as tf.Tensor2D
        results.push(h, c)
        input = h
      }
      results.push(tf.fused.matMul({ a: input, b: model.headWeight, bias: model.headBias }))
      return results
    })

    try {
      const updates = outputs[2 * layers].dataSync() as Float32Array
      const next = new Float32Array(n * stateSize)
      for (let k = 0; k < layers; k++) {
        const h = outputs[2 * k].dataSync() as Float32Array
        const c = outputs[2 * k + 1].dataSync() as Float32Array
        for (let i = 0; i < n; i++) {
          const hDst = i * stateSize + 2 * k * hidden
          const cDst = hDst + hidden
          const src = i * hidden
          for (let u = 0; u < hidden; u++) {
            next[hDst + u] = h[src + u]
            next[cDst + u] = c[src + u]
          }
        }
      }
      // dataSync may return the backend's own buffer on some backends: copy what we hand out.
      return { updates: Float32Array.from(updates), state: next }
    } finally {
      tf.dispose(outputs)
    }
  }

  return defineOptimizer(stateSize, step, {
    dispose: () => {
      for (const model of uploaded.values()) tf.dispose(allTensors(model))
      uploaded.clear()
    },
  })
}

function uploadWeights(weights: LstmWeights): ModelTensors {
  const a = weights.architecture
  const hidden = a.hidden
  const cells = weights.cells.map((cell, k): CellTensors => {
    const inputSize = k === 0 ? featureCount(a) : hidden
    const gate = (row: number, factor: number): GateTensors => {
      // Transpose PyTorch's [4H, in] / [4H, H] rows of this gate into one [in+H, H] matrix.
      const rows = inputSize + hidden
      const weight = new Float32Array(rows * hidden)
      const bias = new Float32Array(hidden)
      for (let u = 0; u < hidden; u++) {
        const r = row * hidden + u
        for (let j = 0; j < inputSize; j++) weight[j * hidden + u] = factor * cell.weightIh[r * inputSize + j]
        for (let j = 0; j < hidden; j++)
          weight[(inputSize + j) * hidden + u] = factor * cell.weightHh[r * hidden + j]
        bias[u] = factor * (cell.biasIh[r] + cell.biasHh[r])
      }
      return { weight: tf.tensor2d(weight, [rows, hidden]), bias: tf.tensor1d(bias) }
    }
    return {
      inGate: gate(GATE_ROW.inGate, 1),
      forget: gate(GATE_ROW.forget, 1),
      outGate: gate(GATE_ROW.outGate, 1),
      candidate: gate(GATE_ROW.candidate, 2),
    }
  })
  const scale = a.outputScale
  return {
    cells,
    headWeight: tf.tensor2d(
      weights.head.weight.map((w) => scale * w),
      [hidden, 1],
    ),
    headBias: tf.tensor1d([scale * weights.head.bias[0]]),
    one: tf.scalar(1),
    two: tf.scalar(2),
  }
}

function allTensors(model: ModelTensors): tf.Tensor[] {
  const gates = model.cells.flatMap((c) => [c.inGate, c.forget, c.outGate, c.candidate])
  return [...gates.flatMap((g) => [g.weight, g.bias]), model.headWeight, model.headBias, model.one, model.two]
}
