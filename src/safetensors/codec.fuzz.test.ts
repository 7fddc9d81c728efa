// Fuzzing the codec: decode is fed to hostile clients over HTTP, so for any input it must either
// succeed with self-consistent tensors or throw SafetensorsError; never another exception, never a
// slow case. Each case is timed: a hang or a super-linear path shows up as a failing case.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decode, encode, SafetensorsError, type Tensor } from './codec'

const CODES = new Set([
  'invalid_input',
  'truncated',
  'header_too_large',
  'limit_exceeded',
  'invalid_header_json',
  'invalid_header',
  'unsupported_dtype',
  'size_mismatch',
  'out_of_bounds',
  'overlapping',
  'gap',
])
// Generous for a file of a few KiB that decodes in microseconds, tight enough to catch a hang.
const MAX_CASE_MS = 250

const enc = new TextEncoder()
const dec = new TextDecoder()

/** Decodes and checks the outcome; returns whether it succeeded. */
function decodeChecked(bytes: Uint8Array): boolean {
  const start = performance.now()
  let ok = false
  try {
    const file = decode(bytes)
    ok = true
    for (const [name, t] of file.tensors) {
      expect(name.length).toBeGreaterThan(0)
      expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1))
      expect(t.data instanceof (t.dtype === 'F32' ? Float32Array : Uint16Array)).toBe(true)
    }
    // What decode accepts, encode writes back, and decode reads back to the same tensors.
    const again = decode(encode(file.tensors, file.metadata))
    expect(again.metadata).toEqual(file.metadata)
    expect(again.tensors.size).toBe(file.tensors.size)
    for (const [name, t] of file.tensors) {
      const u = again.tensors.get(name)!
      expect([u.dtype, u.shape]).toEqual([t.dtype, t.shape])
      expect(new Uint8Array(u.data.buffer, u.data.byteOffset, u.data.byteLength)).toEqual(
        new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      )
    }
  } catch (error) {
    if (!(error instanceof SafetensorsError)) throw error
    expect(CODES.has(error.code), error.code).toBe(true)
    expect(error.message.length).toBeGreaterThan(0)
  }
  const ms = performance.now() - start
  if (ms > MAX_CASE_MS) throw new Error(`decode took ${ms.toFixed(0)} ms on a ${bytes.length}-byte input`)
  return ok
}

const nameArb = fc.oneof(
  fc.constantFrom('w', 'state', 'grads', 'cells.0.weight_ih', 'head.bias', '__proto__', 'a b', 'ü'),
  fc.string({ minLength: 1, maxLength: 6 }),
)
const dimArb = fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constant(1))
const tensorArb: fc.Arbitrary<Tensor> = fc
  .record({ dtype: fc.constantFrom('F32', 'F16', 'BF16'), shape: fc.array(dimArb, { maxLength: 3 }) })
  .chain(({ dtype, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1)
    return dtype === 'F32'
      ? fc
          .array(fc.float(), { minLength: n, maxLength: n })
          .map((v): Tensor => ({ dtype: 'F32', shape, data: new Float32Array(v) }))
      : fc
          .array(fc.integer({ min: 0, max: 0xffff }), { minLength: n, maxLength: n })
          .map((v): Tensor => ({ dtype: dtype as 'F16' | 'BF16', shape, data: new Uint16Array(v) }))
  })
const metadataArb = fc.option(
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
  {
    nil: undefined,
  },
)
const validFileArb = fc
  .record({ tensors: fc.dictionary(nameArb, tensorArb, { maxKeys: 5 }), metadata: metadataArb })
  .map(({ tensors, metadata }) => encode(new Map(Object.entries(tensors)), metadata))

function split(bytes: Uint8Array): { header: string; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true))
  return { header: dec.decode(bytes.subarray(8, 8 + n)), data: bytes.subarray(8 + n) }
}

function join(header: string, data: Uint8Array, headerLength?: bigint): Uint8Array {
  const json = enc.encode(header)
  const out = new Uint8Array(8 + json.length + data.length)
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true)
  out.set(json, 8)
  out.set(data, 8 + json.length)
  return out
}

// A JSON value that is wrong in an interesting way wherever it lands.
const weirdValue = fc.oneof(
  fc.integer({ min: -3, max: 40 }),
  fc.constantFrom(
    -1,
    0.5,
    2 ** 53,
    2 ** 64,
    1e308,
    -0,
    null,
    true,
    '8',
    [],
    {},
    [1, 2, 3],
    'F32',
    'F64',
    'I8',
    '',
  ),
  fc.jsonValue({ maxDepth: 2 }),
)

type Edit = (header: Record<string, unknown>) => void
// Each edit inserts its own copy of a generated value: two edits sharing one object could otherwise
// build a cycle (an entry whose shape is itself), which no JSON text can express.
const jsonEditArb: fc.Arbitrary<Edit> = fc.oneof(
  fc
    .record({
      which: fc.nat(),
      field: fc.constantFrom('dtype', 'shape', 'data_offsets', 'extra'),
      value: weirdValue,
    })
    .map(({ which, field, value }) => (h: Record<string, unknown>) => {
      const names = Object.keys(h).filter((k) => k !== '__metadata__')
      if (names.length === 0) return
      const info = h[names[which % names.length]] as Record<string, unknown>
      if (typeof info === 'object' && info !== null) info[field] = structuredClone(value)
    }),
  fc
    .record({ which: fc.nat(), slot: fc.nat(3), delta: fc.integer({ min: -9, max: 9 }) })
    .map(({ which, slot, delta }) => (h: Record<string, unknown>) => {
      const names = Object.keys(h).filter((k) => k !== '__metadata__')
      if (names.length === 0) return
      const info = h[names[which % names.length]] as { shape?: unknown; data_offsets?: unknown } | null
      const arr = slot < 2 ? info?.data_offsets : info?.shape
      if (Array.isArray(arr) && arr.length > 0) arr[slot % arr.length] += delta
    }),
  fc.record({ a: fc.nat(), b: fc.nat() }).map(({ a, b }) => (h: Record<string, unknown>) => {
    const names = Object.keys(h).filter((k) => k !== '__metadata__')
    if (names.length < 2) return
    const x = h[names[a % names.length]] as { data_offsets?: unknown } | null
    const y = h[names[b % names.length]] as { data_offsets?: unknown } | null
    if (typeof x === 'object' && x !== null && typeof y === 'object' && y !== null) {
      ;[x.data_offsets, y.data_offsets] = [y.data_offsets, x.data_offsets]
    }
  }),
  fc.nat().map((which) => (h: Record<string, unknown>) => {
    const names = Object.keys(h)
    if (names.length > 0) delete h[names[which % names.length]]
  }),
  fc.tuple(nameArb, weirdValue).map(([name, value]) => (h: Record<string, unknown>) => {
    Object.defineProperty(h, name, {
      value: structuredClone(value),
      enumerable: true,
      configurable: true,
      writable: true,
    })
  }),
  weirdValue.map((value) => (h: Record<string, unknown>) => {
    h.__metadata__ = structuredClone(value)
  }),
)

describe('decode under fuzzing: succeeds consistently or throws SafetensorsError, quickly', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        decodeChecked(bytes)
      }),
      { numRuns: 3000 },
    )
  })

  it('random bytes behind a plausible header length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(310), (body, n) => {
        const bytes = new Uint8Array(8 + body.length)
        new DataView(bytes.buffer).setUint32(0, n, true)
        bytes.set(body, 8)
        if (body.length > 0) bytes[8] = 0x7b // '{', to get past the first check more often
        decodeChecked(bytes)
      }),
      { numRuns: 3000 },
    )
  })

  it('arbitrary JSON headers over random data', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.uint8Array({ maxLength: 64 }), (json, data) => {
        decodeChecked(join(JSON.stringify(json) ?? 'null', data))
      }),
      { numRuns: 2000 },
    )
  })

  it('valid files decode, and re-encode to the same tensors', () => {
    fc.assert(
      fc.property(validFileArb, (bytes) => {
        expect(decodeChecked(bytes)).toBe(true)
      }),
      { numRuns: 1000 },
    )
  })

  it('valid files with bits flipped', () => {
    fc.assert(
      fc.property(
        validFileArb,
        fc.array(fc.tuple(fc.nat(), fc.nat(7)), { minLength: 1, maxLength: 4 }),
        (bytes, flips) => {
          const mutated = bytes.slice()
          for (const [at, bit] of flips) mutated[at % mutated.length] ^= 1 << bit
          decodeChecked(mutated)
        },
      ),
      { numRuns: 3000 },
    )
  })

  it('valid files truncated, extended, or with bytes deleted', () => {
    fc.assert(
      fc.property(
        validFileArb,
        fc.nat(),
        fc.uint8Array({ maxLength: 16 }),
        fc.boolean(),
        (bytes, at, extra, cut) => {
          const i = at % (bytes.length + 1)
          decodeChecked(bytes.subarray(0, i))
          const spliced = new Uint8Array(bytes.length + extra.length)
          spliced.set(bytes.subarray(0, i))
          spliced.set(extra, i)
          spliced.set(bytes.subarray(i), i + extra.length)
          decodeChecked(spliced)
          if (cut && i < bytes.length)
            decodeChecked(new Uint8Array([...bytes.subarray(0, i), ...bytes.subarray(i + 1)]))
        },
      ),
      { numRuns: 1500 },
    )
  })

  it('valid files with the header length edited', () => {
    fc.assert(
      fc.property(
        validFileArb,
        fc.oneof(
          fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          fc.integer({ min: -16, max: 16 }).map(BigInt),
          fc.constantFrom(2n ** 60n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 20n + 1n, 2n ** 64n - 1n),
        ),
        (bytes, edit) => {
          const { header, data } = split(bytes)
          const n = edit >= -16n && edit <= 16n ? BigInt(enc.encode(header).length) + edit : edit
          decodeChecked(join(header, data, n < 0n ? 0n : n))
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('valid files with structural JSON edits', () => {
    fc.assert(
      fc.property(validFileArb, fc.array(jsonEditArb, { minLength: 1, maxLength: 3 }), (bytes, edits) => {
        const { header, data } = split(bytes)
        const h = JSON.parse(header) as Record<string, unknown>
        for (const edit of edits) edit(h)
        decodeChecked(join(JSON.stringify(h), data))
      }),
      { numRuns: 3000 },
    )
  })

  it('valid files with characters of the JSON text replaced', () => {
    fc.assert(
      fc.property(
        validFileArb,
        fc.array(
          fc.tuple(
            fc.nat(),
            fc.constantFrom('{', '}', '[', ']', '"', ',', ':', '0', '9', '-', '.', 'e', ' ', '\\', 'ÿ'),
          ),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        (bytes, edits) => {
          const { header, data } = split(bytes)
          const chars = [...header]
          for (const [at, c] of edits) chars[at % chars.length] = c
          decodeChecked(join(chars.join(''), data))
        },
      ),
      { numRuns: 3000 },
    )
  })
})
