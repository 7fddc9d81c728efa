import { describe, expect, it } from 'vitest'
import { clip } from '../contract'
import { ApiError, problemBody } from './errors'

describe('problem bodies', () => {
  it('clip keeps short values and cuts long ones, saying how long they were', () => {
    expect(clip('adam')).toBe('adam')
    const long = 'x'.repeat(60_000)
    expect(clip(long)).toBe(`${'x'.repeat(64)}… (60000 characters)`)
  })

  it('bound every string, whatever an error carries', () => {
    const huge = 'y'.repeat(100_000)
    const body = problemBody(
      new ApiError('invalid_request', huge, { issues: [{ path: huge, message: 'm' }], [huge]: 1 }),
      'req_1',
    )
    expect(JSON.stringify(body).length).toBeLessThan(2000)
    expect(body.detail.startsWith('yyyy')).toBe(true)
    expect(body).toMatchObject({ code: 'invalid_request', status: 400, requestId: 'req_1' })
  })
})
