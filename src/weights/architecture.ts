/**
 * The architecture a weight file declares in `__metadata__.architecture` (DESIGN §2–3). This schema
 * is the single source of truth: `LstmArchitecture` in ./types is inferred from it.
 */
import { z } from 'zod'

/** The value `__metadata__.format` must have. */
export const WEIGHTS_FORMAT = 'l2o/1'

/** Upper bounds, so a hostile file cannot make a server allocate absurd per-coordinate state. */
export const MAX_LAYERS = 8
export const MAX_HIDDEN = 256

/** Schema of a coordinatewise LSTM architecture; `p` is required iff preprocessing is `log-sign`. */
export const lstmArchitectureSchema = z
  .strictObject({
    kind: z.literal('lstm-cw'),
    /** Number of stacked LSTM cells (L). */
    layers: z.int().min(1).max(MAX_LAYERS),
    /** Hidden size of every cell (H). */
    hidden: z.int().min(1).max(MAX_HIDDEN),
    /** Gradient preprocessing: `log-sign` (2 inputs, uses p) or `none` (1 input). */
    preprocessing: z.enum(['log-sign', 'none']),
    /** Preprocessing constant p > 0; present iff preprocessing is `log-sign`. */
    p: z.number().positive().optional(),
    /** update = outputScale · (W_out·h_L + b_out). */
    outputScale: z.number(),
  })
  .superRefine((a, ctx) => {
    if (a.preprocessing === 'log-sign' && a.p === undefined) {
      ctx.addIssue({ code: 'custom', path: ['p'], message: 'p is required when preprocessing is log-sign' })
    }
    if (a.preprocessing === 'none' && a.p !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['p'], message: 'p must be absent when preprocessing is none' })
    }
  })

type Architecture = z.infer<typeof lstmArchitectureSchema>

/** Floats of optimizer state per coordinate: h and c for each layer, 2·L·H. */
export const stateSize = (arch: Pick<Architecture, 'layers' | 'hidden'>): number =>
  2 * arch.layers * arch.hidden

/** Inputs of the first cell: 2 for `log-sign` (log|g|/p, sign g), 1 for `none`. */
export const inputSize = (arch: Pick<Architecture, 'preprocessing'>): number =>
  arch.preprocessing === 'log-sign' ? 2 : 1

/** The architecture as compact JSON with sorted keys: the canonical form written into weight files. */
export function architectureJson(arch: Architecture): string {
  const sorted = Object.fromEntries(
    Object.entries(arch)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  )
  return JSON.stringify(sorted)
}
