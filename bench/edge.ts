// The Worker under `wrangler dev` (workerd, offline) for the edge benchmarks: a seeded local D1 in a
// temporary folder, one fresh workerd per run, its process id for reading its memory, and the
// requests the benchmarks send. Benchmarks, not tests.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { seedStatements } from '../scripts/seed-d1'
import { readShippedVersions } from '../src/runtime/shipped-weights'
import { decode, encode, type Tensor } from '../src/safetensors'
import { encodeLstmWeights } from '../src/weights'
import { freePort } from '../test/support/port'
import { randomLstmWeights } from '../test/support/random'

const root = path.resolve(import.meta.dirname, '..')
const wrangler = path.join(root, 'node_modules/.bin/wrangler')
const keys = { admin: 'l2o_edge_bench_admin_key_0123', client: 'l2o_edge_bench_client_key_0123' }
const binary = 'application/vnd.l2o.safetensors'
// Offline and quiet (notes/stack-recipes.md §6).
const offline = {
  ...process.env,
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
}

/** A learned optimizer with 256 floats of state per coordinate (L = 2, H = 64), seeded as wide@1.0.0. */
export const wideOptimizer = 'wide@1.0.0'

/**
 * A local D1 with migrations applied and seeded (weights/, wide@1.0.0, the bench keys), in a
 * temporary folder removed when the process exits.
 */
export async function seededState(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'l2o-edge-bench-'))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  const wide = encodeLstmWeights(
    randomLstmWeights(
      { kind: 'lstm-cw', layers: 2, hidden: 64, preprocessing: 'log-sign', p: 10, outputScale: 0.1 },
      3,
    ),
  )
  const [name, version] = wideOptimizer.split('@')
  const sql = await seedStatements(
    [...(await readShippedVersions()), { name, version, weights: wide }],
    [
      { name: 'admin', role: 'admin', secret: keys.admin },
      { name: 'client', role: 'client', secret: keys.client },
    ],
  )
  writeFileSync(path.join(dir, 'seed.sql'), sql.join('\n'))
  for (const args of [
    ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', dir],
    ['d1', 'execute', 'DB', '--local', '--persist-to', dir, '--file', path.join(dir, 'seed.sql')],
  ]) {
    const done = spawnSync(wrangler, args, { cwd: root, env: offline, encoding: 'utf8' })
    if (done.status !== 0) throw new Error(`wrangler ${args.join(' ')}: ${done.stderr}`)
  }
  return dir
}

/** A running `wrangler dev` on the state in `dir`. */
export interface EdgeWorker {
  base: string
  /** The process id of the workerd that runs the Worker, its Durable Objects and the local D1. */
  workerd: number
}

/** Runs `fn` against a fresh `wrangler dev` on `dir`, then stops it (its whole process group). */
export async function withWorker<T>(dir: string, fn: (worker: EdgeWorker) => Promise<T>): Promise<T> {
  const port = await freePort()
  const child: ChildProcess = spawn(
    wrangler,
    ['dev', '--port', String(port), '--inspector-port', String(await freePort()), '--persist-to', dir],
    { cwd: root, env: offline, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const stop = () => {
    try {
      process.kill(-child.pid!, 'SIGTERM')
    } catch {}
  }
  process.on('exit', stop)
  try {
    await new Promise<void>((resolve, reject) => {
      let output = ''
      const timer = setTimeout(() => reject(new Error(`wrangler dev did not start:\n${output}`)), 120_000)
      const read = (chunk: Buffer) => {
        output += chunk
        if (output.includes('Ready on')) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout!.on('data', read)
      child.stderr!.on('data', read)
      child.on('exit', () => reject(new Error(`wrangler dev exited:\n${output}`)))
    })
    // wrangler dev runs two workerd: its proxy, and the runtime of the Worker (with the inspector).
    const runtime = () =>
      descendants(child.pid!).find(
        (pid) =>
          commandOf(pid) === 'workerd' && argumentsOf(pid).some((a) => a.startsWith('--inspector-addr')),
      )
    await fetch(`http://127.0.0.1:${port}/healthz/not-a-route`).then((r) => r.arrayBuffer())
    const workerd = runtime()
    if (workerd === undefined) throw new Error('no workerd running the Worker under wrangler dev')
    return await fn({ base: `http://127.0.0.1:${port}`, workerd })
  } finally {
    stop()
    process.off('exit', stop)
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

/** Resident memory of a process, from /proc: now (VmRSS) and its peak so far (VmHWM), in MB. */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1])
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 }
}

/** A request with the bench's client key. */
export function call(worker: EdgeWorker, method: string, route: string, body?: BodyInit, type?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${keys.client}` }
  if (type !== undefined) headers['content-type'] = type
  return fetch(`${worker.base}${route}`, { method, body, headers })
}

async function ok(response: Response): Promise<Uint8Array> {
  if (response.status !== 200 && response.status !== 201) {
    throw new Error(`${response.status}: ${(await response.text()).slice(0, 300)}`)
  }
  return new Uint8Array(await response.arrayBuffer())
}

/** The coordinates one request may carry for `optimizer`, as the Worker advertises it. */
export async function coordinateLimit(worker: EdgeWorker, optimizer: string): Promise<number> {
  const bytes = await ok(await call(worker, 'GET', `/v1/resolve?ref=${encodeURIComponent(optimizer)}`))
  return (JSON.parse(new TextDecoder().decode(bytes)) as { maxCoordinatesPerRequest: number })
    .maxCoordinatesPerRequest
}

/** What a stateless step hands back to the client: the state, and the digest it was made under. */
export interface HeldState {
  state: Tensor
  digest: string
}

/** One binary stateless step; the client keeps the state (F32) and sends it back next time. */
export async function statelessStep(
  worker: EdgeWorker,
  optimizer: string,
  grads: Float32Array,
  held?: HeldState,
): Promise<HeldState> {
  const tensors: Record<string, Tensor> = { grads: { dtype: 'F32', shape: [grads.length], data: grads } }
  const metadata: Record<string, string> = { optimizer, state_dtype: 'F32' }
  if (held !== undefined) {
    tensors.state = held.state
    metadata.digest = held.digest
  }
  const file = decode(await ok(await call(worker, 'POST', '/v1/step', encode(tensors, metadata), binary)))
  return { state: file.tensors.get('state')!, digest: file.metadata!.digest }
}

/** One JSON stateless step; resolves to the state and digest as JSON numbers and text, and the body's bytes. */
export async function jsonStep(
  worker: EdgeWorker,
  optimizer: string,
  grads: Float32Array,
  held?: { state: number[]; digest: string },
): Promise<{ state: number[]; digest: string; bodyBytes: number }> {
  const body = JSON.stringify({ optimizer, grads: [...grads], ...held })
  const text = new TextDecoder().decode(
    await ok(await call(worker, 'POST', '/v1/step', body, 'application/json')),
  )
  const answer = JSON.parse(text) as { state: number[]; digest: string }
  return { state: answer.state, digest: answer.digest, bodyBytes: body.length }
}

/** Creates a session; its id and shard lengths. */
export async function createSession(
  worker: EdgeWorker,
  optimizer: string,
  numParams: number,
): Promise<{ id: string; numParams: number; shardSize: number; shardCount: number }> {
  const body = JSON.stringify({ optimizer, numParams })
  const bytes = await ok(await call(worker, 'POST', '/v1/sessions', body, 'application/json'))
  return JSON.parse(new TextDecoder().decode(bytes))
}

/** Step `t` of one shard of a session (binary); resolves to the status. */
export async function sessionStep(
  worker: EdgeWorker,
  id: string,
  shard: number,
  t: number,
  grads: Float32Array,
): Promise<number> {
  const body = encode({ grads: { dtype: 'F32', shape: [grads.length], data: grads } })
  const response = await call(worker, 'POST', `/v1/sessions/${id}/shards/${shard}/steps/${t}`, body, binary)
  await response.arrayBuffer()
  return response.status
}

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so read after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
    } catch {}
  }
  const out: number[] = []
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c)
      walk(c)
    }
  }
  walk(pid)
  return out
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  } catch {
    return ''
  }
}

function argumentsOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  } catch {
    return []
  }
}
