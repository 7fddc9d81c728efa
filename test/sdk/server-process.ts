/** Starts the real Node server (`src/runtime/node-main.ts`) on an ephemeral port with a temp data dir. */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** A running server and how to reach it. */
export interface ServerProcess {
  url: string
  adminKey: string
  clientKey: string
  dataDir: string
  output: () => string
  stop: () => Promise<void>
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** Spawns the server and resolves once it listens and /healthz answers. */
export async function startServer(timeoutMs = 60_000): Promise<ServerProcess> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'l2o-e2e-'))
  const adminKey = 'e2e-admin-key-0123456789'
  const clientKey = 'e2e-client-key-0123456789'
  const child: ChildProcess = spawn(
    process.execPath,
    [
      path.join(root, 'node_modules/tsx/dist/cli.mjs'),
      'src/runtime/node-main.ts',
      '--port',
      '0',
      '--data-dir',
      dataDir,
    ],
    { cwd: root, env: { ...process.env, L2O_ADMIN_KEY: adminKey, L2O_CLIENT_KEY: clientKey }, stdio: 'pipe' },
  )
  let log = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start in ${timeoutMs} ms:\n${log}`)),
      timeoutMs,
    )
    const onData = (chunk: Buffer) => {
      log += chunk.toString()
      const m = /listening on (http:\/\/[^\s]+)/.exec(log)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${log}`))
    })
  })
  const health = await fetch(`${url}/healthz`)
  if (!health.ok) throw new Error(`/healthz answered ${health.status}`)
  return {
    url,
    adminKey,
    clientKey,
    dataDir,
    output: () => log,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
        if (child.exitCode === null) child.kill('SIGKILL')
      }
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
