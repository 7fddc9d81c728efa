/**
 * safetensors codec (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
 * length N, N bytes of UTF-8 JSON, then the raw little-endian data section. Used for weight files
 * (DESIGN §3) and for binary HTTP bodies (DESIGN §5), so decode treats its input as hostile: every
 * failure is one `SafetensorsError` with a stable code, work is O(bytes + tensors·log tensors),
 * and nothing is allocated from an untrusted size before that size has been checked.
 *
 * Web APIs only (TextDecoder, DataView, typed arrays): it runs unchanged in Node and Workers.
 */
import { z } from 'zod'

/** Bytes per element of each dtype this codec reads and writes: the one dtype table of the project. */
export const ITEMSIZE = { F32: 4, F16: 2, BF16: 2 } as const

/** Element types this codec reads and writes. F16 and BF16 data stay raw 16-bit patterns. */
export type Dtype = keyof typeof ITEMSIZE

/** One decoded (or to-be-encoded) tensor: row-major `data` of product(shape) elements. */
export type Tensor =
  | { dtype: 'F32'; shape: number[]; data: Float32Array }
  | { dtype: 'F16' | 'BF16'; shape: number[]; data: Uint16Array }

/** A decoded file: the optional `__metadata__` map and the tensors by name. */
export interface SafetensorsFile {
  metadata: Record<string, string> | undefined
  tensors: Map<string, Tensor>
}

/** Stable, snake_case reasons a safetensors body is refused. */
export type SafetensorsErrorCode =
  | 'invalid_input'
  | 'truncated'
  | 'header_too_large'
  | 'limit_exceeded'
  | 'invalid_header_json'
  | 'invalid_header'
  | 'unsupported_dtype'
  | 'size_mismatch'
  | 'out_of_bounds'
  | 'overlapping'
  | 'gap'
  | 'invalid_tensor'

/** The only error decode and encode ever throw; `code` is stable, `message` names the tensor. */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError'
  constructor(
    readonly code: SafetensorsErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/** Optional caps for untrusted input; the header cap defaults to 1 MiB, the others to none. */
export interface DecodeLimits {
  /** Largest accepted JSON header, in bytes (default 1 MiB). Checked before anything is read. */
  maxHeaderBytes?: number
  /** Largest accepted input, header and data included, in bytes. */
  maxTotalBytes?: number
  /** Most tensors in one file. */
  maxTensors?: number
  /** Most elements over all tensors together. */
  maxElements?: number
}

/** Default cap on the JSON header: far above any file of ours (an L=8 LSTM header is ~4 KiB). */
export const DEFAULT_MAX_HEADER_BYTES = 1 << 20

// Standard safetensors dtypes we recognise but do not support, so the error can say so plainly.
const KNOWN_DTYPES = new Set([
  'BOOL',
  'U8',
  'I8',
  'I16',
  'U16',
  'I32',
  'U32',
  'I64',
  'U64',
  'F64',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F6_E2M3',
  'F6_E3M2',
  'F4',
  'C64',
])

const METADATA_KEY = '__metadata__'

const isDtype = (dtype: string): dtype is Dtype => Object.hasOwn(ITEMSIZE, dtype)

// Typed-array views reinterpret bytes in host order; the format is little-endian.
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

const offsetSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const tensorInfoSchema = z.strictObject({
  dtype: z.string(),
  shape: z.array(offsetSchema),
  data_offsets: z.tuple([offsetSchema, offsetSchema]),
})

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** One tensor's place in a file: its data is bytes [begin, end) of the data section. */
export interface HeaderEntry {
  name: string
  dtype: Dtype
  shape: readonly number[]
  begin: number
  end: number
}

type Entry = HeaderEntry & { shape: number[] }

function fail(code: SafetensorsErrorCode, message: string): never {
  throw new SafetensorsError(code, message)
}

const quote = (name: string): string => JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name)

// Shapes come from untrusted headers and may have a million entries; messages show the start.
const shapeText = (shape: readonly number[]): string =>
  `[${shape.slice(0, 8).join(', ')}${shape.length > 8 ? `, … (${shape.length} dims)` : ''}]`

const issueText = (error: z.ZodError): string =>
  error.issues
    .slice(0, 3)
    .map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ')

/**
 * Decodes a safetensors file. Tensor data are zero-copy views into `bytes` when their absolute
 * offset (bytes.byteOffset + 8 + N + begin) is a multiple of the item size, and copies otherwise;
 * views alias the input, so do not mutate `bytes` while the result is in use.
 *
 * @throws SafetensorsError, and nothing else, for any input.
 */
export function decode(bytes: Uint8Array, limits: DecodeLimits = {}): SafetensorsFile {
  // Not instanceof: a Uint8Array from another realm (vm context, test pool) is still a Uint8Array.
  if (!ArrayBuffer.isView(bytes) || (bytes as Uint8Array)[Symbol.toStringTag] !== 'Uint8Array') {
    fail('invalid_input', 'expected a Uint8Array')
  }
  const maxHeaderBytes = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES
  const maxTotalBytes = limits.maxTotalBytes ?? Number.POSITIVE_INFINITY
  const maxTensors = limits.maxTensors ?? Number.POSITIVE_INFINITY
  const maxElements = limits.maxElements ?? Number.POSITIVE_INFINITY

  if (bytes.length > maxTotalBytes) {
    fail('limit_exceeded', `body is ${bytes.length} bytes, above the limit of ${maxTotalBytes}`)
  }
  if (bytes.length < 8) fail('truncated', `${bytes.length} bytes, fewer than the 8-byte header length`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const lo = view.getUint32(0, true)
  const hi = view.getUint32(4, true)
  // hi·2^32 + lo is exact below 2^53; anything with hi > 0 is far above any sane cap anyway.
  if (hi > 0 || lo > maxHeaderBytes) {
    const n = hi > 0x1fffff ? `2^${(31 - Math.clz32(hi) + 32).toString()}+` : String(hi * 2 ** 32 + lo)
    fail('header_too_large', `header length ${n} bytes is above the limit of ${maxHeaderBytes}`)
  }
  const headerLength = lo
  if (headerLength > bytes.length - 8) {
    fail('truncated', `header length ${headerLength} needs ${headerLength + 8} bytes, got ${bytes.length}`)
  }
  const dataStart = 8 + headerLength
  const dataLength = bytes.length - dataStart

  const header = parseHeader(bytes.subarray(8, dataStart))
  let metadata: Record<string, string> | undefined
  const entries: Entry[] = []
  let totalElements = 0
  for (const name of Object.keys(header)) {
    const raw = header[name]
    if (name === METADATA_KEY) {
      if (raw === null) continue
      metadata = parseMetadata(raw)
      continue
    }
    if (name.length === 0) fail('invalid_header', 'a tensor has an empty name')
    if (entries.length >= maxTensors) fail('limit_exceeded', `more than ${maxTensors} tensors`)
    const parsed = tensorInfoSchema.safeParse(raw)
    if (!parsed.success) {
      fail('invalid_header', `tensor ${quote(name)}: ${issueText(parsed.error)}`)
    }
    const { dtype, shape, data_offsets } = parsed.data
    if (!isDtype(dtype)) {
      const known = KNOWN_DTYPES.has(dtype) ? '' : ' (not a safetensors dtype)'
      fail(
        'unsupported_dtype',
        `tensor ${quote(name)} has dtype ${quote(dtype)}${known}; supported: ${Object.keys(ITEMSIZE).join(', ')}`,
      )
    }
    const [begin, end] = data_offsets
    if (begin > end) {
      fail('out_of_bounds', `tensor ${quote(name)} has data_offsets [${begin}, ${end}], begin > end`)
    }
    if (end > dataLength) {
      fail(
        'out_of_bounds',
        `tensor ${quote(name)} ends at ${end}, past the data section of ${dataLength} bytes (file truncated?)`,
      )
    }
    // end - begin <= dataLength, so capping the product just past it keeps every step exact.
    const span = end - begin
    const elements = elementCount(shape, Math.floor(span / ITEMSIZE[dtype]) + 1)
    if (elements * ITEMSIZE[dtype] !== span) {
      const needs =
        elements * ITEMSIZE[dtype] > span ? `more than ${span}` : String(elements * ITEMSIZE[dtype])
      fail(
        'size_mismatch',
        `tensor ${quote(name)}: shape ${shapeText(shape)} of ${dtype} needs ${needs} bytes, but data_offsets [${begin}, ${end}] span ${span}`,
      )
    }
    totalElements += elements
    if (totalElements > maxElements) fail('limit_exceeded', `more than ${maxElements} elements in all`)
    entries.push({ name, dtype, shape, begin, end })
  }

  checkCoverage(entries, dataLength)

  const tensors = new Map<string, Tensor>()
  for (const e of entries) tensors.set(e.name, readTensor(bytes, dataStart, e))
  return { metadata, tensors }
}

function parseHeader(headerBytes: Uint8Array): Record<string, unknown> {
  let text: string
  try {
    text = utf8.decode(headerBytes)
  } catch {
    return fail('invalid_header_json', 'header is not valid UTF-8')
  }
  // The reference implementation requires the header to start with '{' (no BOM, no whitespace).
  if (text.charCodeAt(0) !== 0x7b) return fail('invalid_header_json', "header does not start with '{'")
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    const why = error instanceof Error ? `: ${error.message.slice(0, 200)}` : ''
    return fail('invalid_header_json', `header is not valid JSON${why}`)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return fail('invalid_header_json', 'header is not a JSON object')
  }
  return json as Record<string, unknown>
}

// By hand rather than z.record, which silently drops a "__proto__" key.
function parseMetadata(raw: unknown): Record<string, string> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail('invalid_header', '__metadata__ must be an object mapping strings to strings')
  }
  const entries = Object.entries(raw)
  for (const [k, v] of entries) {
    if (typeof v !== 'string')
      fail('invalid_header', `__metadata__ ${quote(k)} must be a string, got ${typeof v}`)
  }
  return Object.fromEntries(entries) as Record<string, string>
}

/** product(shape), or `cap` as soon as the product reaches it (a 0 anywhere still gives 0). */
function elementCount(shape: readonly number[], cap: number): number {
  if (shape.includes(0)) return 0
  let n = 1
  for (const d of shape) {
    n *= d
    if (n >= cap) return cap
  }
  return n
}

// The spec's rule: sorted by offset, each tensor starts where the previous ended, and the last ends
// at the end of the data section. Zero-length tensors may share an offset with their neighbours.
function checkCoverage(entries: Entry[], dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end)
  let cursor = 0
  let previous: Entry | undefined
  for (const e of sorted) {
    if (e.begin < cursor) {
      fail(
        'overlapping',
        `tensor ${quote(e.name)} [${e.begin}, ${e.end}) overlaps ${quote(previous!.name)} [${previous!.begin}, ${previous!.end})`,
      )
    }
    if (e.begin > cursor) {
      fail('gap', `bytes [${cursor}, ${e.begin}) before tensor ${quote(e.name)} belong to no tensor`)
    }
    cursor = e.end
    previous = e
  }
  if (cursor !== dataLength) {
    fail('gap', `bytes [${cursor}, ${dataLength}) after the last tensor belong to no tensor`)
  }
}

function readTensor(bytes: Uint8Array, dataStart: number, e: Entry): Tensor {
  const itemsize = ITEMSIZE[e.dtype]
  const length = (e.end - e.begin) / itemsize
  const absolute = bytes.byteOffset + dataStart + e.begin
  let buffer: ArrayBufferLike = bytes.buffer
  let offset = absolute
  if (!LITTLE_ENDIAN_HOST) return readTensorSwapped(bytes, dataStart, e)
  if (absolute % itemsize !== 0) {
    buffer = bytes.slice(dataStart + e.begin, dataStart + e.end).buffer
    offset = 0
  }
  if (e.dtype === 'F32')
    return { dtype: 'F32', shape: e.shape, data: new Float32Array(buffer, offset, length) }
  return { dtype: e.dtype, shape: e.shape, data: new Uint16Array(buffer, offset, length) }
}

// Big-endian hosts (none of Node's or Workers' platforms today): read element by element.
function readTensorSwapped(bytes: Uint8Array, dataStart: number, e: Entry): Tensor {
  const view = new DataView(bytes.buffer, bytes.byteOffset + dataStart + e.begin, e.end - e.begin)
  if (e.dtype === 'F32') {
    const data = new Float32Array((e.end - e.begin) / 4)
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(4 * i, true)
    return { dtype: 'F32', shape: e.shape, data }
  }
  const data = new Uint16Array((e.end - e.begin) / 2)
  for (let i = 0; i < data.length; i++) data[i] = view.getUint16(2 * i, true)
  return { dtype: e.dtype, shape: e.shape, data }
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Encodes tensors as a standard safetensors file.
 *
 * Alignment invariant: the JSON header is padded with spaces so the data section starts at byte
 * 8 + N with N a multiple of 8, and the data section holds all F32 tensors first, then all F16 and
 * BF16 tensors (each group by name). Every F32 tensor's byte length is a multiple of 4, so every F32
 * tensor begins at a multiple of 4 and every 16-bit tensor at a multiple of 2, with no holes
 * between tensors (the spec forbids them). A decoder given the file in a buffer whose start is
 * 8-aligned (any fresh ArrayBuffer) therefore reads every tensor without a copy. This is also the
 * order the reference implementation uses (larger dtypes first). The header lists tensors by name.
 *
 * @throws SafetensorsError 'invalid_tensor' or 'size_mismatch' for a malformed tensor.
 */
export function encode(
  tensors: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const items: [string, Tensor][] =
    tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, Tensor>)
  for (const [name, t] of items) checkTensor(name, t)

  const layout = [...items].sort(
    ([a, ta], [b, tb]) => ITEMSIZE[tb.dtype] - ITEMSIZE[ta.dtype] || byName(a, b),
  )
  const offsets = new Map<string, [number, number]>()
  let dataLength = 0
  for (const [name, t] of layout) {
    offsets.set(name, [dataLength, dataLength + t.data.byteLength])
    dataLength += t.data.byteLength
  }

  const header = encodeHeader(
    layout.map(([name, t]) => {
      const [begin, end] = offsets.get(name)!
      return { name, dtype: t.dtype, shape: t.shape, begin, end }
    }),
    metadata,
  )
  const out = new Uint8Array(header.length + dataLength)
  out.set(header)
  const view = new DataView(out.buffer)
  const dataStart = header.length
  for (const [name, t] of layout) {
    const [begin] = offsets.get(name)!
    if (LITTLE_ENDIAN_HOST) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), dataStart + begin)
    } else if (t.dtype === 'F32') {
      for (let i = 0; i < t.data.length; i++) view.setFloat32(dataStart + begin + 4 * i, t.data[i], true)
    } else {
      for (let i = 0; i < t.data.length; i++) view.setUint16(dataStart + begin + 2 * i, t.data[i], true)
    }
  }
  return out
}

/**
 * A file's bytes before its data section: the 8-byte little-endian header length, then the JSON
 * header (`__metadata__` with sorted keys, then the tensors by name) padded with spaces to a multiple
 * of 8, so the data section starts 8-aligned. `entries` give each tensor's byte range [begin, end)
 * in the data section; encode uses it, and so does a writer that streams the data itself.
 *
 * @throws SafetensorsError 'invalid_tensor' for a metadata value that is not a string.
 */
export function encodeHeader(
  entries: readonly HeaderEntry[],
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const header: Record<string, unknown> = {}
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail('invalid_tensor', `metadata ${quote(k)} must be a string`)
    }
    header[METADATA_KEY] = Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => byName(a, b)))
  }
  for (const e of [...entries].sort((a, b) => byName(a.name, b.name))) {
    // defineProperty, not assignment: a tensor named "__proto__" must stay an ordinary key.
    Object.defineProperty(header, e.name, {
      value: { dtype: e.dtype, shape: e.shape, data_offsets: [e.begin, e.end] },
      enumerable: true,
      configurable: true,
      writable: true,
    })
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const headerLength = Math.ceil(json.length / 8) * 8
  const out = new Uint8Array(8 + headerLength)
  new DataView(out.buffer).setUint32(0, headerLength, true)
  out.set(json, 8)
  out.fill(0x20, 8 + json.length)
  return out
}

function checkTensor(name: string, t: Tensor): void {
  if (name.length === 0) fail('invalid_tensor', 'a tensor has an empty name')
  if (name === METADATA_KEY) fail('invalid_tensor', `${METADATA_KEY} is reserved and cannot name a tensor`)
  if (t === null || typeof t !== 'object') fail('invalid_tensor', `tensor ${quote(name)} is not a tensor`)
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail('invalid_tensor', `tensor ${quote(name)}: shape must be an array of non-negative integers`)
  }
  const ok =
    (t.dtype === 'F32' && t.data instanceof Float32Array) ||
    ((t.dtype === 'F16' || t.dtype === 'BF16') && t.data instanceof Uint16Array)
  if (!ok) {
    fail(
      'invalid_tensor',
      `tensor ${quote(name)}: F32 data must be a Float32Array, F16 and BF16 data a Uint16Array (see f32ToF16, f32ToBf16); got dtype ${quote(String(t.dtype))}`,
    )
  }
  const elements = elementCount(t.shape, Number.MAX_SAFE_INTEGER)
  if (elements !== t.data.length) {
    fail(
      'size_mismatch',
      `tensor ${quote(name)}: shape ${shapeText(t.shape)} has ${elements} elements, data has ${t.data.length}`,
    )
  }
}
