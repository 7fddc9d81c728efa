/**
 * A learned (or baseline) optimizer that runs on the server: pinned to one digest for the whole run,
 * sharded over the per-request limit, state kept by the SDK (stateless) or the server (session).
 */
import type { Session, StateDtype } from '../contract'
import { sliceRows, type Tensor, zerosOf } from '../safetensors'
import { decodeCheckpoint, encodeCheckpoint, type RunCheckpoint } from './checkpoint'
import type { L2oClient } from './client'
import { DigestMismatchError, ProtocolError, SdkError, StepConflictError } from './errors'
import { type CoordinateRange, mapBounded, shardRanges, tileRanges } from './pool'
import type { ResolvedOptimizer } from './resources/optimizers'

/** Where the optimizer state lives between steps. */
export type RemoteMode = 'stateless' | 'session'

/** How to start a run. */
export interface RemoteOptimizerOptions {
  /** A reference: `name` (= `name@stable`), `name@1.2.0`, `name@alias` or `name@sha256:<hex>`. */
  optimizer: string
  /** `stateless` (default): the SDK holds the state; `session`: the server does. */
  mode?: RemoteMode
  /** Precision of the state on the wire and at rest (default F32; F16/BF16 halve the bytes). */
  stateDtype?: StateDtype
  /** Baselines only, e.g. `{ learningRate: 0.01 }`; part of what the pin identifies. */
  hyperparameters?: Record<string, number>
  /** Parameter count; when unset it is taken from the first step's gradients. */
  numParams?: number
  /** Stateless mode: coordinates per request, at most the server's limit (default: the server's). */
  maxCoordinatesPerRequest?: number
  /** Requests in flight at once for one step (default: the client's concurrency). */
  concurrency?: number
}

/** Options when resuming from a checkpoint. */
export type LoadOptions = Pick<RemoteOptimizerOptions, 'maxCoordinatesPerRequest' | 'concurrency'>

/**
 * A remote optimizer for one training run. `step(grads)` returns the updates to add to the
 * parameters (θ ← θ + update). Create one with `client.remoteOptimizer(…)` or resume one with
 * `client.loadOptimizer(bytes)`.
 *
 * @example
 * const opt = await client.remoteOptimizer({ optimizer: 'l2o-mnist@1.1.0', mode: 'session' })
 * const updates = await opt.step(grads) // Float32Array, same length as grads
 */
export class RemoteOptimizer {
  /** Completed steps of this run. */
  stepCount = 0
  /** After `load`: the `extra` strings saved with the checkpoint. */
  checkpointExtra: Record<string, string> | undefined
  private numParamsValue: number | undefined
  private state: Tensor | undefined
  private session: Session | undefined
  private shards: CoordinateRange[] | undefined
  private sessionCreating: Promise<Session> | undefined
  private stepping = false

  private constructor(
    private readonly client: L2oClient,
    /** The reference the run started from, as given. */
    readonly reference: string,
    /** What the reference resolved to at the start of the run; never re-resolved. */
    readonly resolved: ResolvedOptimizer,
    readonly mode: RemoteMode,
    readonly stateDtype: StateDtype,
    readonly hyperparameters: Record<string, number> | undefined,
    private readonly options: LoadOptions,
  ) {}

  /** Resolves the reference once and pins the run to the digest it names now. */
  static async create(client: L2oClient, options: RemoteOptimizerOptions): Promise<RemoteOptimizer> {
    const resolved = await client.optimizers.resolve(options.optimizer, {
      hyperparameters: options.hyperparameters,
    })
    const stateDtype = options.stateDtype ?? 'F32'
    checkDtype(resolved, stateDtype)
    const opt = new RemoteOptimizer(
      client,
      options.optimizer,
      resolved,
      options.mode ?? 'stateless',
      stateDtype,
      options.hyperparameters,
      options,
    )
    if (options.numParams !== undefined) await opt.bind(options.numParams)
    return opt
  }

  /**
   * Resumes a run saved by `save()`: re-resolves only the pinned digest (never the original alias),
   * and for a session checks that the server's shards are where the checkpoint left them.
   */
  static async load(
    client: L2oClient,
    bytes: Uint8Array,
    options: LoadOptions = {},
  ): Promise<RemoteOptimizer> {
    const c = decodeCheckpoint(bytes)
    const resolved = await client.optimizers.resolve(c.optimizer, { hyperparameters: c.hyperparameters })
    if (resolved.digest !== c.digest) {
      throw new DigestMismatchError({
        status: 409,
        code: 'digest_mismatch',
        detail: `the checkpoint is pinned to ${c.digest}, but ${c.optimizer} resolved to ${resolved.digest}`,
      })
    }
    checkDtype(resolved, c.stateDtype)
    const opt = new RemoteOptimizer(
      client,
      c.reference,
      resolved,
      c.mode,
      c.stateDtype,
      c.hyperparameters,
      options,
    )
    opt.stepCount = c.step
    opt.checkpointExtra = c.extra
    opt.numParamsValue = c.numParams
    if (c.mode === 'stateless') {
      if (c.state && c.state.shape[1] !== resolved.stateSize) {
        throw new SdkError(
          `the checkpoint's state has ${c.state.shape[1]} floats per coordinate, the optimizer ${resolved.stateSize}`,
        )
      }
      opt.state = c.state
      if (c.numParams !== undefined) await opt.bind(c.numParams)
    } else {
      await opt.adoptSession(c)
    }
    return opt
  }

  /** The digest this run is pinned to. */
  get digest(): string {
    return this.resolved.digest
  }

  /** The pinned reference every request carries: `name@sha256:<hex>`. */
  get pinned(): string {
    return this.resolved.pinned
  }

  /** Parameter count, once known. */
  get numParams(): number | undefined {
    return this.numParamsValue
  }

  /** Session mode: the server-side session id, once created. */
  get sessionId(): string | undefined {
    return this.session?.id
  }

  /** The coordinate ranges one step is split into (known after the first step or `numParams`). */
  get shardLayout(): readonly CoordinateRange[] | undefined {
    return this.shards
  }

  /**
   * One optimizer step: sends `grads` (F32, one per parameter, the same order every step) shard by
   * shard, concurrently, and returns the updates in the same order. If it throws, the run is still
   * at the previous step and calling it again with the same gradients is safe: a stateless step is
   * pure, and a session shard that already applied the step answers with the stored updates.
   */
  async step(grads: Float32Array, signal?: AbortSignal): Promise<Float32Array> {
    if (!(grads instanceof Float32Array)) throw new TypeError('grads must be a Float32Array')
    // Steps are sequential by nature (each needs the previous state); overlapping calls are a bug.
    if (this.stepping)
      throw new SdkError('step() called while the previous step() is still running; await it first')
    this.stepping = true
    try {
      await this.bind(grads.length)
      const updates =
        this.mode === 'stateless'
          ? await this.statelessStep(grads, signal)
          : await this.sessionStep(grads, signal)
      this.stepCount++
      return updates
    } finally {
      this.stepping = false
    }
  }

  /** The run as checkpoint bytes (safetensors); `extra` strings are saved alongside. */
  save(extra?: Record<string, string>): Uint8Array {
    const checkpoint: RunCheckpoint = {
      mode: this.mode,
      reference: this.reference,
      optimizer: this.pinned,
      digest: this.digest,
      hyperparameters: this.hyperparameters,
      stateDtype: this.stateDtype,
      numParams: this.numParamsValue,
      step: this.stepCount,
      sessionId: this.session?.id,
      state: this.mode === 'stateless' ? this.state : undefined,
      extra,
    }
    return encodeCheckpoint(checkpoint)
  }

  /** Session mode: deletes the server-side session. Stateless mode: nothing to release. */
  async close(): Promise<void> {
    if (this.session) await this.client.sessions.delete(this.session.id)
    this.session = undefined
  }

  private get concurrency(): number {
    return this.options.concurrency ?? this.client.concurrency
  }

  // Fixes the parameter count (and the shards) at the first step; every later step must match.
  private async bind(numParams: number): Promise<void> {
    if (this.numParamsValue !== undefined && this.numParamsValue !== numParams) {
      throw new SdkError(`this run has ${this.numParamsValue} parameters, but got ${numParams} gradients`)
    }
    if (!Number.isSafeInteger(numParams) || numParams < 1) throw new SdkError('grads must not be empty')
    this.numParamsValue = numParams
    if (this.mode === 'stateless') {
      if (!this.shards) {
        const serverLimit = this.resolved.maxCoordinatesPerRequest
        const limit = Math.min(serverLimit, this.options.maxCoordinatesPerRequest ?? serverLimit)
        this.shards = shardRanges(numParams, limit)
      }
      return
    }
    if (!this.session) {
      // Concurrent first steps share one creation.
      this.sessionCreating ??= this.client.sessions.create({
        optimizer: this.pinned,
        digest: this.digest,
        hyperparameters: this.hyperparameters,
        numParams,
        stateDtype: this.stateDtype,
      })
      const session = await this.sessionCreating
      this.useSession(session)
    }
  }

  private useSession(session: Session): void {
    if (session.digest !== this.digest) {
      throw new DigestMismatchError({
        status: 409,
        code: 'digest_mismatch',
        detail: `session ${session.id} runs ${session.digest}, but this run is pinned to ${this.digest}`,
      })
    }
    const { numParams, shardSize, shardCount, steps } = session
    if (shardSize < 1 || shardCount !== Math.ceil(numParams / shardSize)) {
      throw new ProtocolError(
        `session ${session.id}: ${shardCount} shards of ${shardSize} do not tile [0, ${numParams})`,
      )
    }
    let next = 0
    for (const run of steps) {
      if (run.first !== next || run.last < run.first) break
      next = run.last + 1
    }
    if (next !== shardCount) {
      throw new ProtocolError(
        `session ${session.id}: its steps do not cover shards 0 to ${shardCount - 1} in order`,
      )
    }
    this.session = session
    this.shards = tileRanges(numParams, shardSize)
  }

  private async adoptSession(c: RunCheckpoint): Promise<void> {
    const session = await this.client.sessions.get(c.sessionId!)
    if (c.numParams !== undefined && session.numParams !== c.numParams) {
      throw new SdkError(
        `session ${session.id} has ${session.numParams} parameters, the checkpoint ${c.numParams}`,
      )
    }
    this.useSession(session)
    this.numParamsValue = session.numParams
    // A shard one step ahead finished a step whose step() call did not return: resending that step
    // gets its stored updates. Further ahead, the server holds state the checkpoint does not know.
    for (const run of session.steps) {
      if (run.step !== c.step && run.step !== c.step + 1) {
        throw new StepConflictError({
          status: 409,
          code: 'step_conflict',
          detail: `session ${session.id} shard ${run.first} is at step ${run.step}, the checkpoint at step ${c.step}; a session keeps only its latest state, so resume from the latest checkpoint or start a new run`,
        })
      }
    }
  }

  private async statelessStep(grads: Float32Array, signal?: AbortSignal): Promise<Float32Array> {
    const shards = this.shards!
    const S = this.resolved.stateSize
    const previous = this.state
    const results = await mapBounded(shards, this.concurrency, (shard) =>
      this.client.step({
        optimizer: this.pinned,
        digest: this.digest,
        hyperparameters: this.hyperparameters,
        grads: grads.subarray(shard.offset, shard.offset + shard.length),
        state: previous && sliceState(previous, shard, S),
        stateDtype: this.stateDtype,
        stateSize: S,
        signal,
      }),
    )
    // All shards succeeded: only now does the run move to the new state (all or nothing).
    const updates = new Float32Array(grads.length)
    const next: Tensor = { ...zerosOf(this.stateDtype, grads.length * S), shape: [grads.length, S] }
    for (const [i, shard] of shards.entries()) {
      updates.set(results[i].updates, shard.offset)
      next.data.set(results[i].state.data, shard.offset * S)
    }
    this.state = next
    return updates
  }

  private async sessionStep(grads: Float32Array, signal?: AbortSignal): Promise<Float32Array> {
    const session = this.session!
    const t = this.stepCount + 1
    const results = await mapBounded(this.shards!, this.concurrency, (shard) =>
      this.client.sessions.step(
        session.id,
        shard.index,
        t,
        grads.subarray(shard.offset, shard.offset + shard.length),
        {
          expectDigest: this.digest,
          signal,
        },
      ),
    )
    const updates = new Float32Array(grads.length)
    for (const [i, shard] of this.shards!.entries()) updates.set(results[i].updates, shard.offset)
    return updates
  }
}

function checkDtype(resolved: ResolvedOptimizer, dtype: StateDtype): void {
  if (resolved.stateDtypes.length > 0 && !resolved.stateDtypes.includes(dtype)) {
    throw new SdkError(
      `${resolved.pinned} accepts state dtypes ${resolved.stateDtypes.join(', ')}, not ${dtype}`,
    )
  }
}

function sliceState(state: Tensor, shard: CoordinateRange, S: number): Tensor {
  return { ...sliceRows(state, S, shard.offset, shard.offset + shard.length), shape: [shard.length, S] }
}
