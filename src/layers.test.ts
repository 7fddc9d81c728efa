import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { importSpecifiers, sourceFiles as sources, withoutComments } from '../test/support/sources'

// Which way imports point (STYLE "Layout"; DESIGN §1): runtime → server → weights → core → contract,
// with the codec and the database schema beside them. Each folder of src/ may import only the
// folders and packages listed here. The SDK has its own, stricter test (sdk/portability.test.ts).
const layers: Record<string, { folders: string[]; packages: RegExp[] }> = {
  contract: { folders: [], packages: [/^zod$/] },
  safetensors: { folders: [], packages: [/^zod$/] },
  db: { folders: [], packages: [/^drizzle-orm(\/|$)/] },
  core: { folders: ['contract'], packages: [/^@tensorflow\/tfjs-core$/] },
  weights: { folders: ['contract', 'core', 'safetensors'], packages: [] },
  server: {
    folders: ['contract', 'core', 'db', 'safetensors', 'weights'],
    packages: [/^hono(\/|$)/, /^@hono\/zod-openapi$/, /^drizzle-orm(\/|$)/, /^zod$/],
  },
  runtime: {
    // ../shard-migrations: drizzle-kit's output for the session-shards Durable Object's storage.
    folders: ['contract', 'core', 'db', 'safetensors', 'server', 'weights', '../shard-migrations'],
    packages: [
      /^node:/,
      /^cloudflare:workers$/,
      /^@hono\/node-server$/,
      /^@tensorflow\//,
      /^better-sqlite3$/,
      /^drizzle-orm(\/|$)/,
      /^zod$/,
    ],
  },
}

const src = import.meta.dirname

describe('layers', () => {
  it('covers every folder of src/ but the SDK', () => {
    const folders = readdirSync(src, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
    expect(folders.filter((f) => f !== 'sdk').sort()).toEqual(Object.keys(layers).sort())
  })

  for (const [layer, rule] of Object.entries(layers)) {
    for (const file of sources(path.join(src, layer))) {
      const name = path.relative(src, file)
      it(`${name} imports only ${[...rule.folders, 'its own folder'].join(', ')} and its packages`, () => {
        for (const s of importSpecifiers(readFileSync(file, 'utf8'))) {
          if (s.startsWith('.')) {
            const parts = path.relative(src, path.resolve(path.dirname(file), s)).split(path.sep)
            // A folder of src/, or one beside it (`../name`).
            const target = parts[0] === '..' ? `../${parts[1]}` : parts[0]
            expect([layer, ...rule.folders], `${s} (${target})`).toContain(target)
          } else {
            expect(
              rule.packages.some((r) => r.test(s)),
              s,
            ).toBe(true)
          }
        }
      })
    }
  }

  // STYLE smell 1: the optimizer math is pure, so it runs the same in every runtime and every test.
  for (const file of sources(path.join(src, 'core'))) {
    it(`${path.relative(src, file)} touches no clock, randomness, console, env or backend choice`, () => {
      const code = withoutComments(readFileSync(file, 'utf8'))
      expect(code).not.toMatch(/\bDate\b|Math\.random|\bconsole\.|\bprocess\.|setBackend/)
    })
  }

  // The server runs on Workers as well as Node: no Node APIs below the runtime.
  for (const layer of ['contract', 'safetensors', 'core', 'weights', 'db', 'server']) {
    for (const file of sources(path.join(src, layer))) {
      it(`${path.relative(src, file)} uses no Node APIs`, () => {
        const code = withoutComments(readFileSync(file, 'utf8'))
        expect(code).not.toMatch(/\bBuffer\b|\bprocess\.|\brequire\(|from 'node:/)
      })
    }
  }
})
