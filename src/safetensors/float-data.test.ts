import { describe, expect, it } from 'vitest'
import { bytesOf, fromFloat32, sliceRows, tensorOf, toFloat32, zerosOf } from './float-data'
import { f16ToF32, f32ToF16 } from './float16'

describe('float data', () => {
  it('toFloat32 returns F32 data as is and widens 16-bit data', () => {
    const data = new Float32Array([1, 2])
    expect(toFloat32({ dtype: 'F32', data })).toBe(data)
    expect([...toFloat32({ dtype: 'F16', data: new Uint16Array([0x3c00]) })]).toEqual([1])
    expect([...toFloat32({ dtype: 'BF16', data: new Uint16Array([0x3f80]) })]).toEqual([1])
  })

  it('tensorOf narrows to the requested dtype', () => {
    const values = new Float32Array([1, -2])
    expect(tensorOf('F32', [2], values).data).toBe(values)
    expect([...tensorOf('F16', [2], values).data]).toEqual([0x3c00, 0xc000])
    expect([...tensorOf('BF16', [2], values).data]).toEqual([0x3f80, 0xc000])
    expect(tensorOf('F16', [2, 1], values).shape).toEqual([2, 1])
  })

  it('fromFloat32 saturates finite values beyond F16 at ±65504, where a plain F16 rounding overflows', () => {
    const values = Float32Array.from([1e6, -1e20, 65504, 65519, 65520, 0.5, -3.4e38])
    const f16 = fromFloat32('F16', values)
    expect(Array.from(toFloat32(f16))).toEqual([65504, -65504, 65504, 65504, 65504, 0.5, -65504])
    expect(Array.from(f16ToF32(f32ToF16(values)))).toContain(Number.POSITIVE_INFINITY)
    // BF16 has float32's range.
    expect(Array.from(toFloat32(fromFloat32('BF16', Float32Array.of(1e20)))).every(Number.isFinite)).toBe(
      true,
    )
  })

  it('sliceRows views rows [begin, end) of the same memory in the same dtype', () => {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const all = fromFloat32(dtype, new Float32Array([1, 2, 3, 4, 5, 6]))
      const rows = sliceRows(all, 2, 1, 3)
      expect(rows.dtype).toBe(dtype)
      expect([...toFloat32(rows)]).toEqual([3, 4, 5, 6])
      expect(rows.data.buffer).toBe(all.data.buffer)
    }
  })

  it('zerosOf makes zeros of a dtype, and bytesOf views their bytes', () => {
    expect(zerosOf('F32', 3).data).toEqual(new Float32Array(3))
    expect(zerosOf('BF16', 3).data).toEqual(new Uint16Array(3))
    const half = zerosOf('F16', 3)
    expect(bytesOf(half).byteLength).toBe(6)
    expect(bytesOf(half).buffer).toBe(half.data.buffer)
  })
})
