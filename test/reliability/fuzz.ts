/**
 * Hostile requests over every route. Phase A sends only requests that must change nothing stored
 * (no key or a bad one, a client key on admin routes, bodies invalid by construction, session
 * steps that cannot apply, reads and stateless steps); the database must be the same after it,
 * byte for byte, but for the rate counters. Phase B also sends valid-looking mutations that may
 * store things. In both, no answer may be a 5xx, every error must be problem+json, and every
 * success must carry only finite numbers.
 */

import http from 'node:http'
import path from 'node:path'
import Database from 'better-sqlite3'
import { seededRandom } from '../../examples/mnist-mlp'
import { decode, encode } from '../../src/safetensors'
import { encodeLstmWeights } from '../../src/weights'
import { randomLstmWeights } from '../support/random'
import { type Answer, json, type Request, send } from './http'
import { adminKey, clientKey, type ServerProcess } from './server'

export interface FuzzFigures {
  /** Requests sent; `requests` of them were answered. */
  sent: number
  requests: number
  phaseA: number
  serverErrors: number
  notProblem: number
  nonFinite: number
  connectionErrors: number
  databaseUnchanged: boolean
  byStatus: Record<string, number>
  examples: string[]
  seconds: number
}

type Rng = () => number
const routesRead = [
  '/',
  '/healthz',
  '/openapi.json',
  '/docs',
  '/v1/optimizers',
  '/v1/optimizers/l2o-mnist',
  '/v1/optimizers/l2o-mnist/versions/1.1.0/files/loss.png',
  '/v1/resolve',
]

/** Every row of every table but the rate counters, as one string: equal means nothing stored changed. */
export function databaseDigest(dataDir: string): string {
  const db = new Database(path.join(dataDir, 'l2o.sqlite'), { readonly: true })
  try {
    const tables = db
      .prepare(
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name <> 'rate_windows' order by name",
      )
      .all() as { name: string }[]
    const dump: Record<string, unknown[]> = {}
    for (const { name } of tables) dump[name] = db.prepare(`select * from "${name}" order by rowid`).all()
    return JSON.stringify(dump, (_k, v) => (Buffer.isBuffer(v) ? v.toString('hex') : v))
  } finally {
    db.close()
  }
}

function adminKeyIdOf(dataDir: string): string {
  const db = new Database(path.join(dataDir, 'l2o.sqlite'), { readonly: true })
  try {
    const row = db
      .prepare(
        "select api_keys.id as id from api_keys join clients on clients.id = api_keys.client_id where clients.role = 'admin'",
      )
      .get() as { id: string }
    return row.id
  } finally {
    db.close()
  }
}

export async function fuzz(server: ServerProcess, total: number, seed = 1): Promise<FuzzFigures> {
  const random = seededRandom(seed)
  const base = server.url
  const started = performance.now()
  // The limits that would stop a fuzzer are lifted, so that every request reaches the routes.
  await json(base, 'PUT', '/v1/admin/quotas', adminKey, {
    requestsPerMinute: 1_000_000_000,
    failedAuthPerMinute: 1_000_000_000,
  })
  const other = (await json(base, 'POST', '/v1/admin/clients', adminKey, { name: 'fuzz-other' })) as {
    secret: string
  }
  const revoked = (await json(base, 'POST', '/v1/admin/clients', adminKey, { name: 'fuzz-revoked' })) as {
    key: { id: string }
    secret: string
  }
  await json(base, 'DELETE', `/v1/admin/keys/${revoked.key.id}`, adminKey)
  const mnist = (await json(base, 'GET', '/v1/resolve?ref=l2o-mnist@1.1.0', clientKey)) as { digest: string }
  const session = (await json(base, 'POST', '/v1/sessions', clientKey, {
    optimizer: 'l2o-mnist@1.1.0',
    numParams: 10,
  })) as { id: string }
  const appliedSteps = 2
  for (let t = 1; t <= appliedSteps; t++) {
    await stepSession(base, session.id, 0, t, new Float32Array(10).fill(0.01 * t))
  }
  const ctx: Context = {
    random,
    keys: { client: clientKey, admin: adminKey, other: other.secret, revoked: revoked.secret },
    adminKeyId: adminKeyIdOf(server.options.dataDir),
    session: session.id,
    appliedSteps,
    digest: mnist.digest,
  }

  const figures: FuzzFigures = {
    sent: 0,
    requests: 0,
    phaseA: 0,
    serverErrors: 0,
    notProblem: 0,
    nonFinite: 0,
    connectionErrors: 0,
    databaseUnchanged: false,
    byStatus: {},
    examples: [],
    seconds: 0,
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
  const run = async (count: number, make: (ctx: Context) => Request) => {
    let next = 0
    const worker = async () => {
      while (next < count) {
        next++
        const request = make(ctx)
        let answer: Answer
        figures.sent++
        try {
          answer = await send(base, request, agent, 20_000)
        } catch (error) {
          figures.connectionErrors++
          note(figures, `connection: ${describe(request)}: ${(error as Error).message}`)
          continue
        }
        figures.requests++
        check(figures, request, answer)
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
  }

  const before = databaseDigest(server.options.dataDir)
  const phaseA = Math.round(total * 0.7)
  await run(phaseA, (c) => pick(c.random, phaseAGenerators)(c))
  figures.phaseA = figures.requests
  figures.databaseUnchanged = databaseDigest(server.options.dataDir) === before
  await run(total - phaseA, (c) => pick(c.random, phaseBGenerators)(c))
  agent.destroy()
  figures.seconds = (performance.now() - started) / 1000
  return figures
}

interface Context {
  random: Rng
  keys: { client: string; admin: string; other: string; revoked: string }
  /** The id of the only admin key, which must never be revoked. */
  adminKeyId: string
  session: string
  appliedSteps: number
  digest: string
}

function stepSession(base: string, id: string, shard: number, t: number, grads: Float32Array) {
  return send(base, {
    method: 'POST',
    path: `/v1/sessions/${id}/shards/${shard}/steps/${t}`,
    headers: { authorization: `Bearer ${clientKey}`, 'content-type': 'application/vnd.l2o.safetensors' },
    body: encode({ grads: { dtype: 'F32', shape: [grads.length], data: grads } }),
  })
}

// --- checks -----------------------------------------------------------------------------------

function describe(request: Request): string {
  const type = request.headers?.['content-type'] ?? ''
  const size = request.body === undefined ? 0 : request.body.length
  return `${request.method} ${request.path.slice(0, 120)} [${type.slice(0, 40)}, ${size} B]`
}

function note(figures: FuzzFigures, example: string): void {
  // A few of each kind (the text before the first colon).
  const kind = example.split(':')[0]
  if (figures.examples.filter((e) => e.split(':')[0] === kind).length < 3) figures.examples.push(example)
}

function check(figures: FuzzFigures, request: Request, answer: Answer): void {
  const status = String(answer.status)
  figures.byStatus[status] = (figures.byStatus[status] ?? 0) + 1
  const type = String(answer.headers['content-type'] ?? '')
  if (answer.status >= 500) {
    figures.serverErrors++
    note(figures, `${answer.status}: ${describe(request)}: ${answer.body.toString().slice(0, 200)}`)
    return
  }
  if (answer.status >= 400) {
    if (!type.startsWith('application/problem+json')) {
      figures.notProblem++
      note(figures, `${answer.status} as ${type}: ${describe(request)}`)
    }
    return
  }
  if (request.method !== 'HEAD' && !finiteAnswer(type, answer.body)) {
    figures.nonFinite++
    note(figures, `non-finite ${answer.status}: ${describe(request)}`)
  }
}

function finiteAnswer(type: string, body: Buffer): boolean {
  if (type.startsWith('application/json')) {
    try {
      JSON.parse(body.toString())
      return true // JSON has no NaN or Infinity: a parse is the check.
    } catch {
      return false
    }
  }
  if (type.startsWith('application/vnd.l2o.safetensors')) {
    try {
      const file = decode(new Uint8Array(body.buffer, body.byteOffset, body.byteLength))
      for (const t of file.tensors.values()) {
        const mask = t.dtype === 'F32' ? 0x7f800000 : t.dtype === 'F16' ? 0x7c00 : 0x7f80
        const bits = t.dtype === 'F32' ? new Uint32Array(t.data.slice().buffer) : (t.data as Uint16Array)
        for (const b of bits) if ((b & mask) === mask) return false
      }
      return true
    } catch {
      return false
    }
  }
  return true
}

// --- building blocks --------------------------------------------------------------------------

const pick = <T>(random: Rng, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]
const int = (random: Rng, lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1))

function text(random: Rng, max = 80): string {
  const alphabets = [
    'abcdefghijklmnopqrstuvwxyz-',
    '0123456789',
    'ABC@:/._~%$!*()',
    'ünïcødé✓🙂',
    '\u0000\u0001\t\n"\\',
  ]
  const alphabet = [...pick(random, alphabets)]
  const n = random() < 0.05 ? int(random, 500, 70_000) : int(random, 0, max)
  let out = ''
  for (let i = 0; i < n; i++) out += pick(random, alphabet)
  return out
}

const segment = (random: Rng) =>
  pick(random, [
    () => encodeURIComponent(text(random, 20)),
    () =>
      pick(random, [
        '0',
        '00',
        '01',
        '02',
        '%32',
        '1e1',
        '-1',
        '4294967296',
        '99999999999',
        '%201',
        '1.0',
        '0x1',
      ]),
    () => pick(random, ['..', '%2e%2e', '.', '%2F', '%00', '%ff', '%', '%%', '~']),
    () =>
      pick(random, ['v1', 'sessions', 'shards', 'steps', 'admin', 'optimizers', 'keys', 'clients', 'quotas']),
    () => 'x'.repeat(int(random, 100, 4000)),
  ])()

function authHeader(
  random: Rng,
  keys: Context['keys'],
  allow: ('client' | 'admin' | 'other')[],
): Record<string, string> {
  const options: (() => Record<string, string>)[] = [
    () => ({}),
    () => ({
      authorization: pick(random, [
        'Bearer',
        'Basic abc',
        'Bearer  ',
        `bearer ${'k'.repeat(300)}`,
        'Bearer a b',
      ]),
    }),
    () => ({ authorization: `Bearer l2o_${text(random, 64).replace(/[^\x21-\x7e]/g, 'z')}` }),
    () => ({ authorization: `Bearer ${keys.revoked}` }),
    ...allow.map((who) => () => ({ authorization: `Bearer ${keys[who]}` })),
  ]
  return pick(random, options)()
}

const contentTypes = [
  'application/json',
  'application/vnd.l2o.safetensors',
  'multipart/form-data; boundary=x',
  'text/plain',
  'application/JSON; charset=utf-8',
  '',
  'application/vnd.l2o.safetensors; v=1',
]
const accepts = [
  '*/*',
  'application/json',
  'application/vnd.l2o.safetensors',
  'text/html',
  'application/json;q=0',
  'image/*',
  '',
]

function headers(random: Rng, base: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = { ...base }
  if (random() < 0.3) out['content-type'] = pick(random, contentTypes)
  if (random() < 0.3) out.accept = pick(random, accepts)
  if (random() < 0.1) out['idempotency-key'] = pick(random, ['k', 'x'.repeat(300), 'a b', 'ok-key'])
  if (random() < 0.05) out['x-request-id'] = 'r'.repeat(int(random, 1, 300))
  for (const [k, v] of Object.entries(out)) if (v === '') delete out[k]
  return out
}

function randomBytes(random: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = Math.floor(random() * 256)
  return out
}

/** Extreme and ordinary float32 values. */
function floats(random: Rng, n: number, wild = 0.1): Float32Array {
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    out[i] =
      random() < wild
        ? pick(random, [
            0,
            -0,
            3.4e38,
            -3.4e38,
            1e-45,
            1e30,
            -1e-30,
            65_504,
            1e5,
            Number.NaN,
            Number.POSITIVE_INFINITY,
          ])
        : (random() - 0.5) * 10 ** int(random, -6, 2)
  }
  return out
}

/** A binary stateless step for l2o-mnist (S = 80) or a baseline, then 0 to 3 hostile mutations. */
function binaryStep(c: Context): Uint8Array {
  const { random } = c
  const n = int(random, 1, 40)
  const learned = random() < 0.6
  const s = learned ? 80 : 1
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {
    grads: { dtype: 'F32', shape: [n], data: floats(random, n, 0.05) },
  }
  const metadata: Record<string, string> = learned
    ? {
        optimizer: pick(random, [
          'l2o-mnist',
          'l2o-mnist@stable',
          'l2o-mnist@1.1.0',
          `l2o-mnist@${c.digest}`,
        ]),
      }
    : { optimizer: 'momentum', hyperparameters: '{"learningRate":0.1,"momentum":0.9}' }
  if (random() < 0.5) {
    tensors.state = { dtype: 'F32', shape: [n, s], data: floats(random, n * s, 0.02) }
    if (learned) metadata.digest = c.digest
  }
  let body = encode(tensors, metadata)
  const mutations = int(random, 0, 3)
  for (let m = 0; m < mutations; m++) body = mutateSafetensors(random, body)
  return body
}

function mutateSafetensors(random: Rng, body: Uint8Array): Uint8Array {
  const headerLength =
    body.length < 8
      ? Number.POSITIVE_INFINITY
      : Number(new DataView(body.buffer, body.byteOffset).getBigUint64(0, true))
  // A body an earlier mutation left without a readable header gets byte-level mutations only.
  if (!(headerLength <= body.length - 8)) {
    const out = new Uint8Array(body.length + int(random, 0, 16))
    out.set(body)
    if (out.length > 0) out[int(random, 0, out.length - 1)] = int(random, 0, 255)
    return out
  }
  const headerText = new TextDecoder().decode(body.subarray(8, 8 + headerLength))
  const rebuild = (newHeader: string) => {
    const h = new TextEncoder().encode(newHeader)
    const out = new Uint8Array(8 + h.length + body.length - 8 - headerLength)
    new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true)
    out.set(h, 8)
    out.set(body.subarray(8 + headerLength), 8 + h.length)
    return out
  }
  switch (int(random, 0, 9)) {
    case 0: {
      const out = body.slice()
      for (let i = 0; i < int(random, 1, 8); i++)
        out[int(random, 0, Math.min(out.length - 1, 8 + headerLength))] = int(random, 0, 255)
      return out
    }
    case 1:
      return body.subarray(0, int(random, 0, body.length - 1))
    case 2: {
      const out = body.slice()
      new DataView(out.buffer).setBigUint64(
        0,
        BigInt(pick(random, [0, 1, 2 ** 32, 2 ** 40, headerLength + 7, 100_000_000])),
        true,
      )
      return out
    }
    case 3:
      return rebuild(
        headerText.replace(/"F32"/, `"${pick(random, ['F16', 'BF16', 'F64', 'I32', 'f32', ''])}"`),
      )
    case 4:
      return rebuild(
        headerText.replace(
          /\[(\d+)(,\d+)?\]/,
          pick(random, ['[0]', '[-1]', '[1,2,3]', '[4294967296]', '[]', '[1.5]']),
        ),
      )
    case 5:
      return rebuild(
        headerText.replace(
          /"data_offsets":\[\d+,\d+\]/,
          `"data_offsets":[${int(random, -2, 400)},${int(random, -2, 100_000)}]`,
        ),
      )
    case 6: {
      const meta = pick(random, [
        `"optimizer":"${pick(random, ['nope', 'l2o-mnist@9.9.9', 'adam', 'sgd@x', `l2o-mnist@sha256:${'0'.repeat(64)}`, 'A'.repeat(20_000)])}"`,
        `"digest":"${pick(random, ['md5:x', `sha256:${'1'.repeat(64)}`, ''])}"`,
        `"hyperparameters":"${pick(random, ['null', '[]', '{', '{\\"learningRate\\":1e38}', '{\\"learningRate\\":100}', '1'])}"`,
        `"state_dtype":"${pick(random, ['F64', 'F16', 'BF16', 'f32'])}"`,
      ])
      return rebuild(headerText.replace(/"__metadata__":\{/, `"__metadata__":{${meta},`))
    }
    case 7:
      return rebuild(headerText.replace('"__metadata__"', pick(random, ['"__metadata__x"', '"grads2"'])))
    case 8: {
      const out = new Uint8Array(body.length + int(random, 1, 64))
      out.set(body)
      out.set(randomBytes(random, out.length - body.length), body.length)
      return out
    }
    default:
      return rebuild(`${headerText.slice(0, -1)},"extra":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`)
  }
}

/** A JSON step body, then hostile edits of its text or values. */
function jsonStep(c: Context): string {
  const { random } = c
  const n = int(random, 1, 20)
  const body: Record<string, unknown> = {
    optimizer: pick(random, ['l2o-mnist', 'sgd', 'adam', 'l2o-quadratic@stable', `l2o-mnist@${c.digest}`]),
    grads: Array.from(floats(random, n, 0.02)).map((v) => (Number.isFinite(v) ? v : 1e39)),
  }
  if (body.optimizer === 'sgd' || body.optimizer === 'adam') {
    body.hyperparameters = pick(random, [
      { learningRate: 0.1 },
      { learningRate: 100 },
      { learningRate: 1e38 },
      null,
      [],
      { lr: 1 },
    ])
  }
  if (random() < 0.3)
    body.state = Array.from(
      { length: n * pick(random, [80, 3, 1, 0]) },
      () => (random() - 0.5) * 10 ** int(random, -3, 40),
    )
  if (random() < 0.2) body.digest = pick(random, [c.digest, 'x', null])
  if (random() < 0.2) body.stateDtype = pick(random, ['F16', 'BF16', 'F64', 1])
  let out = JSON.stringify(body)
  switch (int(random, 0, 7)) {
    case 0:
      return out.slice(0, int(random, 0, out.length))
    case 1:
      return `${'['.repeat(int(random, 1000, 200_000))}`
    case 2:
      return out.replace('"grads":[', `"grads":[${'"x",'.repeat(int(random, 1, 3))}`)
    case 3:
      out = out.replace('"optimizer":', '"optimizer":"sgd","optimizer":')
      return out
    case 4:
      return `\uFEFF${out}`
    case 5:
      return out.replace(
        /\d+(\.\d+)?(e[-+]?\d+)?/,
        pick(random, ['1e999', '-1e999', '1e-999', '0x10', '.5', '01']),
      )
    default:
      return out
  }
}

// --- phase A: nothing stored may change -------------------------------------------------------

const phaseAGenerators: ((c: Context) => Request)[] = [
  // Random paths and methods, without a valid admin key.
  (c) => ({
    method: pick(c.random, ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']),
    path: `/${Array.from({ length: int(c.random, 0, 7) }, () => segment(c.random)).join('/')}${c.random() < 0.2 ? `?${encodeURIComponent(text(c.random))}` : ''}`,
    headers: headers(c.random, authHeader(c.random, c.keys, ['client', 'other'])),
    body: c.random() < 0.4 ? randomBytes(c.random, int(c.random, 0, 2000)) : undefined,
  }),
  // Reads.
  (c) => ({
    method: pick(c.random, ['GET', 'GET', 'HEAD']),
    path:
      pick(c.random, routesRead) +
      (c.random() < 0.5
        ? `?ref=${encodeURIComponent(pick(c.random, ['l2o-mnist', 'adam', 'l2o-mnist@sha256:00', text(c.random)]))}&hyperparameters=${encodeURIComponent(pick(c.random, ['null', '[]', '{', '{"learningRate":1}', text(c.random)]))}`
        : ''),
    headers: headers(c.random),
  }),
  (c) => ({ method: 'GET', path: `/v1/optimizers/${segment(c.random)}`, headers: headers(c.random) }),
  // A version's files (and the console's), with hostile names.
  (c) => ({
    method: pick(c.random, ['GET', 'HEAD']),
    path: pick(c.random, [
      `/v1/optimizers/l2o-mnist/versions/${pick(c.random, ['1.1.0', '1.0.0', segment(c.random)])}/files/${segment(c.random)}`,
      `/v1/optimizers/${segment(c.random)}/versions/1.1.0/files/loss.png`,
      `/${segment(c.random)}`,
      `/assets/${segment(c.random)}`,
    ]),
    headers: headers(c.random),
  }),
  // Stateless steps, binary and JSON, with every kind of key: they store nothing whatever happens.
  (c) => ({
    method: 'POST',
    path: '/v1/step',
    headers: headers(c.random, {
      ...authHeader(c.random, c.keys, ['client', 'client', 'client', 'other', 'admin']),
      'content-type': 'application/vnd.l2o.safetensors',
    }),
    body: binaryStep(c),
  }),
  (c) => ({
    method: 'POST',
    path: '/v1/step',
    headers: headers(c.random, {
      ...authHeader(c.random, c.keys, ['client', 'client', 'client', 'other']),
      'content-type': 'application/json',
    }),
    body: jsonStep(c),
  }),
  // Session creates invalid by construction (numParams is never a valid count).
  (c) => ({
    method: 'POST',
    path: '/v1/sessions',
    headers: headers(c.random, {
      ...authHeader(c.random, c.keys, ['client', 'other']),
      'content-type': 'application/json',
    }),
    body: JSON.stringify({
      optimizer: pick(c.random, ['l2o-mnist', 'sgd', 'nope', text(c.random)]),
      hyperparameters: pick(c.random, [undefined, null, { learningRate: 1 }, []]),
      numParams: pick(c.random, [0, -1, 1.5, 2e9, '10', null, undefined, 1e300]),
      stateDtype: pick(c.random, [undefined, 'F16', 'F64']),
    }),
  }),
  // Session steps that cannot apply: the wrong client, bad numbers, or a step that is not next.
  (c) => {
    const t = pick(c.random, [
      '0',
      '02',
      '%33',
      String(c.appliedSteps + 2),
      '4294967296',
      'x',
      String(c.appliedSteps),
    ])
    const shard = pick(c.random, ['0', '00', '1', '-1', '%30', '99'])
    const n = pick(c.random, [10, 9, 11, 0])
    const grads = floats(c.random, n, 0.2)
    const binary = c.random() < 0.7
    return {
      method: 'POST',
      path: `/v1/sessions/${c.random() < 0.9 ? c.session : segment(c.random)}/shards/${shard}/steps/${t}`,
      headers: headers(c.random, {
        ...authHeader(c.random, c.keys, ['client', 'client', 'other']),
        'content-type': binary ? 'application/vnd.l2o.safetensors' : 'application/json',
      }),
      body: binary
        ? encode(
            { grads: { dtype: 'F32', shape: [n], data: grads } },
            c.random() < 0.3 ? { step: '7', digest: 'sha256:x' } : undefined,
          )
        : JSON.stringify({ grads: Array.from(grads).map((v) => (Number.isFinite(v) ? v : 1e39)) }),
    }
  },
  (c) => ({
    method: pick(c.random, ['GET', 'DELETE']),
    path: `/v1/sessions/${c.random() < 0.5 ? c.session : segment(c.random)}`,
    headers: headers(c.random, authHeader(c.random, c.keys, ['other'])),
  }),
  // Admin routes: a client key, or the admin key with what cannot be valid.
  (c) => ({
    method: pick(c.random, ['GET', 'POST', 'PUT', 'DELETE']),
    path: pick(c.random, [
      '/v1/admin/quotas',
      '/v1/admin/clients',
      `/v1/admin/clients/${segment(c.random)}/keys`,
      `/v1/admin/clients/${segment(c.random)}/quotas`,
      `/v1/admin/keys/${segment(c.random)}`,
      '/v1/admin/optimizers/l2o-mnist/versions',
      '/v1/admin/optimizers/l2o-mnist/aliases/stable',
      '/v1/admin/optimizers/l2o-mnist/versions/1.0.0/deprecate',
    ]),
    headers: headers(c.random, {
      ...authHeader(c.random, c.keys, ['client', 'other']),
      'content-type': 'application/json',
    }),
    body: JSON.stringify({ name: 'x', version: '1.1.0', maxSessions: 0 }),
  }),
  (c) => adminInvalid(c),
]

/** Admin-key requests that must be refused and change nothing. */
function adminInvalid(c: Context): Request {
  const { random } = c
  const admin = { authorization: `Bearer ${c.keys.admin}` }
  const jsonHeaders = { ...admin, 'content-type': 'application/json' }
  return pick(random, [
    (): Request => {
      // A weight file whose outputs can overflow, or garbage, published as a new version.
      const weights = pick(random, [
        () =>
          encodeLstmWeights(
            randomLstmWeights(
              {
                kind: 'lstm-cw',
                layers: 1,
                hidden: 4,
                preprocessing: 'none',
                outputScale: pick(random, [3e38, 1e300, -1e12]),
              },
              int(random, 1, 9),
            ),
          ),
        () => randomBytes(random, int(random, 0, 5000)),
        () =>
          encodeLstmWeights(
            randomLstmWeights(
              { kind: 'lstm-cw', layers: 1, hidden: 4, preprocessing: 'none', outputScale: 0.1 },
              1,
            ),
          ).subarray(0, 300),
      ])()
      const boundary = 'fuzzboundary'
      const parts = [
        `--${boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\n${pick(random, ['1.0.0', 'x', '9.9.9'])}\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="weights"; filename="m"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ]
      const body = Buffer.concat([
        Buffer.from(parts.join('')),
        Buffer.from(weights),
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ])
      return {
        method: 'POST',
        path: `/v1/admin/optimizers/${pick(random, ['fuzzed', 'l2o-mnist', 'sgd', 'Bad_Name'])}/versions`,
        headers: { ...admin, 'content-type': `multipart/form-data; boundary=${boundary}` },
        body,
      }
    },
    (): Request => ({
      method: 'PUT',
      path: `/v1/admin/optimizers/l2o-mnist/aliases/${pick(random, ['stable', 'x', 'Bad', '1.0.0'])}`,
      headers: jsonHeaders,
      body: pick(random, ['{"version":"9.9.9"}', '{"version":1}', '{', '{}', 'null']),
    }),
    (): Request => ({
      method: 'POST',
      path: `/v1/admin/optimizers/${pick(random, ['l2o-mnist', 'nope'])}/versions/${pick(random, ['9.9.9', 'x'])}/deprecate`,
      headers: admin,
    }),
    (): Request => ({
      method: 'POST',
      path: '/v1/admin/clients',
      headers: jsonHeaders,
      body: pick(random, ['{}', '{"name":""}', `{"name":"${'n'.repeat(101)}"}`, '{"name":1}', '[', 'null']),
    }),
    (): Request => ({
      method: 'POST',
      path: `/v1/admin/clients/cl_${text(random, 8).replace(/\W/g, 'x')}/keys`,
      headers: admin,
    }),
    (): Request => ({
      method: 'DELETE',
      path: `/v1/admin/keys/${pick(random, ['key_nope', segment(random)])}`,
      headers: admin,
    }),
    (): Request => ({
      method: 'PUT',
      path: pick(random, ['/v1/admin/quotas', `/v1/admin/clients/cl_nope/quotas`]),
      headers: jsonHeaders,
      body: pick(random, [
        '{"maxSessions":-1}',
        '{"requestsPerMinute":0}',
        '{"x":1}',
        '{"maxSessions":1.5}',
        '{',
        '{"failedAuthPerMinute":"1"}',
      ]),
    }),
    (): Request => {
      // The only admin key: revoking it must be refused (409 last_admin_key).
      return { method: 'DELETE', path: `/v1/admin/keys/${c.adminKeyId}`, headers: admin }
    },
  ])()
}

// --- phase B: valid-looking mutations that may store things -----------------------------------

const phaseBGenerators: ((c: Context) => Request)[] = [
  (c) => ({
    method: 'POST',
    path: '/v1/sessions',
    headers: {
      authorization: `Bearer ${pick(c.random, [c.keys.client, c.keys.other])}`,
      'content-type': 'application/json',
      ...(c.random() < 0.3 ? { 'idempotency-key': `fz-${int(c.random, 0, 20)}` } : {}),
    },
    body: JSON.stringify({
      optimizer: pick(c.random, ['l2o-mnist', 'l2o-quadratic', 'sgd', 'adam', 'momentum']),
      hyperparameters: pick(c.random, [
        undefined,
        { learningRate: 10 ** -int(c.random, 0, 4) },
        { learningRate: 0.1, momentum: 0.9 },
      ]),
      numParams: int(c.random, 1, pick(c.random, [10, 7000, 100_000])),
      stateDtype: pick(c.random, ['F32', 'F16', 'BF16']),
    }),
  }),
  (c) => {
    // A step of the fuzz session, sometimes the next one: it may apply.
    const t = int(c.random, 1, c.appliedSteps + 3)
    const grads = floats(c.random, 10, 0.2)
    return {
      method: 'POST',
      path: `/v1/sessions/${c.session}/shards/0/steps/${t}`,
      headers: {
        authorization: `Bearer ${c.keys.client}`,
        'content-type': 'application/vnd.l2o.safetensors',
      },
      body: encode({ grads: { dtype: 'F32', shape: [10], data: grads } }),
    }
  },
  (c) => ({
    method: 'POST',
    path: '/v1/step',
    headers: { authorization: `Bearer ${c.keys.client}`, 'content-type': 'application/vnd.l2o.safetensors' },
    body: binaryStep(c),
  }),
  (c) => ({
    method: 'POST',
    path: '/v1/admin/clients',
    headers: { authorization: `Bearer ${c.keys.admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: text(c.random, 100).slice(0, 100) || 'n' }),
  }),
]
