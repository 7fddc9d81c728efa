/**
 * An optimizer: two pure functions over explicit state, coordinatewise except where it declares
 * `pool` (below).
 *
 * State is always a coordinate-major Float32Array of shape [numParams, stateSize] (row-major), so
 * any contiguous range of coordinates is one contiguous range of state (sharding), and every
 * optimizer's state round-trips through the wire format the same way.
 */
export interface Optimizer {
  /** Floats of state per coordinate (S). The state for N coordinates has N·S floats. */
  readonly stateSize: number
  /** A fresh state for `numParams` coordinates (zeros for every optimizer here). */
  init(numParams: number): Float32Array
  /**
   * One step: never mutates `grads` or `state`; `updates` is added to the parameters (θ + update).
   * Throws NonFiniteGradientError for a NaN or ±Infinity gradient and StateLengthError when
   * `state.length` is not grads.length · stateSize.
   */
  update(grads: Float32Array, state: Float32Array, pool?: CallPool): StepResult
  /**
   * The same step as `update`, bit for bit, written into caller-owned buffers: `out.updates` of N
   * floats and `out.state` of N·S floats. `out.state` may be `state` itself (an in-place step);
   * `grads` is never written. Checks its inputs as `update` does, before writing anything. Lets a
   * caller that steps many chunks reuse its buffers instead of making garbage. Returns `true` when
   * it has itself checked that every update and state value it wrote is finite (the fused kernel
   * does, as it writes them), `false` when it found one that is not, and undefined when it does not
   * check: a caller that must refuse non-finite results then scans them itself.
   */
  updateInto(grads: Float32Array, state: Float32Array, out: StepResult, pool?: CallPool): boolean | undefined
  /**
   * Present only when the update is not coordinatewise (a `tanh-rms` output with a `gain`,
   * docs/optimizer-math.md §6): one step pools a statistic over all the coordinates of its call, so
   * a call's results depend on which coordinates share it. A caller that computes one call as
   * several (a server keeping each computation short) adds every part's gradients and OLD state to
   * one pool first, in coordinate order (`pool(grads, state, into)` returns `into`, a fresh pool
   * without it), then hands that pool to each part's `update` or `updateInto`: the parts then give
   * the bits of the whole call. Without a pool, a call pools over its own coordinates; optimizers
   * without `pool` ignore one.
   */
  pool?(grads: Float32Array, state: Float32Array, into?: CallPool): CallPool
  /** Releases resources held outside the JS heap (tfjs weight tensors); optional, idempotent. */
  dispose?(): void
}

/** What one optimizer step returns. */
export interface StepResult {
  updates: Float32Array
  state: Float32Array
}

/**
 * What a step that is not coordinatewise pools over the coordinates of one call (a `tanh-rms`
 * output's `gain`, docs/optimizer-math.md §6 step 2): the sum of their terms, added in coordinate
 * order in float64, and how many coordinates there are. The call's mean is sum / count.
 */
export interface CallPool {
  sum: number
  count: number
}
