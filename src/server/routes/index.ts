/** Every route of the API, registered on one app. */
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { AppEnv } from '../env'
import { registerHealth } from './health'

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerRoutes(app: OpenAPIHono<AppEnv<any>>): void {
  registerHealth(app)
}
