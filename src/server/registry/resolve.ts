/** Resolving a reference (DESIGN §4) to exactly one optimizer: a learned version or a baseline. */
import { and, desc, eq } from 'drizzle-orm'
import { type Architecture, parseReference, type Reference, stateSize } from '../../contract'
import { isBaseline } from '../../core'
import type { Db } from '../../db/db'
import { aliases, aliasHistory, optimizers, versions } from '../../db/schema'
import { ApiError } from '../errors'
import { type BaselineConfig, baselineConfig } from './baselines'

/** A resolved learned optimizer version (the weights stay in the database until needed). */
export interface LearnedTarget {
  kind: 'learned'
  name: string
  version: string
  digest: string
  deprecatedAt: string | null
  architecture: Architecture
  /** Floats of state per coordinate (S), from the architecture. */
  stateSize: number
  /** name@version, as responses name it. */
  label: string
}

/** A resolved baseline, with its optimizer ready to use. */
export interface BaselineTarget extends BaselineConfig {
  kind: 'baseline'
  stateSize: number
  label: string
}

/** What a reference resolves to. */
export type Target = LearnedTarget | BaselineTarget

/** Parses a reference or throws invalid_reference. */
export function parseOrThrow(text: string): Reference {
  const parsed = parseReference(text)
  if (!parsed.ok) throw new ApiError('invalid_reference', parsed.message)
  return parsed.ref
}

const versionColumns = {
  name: versions.name,
  version: versions.version,
  digest: versions.digest,
  status: versions.status,
  deprecatedAt: versions.deprecatedAt,
  architecture: versions.architecture,
}

type VersionRow = {
  name: string
  version: string
  digest: string
  deprecatedAt: string | null
  architecture: string
}

function learned(row: VersionRow): LearnedTarget {
  const architecture = JSON.parse(row.architecture) as Architecture
  return {
    kind: 'learned',
    name: row.name,
    version: row.version,
    digest: row.digest,
    deprecatedAt: row.deprecatedAt,
    architecture,
    stateSize: stateSize(architecture),
    label: `${row.name}@${row.version}`,
  }
}

/**
 * Resolves a reference. Alias resolution skips deprecated versions: it falls back along the alias's
 * history to the most recent target that is still active. Pinned versions and digests resolve
 * whatever their status (the caller adds the Deprecation header).
 *
 * @throws ApiError invalid_reference, optimizer_not_found, version_not_found, invalid_hyperparameters.
 */
export async function resolveReference(db: Db, text: string, hyperparameters?: unknown): Promise<Target> {
  const ref = parseOrThrow(text)
  if (isBaseline(ref.name)) return resolveBaseline(ref, hyperparameters)
  if (hyperparameters !== undefined && Object.keys(hyperparameters as object).length > 0) {
    throw new ApiError(
      'invalid_hyperparameters',
      `${ref.name} is a learned optimizer: its hyper-parameters are in its weight file; send none`,
    )
  }
  if (ref.kind === 'version') {
    const row = await db
      .select(versionColumns)
      .from(versions)
      .where(and(eq(versions.name, ref.name), eq(versions.version, ref.version)))
      .get()
    if (row !== undefined) return learned(row)
    await assertOptimizerExists(db, ref.name)
    throw new ApiError(
      'version_not_found',
      `no version ${ref.name}@${ref.version}; GET /v1/optimizers/${ref.name} lists its versions`,
    )
  }
  if (ref.kind === 'digest') {
    const row = await db
      .select(versionColumns)
      .from(versions)
      .where(and(eq(versions.name, ref.name), eq(versions.digest, ref.digest)))
      .get()
    if (row !== undefined) return learned(row)
    await assertOptimizerExists(db, ref.name)
    throw new ApiError(
      'version_not_found',
      `${ref.name} has no version with digest ${ref.digest}; GET /v1/optimizers/${ref.name} lists its versions`,
    )
  }
  const alias = await db
    .select({ version: aliases.version })
    .from(aliases)
    .where(and(eq(aliases.name, ref.name), eq(aliases.alias, ref.alias)))
    .get()
  if (alias === undefined) {
    await assertOptimizerExists(db, ref.name)
    throw new ApiError(
      'version_not_found',
      `${ref.name} has no alias '${ref.alias}'; GET /v1/optimizers/${ref.name} lists its aliases`,
    )
  }
  const current = await db
    .select(versionColumns)
    .from(versions)
    .where(and(eq(versions.name, ref.name), eq(versions.version, alias.version)))
    .get()
  if (current !== undefined && current.status === 'active') return learned(current)
  // The alias points at a deprecated version: the newest earlier target that is still active.
  const history = await db
    .select({ version: aliasHistory.version })
    .from(aliasHistory)
    .where(and(eq(aliasHistory.name, ref.name), eq(aliasHistory.alias, ref.alias)))
    .orderBy(desc(aliasHistory.id))
    .limit(50)
  for (const { version } of history) {
    const row = await db
      .select(versionColumns)
      .from(versions)
      .where(and(eq(versions.name, ref.name), eq(versions.version, version)))
      .get()
    if (row !== undefined && row.status === 'active') return learned(row)
  }
  throw new ApiError(
    'version_not_found',
    `every version ${ref.name}@${ref.alias} pointed to is deprecated; pin a version (name@1.0.0) or ask an admin to move the alias`,
  )
}

async function assertOptimizerExists(db: Db, name: string): Promise<void> {
  const row = await db
    .select({ name: optimizers.name })
    .from(optimizers)
    .where(eq(optimizers.name, name))
    .get()
  if (row === undefined) {
    throw new ApiError('optimizer_not_found', `no optimizer '${name}'; GET /v1/optimizers lists them`)
  }
}

async function resolveBaseline(ref: Reference, hyperparameters: unknown): Promise<BaselineTarget> {
  if (ref.kind === 'version') {
    throw new ApiError(
      'version_not_found',
      `${ref.name} is a built-in baseline without versions; use '${ref.name}' (its hyper-parameters go in the request)`,
    )
  }
  if (ref.kind === 'alias' && ref.alias !== 'stable' && ref.alias !== 'latest') {
    throw new ApiError(
      'version_not_found',
      `${ref.name} is a built-in baseline without aliases; use '${ref.name}'`,
    )
  }
  const config = await baselineConfig(ref.name as BaselineTarget['name'], hyperparameters)
  if (ref.kind === 'digest' && ref.digest !== config.digest) {
    throw new ApiError(
      'digest_mismatch',
      `${ref.name} with these hyper-parameters has digest ${config.digest}, not ${ref.digest}; send the hyper-parameters the digest was made with`,
      { expectedDigest: ref.digest, resolvedDigest: config.digest },
    )
  }
  return { kind: 'baseline', ...config, stateSize: config.optimizer.stateSize, label: config.name }
}
