/**
 * The binary step answer as a stream: header, then the state's rows in order as each optimizer
 * call produces them, then the updates. Writing rows as they are computed overlaps the response
 * with the math and keeps no second copy of a 21 MB state. State comes before updates (the
 * updates are complete only at the end); safetensors readers take tensors in any order.
 */
import type { StateDtype } from '../contract'

const itemsize: Record<StateDtype, number> = { F32: 4, F16: 2, BF16: 2 }

/** The header of a `{ state [n, s] dtype, updates F32 [n] }` file, and where its parts go. */
export interface StepAnswerLayout {
  /** 8-byte length, then the JSON header padded with spaces to a multiple of 8. */
  header: Uint8Array
  stateBytes: number
  updatesBytes: number
  /** Bytes of the whole file. */
  totalBytes: number
}

/** Lays out a binary step answer. */
export function stepAnswerLayout(
  n: number,
  stateSize: number,
  dtype: StateDtype,
  metadata: Record<string, string>,
): StepAnswerLayout {
  const stateBytes = n * stateSize * itemsize[dtype]
  const updatesBytes = 4 * n
  const sorted = Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  const json = new TextEncoder().encode(
    JSON.stringify({
      __metadata__: sorted,
      state: { dtype, shape: [n, stateSize], data_offsets: [0, stateBytes] },
      updates: { dtype: 'F32', shape: [n], data_offsets: [stateBytes, stateBytes + updatesBytes] },
    }),
  )
  const headerLength = Math.ceil(json.length / 8) * 8
  const header = new Uint8Array(8 + headerLength)
  new DataView(header.buffer).setUint32(0, headerLength, true)
  header.set(json, 8)
  header.fill(0x20, 8 + json.length)
  return { header, stateBytes, updatesBytes, totalBytes: header.length + stateBytes + updatesBytes }
}
