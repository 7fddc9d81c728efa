/** /v1/admin/*: publish versions, move aliases, deprecate, and manage clients and keys (admin key). */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { and, eq, isNull, sql } from 'drizzle-orm'
import {
  aliasPattern,
  type CreateClientResponse,
  clip,
  createClientRequestSchema,
  honoPath,
  maxRowBytes,
  moveAliasRequestSchema,
  namePattern,
  paths,
  semverPattern,
} from '../../contract'
import { apiKeys, clients, versions } from '../../db/schema'
import { createClient, createKey, requireKey } from '../auth'
import { bodyKindOf, mediaTypeOf, parseJson, readBody } from '../body'
import type { AppEnv } from '../env'
import { ApiError } from '../errors'
import { moveAlias } from '../registry/aliases'
import { filesByVersion, maxFilesBytes } from '../registry/files'
import { maxCardBytes, publishVersion } from '../registry/publish'
import { learnedDetail, versionColumns, versionInfo } from './registry'

// The key being revoked belongs to a client, or another active admin key remains.
const otherAdminKeyRemains = sql`((select role from clients where clients.id = api_keys.client_id) <> 'admin'
  or exists (select 1 from api_keys as other join clients on clients.id = other.client_id
    where clients.role = 'admin' and other.revoked_at is null and other.id <> api_keys.id))`

const maxPublishBodyBytes = maxRowBytes + maxCardBytes + maxFilesBytes + 64 * 1024

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerAdmin(app: OpenAPIHono<AppEnv<any>>): void {
  app.use('/v1/admin/*', requireKey('admin'))

  app.post(honoPath(paths.adminVersions), async (c) => {
    const deps = c.get('deps')
    if (mediaTypeOf(c.req.raw) !== 'multipart/form-data') {
      throw new ApiError(
        'unsupported_media_type',
        'send multipart/form-data with fields version, weights (model.safetensors), optionally card (card.json) and files (plots, analyses; repeat the field)',
        { accepted: ['multipart/form-data'] },
      )
    }
    const bytes = await readBody(c, maxPublishBodyBytes)
    let form: FormData
    try {
      form = await new Response(bytes, {
        headers: { 'content-type': c.req.header('content-type') ?? '' },
      }).formData()
    } catch {
      throw new ApiError('invalid_request', 'the body is not valid multipart/form-data')
    }
    const version = form.get('version')
    // workers-types declares FormData.get as string-only; both runtimes return File for file fields.
    const weights = form.get('weights') as unknown as Blob | string | null
    const card = form.get('card') as unknown as Blob | string | null
    if (typeof version !== 'string') {
      throw new ApiError('invalid_request', 'form field version is required, e.g. 1.0.0')
    }
    if (weights === null || typeof weights === 'string') {
      throw new ApiError(
        'invalid_request',
        'form field weights must be a file: curl -F weights=@model.safetensors',
      )
    }
    const cardText = card === null ? undefined : typeof card === 'string' ? card : await card.text()
    const files = []
    for (const value of form.getAll('files') as unknown as (Blob | string)[]) {
      if (typeof value === 'string' || !('name' in value) || typeof value.name !== 'string') {
        throw new ApiError(
          'invalid_request',
          'form field files must be files with names: curl -F files=@loss.png -F files=@analysis.json',
        )
      }
      files.push({ name: value.name, bytes: new Uint8Array(await value.arrayBuffer()) })
    }
    const result = await publishVersion(
      deps.db,
      {
        name: c.req.param('name'),
        version,
        weights: new Uint8Array(await weights.arrayBuffer()),
        card: cardText,
        files,
      },
      deps.now(),
    )
    return c.json(result, result.created ? 201 : 200)
  })

  app.post(honoPath(paths.adminDeprecate), async (c) => {
    const deps = c.get('deps')
    const name = c.req.param('name')
    const version = c.req.param('version')
    const where = and(eq(versions.name, name), eq(versions.version, version))
    const row = await deps.db.select({ status: versions.status }).from(versions).where(where).get()
    if (row === undefined) {
      throw new ApiError(
        'version_not_found',
        `no version ${clip(name)}@${clip(version)}; GET /v1/optimizers/${clip(name)} lists its versions`,
      )
    }
    if (row.status !== 'deprecated') {
      await deps.db
        .update(versions)
        .set({ status: 'deprecated', deprecatedAt: deps.now().toISOString() })
        .where(and(where, eq(versions.status, 'active')))
    }
    const updated = await deps.db.select(versionColumns).from(versions).where(where).get()
    const files = (await filesByVersion(deps.db, name)).get(version) ?? []
    return c.json(versionInfo(updated!, files))
  })

  app.put(honoPath(paths.adminAlias), async (c) => {
    const deps = c.get('deps')
    const name = c.req.param('name')
    const alias = c.req.param('alias')
    bodyKindOf(c.req.raw, ['json'])
    const { version } = parseJson(await readBody(c, 4096), moveAliasRequestSchema)
    if (!namePattern.test(name) || !aliasPattern.test(alias)) {
      throw new ApiError(
        'invalid_request',
        `invalid alias '${alias.slice(0, 40)}': use lowercase letters, digits and '-'`,
      )
    }
    if (semverPattern.test(alias))
      throw new ApiError('invalid_request', 'an alias cannot look like a version')
    const row = await deps.db
      .select({ digest: versions.digest, status: versions.status })
      .from(versions)
      .where(and(eq(versions.name, name), eq(versions.version, version)))
      .get()
    if (row === undefined) {
      throw new ApiError(
        'version_not_found',
        `no version ${clip(name)}@${clip(version)}; GET /v1/optimizers/${clip(name)} lists its versions`,
      )
    }
    if (row.status === 'deprecated') {
      throw new ApiError(
        'invalid_request',
        `${name}@${version} is deprecated; point aliases at an active version`,
      )
    }
    await moveAlias(deps.db, { name, alias, version, digest: row.digest }, deps.now())
    const detail = await learnedDetail(deps.db, name)
    return c.json(detail!.aliases.find((a) => a.alias === alias)!)
  })

  app.post(paths.adminClients, async (c) => {
    const deps = c.get('deps')
    bodyKindOf(c.req.raw, ['json'])
    const { name } = parseJson(await readBody(c, 4096), createClientRequestSchema)
    const made = await createClient(deps.db, { name, role: 'client' }, deps.now(), deps.randomBytes)
    const body: CreateClientResponse = { client: made.client, key: made.key, secret: made.secret }
    return c.json(body, 201)
  })

  app.post(honoPath(paths.adminClientKeys), async (c) => {
    const deps = c.get('deps')
    const id = c.req.param('id')
    const client = await deps.db.select({ id: clients.id }).from(clients).where(eq(clients.id, id)).get()
    if (client === undefined) throw new ApiError('not_found', `no client '${id.slice(0, 80)}'`)
    return c.json(await createKey(deps.db, id, deps.now(), deps.randomBytes), 201)
  })

  app.delete(honoPath(paths.adminKey), async (c) => {
    const deps = c.get('deps')
    const id = c.req.param('id')
    // One conditional statement, so two revocations at once cannot both take the last two admin
    // keys (D1 has no transactions across statements).
    const revoked = await deps.db
      .update(apiKeys)
      .set({ revokedAt: deps.now().toISOString() })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt), otherAdminKeyRemains))
      .returning({ id: apiKeys.id })
    const key = await deps.db
      .select({
        id: apiKeys.id,
        clientId: apiKeys.clientId,
        prefix: apiKeys.prefix,
        createdAt: apiKeys.createdAt,
        revokedAt: apiKeys.revokedAt,
      })
      .from(apiKeys)
      .where(eq(apiKeys.id, id))
      .get()
    if (key === undefined) throw new ApiError('key_not_found', `no key '${id.slice(0, 80)}'`)
    if (revoked.length === 0 && key.revokedAt === null) {
      throw new ApiError(
        'last_admin_key',
        `key '${id}' is the last active admin key; create another admin key before revoking this one`,
      )
    }
    return c.json(key)
  })
}
