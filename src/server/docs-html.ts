/**
 * Renders the OpenAPI document as one self-contained HTML page: no scripts, no fonts, no CDN, so
 * /docs reads the same offline.
 */

type Json = Record<string, unknown>

const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  )

// Inline code spans only: `x` → <code>x</code>; everything else escaped.
const prose = (text: unknown): string =>
  typeof text === 'string' ? escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>') : ''

const anchor = (text: string): string => text.toLowerCase().replace(/[^a-z0-9]+/g, '-')

function schemaText(schema: unknown, depth = 0): string {
  if (schema === null || typeof schema !== 'object') return escapeHtml(String(schema))
  const s = schema as Json
  if (typeof s.$ref === 'string') {
    const name = s.$ref.split('/').pop()!
    return `<a href="#schema-${anchor(name)}">${escapeHtml(name)}</a>`
  }
  if (depth > 6) return '…'
  const note = [
    s.description ? `<span class="note">${prose(s.description)}</span>` : '',
    s.example !== undefined
      ? `<span class="note">e.g. <code>${escapeHtml(JSON.stringify(s.example))}</code></span>`
      : '',
  ].join(' ')
  if (Array.isArray(s.enum))
    return `${s.enum.map((v) => `<code>${escapeHtml(JSON.stringify(v))}</code>`).join(' | ')} ${note}`
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    if (Array.isArray(s[key]))
      return (s[key] as unknown[])
        .map((x) => schemaText(x, depth + 1))
        .join(key === 'allOf' ? ' &amp; ' : ' | ')
  }
  if (s.type === 'array') return `array of ${schemaText(s.items, depth + 1)} ${note}`
  if (s.type === 'object' || s.properties !== undefined) {
    const props = Object.entries((s.properties as Json | undefined) ?? {})
    const required = new Set((s.required as string[] | undefined) ?? [])
    const extra = s.additionalProperties
    const rows = props
      .map(
        ([name, sub]) =>
          `<li><code>${escapeHtml(name)}</code>${required.has(name) ? '' : '<span class="opt">optional</span>'}: ${schemaText(sub, depth + 1)}</li>`,
      )
      .join('')
    const more =
      extra && typeof extra === 'object' ? `<li><em>any key</em>: ${schemaText(extra, depth + 1)}</li>` : ''
    return `object ${note}<ul>${rows}${more}</ul>`
  }
  const type = Array.isArray(s.type) ? s.type.join(' | ') : String(s.type ?? 'any')
  const format = s.format ? ` (${escapeHtml(String(s.format))})` : ''
  const pattern = s.pattern
    ? ` <span class="note">pattern <code>${escapeHtml(String(s.pattern))}</code></span>`
    : ''
  return `${escapeHtml(type)}${format}${pattern} ${note}`
}

function content(body: unknown): string {
  const media = ((body as Json | undefined)?.content as Json | undefined) ?? {}
  return Object.entries(media)
    .map(
      ([type, m]) =>
        `<div class="media"><code>${escapeHtml(type)}</code>: ${schemaText((m as Json).schema)}</div>`,
    )
    .join('')
}

/** The page for an OpenAPI 3.1 document. */
export function renderDocs(doc: Json): string {
  const info = doc.info as Json
  const paths = doc.paths as Record<string, Record<string, Json>>
  const schemas = ((doc.components as Json | undefined)?.schemas as Json | undefined) ?? {}
  const ops: string[] = []
  const toc: string[] = []
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(item)) {
      const id = anchor(`${method} ${path}`)
      toc.push(
        `<li><a href="#${id}"><code>${method.toUpperCase()} ${escapeHtml(path)}</code></a> ${prose(op.summary)}</li>`,
      )
      const security = Array.isArray(op.security)
        ? (op.security as Json[]).map((s) => Object.keys(s).join(', ')).join(' or ')
        : 'none (public)'
      const params = ((op.parameters as Json[] | undefined) ?? [])
        .map(
          (p) =>
            `<li><code>${escapeHtml(String(p.name))}</code> (${escapeHtml(String(p.in))}${p.required ? ', required' : ''}): ${schemaText(p.schema)}</li>`,
        )
        .join('')
      const responses = Object.entries((op.responses as Json) ?? {})
        .map(
          ([status, r]) =>
            `<li><b>${escapeHtml(status)}</b> ${prose((r as Json).description)}${content(r)}</li>`,
        )
        .join('')
      ops.push(`<section id="${id}">
<h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>
<p>${prose(op.summary)}</p>${op.description ? `<p>${prose(op.description)}</p>` : ''}
<p><b>Auth:</b> ${escapeHtml(security)}</p>
${params ? `<h4>Parameters</h4><ul>${params}</ul>` : ''}
${op.requestBody ? `<h4>Request body</h4>${content(op.requestBody)}` : ''}
<h4>Responses</h4><ul>${responses}</ul>
</section>`)
    }
  }
  const schemaSections = Object.entries(schemas)
    .map(
      ([name, schema]) =>
        `<section id="schema-${anchor(name)}"><h3>${escapeHtml(name)}</h3>${schemaText(schema)}</section>`,
    )
    .join('\n')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(String(info.title))}</title>
<style>
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
code{font:13px ui-monospace,Menlo,Consolas,monospace;background:#f3f3f3;padding:0 .25em;border-radius:3px}
section{border-top:1px solid #ddd;padding:.5rem 0}
h3{margin:.5rem 0}.method{font:bold 12px ui-monospace,monospace;padding:.15em .5em;border-radius:3px;color:#fff;background:#555}
.get{background:#2f7d32}.post{background:#1f5fa8}.put{background:#a86b1f}.delete{background:#a82a1f}
.note{color:#555}.opt{color:#888;font-size:12px;margin-left:.3em}.media{margin:.25rem 0}ul{margin:.25rem 0}
</style></head><body>
<h1>${escapeHtml(String(info.title))}</h1>
<p>${prose(info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${escapeHtml(String(doc.openapi))}).</p>
<h2>Routes</h2><ul>${toc.join('')}</ul>
${ops.join('\n')}
<h2>Schemas</h2>
${schemaSections}
</body></html>`
}
