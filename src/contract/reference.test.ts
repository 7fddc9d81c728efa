import { describe, expect, it } from 'vitest'
import { formatReference, parseReference } from './reference'

describe('parseReference', () => {
  it('reads a bare name as the stable alias', () => {
    expect(parseReference('l2o-mnist')).toEqual({
      ok: true,
      ref: { name: 'l2o-mnist', kind: 'alias', alias: 'stable' },
    })
  })

  it('tells versions, aliases and digests apart', () => {
    const digest = `sha256:${'ab'.repeat(32)}`
    const cases = [
      ['l2o-mnist@1.0.0', { kind: 'version', version: '1.0.0' }],
      ['l2o-mnist@1.0.0-rc.1', { kind: 'version', version: '1.0.0-rc.1' }],
      ['l2o-mnist@latest', { kind: 'alias', alias: 'latest' }],
      [`l2o-mnist@${digest}`, { kind: 'digest', digest }],
    ] as const
    for (const [text, expected] of cases) {
      const parsed = parseReference(text)
      expect(parsed).toEqual({ ok: true, ref: { name: 'l2o-mnist', ...expected } })
      if (parsed.ok) expect(formatReference(parsed.ref)).toBe(text)
    }
  })

  it('refuses malformed names, digests and suffixes with a message', () => {
    for (const text of ['', 'L2O', 'a@sha256:abc', 'a@1.0', 'a@@b', 'a@Stable', '-a']) {
      const parsed = parseReference(text)
      expect(parsed.ok, text).toBe(false)
      if (!parsed.ok) expect(parsed.message.length).toBeGreaterThan(10)
    }
  })
})
