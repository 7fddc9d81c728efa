import { type Architecture, lstmSpec } from '../contract'
import { OptimizerConfigError } from './errors'

/**
 * Writes the first cell's inputs for every gradient into `out` (row-major [N, rowStride], starting
 * at column 0), as DESIGN §2 defines them:
 * `log-sign`: (log|g|/p, sign g) if |g| >= exp(-p), else (-1, exp(p)·g); `none`: (g).
 *
 * Paper's preprocessing: tiny and huge gradients share one input scale. Computed in float64 and
 * rounded once on store; the threshold compare is exact (float32 |g| against float64 exp(-p)).
 * Kinds with state slots (`moments`) are computed by cellInputsInto (kinds.ts), which reads them.
 */
export function preprocessInto(
  architecture: Architecture,
  grads: ArrayLike<number>,
  out: { [i: number]: number },
  rowStride: number,
): void {
  const n = grads.length
  const features = lstmSpec(architecture).features
  if (features.kind === 'none') {
    for (let i = 0; i < n; i++) out[i * rowStride] = grads[i]
    return
  }
  if (features.kind !== 'log-sign') {
    throw new OptimizerConfigError(`${features.kind} features read the state: use cellInputsInto`)
  }
  const p = features.p
  const threshold = Math.exp(-p)
  const expP = Math.exp(p)
  for (let i = 0; i < n; i++) {
    const g = grads[i]
    const o = i * rowStride
    if (Math.abs(g) >= threshold) {
      out[o] = Math.log(Math.abs(g)) / p
      out[o + 1] = g > 0 ? 1 : -1
    } else {
      out[o] = -1
      out[o + 1] = expP * g
    }
  }
}
