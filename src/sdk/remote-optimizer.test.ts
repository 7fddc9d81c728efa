import { describe, expect, it } from 'vitest'
import { fakeSetup, iota } from '../../test/sdk/setup'
import { DigestMismatchError, ServerError, StepConflictError } from './errors'

describe('stateless sharding', () => {
  for (const n of [1, 7, 8, 9, 16, 17, 30]) {
    it(`splits ${n} coordinates into ceil(${n}/8) even requests and reassembles updates in order`, async () => {
      const { server, client } = fakeSetup()
      const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
      const g = iota(n)
      const updates = await opt.step(g)
      const steps = server.requests.filter((r) => r.path === '/v1/step')
      expect(steps).toHaveLength(Math.ceil(n / 8))
      // Each request carries one contiguous slice of ceil(n / its count) (the last shorter): its first
      // value names its offset.
      const size = Math.ceil(n / Math.ceil(n / 8))
      const slices = steps
        .map((r) => r.tensors!.get('grads')!.data as Float32Array)
        .sort((a, b) => a[0] - b[0])
      for (const [k, s] of slices.entries()) {
        expect(s[0]).toBe(k * size + 1)
        expect(s.length).toBe(Math.min(size, n - k * size))
      }
      expect(updates).toEqual(g.map((x) => Math.fround(-0.1 * x)))
      expect(opt.shardLayout?.map((s) => s.length)).toEqual(slices.map((s) => s.length))
    })
  }

  it('honours a smaller client-side limit than the server advertises', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0', maxCoordinatesPerRequest: 3 })
    await opt.step(iota(8))
    expect(server.count('POST', '/v1/step')).toBe(3)
  })

  it('sends each shard its own state and keeps it between steps', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    const g = iota(12)
    await opt.step(g)
    await opt.step(g)
    const third = await opt.step(g)
    // update_k = -0.1·k·g with the toy optimizer, so the state made it to the server and back.
    expect(third).toEqual(g.map((x) => Math.fround(-0.1 * Math.fround(3 * x))))
    const last = server.requests.filter((r) => r.path === '/v1/step').slice(-2)
    const shapes = last.map((r) => r.tensors!.get('state')!.shape).sort((a, b) => b[0] - a[0])
    expect(shapes).toEqual([
      [6, 2],
      [6, 2],
    ])
    expect(opt.stepCount).toBe(3)
  })

  for (const dtype of ['F16', 'BF16'] as const) {
    it(`keeps the state in ${dtype} on the wire when asked`, async () => {
      const { server, client } = fakeSetup()
      const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0', stateDtype: dtype })
      const g = iota(4)
      await opt.step(g)
      const second = await opt.step(g)
      const req = server.requests.filter((r) => r.path === '/v1/step').at(-1)!
      expect(req.metadata!.state_dtype).toBe(dtype)
      expect(req.tensors!.get('state')!.dtype).toBe(dtype)
      expect(second).toEqual(g.map((x) => Math.fround(-0.1 * 2 * x)))
    })
  }

  it('keeps at most `concurrency` requests in flight', async () => {
    const { server, client } = fakeSetup({ concurrency: 2 })
    let inFlight = 0
    let peak = 0
    const inner = server.fetch
    ;(client as unknown as { transport: { options: { fetch: typeof inner } } }).transport.options.fetch =
      async (url, init) => {
        inFlight++
        peak = Math.max(peak, inFlight)
        await new Promise((r) => setTimeout(r, 5))
        try {
          return await inner(url, init)
        } finally {
          inFlight--
        }
      }
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    await opt.step(iota(40))
    expect(server.count('POST', '/v1/step')).toBe(5)
    expect(peak).toBe(2)
  })

  it('leaves the run at the previous step when a shard fails, so the step can be retried', async () => {
    const { server, client } = fakeSetup({ retry: { maxRetries: 0 } })
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    const g = iota(16)
    await opt.step(g)
    server.faults.push({ when: (r) => r.path === '/v1/step', times: 1, kind: { status: 503 } })
    await expect(opt.step(g)).rejects.toBeInstanceOf(ServerError)
    expect(opt.stepCount).toBe(1)
    const again = await opt.step(g)
    expect(again).toEqual(g.map((x) => Math.fround(-0.1 * Math.fround(2 * x))))
  })
})

describe('misuse', () => {
  it('refuses overlapping step() calls and a changed parameter count', async () => {
    const { client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    const first = opt.step(iota(4))
    await expect(opt.step(iota(4))).rejects.toThrow(/still running/)
    await first
    await expect(opt.step(iota(5))).rejects.toThrow(/4 parameters/)
    expect(opt.stepCount).toBe(1)
  })
})

describe('version pinning', () => {
  it('resolves once and sends the pinned digest, even after the alias moves mid-run', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy' })
    expect(opt.pinned).toBe(`toy@${server.digestOf('1.0.0')}`)
    const g = iota(3)
    await opt.step(g)
    server.aliases.set('stable', '2.0.0')
    const second = await opt.step(g)
    expect(second).toEqual(g.map((x) => Math.fround(-0.1 * 2 * x)))
    expect(server.count('GET', '/v1/resolve')).toBe(1)
    for (const r of server.requests.filter((x) => x.path === '/v1/step')) {
      expect(r.metadata!.optimizer).toBe(opt.pinned)
      expect(r.metadata!.digest).toBe(server.digestOf('1.0.0'))
    }
    // A new run resolves again and gets the new version.
    const next = await client.remoteOptimizer({ optimizer: 'toy' })
    expect(next.digest).toBe(server.digestOf('2.0.0'))
  })

  it('pins sessions too: the alias moving does not change the session', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@stable', mode: 'session' })
    const g = iota(3)
    await opt.step(g)
    server.aliases.set('stable', '2.0.0')
    expect(await opt.step(g)).toEqual(g.map((x) => Math.fround(-0.1 * 2 * x)))
    const create = server.requests.find((r) => r.path === '/v1/sessions')!
    expect(create.json).toMatchObject({
      optimizer: opt.pinned,
      digest: server.digestOf('1.0.0'),
      numParams: 3,
    })
    expect(server.count('GET', '/v1/resolve')).toBe(1)
  })

  it('throws DigestMismatchError on a 409 digest_mismatch, without retrying', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.faults.push({
      when: (r) => r.path === '/v1/step',
      times: 1,
      kind: { status: 409, code: 'digest_mismatch' },
    })
    await expect(opt.step(iota(2))).rejects.toBeInstanceOf(DigestMismatchError)
    expect(server.count('POST', '/v1/step')).toBe(1)
  })

  it('refuses an answer computed under another digest than the pin', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.answerDigest = `sha256:${'f'.repeat(64)}`
    await expect(opt.step(iota(2))).rejects.toBeInstanceOf(DigestMismatchError)
    const session = await client.remoteOptimizer({ optimizer: 'toy@1.0.0', mode: 'session' })
    await expect(session.step(iota(2))).rejects.toBeInstanceOf(DigestMismatchError)
  })
})

describe('session mode', () => {
  it('creates one session and steps every shard with t = previous + 1', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0', mode: 'session', stateDtype: 'BF16' })
    const g = iota(20)
    await opt.step(g)
    const second = await opt.step(g)
    expect(second).toEqual(g.map((x) => Math.fround(-0.1 * Math.fround(2 * x))))
    expect(server.count('POST', '/v1/sessions/')).toBe(6)
    expect(server.count('POST', '/v1/sessions')).toBe(7)
    const paths = server.requests.filter((r) => r.path.includes('/steps/')).map((r) => r.path)
    expect(new Set(paths)).toEqual(
      new Set([0, 1, 2].flatMap((k) => [1, 2].map((t) => `/v1/sessions/s1/shards/${k}/steps/${t}`))),
    )
    expect(server.requests.find((r) => r.path === '/v1/sessions')!.json).toMatchObject({ stateDtype: 'BF16' })
    await opt.close()
    expect(server.sessions.size).toBe(0)
  })

  it('applies a retried session step once (the answer to the first attempt was lost)', async () => {
    const { server, client, sleeps } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0', mode: 'session' })
    const g = iota(16)
    server.faults.push({ when: (r) => r.path.endsWith('/shards/1/steps/1'), times: 1, kind: 'lost' })
    const first = await opt.step(g)
    expect(first).toEqual(g.map((x) => Math.fround(-0.1 * x)))
    expect(server.count('POST', '/v1/sessions/s1/shards/1/steps/1')).toBe(2)
    expect(server.applied.get('s1/1/1')).toBe(1)
    expect(sleeps).toHaveLength(1)
    // Both attempts carried the same Idempotency-Key.
    const keys = server.requests
      .filter((r) => r.path.endsWith('/shards/1/steps/1'))
      .map((r) => r.headers.get('Idempotency-Key'))
    expect(keys[0]).toBeTruthy()
    expect(keys[1]).toBe(keys[0])
    const second = await opt.step(g)
    expect(second).toEqual(g.map((x) => Math.fround(-0.1 * Math.fround(2 * x))))
    expect(server.applied.get('s1/1/2')).toBe(1)
  })

  it('succeeds when a retry gets 409 step_conflict because the first attempt was still being applied', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0', mode: 'session' })
    const g = iota(4)
    server.faults.push({ when: (r) => r.path.endsWith('/steps/1'), times: 1, kind: 'lost' })
    server.faults.push({
      when: (r) => r.path.endsWith('/steps/1'),
      times: 1,
      kind: { status: 409, code: 'step_conflict' },
    })
    expect(await opt.step(g)).toEqual(g.map((x) => Math.fround(-0.1 * x)))
    expect(server.count('POST', '/v1/sessions/s1/shards/0/steps/1')).toBe(3)
    expect(server.applied.get('s1/0/1')).toBe(1)
  })

  it('throws StepConflictError for an out-of-order first attempt, without retrying', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0', mode: 'session', numParams: 4 })
    await expect(client.sessions.step(opt.sessionId!, 0, 5, iota(4))).rejects.toBeInstanceOf(
      StepConflictError,
    )
    expect(server.count('POST', '/v1/sessions/s1/shards/0/steps/5')).toBe(1)
  })

  it('resends the same step after a failed step() call, applying each shard once', async () => {
    const { server, client } = fakeSetup({ retry: { maxRetries: 0 } })
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0', mode: 'session' })
    const g = iota(24)
    server.faults.push({ when: (r) => r.path.endsWith('/shards/2/steps/1'), times: 1, kind: { status: 500 } })
    await expect(opt.step(g)).rejects.toBeInstanceOf(ServerError)
    expect(opt.stepCount).toBe(0)
    expect(await opt.step(g)).toEqual(g.map((x) => Math.fround(-0.1 * x)))
    for (const k of [0, 1, 2]) expect(server.applied.get(`s1/${k}/1`)).toBe(1)
  })
})

describe('resolve', () => {
  it('reports a deprecated version and the pin it resolves to', async () => {
    const { server, client } = fakeSetup()
    server.versions.get('1.0.0')!.deprecated = true
    const resolved = await client.resolve('toy@1.0.0')
    expect(resolved).toMatchObject({
      deprecated: true,
      pinned: `toy@${server.digestOf('1.0.0')}`,
      stateSize: 2,
    })
  })

  it('reports a Deprecation header on step answers through onDeprecation, and keeps serving the pin', async () => {
    const notices: string[] = []
    const { server, client } = fakeSetup({ onDeprecation: (n) => notices.push(n.deprecation) })
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    server.versions.get('1.0.0')!.deprecated = true
    expect(await opt.step(iota(2))).toHaveLength(2)
    expect(notices).toEqual(['@1700000000'])
  })
})
