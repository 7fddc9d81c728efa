import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { prepared } from './db'

describe('prepared', () => {
  it('builds a query once per database object and key', () => {
    const [a, b] = [{}, {}]
    let built = 0
    const build = () => ({ n: ++built })
    const first = prepared(a, 'q', build)
    expect(prepared(a, 'q', build)).toBe(first)
    expect(prepared(b, 'q', build)).not.toBe(first)
    expect(prepared(a, 'other', build)).not.toBe(first)
    expect(built).toBe(3)
  })

  it('is never given the same literal key at two places in src/ (the second would get the first query)', () => {
    const src = path.resolve(import.meta.dirname, '..')
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
    )
    const places = new Map<string, string[]>()
    for (const file of files) {
      const text = readFileSync(path.join(src, file), 'utf8')
      for (const match of text.matchAll(/prepared\(\s*\w+\s*,\s*'([^']+)'/g)) {
        places.set(match[1], [...(places.get(match[1]) ?? []), file])
      }
    }
    // The literal keys in use today (a check that the scan finds them), each at one place.
    expect(places.size).toBeGreaterThanOrEqual(7)
    const repeated = [...places].filter(([, at]) => at.length > 1)
    expect(repeated).toEqual([])
  })
})
