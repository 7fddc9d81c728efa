/** Every route of the API, registered on one app. */
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { AppEnv } from '../env'
import { registerOpenApi } from '../openapi'
import { registerAdmin } from './admin'
import { registerDocs } from './docs'
import { registerHealth } from './health'
import { registerQuotas } from './quotas'
import { registerRegistry } from './registry'
import { registerSessions } from './sessions'
import { registerStep } from './step'

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerRoutes(app: OpenAPIHono<AppEnv<any>>): void {
  registerHealth(app)
  registerRegistry(app)
  registerStep(app)
  registerSessions(app)
  registerAdmin(app)
  registerQuotas(app)
  registerDocs(app)
  registerOpenApi(app)
}
