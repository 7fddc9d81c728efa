import type { z } from 'zod'
import { ProtocolError } from '../errors'
import type { RawResponse } from '../http'

/** Validates a JSON answer against its contract schema; a mismatch is a ProtocolError. */
export function parseBody<T extends z.ZodType>(schema: T, data: unknown, response: RawResponse): z.infer<T> {
  const parsed = schema.safeParse(data)
  if (parsed.success) return parsed.data
  const issues = parsed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
    .join('; ')
  throw new ProtocolError(`${response.url}: the answer does not match the API contract (${issues})`)
}
