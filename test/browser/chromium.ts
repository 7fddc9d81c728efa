/** Debian's chromium for the browser tests (scripts/test-deps.sh installs it; nothing is downloaded). */

export const chromiumPath = process.env.L2O_CHROMIUM ?? '/usr/bin/chromium'

/**
 * Flags for a machine with no network and no display: nothing in the background reaches out (the
 * machine refuses it), no GPU, no sandbox (CI runs as root). playwright adds --headless and starts
 * every launch on a fresh, empty --user-data-dir of its own.
 */
export const launchArgs = (): string[] => [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
