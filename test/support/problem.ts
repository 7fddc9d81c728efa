/** The one check of an error answer: RFC 9457 problem+json with the stable code and type. */
import { expect } from 'vitest'
import { type ProblemCode, problemMediaType, problemType } from '../../src/contract'

/** Asserts `res` is a problem+json answer with this status and code; returns its body. */
export async function expectProblem(res: Response, status: number, code: ProblemCode | string) {
  expect(res.headers.get('content-type')).toBe(problemMediaType)
  const body = (await res.json()) as Record<string, unknown>
  expect({ status: res.status, code: body.code }).toEqual({ status, code })
  expect(body).toMatchObject({ type: problemType(code as ProblemCode), status })
  expect(typeof body.detail).toBe('string')
  expect(typeof body.requestId).toBe('string')
  return body
}
