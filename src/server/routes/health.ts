/**
 * GET /healthz: liveness, the runtime, the tfjs backend in use, and the kernel learned optimizers
 * run on: `fused-wasm` (src/core/fused), or `tfjs-<backend>` where the runtime has no fused kernel.
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { routes } from '../../contract'
import type { AppEnv } from '../env'

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerHealth(app: OpenAPIHono<AppEnv<any>>): void {
  app.get(routes.health, async (c) => {
    const deps = c.get('deps')
    const backend = await deps.initTf()
    const kernel = deps.kernel === undefined ? `tfjs-${backend}` : 'fused-wasm'
    return c.json({ status: 'ok' as const, runtime: deps.runtime, backend, kernel })
  })
}
