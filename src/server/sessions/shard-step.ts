/**
 * A shard's step, applied exactly once (DESIGN §6), on whatever holds the shard: the one decision
 * every store shares. t = current + 1 applies, t = current replays the stored updates byte for
 * byte when its gradients are the same (replay_mismatch when not), anything else conflicts. The write is a compare-and-set on the step read, so two requests
 * for t that race both answer with the updates of the one that stored them.
 */
import { firstNonFinite } from '../../core'
import type { FloatData } from '../../safetensors'
import { type Compute, newStepOutput, runStep } from '../compute'
import { ApiError } from '../errors'
import { sha256Hex } from '../ids'
import type { Target } from '../registry/resolve'
import type { AdvanceOutcome, SessionRecord, ShardCompute, ShardState, ShardStepOutcome } from './store'

/** The shards of one session where a store keeps them. */
export interface ShardCells {
  /**
   * A shard's latest step, or undefined when it has none stored (a fresh state at step 0). Its
   * arrays are the caller's: a step may overwrite the state in place.
   */
  read(shard: number): Promise<ShardState | undefined> | ShardState | undefined
  /**
   * Stores `next` as the shard's state if it is still at step `from` (0: none stored yet);
   * 'conflict' when another step got there first, or when the session is gone.
   */
  advance(shard: number, from: number, next: ShardState): Promise<AdvanceOutcome> | AdvanceOutcome
  /** Whether the session still exists. */
  exists(): Promise<boolean> | boolean
}

/** Applies step `t` of `shard` to `cells`, computing with `compute` (see SessionStore.stepShard). */
export async function stepShardOn(
  cells: ShardCells,
  compute: ShardCompute,
  shard: number,
  t: number,
  grads: Float32Array,
): Promise<ShardStepOutcome> {
  // Kept with the step, so that a resent t is told apart from another request reusing its number.
  const gradsHash = await sha256Hex(new Uint8Array(grads.buffer, grads.byteOffset, grads.byteLength))
  // A resent step t: the same gradients get its stored updates, byte for byte.
  const replay = (applied: ShardState): ShardStepOutcome => {
    if (applied.gradsHash !== null && applied.gradsHash !== gradsHash) return { outcome: 'replay_mismatch' }
    // A row stored before results were checked may hold an overflow: it is never sent.
    if (firstNonFinite(applied.updates) >= 0) {
      return {
        outcome: 'non_finite',
        detail: `step ${t} of shard ${shard} overflowed when it was applied, before this server refused such steps; start a new session`,
      }
    }
    return { outcome: 'updates', updates: applied.updates }
  }
  return compute.exclusive(async () => {
    const stored = await cells.read(shard)
    const current = stored?.step ?? 0
    if (t === current && stored !== undefined) return replay(stored)
    if (t !== current + 1) {
      // No shard stored may also mean a session deleted since the caller found it.
      if (stored === undefined && !(await cells.exists())) return { outcome: 'gone' }
      return { outcome: 'conflict', current }
    }

    let result: { updates: Float32Array; state: FloatData }
    try {
      result = await compute.step(stored?.state, grads)
    } catch (error) {
      // An overflow is refused before anything is stored (compute.ts), as plain data (see
      // ShardStepOutcome) so that every store answers it alike.
      if (error instanceof ApiError && error.code === 'non_finite_result')
        return { outcome: 'non_finite', detail: error.detail, extensions: error.extensions }
      throw error
    }
    const next: ShardState = { step: t, ...result, gradsHash }
    if ((await cells.advance(shard, current, next)) === 'applied')
      return { outcome: 'updates', updates: next.updates }

    // Another request stored a step in between: answer as a retry would be answered now.
    const now = await cells.read(shard)
    if (now?.step === t) return replay(now)
    // No shard at all: the session was deleted since the caller found it.
    if (now === undefined && !(await cells.exists())) return { outcome: 'gone' }
    return { outcome: 'conflict', current: now?.step ?? 0 }
  })
}

/**
 * Runs a session's shard steps with `compute` under `target`, each whole step one at a time in
 * `lane` (a Lane, or a request's compute-queue ticket, whose turns are fair across clients).
 */
export function shardCompute(
  compute: Compute,
  target: Target,
  session: SessionRecord,
  lane: { run<T>(task: () => Promise<T>): Promise<T> },
): ShardCompute {
  return {
    async step(state, grads) {
      // An F32 state a store read is this step's own copy: step it in place (no 2 MB zeroed array
      // per shard, and less garbage), as the stateless binary step steps its request's buffer.
      const out =
        state?.dtype === 'F32' && session.stateDtype === 'F32'
          ? { updates: new Float32Array(grads.length), state }
          : newStepOutput(grads.length, session.stateSize, session.stateDtype)
      await runStep(compute, target, grads, state, out)
      return out
    },
    exclusive: (task) => lane.run(task),
  }
}
