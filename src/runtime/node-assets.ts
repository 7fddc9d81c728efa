/**
 * The console's static files on Node, from the folder `npm run build:console` writes (console/dist),
 * served as Workers Static Assets serve them from wrangler.toml's [assets]: a file by its path,
 * `/` as index.html, anything else left to the app.
 */
import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'

/** The built console (console/build.ts writes it). */
export const consoleDistDir = path.resolve(import.meta.dirname, '../../console/dist')

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.bin': 'application/octet-stream',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
}

/** Whether the console has been built into `dir`. */
export const consoleBuilt = (dir = consoleDistDir): boolean => existsSync(path.join(dir, 'index.html'))

/** AppDeps.assets over a folder: undefined for paths outside it or with no file. */
export function folderAssets(dir = consoleDistDir): (request: Request) => Promise<Response | undefined> {
  const root = path.resolve(dir)
  return async (request) => {
    let pathname: string
    try {
      pathname = decodeURIComponent(new URL(request.url).pathname)
    } catch {
      return undefined
    }
    if (pathname.endsWith('/')) pathname += 'index.html'
    const file = path.resolve(root, `.${pathname}`)
    if (!file.startsWith(root + path.sep)) return undefined
    const info = await stat(file).catch(() => undefined)
    if (info === undefined || !info.isFile()) return undefined
    const body = request.method === 'HEAD' ? null : new Uint8Array(await readFile(file))
    return new Response(body, {
      headers: {
        'Content-Type': contentTypes[path.extname(file)] ?? 'application/octet-stream',
        'Content-Length': String(info.size),
        // Rebuilt in place by npm run build:console: revalidate, as Workers assets do by default.
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
      },
    })
  }
}
