/** The one check of an error answer: RFC 9457 problem+json with the stable code and type. */
import { expect, it } from 'vitest'
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

/** A request that must be refused: what it is, how to send it, and the status and code it gets. */
export type Refusal = [what: string, send: () => Response | Promise<Response>, status: number, code: string]

/**
 * One test per refusal: the answer is that problem+json and `snapshot()` (every stored row) is the
 * same after it as before. Test names read `${prefix} ${what}: ${status} ${code}`.
 */
export function itRefusesAndChangesNothing(
  cases: Refusal[],
  snapshot: () => string,
  prefix = 'refuses',
): void {
  for (const [what, send, status, code] of cases) {
    it(`${prefix} ${what}: ${status} ${code}`, async () => {
      const before = snapshot()
      await expectProblem(await send(), status, code)
      expect(snapshot()).toBe(before)
    })
  }
}
