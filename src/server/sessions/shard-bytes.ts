/**
 * A shard as every store keeps it: its state and its last updates as little-endian blobs, and the
 * hash of the gradients its last step was sent.
 */
import { bytesOf, type FloatData, ITEMSIZE } from '../../safetensors'
import { shardRange } from './shards'
import type { SessionRecord, ShardState } from './store'

/** A shard's stored row (step and blobs) as a ShardState, checking the state's size. */
export function storedShard(
  session: SessionRecord,
  shard: number,
  row: { step: number; state: Uint8Array; updates: Uint8Array; gradsHash: string | null },
): ShardState {
  const elements = shardRange(session, shard).length * session.stateSize
  return {
    step: row.step,
    state: stateFrom(row.state, session, elements),
    updates: f32View(row.updates),
    gradsHash: row.gradsHash,
  }
}

/** The columns a ShardState is stored as, after its step: its blobs and its gradients' hash. */
export function shardBlobs(next: ShardState): {
  state: Uint8Array
  updates: Uint8Array
  gradsHash: string | null
} {
  return { state: bytesOf(next.state), updates: bytesOf(next.updates), gradsHash: next.gradsHash }
}

/** A stored F32 blob as a Float32Array (a view when aligned). */
function f32View(bytes: Uint8Array): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice()
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4)
}

function stateFrom(bytes: Uint8Array, session: SessionRecord, elements: number): FloatData {
  const dtype = session.stateDtype
  if (bytes.byteLength !== elements * ITEMSIZE[dtype]) {
    throw new Error(
      `stored shard state has ${bytes.byteLength} bytes, expected ${elements * ITEMSIZE[dtype]}`,
    )
  }
  if (dtype === 'F32') return { dtype, data: f32View(bytes) }
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice()
  return { dtype, data: new Uint16Array(aligned.buffer, aligned.byteOffset, elements) }
}
