/**
 * The architecture of a learned optimizer (DESIGN §2–3): the one schema of the project, and every
 * size that follows from it. A weight file declares it in `__metadata__.architecture`; the registry
 * stores and shows it; the core, the weight loader, the server and the SDK read it from here.
 *
 * The wire form is fixed by the files already published: `{ kind: 'lstm-cw', layers, hidden,
 * preprocessing, p?, outputScale }`. Code reads the normalized view instead, `lstmSpec(a)`: L and H,
 * the input features `{ kind, …params }` and the output transform `{ kind, scale }`, each kind with
 * a small descriptor (`featureKinds`, `outputKinds`) that says, from its parameters, how many inputs
 * it feeds the first cell and how many floats of per-coordinate state it keeps. A coordinate's state
 * row is the LSTM's 2·L·H floats `[h_1, c_1, …, h_L, c_L]`, then the feature kind's slots, then the
 * output transform's (`LstmSpec.state`).
 *
 * Extending it: a new kind is a member of `Features` or `OutputTransform` plus its descriptor (the
 * compiler asks for both), its case where lstmSpec reads the wire form, and its math in core (DESIGN
 * §2: written down in docs/optimizer-math.md first). A richer wire form (e.g. `features`, `inputLayer`
 * and `output` records) is a second member of the schema that lstmSpec maps onto the same view; an
 * input layer of width E makes E the first cell's width, and weightShapes lists its tensors.
 */
import { z } from 'zod'

/** The value `__metadata__.format` of a weight file must have. */
export const WEIGHTS_FORMAT = 'l2o/1'

/** Upper bounds, so a hostile file cannot make a server allocate absurd per-coordinate state. */
export const MAX_LAYERS = 8
export const MAX_HIDDEN = 256

/** The first cell's input features, computed per coordinate from its gradient (and its own slots). */
export type Features = { kind: 'log-sign'; p: number } | { kind: 'none' }

/** How the head h_L·W_out + b_out becomes the update. */
export type OutputTransform = { kind: 'linear'; scale: number }

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
 * for quadratics).
 */
export const featureKinds: LayoutTable<Features> = {
  'log-sign': { inputs: () => 2, stateSlots: () => 0 },
  none: { inputs: () => 1, stateSlots: () => 0 },
}

/** Output transforms: `linear`, update = scale · head. */
export const outputKinds: LayoutTable<OutputTransform> = {
  linear: { inputs: () => 0, stateSlots: () => 0 },
}

// l2o/1 files name their feature kind `preprocessing`; `p` goes with the kinds that take it.
const preprocessings = { 'log-sign': { takesP: true }, none: { takesP: false } } as const
type Preprocessing = keyof typeof preprocessings
const preprocessingNames = Object.keys(preprocessings) as [Preprocessing, ...Preprocessing[]]

/**
 * The architecture as a weight file declares it (strict: an unknown key is refused, since it could
 * change the outputs). `p` is required or absent as the feature kind says.
 */
export const architectureSchema = z
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
  .meta({
    id: 'Architecture',
    description: "A learned optimizer's architecture (its weight file's metadata)",
  })

/** An architecture in its wire form. */
export type Architecture = z.infer<typeof architectureSchema>

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
  output: OutputTransform
  /** Inputs of the first cell (F). */
  inputSize: number
  /** Floats of state per coordinate (S): the LSTM's, the features', then the output's. */
  stateSize: number
  /** Where each part of a coordinate's state row lives. */
  state: { lstm: Slots; features: Slots; output: Slots }
}

/** The normalized view of an architecture (see the module comment). */
export function lstmSpec(a: Architecture): LstmSpec {
  const features: Features =
    a.preprocessing === 'log-sign' ? { kind: 'log-sign', p: a.p as number } : { kind: 'none' }
  const output: OutputTransform = { kind: 'linear', scale: a.outputScale }
  const featureKind = featureKinds[features.kind] as KindLayout<Features>
  const outputKind = outputKinds[output.kind] as KindLayout<OutputTransform>
  const lstm = { offset: 0, size: 2 * a.layers * a.hidden }
  const featureSlots = { offset: lstm.size, size: featureKind.stateSlots(features) }
  const outputSlots = { offset: featureSlots.offset + featureSlots.size, size: outputKind.stateSlots(output) }
  return {
    layers: a.layers,
    hidden: a.hidden,
    features,
    output,
    inputSize: featureKind.inputs(features),
    stateSize: outputSlots.offset + outputSlots.size,
    state: { lstm, features: featureSlots, output: outputSlots },
  }
}

/** Floats of optimizer state per coordinate (S): 2·L·H for the kinds of l2o/1. */
export const stateSize = (a: Architecture): number => lstmSpec(a).stateSize

/** Inputs of the first cell (F): 2 for `log-sign`, 1 for `none`. */
export const inputSize = (a: Architecture): number => lstmSpec(a).inputSize

/**
 * The tensors a weight file of this architecture holds, name → shape, in PyTorch's state_dict
 * order (DESIGN §3): per cell k `cells.k.weight_ih [4H, in]` (in = F for k = 0, else H),
 * `cells.k.weight_hh [4H, H]`, `cells.k.bias_ih [4H]`, `cells.k.bias_hh [4H]`; then
 * `head.weight [1, H]` and `head.bias [1]`.
 */
export function weightShapes(a: Architecture): Map<string, number[]> {
  const spec = lstmSpec(a)
  const h = spec.hidden
  const shapes = new Map<string, number[]>()
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

/** The architecture as compact JSON with sorted keys: the canonical form written into weight files. */
export function architectureJson(a: Architecture): string {
  const sorted = Object.fromEntries(
    Object.entries(a)
      .filter(([, v]) => v !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)),
  )
  return JSON.stringify(sorted)
}
