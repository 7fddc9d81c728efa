/** /v1/admin/quotas and /v1/admin/clients/{id}/quotas: read and set quotas (admin key). */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { eq } from 'drizzle-orm'
import {
  type ClientQuotas,
  clip,
  honoPath,
  paths,
  type Quotas,
  setClientQuotasRequestSchema,
  setQuotasRequestSchema,
} from '../../contract'
import type { Db } from '../../db/db'
import { clients } from '../../db/schema'
import { bodyKindOf, parseJson, readBody } from '../body'
import type { AppEnv } from '../env'
import { ApiError } from '../errors'
import { defaultScope, effectiveQuotas, quotaRow, setQuotaRow } from '../quotas'
import type { SessionStore } from '../sessions/store'

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerQuotas(app: OpenAPIHono<AppEnv<any>>): void {
  app.get(paths.adminQuotas, async (c) => c.json(await defaultQuotas(c.get('deps').db)))

  app.put(paths.adminQuotas, async (c) => {
    const deps = c.get('deps')
    bodyKindOf(c.req.raw, ['json'])
    const fields = parseJson(await readBody(c, 4096), setQuotasRequestSchema)
    await setQuotaRow(deps.db, defaultScope, fields, deps.now())
    return c.json(await defaultQuotas(deps.db))
  })

  app.get(honoPath(paths.adminClientQuotas), async (c) => {
    const deps = c.get('deps')
    const id = await existingClient(deps.db, c.req.param('id'))
    return c.json(await clientQuotas(deps.db, deps.sessions, id))
  })

  app.put(honoPath(paths.adminClientQuotas), async (c) => {
    const deps = c.get('deps')
    const id = await existingClient(deps.db, c.req.param('id'))
    bodyKindOf(c.req.raw, ['json'])
    const fields = parseJson(await readBody(c, 4096), setClientQuotasRequestSchema)
    await setQuotaRow(deps.db, id, fields, deps.now())
    return c.json(await clientQuotas(deps.db, deps.sessions, id))
  })
}

async function defaultQuotas(db: Db): Promise<Quotas> {
  return effectiveQuotas(undefined, await quotaRow(db, defaultScope))
}

async function clientQuotas(db: Db, sessions: SessionStore, clientId: string): Promise<ClientQuotas> {
  const own = await quotaRow(db, clientId)
  const { failedAuthPerMinute: _, ...quotas } = effectiveQuotas(own, await quotaRow(db, defaultScope))
  const overrides = Object.fromEntries(
    Object.entries(own ?? {}).filter(([k, v]) => v !== null && k !== 'failedAuthPerMinute'),
  )
  const usage = await sessions.usage(clientId)
  return {
    clientId,
    quotas,
    overrides,
    usage: { sessions: usage.sessions, sessionCoordinates: usage.coordinates },
  }
}

async function existingClient(db: Db, id: string): Promise<string> {
  const row = await db.select({ id: clients.id }).from(clients).where(eq(clients.id, id)).get()
  if (row === undefined)
    throw new ApiError('not_found', `no client '${clip(id)}'; POST /v1/admin/clients makes one`)
  return row.id
}
