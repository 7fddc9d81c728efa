/**
 * The binary step answer as a stream: header, then the state's rows in order as each optimizer
 * call produces them, then the updates. Writing rows as they are computed overlaps the response
 * with the math and keeps no second copy of a 21 MB state. State comes before updates (the
 * updates are complete only at the end); safetensors readers take tensors in any order.
 */
import { tensorNames } from '../contract'
import { type Dtype, encodeHeader, ITEMSIZE } from '../safetensors'

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
  dtype: Dtype,
  metadata: Record<string, string>,
): StepAnswerLayout {
  const stateBytes = n * stateSize * ITEMSIZE[dtype]
  const updatesBytes = ITEMSIZE.F32 * n
  const header = encodeHeader(
    [
      { name: tensorNames.state, dtype, shape: [n, stateSize], begin: 0, end: stateBytes },
      {
        name: tensorNames.updates,
        dtype: 'F32',
        shape: [n],
        begin: stateBytes,
        end: stateBytes + updatesBytes,
      },
    ],
    metadata,
  )
  return { header, stateBytes, updatesBytes, totalBytes: header.length + stateBytes + updatesBytes }
}
