/** GET /healthz: liveness plus the runtime and the tfjs backend in use. */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { routes } from '../../contract'
import type { AppEnv } from '../env'

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerHealth(app: OpenAPIHono<AppEnv<any>>): void {
  app.get(routes.health, async (c) => {
    const deps = c.get('deps')
    const backend = await deps.initTf()
    return c.json({ status: 'ok' as const, runtime: deps.runtime, backend })
  })
}
