import { describe, expect, it } from 'vitest'
import { fillPath, honoPath, paths, routes } from './wire'

describe('paths', () => {
  it('fill into the routes clients call, each parameter URL-encoded', () => {
    expect(routes.optimizer('l2o-mnist')).toBe('/v1/optimizers/l2o-mnist')
    expect(routes.sessionStep('ses a/b', 2, 7)).toBe('/v1/sessions/ses%20a%2Fb/shards/2/steps/7')
    expect(routes.adminDeprecate('x', '1.0.0-rc.1')).toBe(
      '/v1/admin/optimizers/x/versions/1.0.0-rc.1/deprecate',
    )
    expect(routes.adminClientKeys('cli_1')).toBe('/v1/admin/clients/cli_1/keys')
    expect(fillPath(paths.adminKey, { id: 'k?1' })).toBe('/v1/admin/keys/k%3F1')
  })

  it("become Hono's patterns for the server", () => {
    expect(honoPath(paths.sessionStep)).toBe('/v1/sessions/:id/shards/:shard/steps/:step')
    expect(honoPath(paths.step)).toBe('/v1/step')
  })
})
