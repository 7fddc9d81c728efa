/**
 * GET /openapi.json and GET /docs: the API described from the contract's zod schemas, and that
 * document in Swagger UI (swagger-ui-dist, built into the console's assets and served by this
 * server: no CDN), whose "Try it out" calls this same server.
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import { routes } from '../../contract'
import type { AppEnv } from '../env'
import { openApiDocument } from '../openapi'

/** Where the console build (console/build.ts) puts Swagger UI and the page's own script. */
export const docsAssets = {
  css: '/assets/swagger/swagger-ui.css',
  bundle: '/assets/swagger/swagger-ui-bundle.js',
  start: '/assets/docs.js',
} as const

// No inline script, so the page keeps a strict Content-Security-Policy; docs.js reads the
// document's URL from data-openapi.
const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>l2o API docs</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${docsAssets.css}">
<style>body { margin: 0 } .l2o-bar { font: 14px system-ui, sans-serif; padding: 8px 20px; background: #1b2a3a; color: #fff }
.l2o-bar a { color: #9fd3ff; margin-right: 16px } .l2o-missing { font: 15px system-ui, sans-serif; padding: 20px }</style>
</head>
<body>
<nav class="l2o-bar"><a href="/">← console</a><a href="${routes.openapi}">openapi.json</a></nav>
<div id="swagger-ui" data-openapi="${routes.openapi}"><p class="l2o-missing">Loading the API description… If this stays, the console assets are not built: run <code>npm run build:console</code>, or read <a href="${routes.openapi}">${routes.openapi}</a>.</p></div>
<script src="${docsAssets.bundle}"></script>
<script type="module" src="${docsAssets.start}"></script>
</body>
</html>
`

// biome-ignore lint/suspicious/noExplicitAny: routes are independent of the runtime's bindings.
export function registerDocs(app: OpenAPIHono<AppEnv<any>>): void {
  let document: Record<string, unknown> | undefined
  app.get(routes.openapi, (c) => {
    document ??= openApiDocument(app)
    return c.json(document)
  })
  app.get(routes.docs, (c) =>
    c.html(page, 200, {
      'Content-Security-Policy':
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'",
    }),
  )
}
