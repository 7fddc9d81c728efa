import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

const script = path.join(import.meta.dirname, 'test-deps.sh')

describe('scripts/test-deps.sh', () => {
  it('says nothing when every package is there (as on this machine after .ci/run)', () => {
    const run = spawnSync('bash', [script], { encoding: 'utf8' })
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' })
  })

  /** Runs the script, not as root, with a PATH that has none of the commands it checks. */
  function runWithoutCommands(args: string[]) {
    // A PATH without pyflakes3 (or clang-14), and not root (setpriv drops to nobody when the test runs as root).
    const bin = mkdtempSync(path.join(tmpdir(), 'l2o-path-'))
    symlinkSync('/usr/bin/id', path.join(bin, 'id'))
    chmodSync(bin, 0o755)
    const dropRoot =
      process.getuid?.() === 0 ? ['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : []
    const command = [...dropRoot, '/bin/bash', script, ...args]
    const started = performance.now()
    const run = spawnSync(command[0], command.slice(1), { encoding: 'utf8', env: { PATH: bin } })
    rmSync(bin, { recursive: true, force: true })
    return { ...run, ms: performance.now() - started }
  }

  it('stops at once, not as root, with the exact command when a package is missing', () => {
    const run = runWithoutCommands([])
    expect(run.status).toBe(1)
    expect(run.stderr).toContain(
      'sudo apt-get update && sudo apt-get install -y --no-install-recommends pyflakes3\n',
    )
    expect(run.ms).toBeLessThan(10_000)
  })

  it('with --kernel-toolchain (CI) also asks for clang 14 and lld 14, in the same apt-get', () => {
    const run = runWithoutCommands(['--kernel-toolchain'])
    expect(run.status).toBe(1)
    expect(run.stderr).toContain('--no-install-recommends pyflakes3 clang-14 lld-14\n')
  })
})
