/**
 * The per-kind math of docs/optimizer-math.md that surrounds the LSTM cells, shared by every path
 * (tfjs, plain TypeScript, the float64 oracle): feature kinds (§3; the paper's `log-sign` and
 * `none` are in preprocess.ts, `moments` is here), the ELU input layer (§4), the output transforms
 * and the zero-gradient rule (§6). A fused kernel implements exactly these functions, except the
 * `gain`'s pass over a whole call (GainPass), which every path runs from here.
 */
import {
  type LatchGain,
  type LstmSpec,
  MAX_STEP_COUNT,
  type MomentsFeatures,
  type OutputTransform,
  type TanhRmsOutput,
} from '../contract'
import type { LstmWeights } from './lstm-weights'
import type { CallPool } from './optimizer'
import { preprocessInto } from './preprocess'

/** Somewhere to write numbers by index: a typed array or a plain array. */
type Writable = { [i: number]: number }

/**
 * Feature kind `moments` (docs/optimizer-math.md §3) for every coordinate: reads its slots
 * `[m_1, …, m_K, r, z]` at `slotOffset` of its state row, writes its K + 1 features (K + 2 with
 * `logRms`: log(max(r, e^−q))/q, the gradient's scale) to
 * `out[i·rowStride + j]`, its new slots to the same place of `nextState` (which may be `state`:
 * each coordinate's slots are read before they are written) and whether it has seen a nonzero
 * gradient to `seen[i]`. Float64 arithmetic on float32 operands (the slots and g, rounded to float32
 * on read, so a float64 state gives the same answer; the β's and ε as given), each stored or
 * emitted value rounded to float32 once: every implementation gets the same bits.
 */
export function momentsInto(
  f: MomentsFeatures,
  grads: ArrayLike<number>,
  state: ArrayLike<number>,
  stateSize: number,
  slotOffset: number,
  out: Writable,
  rowStride: number,
  nextState: Writable,
  seen: Uint8Array,
): void {
  const { beta1, beta2, eps, logRms } = f
  const k = beta1.length
  const fround = Math.fround
  const floor = logRms === undefined ? 0 : Math.exp(-logRms)
  for (let i = 0; i < grads.length; i++) {
    const g = fround(grads[i])
    const slots = i * stateSize + slotOffset
    const o = i * rowStride
    const before = fround(state[slots + k + 1]) > 0
    const isSeen = before || g !== 0
    const r = nextRms(beta2, before, state[slots + k], g)
    const denominator = r + eps
    for (let j = 0; j < k; j++) {
      const w = before ? beta1[j] : 0
      const m = fround(w * fround(state[slots + j]) + (1 - w) * g)
      nextState[slots + j] = m
      out[o + j] = fround(m / denominator)
    }
    out[o + k] = fround(g / denominator)
    if (logRms !== undefined) out[o + k + 1] = fround(Math.log(Math.max(r, floor)) / logRms)
    nextState[slots + k] = r
    nextState[slots + k + 1] = isSeen ? 1 : 0
    seen[i] = isSeen ? 1 : 0
  }
}

/**
 * `moments`' new RMS slot r' (docs/optimizer-math.md §3 step 4) of one coordinate, from its old r,
 * whether it had seen a nonzero gradient before (z > 0) and its float32 gradient g: float64 on the
 * float32 operands, rounded once. momentsInto writes it; the gain's pool reads it before the step.
 */
export function nextRms(beta2: number, before: boolean, rOld: number, g: number): number {
  const w2 = before ? beta2 : 0
  const r0 = Math.fround(rOld)
  return Math.fround(Math.sqrt(w2 * r0 * r0 + (1 - w2) * g * g))
}

/**
 * The step count of `tanh-rms` with a `decay` or a `gain` (docs/optimizer-math.md §6) for every
 * coordinate: reads its count t from the two base-256 digits `[c_lo, c_hi]` at `slotOffset` of its
 * state row (each clamped to an integer from 0 to 255, so any finite values read as a count), and
 * writes t' = min(t + 1, 65535) where `seen`, else 0, to the same place of `nextState` (which may
 * be `state`).
 */
export function stepCountInto(
  state: ArrayLike<number>,
  stateSize: number,
  slotOffset: number,
  nextState: Writable,
  seen: Uint8Array,
): void {
  const digit = (x: number) => Math.min(Math.max(Math.floor(Math.fround(x)), 0), 255)
  for (let i = 0; i < seen.length; i++) {
    const slots = i * stateSize + slotOffset
    const t =
      seen[i] === 1 ? Math.min(256 * digit(state[slots + 1]) + digit(state[slots]) + 1, MAX_STEP_COUNT) : 0
    nextState[slots] = t % 256
    nextState[slots + 1] = Math.floor(t / 256)
  }
}

/**
 * The ELU input layer (docs/optimizer-math.md §4) for n coordinates: `e = ELU(W_in·x + b_in)` with
 * ELU(a) = a for a > 0, else expm1(a). Reads x as [n, F] rows, writes e to `out[i·rowStride + j]`;
 * sums in float64 (rounded once where `out` is a Float32Array).
 */
export function inputLayerInto(
  layer: NonNullable<LstmWeights['input']>,
  features: ArrayLike<number>,
  featureSize: number,
  out: Writable,
  rowStride: number,
  n: number,
): void {
  const size = layer.bias.length
  for (let i = 0; i < n; i++) {
    const x = i * featureSize
    for (let e = 0; e < size; e++) {
      let a = layer.bias[e]
      for (let j = 0; j < featureSize; j++) a += layer.weight[e * featureSize + j] * features[x + j]
      out[i * rowStride + e] = a > 0 ? a : Math.expm1(a)
    }
  }
}

/** Buffers a caller may lend cellInputsInto instead of having it allocate: at least N·F and N long. */
export interface CellInputScratch {
  features?: Float64Array
  seen?: Uint8Array
}

/**
 * The first cell's inputs (X per coordinate) into `out[i·rowStride + j]`: the features of the
 * architecture's kind, through its input layer when it has one. A kind with state slots writes its
 * new slots into `nextState` (which may be `state`), and so does an output transform that keeps a
 * step count (`tanh-rms` with a `decay` or a `gain`: the count needs `seen`; the gain's own slots
 * are GainPass's). Returns, for kinds that define it
 * (`moments`), which coordinates have seen a nonzero gradient (1) or not (0), else undefined.
 */
export function cellInputsInto(
  weights: LstmWeights,
  spec: LstmSpec,
  grads: ArrayLike<number>,
  state: ArrayLike<number>,
  nextState: Writable,
  out: Writable,
  rowStride: number,
  scratch: CellInputScratch = {},
): Uint8Array | undefined {
  const n = grads.length
  let seen: Uint8Array | undefined
  const featuresInto = (target: Writable, stride: number) => {
    if (spec.features.kind === 'moments') {
      seen = scratch.seen?.subarray(0, n) ?? new Uint8Array(n)
      const slots = spec.state.features.offset
      momentsInto(spec.features, grads, state, spec.stateSize, slots, target, stride, nextState, seen)
    } else {
      preprocessInto(weights.architecture, grads, target, stride)
    }
  }
  if (spec.inputLayer === null || weights.input === undefined) {
    featuresInto(out, rowStride)
  } else {
    const f = spec.featureSize
    const features = scratch.features?.subarray(0, n * f) ?? new Float64Array(n * f)
    featuresInto(features, f)
    inputLayerInto(weights.input, features, f, out, rowStride, n)
  }
  const countAt = countSlotOf(spec)
  if (countAt >= 0 && seen !== undefined) stepCountInto(state, spec.stateSize, countAt, nextState, seen)
  return seen
}

/**
 * Where a state row keeps r', the RMS that the `tanh-rms` output reads (the `moments` slot r, after
 * this step's features are written), or -1 for a kind without it.
 */
export function rmsSlotOf(spec: LstmSpec): number {
  return spec.features.kind === 'moments' ? spec.state.features.offset + spec.features.beta1.length : -1
}

/**
 * Where a state row keeps the output's step count t' (`tanh-rms` with a `decay` or a `gain`:
 * [c_lo, c_hi], the first two output slots); −1: none.
 */
export function countSlotOf(spec: LstmSpec): number {
  return spec.state.output.size > 0 ? spec.state.output.offset : -1
}

/** Where a state row keeps the `gain`'s slots [p, a] (after the step count); −1: no gain. */
export function gainSlotOf(spec: LstmSpec): number {
  return spec.output.kind === 'tanh-rms' && spec.output.gain !== undefined ? spec.state.output.offset + 2 : -1
}

/**
 * The output transform (docs/optimizer-math.md §6) of a head value y; `rms` is the coordinate's r'
 * (its new state at rmsSlotOf), read only by `tanh-rms`, and `count` its new step count t', read
 * only by `tanh-rms`'s `decay`. Float64, rounded by the caller.
 */
export function outputOf(output: OutputTransform, y: number, rms: number, count = 0): number {
  switch (output.kind) {
    case 'linear':
      return output.scale * y
    case 'tanh':
      return output.scale * Math.tanh(y)
    case 'tanh-rms':
      return output.scale * Math.tanh(y) * tanhRmsFactor(output, rms, count)
  }
}

/** What `tanh-rms` multiplies scale·tanh(y) by: r'^power, times its `decay` factor for the count t'. */
function tanhRmsFactor(output: TanhRmsOutput, rms: number, count: number): number {
  return Math.fround(rms) ** output.power * decayOf(output, count)
}

/**
 * `tanh-rms`'s `decay` factor min(1, (T / t')^d) for a coordinate's new step count t' (1 without
 * `decay`, and for t' ≤ T: then the step is exactly the undecayed one).
 */
export function decayOf(output: OutputTransform, count: number): number {
  const decay = output.kind === 'tanh-rms' ? output.decay : undefined
  if (decay === undefined || count <= decay.after) return 1
  return (decay.after / count) ** decay.power
}

/**
 * The update of the coordinate whose new state row starts at `next[row]`, from its head value y:
 * outputOf with the r' and the step count that row holds.
 */
export function outputReader(spec: LstmSpec): (y: number, next: ArrayLike<number>, row: number) => number {
  const { output } = spec
  const rmsAt = rmsSlotOf(spec)
  const countAt = countSlotOf(spec)
  if (rmsAt < 0) return (y) => outputOf(output, y, 0)
  if (countAt < 0) return (y, next, row) => outputOf(output, y, next[row + rmsAt])
  return (y, next, row) => outputOf(output, y, next[row + rmsAt], stepCountAt(next, row + countAt))
}

/**
 * What the output multiplies scale·tanh(y) by for the coordinate whose new state row starts at
 * `next[row]`: for `tanh-rms`, r'^power times its `decay` factor and its `gain`'s multiplier, from
 * the r', the step count and the gain's a' that row holds; 1 for the other outputs. The natural
 * scale of an update, for tests of agreement.
 */
export function stepFactorReader(spec: LstmSpec): (next: ArrayLike<number>, row: number) => number {
  const { output } = spec
  const rmsAt = rmsSlotOf(spec)
  if (output.kind !== 'tanh-rms' || rmsAt < 0) return () => 1
  const countAt = countSlotOf(spec)
  const gainAt = gainSlotOf(spec)
  const { gain } = output
  return (next, row) => {
    const count = countAt < 0 ? 0 : stepCountAt(next, row + countAt)
    const factor = tanhRmsFactor(output, next[row + rmsAt], count)
    return gain === undefined ? factor : factor * gainOf(gain, count, next[row + gainAt + 1])
  }
}

/** The step count t' that the two digits at `next[at]`, `next[at + 1]` hold (as written by stepCountInto). */
export const stepCountAt = (next: ArrayLike<number>, at: number): number => 256 * next[at + 1] + next[at]

/**
 * The `gain`'s term of one coordinate (§6 step 1): clamp(g·p / (r'·r'), −1, 1) where r' > 0, else 0,
 * in float64 on the float32 g, p (its previous gradient) and r' (its new RMS slot). g·p and r'·r'
 * are exact in float64, so the term is one correctly rounded division: the same bits everywhere.
 */
export function gainTerm(g: number, p: number, r: number): number {
  if (!(r > 0)) return 0
  return Math.min(1, Math.max(-1, (g * p) / (r * r)))
}

/**
 * The `gain`'s multiplier k of a coordinate (§6 step 4) from its new step count t' and its new,
 * float32 slot a': exp(clamp(A·(a'/(T − 1) − C), −κ, κ)) from step T on, else 1 (float64).
 */
export function gainOf(gain: LatchGain, count: number, a: number): number {
  if (count < gain.after) return 1
  const level = gain.strength * (Math.fround(a) / (gain.after - 1) - gain.center)
  return Math.exp(Math.min(gain.cap, Math.max(-gain.cap, level)))
}

/**
 * The `gain` of a `tanh-rms` output (docs/optimizer-math.md §6), the one rule that is not
 * coordinatewise: every path runs `pool` over the call's inputs before it writes anything, steps the
 * call as if there were no gain, then runs `apply`. A caller that steps one call as several parts
 * adds each part's inputs to one pool first, in coordinate order, and hands it to every part: the
 * parts then give the bits of the whole call.
 */
export interface GainPass {
  /**
   * Adds the terms x of n coordinates to `into` (a fresh pool by default) and returns it: from the
   * gradients [n] and the OLD state [n, S], each coordinate's r' computed as momentsInto computes it
   * and its p read from its old slot. Sums in coordinate order, in float64.
   */
  pool(grads: ArrayLike<number>, state: ArrayLike<number>, into?: CallPool): CallPool
  /**
   * With the pool of the whole call: for each of the n coordinates, a' and the multiplier k from
   * its OLD slot a (`state`) and the step count t' already in `next`; multiplies `updates[i]` by k
   * (rounded to float32 where `updates` is a Float32Array: once more after `decay`'s rounding) and
   * writes p' = g and a' to `next`. `next` may be `state` (each a is read before it is written), and
   * either may hold float64 or float32 values. Returns whether every update it changed and every a'
   * it wrote is finite.
   */
  apply(
    pool: CallPool,
    grads: ArrayLike<number>,
    state: ArrayLike<number>,
    next: Writable & ArrayLike<number>,
    updates: Writable & ArrayLike<number>,
  ): boolean
}

/** The architecture's GainPass, or undefined when its output has no `gain` (then it is coordinatewise). */
export function gainPass(spec: LstmSpec): GainPass | undefined {
  const { output, features, stateSize } = spec
  if (output.kind !== 'tanh-rms' || output.gain === undefined) return undefined
  if (features.kind !== 'moments') throw new RangeError('a tanh-rms gain needs moments features')
  const gain = output.gain
  const { beta2 } = features
  const rmsAt = rmsSlotOf(spec)
  const countAt = countSlotOf(spec)
  const pAt = gainSlotOf(spec)
  const aAt = pAt + 1
  const fround = Math.fround
  return {
    pool(grads, state, into = { sum: 0, count: 0 }) {
      let sum = into.sum
      for (let i = 0, row = 0; i < grads.length; i++, row += stateSize) {
        const g = fround(grads[i])
        const r = nextRms(beta2, fround(state[row + rmsAt + 1]) > 0, state[row + rmsAt], g)
        sum += gainTerm(g, fround(state[row + pAt]), r)
      }
      into.sum = sum
      into.count += grads.length
      return into
    },
    apply(pool, grads, state, next, updates) {
      const mean = pool.count > 0 ? pool.sum / pool.count : 0
      const { after } = gain
      let finite = true
      for (let i = 0, row = 0; i < grads.length; i++, row += stateSize) {
        const count = stepCountAt(next, row + countAt)
        const old = fround(state[row + aAt])
        const a = count >= 2 && count <= after ? fround(old + mean) : old
        if (count >= after) {
          updates[i] *= gainOf(gain, count, a)
          finite &&= Number.isFinite(updates[i])
        }
        next[row + pAt] = fround(grads[i])
        next[row + aAt] = a
        finite &&= Number.isFinite(a)
      }
      return finite
    },
  }
}

/**
 * The zero-gradient rule (docs/optimizer-math.md §6): a coordinate that has never seen a nonzero
 * gradient gets an update of exactly +0, by construction. `seen` undefined: a kind without it.
 */
export function maskUnseen(updates: Writable, seen: Uint8Array | undefined): void {
  if (seen === undefined) return
  for (let i = 0; i < seen.length; i++) if (seen[i] === 0) updates[i] = 0
}
