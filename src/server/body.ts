/**
 * Reading request bodies with limits, before anything else looks at them: the media type, the byte
 * count (from Content-Length when sent, counted while streaming otherwise), then the format.
 */
import type { Context } from 'hono'
import type { z } from 'zod'
import { clip, jsonMediaType, safetensorsMediaType } from '../contract'
import {
  decode,
  float32JsonArray,
  float32JsonElements,
  SafetensorsError,
  type SafetensorsFile,
} from '../safetensors'
import type { BodyReader } from './deps'
import type { AppEnv } from './env'
import { ApiError } from './errors'

/** The body kinds a route may accept. */
export type BodyKind = 'binary' | 'json'

const mediaTypes: Record<BodyKind, string> = { binary: safetensorsMediaType, json: jsonMediaType }

/** The bare media type of a request (no parameters, lowercase), or '' when none is sent. */
export function mediaTypeOf(request: Request): string {
  return (request.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase()
}

/** Which of `accepted` the request's Content-Type is, or a 415 that lists them. */
export function bodyKindOf(request: Request, accepted: readonly BodyKind[]): BodyKind {
  const type = mediaTypeOf(request)
  for (const kind of accepted) if (mediaTypes[kind] === type) return kind
  const list = accepted.map((k) => mediaTypes[k]).join(' or ')
  throw new ApiError(
    'unsupported_media_type',
    `Content-Type ${type === '' ? 'is missing' : `'${clip(type)}' is not accepted here`}; send ${list}`,
    { accepted: accepted.map((k) => mediaTypes[k]) },
  )
}

/** The 413 for a body over `limit` bytes (`size` as text: it may be "more than …"). */
export function bodyTooLarge(size: string, limit: number): ApiError {
  return new ApiError(
    'payload_too_large',
    `the body is ${size} bytes; this route accepts at most ${limit}: send fewer coordinates per request`,
    { limitBytes: limit },
  )
}

/**
 * Opens the body, refusing (413) more than `limit` bytes without buffering them: the runtime's
 * fast path when it has one (bytes usable as they arrive), else the whole body read at once.
 */
export async function openBody(c: Context<AppEnv>, limit: number): Promise<BodyReader> {
  const fast = c.get('deps').openBody
  if (fast !== undefined) return fast(limit)
  const bytes = await readRequestBody(c.req.raw, limit)
  return { bytes, ready: () => Promise.resolve() }
}

/** Resolves once the body is in up to the end of `view`, a view into `body.bytes`' buffer. */
export function readyThrough(body: BodyReader, view: ArrayBufferView): Promise<void> {
  return body.ready(view.byteOffset + view.byteLength - body.bytes.byteOffset)
}

/** Reads the whole body (see openBody). */
export async function readBody(c: Context<AppEnv>, limit: number): Promise<Uint8Array> {
  const body = await openBody(c, limit)
  await body.ready(body.bytes.length)
  return body.bytes
}

/** readBody for any web-standard Request. */
export async function readRequestBody(request: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = (size: string) => bodyTooLarge(size, limit)
  const declared = request.headers.get('content-length')
  if (declared !== null) {
    const n = Number(declared)
    if (Number.isSafeInteger(n) && n > limit) throw tooLarge(String(n))
    if (Number.isSafeInteger(n) && n >= 0) {
      const bytes = new Uint8Array(await request.arrayBuffer())
      if (bytes.byteLength > limit) throw tooLarge(String(bytes.byteLength))
      return bytes
    }
  }
  if (request.body === null) return new Uint8Array(0)
  const chunks: Uint8Array[] = []
  let total = 0
  const reader = request.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > limit) {
      await reader.cancel().catch(() => {})
      throw tooLarge(`more than ${limit}`)
    }
    chunks.push(value)
  }
  if (chunks.length === 1 && chunks[0].byteOffset % 8 === 0) return chunks[0]
  const out = new Uint8Array(total)
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.byteLength
  }
  return out
}

/** Parses a JSON body against a schema; a 400 invalid_request names the first problems. */
export function parseJson<T extends z.ZodType>(bytes: Uint8Array, schema: T): z.infer<T> {
  return validate(parseJsonValue(bytes), schema)
}

/** The JSON value of a body, or a 400. */
export function parseJsonValue(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    throw new ApiError('invalid_request', 'the body is not valid JSON')
  }
}

/** A value checked against a schema; a 400 invalid_request names the first problems. */
export function validate<T extends z.ZodType>(value: unknown, schema: T): z.infer<T> {
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => ({ path: i.path.join('.'), message: i.message }))
    const text = issues.map((i) => `${i.path === '' ? 'body' : i.path}: ${i.message}`).join('; ')
    throw new ApiError('invalid_request', `the body does not match the schema: ${text}; GET /docs shows it`, {
      issues,
    })
  }
  return parsed.data
}

/**
 * A JSON body whose large number arrays (`arrayFields`) are checked in one pass straight into
 * Float32Arrays, and whose other fields are checked by `schema` (the contract's schema with those
 * fields omitted): zod would copy an 80,000-number state element by element.
 */
export function parseJsonWithArrays<T extends z.ZodType, K extends string>(
  bytes: Uint8Array,
  schema: T,
  arrayFields: { name: K; required: boolean }[],
): { fields: z.infer<T>; arrays: Record<K, Float32Array | undefined> } {
  const value = parseJsonValue(bytes)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError('invalid_request', 'the body must be a JSON object; GET /docs shows it')
  }
  const rest: Record<string, unknown> = { ...(value as Record<string, unknown>) }
  const arrays = {} as Record<K, Float32Array | undefined>
  for (const { name, required } of arrayFields) {
    const raw = rest[name]
    delete rest[name]
    arrays[name] = numberArray(raw, name, required)
  }
  return { fields: validate(rest, schema), arrays }
}

function numberArray(raw: unknown, name: string, required: boolean): Float32Array | undefined {
  if (raw === undefined && !required) return undefined
  if (!Array.isArray(raw) || (required && raw.length === 0)) {
    throw new ApiError(
      'invalid_request',
      `${name} must be ${required ? 'a non-empty' : 'an'} array of numbers; GET /docs shows the body`,
      { issues: [{ path: name, message: 'expected an array of numbers' }] },
    )
  }
  const out = new Float32Array(raw.length)
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i]
    if (typeof v !== 'number') {
      throw new ApiError('invalid_request', `${name}[${i}] is not a number; send plain JSON numbers`, {
        issues: [{ path: `${name}.${i}`, message: 'expected number' }],
      })
    }
    out[i] = v
  }
  return out
}

/**
 * Float32 values as a JSON array, each as the shortest decimal that reads back as the same
 * float32 (at most 9 significant digits, not the float64's up to 17).
 */
export function jsonNumbers(values: Float32Array): string {
  return float32JsonArray(values)
}

/** Numbers written per piece of a streamed JSON answer: ~10 ms of formatting, then the event loop runs. */
const numbersPerPiece = 16_384

/**
 * A JSON object answer streamed in pieces: `head` (an object's JSON) with number arrays added as
 * members, written (as jsonNumbers does) a piece at a time with `pause` in between, so a large
 * answer never holds the event loop for long.
 */
export function jsonObjectStream(
  head: object,
  arrays: [name: string, values: Float32Array][],
  pause: () => Promise<void>,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder()
  let part = -1
  let at = 0
  return new ReadableStream({
    async pull(controller) {
      if (part === -1) {
        controller.enqueue(encoder.encode(JSON.stringify(head).slice(0, -1)))
        part = 0
        return
      }
      if (part === arrays.length) {
        controller.enqueue(encoder.encode('}'))
        controller.close()
        return
      }
      await pause()
      const [name, values] = arrays[part]
      const end = Math.min(values.length, at + numbersPerPiece)
      let text = at === 0 ? `,${JSON.stringify(name)}:[` : ','
      text += float32JsonElements(values, at, end)
      at = end
      if (at === values.length) {
        text += ']'
        part++
        at = 0
      }
      controller.enqueue(encoder.encode(text))
    },
  })
}

const maxHeaderBytes = 64 * 1024

/** Decodes a safetensors body with limits fit for requests; a 400 invalid_safetensors says why not. */
export function decodeSafetensors(bytes: Uint8Array, maxTensors: number): SafetensorsFile {
  try {
    return decode(bytes, { maxHeaderBytes, maxTensors })
  } catch (error) {
    if (error instanceof SafetensorsError) {
      throw new ApiError(
        'invalid_safetensors',
        `the body is not a valid safetensors file: ${error.message}`,
        {
          reason: error.code,
        },
      )
    }
    throw error
  }
}

/**
 * Decodes a safetensors body as soon as its header is in: decode only lays out typed-array views,
 * it reads no tensor data, so the views fill as the rest arrives (see BodyReader.ready). When a
 * tensor would need an aligning copy, waits for the whole body instead.
 */
export async function decodeArriving(body: BodyReader, maxTensors: number): Promise<SafetensorsFile> {
  const { bytes } = body
  await body.ready(Math.min(8, bytes.length))
  if (bytes.length >= 8) {
    const head = new DataView(bytes.buffer, bytes.byteOffset, 8)
    const dataStart = 8 + head.getUint32(0, true)
    if (head.getUint32(4, true) === 0 && dataStart <= Math.min(bytes.length, 8 + maxHeaderBytes)) {
      await body.ready(dataStart)
      const file = decodeSafetensors(bytes, maxTensors)
      if ([...file.tensors.values()].every((t) => t.data.buffer === bytes.buffer)) return file
    }
  }
  await body.ready(bytes.length)
  return decodeSafetensors(bytes, maxTensors)
}
