/**
 * An in-memory stand-in for the l2o server, behind a fake `fetch`, for SDK unit tests. It follows
 * the contract (src/contract) closely enough to exercise the SDK: resolve, binary stateless steps,
 * sessions with per-shard step numbers and stored updates for repeats, problem+json errors. Its
 * toy optimizer makes the state observable: update = -scale·(g + s₀), then s₀ += g, s₁ += 1, where
 * scale comes from the version, so a test can tell which digest answered and whether state travelled.
 */

import { type ProblemCode, problemCodes, problemMediaType, safetensorsMediaType } from '../../src/contract'
import { type Dtype, decode, encode, type Tensor, tensorOf, toFloat32 } from '../../src/safetensors'

/** One request as the fake saw it. */
export interface SeenRequest {
  method: string
  path: string
  query: URLSearchParams
  headers: Headers
  body?: Uint8Array
  /** Decoded binary body, when there was one. */
  tensors?: Map<string, Tensor>
  metadata?: Record<string, string>
  json?: unknown
}

/** A fault: matched against each request in order; `times` attempts are affected. */
export interface Fault {
  when: (req: SeenRequest) => boolean
  times: number
  /** network: fetch rejects; lost: the request is handled, then the answer is lost (fetch rejects). */
  kind: 'network' | 'lost' | 'hang' | { status: number; code?: ProblemCode; headers?: Record<string, string> }
}

interface Version {
  version: string
  digest: string
  scale: number
  deprecated: boolean
}

interface SessionShard {
  index: number
  offset: number
  length: number
  step: number
  state: Float32Array
  lastUpdates?: Float32Array
}

const hex = (n: number): string => n.toString(16).padStart(64, '0')

/** The fake server. */
export class FakeServer {
  readonly requests: SeenRequest[] = []
  readonly faults: Fault[] = []
  maxCoordinatesPerRequest = 8
  shardSize = 8
  stateSize = 2
  apiKey = 'test-key'
  /** When set, answers claim this digest instead of the version's (a misbehaving server). */
  answerDigest: string | undefined
  readonly versions = new Map<string, Version>()
  readonly aliases = new Map<string, string>()
  readonly sessions = new Map<string, { id: string; digest: string; dtype: Dtype; shards: SessionShard[] }>()
  /** Number of times each (session, shard, step) was applied, to prove exactly-once. */
  readonly applied = new Map<string, number>()
  private nextSession = 1

  constructor() {
    this.addVersion('1.0.0', 0.1)
    this.addVersion('2.0.0', 0.2)
    this.aliases.set('stable', '1.0.0')
  }

  addVersion(version: string, scale: number): Version {
    const v = { version, digest: `sha256:${hex(this.versions.size + 1)}`, scale, deprecated: false }
    this.versions.set(version, v)
    return v
  }

  digestOf(version: string): string {
    return this.versions.get(version)!.digest
  }

  /** Counts requests whose method and path (prefix) match. */
  count(method: string, pathPrefix: string): number {
    return this.requests.filter((r) => r.method === method && r.path.startsWith(pathPrefix)).length
  }

  readonly fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const url = new URL(input)
    const headers = new Headers(init.headers)
    const body = init.body instanceof Uint8Array ? init.body : undefined
    const req: SeenRequest = {
      method: init.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers,
      body,
    }
    if (body && headers.get('Content-Type') === safetensorsMediaType) {
      const file = decode(body)
      req.tensors = file.tensors
      req.metadata = file.metadata ?? {}
    } else if (typeof init.body === 'string') {
      req.json = JSON.parse(init.body)
    }
    this.requests.push(req)
    const fault = this.faults.find((f) => f.times > 0 && f.when(req))
    if (fault) fault.times--
    if (fault?.kind === 'network') throw new TypeError('fetch failed')
    if (fault?.kind === 'hang') {
      return new Promise((_, reject) => {
        init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')))
      })
    }
    if (fault && typeof fault.kind === 'object') {
      return problem(fault.kind.status, fault.kind.code ?? 'internal_error', 'injected', fault.kind.headers)
    }
    const response = this.handle(req)
    if (fault?.kind === 'lost') throw new TypeError('socket hang up')
    return response
  }

  private handle(req: SeenRequest): Response {
    if (req.headers.get('Authorization') !== `Bearer ${this.apiKey}`) {
      return problem(401, 'unauthorized', 'send Authorization: Bearer <key>')
    }
    const p = req.path
    if (req.method === 'GET' && p === '/v1/resolve') return this.resolve(req.query.get('ref') ?? '')
    if (req.method === 'POST' && p === '/v1/step') return this.step(req)
    if (req.method === 'POST' && p === '/v1/sessions') return this.createSession(req)
    const m = /^\/v1\/sessions\/([^/]+)(?:\/shards\/(\d+)\/steps\/(\d+))?$/.exec(p)
    if (m) {
      const session = this.sessions.get(decodeURIComponent(m[1]))
      if (!session) return problem(404, 'session_not_found', `no session ${m[1]}`)
      if (req.method === 'GET' && !m[2]) return json(200, this.sessionJson(session))
      if (req.method === 'DELETE' && !m[2]) {
        this.sessions.delete(session.id)
        return new Response(null, { status: 204 })
      }
      if (req.method === 'POST' && m[2]) return this.sessionStep(req, session, Number(m[2]), Number(m[3]))
    }
    return problem(404, 'not_found', `no route ${req.method} ${p}`)
  }

  private find(ref: string): Version | undefined {
    const [name, rest = 'stable'] = ref.split('@')
    if (name !== 'toy') return undefined
    if (rest.startsWith('sha256:')) return [...this.versions.values()].find((v) => v.digest === rest)
    const version = this.versions.get(rest) ?? this.versions.get(this.aliases.get(rest) ?? '')
    return version
  }

  private resolve(ref: string): Response {
    const v = this.find(ref)
    if (!v) return problem(404, 'optimizer_not_found', `no optimizer ${ref}`)
    return json(200, {
      reference: ref,
      name: 'toy',
      kind: 'learned',
      version: v.version,
      digest: v.digest,
      deprecated: v.deprecated,
      architecture: null,
      hyperparameters: null,
      stateSize: this.stateSize,
      maxCoordinatesPerRequest: this.maxCoordinatesPerRequest,
      stateDtypes: ['F32', 'F16', 'BF16'],
    })
  }

  private math(
    scale: number,
    g: Float32Array,
    state: Float32Array,
  ): { updates: Float32Array; state: Float32Array } {
    const S = this.stateSize
    const updates = new Float32Array(g.length)
    const next = state.slice()
    for (let i = 0; i < g.length; i++) {
      updates[i] = -scale * (g[i] + state[i * S])
      next[i * S] = state[i * S] + g[i]
      next[i * S + 1] = state[i * S + 1] + 1
    }
    return { updates, state: next }
  }

  private step(req: SeenRequest): Response {
    const meta = req.metadata ?? {}
    const v = this.find(meta.optimizer ?? '')
    if (!v) return problem(404, 'optimizer_not_found', `no optimizer ${meta.optimizer}`)
    if (meta.digest && meta.digest !== v.digest) {
      return problem(
        409,
        'digest_mismatch',
        `state made under ${meta.digest}, ${meta.optimizer} is ${v.digest}`,
      )
    }
    const grads = req.tensors?.get('grads')
    if (grads?.dtype !== 'F32') return problem(400, 'shape_mismatch', 'grads F32 [N] required')
    const n = grads.data.length
    if (n > this.maxCoordinatesPerRequest) return problem(413, 'too_many_coordinates', 'too many')
    const sent = req.tensors?.get('state')
    const dtype = (sent?.dtype ?? meta.state_dtype ?? 'F32') as Dtype
    const state = sent ? toFloat32(sent) : new Float32Array(n * this.stateSize)
    const out = this.math(v.scale, grads.data, state)
    const bytes = encode(
      {
        updates: { dtype: 'F32', shape: [n], data: out.updates },
        state: tensorOf(dtype, [n, this.stateSize], out.state),
      },
      { digest: this.answerDigest ?? v.digest, optimizer: `toy@${v.version}` },
    )
    return this.binary(bytes, v)
  }

  private createSession(req: SeenRequest): Response {
    const body = req.json as { optimizer: string; digest?: string; numParams: number; stateDtype?: Dtype }
    const v = this.find(body.optimizer)
    if (!v) return problem(404, 'optimizer_not_found', `no optimizer ${body.optimizer}`)
    if (body.digest && body.digest !== v.digest)
      return problem(409, 'digest_mismatch', 'pinned digest differs')
    const shards: SessionShard[] = []
    for (let offset = 0, index = 0; offset < body.numParams; offset += this.shardSize, index++) {
      const length = Math.min(this.shardSize, body.numParams - offset)
      shards.push({ index, offset, length, step: 0, state: new Float32Array(length * this.stateSize) })
    }
    const session = {
      id: `s${this.nextSession++}`,
      digest: v.digest,
      dtype: body.stateDtype ?? 'F32',
      shards,
    }
    this.sessions.set(session.id, session)
    return json(201, this.sessionJson(session))
  }

  private sessionJson(s: { id: string; digest: string; dtype: Dtype; shards: SessionShard[] }) {
    return {
      id: s.id,
      optimizer: 'toy',
      digest: s.digest,
      numParams: s.shards.reduce((n, x) => n + x.length, 0),
      stateDtype: s.dtype,
      stateSize: this.stateSize,
      shardSize: this.shardSize,
      shardCount: s.shards.length,
      steps: s.shards.map(({ index, step }) => ({ first: index, last: index, step })),
      createdAt: '2026-01-01T00:00:00Z',
    }
  }

  private sessionStep(
    req: SeenRequest,
    session: { id: string; digest: string; shards: SessionShard[] },
    k: number,
    t: number,
  ): Response {
    const shard = session.shards[k]
    if (!shard) return problem(404, 'not_found', `no shard ${k}`)
    const v = [...this.versions.values()].find((x) => x.digest === session.digest)!
    if (t === shard.step && shard.lastUpdates) {
      return this.binary(
        encode(
          { updates: { dtype: 'F32', shape: [shard.length], data: shard.lastUpdates } },
          { digest: this.answerDigest ?? v.digest, step: String(t) },
        ),
        v,
      )
    }
    if (t !== shard.step + 1)
      return problem(409, 'step_conflict', `shard ${k} expects step ${shard.step + 1}, got ${t}`)
    const grads = req.tensors?.get('grads')
    if (grads?.dtype !== 'F32' || grads.data.length !== shard.length) {
      return problem(400, 'shape_mismatch', `shard ${k} has ${shard.length} coordinates`)
    }
    const out = this.math(v.scale, grads.data, shard.state)
    shard.state = out.state
    shard.step = t
    shard.lastUpdates = out.updates
    const key = `${session.id}/${k}/${t}`
    this.applied.set(key, (this.applied.get(key) ?? 0) + 1)
    return this.binary(
      encode(
        { updates: { dtype: 'F32', shape: [shard.length], data: out.updates } },
        { digest: this.answerDigest ?? v.digest, step: String(t) },
      ),
      v,
    )
  }

  private binary(bytes: Uint8Array, v: Version): Response {
    const headers: Record<string, string> = {
      'Content-Type': safetensorsMediaType,
      'L2O-Digest': this.answerDigest ?? v.digest,
    }
    if (v.deprecated) headers.Deprecation = '@1700000000'
    return new Response(bytes, { status: 200, headers })
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

/** A problem+json answer for `code`. */
export function problem(
  status: number,
  code: ProblemCode,
  detail: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(
    JSON.stringify({
      type: `/problems/${code}`,
      title: code,
      status: status ?? problemCodes[code],
      detail,
      code,
      requestId: 'req-1',
    }),
    { status, headers: { 'Content-Type': problemMediaType, 'X-Request-Id': 'req-1', ...headers } },
  )
}
