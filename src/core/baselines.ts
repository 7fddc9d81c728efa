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
  const d = baselineDefaults('rmsprop')
  const { learningRate: lr, alpha = d.alpha, eps = d.eps } = hp
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
  const d = baselineDefaults('adam')
  const { learningRate: lr, beta1 = d.beta1, beta2 = d.beta2, eps = d.eps } = hp
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

/** An allowed range of a hyper-parameter, [low, high] with inclusive flags, and how to say it. */
interface Range {
  low: number
  high: number
  lowIncl: boolean
  highIncl: boolean
  text: string
}

// Every range is bounded: a learning rate of 1e38 is a typo, not a setting (its updates overflow).
const learningRateRange: Range = { low: 0, high: 100, lowIncl: false, highIncl: true, text: 'in (0, 100]' }
const epsRange: Range = { low: 0, high: 1, lowIncl: false, highIncl: true, text: 'in (0, 1]' }
const fraction: Range = { low: 0, high: 1, lowIncl: true, highIncl: false, text: 'in [0, 1)' }

/** One hyper-parameter of a baseline: its range, and its default (torch.optim's) unless required. */
interface Hyperparameter {
  range: Range
  default?: number
}

/** Everything about one baseline: how listings describe it, what it accepts, and how to build it. */
export interface Baseline {
  description: string
  /** In the order messages list them: required ones first. */
  hyperparameters: Readonly<Record<string, Hyperparameter>>
  /** Builds it from hyper-parameters that are checked and complete (defaults filled). */
  make: (hp: Record<string, number>) => Optimizer
}

type Hp = Record<string, number>

/**
 * The baselines, one entry each: the one place their descriptions, hyper-parameters, ranges and
 * defaults are written. The server lists them, fills defaults and hashes them (the digest) from here.
 */
export const baselines = {
  sgd: {
    description: 'Plain SGD: update = -learningRate * g (torch.optim.SGD).',
    hyperparameters: { learningRate: { range: learningRateRange } },
    make: (hp: Hp) => sgd({ learningRate: hp.learningRate }),
  },
  momentum: {
    description: 'SGD with heavy-ball momentum (torch.optim.SGD, momentum).',
    hyperparameters: { learningRate: { range: learningRateRange }, momentum: { range: fraction } },
    make: (hp: Hp) => momentum({ learningRate: hp.learningRate, momentum: hp.momentum }),
  },
  nag: {
    description: 'SGD with Nesterov momentum (torch.optim.SGD, nesterov=True).',
    hyperparameters: { learningRate: { range: learningRateRange }, momentum: { range: fraction } },
    make: (hp: Hp) => nesterov({ learningRate: hp.learningRate, momentum: hp.momentum }),
  },
  rmsprop: {
    description: 'RMSprop (torch.optim.RMSprop).',
    hyperparameters: {
      learningRate: { range: learningRateRange },
      alpha: { range: fraction, default: 0.99 },
      eps: { range: epsRange, default: 1e-8 },
    },
    make: (hp: Hp) => rmsprop({ learningRate: hp.learningRate, alpha: hp.alpha, eps: hp.eps }),
  },
  adam: {
    description: 'Adam with bias correction (torch.optim.Adam).',
    hyperparameters: {
      learningRate: { range: learningRateRange },
      beta1: { range: fraction, default: 0.9 },
      beta2: { range: fraction, default: 0.999 },
      eps: { range: epsRange, default: 1e-8 },
    },
    make: (hp: Hp) => adam({ learningRate: hp.learningRate, beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps }),
  },
} satisfies Record<string, Baseline>

/** Names accepted by baselineOptimizer. */
export type BaselineName = keyof typeof baselines

/** Baseline names, in listing order. */
export const baselineNames = Object.keys(baselines) as BaselineName[]

/** True when `name` is a built-in baseline. */
export function isBaseline(name: string): name is BaselineName {
  return Object.hasOwn(baselines, name)
}

/** The defaults of a baseline's optional hyper-parameters. */
export function baselineDefaults(name: BaselineName): Record<string, number> {
  const defaults: Record<string, number> = {}
  for (const [key, h] of Object.entries(baselines[name].hyperparameters as Record<string, Hyperparameter>)) {
    if (h.default !== undefined) defaults[key] = h.default
  }
  return defaults
}

/** The hyper-parameters a baseline accepts: `required` must be given, `optional` have defaults. */
export function baselineHyperparameters(name: BaselineName): { required: string[]; optional: string[] } {
  const entries = Object.entries(baselines[name].hyperparameters as Record<string, Hyperparameter>)
  return {
    required: entries.filter(([, h]) => h.default === undefined).map(([key]) => key),
    optional: entries.filter(([, h]) => h.default !== undefined).map(([key]) => key),
  }
}

/**
 * A baseline by name with its hyper-parameters checked and every default filled in (the complete
 * set is what identifies it). Unknown names, unknown or missing keys and out-of-range values
 * throw OptimizerConfigError with a message saying what is accepted.
 */
export function baselineWith(
  name: string,
  given: Record<string, unknown>,
): { name: BaselineName; hyperparameters: Record<string, number>; optimizer: Optimizer } {
  if (!isBaseline(name)) {
    throw new OptimizerConfigError(
      `unknown optimizer ${JSON.stringify(name)}; baselines are ${baselineNames.join(', ')}`,
    )
  }
  const accepted = baselines[name].hyperparameters as Record<string, Hyperparameter>
  const hp: Record<string, number> = {}
  for (const [key, value] of Object.entries({ ...baselineDefaults(name), ...given })) {
    if (!Object.hasOwn(accepted, key)) {
      throw new OptimizerConfigError(
        `${name} has no hyper-parameter ${key}; it accepts ${Object.keys(accepted).join(', ')}`,
      )
    }
    const range = accepted[key].range
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
  for (const key of Object.keys(accepted)) {
    if (!(key in hp)) throw new OptimizerConfigError(`${name} needs ${key}`)
  }
  return { name, hyperparameters: hp, optimizer: baselines[name].make(hp) }
}

/**
 * A baseline by name, with validated hyper-parameters (see baselineWith).
 *
 * @example baselineOptimizer('adam', { learningRate: 1e-3 })
 */
export function baselineOptimizer(name: string, hyperparameters: Record<string, unknown>): Optimizer {
  return baselineWith(name, hyperparameters).optimizer
}
