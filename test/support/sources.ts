/** Reading the repo's own TypeScript sources, for the tests that check which way imports point. */
import { readdirSync } from 'node:fs'
import path from 'node:path'

/** Every non-test .ts file under `folder`. */
export function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(folder, e.name)
    if (e.isDirectory()) return sourceFiles(full)
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [full] : []
  })
}

/** The specifiers a module imports or re-exports from; `loaded`: only those that load code (not `import type`). */
export function importSpecifiers(text: string, { loaded = false } = {}): string[] {
  const pattern = loaded
    ? /^\s*(?:import|export)\s+(?!type\s)[^'"]*from\s+'([^']+)'/gm
    : /^\s*(?:import|export)[^'"]*from\s+'([^']+)'/gm
  return [...text.matchAll(pattern)].map((m) => m[1])
}

/** The code without its comments. */
export function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '')
}
