import { describe, expect, it } from 'vitest'
import { expectProblem, itRefusesAndChangesNothing, type Refusal } from '../../../test/support/problem'
import { useTestServer, weightFile } from '../../../test/support/server'
import { digestOf } from '../../weights'
import { createClient } from '../auth'

const s = useTestServer()

function form(fields: Record<string, string | Uint8Array>): FormData {
  const data = new FormData()
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string') data.append(k, v)
    else data.append(k, new File([v], `${k}.bin`))
  }
  return data
}

const publish = (
  name: string,
  fields: Record<string, string | Uint8Array>,
  auth: Record<string, string> = s.adminAuth,
) =>
  s.app.request(`/v1/admin/optimizers/${name}/versions`, {
    method: 'POST',
    body: form(fields),
    headers: auth,
  })

describe('publishing', () => {
  it('publishes a version, computes its digest, and creates nothing for the same bytes again', async () => {
    const weights = weightFile(10)
    const card = JSON.stringify({ name: 'fresh', version: '1.0.0', description: 'a test optimizer' })
    const res = await publish('fresh', { version: '1.0.0', weights, card })
    expect(res.status).toBe(201)
    const digest = await digestOf(weights)
    expect(await res.json()).toEqual({ name: 'fresh', version: '1.0.0', digest, created: true, files: [] })

    const before = s.snapshot()
    const again = await publish('fresh', { version: '1.0.0', weights, card })
    expect(again.status).toBe(200)
    expect(await again.json()).toEqual({ name: 'fresh', version: '1.0.0', digest, created: false, files: [] })
    const sameBytes = await publish('fresh', { version: '1.0.1', weights })
    expect(await sameBytes.json()).toEqual({
      name: 'fresh',
      version: '1.0.0',
      digest,
      created: false,
      files: [],
    })
    expect(s.snapshot()).toBe(before)

    const detail = (await (await s.app.request('/v1/optimizers/fresh')).json()) as Record<string, unknown>
    expect(detail).toMatchObject({ name: 'fresh', kind: 'learned', description: 'a test optimizer' })
    expect(detail.aliases).toMatchObject([
      { alias: 'latest', version: '1.0.0' },
      { alias: 'stable', version: '1.0.0' },
    ])
  })

  it('publishes plots and analyses with a version and serves them, immutable, beside its card', async () => {
    const plot = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3])
    const analysis = JSON.stringify({ fits: { adam: { r2: 0.93 } } })
    const body = form({ version: '1.0.0', weights: weightFile(12) })
    body.append('files', new File([plot], 'loss.png'))
    body.append('files', new File([analysis], 'analysis.json'))
    const res = await s.app.request('/v1/admin/optimizers/plotted/versions', {
      method: 'POST',
      body,
      headers: s.adminAuth,
    })
    expect(res.status).toBe(201)
    expect(await res.json()).toMatchObject({ created: true, files: ['analysis.json', 'loss.png'] })

    const detail = (await (await s.app.request('/v1/optimizers/plotted')).json()) as {
      versions: { files: { name: string; mediaType: string; sizeBytes: number; digest: string }[] }[]
    }
    expect(detail.versions[0].files).toEqual([
      {
        name: 'analysis.json',
        mediaType: 'application/json',
        sizeBytes: analysis.length,
        digest: await digestOf(new TextEncoder().encode(analysis)),
      },
      { name: 'loss.png', mediaType: 'image/png', sizeBytes: plot.length, digest: await digestOf(plot) },
    ])

    const file = await s.app.request('/v1/optimizers/plotted/versions/1.0.0/files/loss.png')
    expect(file.status).toBe(200)
    expect(file.headers.get('content-type')).toBe('image/png')
    expect(file.headers.get('cache-control')).toContain('immutable')
    expect(file.headers.get('x-content-type-options')).toBe('nosniff')
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(plot)
    const cached = await s.app.request('/v1/optimizers/plotted/versions/1.0.0/files/loss.png', {
      headers: { 'if-none-match': file.headers.get('etag')! },
    })
    expect(cached.status).toBe(304)
    const json = await s.app.request('/v1/optimizers/plotted/versions/1.0.0/files/analysis.json')
    expect(await json.json()).toEqual(JSON.parse(analysis))
    await expectProblem(
      await s.app.request('/v1/optimizers/plotted/versions/1.0.0/files/other.png'),
      404,
      'not_found',
    )

    // Files are immutable like the version: other files for it are refused.
    const again = form({ version: '1.0.0', weights: weightFile(12) })
    again.append('files', new File([plot.slice(0, 9)], 'loss.png'))
    await expectProblem(
      await s.app.request('/v1/admin/optimizers/plotted/versions', {
        method: 'POST',
        body: again,
        headers: s.adminAuth,
      }),
      409,
      'version_conflict',
    )
  })

  it('moves aliases with history and deprecates versions, which alias resolution then skips', async () => {
    await publish('moving', { version: '1.0.0', weights: weightFile(20) })
    await publish('moving', { version: '1.1.0', weights: weightFile(21) })
    const resolve = async (ref: string) =>
      (await s.app.request(`/v1/resolve?ref=${ref}`)).json() as Promise<Record<string, unknown>>
    expect(await resolve('moving')).toMatchObject({ version: '1.0.0' })
    expect(await resolve('moving@latest')).toMatchObject({ version: '1.1.0' })

    const move = await s.app.request('/v1/admin/optimizers/moving/aliases/stable', {
      method: 'PUT',
      body: JSON.stringify({ version: '1.1.0' }),
      headers: { ...s.adminAuth, 'content-type': 'application/json' },
    })
    expect(move.status).toBe(200)
    const alias = (await move.json()) as { version: string; history: { version: string }[] }
    expect(alias.version).toBe('1.1.0')
    expect(alias.history.map((h) => h.version)).toEqual(['1.0.0', '1.1.0'])
    expect(await resolve('moving')).toMatchObject({ version: '1.1.0', deprecated: false })

    const dep = await s.app.request('/v1/admin/optimizers/moving/versions/1.1.0/deprecate', {
      method: 'POST',
      headers: s.adminAuth,
    })
    expect(dep.status).toBe(200)
    expect(await dep.json()).toMatchObject({ version: '1.1.0', status: 'deprecated' })
    // The alias skips the deprecated version; a pin still gets it, with a Deprecation header.
    expect(await resolve('moving')).toMatchObject({ version: '1.0.0', deprecated: false })
    const pinned = await s.app.request('/v1/resolve?ref=moving@1.1.0')
    expect(await pinned.json()).toMatchObject({ version: '1.1.0', deprecated: true })
    expect(pinned.headers.get('deprecation')).toMatch(/^@\d+$/)
    const step = await s.app.request('/v1/step', {
      method: 'POST',
      body: JSON.stringify({ optimizer: 'moving@1.1.0', grads: [0.5] }),
      headers: { ...s.clientAuth, 'content-type': 'application/json' },
    })
    expect(step.status).toBe(200)
    expect(step.headers.get('deprecation')).toMatch(/^@\d+$/)
  })

  it('creates clients and keys, and revoked keys stop working', async () => {
    const res = await s.app.request('/v1/admin/clients', {
      method: 'POST',
      body: JSON.stringify({ name: 'carol' }),
      headers: { ...s.adminAuth, 'content-type': 'application/json' },
    })
    expect(res.status).toBe(201)
    const made = (await res.json()) as {
      client: { id: string }
      key: { id: string; prefix: string }
      secret: string
    }
    expect(made.secret.startsWith(made.key.prefix)).toBe(true)
    // Only the hash is stored.
    expect(s.snapshot()).not.toContain(made.secret)
    const call = (secret: string) =>
      s.app.request('/v1/sessions', {
        method: 'POST',
        body: JSON.stringify({ optimizer: 'tiny', numParams: 1 }),
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      })
    expect((await call(made.secret)).status).toBe(201)

    const second = await s.app.request(`/v1/admin/clients/${made.client.id}/keys`, {
      method: 'POST',
      headers: s.adminAuth,
    })
    expect(second.status).toBe(201)
    const key2 = (await second.json()) as { key: { id: string }; secret: string }

    const revoke = await s.app.request(`/v1/admin/keys/${made.key.id}`, {
      method: 'DELETE',
      headers: s.adminAuth,
    })
    expect(revoke.status).toBe(200)
    expect(((await revoke.json()) as { revokedAt: string | null }).revokedAt).not.toBeNull()
    const revoked = await expectProblem(await call(made.secret), 401, 'unauthorized')
    // A revoked key and a key that never existed get the same answer.
    const unknown = await expectProblem(await call(`l2o_${'0'.repeat(64)}`), 401, 'unauthorized')
    expect(revoked.detail).toBe(unknown.detail)
    expect(revoked.detail).not.toContain('revoked')
    expect((await call(key2.secret)).status).toBe(201)
  })
})

describe('admin routes refuse bad input with problem+json and change nothing', () => {
  const json = { 'content-type': 'application/json' }
  const cases: Refusal[] = [
    [
      'publish without a key',
      () => publish('x', { version: '1.0.0', weights: weightFile(30) }, {} as Record<string, string>),
      401,
      'unauthorized',
    ],
    [
      'publish with a client key',
      () => publish('x', { version: '1.0.0', weights: weightFile(30) }, s.clientAuth),
      403,
      'forbidden',
    ],
    [
      'publish JSON instead of a form',
      () =>
        s.app.request('/v1/admin/optimizers/x/versions', {
          method: 'POST',
          body: '{}',
          headers: { ...s.adminAuth, ...json },
        }),
      415,
      'unsupported_media_type',
    ],
    ['publish without a version', () => publish('x', { weights: weightFile(30) }), 400, 'invalid_request'],
    [
      'publish a bad version',
      () => publish('x', { version: '1.0', weights: weightFile(30) }),
      400,
      'invalid_request',
    ],
    [
      'publish a bad name',
      () => publish('X_y', { version: '1.0.0', weights: weightFile(30) }),
      400,
      'invalid_request',
    ],
    [
      'publish a baseline name',
      () => publish('adam', { version: '1.0.0', weights: weightFile(30) }),
      400,
      'invalid_request',
    ],
    ['publish without weights', () => publish('x', { version: '1.0.0' }), 400, 'invalid_request'],
    [
      'publish garbage weights',
      () => publish('x', { version: '1.0.0', weights: new Uint8Array(100) }),
      400,
      'invalid_weights',
    ],
    [
      'publish weights with a missing tensor',
      () => publish('x', { version: '1.0.0', weights: new Uint8Array([...weightFile(30)].slice(0, 200)) }),
      400,
      'invalid_weights',
    ],
    [
      'publish a card that is not JSON',
      () => publish('x', { version: '1.0.0', weights: weightFile(30), card: '{' }),
      400,
      'invalid_request',
    ],
    [
      'publish a card of another version',
      () => publish('x', { version: '1.0.0', weights: weightFile(30), card: '{"version":"2.0.0"}' }),
      400,
      'invalid_request',
    ],
    [
      'publish a card with another digest',
      () =>
        publish('x', {
          version: '1.0.0',
          weights: weightFile(30),
          card: `{"digest":"sha256:${'5'.repeat(64)}"}`,
        }),
      400,
      'invalid_request',
    ],
    [
      'republish a version with other bytes',
      () => publish('tiny', { version: '1.0.0', weights: weightFile(31) }),
      409,
      'version_conflict',
    ],
    [
      'publish a body over the limit',
      () =>
        s.app.request('/v1/admin/optimizers/x/versions', {
          method: 'POST',
          body: new Uint8Array(11_000_000),
          headers: { ...s.adminAuth, 'content-type': 'multipart/form-data; boundary=x' },
        }),
      413,
      'payload_too_large',
    ],
    [
      'publish a malformed form',
      () =>
        s.app.request('/v1/admin/optimizers/x/versions', {
          method: 'POST',
          body: 'nope',
          headers: { ...s.adminAuth, 'content-type': 'multipart/form-data; boundary=x' },
        }),
      400,
      'invalid_request',
    ],
    [
      'deprecate an unknown version',
      () =>
        s.app.request('/v1/admin/optimizers/tiny/versions/9.9.9/deprecate', {
          method: 'POST',
          headers: s.adminAuth,
        }),
      404,
      'version_not_found',
    ],
    [
      'move an alias to an unknown version',
      () =>
        s.app.request('/v1/admin/optimizers/tiny/aliases/stable', {
          method: 'PUT',
          body: '{"version":"9.9.9"}',
          headers: { ...s.adminAuth, ...json },
        }),
      404,
      'version_not_found',
    ],
    [
      'move an alias with a bad body',
      () =>
        s.app.request('/v1/admin/optimizers/tiny/aliases/stable', {
          method: 'PUT',
          body: '{"version":1}',
          headers: { ...s.adminAuth, ...json },
        }),
      400,
      'invalid_request',
    ],
    [
      'move a malformed alias',
      () =>
        s.app.request('/v1/admin/optimizers/tiny/aliases/Bad_Alias', {
          method: 'PUT',
          body: '{"version":"1.0.0"}',
          headers: { ...s.adminAuth, ...json },
        }),
      400,
      'invalid_request',
    ],
    [
      'create a client without a name',
      () =>
        s.app.request('/v1/admin/clients', {
          method: 'POST',
          body: '{}',
          headers: { ...s.adminAuth, ...json },
        }),
      400,
      'invalid_request',
    ],
    [
      'create a key for an unknown client',
      () => s.app.request('/v1/admin/clients/cl_nope/keys', { method: 'POST', headers: s.adminAuth }),
      404,
      'not_found',
    ],
    [
      'revoke an unknown key',
      () => s.app.request('/v1/admin/keys/key_nope', { method: 'DELETE', headers: s.adminAuth }),
      404,
      'key_not_found',
    ],
  ]
  itRefusesAndChangesNothing(cases, () => s.snapshot(), 'refuses to')

  it('refuses a revoked admin key', async () => {
    const admin = await createClient(s.deps.db, { name: 'ops', role: 'admin' }, new Date(), (n) =>
      crypto.getRandomValues(new Uint8Array(n)),
    )
    const revoke = await s.app.request(`/v1/admin/keys/${admin.key.id}`, {
      method: 'DELETE',
      headers: s.adminAuth,
    })
    expect(revoke.status).toBe(200)
    const before = s.snapshot()
    const res = await publish(
      'x',
      { version: '1.0.0', weights: weightFile(30) },
      { authorization: `Bearer ${admin.secret}` },
    )
    await expectProblem(res, 401, 'unauthorized')
    expect(s.snapshot()).toBe(before)
  })

  it('never revokes the last active admin key: 409 last_admin_key', async () => {
    const activeAdminKeys = () =>
      s.sqlite
        .prepare(
          "select api_keys.id from api_keys join clients on clients.id = api_keys.client_id where clients.role = 'admin' and revoked_at is null",
        )
        .all() as { id: string }[]
    const revoke = (id: string) =>
      s.app.request(`/v1/admin/keys/${id}`, { method: 'DELETE', headers: s.adminAuth })
    const [only, ...rest] = activeAdminKeys()
    expect(rest).toEqual([])
    const before = s.snapshot()
    await expectProblem(await revoke(only.id), 409, 'last_admin_key')
    expect(s.snapshot()).toBe(before)

    // With a second admin key, one of the two may go, and then the other is the last again.
    const admin = (await s.sqlite
      .prepare("select id from clients where role = 'admin' and name = 'admin'")
      .get()) as { id: string }
    const second = await s.app.request(`/v1/admin/clients/${admin.id}/keys`, {
      method: 'POST',
      headers: s.adminAuth,
    })
    const { key, secret } = (await second.json()) as { key: { id: string }; secret: string }
    const revokedFirst = await s.app.request(`/v1/admin/keys/${only.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${secret}` },
    })
    expect(revokedFirst.status).toBe(200)
    const last = await s.app.request(`/v1/admin/keys/${key.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${secret}` },
    })
    await expectProblem(last, 409, 'last_admin_key')
    expect(activeAdminKeys()).toEqual([{ id: key.id }])
  })
})
