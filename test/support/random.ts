import { seededRandom } from '../../examples/seeded-random'
import { type Architecture, type ExtendedArchitecture, lstmSpec, weightShapes } from '../../src/contract'
import { type LstmWeights, lstmWeightsFromTensors } from '../../src/core/lstm-weights'

// mulberry32, the examples' seeded PRNG (floats in [0, 1); same seed, same sequence): one copy.
export { seededRandom }

/** `length` floats uniform in [-scale, scale) from a seeded generator. */
export function randomUniform(length: number, seed: number, scale = 1): Float32Array {
  const next = seededRandom(seed)
  const out = new Float32Array(length)
  for (let i = 0; i < length; i++) out[i] = scale * (2 * next() - 1)
  return out
}

/** `length` gradients spanning many orders of magnitude (|g| from 1e-8 to 1e2, random signs). */
export function randomGradients(length: number, seed: number): Float32Array {
  const next = seededRandom(seed)
  const out = new Float32Array(length)
  for (let i = 0; i < length; i++) out[i] = (next() < 0.5 ? -1 : 1) * 10 ** (-8 + 10 * next())
  return out
}

/** The paper's architecture for MNIST: L = 2, H = 20, log-sign preprocessing with p = 10. */
export const paperArchitecture: Architecture = {
  kind: 'lstm-cw',
  layers: 2,
  hidden: 20,
  preprocessing: 'log-sign',
  p: 10,
  outputScale: 0.1,
}

/** An architecture with L layers of H units, `log-sign` (with p) or `none` features, outputScale 0.1. */
export function lstmArchitecture(
  layers: number,
  hidden: number,
  preprocessing: 'log-sign' | 'none',
  p = 10,
): Architecture {
  return {
    kind: 'lstm-cw',
    layers,
    hidden,
    preprocessing,
    ...(preprocessing === 'log-sign' ? { p } : {}),
    outputScale: 0.1,
  }
}

/** A small architecture without preprocessing (the paper's kind for quadratics): L = 1, H = 3. */
export const quadraticArchitecture: Architecture = {
  kind: 'lstm-cw',
  layers: 1,
  hidden: 3,
  preprocessing: 'none',
  outputScale: 1,
}

/** The extended architecture of l2o-mlp's shape (docs/optimizer-math.md §1): S = 2·2·8 + 5 = 37. */
export const extendedArchitecture: ExtendedArchitecture = {
  kind: 'lstm-cw',
  layers: 2,
  hidden: 8,
  features: { kind: 'moments', beta1: [0.5, 0.9, 0.99], beta2: 0.99, eps: 1e-8 },
  inputLayer: { size: 8, activation: 'elu' },
  output: { kind: 'tanh', scale: 0.1 },
}

/**
 * Valid LstmWeights for an architecture, every tensor uniform in [-scale, scale) like PyTorch's
 * LSTMCell init (default scale 1/√H); deterministic in `seed`.
 *
 * @example randomLstmWeights(paperArchitecture, 1)
 */
export function randomLstmWeights(architecture: Architecture, seed: number, scale?: number): LstmWeights {
  const h = architecture.hidden
  const s = scale ?? 1 / Math.sqrt(h)
  const next = seededRandom(seed)
  const uniform = (length: number) => {
    const out = new Float32Array(length)
    for (let i = 0; i < length; i++) out[i] = s * (2 * next() - 1)
    return out
  }
  // Drawn in state_dict order, tensor by tensor, so a seed keeps giving the same weights.
  const values = new Map<string, Float32Array>()
  for (const [name, shape] of weightShapes(architecture))
    values.set(name, uniform(shape.reduce((a, b) => a * b, 1)))
  return lstmWeightsFromTensors(architecture, (name) => values.get(name)!)
}

/**
 * A random state [n, S] for a `moments` + `tanh-rms` architecture with a step count (a decay or a
 * gain), as if mid-run: every coordinate has seen a gradient (z = 1, r > 0) and counts `count(i)`
 * steps; the coordinates in `unseen` are fresh from the features on (their moments, z and count 0).
 */
export function midRunState(
  a: ExtendedArchitecture,
  n: number,
  seed: number,
  count: (i: number) => number,
  unseen: ReadonlySet<number> = new Set(),
): Float32Array {
  const { stateSize: s, state: slots } = lstmSpec(a)
  const r = slots.features.offset + a.features.beta1.length
  const lo = slots.output.offset
  const state = randomUniform(n * s, seed, 0.5)
  for (let i = 0; i < n; i++) {
    state[i * s + r] = Math.abs(state[i * s + r])
    state[i * s + r + 1] = 1
    state[i * s + lo] = count(i) % 256
    state[i * s + lo + 1] = Math.floor(count(i) / 256)
    if (unseen.has(i)) for (let j = slots.features.offset; j < lo + 2; j++) state[i * s + j] = 0
  }
  return state
}
