/**
 * The architecture of a learned optimizer (DESIGN §2–3): the one schema of the project, and every
 * size that follows from it. A weight file declares it in `__metadata__.architecture`; the registry
 * stores and shows it; the core, the weight loader, the server and the SDK read it from here.
 *
 * Two wire forms (docs/optimizer-math.md §1), never mixed: the paper's, fixed by the files already
 * published, `{ kind: 'lstm-cw', layers, hidden, preprocessing, p?, outputScale }`; and the extended
 * one, `{ kind: 'lstm-cw', layers, hidden, features: { kind, …params }, inputLayer?: { size,
 * activation }, output: { kind, scale } }`. Code reads the normalized view instead, `lstmSpec(a)`: L
 * and H, the input features `{ kind, …params }`, the optional input layer and the output transform
 * `{ kind, scale }`, each kind with a small descriptor (`featureKinds`, `outputKinds`) that says, from
 * its parameters, how many inputs it feeds the network and how many floats of per-coordinate state
 * it keeps. A coordinate's state row is the LSTM's 2·L·H floats `[h_1, c_1, …, h_L, c_L]`, then the
 * feature kind's slots, then the output transform's (`LstmSpec.state`).
 *
 * Extending it: a new kind is a member of `Features` or `OutputTransform` plus its descriptor (the
 * compiler asks for both), its schema in the extended form, and its math in core (DESIGN §2:
 * written down in docs/optimizer-math.md first).
 */
import { z } from 'zod'

/** The value `__metadata__.format` of a weight file must have. */
export const WEIGHTS_FORMAT = 'l2o/1'

/** Upper bounds, so a hostile file cannot make a server allocate absurd per-coordinate state. */
export const MAX_LAYERS = 8
export const MAX_HIDDEN = 256
/** Most time scales of the `moments` feature kind (K, the length of `beta1`). */
export const MAX_MOMENTS = 8
/** Largest finite float32: an output scale beyond it cannot give a finite float32 update. */
const MAX_FLOAT32 = 3.4028234663852886e38

/** Moments at K time scales and an RMS average, normalised by it (docs/optimizer-math.md §3). */
export interface MomentsFeatures {
  kind: 'moments'
  /** β₁…β_K in [0, 1): one momentum average per time scale. */
  beta1: number[]
  /** β₂ in [0, 1): the RMS average. */
  beta2: number
  /** ε > 0, added to the RMS. */
  eps: number
  /** q > 0: one more input, log(max(r, e^−q))/q, the gradient's scale; absent: scale-free inputs. */
  logRms?: number
}

/** The network's input features, computed per coordinate from its gradient (and its own slots). */
export type Features = { kind: 'log-sign'; p: number } | { kind: 'none' } | MomentsFeatures

/** How the head y = W_out·h_L + b_out becomes the update. */
export type OutputTransform =
  | { kind: 'linear'; scale: number }
  | { kind: 'tanh'; scale: number }
  | TanhRmsOutput

/**
 * update = scale · tanh(y) · r'^power, r' the `moments` RMS slot after this step: a step that grows
 * with the gradient's scale as r'^power (0 < power ≤ 1), which scale-free features and a bounded tanh
 * cannot express (docs/optimizer-math.md §6).
 */
export interface TanhRmsOutput {
  kind: 'tanh-rms'
  scale: number
  power: number
  /**
   * Optional: the step times min(1, (after / t')^power), t' the coordinate's steps since its first
   * nonzero gradient (at most 65535), kept in two state slots [c_lo, c_hi] (docs/optimizer-math.md §6).
   */
  decay?: StepDecay
  /**
   * Optional: the step times one multiplier per call of the update (not coordinatewise), read from
   * the lag-1 autocorrelation of the call's gradients over each coordinate's first `after` steps,
   * then held; it keeps the step count [c_lo, c_hi] (shared with `decay`) and two slots [p, a]
   * after it (docs/optimizer-math.md §6).
   */
  gain?: LatchGain
}

/** `tanh-rms`'s decay: 1 for a coordinate's first `after` steps, then (after / t')^power. */
export interface StepDecay {
  /** T, an integer from 1 to MAX_STEP_COUNT. */
  after: number
  /** d, in (0, 1]. */
  power: number
}

/**
 * `tanh-rms`'s gain of kind `latch`: per call, X = the mean over its coordinates of
 * clamp(g·p/r'², −1, 1) (p the previous gradient); a coordinate sums X over its steps 2 to T into
 * `a`, and from its step T on its update is times exp(clamp(A·(a/(T − 1) − C), −κ, κ)).
 */
export interface LatchGain {
  kind: 'latch'
  /** T, an integer from 2 to MAX_STEP_COUNT: the step at which the multiplier latches. */
  after: number
  /** C, finite: the mean autocorrelation at which the multiplier is 1. */
  center: number
  /** A, finite and ≥ 0: log k per unit of mean autocorrelation above C. */
  strength: number
  /** κ, in (0, MAX_GAIN_CAP]: |log k| ≤ κ. */
  cap: number
}

/** Where the step count of `decay` and `gain` stops (its two base-256 digits are both at most 255). */
export const MAX_STEP_COUNT = 65535

/** Largest `gain.cap` κ: the multiplier lies in [e^−κ, e^κ]. */
export const MAX_GAIN_CAP = 20

/** A dense layer between the features and the first cell: e = ELU(W_in·x + b_in), E = size. */
export interface InputLayer {
  size: number
  activation: 'elu'
}

/** What a kind adds to each coordinate, given its parameters. */
export interface KindLayout<T> {
  /** Inputs it feeds the first cell (feature kinds; 0 for output transforms). */
  inputs: (kind: T) => number
  /** Floats of per-coordinate state it keeps, after the LSTM's 2·L·H. */
  stateSlots: (kind: T) => number
}

type LayoutTable<U extends { kind: string }> = { [K in U['kind']]: KindLayout<Extract<U, { kind: K }>> }

/**
 * Input feature kinds: `log-sign`: (log|g|/p, sign g) if |g| ≥ e^−p, else (−1, e^p·g), so tiny and
 * huge gradients share one input scale (the paper's, for MNIST); `none`: g itself (the paper's,
 * for quadratics); `moments`: m_k/(r+ε) for K momentum averages m_k and g/(r+ε), with slots
 * [m_1, …, m_K, r, z] (z: a nonzero gradient was seen).
 */
export const featureKinds: LayoutTable<Features> = {
  'log-sign': { inputs: () => 2, stateSlots: () => 0 },
  none: { inputs: () => 1, stateSlots: () => 0 },
  moments: {
    inputs: (f) => f.beta1.length + 1 + (f.logRms === undefined ? 0 : 1),
    stateSlots: (f) => f.beta1.length + 2,
  },
}

/**
 * Output transforms: `linear`, update = scale · y; `tanh`, update = scale · tanh(y); `tanh-rms`,
 * scale · tanh(y) · r'^power (it reads the `moments` RMS slot), times its optional `decay` and
 * `gain`: either keeps the coordinate's step count in two slots [c_lo, c_hi], and the gain two more,
 * [p, a], after them.
 */
export const outputKinds: LayoutTable<OutputTransform> = {
  linear: { inputs: () => 0, stateSlots: () => 0 },
  tanh: { inputs: () => 0, stateSlots: () => 0 },
  'tanh-rms': {
    inputs: () => 0,
    stateSlots: (o) => (keepsStepCount(o) ? 2 : 0) + (o.gain === undefined ? 0 : 2),
  },
}

/** Whether an output keeps the coordinate's step count [c_lo, c_hi]: `tanh-rms` with a `decay` or a `gain`. */
export function keepsStepCount(o: OutputTransform): boolean {
  return o.kind === 'tanh-rms' && (o.decay !== undefined || o.gain !== undefined)
}

// l2o/1 files name their feature kind `preprocessing`; `p` goes with the kinds that take it.
const preprocessings = { 'log-sign': { takesP: true }, none: { takesP: false } } as const
type Preprocessing = keyof typeof preprocessings
const preprocessingNames = Object.keys(preprocessings) as [Preprocessing, ...Preprocessing[]]

/**
 * The paper's wire form (strict: an unknown key is refused, since it could change the outputs).
 * `p` is required or absent as the feature kind says.
 */
export const paperArchitectureSchema = z
  .strictObject({
    kind: z.literal('lstm-cw'),
    /** Number of stacked LSTM cells (L). */
    layers: z.int().min(1).max(MAX_LAYERS),
    /** Hidden size of every cell (H). */
    hidden: z.int().min(1).max(MAX_HIDDEN),
    /** The input feature kind (see featureKinds). */
    preprocessing: z.enum(preprocessingNames),
    /** Preprocessing constant p > 0, for the kinds that take it. */
    p: z.number().positive().optional(),
    /** update = outputScale · (W_out·h_L + b_out). */
    outputScale: z.number(),
  })
  .superRefine((a, ctx) => {
    // Refinements run on a parsed shape only, but stay safe on a name this map does not know.
    const takesP = preprocessings[a.preprocessing]?.takesP
    if (takesP === true && a.p === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['p'],
        message: `p is required when preprocessing is ${a.preprocessing}`,
      })
    }
    if (takesP === false && a.p !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['p'],
        message: `p must be absent when preprocessing is ${a.preprocessing}`,
      })
    }
  })

const unitInterval = z.number().min(0).lt(1)
const outputScale = z
  .number()
  .refine((s) => Math.abs(s) <= MAX_FLOAT32, { message: 'scale must be a finite float32 number' })

/** `tanh-rms`'s `gain` (LatchGain, docs/optimizer-math.md §6), strict. */
export const latchGainSchema = z.strictObject({
  kind: z.literal('latch'),
  after: z.int().min(2).max(MAX_STEP_COUNT),
  center: z.number(),
  strength: z.number().min(0),
  cap: z.number().gt(0).max(MAX_GAIN_CAP),
})

/** The extended wire form (docs/optimizer-math.md §1), strict at every level. */
export const extendedArchitectureSchema = z.strictObject({
  kind: z.literal('lstm-cw'),
  layers: z.int().min(1).max(MAX_LAYERS),
  hidden: z.int().min(1).max(MAX_HIDDEN),
  /** The input feature kind and its parameters (see featureKinds). */
  features: z
    .strictObject({
      kind: z.literal('moments'),
      beta1: z.array(unitInterval).min(1).max(MAX_MOMENTS),
      beta2: unitInterval,
      eps: z.number().positive().lt(MAX_FLOAT32),
      logRms: z.number().positive().lt(MAX_FLOAT32).optional(),
    })
    // Bounded inputs (docs/optimizer-math.md §3): with β₂ > 0 and every β₁ < √β₂, |m_k/r| and |g/r|
    // stay below constants whatever the gradients; otherwise a huge gradient followed by zeros
    // drives m/(r + ε) past the float32 range.
    .refine((f) => f.beta2 > 0 && f.beta1.every((b) => b < Math.sqrt(f.beta2)), {
      message: 'moments needs beta2 > 0 and every beta1 < sqrt(beta2), so that its inputs stay bounded',
      path: ['beta1'],
    }),
  /** An optional ELU layer of `size` units between the features and the first cell. */
  inputLayer: z
    .strictObject({ size: z.int().min(1).max(MAX_HIDDEN), activation: z.literal('elu') })
    .optional(),
  /**
   * update = scale · y (`linear`), scale · tanh(y) (`tanh`) or scale · tanh(y) · r'^power
   * (`tanh-rms`, r' the RMS slot of `moments`; times min(1, (T/t')^d) with `decay`, and the call's
   * multiplier in [e^−cap, e^cap] with `gain`), y = W_out·h_L + b_out.
   */
  output: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('linear'), scale: outputScale }),
    z.strictObject({ kind: z.literal('tanh'), scale: outputScale }),
    z
      .strictObject({
        kind: z.literal('tanh-rms'),
        scale: outputScale,
        power: z.number().gt(0).max(1),
        decay: z
          .strictObject({ after: z.int().min(1).max(MAX_STEP_COUNT), power: z.number().gt(0).max(1) })
          .optional(),
        gain: latchGainSchema.optional(),
      })
      // r' is at most the largest float32 and the gain at most e^cap, so |update| ≤
      // |scale|·e^cap·MAX^power: keep that finite (train/optimizer.py's output_bound_ok, in its order).
      .refine((o) => Math.abs(o.scale) * Math.exp(o.gain?.cap ?? 0) * MAX_FLOAT32 ** o.power <= MAX_FLOAT32, {
        message:
          'tanh-rms needs |scale| · e^gain.cap · 3.4e38^power ≤ 3.4e38 (no gain: e^0 = 1), so that finite gradients give finite updates',
        path: ['scale'],
      }),
  ]),
})

/**
 * The architecture as a weight file declares it: the paper's form or the extended one, never a mix
 * (each is strict). To say which field is wrong, parse with architectureFormSchema instead.
 */
export const architectureSchema = z.union([paperArchitectureSchema, extendedArchitectureSchema]).meta({
  id: 'Architecture',
  description: "A learned optimizer's architecture (its weight file's metadata)",
})

/**
 * The schema of the wire form `raw` is written in: the extended one when it has any of `features`,
 * `inputLayer` or `output`, else the paper's. Its issues name the field at fault (a mix of both
 * forms: the keys of the other), where the union's can only say that neither form fits.
 */
export function architectureFormSchema(
  raw: unknown,
): typeof paperArchitectureSchema | typeof extendedArchitectureSchema {
  const extended =
    typeof raw === 'object' && raw !== null && ['features', 'inputLayer', 'output'].some((k) => k in raw)
  return extended ? extendedArchitectureSchema : paperArchitectureSchema
}

/** An architecture in its wire form. */
export type Architecture = z.infer<typeof architectureSchema>
/** The paper's wire form. */
export type PaperArchitecture = z.infer<typeof paperArchitectureSchema>
/** The extended wire form. */
export type ExtendedArchitecture = z.infer<typeof extendedArchitectureSchema>

/** Whether an architecture is in the extended wire form. */
export const isExtended = (a: Architecture): a is ExtendedArchitecture => 'features' in a

/** A range of the floats of one coordinate's state row. */
export interface Slots {
  offset: number
  size: number
}

/** The normalized view of an architecture that code reads. */
export interface LstmSpec {
  layers: number
  hidden: number
  features: Features
  /** The ELU layer between features and the first cell, or null. */
  inputLayer: InputLayer | null
  output: OutputTransform
  /** Features per coordinate (F). */
  featureSize: number
  /** Inputs of the first cell (X): the input layer's size E if there is one, else F. */
  inputSize: number
  /** Floats of state per coordinate (S): the LSTM's, the features', then the output's. */
  stateSize: number
  /** Where each part of a coordinate's state row lives. */
  state: { lstm: Slots; features: Slots; output: Slots }
}

/** The normalized view of an architecture (see the module comment). */
export function lstmSpec(a: Architecture): LstmSpec {
  let features: Features
  let output: OutputTransform
  let inputLayer: InputLayer | null = null
  if (isExtended(a)) {
    features = a.features
    output = a.output
    inputLayer = a.inputLayer ?? null
  } else {
    features = a.preprocessing === 'log-sign' ? { kind: 'log-sign', p: a.p as number } : { kind: 'none' }
    output = { kind: 'linear', scale: a.outputScale }
  }
  const featureKind = featureKinds[features.kind] as KindLayout<Features>
  const outputKind = outputKinds[output.kind] as KindLayout<OutputTransform>
  const lstm = { offset: 0, size: 2 * a.layers * a.hidden }
  const featureSlots = { offset: lstm.size, size: featureKind.stateSlots(features) }
  const outputSlots = { offset: featureSlots.offset + featureSlots.size, size: outputKind.stateSlots(output) }
  const featureSize = featureKind.inputs(features)
  return {
    layers: a.layers,
    hidden: a.hidden,
    features,
    inputLayer,
    output,
    featureSize,
    inputSize: inputLayer?.size ?? featureSize,
    stateSize: outputSlots.offset + outputSlots.size,
    state: { lstm, features: featureSlots, output: outputSlots },
  }
}

/** Floats of optimizer state per coordinate (S): 2·L·H plus the feature kind's slots. */
export const stateSize = (a: Architecture): number => lstmSpec(a).stateSize

/** Inputs of the first cell (X): 2 for `log-sign`, 1 for `none`, K + 1 for `moments`, or E. */
export const inputSize = (a: Architecture): number => lstmSpec(a).inputSize

/**
 * The tensors a weight file of this architecture holds, name → shape, in PyTorch's state_dict
 * order (DESIGN §3): with an input layer `input.weight [E, F]` and `input.bias [E]`; per cell k
 * `cells.k.weight_ih [4H, in]` (in = X for k = 0, else H), `cells.k.weight_hh [4H, H]`,
 * `cells.k.bias_ih [4H]`, `cells.k.bias_hh [4H]`; then `head.weight [1, H]` and `head.bias [1]`.
 */
export function weightShapes(a: Architecture): Map<string, number[]> {
  const spec = lstmSpec(a)
  const h = spec.hidden
  const shapes = new Map<string, number[]>()
  if (spec.inputLayer !== null) {
    shapes.set('input.weight', [spec.inputLayer.size, spec.featureSize])
    shapes.set('input.bias', [spec.inputLayer.size])
  }
  for (let k = 0; k < spec.layers; k++) {
    shapes.set(`cells.${k}.weight_ih`, [4 * h, k === 0 ? spec.inputSize : h])
    shapes.set(`cells.${k}.weight_hh`, [4 * h, h])
    shapes.set(`cells.${k}.bias_ih`, [4 * h])
    shapes.set(`cells.${k}.bias_hh`, [4 * h])
  }
  shapes.set('head.weight', [1, h])
  shapes.set('head.bias', [1])
  return shapes
}

/**
 * The architecture as compact JSON with sorted keys: the canonical form written into weight files.
 * The extended form is written as train/ writes it (`json.dumps(sort_keys=True, separators=(',',
 * ':'))`): nested keys sorted too, and its real-valued parameters (β's, ε, scale, power, the
 * gain's center, strength and cap) as Python floats
 * (`0.9`, `1.0`, `1e-08`). The paper's form keeps the form TypeScript has always written (`"p":10`).
 */
export function architectureJson(a: Architecture): string {
  if (!isExtended(a)) return canonicalJson(a)
  const real = (x: number) => ({ [pythonFloat]: x })
  const { features, output } = a
  return canonicalJson({
    ...a,
    features: {
      ...features,
      beta1: features.beta1.map(real),
      beta2: real(features.beta2),
      eps: real(features.eps),
      ...(features.logRms === undefined ? {} : { logRms: real(features.logRms) }),
    },
    output: {
      ...output,
      scale: real(output.scale),
      ...('power' in output ? { power: real(output.power) } : {}),
      ...('decay' in output && output.decay !== undefined
        ? { decay: { after: output.decay.after, power: real(output.decay.power) } }
        : {}),
      ...('gain' in output && output.gain !== undefined
        ? {
            gain: {
              kind: output.gain.kind,
              after: output.gain.after,
              center: real(output.gain.center),
              strength: real(output.gain.strength),
              cap: real(output.gain.cap),
            },
          }
        : {}),
    },
  })
}

const pythonFloat = Symbol('python float')

/** Compact JSON with keys sorted at every level; numbers marked `pythonFloat` written as Python's repr. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value !== 'object' || value === null) return JSON.stringify(value)
  if (pythonFloat in value) return pythonFloatRepr((value as { [pythonFloat]: number })[pythonFloat])
  const entries = Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
}

/**
 * Python's `repr(float)` of a finite number: the shortest digits that round-trip (as JavaScript's),
 * positional with at least one decimal when the decimal exponent e satisfies −5 < e < 16, else
 * `d.ddde±XX` with at least two exponent digits.
 */
export function pythonFloatRepr(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`${x} has no JSON form`)
  const sign = x < 0 || Object.is(x, -0) ? '-' : ''
  const [mantissa, exponentText] = Math.abs(x).toExponential().split('e')
  const exponent = Number(exponentText)
  const digits = mantissa.replace('.', '')
  if (exponent < -4 || exponent >= 16) {
    const e = Math.abs(exponent).toString().padStart(2, '0')
    return `${sign}${mantissa}e${exponent < 0 ? '-' : '+'}${e}`
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0')
  const fraction = digits.slice(exponent + 1)
  return `${sign}${whole}.${fraction === '' ? '0' : fraction}`
}
