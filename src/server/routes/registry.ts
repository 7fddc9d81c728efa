/** Public registry reads: list optimizers, show one, resolve a reference (DESIGN §4). */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { asc, eq } from 'drizzle-orm'
import {
  type AliasInfo,
  type Architecture,
  honoPath,
  namePattern,
  type OptimizerDetail,
  type OptimizerSummary,
  paths,
  type Resolved,
  routes,
  stateDtypes,
  type VersionFile,
  type VersionInfo,
} from '../../contract'
import { type Baseline, baselineDefaults, baselineNames, baselines, isBaseline } from '../../core'
import type { Db } from '../../db/db'
import { aliases, aliasHistory, optimizers, versions } from '../../db/schema'
import { coordinateLimit, stepHeaders } from '../compute'
import type { AppEnv } from '../env'
import { ApiError } from '../errors'
import { filesByVersion, readVersionFile } from '../registry/files'
import { resolveReference } from '../registry/resolve'
import { compareSemver } from '../registry/semver'

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerRegistry(app: OpenAPIHono<AppEnv<any>>): void {
  app.get(routes.optimizers, async (c) => {
    const { db } = c.get('deps')
    const names = await db.select().from(optimizers).orderBy(asc(optimizers.name))
    const versionRows = await db.select({ name: versions.name, version: versions.version }).from(versions)
    const aliasRows = await db
      .select({ name: aliases.name, alias: aliases.alias, version: aliases.version })
      .from(aliases)
    const learned: OptimizerSummary[] = names.map((o) => ({
      name: o.name,
      kind: 'learned',
      description: o.description,
      versions: versionRows
        .filter((v) => v.name === o.name)
        .map((v) => v.version)
        .sort(compareSemver),
      aliases: Object.fromEntries(
        aliasRows.filter((a) => a.name === o.name).map((a) => [a.alias, a.version]),
      ),
    }))
    const builtIn: OptimizerSummary[] = baselineNames.map((name) => ({
      name,
      kind: 'baseline',
      description: baselines[name].description,
      versions: [],
      aliases: {},
    }))
    return c.json({ optimizers: [...learned, ...builtIn] })
  })

  app.get(honoPath(paths.optimizer), async (c) => {
    const name = c.req.param('name')
    if (isBaseline(name)) {
      const detail: OptimizerDetail = {
        name,
        kind: 'baseline',
        description: baselines[name].description,
        versions: [],
        aliases: [],
        hyperparameters: baselineDefaults(name),
        hyperparameterSpecs: Object.fromEntries(
          Object.entries(baselines[name].hyperparameters as Baseline['hyperparameters']).map(
            ([key, spec]) => [
              key,
              spec.default === undefined
                ? { range: spec.range.text }
                : { range: spec.range.text, default: spec.default },
            ],
          ),
        ),
      }
      return c.json(detail)
    }
    const detail = await learnedDetail(c.get('deps').db, name)
    if (detail === undefined) {
      throw new ApiError(
        'optimizer_not_found',
        `no optimizer '${name.slice(0, 80)}'; GET /v1/optimizers lists them`,
      )
    }
    return c.json(detail)
  })

  app.get(honoPath(paths.versionFile), async (c) => {
    const { name, version, file } = c.req.param()
    const found = await readVersionFile(c.get('deps').db, name, version, file)
    if (found === undefined) {
      throw new ApiError(
        'not_found',
        `no file '${file.slice(0, 100)}' in ${name.slice(0, 80)}@${version.slice(0, 40)}; GET /v1/optimizers/${name.slice(0, 80)} lists each version's files`,
      )
    }
    const etag = `"${found.info.digest}"`
    const headers = {
      ETag: etag,
      // A version's files never change: cache them for a year.
      'Cache-Control': 'public, max-age=31536000, immutable',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'none'; sandbox",
    }
    if (c.req.header('if-none-match') === etag) return c.body(null, 304, headers)
    return c.body(found.bytes as Uint8Array<ArrayBuffer>, 200, {
      ...headers,
      'Content-Type': found.info.mediaType,
    })
  })

  app.get(routes.resolve, async (c) => {
    const deps = c.get('deps')
    const ref = c.req.query('ref')
    if (ref === undefined || ref === '') {
      throw new ApiError(
        'invalid_request',
        'query parameter ref is required, e.g. /v1/resolve?ref=l2o-mnist@stable',
      )
    }
    const hpText = c.req.query('hyperparameters')
    let hyperparameters: unknown
    if (hpText !== undefined) {
      try {
        hyperparameters = JSON.parse(hpText)
      } catch {
        throw new ApiError(
          'invalid_hyperparameters',
          'query parameter hyperparameters is not JSON; send e.g. {"learningRate":0.01}',
        )
      }
    }
    const target = await resolveReference(deps.db, ref, hyperparameters)
    const body: Resolved = {
      reference: ref,
      name: target.name,
      kind: target.kind,
      version: target.kind === 'learned' ? target.version : null,
      digest: target.digest,
      deprecated: target.deprecatedAt !== null,
      architecture: target.kind === 'learned' ? target.architecture : null,
      hyperparameters: target.kind === 'baseline' ? target.hyperparameters : null,
      stateSize: target.stateSize,
      maxCoordinatesPerRequest: coordinateLimit(
        target.stateSize,
        deps.maxCoordinatesPerRequest,
        deps.maxBinaryStepBytes,
      ),
      stateDtypes: [...stateDtypes],
    }
    return c.json(body, 200, stepHeaders(target))
  })
}

/** A learned optimizer with every version (oldest first) and every alias with its history. */
export async function learnedDetail(db: Db, name: string): Promise<OptimizerDetail | undefined> {
  if (!namePattern.test(name)) return undefined
  const optimizer = await db.select().from(optimizers).where(eq(optimizers.name, name)).get()
  if (optimizer === undefined) return undefined
  const versionRows = await db.select(versionColumns).from(versions).where(eq(versions.name, name))
  const aliasRows = await db.select().from(aliases).where(eq(aliases.name, name)).orderBy(asc(aliases.alias))
  const historyRows = await db
    .select()
    .from(aliasHistory)
    .where(eq(aliasHistory.name, name))
    .orderBy(asc(aliasHistory.id))
  const files = await filesByVersion(db, name)
  return {
    name,
    kind: 'learned',
    description: optimizer.description,
    versions: versionRows
      .sort((a, b) => compareSemver(a.version, b.version))
      .map((v) => versionInfo(v, files.get(v.version) ?? [])),
    aliases: aliasRows.map(
      (a): AliasInfo => ({
        alias: a.alias,
        version: a.version,
        digest: a.digest,
        updatedAt: a.updatedAt,
        history: historyRows
          .filter((h) => h.alias === a.alias)
          .map((h) => ({ version: h.version, digest: h.digest, movedAt: h.movedAt })),
      }),
    ),
  }
}

/** The columns of a version that the API shows: everything but the weight file itself. */
export const versionColumns = {
  name: versions.name,
  version: versions.version,
  digest: versions.digest,
  status: versions.status,
  createdAt: versions.createdAt,
  sizeBytes: versions.sizeBytes,
  architecture: versions.architecture,
  card: versions.card,
}

/** A version row, with its files, as the API shows it. */
export function versionInfo(
  row: {
    name: string
    version: string
    digest: string
    status: 'active' | 'deprecated'
    createdAt: string
    sizeBytes: number
    architecture: string
    card: string | null
  },
  files: VersionFile[],
): VersionInfo {
  return {
    name: row.name,
    version: row.version,
    digest: row.digest,
    status: row.status,
    createdAt: row.createdAt,
    sizeBytes: row.sizeBytes,
    architecture: JSON.parse(row.architecture) as Architecture,
    card: row.card === null ? null : JSON.parse(row.card),
    files,
  }
}
