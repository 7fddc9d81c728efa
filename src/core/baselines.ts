import { OptimizerConfigError } from './errors'
import type { Optimizer } from './optimizer'
import { defineOptimizer } from './validate'

// Hand-designed baselines with torch.optim's update rules (defaults, no weight decay), so the
// Python side can check the same rules against torch. Per-coordinate arithmetic is float64, each
// stored value is rounded once to float32: within float32 tolerance of torch, not bit-identical.

/** Plain SGD: update = −lr·g. No state. */
export function sgd(hp: { learningRate: number }): Optimizer {
  const lr = hp.learningRate
  return defineOptimizer(0, (grads) => ({
    updates: grads.map((g) => -lr * g),
    state: new Float32Array(0),
  }))
}

/** torch.optim.SGD with momentum μ, dampening 0: buf = μ·buf + g, update = −lr·buf. State [buf]. */
export function momentum(hp: { learningRate: number; momentum: number }): Optimizer {
  return momentumSgd(hp, false)
}

/** torch.optim.SGD with nesterov=True: buf = μ·buf + g, update = −lr·(g + μ·buf). State [buf]. */
export function nesterov(hp: { learningRate: number; momentum: number }): Optimizer {
  return momentumSgd(hp, true)
}

function momentumSgd(hp: { learningRate: number; momentum: number }, lookahead: boolean): Optimizer {
  const { learningRate: lr, momentum: mu } = hp
  return defineOptimizer(1, (grads, state) => {
    const buf = new Float32Array(grads.length)
    const updates = new Float32Array(grads.length)
    for (let i = 0; i < grads.length; i++) {
      buf[i] = mu * state[i] + grads[i]
      updates[i] = -lr * (lookahead ? grads[i] + mu * buf[i] : buf[i])
    }
    return { updates, state: buf }
  })
}

/** torch.optim.RMSprop: v = α·v + (1−α)·g², update = −lr·g/(√v + ε). State [v]. */
export function rmsprop(hp: { learningRate: number; alpha?: number; eps?: number }): Optimizer {
  const { learningRate: lr, alpha = 0.99, eps = 1e-8 } = hp
  return defineOptimizer(1, (grads, state) => {
    const v = new Float32Array(grads.length)
    const updates = new Float32Array(grads.length)
    for (let i = 0; i < grads.length; i++) {
      const g = grads[i]
      v[i] = alpha * state[i] + (1 - alpha) * g * g
      updates[i] = (-lr * g) / (Math.sqrt(v[i]) + eps)
    }
    return { updates, state: v }
  })
}

/**
 * torch.optim.Adam with bias correction. State per coordinate [m, v, t]: the step count t lives in
 * the state (exact in float32 up to 2^24 steps) so Adam shards like every other optimizer.
 */
export function adam(hp: { learningRate: number; beta1?: number; beta2?: number; eps?: number }): Optimizer {
  const { learningRate: lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = hp
  return defineOptimizer(3, (grads, state) => {
    const next = new Float32Array(3 * grads.length)
    const updates = new Float32Array(grads.length)
    for (let i = 0; i < grads.length; i++) {
      const g = grads[i]
      const t = state[3 * i + 2] + 1
      const m = beta1 * state[3 * i] + (1 - beta1) * g
      const v = beta2 * state[3 * i + 1] + (1 - beta2) * g * g
      next[3 * i] = m
      next[3 * i + 1] = v
      next[3 * i + 2] = t
      // Use the stored (float32) m and v, as torch does with its float32 buffers.
      const stepSize = lr / (1 - beta1 ** t)
      const denom = Math.sqrt(next[3 * i + 1]) / Math.sqrt(1 - beta2 ** t) + eps
      updates[i] = (-stepSize * next[3 * i]) / denom
    }
    return { updates, state: next }
  })
}

/** Names accepted by baselineOptimizer. */
export type BaselineName = 'sgd' | 'momentum' | 'nag' | 'rmsprop' | 'adam'

/** Hyper-parameters each baseline accepts; `required` must be given, the rest have torch's defaults. */
export const baselineHyperparameters: Record<BaselineName, { required: string[]; optional: string[] }> = {
  sgd: { required: ['learningRate'], optional: [] },
  momentum: { required: ['learningRate', 'momentum'], optional: [] },
  nag: { required: ['learningRate', 'momentum'], optional: [] },
  rmsprop: { required: ['learningRate'], optional: ['alpha', 'eps'] },
  adam: { required: ['learningRate'], optional: ['beta1', 'beta2', 'eps'] },
}

// Allowed range per hyper-parameter: [low, high] with inclusive flags.
const RANGES: Record<
  string,
  { low: number; high: number; lowIncl: boolean; highIncl: boolean; text: string }
> = {
  learningRate: { low: 0, high: Number.POSITIVE_INFINITY, lowIncl: false, highIncl: false, text: '> 0' },
  momentum: { low: 0, high: 1, lowIncl: true, highIncl: false, text: 'in [0, 1)' },
  alpha: { low: 0, high: 1, lowIncl: true, highIncl: false, text: 'in [0, 1)' },
  beta1: { low: 0, high: 1, lowIncl: true, highIncl: false, text: 'in [0, 1)' },
  beta2: { low: 0, high: 1, lowIncl: true, highIncl: false, text: 'in [0, 1)' },
  eps: { low: 0, high: Number.POSITIVE_INFINITY, lowIncl: false, highIncl: false, text: '> 0' },
}

/**
 * A baseline by name, with validated hyper-parameters (unknown names, unknown or missing keys and
 * out-of-range values throw OptimizerConfigError with a message saying what is accepted).
 *
 * @example baselineOptimizer('adam', { learningRate: 1e-3 })
 */
export function baselineOptimizer(name: string, hyperparameters: Record<string, unknown>): Optimizer {
  if (!Object.hasOwn(baselineHyperparameters, name)) {
    throw new OptimizerConfigError(
      `unknown optimizer ${JSON.stringify(name)}; baselines are ${Object.keys(baselineHyperparameters).join(', ')}`,
    )
  }
  const baseline = name as BaselineName
  const { required, optional } = baselineHyperparameters[baseline]
  const accepted = [...required, ...optional]
  const hp: Record<string, number> = {}
  for (const [key, value] of Object.entries(hyperparameters)) {
    if (!accepted.includes(key)) {
      throw new OptimizerConfigError(
        `${name} has no hyper-parameter ${key}; it accepts ${accepted.join(', ')}`,
      )
    }
    const range = RANGES[key]
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (range.lowIncl ? value >= range.low : value > range.low) &&
      (range.highIncl ? value <= range.high : value < range.high)
    if (!ok)
      throw new OptimizerConfigError(
        `${name}: ${key} must be a finite number ${range.text}, got ${String(value)}`,
      )
    hp[key] = value as number
  }
  for (const key of required) {
    if (!(key in hp)) throw new OptimizerConfigError(`${name} needs ${key}`)
  }
  switch (baseline) {
    case 'sgd':
      return sgd({ learningRate: hp.learningRate })
    case 'momentum':
      return momentum({ learningRate: hp.learningRate, momentum: hp.momentum })
    case 'nag':
      return nesterov({ learningRate: hp.learningRate, momentum: hp.momentum })
    case 'rmsprop':
      return rmsprop(hp as { learningRate: number })
    case 'adam':
      return adam(hp as { learningRate: number })
  }
}
