import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const dir = path.dirname(fileURLToPath(import.meta.url))
const sources = (folder: string): string[] =>
  readdirSync(folder, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(folder, e.name)
    if (e.isDirectory()) return sources(full)
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [full] : []
  })

// The SDK must run in Node, browsers and Workers: Web APIs only, and imports from the contract,
// the (pure) safetensors codec and tfjs-core, never from the server, runtime, db or core.
const allowed = [/^\.\.?\//, /^zod$/, /^@tensorflow\/tfjs-core$/]
const allowedUp = [/^(\.\.\/)+contract$/, /^(\.\.\/)+safetensors$/]

describe('SDK portability', () => {
  for (const file of sources(dir)) {
    const name = path.relative(dir, file)
    it(`${name} imports only the contract, the codec, zod and tfjs-core, and no Node APIs`, () => {
      const text = readFileSync(file, 'utf8')
      const specifiers = [...text.matchAll(/^\s*(?:import|export)[^'"]*from\s+'([^']+)'/gm)].map((m) => m[1])
      for (const s of specifiers) {
        expect(
          allowed.some((r) => r.test(s)),
          s,
        ).toBe(true)
        if (s.startsWith('../') && !s.startsWith('../resources')) {
          const inSdk = path.resolve(path.dirname(file), s).startsWith(dir)
          expect(inSdk || allowedUp.some((r) => r.test(s)), s).toBe(true)
        }
      }
      const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
      expect(code).not.toMatch(/\bBuffer\b|\bprocess\.|\brequire\(|from 'node:/)
    })
  }
})
