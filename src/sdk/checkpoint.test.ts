import { describe, expect, it } from 'vitest'
import { fakeSetup, iota } from '../../test/sdk/setup'
import { decodeCheckpoint, encodeCheckpoint } from './checkpoint'
import { L2oClient } from './client'
import { SdkError, StepConflictError } from './errors'

describe('save and load', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`resumes a stateless ${dtype} run exactly where it was saved`, async () => {
      const { server, client } = fakeSetup()
      const opt = await client.remoteOptimizer({ optimizer: 'toy', stateDtype: dtype })
      const g = iota(11)
      await opt.step(g)
      await opt.step(g)
      const bytes = opt.save()
      const continued = await opt.step(g)

      // Another process, after the alias moved: the checkpoint's pin wins.
      server.aliases.set('stable', '2.0.0')
      const other = new L2oClient({ baseUrl: 'http://l2o.test', apiKey: server.apiKey, fetch: server.fetch })
      const resumed = await other.loadOptimizer(bytes)
      expect(resumed.stepCount).toBe(2)
      expect(resumed.digest).toBe(server.digestOf('1.0.0'))
      expect(resumed.reference).toBe('toy')
      expect(await resumed.step(g)).toEqual(continued)
      expect(
        server.requests
          .filter((r) => r.path === '/v1/resolve')
          .at(-1)!
          .query.get('ref'),
      ).toBe(resumed.pinned)
    })
  }

  it('round-trips a run saved before its first step', async () => {
    const { client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0' })
    const resumed = await client.loadOptimizer(opt.save())
    expect(resumed.stepCount).toBe(0)
    expect(await resumed.step(iota(3))).toEqual(await opt.step(iota(3)))
  })

  it('resumes a session run by id, without creating another session', async () => {
    const { server, client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0', mode: 'session' })
    const g = iota(10)
    await opt.step(g)
    const bytes = opt.save()
    const resumed = await client.loadOptimizer(bytes)
    expect(resumed.sessionId).toBe(opt.sessionId)
    expect(await resumed.step(g)).toEqual(g.map((x) => Math.fround(-0.1 * Math.fround(2 * x))))
    expect(server.count('POST', '/v1/sessions')).toBe(1 + 2 * 2)
    expect(decodeCheckpoint(bytes)).toMatchObject({
      mode: 'session',
      sessionId: 's1',
      step: 1,
      numParams: 10,
    })
  })

  it('refuses to resume a session from a checkpoint the server has moved past', async () => {
    const { client } = fakeSetup()
    const opt = await client.remoteOptimizer({ optimizer: 'toy@1.0.0', mode: 'session' })
    const g = iota(4)
    await opt.step(g)
    const old = opt.save()
    await opt.step(g)
    await opt.step(g)
    await expect(client.loadOptimizer(old)).rejects.toBeInstanceOf(StepConflictError)
  })

  it('refuses bytes that are not a checkpoint, or an inconsistent one', () => {
    expect(() => decodeCheckpoint(new Uint8Array([1, 2, 3]))).toThrow(SdkError)
    const digest = `sha256:${'a'.repeat(64)}`
    const base = {
      mode: 'stateless' as const,
      reference: 'toy',
      optimizer: `toy@${digest}`,
      digest,
      stateDtype: 'F32' as const,
      step: 0,
    }
    expect(decodeCheckpoint(encodeCheckpoint(base))).toMatchObject(base)
    expect(() => decodeCheckpoint(encodeCheckpoint({ ...base, optimizer: 'toy@1.0.0' }))).toThrow(/pinned/)
    expect(() => decodeCheckpoint(encodeCheckpoint({ ...base, step: 3, numParams: 2 }))).toThrow(/state/)
    expect(() => decodeCheckpoint(encodeCheckpoint({ ...base, mode: 'session' }))).toThrow(/session_id/)
  })
})
