/** Resolving a reference (DESIGN §4) to exactly one optimizer: a learned version or a baseline. */
import { and, desc, eq, sql } from 'drizzle-orm'
import {
  type Architecture,
  digestPattern,
  metadataKeys,
  parseReference,
  type Reference,
  stateSize,
} from '../../contract'
import { isBaseline } from '../../core'
import { type Db, prepared } from '../../db/db'
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

/** A resolved baseline, with its optimizer ready to use. Baselines are never deprecated. */
export interface BaselineTarget extends BaselineConfig {
  kind: 'baseline'
  stateSize: number
  label: string
  deprecatedAt: null
}

/** What a reference resolves to. */
export type Target = LearnedTarget | BaselineTarget

/** Checks the digest field's form; a state without one is refused, since it is bound to its digest. */
export function checkDigestField(digest: string | undefined, hasState: boolean): string | undefined {
  if (digest !== undefined && !digestPattern.test(digest)) {
    throw new ApiError(
      'invalid_request',
      `digest '${digest.slice(0, 80)}' is not sha256: followed by 64 hex digits`,
    )
  }
  if (digest === undefined && hasState) {
    throw new ApiError(
      'invalid_request',
      `a state must come with the digest it was made under (the '${metadataKeys.digest}' the step that returned it named)`,
    )
  }
  return digest
}

/** 409 when the request is bound to another digest than the reference resolves to. */
export function checkDigest(target: Target, digest: string | undefined): void {
  if (digest !== undefined && digest !== target.digest) {
    throw new ApiError(
      'digest_mismatch',
      `the request is bound to ${digest}, but ${target.label} resolves to ${target.digest}; reference the optimizer by that digest (name@${digest}) or start from a fresh state`,
      { expectedDigest: digest, resolvedDigest: target.digest },
    )
  }
}

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
  checkHyperparameters(ref, hyperparameters)
  if (isBaseline(ref.name)) return resolveBaseline(ref, hyperparameters)
  if (ref.kind === 'version' || ref.kind === 'digest') {
    const row =
      ref.kind === 'version'
        ? await versionRow(db, ref.name, versions.version, ref.version)
        : await versionRow(db, ref.name, versions.digest, ref.digest)
    if (row !== undefined) return learned(row)
    await assertOptimizerExists(db, ref.name)
    const missing =
      ref.kind === 'version'
        ? `no version ${ref.name}@${ref.version}`
        : `${ref.name} has no version with digest ${ref.digest}`
    throw new ApiError('version_not_found', `${missing}; GET /v1/optimizers/${ref.name} lists its versions`)
  }
  const aliasQuery = prepared(db, 'aliasVersion', () =>
    db
      .select({ version: aliases.version })
      .from(aliases)
      .where(and(eq(aliases.name, sql.placeholder('name')), eq(aliases.alias, sql.placeholder('alias'))))
      .prepare(),
  )
  const alias = await aliasQuery.get({ name: ref.name, alias: ref.alias })
  if (alias === undefined) {
    await assertOptimizerExists(db, ref.name)
    throw new ApiError(
      'version_not_found',
      `${ref.name} has no alias '${ref.alias}'; GET /v1/optimizers/${ref.name} lists its aliases`,
    )
  }
  const current = await versionRow(db, ref.name, versions.version, alias.version)
  if (current !== undefined && current.status === 'active') return learned(current)
  // The alias points at a deprecated version: the newest earlier target that is still active.
  const history = await db
    .select({ version: aliasHistory.version })
    .from(aliasHistory)
    .where(and(eq(aliasHistory.name, ref.name), eq(aliasHistory.alias, ref.alias)))
    .orderBy(desc(aliasHistory.id))
    .limit(50)
  for (const { version } of history) {
    const row = await versionRow(db, ref.name, versions.version, version)
    if (row !== undefined && row.status === 'active') return learned(row)
  }
  throw new ApiError(
    'version_not_found',
    `every version ${ref.name}@${ref.alias} pointed to is deprecated; pin a version (name@1.0.0) or ask an admin to move the alias`,
  )
}

/**
 * Resolves the reference of a request bound to `digest` (the digest its state was made under, or a
 * pin; DESIGN §4): a learned optimizer named by `name` or `name@alias` is served under `digest`
 * when that is a version of the same name, deprecated or not, so a run survives an alias move.
 * Anything else must resolve to `digest` itself: a digest of another name, an unknown one, or one
 * that contradicts `name@version` or `name@sha256:…` is 409 digest_mismatch.
 */
export async function resolveBound(
  db: Db,
  text: string,
  hyperparameters: unknown,
  digest: string | undefined,
): Promise<Target> {
  if (digest !== undefined) {
    const ref = parseOrThrow(text)
    if (!isBaseline(ref.name) && ref.kind === 'alias') {
      checkHyperparameters(ref, hyperparameters)
      const pinned = await versionRow(db, ref.name, versions.digest, digest)
      if (pinned !== undefined) return learned(pinned)
    }
  }
  const target = await resolveReference(db, text, hyperparameters)
  checkDigest(target, digest)
  return target
}

/** One rule for every way hyper-parameters arrive (query, metadata, JSON): absent or an object, and none for a learned optimizer. */
function checkHyperparameters(ref: Reference, hyperparameters: unknown): void {
  if (hyperparameters !== undefined && !isJsonObject(hyperparameters)) {
    throw new ApiError(
      'invalid_hyperparameters',
      `hyperparameters must be a JSON object, e.g. {"learningRate":0.01}, or absent; got ${hyperparameters === null ? 'null' : Array.isArray(hyperparameters) ? 'an array' : typeof hyperparameters}`,
    )
  }
  if (!isBaseline(ref.name) && hyperparameters !== undefined && Object.keys(hyperparameters).length > 0) {
    throw new ApiError(
      'invalid_hyperparameters',
      `${ref.name} is a learned optimizer: its hyper-parameters are in its weight file; send none`,
    )
  }
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The version of `name` whose `column` (its version or its digest) is `value`. */
function versionRow(
  db: Db,
  name: string,
  column: typeof versions.version | typeof versions.digest,
  value: string,
) {
  const query = prepared(db, `versionRow:${column.name}`, () =>
    db
      .select(versionColumns)
      .from(versions)
      .where(and(eq(versions.name, sql.placeholder('name')), eq(column, sql.placeholder('value'))))
      .prepare(),
  )
  return query.get({ name, value })
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
  return baselineTarget(config)
}

/**
 * What a session (or anything else stored with its pin) runs under: a learned optimizer by its
 * digest, a baseline by its stored hyper-parameters (JSON).
 */
export async function resolvePinned(
  db: Db,
  pin: { optimizer: string; digest: string; hyperparameters: string | null },
): Promise<Target> {
  const name = pin.optimizer.split('@')[0]
  if (isBaseline(name))
    return baselineTarget(await baselineConfig(name, JSON.parse(pin.hyperparameters ?? '{}')))
  return resolveReference(db, `${name}@${pin.digest}`)
}

const baselineTarget = (config: BaselineConfig): BaselineTarget => ({
  kind: 'baseline',
  ...config,
  stateSize: config.optimizer.stateSize,
  label: config.name,
  deprecatedAt: null,
})
