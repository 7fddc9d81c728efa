/** How a session's coordinates are split into shards, and the session as the API shows it. */
import { maxRowBytes, type Session, type StateDtype, type StepRun } from '../../contract'
import { ITEMSIZE } from '../../safetensors'
import type { SessionRecord } from './store'

/** Bytes of a shard row kept free for everything but its two blobs. */
const shardRowMarginBytes = 4096

/**
 * Coordinates per shard: at most the per-request limit, and few enough that the shard's state and
 * its last updates fit one row: length·(S·bytes(dtype) + 4) ≤ maxRowBytes − margin.
 */
export function shardSizeFor(stateSize: number, dtype: StateDtype, maxCoordinatesPerRequest: number): number {
  const perCoordinate = stateSize * ITEMSIZE[dtype] + ITEMSIZE.F32
  return Math.max(
    1,
    Math.min(maxCoordinatesPerRequest, Math.floor((maxRowBytes - shardRowMarginBytes) / perCoordinate)),
  )
}

/** A session's layout: how many coordinates, in shards of how many. */
export type ShardLayout = Pick<SessionRecord, 'numParams' | 'shardSize'>

/** Number of shards of a session. */
export function shardCount(session: ShardLayout): number {
  return Math.ceil(session.numParams / session.shardSize)
}

/** The coordinates [offset, offset + length) of shard `index`. */
export function shardRange(session: ShardLayout, index: number): { offset: number; length: number } {
  const offset = index * session.shardSize
  return { offset, length: Math.min(session.shardSize, session.numParams - offset) }
}

/**
 * The session as the API shows it, with each shard's step count (`steps`, by shard; absent means
 * 0) as runs of equal steps: its size follows the shards stepped, not the shards.
 */
export function describeSession(session: SessionRecord, steps: ReadonlyMap<number, number>): Session {
  const count = shardCount(session)
  const runs: StepRun[] = []
  const add = (first: number, last: number, step: number) => {
    const previous = runs.at(-1)
    if (previous !== undefined && previous.step === step && previous.last === first - 1) previous.last = last
    else runs.push({ first, last, step })
  }
  let next = 0
  for (const [index, step] of [...steps].sort(([a], [b]) => a - b)) {
    if (index < next || index >= count) continue
    if (index > next) add(next, index - 1, 0)
    add(index, index, step)
    next = index + 1
  }
  if (next < count) add(next, count - 1, 0)
  return {
    id: session.id,
    optimizer: session.optimizer,
    digest: session.digest,
    numParams: session.numParams,
    stateDtype: session.stateDtype,
    stateSize: session.stateSize,
    shardSize: session.shardSize,
    shardCount: count,
    steps: runs,
    createdAt: session.createdAt,
  }
}
