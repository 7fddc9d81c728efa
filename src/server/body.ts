/**
 * Reading request bodies with limits, before anything else looks at them: the media type, the byte
 * count (from Content-Length when sent, counted while streaming otherwise), then the format.
 */
import type { Context } from 'hono'
import type { z } from 'zod'
import { jsonMediaType, safetensorsMediaType } from '../contract'
import { decode, SafetensorsError, type SafetensorsFile } from '../weights'
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
    `Content-Type ${type === '' ? 'is missing' : `'${type}' is not accepted here`}; send ${list}`,
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
 * Reads the whole body, refusing (413) more than `limit` bytes without buffering them; uses the
 * runtime's fast path when it has one.
 */
export function readBody(c: Context<AppEnv>, limit: number): Promise<Uint8Array> {
  const fast = c.get('deps').readBody
  return fast === undefined ? readRequestBody(c.req.raw, limit) : fast(limit)
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
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    throw new ApiError('invalid_request', 'the body is not valid JSON')
  }
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

/** Decodes a safetensors body with limits fit for requests; a 400 invalid_safetensors says why not. */
export function decodeSafetensors(bytes: Uint8Array, maxTensors: number): SafetensorsFile {
  try {
    return decode(bytes, { maxHeaderBytes: 64 * 1024, maxTensors })
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
