/**
 * /docs: Swagger UI (swagger-ui-bundle.js, loaded before this module by the page) on this server's
 * /openapi.json. "Try it out" is on for every operation and calls this same origin.
 */
declare global {
  interface Window {
    SwaggerUIBundle?: ((options: Record<string, unknown>) => unknown) & { presets: { apis: unknown } }
  }
}

const root = document.getElementById('swagger-ui')
const SwaggerUIBundle = window.SwaggerUIBundle
if (root !== null && SwaggerUIBundle !== undefined) {
  root.textContent = ''
  SwaggerUIBundle({
    url: root.dataset.openapi ?? '/openapi.json',
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    tryItOutEnabled: true,
    persistAuthorization: true,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    // Swagger UI asks a validator service for a badge unless told not to: stay offline.
    validatorUrl: null,
  })
}

export {}
