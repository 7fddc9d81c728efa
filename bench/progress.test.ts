import { describe, expect, it } from 'vitest'
import { formatDuration, progress } from './progress'

const fakeStream = (isTTY: boolean) => {
  const writes: string[] = []
  return { writes, stream: { isTTY, columns: 200, write: (s: string) => writes.push(s) } }
}

describe('progress', () => {
  it('formats durations as s, m and h', () => {
    expect(formatDuration(5)).toBe('5s')
    expect(formatDuration(75)).toBe('1m15s')
    expect(formatDuration(3725)).toBe('1h02m')
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe('?')
  })

  it('estimates the time left from the pace of the finished units', () => {
    let t = 0
    const { stream } = fakeStream(false)
    const bar = progress({ label: 'bench', total: 10, stream, now: () => t })
    t = 4_000
    bar.tick(2, 'N=1,000')
    // 2 units in 4 s: 8 left take 16 s.
    expect(bar.line()).toMatch(/bench \[#{5}-{19}\]\s+20% 2\/10 {2}elapsed 4s {2}ETA 16s {2}N=1,000/)
  })

  it('redraws one line on a terminal and ends it once', () => {
    let t = 0
    const { stream, writes } = fakeStream(true)
    const bar = progress({ label: 'x', total: 2, stream, now: () => t })
    t = 1000
    bar.tick()
    bar.tick()
    bar.done()
    bar.done()
    expect(writes.filter((w) => w === '\n')).toHaveLength(1)
    expect(writes.slice(0, -1).every((w) => w.startsWith('\r'))).toBe(true)
    expect(writes.at(-2)).toContain('100% 2/2')
  })

  it('writes plain lines no more often than logEveryMs off a terminal, and a last one when done', () => {
    let t = 0
    const { stream, writes } = fakeStream(false)
    const bar = progress({ label: 'x', total: 100, stream, now: () => t, logEveryMs: 10_000 })
    for (let i = 0; i < 100; i++) {
      t += 500
      bar.tick()
    }
    bar.done()
    // The first line at 0 s, then one each 10 s of the 50 s, then the last.
    expect(writes.length).toBe(1 + 5 + 1)
    expect(writes.every((w) => w.endsWith('\n') && !w.includes('\r'))).toBe(true)
    expect(writes.at(-1)).toMatch(/100% 100\/100 {2}elapsed 50s {2}ETA 0s {2}done/)
  })

  it('counts added work in the total', () => {
    const { stream } = fakeStream(false)
    const bar = progress({ label: 'x', total: 1, stream, now: () => 0 })
    bar.add(3)
    expect(bar.line()).toContain('0/4')
  })
})
