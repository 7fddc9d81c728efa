import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import {
  decode,
  encode,
  encodeHeader,
  SafetensorsError,
  type SafetensorsErrorCode,
  type Tensor,
} from './codec'
import { f32ToBf16, f32ToF16 } from './float16'

const enc = new TextEncoder()

/** A file built by hand from a header object and a data section, exactly as the spec lays it out. */
function rawFile(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  headerLength?: number | bigint,
): Uint8Array {
  const json = enc.encode(typeof header === 'string' ? header : JSON.stringify(header))
  const out = new Uint8Array(8 + json.length + data.length)
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true)
  out.set(json, 8)
  out.set(data, 8 + json.length)
  return out
}

function expectCode(fn: () => unknown, code: SafetensorsErrorCode, message?: RegExp): SafetensorsError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(SafetensorsError)
    const e = error as SafetensorsError
    expect(e.code, e.message).toBe(code)
    if (message) expect(e.message).toMatch(message)
    return e
  }
  throw new Error(`expected SafetensorsError ${code}, nothing was thrown`)
}

const f32 = (shape: number[], values: number[]): Tensor => ({
  dtype: 'F32',
  shape,
  data: new Float32Array(values),
})

describe('encode/decode round trip', () => {
  it('round-trips every dtype, scalars and zero-length tensors, with metadata', () => {
    const tensors: Record<string, Tensor> = {
      matrix: f32([2, 3], [1, 2, 3, 4, 5, 6.5]),
      scalar: f32([], [Math.PI]),
      empty: f32([0], []),
      empty2d: f32([3, 0], []),
      half: { dtype: 'F16', shape: [3], data: f32ToF16(new Float32Array([1, -2, 0.5])) },
      brain: { dtype: 'BF16', shape: [1, 1], data: f32ToBf16(new Float32Array([3])) },
      oddHalf: { dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
      emptyHalf: { dtype: 'BF16', shape: [0, 4], data: new Uint16Array(0) },
    }
    const bytes = encode(tensors, { format: 'l2o/1', note: 'héllo ✓' })
    const file = decode(bytes)
    expect(file.metadata).toEqual({ format: 'l2o/1', note: 'héllo ✓' })
    expect([...file.tensors.keys()].sort()).toEqual(Object.keys(tensors).sort())
    for (const [name, t] of Object.entries(tensors)) {
      const got = file.tensors.get(name)!
      expect(got.dtype).toBe(t.dtype)
      expect(got.shape).toEqual(t.shape)
      expect(got.data.constructor).toBe(t.data.constructor)
      expect([...got.data]).toEqual([...t.data])
    }
  })

  it('accepts a Map as well as a record, and omits __metadata__ when none is given', () => {
    const bytes = encode(new Map([['x', f32([1], [7])]]))
    const file = decode(bytes)
    expect(file.metadata).toBeUndefined()
    expect([...file.tensors.get('x')!.data]).toEqual([7])
    expect(new TextDecoder().decode(bytes)).not.toContain('__metadata__')
  })

  it('round-trips an empty file', () => {
    const file = decode(encode({}))
    expect(file.tensors.size).toBe(0)
  })

  it('keeps odd names, including "__proto__", as ordinary keys', () => {
    const bytes = encode(
      new Map([
        ['__proto__', f32([1], [1])],
        ['a.b/c d', f32([1], [2])],
      ]),
      Object.fromEntries([['__proto__', 'm']]),
    )
    const file = decode(bytes)
    expect([...file.tensors.get('__proto__')!.data]).toEqual([1])
    expect(Object.getPrototypeOf(file.metadata)).toBe(Object.prototype)
    expect(Object.keys(file.metadata!)).toEqual(['__proto__'])
  })

  it('writes the standard layout byte for byte (what the reference library writes)', () => {
    const bytes = encode({ a: f32([2], [1, 2]) }, { format: 'pt' })
    const json = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8)
    const expected = rawFile(padded, new Uint8Array(new Float32Array([1, 2]).buffer))
    expect([...bytes]).toEqual([...expected])
  })

  it('reads a hand-made file whose header is not padded and lists tensors out of order', () => {
    const data = new Uint8Array(new Float32Array([5, 6, 7]).buffer)
    const header = {
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    }
    const file = decode(rawFile(header, data))
    expect([...file.tensors.get('a')!.data]).toEqual([5, 6])
    expect([...file.tensors.get('b')!.data]).toEqual([7])
  })
})

describe('alignment', () => {
  it('pads the header so the data section starts at a multiple of 8, F32 before 16-bit tensors', () => {
    const bytes = encode({
      a16: { dtype: 'F16', shape: [3], data: new Uint16Array(3) },
      b32: f32([3], [1, 2, 3]),
      c16: { dtype: 'BF16', shape: [1], data: new Uint16Array(1) },
      d32: f32([1], [4]),
    })
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true))
    expect((8 + n) % 8).toBe(0)
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)))
    expect(header.b32.data_offsets).toEqual([0, 12])
    expect(header.d32.data_offsets).toEqual([12, 16])
    expect(header.a16.data_offsets).toEqual([16, 22])
    expect(header.c16.data_offsets).toEqual([22, 24])
    expect(Object.keys(header)).toEqual(['a16', 'b32', 'c16', 'd32'])
  })

  it('encodeHeader frames what encode writes before the data, for a writer that streams the data', () => {
    const x = f32([2], [1, 2])
    const bytes = encode({ x }, { b: '2', a: '1' })
    const header = encodeHeader([{ name: 'x', dtype: 'F32', shape: [2], begin: 0, end: 8 }], {
      a: '1',
      b: '2',
    })
    expect(header.length % 8).toBe(0)
    expect(bytes.subarray(0, header.length)).toEqual(header)
    expect(bytes.length).toBe(header.length + 8)
  })

  it('returns zero-copy views into the input when offsets are aligned', () => {
    const bytes = encode({
      odd16: { dtype: 'F16', shape: [3], data: new Uint16Array([1, 2, 3]) },
      w: f32([5], [1, 2, 3, 4, 5]),
      z: { dtype: 'BF16', shape: [2], data: new Uint16Array([4, 5]) },
    })
    const file = decode(bytes)
    for (const t of file.tensors.values()) expect(t.data.buffer).toBe(bytes.buffer)
  })

  it('copies when the input is not aligned, with the same values', () => {
    const bytes = encode({
      w: f32([2], [1.5, -2]),
      h: { dtype: 'F16', shape: [1], data: new Uint16Array([9]) },
    })
    const shifted = new Uint8Array(bytes.length + 1)
    shifted.set(bytes, 1)
    const file = decode(shifted.subarray(1))
    const w = file.tensors.get('w')!
    expect(w.data.buffer).not.toBe(shifted.buffer)
    expect([...w.data]).toEqual([1.5, -2])
    expect([...file.tensors.get('h')!.data]).toEqual([9])
  })

  it('copies a misaligned F32 tensor in a hand-made file that puts a 16-bit tensor first', () => {
    const data = new Uint8Array(6)
    new DataView(data.buffer).setFloat32(2, 42, true)
    const file = decode(
      rawFile(
        {
          h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] },
          f: { dtype: 'F32', shape: [1], data_offsets: [2, 6] },
        },
        data,
      ),
    )
    expect([...file.tensors.get('f')!.data]).toEqual([42])
  })
})

describe('decode refuses malformed files with one error class and a stable code', () => {
  const good = () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8))

  it('truncated: fewer than 8 bytes, header past the end, data past the end', () => {
    expectCode(() => decode(new Uint8Array(3)), 'truncated')
    const bytes = good()
    expectCode(() => decode(bytes.subarray(0, 20)), 'truncated', /needs/)
    expectCode(() => decode(bytes.subarray(0, bytes.length - 1)), 'out_of_bounds', /"a"/)
  })

  it('header_too_large: a 2^60 header length is refused before anything is allocated', () => {
    expectCode(() => decode(rawFile({}, undefined, 2n ** 60n)), 'header_too_large', /2\^60/)
    expectCode(() => decode(rawFile({}, undefined, 2 ** 20 + 1)), 'header_too_large')
    expectCode(() => decode(rawFile({}, undefined, 100), { maxHeaderBytes: 50 }), 'header_too_large')
  })

  it('invalid_header_json: bad UTF-8, bad JSON, BOM, not an object', () => {
    const bad = rawFile('{}')
    bad[9] = 0xff
    expectCode(() => decode(bad), 'invalid_header_json', /UTF-8/)
    expectCode(() => decode(rawFile('{"a":')), 'invalid_header_json')
    expectCode(() => decode(rawFile('\ufeff{}')), 'invalid_header_json')
    expectCode(() => decode(rawFile('[1]')), 'invalid_header_json')
    expectCode(() => decode(rawFile(' {}')), 'invalid_header_json')
    expectCode(() => decode(rawFile('')), 'invalid_header_json')
  })

  it('accepts trailing spaces after the JSON (padding)', () => {
    expect(decode(rawFile('{}      ')).tensors.size).toBe(0)
  })

  it('invalid_header: bad tensor entries and metadata', () => {
    const t = (info: unknown) => rawFile({ a: info })
    expectCode(() => decode(t({ dtype: 'F32', shape: [-1], data_offsets: [0, 0] })), 'invalid_header', /"a"/)
    expectCode(() => decode(t({ dtype: 'F32', shape: [1.5], data_offsets: [0, 0] })), 'invalid_header')
    expectCode(() => decode(t({ dtype: 'F32', shape: [2 ** 53], data_offsets: [0, 0] })), 'invalid_header')
    expectCode(() => decode(t({ dtype: 'F32', shape: '1', data_offsets: [0, 0] })), 'invalid_header')
    expectCode(() => decode(t({ dtype: 'F32', shape: [], data_offsets: [0] })), 'invalid_header')
    expectCode(() => decode(t({ dtype: 'F32', shape: [] })), 'invalid_header')
    expectCode(() => decode(t({ dtype: 'F32', shape: [0], data_offsets: [0, 0], x: 1 })), 'invalid_header')
    expectCode(() => decode(t(7)), 'invalid_header')
    expectCode(
      () => decode(rawFile({ '': { dtype: 'F32', shape: [0], data_offsets: [0, 0] } })),
      'invalid_header',
    )
    expectCode(() => decode(rawFile({ __metadata__: { a: 1 } })), 'invalid_header', /__metadata__/)
    expectCode(() => decode(rawFile({ __metadata__: ['x'] })), 'invalid_header')
    expect(decode(rawFile({ __metadata__: null })).metadata).toBeUndefined()
  })

  it('unsupported_dtype: known and unknown dtypes are named', () => {
    const t = (dtype: string) =>
      rawFile({ a: { dtype, shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8))
    expectCode(() => decode(t('F64')), 'unsupported_dtype', /"a".*F64.*supported: F32, F16, BF16/)
    expectCode(() => decode(t('I8')), 'unsupported_dtype')
    expectCode(() => decode(t('f32')), 'unsupported_dtype', /not a safetensors dtype/)
  })

  it('size_mismatch: shape and offsets disagree, including huge products', () => {
    const t = (shape: number[]) =>
      rawFile({ a: { dtype: 'F32', shape, data_offsets: [0, 8] } }, new Uint8Array(8))
    expectCode(() => decode(t([3])), 'size_mismatch', /"a".*\[3\]/)
    expectCode(() => decode(t([1])), 'size_mismatch')
    expectCode(() => decode(t([2 ** 52, 2 ** 52, 2 ** 52])), 'size_mismatch')
    expectCode(() => decode(t([0])), 'size_mismatch')
    expect(decode(t([2, 1, 1])).tensors.get('a')!.shape).toEqual([2, 1, 1])
    const half = rawFile({ a: { dtype: 'BF16', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8))
    expectCode(() => decode(half), 'size_mismatch')
  })

  it('out_of_bounds: begin after end, end past the data section', () => {
    const t = (o: number[]) =>
      rawFile({ a: { dtype: 'F32', shape: [0], data_offsets: o } }, new Uint8Array(8))
    expectCode(() => decode(t([8, 4])), 'out_of_bounds', /begin > end/)
    expectCode(() => decode(t([9, 9])), 'out_of_bounds', /past the data section/)
  })

  it('overlapping: two tensors share bytes, naming both', () => {
    const bytes = rawFile(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      },
      new Uint8Array(12),
    )
    expectCode(() => decode(bytes), 'overlapping', /"b".*"a"/)
    const same = rawFile(
      {
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        b: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      },
      new Uint8Array(4),
    )
    expectCode(() => decode(same), 'overlapping')
    const inside = rawFile(
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        z: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      },
      new Uint8Array(8),
    )
    expectCode(() => decode(inside), 'overlapping')
  })

  it('gap: a hole between tensors, before the first, or after the last', () => {
    const hole = rawFile(
      {
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
      },
      new Uint8Array(12),
    )
    expectCode(() => decode(hole), 'gap', /\[4, 8\).*"b"/)
    const lead = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8))
    expectCode(() => decode(lead), 'gap')
    const trailing = rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(6))
    expectCode(() => decode(trailing), 'gap', /after the last tensor/)
    expectCode(() => decode(rawFile({}, new Uint8Array(1))), 'gap')
  })

  it('zero-length tensors may sit anywhere on a tensor boundary', () => {
    const bytes = rawFile(
      {
        z0: { dtype: 'F32', shape: [0], data_offsets: [0, 0] },
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        z1: { dtype: 'F16', shape: [5, 0], data_offsets: [4, 4] },
        z2: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      },
      new Uint8Array(4),
    )
    expect(decode(bytes).tensors.size).toBe(4)
  })

  it('limit_exceeded: total bytes, tensor count, element count', () => {
    const bytes = encode({ a: f32([2], [1, 2]), b: f32([3], [1, 2, 3]) })
    expectCode(() => decode(bytes, { maxTotalBytes: bytes.length - 1 }), 'limit_exceeded')
    expectCode(() => decode(bytes, { maxTensors: 1 }), 'limit_exceeded', /tensors/)
    expectCode(() => decode(bytes, { maxElements: 4 }), 'limit_exceeded', /elements/)
    expect(decode(bytes, { maxTotalBytes: bytes.length, maxTensors: 2, maxElements: 5 }).tensors.size).toBe(2)
  })

  it('invalid_input: something other than a Uint8Array', () => {
    expectCode(() => decode('abc' as unknown as Uint8Array), 'invalid_input')
    expectCode(() => decode(new Uint16Array(8) as unknown as Uint8Array), 'invalid_input')
  })

  it('accepts a Uint8Array from another realm', () => {
    const bytes = encode({ a: f32([1], [3]) })
    const foreign = runInNewContext('new Uint8Array(n)', { n: bytes.length }) as Uint8Array
    foreign.set(bytes)
    expect(foreign instanceof Uint8Array).toBe(false)
    expect([...decode(foreign).tensors.get('a')!.data]).toEqual([3])
  })

  it('stays fast on a header of 20,000 tensors (no quadratic work)', () => {
    const header: Record<string, unknown> = {}
    const n = 20_000
    // Listed in reverse so the coverage check must sort.
    for (let i = n - 1; i >= 0; i--)
      header[`t${i}`] = { dtype: 'F16', shape: [1], data_offsets: [2 * i, 2 * i + 2] }
    const bytes = rawFile(header, new Uint8Array(2 * n))
    const start = performance.now()
    expect(decode(bytes, { maxHeaderBytes: 1 << 22 }).tensors.size).toBe(n)
    expect(performance.now() - start).toBeLessThan(1000)
  })

  it('survives deeply nested JSON in the header', () => {
    const deep = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`
    expectCode(() => decode(rawFile(deep)), 'invalid_header')
    const unclosed = `{"a":${'['.repeat(500_000)}`
    expectCode(() => decode(rawFile(unclosed)), 'invalid_header_json')
  })
})

describe('encode refuses malformed tensors', () => {
  it('checks names, dtypes, data types and lengths', () => {
    expectCode(() => encode({ '': f32([0], []) }), 'invalid_tensor')
    expectCode(() => encode({ __metadata__: f32([0], []) }), 'invalid_tensor')
    expectCode(() => encode({ a: f32([3], [1, 2]) }), 'size_mismatch', /"a"/)
    expectCode(() => encode({ a: f32([-1], []) }), 'invalid_tensor')
    expectCode(
      () => encode({ a: { dtype: 'F16', shape: [1], data: new Float32Array(1) } as unknown as Tensor }),
      'invalid_tensor',
    )
    expectCode(
      () => encode({ a: { dtype: 'F64', shape: [1], data: new Float32Array(1) } as unknown as Tensor }),
      'invalid_tensor',
    )
    expectCode(() => encode({}, { a: 1 } as unknown as Record<string, string>), 'invalid_tensor')
  })

  it('writes subarray views from their own offset, not the start of their buffer', () => {
    const backing = new Float32Array([9, 9, 1, 2, 9])
    const bytes = encode({ a: { dtype: 'F32', shape: [2], data: backing.subarray(2, 4) } })
    expect([...decode(bytes).tensors.get('a')!.data]).toEqual([1, 2])
  })
})

describe('error messages stay short on hostile headers', () => {
  it('cuts long names, dtypes and shapes', () => {
    const longName = 'n'.repeat(10_000)
    const shape = Array.from({ length: 100_000 }, () => 1)
    const e1 = expectCode(
      () => decode(rawFile({ [longName]: { dtype: 'F32', shape, data_offsets: [0, 8] } }, new Uint8Array(8))),
      'size_mismatch',
      /100000 dims/,
    )
    expect(e1.message.length).toBeLessThan(400)
    const e2 = expectCode(
      () => decode(rawFile({ a: { dtype: 'X'.repeat(10_000), shape: [], data_offsets: [0, 0] } })),
      'unsupported_dtype',
    )
    expect(e2.message.length).toBeLessThan(400)
  })
})
