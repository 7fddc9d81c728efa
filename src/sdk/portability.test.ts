import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { importSpecifiers, sourceFiles as sources, withoutComments } from '../../test/support/sources'

const dir = path.dirname(fileURLToPath(import.meta.url))

// The SDK must run in Node, browsers and Workers: Web APIs only, and imports from the contract,
// the (pure) safetensors codec and zod, never from the server, runtime, db or core. tf.js belongs
// to the `l2o/tf` entry (tf.ts) alone.
const allowed = [/^\.\.?\//, /^zod$/]
const allowedIn: Record<string, RegExp[]> = { 'tf.ts': [/^@tensorflow\/tfjs-core$/] }
const allowedUp = [/^(\.\.\/)+contract$/, /^(\.\.\/)+safetensors$/]

describe('SDK portability', () => {
  for (const file of sources(dir)) {
    const name = path.relative(dir, file)
    it(`${name} imports only the contract, the codec and zod (tf.ts also tfjs-core), and no Node APIs`, () => {
      for (const s of importSpecifiers(readFileSync(file, 'utf8'))) {
        expect(
          [...allowed, ...(allowedIn[name] ?? [])].some((r) => r.test(s)),
          s,
        ).toBe(true)
        if (s.startsWith('../') && !s.startsWith('../resources')) {
          const inSdk = path.resolve(path.dirname(file), s).startsWith(dir)
          expect(inSdk || allowedUp.some((r) => r.test(s)), s).toBe(true)
        }
      }
      const code = withoutComments(readFileSync(file, 'utf8'))
      expect(code).not.toMatch(/\bBuffer\b|\bprocess\.|\brequire\(|from 'node:/)
    })
  }

  it('keeps the root entry (`l2o`) fetch-only: nothing it loads imports tf.js', () => {
    const seen = new Set<string>()
    const packages = new Set<string>()
    const visit = (file: string) => {
      if (seen.has(file)) return
      seen.add(file)
      // Type-only imports load nothing at run time.
      for (const s of importSpecifiers(readFileSync(file, 'utf8'), { loaded: true })) {
        if (!s.startsWith('.')) {
          packages.add(s)
          continue
        }
        const base = path.resolve(path.dirname(file), s)
        visit(existsSync(`${base}.ts`) ? `${base}.ts` : path.join(base, 'index.ts'))
      }
    }
    visit(path.join(dir, 'index.ts'))
    expect([...packages].sort()).toEqual(['zod'])
    expect(seen.has(path.join(dir, 'tf.ts'))).toBe(false)
  })
})
