/** How a session's coordinates are split into shards, and the session as the API shows it. */
import { maxRowBytes, type Session, type StateDtype } from '../../contract'
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

/** The session as the API shows it, with each shard's step count (`steps`; absent means 0). */
export function describeSession(session: SessionRecord, steps: ReadonlyMap<number, number>): Session {
  const shards = Array.from({ length: shardCount(session) }, (_, index) => ({
    index,
    ...shardRange(session, index),
    step: steps.get(index) ?? 0,
  }))
  return {
    id: session.id,
    optimizer: session.optimizer,
    digest: session.digest,
    numParams: session.numParams,
    stateDtype: session.stateDtype,
    stateSize: session.stateSize,
    shardSize: session.shardSize,
    shards,
    createdAt: session.createdAt,
  }
}
