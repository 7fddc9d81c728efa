/**
 * tf.js integration, the `l2o/tf` entry: an optimizer object for tf.js training loops. tf.js's own
 * Optimizer API is synchronous and this one talks HTTP, so `applyGradients` is async. The root
 * entry (`l2o`) stays fetch-only; only this one loads `@tensorflow/tfjs-core`.
 *
 * @example
 * import { L2oClient } from 'l2o'
 * import { TfOptimizer } from 'l2o/tf'
 * const opt = await TfOptimizer.create(l2o, { optimizer: 'l2o-mnist@1.1.0', mode: 'session' })
 * const { grads } = tf.variableGrads(loss)
 * await opt.applyGradients(grads)
 */
import * as tf from '@tensorflow/tfjs-core'
import type { L2oClient } from './client'
import { SdkError } from './errors'
import type { LoadOptions, RemoteOptimizer, RemoteOptimizerOptions } from './remote-optimizer'

/** Start a run (`RemoteOptimizerOptions`) or resume one (`checkpoint`: bytes from `TfOptimizer.save()`). */
export type TfOptimizerOptions = RemoteOptimizerOptions | ({ checkpoint: Uint8Array } & LoadOptions)

/** Gradients as `tf.variableGrads` returns them (by variable name), or explicit pairs. */
export type TfGradients = tf.NamedTensorMap | ReadonlyArray<{ variable: tf.Variable; grad: tf.Tensor }>

/** One variable's place in the flat parameter vector. */
export interface TfLayoutEntry {
  name: string
  shape: number[]
  offset: number
  size: number
}

const layoutKey = 'tf_layout'

/**
 * Applies a remote optimizer to tf.Variables: flattens their gradients into one float32 vector,
 * steps the remote optimizer, and assigns θ + update to each variable.
 *
 * The first call fixes the layout: the variables, in the order given (a map's key order, which for
 * `tf.variableGrads` is the variable list's order). Later calls are matched to it by variable name,
 * so each coordinate keeps its own optimizer state for the whole run.
 */
export class TfOptimizer {
  private layoutValue: TfLayoutEntry[] | undefined

  private constructor(
    /** The underlying remote optimizer (pin, step count, session). */
    readonly remote: RemoteOptimizer,
    layout?: TfLayoutEntry[],
  ) {
    this.layoutValue = layout
  }

  /** Starts a run on `client` (as `client.remoteOptimizer` does), or resumes one from `checkpoint` bytes. */
  static async create(client: L2oClient, options: TfOptimizerOptions): Promise<TfOptimizer> {
    if ('checkpoint' in options) {
      const remote = await client.loadOptimizer(options.checkpoint, options)
      return new TfOptimizer(remote, readLayout(remote))
    }
    return new TfOptimizer(await client.remoteOptimizer(options))
  }

  /** The flat layout of the variables, once fixed by the first step (or a checkpoint). */
  get layout(): readonly TfLayoutEntry[] | undefined {
    return this.layoutValue
  }

  /** Completed steps. */
  get stepCount(): number {
    return this.remote.stepCount
  }

  /**
   * One step: reads the gradients, sends them, and assigns θ + update to every variable. The
   * gradient tensors are not disposed; the caller owns them.
   */
  async applyGradients(grads: TfGradients, signal?: AbortSignal): Promise<void> {
    const pairs = toPairs(grads)
    this.layoutValue ??= layoutOf(pairs)
    const layout = this.layoutValue
    const byName = new Map(pairs.map((p) => [p.variable.name, p]))
    if (byName.size !== layout.length || layout.some((e) => !byName.has(e.name))) {
      const want = layout.map((e) => e.name).join(', ')
      const got = [...byName.keys()].join(', ')
      throw new SdkError(
        `applyGradients needs gradients for exactly the variables of the first step (${want}); got ${got}`,
      )
    }
    const total = layout.reduce((n, e) => n + e.size, 0)
    const flat = new Float32Array(total)
    const values = await Promise.all(layout.map((e) => byName.get(e.name)!.grad.data()))
    for (const [i, e] of layout.entries()) {
      const grad = byName.get(e.name)!.grad
      if (grad.size !== e.size)
        throw new SdkError(`gradient of ${e.name} has ${grad.size} values, expected ${e.size}`)
      flat.set(values[i] as Float32Array, e.offset)
    }
    const updates = await this.remote.step(flat, signal)
    tf.tidy(() => {
      for (const e of layout) {
        const variable = byName.get(e.name)!.variable
        const update = tf.tensor(updates.subarray(e.offset, e.offset + e.size), e.shape, 'float32')
        variable.assign(tf.add(variable, update))
      }
    })
  }

  /** The run as checkpoint bytes, layout included; resume with `TfOptimizer.create(l2o, { checkpoint })`. */
  save(): Uint8Array {
    return this.remote.save(this.layoutValue ? { [layoutKey]: JSON.stringify(this.layoutValue) } : undefined)
  }

  /** Releases server-side resources (deletes the session in session mode). */
  close(): Promise<void> {
    return this.remote.close()
  }
}

function toPairs(grads: TfGradients): { variable: tf.Variable; grad: tf.Tensor }[] {
  if (Array.isArray(grads)) return [...grads] as { variable: tf.Variable; grad: tf.Tensor }[]
  const registered = tf.engine().registeredVariables
  return Object.entries(grads as tf.NamedTensorMap).map(([name, grad]) => {
    const variable = registered[name]
    if (!variable) throw new SdkError(`no tf.Variable named ${name} is registered`)
    return { variable, grad }
  })
}

function layoutOf(pairs: { variable: tf.Variable; grad: tf.Tensor }[]): TfLayoutEntry[] {
  let offset = 0
  return pairs.map(({ variable }) => {
    if (variable.dtype !== 'float32')
      throw new SdkError(`variable ${variable.name} is ${variable.dtype}, not float32`)
    const entry = { name: variable.name, shape: [...variable.shape], offset, size: variable.size }
    offset += variable.size
    return entry
  })
}

function readLayout(remote: RemoteOptimizer): TfLayoutEntry[] | undefined {
  const text = remote.checkpointExtra?.[layoutKey]
  if (text === undefined) return undefined
  const layout = JSON.parse(text) as TfLayoutEntry[]
  const total = layout.reduce((n, e) => n + e.size, 0)
  if (remote.numParams !== undefined && total !== remote.numParams) {
    throw new SdkError(
      `the checkpoint's tf.js layout covers ${total} parameters, the run ${remote.numParams}`,
    )
  }
  return layout
}
