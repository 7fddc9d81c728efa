import { describe, expect, it } from 'vitest'
import { jsonNumbers, jsonObjectStream } from './body'

describe('jsonObjectStream', () => {
  it('writes the same JSON as one string would, pausing between pieces', async () => {
    const updates = Float32Array.from({ length: 40_000 }, (_, i) => Math.sin(i) / 3)
    const state = Float32Array.from([0.1, -0, 3e38])
    let pauses = 0
    const stream = jsonObjectStream(
      { optimizer: 'x', numParams: 3 },
      [
        ['updates', updates],
        ['state', state],
        ['empty', new Float32Array(0)],
      ],
      async () => {
        pauses++
      },
    )
    const text = await new Response(stream).text()
    expect(text).toBe(
      `{"optimizer":"x","numParams":3,"updates":${jsonNumbers(updates)},"state":${jsonNumbers(state)},"empty":[]}`,
    )
    expect(JSON.parse(text).state).toEqual([0.1, -0, 3e38])
    expect(pauses).toBeGreaterThanOrEqual(4)
  })
})
