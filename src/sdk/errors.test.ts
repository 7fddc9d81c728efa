import { describe, expect, it } from 'vitest'
import { problem } from '../../test/sdk/fake-server'
import { type ProblemCode, problemCodes } from '../contract'
import { L2oClient } from './client'
import {
  ApiError,
  AuthError,
  ConflictError,
  DigestMismatchError,
  NotFoundError,
  ProtocolError,
  RateLimitError,
  ServerError,
  StepConflictError,
  ValidationError,
} from './errors'

const expected: Record<ProblemCode, new (...args: never[]) => ApiError> = {
  invalid_request: ValidationError,
  invalid_reference: ValidationError,
  invalid_safetensors: ValidationError,
  shape_mismatch: ValidationError,
  non_finite_gradient: ValidationError,
  non_finite_result: ValidationError,
  invalid_hyperparameters: ValidationError,
  invalid_weights: ValidationError,
  unauthorized: AuthError,
  forbidden: AuthError,
  optimizer_not_found: NotFoundError,
  version_not_found: NotFoundError,
  session_not_found: NotFoundError,
  key_not_found: NotFoundError,
  not_found: NotFoundError,
  method_not_allowed: ValidationError,
  request_timeout: ApiError,
  not_acceptable: ValidationError,
  digest_mismatch: DigestMismatchError,
  step_conflict: StepConflictError,
  version_conflict: ConflictError,
  idempotency_conflict: ConflictError,
  last_admin_key: ConflictError,
  replay_mismatch: ConflictError,
  payload_too_large: ValidationError,
  too_many_coordinates: ValidationError,
  unsupported_media_type: ValidationError,
  headers_too_large: ApiError,
  rate_limited: RateLimitError,
  quota_exceeded: RateLimitError,
  internal_error: ServerError,
  overloaded: ServerError,
}

const clientAnswering = (response: () => Response) =>
  new L2oClient({
    baseUrl: 'http://l2o.test',
    fetch: async () => response(),
    retry: { maxRetries: 0 },
  })

describe('error mapping', () => {
  for (const code of Object.keys(problemCodes) as ProblemCode[]) {
    it(`maps ${code} to ${expected[code].name}`, async () => {
      const status = problemCodes[code]
      const error = await clientAnswering(() => problem(status, code, `detail of ${code}`))
        .resolve('toy')
        .catch((e: unknown) => e)
      expect(error).toBeInstanceOf(expected[code])
      expect(error).toMatchObject({ status, code, detail: `detail of ${code}`, requestId: 'req-1' })
      expect((error as Error).message).toContain(code)
    })
  }

  it('falls back on the status for an unknown code, and on the text for a non-JSON body', async () => {
    const unknown = await clientAnswering(() => problem(409, 'nope' as ProblemCode, 'new code'))
      .resolve('toy')
      .catch((e: unknown) => e)
    expect(unknown).toBeInstanceOf(ConflictError)
    expect(unknown).toMatchObject({ code: 'unknown', detail: 'new code' })
    const html = await clientAnswering(() => new Response('<h1>Bad gateway</h1>', { status: 502 }))
      .resolve('toy')
      .catch((e: unknown) => e)
    expect(html).toBeInstanceOf(ServerError)
    expect(html).toMatchObject({ status: 502, code: 'unknown', detail: '<h1>Bad gateway</h1>' })
    const teapot = await clientAnswering(() => new Response('', { status: 418 }))
      .resolve('toy')
      .catch((e: unknown) => e)
    expect(teapot?.constructor).toBe(ApiError)
  })

  it('reads the { error: { code, message } } envelope too', async () => {
    const error = await clientAnswering(
      () =>
        new Response(
          JSON.stringify({ error: { code: 'session_not_found', message: 'gone', requestId: 'r9' } }),
          {
            status: 404,
            headers: { 'Content-Type': 'application/json' },
          },
        ),
    )
      .resolve('toy')
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(NotFoundError)
    expect(error).toMatchObject({ code: 'session_not_found', detail: 'gone', requestId: 'r9' })
  })

  it('reports a 2xx body that breaks the contract as ProtocolError', async () => {
    const error = await clientAnswering(() => new Response('{"digest":1}', { status: 200 }))
      .resolve('toy')
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ProtocolError)
  })
})
