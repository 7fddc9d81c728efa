/**
 * The binding to the fused kernel (lstm.c, compiled to lstm.wasm): one WebAssembly instance per
 * model, holding the packed weights and buffers for a chunk of coordinates. The runtime hands in
 * the compiled module (workerd only takes precompiled modules; Node compiles the file's bytes), so
 * this stays pure. The kernel is coordinatewise: a `tanh-rms` output's `gain` (docs/optimizer-math.md
 * §6) is the caller's to run over the whole call (lstm-fused.ts); the kernel keeps its step count and
 * leaves its slots [p, a] as they are.
 */
import {
  type Features,
  featureKinds as featureLayouts,
  type KindLayout,
  latchGainSchema,
  MAX_STEP_COUNT,
  type OutputTransform,
  outputKinds as outputLayouts,
} from '../../contract'

/** A model as the kernel takes it: docs/optimizer-math.md's kinds and the tensors in state_dict order. */
export interface KernelModel {
  layers: number
  hidden: number
  features: Features
  /** Features per coordinate (F). */
  featureSize: number
  /** Width of the ELU input layer (E), 0 for none. */
  inputLayer: number
  output: OutputTransform
  /**
   * Every tensor, flattened, in state_dict order: input.weight, input.bias (with an input layer);
   * per cell weight_ih, weight_hh, bias_ih, bias_hh; head.weight, head.bias.
   */
  tensors: Float32Array[]
}

/** The approximations lstm.c uses, by the index its l2o_math takes (for the tests). */
export const kernelMathFunctions = ['exp2', 'expm1', 'sigmoid', 'tanh', 'log', 'log64', 'pow0.3'] as const
export type KernelMathFunction = (typeof kernelMathFunctions)[number]

interface Exports {
  memory: WebAssembly.Memory
  __heap_base: WebAssembly.Global
  l2o_model_bytes(layers: number, hidden: number, features: number, input: number, moments: number): number
  l2o_model_pack(
    model: number,
    raw: number,
    layers: number,
    hidden: number,
    features: number,
    input: number,
    featureKind: number,
    p: number,
    expP: number,
    threshold: number,
    moments: number,
    beta1: number,
    beta2: number,
    eps: number,
    logRms: number,
    logFloor: number,
    outputKind: number,
    scale: number,
    power: number,
    decayAfter: number,
    decayPower: number,
    outputSlots: number,
  ): number
  l2o_step(model: number, grads: number, state: number, updates: number, n: number): number
  l2o_math(kind: number, input: number, output: number, n: number): void
}

const featureKinds = { 'log-sign': 0, none: 1, moments: 2 } as const
const outputKinds = { linear: 0, tanh: 1, 'tanh-rms': 2 } as const

/** Coordinates stepped per kernel call: the chunk's state (~0.3 MB at S = 80) stays in cache. */
const chunkCoordinates = 1024

/** A model loaded into its own kernel instance. */
export interface KernelInstance {
  /** Floats of state per coordinate (S). */
  stateSize: number
  /**
   * One step for grads.length coordinates: reads `state` [N, S], writes `updates` [N] and
   * `nextState` [N, S] (which may be `state`). Inputs are not checked here. Returns whether every
   * update and new state value is finite (the kernel tests them as it writes them). A `gain` is not
   * applied: its slots [p, a] are copied as they are, and its step count is kept.
   */
  step(grads: Float32Array, state: Float32Array, updates: Float32Array, nextState: Float32Array): boolean
}

/**
 * Instantiates the kernel for one model; throws RangeError when the sizes exceed its bounds, or when
 * the kinds break the contract's rules (`tanh-rms` without `moments`, a `decay` or `gain` out of its
 * range).
 */
export function kernelInstance(kernel: WebAssembly.Module, model: KernelModel): KernelInstance {
  const ex = instantiate(kernel)
  const moments = model.features.kind === 'moments' ? model.features.beta1.length : 0
  const modelBytes = ex.l2o_model_bytes(
    model.layers,
    model.hidden,
    model.featureSize,
    model.inputLayer,
    moments,
  )
  if (modelBytes === 0) {
    throw new RangeError(
      `the fused kernel takes at most 8 layers, 256 units, 10 features and a 256-wide input layer`,
    )
  }
  const decay = model.output.kind === 'tanh-rms' ? model.output.decay : undefined
  // T = 0 tells the kernel "no decay", and a fraction would be truncated on the way in: refuse both.
  if (
    decay !== undefined &&
    !(Number.isInteger(decay.after) && decay.after >= 1 && decay.after <= MAX_STEP_COUNT)
  ) {
    throw new RangeError(`decay.after must be an integer from 1 to ${MAX_STEP_COUNT}, not ${decay.after}`)
  }
  // The kernel never reads the gain's parameters (lstm-fused.ts runs it): refuse here what the
  // contract refuses.
  const gain = model.output.kind === 'tanh-rms' ? model.output.gain : undefined
  if (gain !== undefined && !latchGainSchema.safeParse(gain).success) {
    throw new RangeError(`gain ${JSON.stringify(gain)} is outside the contract (docs/optimizer-math.md §6)`)
  }
  // docs/optimizer-math.md §2: the LSTM's slots, the features' ([m_1…m_K, r, z]), then the output's
  // (`tanh-rms` with a `decay` or a `gain`: [c_lo, c_hi], then the gain's [p, a]), sized by the
  // contract's layout tables.
  const outputSlots = (outputLayouts[model.output.kind] as KindLayout<OutputTransform>).stateSlots(
    model.output,
  )
  const stateSize =
    2 * model.layers * model.hidden +
    (featureLayouts[model.features.kind] as KindLayout<Features>).stateSlots(model.features) +
    outputSlots
  const rawFloats = model.tensors.reduce((sum, t) => sum + t.length, 0)

  // Memory: [heap base | model | beta1 (float64) | raw tensors, then the chunk's grads, state, updates].
  const align = (n: number) => Math.ceil(n / 16) * 16
  const modelAt = align(ex.__heap_base.value as number)
  const beta1At = align(modelAt + modelBytes)
  const scratchAt = align(beta1At + 8 * Math.max(1, moments))
  const gradsAt = scratchAt
  const stateAt = align(gradsAt + 4 * chunkCoordinates)
  const updatesAt = align(stateAt + 4 * chunkCoordinates * stateSize)
  const end = Math.max(align(updatesAt + 4 * chunkCoordinates), align(scratchAt + 4 * rawFloats))
  const pages = Math.ceil(end / 65536) - ex.memory.buffer.byteLength / 65536
  if (pages > 0) ex.memory.grow(pages)
  const heap = new Float32Array(ex.memory.buffer)

  let at = scratchAt / 4
  for (const t of model.tensors) {
    heap.set(t, at)
    at += t.length
  }
  const f = model.features
  if (f.kind === 'moments') new Float64Array(ex.memory.buffer, beta1At, moments).set(f.beta1)
  const p = f.kind === 'log-sign' ? f.p : 1
  const logRms = f.kind === 'moments' ? (f.logRms ?? 0) : 0
  const packed = ex.l2o_model_pack(
    modelAt,
    scratchAt,
    model.layers,
    model.hidden,
    model.featureSize,
    model.inputLayer,
    featureKinds[f.kind],
    p,
    Math.exp(p),
    leastFloat32AtLeast(Math.exp(-p)),
    moments,
    beta1At,
    f.kind === 'moments' ? f.beta2 : 0,
    f.kind === 'moments' ? f.eps : 0,
    logRms,
    logRms > 0 ? Math.exp(-logRms) : 0,
    outputKinds[model.output.kind],
    model.output.scale,
    model.output.kind === 'tanh-rms' ? model.output.power : 0,
    decay?.after ?? 0,
    decay?.power ?? 0,
    outputSlots,
  )
  if (packed !== 0) {
    throw new RangeError(
      'the fused kernel refused the model (tanh-rms without moments, or a decay power beyond (0, 1])',
    )
  }

  const step = (grads: Float32Array, state: Float32Array, updates: Float32Array, next: Float32Array) => {
    const s = stateSize
    let finite = true
    for (let begin = 0; begin < grads.length; begin += chunkCoordinates) {
      const end = Math.min(grads.length, begin + chunkCoordinates)
      const n = end - begin
      heap.set(grads.subarray(begin, end), gradsAt / 4)
      heap.set(state.subarray(begin * s, end * s), stateAt / 4)
      if (ex.l2o_step(modelAt, gradsAt, stateAt, updatesAt, n) >= 0) finite = false
      updates.set(heap.subarray(updatesAt / 4, updatesAt / 4 + n), begin)
      next.set(heap.subarray(stateAt / 4, stateAt / 4 + n * s), begin * s)
    }
    return finite
  }
  return { stateSize, step }
}

/**
 * The kernel's approximation of `fn` at each of `inputs` (for the tests that check it over the
 * float32 range): 2^x, expm1 (of x ≤ 0), sigmoid, tanh, log (of x > 0), log64: the float32
 * rounding of the float64 log that `logRms` uses (of x > 0), and pow0.3: x^0.3 as the `tanh-rms`
 * output computes r'^power (of x ≥ 0).
 */
export function kernelMath(
  kernel: WebAssembly.Module,
  fn: KernelMathFunction,
  inputs: Float32Array,
): Float32Array {
  const ex = instantiate(kernel)
  const n = Math.ceil(inputs.length / 4) * 4
  const inAt = Math.ceil((ex.__heap_base.value as number) / 16) * 16
  const outAt = inAt + 4 * n
  const pages = Math.ceil((outAt + 4 * n) / 65536) - ex.memory.buffer.byteLength / 65536
  if (pages > 0) ex.memory.grow(pages)
  const heap = new Float32Array(ex.memory.buffer)
  heap.set(inputs, inAt / 4)
  ex.l2o_math(kernelMathFunctions.indexOf(fn), inAt, outAt, n)
  return heap.slice(outAt / 4, outAt / 4 + inputs.length)
}

function instantiate(kernel: WebAssembly.Module): Exports {
  return new WebAssembly.Instance(kernel, {}).exports as unknown as Exports
}

/** The least float32 ≥ x (x ≥ 0): a float32 |g| is ≥ it exactly when the float64 |g| is ≥ x. */
export function leastFloat32AtLeast(x: number): number {
  const f = new Float32Array([x])
  if (f[0] < x) new Uint32Array(f.buffer)[0] += 1
  return f[0]
}
