/** GET /openapi.json and GET /docs: the API described from the contract's zod schemas. */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { routes } from '../../contract'
import { renderDocs } from '../docs-html'
import type { AppEnv } from '../env'
import { openApiDocument } from '../openapi'

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerDocs(app: OpenAPIHono<AppEnv<any>>): void {
  let document: Record<string, unknown> | undefined
  let page: string | undefined
  const doc = () => {
    document ??= openApiDocument(app)
    return document
  }
  app.get(routes.openapi, (c) => c.json(doc()))
  app.get(routes.docs, (c) => {
    page ??= renderDocs(doc())
    return c.html(page)
  })
}
