/**
 * The optimizers shipped in this repo's weights/ folder (DESIGN §3), read from disk for the Node
 * runtime's first start, the D1 seed script, the benchmarks and the tests.
 */
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { z } from 'zod'
import { semverSchema } from '../contract'
import { isSettableAlias } from '../server/registry/aliases'
import type { PublishInput } from '../server/registry/publish'
import { compareSemver } from '../server/registry/semver'

/** The repo's weights/ folder. */
export const shippedWeightsDir = path.resolve(import.meta.dirname, '../../weights')

/**
 * Every weights/<name>/<version>/model.safetensors (with card.json when present, and its plots and
 * analyses: every other .png and .json file of the folder), oldest version first; a weights/<name>/aliases.json such as {"stable": "1.1.0"} names the version each alias
 * moves to when that version is registered (PublishInput.aliases).
 *
 * @throws Error naming the file when an aliases.json is malformed or names a version not shipped.
 */
export async function readShippedVersions(weightsDir = shippedWeightsDir): Promise<PublishInput[]> {
  const inputs: PublishInput[] = []
  const names = await readdir(weightsDir, { withFileTypes: true }).catch(() => [])
  for (const name of names
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()) {
    const shipped: PublishInput[] = []
    const versions = await readdir(path.join(weightsDir, name), { withFileTypes: true })
    for (const version of versions
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort(compareSemver)) {
      const dir = path.join(weightsDir, name, version)
      const weights = await readFile(path.join(dir, 'model.safetensors')).catch(() => undefined)
      if (weights === undefined) continue
      const card = await readFile(path.join(dir, 'card.json'), 'utf8').catch(() => undefined)
      const files = []
      for (const file of (await readdir(dir)).filter(isShippedFile).sort()) {
        files.push({ name: file, bytes: new Uint8Array(await readFile(path.join(dir, file))) })
      }
      shipped.push({ name, version, weights: new Uint8Array(weights), card, files })
    }
    const aliasFile = path.join(weightsDir, name, 'aliases.json')
    for (const [alias, version] of Object.entries(await readShippedAliases(aliasFile))) {
      const input = shipped.find((v) => v.version === version)
      if (input === undefined) {
        const have = shipped.map((v) => v.version).join(', ') || 'none'
        throw new Error(
          `${aliasFile}: alias '${alias}' names ${version}, which is not shipped (shipped: ${have})`,
        )
      }
      input.aliases = [...(input.aliases ?? []), alias]
    }
    inputs.push(...shipped)
  }
  return inputs
}

// A version folder's plots and analyses; golden.safetensors is for the parity tests, not the registry.
const isShippedFile = (file: string): boolean => /\.(png|json)$/.test(file) && file !== 'card.json'

// weights/<name>/aliases.json: alias → version. `latest` is not set by hand: it follows registration.
const shippedAliasesSchema = z.record(z.string(), semverSchema).superRefine((aliases, ctx) => {
  for (const alias of Object.keys(aliases)) {
    if (!isSettableAlias(alias)) {
      ctx.addIssue({
        code: 'custom',
        path: [alias],
        message:
          alias === 'latest'
            ? "'latest' always names the newest version; it cannot be set here"
            : "an alias is lowercase letters, digits and '-', starting with a letter",
      })
    }
  }
})

/** The aliases a shipped aliases.json names ({} when there is no such file). */
async function readShippedAliases(file: string): Promise<Record<string, string>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw error
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new Error(`${file} is not valid JSON (${(error as Error).message})`)
  }
  const parsed = shippedAliasesSchema.safeParse(json)
  if (!parsed.success) {
    throw new Error(
      `${file} must map aliases to versions, e.g. {"stable": "1.1.0"}: ${z.prettifyError(parsed.error)}`,
    )
  }
  return parsed.data
}
