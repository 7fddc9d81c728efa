import * as tf from '@tensorflow/tfjs-core'
import { lstmSpec } from '../contract'
import { cellInputsInto, gainPass, maskUnseen, outputReader } from './kinds'
import { assertLstmWeights, type LstmWeights } from './lstm-weights'
import type { CallPool, Optimizer, StepResult } from './optimizer'
import { defineOptimizer } from './validate'

/** One cell's weights as uploaded: one [in+H, H] matrix and [H] bias per gate, x rows then h rows. */
interface CellTensors {
  inGate: GateTensors
  forget: GateTensors
  outGate: GateTensors
  candidate: GateTensors
}

interface GateTensors {
  weight: tf.Tensor2D
  bias: tf.Tensor1D
}

interface ModelTensors {
  cells: CellTensors[]
  /** [H, 1] and [1]; a `linear` output's scale folded in. */
  headWeight: tf.Tensor2D
  headBias: tf.Tensor1D
}

/** Largest call (coordinates) whose scratch rows are kept for the next: ~0.4 KB each at L=2, H=20. */
const maxScratchCoordinates = 8192

/** PyTorch's gate order in weight_ih / weight_hh / biases. */
const GATE_ROW = { inGate: 0, forget: 1, candidate: 2, outGate: 3 } as const

/**
 * The coordinatewise LSTM optimizer of DESIGN §2 computed with tfjs ops on the current tfjs backend
 * (the core never picks one). `update` is synchronous: use a synchronous backend (wasm, cpu).
 * Weight tensors are uploaded on first use per backend and kept until `dispose()`. The per-kind
 * math around the cells (features, input layer, output transform, zero-gradient rule;
 * docs/optimizer-math.md) runs in plain loops from kinds.ts.
 *
 * @example
 * const opt = lstmOptimizer(weights)
 * let state = opt.init(grads.length)
 * const { updates, state: next } = opt.update(grads, state)
 */
export function lstmOptimizer(weights: LstmWeights): Optimizer {
  assertLstmWeights(weights)
  const spec = lstmSpec(weights.architecture)
  const { hidden, layers, stateSize, inputSize: inputs0, output } = spec
  const outputAt = outputReader(spec)
  const gain = gainPass(spec)
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

  // Matmul input width per layer: [x_k, h_k] with x_0 the features and x_k = h'_{k-1} above.
  const widths = weights.cells.map((_, k) => (k === 0 ? inputs0 : hidden) + hidden)

  // Scratch rows reused from one call to the next while calls are small (a server steps in chunks
  // of a few thousand coordinates): each call would otherwise make ~0.5 KB of garbage per coordinate.
  // Their contents never outlive a call; tfjs copies them into its own memory when making tensors.
  // `features` holds the features before the input layer and `seen` the zero-gradient mask, for
  // the architectures that have them.
  const featureWidth = spec.inputLayer === null ? 0 : spec.featureSize
  const hasMask = spec.features.kind === 'moments'
  let scratch:
    | { n: number; inputs: Float32Array[]; cOld: Float32Array[]; features: Float64Array; seen: Uint8Array }
    | undefined
  const scratchFor = (n: number) => {
    if (scratch !== undefined && scratch.n >= n) {
      return {
        inputs: scratch.inputs.map((a, k) => a.subarray(0, n * widths[k])),
        cOld: scratch.cOld.map((a) => a.subarray(0, n * hidden)),
        features: scratch.features,
        seen: scratch.seen,
      }
    }
    const made = {
      n,
      inputs: widths.map((width) => new Float32Array(n * width)),
      cOld: widths.map(() => new Float32Array(n * hidden)),
      features: new Float64Array(n * featureWidth),
      seen: new Uint8Array(hasMask ? n : 0),
    }
    if (n <= maxScratchCoordinates) scratch = made
    return made
  }

  // Writes updates [N] and the new state [N, S] into `out`; `out.state` may be `state`: the feature
  // kind reads and writes only its own slots of each row, and the LSTM's part is read whole before
  // any of it is written; the gain's pool reads the old state before anything is written, and its
  // pass reads each coordinate's old slot a before writing it.
  const stepInto = (grads: Float32Array, state: Float32Array, out: StepResult, pool?: CallPool) => {
    const n = grads.length
    if (n === 0) return
    const model = tensorsFor()
    const pooled = gain === undefined ? undefined : (pool ?? gain.pool(grads, state))

    // Each layer's [x_k, h_k] rows and its c_k are assembled here on the JS side: tfjs-wasm slices
    // and concatenates along axis 1 with a JS loop per row, after copying the whole source tensor.
    // Every element of these rows is written below (features, h, c), so reused scratch is safe.
    const { inputs, cOld, features, seen: seenScratch } = scratchFor(n)
    const seen = cellInputsInto(weights, spec, grads, state, out.state, inputs[0], widths[0], {
      features,
      seen: seenScratch,
    })
    // One pass over the state, row by row: it is the biggest array here, read once in order. Each
    // row starts with the LSTM's [h_1, c_1, …, h_L, c_L].
    for (let i = 0; i < n; i++) {
      for (let k = 0, src = i * stateSize; k < layers; k++, src += 2 * hidden) {
        const input = inputs[k]
        const c = cOld[k]
        const hDst = (i + 1) * widths[k] - hidden
        const cDst = i * hidden
        for (let u = 0; u < hidden; u++) {
          input[hDst + u] = state[src + u]
          c[cDst + u] = state[src + hidden + u]
        }
      }
    }

    // Each layer's new h and c stay tensors until every op has run: on tfjs-wasm they are then read
    // straight from the backend's heap (views an op could invalidate by growing it), with no copies.
    const outputs: tf.Tensor[] = []
    try {
      for (let k = 0; k < layers; k++) {
        const [h, c] = tf.tidy(() => cellStep(model, k, inputs[k], cOld[k], n))
        outputs.push(h, c)
        if (k + 1 < layers) {
          // The next layer's x is this layer's new h: columns [0, H) of its [h'_k, h_{k+1}] rows.
          const above = inputs[k + 1]
          const hValues = valuesOf(h)
          for (let i = 0, src = 0, dst = 0; i < n; i++, src += hidden, dst += 2 * hidden) {
            for (let u = 0; u < hidden; u++) above[dst + u] = hValues[src + u]
          }
        } else {
          outputs.push(tf.fused.matMul({ a: h, b: model.headWeight, bias: model.headBias }))
        }
      }
      // No tfjs op from here on: the views below stay valid.
      const values = outputs.map(valuesOf)
      const head = values[2 * layers]
      if (output.kind === 'linear') out.updates.set(head)
      else {
        for (let i = 0; i < n; i++) {
          out.updates[i] = outputAt(head[i], out.state, i * stateSize)
        }
      }
      if (gain !== undefined && pooled !== undefined) gain.apply(pooled, grads, state, out.state, out.updates)
      maskUnseen(out.updates, seen)
      const next = out.state
      for (let i = 0; i < n; i++) {
        const src = i * hidden
        for (let k = 0, dst = i * stateSize; k < layers; k++, dst += 2 * hidden) {
          const h = values[2 * k]
          const c = values[2 * k + 1]
          for (let u = 0; u < hidden; u++) {
            next[dst + u] = h[src + u]
            next[dst + hidden + u] = c[src + u]
          }
        }
      }
    } finally {
      tf.dispose(outputs)
    }
  }

  const step = (grads: Float32Array, state: Float32Array, pool?: CallPool): StepResult => {
    const out = { updates: new Float32Array(grads.length), state: new Float32Array(grads.length * stateSize) }
    stepInto(grads, state, out, pool)
    return out
  }

  return defineOptimizer(stateSize, step, {
    // tfjs does not check its outputs: the caller scans them.
    stepInto: (grads, state, out, pool) => {
      stepInto(grads, state, out, pool)
      return undefined
    },
    pool: gain?.pool,
    dispose: () => {
      for (const model of uploaded.values()) tf.dispose(allTensors(model))
      uploaded.clear()
    },
  })
}

/** A tfjs backend that can show a tensor's values in its own memory (tfjs-wasm: its heap). */
interface HeapBackend {
  typedArrayFromHeap(tensor: tf.TensorInfo): Float32Array
}

/**
 * A float32 tensor's values without a copy where the backend allows (tfjs-wasm's
 * typedArrayFromHeap, which its own kernels use): a view valid only until the next tfjs op, which
 * may grow the heap. Elsewhere dataSync (the cpu backend hands out its own array, also no copy).
 */
function valuesOf(tensor: tf.Tensor): Float32Array {
  const backend = tf.backend() as Partial<HeapBackend>
  if (typeof backend.typedArrayFromHeap === 'function') return backend.typedArrayFromHeap(tensor)
  return tensor.dataSync() as Float32Array
}

/**
 * One LSTM cell on tfjs: [x, h] [N, in+H] and c [N, H] in, new [h, c] out (tensors the caller owns).
 *
 * One matmul per gate, bias and sigmoid fused in, rather than one [in+H, 4H] matmul split in four:
 * on tfjs-wasm the split costs far more than the extra matmul calls (its Slice copies the whole
 * source tensor, then copies row by row in JS; measured ~30 ms at N = 65,536 against ~2 ms).
 */
function cellStep(
  model: ModelTensors,
  k: number,
  input: Float32Array,
  c: Float32Array,
  n: number,
): tf.Tensor2D[] {
  const cell = model.cells[k]
  const xh = tf.tensor2d(input, [n, input.length / n])
  const gate = (g: GateTensors) =>
    tf.fused.matMul({ a: xh, b: g.weight, bias: g.bias, activation: 'sigmoid' })
  const preactivation = (g: GateTensors) => tf.fused.matMul({ a: xh, b: g.weight, bias: g.bias })
  const inGate = gate(cell.inGate)
  const forget = gate(cell.forget)
  const outGate = gate(cell.outGate)
  // A real tanh, not 2·sigmoid(2z) − 1: that identity is ~1.35× faster on tfjs-wasm but loses
  // absolute precision near 0 and broke parity with PyTorch on the shipped goldens (1.12× the
  // tolerance on l2o-mnist's cell state, against 0.63× with tanh; test/parity/golden.test.ts).
  const candidate = tf.tanh(preactivation(cell.candidate))
  const cNew = tf.add(tf.mul(forget, tf.tensor2d(c, [n, c.length / n])), tf.mul(inGate, candidate))
  const tanhC = tf.tanh(cNew)
  return [tf.mul(outGate, tanhC) as tf.Tensor2D, cNew as tf.Tensor2D]
}

function uploadWeights(weights: LstmWeights): ModelTensors {
  const spec = lstmSpec(weights.architecture)
  const hidden = spec.hidden
  const cells = weights.cells.map((cell, k): CellTensors => {
    const inputSize = k === 0 ? spec.inputSize : hidden
    const gate = (row: number): GateTensors => {
      // Transpose PyTorch's [4H, in] / [4H, H] rows of this gate into one [in+H, H] matrix.
      const rows = inputSize + hidden
      const weight = new Float32Array(rows * hidden)
      const bias = new Float32Array(hidden)
      for (let u = 0; u < hidden; u++) {
        const r = row * hidden + u
        for (let j = 0; j < inputSize; j++) weight[j * hidden + u] = cell.weightIh[r * inputSize + j]
        for (let j = 0; j < hidden; j++) weight[(inputSize + j) * hidden + u] = cell.weightHh[r * hidden + j]
        bias[u] = cell.biasIh[r] + cell.biasHh[r]
      }
      return { weight: tf.tensor2d(weight, [rows, hidden]), bias: tf.tensor1d(bias) }
    }
    return {
      inGate: gate(GATE_ROW.inGate),
      forget: gate(GATE_ROW.forget),
      outGate: gate(GATE_ROW.outGate),
      candidate: gate(GATE_ROW.candidate),
    }
  })
  // update = scale·y for `linear`: folding the scale into the head saves a pass over the updates.
  const scale = spec.output.kind === 'linear' ? spec.output.scale : 1
  return {
    cells,
    headWeight: tf.tensor2d(
      weights.head.weight.map((w) => scale * w),
      [hidden, 1],
    ),
    headBias: tf.tensor1d([scale * weights.head.bias[0]]),
  }
}

function allTensors(model: ModelTensors): tf.Tensor[] {
  const gates = model.cells.flatMap((c) => [c.inGate, c.forget, c.outGate, c.candidate])
  return [...gates.flatMap((g) => [g.weight, g.bias]), model.headWeight, model.headBias]
}
