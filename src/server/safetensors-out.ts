/**
 * Allocates a safetensors response whose tensors are filled in afterwards, so the optimizer's
 * output is written straight into the response bytes instead of being encoded from a second copy
 * (a 65,536-coordinate state is 21 MB). Same layout as the codec's `encode`: header padded to a
 * multiple of 8, F32 tensors first, then 16-bit ones, each group by name; byte-identical output.
 */
import type { Dtype } from '../weights'
import { allocateBytes } from './large-buffer'

/** A tensor to allocate. */
export interface TensorSpec {
  name: string
  dtype: Dtype
  shape: number[]
}

/** The response bytes and a writable typed-array view of each tensor. */
export interface AllocatedSafetensors {
  bytes: Uint8Array
  views: Map<string, Float32Array | Uint16Array>
}

const itemsize: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 }
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Lays out the tensors and metadata; the data section starts zeroed. */
export function allocateSafetensors(
  specs: TensorSpec[],
  metadata: Record<string, string>,
): AllocatedSafetensors {
  const sized = specs.map((s) => ({
    ...s,
    byteLength: s.shape.reduce((a, b) => a * b, 1) * itemsize[s.dtype],
  }))
  const layout = [...sized].sort((a, b) => itemsize[b.dtype] - itemsize[a.dtype] || byName(a.name, b.name))
  const offsets = new Map<string, [number, number]>()
  let dataLength = 0
  for (const t of layout) {
    offsets.set(t.name, [dataLength, dataLength + t.byteLength])
    dataLength += t.byteLength
  }
  const header: Record<string, unknown> = {
    __metadata__: Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => byName(a, b))),
  }
  for (const t of [...sized].sort((a, b) => byName(a.name, b.name))) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: offsets.get(t.name) }
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const headerLength = Math.ceil(json.length / 8) * 8
  const dataStart = 8 + headerLength
  const bytes = allocateBytes(dataStart + dataLength)
  new DataView(bytes.buffer).setUint32(0, headerLength, true)
  bytes.set(json, 8)
  bytes.fill(0x20, 8 + json.length, dataStart)
  const views = new Map<string, Float32Array | Uint16Array>()
  for (const t of sized) {
    const [begin] = offsets.get(t.name)!
    const count = t.byteLength / itemsize[t.dtype]
    views.set(
      t.name,
      t.dtype === 'F32'
        ? new Float32Array(bytes.buffer, dataStart + begin, count)
        : new Uint16Array(bytes.buffer, dataStart + begin, count),
    )
  }
  return { bytes, views }
}
