/** The Node server over real HTTP: `npm start`'s entry on an ephemeral port with a temporary data dir. */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readShippedVersions } from '../../src/runtime/shipped-weights'
import { decode, encode } from '../../src/safetensors'

const root = path.resolve(import.meta.dirname, '../..')
const dataDir = mkdtempSync(path.join(tmpdir(), 'l2o-node-'))
const running: ChildProcess[] = []

afterAll(() => {
  for (const child of running) child.kill('SIGTERM')
  rmSync(dataDir, { recursive: true, force: true })
})

/** Starts node-main; resolves once it listens, with its URL and everything it printed. */
async function start(
  env: Record<string, string> = {},
): Promise<{ url: string; output: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'src/runtime/node-main.ts'), '--port', '0', '--data-dir', dataDir],
    { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  running.push(child)
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line after 60 s:\n${output}`)), 60_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(output)
      if (match) {
        clearTimeout(timer)
        resolve({ url: match[1], output, child })
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.on('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)))
  })
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

describe('npm start (the Node runtime over HTTP)', () => {
  let firstKeys: { admin: string; client: string }

  it('creates and prints keys once, registers shipped optimizers, and serves steps', async () => {
    const { url, output, child } = await start()
    const admin = /admin:\s+(\S+)/.exec(output)?.[1]
    const client = /client:\s+(\S+)/.exec(output)?.[1]
    expect(admin).toBeDefined()
    expect(client).toBeDefined()
    firstKeys = { admin: admin!, client: client! }

    const health = await (await fetch(`${url}/healthz`)).json()
    expect(health).toMatchObject({ status: 'ok', runtime: 'node', backend: 'wasm', kernel: 'fused-wasm' })

    const shipped = await readShippedVersions()
    const list = (await (await fetch(`${url}/v1/optimizers`)).json()) as {
      optimizers: { name: string; versions: string[] }[]
    }
    for (const v of shipped) {
      expect(list.optimizers.find((o) => o.name === v.name)?.versions).toContain(v.version)
    }

    const grads = Float32Array.from([0.5, -1, 2])
    const body = encode(
      { grads: { dtype: 'F32', shape: [3], data: grads } },
      {
        optimizer: 'rmsprop',
        hyperparameters: '{"learningRate":0.01}',
      },
    )
    const unauth = await fetch(`${url}/v1/step`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/vnd.l2o.safetensors' },
    })
    expect(unauth.status).toBe(401)
    expect(unauth.headers.get('content-type')).toBe('application/problem+json')
    const res = await fetch(`${url}/v1/step`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/vnd.l2o.safetensors', authorization: `Bearer ${client}` },
    })
    expect(res.status).toBe(200)
    const file = decode(new Uint8Array(await res.arrayBuffer()))
    expect(file.tensors.get('updates')!.shape).toEqual([3])
    expect(file.tensors.get('state')!.shape).toEqual([3, 1])

    if (shipped.length > 0) {
      const name = shipped[0].name
      const session = await fetch(`${url}/v1/sessions`, {
        method: 'POST',
        body: JSON.stringify({ optimizer: name, numParams: 100_000 }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${client}` },
      })
      expect(session.status).toBe(201)
      const { id, shardSize } = (await session.json()) as { id: string; shardSize: number }
      const step = await fetch(`${url}/v1/sessions/${id}/shards/0/steps/1`, {
        method: 'POST',
        body: JSON.stringify({ grads: new Array(shardSize).fill(0.01) }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${client}` },
      })
      expect(step.status).toBe(200)
    }
    await stop(child)
  })

  it('keeps its data and prints no keys on the next start; takes keys from the environment', async () => {
    const envAdmin = 'l2o_env_admin_key_0123456789'
    const { url, output, child } = await start({ L2O_ADMIN_KEY: envAdmin })
    expect(output).not.toContain('admin:')
    expect(output).not.toContain('client:')
    expect(output).not.toContain('registered')
    for (const key of [firstKeys.admin, envAdmin]) {
      const res = await fetch(`${url}/v1/admin/clients`, {
        method: 'POST',
        body: JSON.stringify({ name: 'x' }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      })
      expect(res.status).toBe(201)
    }
    await stop(child)
  })
})
