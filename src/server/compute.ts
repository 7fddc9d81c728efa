/**
 * The checks every step shares and the one place optimizer math runs. Everything here runs after
 * the body has been parsed and before anything is written.
 */
import type { Context } from 'hono'
import { clip, headerNames, type StateDtype, stateDtypes } from '../contract'
import { type CallPool, firstNonFinite, type Optimizer, OptimizerInputError, type StepResult } from '../core'
import { type FloatData, fromFloat32, sliceRows, toFloat32, zerosOf } from '../safetensors'
import type { Ticket } from './compute-queue'
import type { AppDeps } from './deps'
import type { AppEnv } from './env'
import { ApiError } from './errors'
import type { OptimizerCache } from './optimizer-cache'
import type { Target } from './registry/resolve'

/**
 * What optimizer math needs from where it runs: the registry (for weights), the tfjs backend, the
 * isolate's optimizer cache and its memory hook. A request has one (computeOf); so has a Durable
 * Object that steps the shards it holds.
 */
export interface Compute extends Pick<AppDeps, 'db' | 'initTf' | 'reclaimMemory' | 'kernel'> {
  optimizers: OptimizerCache
}

/** The request's Compute. */
export function computeOf(c: Context<AppEnv>): Compute {
  const { db, initTf, reclaimMemory, kernel } = c.get('deps')
  return { db, initTf, reclaimMemory, kernel, optimizers: c.get('optimizers') }
}

/** Finds the first NaN or ±Infinity (core's firstNonFinite, or a runtime's faster equivalent). */
export type FiniteScan = (values: Float32Array) => number

/** Refuses (422) the first NaN or ±Infinity gradient, naming its index. */
export function assertFinite(grads: Float32Array, scan: FiniteScan = firstNonFinite): void {
  const i = scan(grads)
  if (i >= 0) {
    throw new ApiError(
      'non_finite_gradient',
      `gradient at coordinate ${i} is ${grads[i]}; every gradient must be a finite float32 (clip or skip this step)`,
      { index: i },
    )
  }
}

/** Largest binary step body, in bytes: the paper's model at 65,536 coordinates needs about 21 MB. */
export const maxBinaryStepBytes = 32 * 1024 * 1024

/** Largest JSON body, in bytes (JSON is for small N; binary is the fast path). */
export const maxJsonBodyBytes = 8 * 1024 * 1024

/**
 * Coordinates one request may carry for an optimizer with `stateSize` floats per coordinate: the
 * server's limit, lowered so grads and an F32 state fit one binary body of `maxBytes`.
 */
export function coordinateLimit(
  stateSize: number,
  serverLimit: number,
  maxBytes = maxBinaryStepBytes,
): number {
  return Math.max(1, Math.min(serverLimit, Math.floor((maxBytes - 65_536) / (4 + 4 * stateSize))))
}

/** Refuses (413) more coordinates than one request may carry. */
export function assertCoordinates(n: number, max: number): void {
  if (n > max) {
    throw new ApiError(
      'too_many_coordinates',
      `${n} coordinates in one request; the limit is ${max}: split the parameters into shards (or use a session)`,
      { limit: max },
    )
  }
}

/** Parses a state dtype name, or 400. */
export function parseStateDtype(text: string | undefined, fallback: StateDtype): StateDtype {
  if (text === undefined) return fallback
  if ((stateDtypes as readonly string[]).includes(text)) return text as StateDtype
  throw new ApiError(
    'invalid_request',
    `state dtype '${clip(text, 16)}' is not one of ${stateDtypes.join(', ')}`,
  )
}

/**
 * Refuses a state whose values are not all finite (a corrupted or foreign state); checks F16 and
 * BF16 on their bit patterns (exponent all ones), without widening. Checks the coordinates from
 * `from` on (the error names the index in the whole state). `scan` checks F32 states.
 */
export function assertFiniteState(
  state: FloatData,
  stateSize: number,
  from = 0,
  scan: FiniteScan = firstNonFinite,
): void {
  const start = from * stateSize
  let bad = firstNonFiniteOf(state, start, scan)
  if (bad >= 0) {
    bad += start
    const per = Math.max(1, stateSize)
    const value = toFloat32(sliceRows(state, 1, bad, bad + 1))[0]
    throw new ApiError(
      'invalid_request',
      `state value ${bad} (coordinate ${Math.floor(bad / per)}) is ${value}; send the state the last step returned, or none to start fresh`,
      { index: bad },
    )
  }
}

/**
 * Index (from `start` on) of the first NaN or ±Infinity of float data, or −1: F32 through `scan`,
 * F16 and BF16 on their bit patterns (exponent all ones), without widening.
 */
export function firstNonFiniteOf(data: FloatData, start = 0, scan: FiniteScan = firstNonFinite): number {
  if (data.dtype === 'F32') return scan(data.data.subarray(start))
  const mask = data.dtype === 'F16' ? 0x7c00 : 0x7f80
  const u = data.data.subarray(start)
  for (let i = 0; i < u.length; i++) if ((u[i] & mask) === mask) return i
  return -1
}

/**
 * Refuses (422 non_finite_result) a step whose updates or new state (in the dtype it leaves in:
 * a finite float32 above 65,504 is Infinity in F16) are not all finite. Whatever the optimizer
 * and its state slots, so kinds added later are covered too. Checked before anything is answered
 * or stored. `begin` is the first coordinate of this call, for the message.
 */
export function assertFiniteResult(
  updates: Float32Array,
  state: FloatData,
  stateSize: number,
  begin: number,
  target: Pick<Target, 'label'>,
  scan: FiniteScan = firstNonFinite,
): void {
  const u = scan(updates)
  const s = u >= 0 ? -1 : firstNonFiniteOf(state, 0, scan)
  if (u < 0 && s < 0) return
  const coordinate = begin + (u >= 0 ? u : Math.floor(s / Math.max(1, stateSize)))
  const what = u >= 0 ? `update is ${updates[u]}` : `new state (${state.dtype}) is not finite`
  throw new ApiError(
    'non_finite_result',
    `the step overflows: ${target.label}'s ${what} at coordinate ${coordinate}; nothing was stored. Lower the learning rate, send smaller gradients, or start from a fresh state${state.dtype === 'F32' ? '' : ' (or keep the state in F32)'}`,
    { index: coordinate },
  )
}

/** Where a step's results go: updates [N] and the new state [N, S] in the output dtype. */
export interface StepOutput {
  updates: Float32Array
  state: FloatData
}

/** A StepOutput backed by fresh arrays. */
export function newStepOutput(n: number, stateSize: number, dtype: StateDtype): StepOutput {
  return { updates: new Float32Array(n), state: zerosOf(dtype, n * stateSize) }
}

/**
 * Coordinates per optimizer call. The update is coordinatewise, so any split gives the same
 * numbers; an optimizer whose update is not (a `tanh-rms` `gain`: Optimizer.pool) is handed the
 * pool of the whole request or shard in each call, which gives the same numbers too. A call holds
 * the event loop (the compute queue hands the turn on between calls), so calls are kept short: 2^17 floats (512 KB of state and updates), ~1,600 coordinates of the
 * paper's model, ~2 ms on the fused kernel. Calls of 2^19 floats (~7 ms alone) held the loop for
 * 55-70 ms in the reliability suite's large steps, where 20 clients share 2 vCPUs (29.7-41.1 ms
 * after, one run each); the tfjs fallback is ~3× slower per coordinate, so its calls are too.
 */
export function chunkCoordinates(stateSize: number): number {
  return Math.max(256, Math.floor(chunkFloats / (stateSize + 1)))
}

const chunkFloats = 131_072

/** A call over at least this many floats (state and updates) is followed by reclaimMemory. */
const reclaimFloats = 262_144

/** How stepChunks hands each optimizer call's coordinates [begin, end) in and its results out. */
export interface ChunkHooks {
  /**
   * Before the call: may wait for its input; false stops the step. For an optimizer that pools over
   * the whole step (Optimizer.pool), called once with [0, N) before any call instead.
   */
  before?: (begin: number, end: number) => Promise<boolean> | boolean
  /** The call's results; `updates` is valid only until `after` returns. */
  after: (begin: number, end: number, updates: Float32Array, state: FloatData) => void
  /**
   * An F32 state in, F32 out: overwrite it chunk by chunk with the new state (`after` gets views
   * of it), so no garbage is made. Only for a state the caller owns and may lose.
   */
  inPlace?: boolean
  /** F32 out: the buffers a call writes its updates [end − begin] and state into (`after` gets them). */
  into?: (begin: number, end: number) => StepResult
  /**
   * A faster finite check of what a call writes (Node: the body's wasm scan, which falls back to
   * core's for arrays outside the body's memory); default core's firstNonFinite.
   */
  scan?: FiniteScan
  /**
   * Where each call takes its turn (the request's admission to the compute queue), so that calls
   * of other clients' steps run in between; absent when the caller already holds a turn (a
   * session step holds one from reading its shard to writing it back).
   */
  turns?: Pick<Ticket, 'run'>
}

/**
 * Runs one optimizer step for a resolved target in calls of chunkCoordinates(S) coordinates;
 * `state` undefined means a fresh state. The results of each call go to `hooks.after`, with the
 * state already in `dtype`. Every check of the request has happened before this is called, except
 * possibly that a still-arriving state is finite (the caller answers only after that check).
 * These N coordinates are one call of the update (docs/optimizer-math.md §6: a `gain` pools over
 * them all), whatever the calls they are computed in.
 */
export async function stepChunks(
  compute: Compute,
  target: Target,
  grads: Float32Array,
  state: FloatData | undefined,
  dtype: StateDtype,
  hooks: ChunkHooks,
): Promise<void> {
  if (target.kind === 'learned' && compute.kernel === undefined) await compute.initTf()
  const s = target.stateSize
  const n = grads.length
  const chunk = chunkCoordinates(s)
  const inPlace = hooks.inPlace === true && state?.dtype === 'F32' && dtype === 'F32'
  const chunkUpdates = inPlace ? new Float32Array(Math.min(n, chunk)) : undefined
  // Looked up per call: reclaimMemory may yield, and the LRU may dispose an evicted optimizer then.
  const optimizerOf = async (): Promise<Optimizer> =>
    target.kind === 'baseline'
      ? target.optimizer
      : await compute.optimizers.get(compute.db, target.digest, compute.kernel)
  const stateOf = (optimizer: Optimizer, begin: number, end: number) =>
    state === undefined ? optimizer.init(end - begin) : toFloat32(sliceRows(state, s, begin, end))
  // An optimizer that pools over the whole step (a gain) gets that pool in every call, summed over
  // every chunk of the old state first, in order: so the whole state must be in before any call.
  let pool: CallPool | undefined
  if ((await optimizerOf()).pool !== undefined) {
    if (hooks.before !== undefined && !(await hooks.before(0, n))) return
    const poolAll = async () => {
      const optimizer = await optimizerOf()
      const into: CallPool = { sum: 0, count: 0 }
      for (let begin = 0; begin < n; begin += chunk) {
        const end = Math.min(n, begin + chunk)
        inputChecked(() => optimizer.pool?.(grads.subarray(begin, end), stateOf(optimizer, begin, end), into))
      }
      pool = into
    }
    if (hooks.turns !== undefined) await hooks.turns.run(poolAll)
    else await poolAll()
  }
  const call = async (begin: number, end: number) => {
    const optimizer = await optimizerOf()
    const stateIn = stateOf(optimizer, begin, end)
    // `checked`: whether the optimizer checked its own outputs finite (the fused kernel does, for free).
    const { result, checked } = inputChecked((): { result: StepResult; checked?: boolean } => {
      if (chunkUpdates !== undefined || (hooks.into !== undefined && dtype === 'F32')) {
        const into =
          chunkUpdates !== undefined
            ? { updates: chunkUpdates.subarray(0, end - begin), state: stateIn }
            : hooks.into!(begin, end)
        return {
          result: into,
          checked: optimizer.updateInto(grads.subarray(begin, end), stateIn, into, pool),
        }
      }
      return { result: optimizer.update(grads.subarray(begin, end), stateIn, pool) }
    })
    const next = fromFloat32(dtype, result.state)
    // A 16-bit state can overflow in the conversion, so only an F32 one is taken on the
    // optimizer's word; a failed check is scanned again here for the message.
    if (!(checked === true && dtype === 'F32'))
      assertFiniteResult(result.updates, next, s, begin, target, hooks.scan)
    hooks.after(begin, end, result.updates, next)
  }
  for (let begin = 0; begin < n; begin += chunk) {
    const end = Math.min(n, begin + chunk)
    if (pool === undefined && hooks.before !== undefined && !(await hooks.before(begin, end))) return
    // The memory is reclaimed within the turn: the step's next call then asks for its turn before
    // the queue hands the turn on, and gets it (compute-queue.ts).
    const turn = async () => {
      await call(begin, end)
      if (n > chunk || (end - begin) * (s + 1) >= reclaimFloats) await compute.reclaimMemory?.()
    }
    if (hooks.turns !== undefined) await hooks.turns.run(turn)
    else await turn()
  }
}

/** Runs `work`, an optimizer's, and returns what it returns; its input errors answer shape_mismatch. */
function inputChecked<T>(work: () => T): T {
  try {
    return work()
  } catch (error) {
    // The route checked everything the optimizer checks; this is a second line of defence.
    if (error instanceof OptimizerInputError) throw new ApiError('shape_mismatch', error.message)
    throw error
  }
}

/**
 * Runs one optimizer step, writing updates and state into `out` (see stepChunks); each call takes
 * its turn through `turns` when given.
 */
export function runStep(
  compute: Compute,
  target: Target,
  grads: Float32Array,
  state: FloatData | undefined,
  out: StepOutput,
  turns?: Pick<Ticket, 'run'>,
): Promise<void> {
  const s = target.stateSize
  return stepChunks(compute, target, grads, state, out.state.dtype, {
    turns,
    into: (begin, end) => ({
      updates: out.updates.subarray(begin, end),
      state: (out.state.data as Float32Array).subarray(begin * s, end * s),
    }),
    after: (begin, _end, updates, next) => {
      // Written in place by `into` (F32); copied otherwise.
      if (updates.buffer === out.updates.buffer) return
      out.updates.set(updates, begin)
      if (out.state.dtype === 'F32') out.state.data.set(next.data as Float32Array, begin * s)
      else out.state.data.set(next.data as Uint16Array, begin * s)
    },
  })
}

/** Headers every answer naming a target carries: the digest, and Deprecation (RFC 9745) when deprecated. */
export function stepHeaders(target: Pick<Target, 'digest' | 'deprecatedAt'>): Record<string, string> {
  const headers: Record<string, string> = { [headerNames.digest]: target.digest }
  if (target.deprecatedAt !== null)
    headers[headerNames.deprecation] = `@${Math.floor(Date.parse(target.deprecatedAt) / 1000)}`
  return headers
}
