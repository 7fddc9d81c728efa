/**
 * A coordinatewise optimizer: two pure functions over explicit state.
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
  update(grads: Float32Array, state: Float32Array): StepResult
  /**
   * The same step as `update`, bit for bit, written into caller-owned buffers: `out.updates` of N
   * floats and `out.state` of N·S floats. `out.state` may be `state` itself (an in-place step);
   * `grads` is never written. Checks its inputs as `update` does, before writing anything. Lets a
   * caller that steps many chunks reuse its buffers instead of making garbage. Returns `true` when
   * it has itself checked that every update and state value it wrote is finite (the fused kernel
   * does, as it writes them), `false` when it found one that is not, and undefined when it does not
   * check: a caller that must refuse non-finite results then scans them itself.
   */
  updateInto(grads: Float32Array, state: Float32Array, out: StepResult): boolean | undefined
  /** Releases resources held outside the JS heap (tfjs weight tensors); optional, idempotent. */
  dispose?(): void
}

/** What one optimizer step returns. */
export interface StepResult {
  updates: Float32Array
  state: Float32Array
}
