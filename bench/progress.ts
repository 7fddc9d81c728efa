/**
 * A progress bar with an ETA for long commands (the benchmarks, the reliability suite): on a terminal
 * it redraws one line on stderr; in a log (CI, a pipe) it writes a plain line at most every
 * `logEveryMs`, so the output stays readable. Counts units of work the caller chooses (runs,
 * requests, cases); the ETA assumes the remaining units take as long as the finished ones did.
 *
 * @example
 * const bar = progress({ label: 'bench:kernel', total: 120 })
 * for (const run of runs) { await run(); bar.tick(1, 'tfjs-wasm N=1,000') }
 * bar.done()
 */

/** Where the bar is written: process.stderr, or a fake in tests. */
export interface ProgressStream {
  write(text: string): unknown
  isTTY?: boolean
  columns?: number
}

export interface ProgressOptions {
  /** Shown before the bar, e.g. the command's name. */
  label: string
  /** Units of work in all; `add()` may raise it later. */
  total: number
  /** Default process.stderr. */
  stream?: ProgressStream
  /** Milliseconds clock (tests pin it); default performance.now. */
  now?: () => number
  /** Off a terminal: the least time between two lines (default 10 s). */
  logEveryMs?: number
}

export interface Progress {
  /** `n` more units done; `note` says what is running now. */
  tick(n?: number, note?: string): void
  /** `n` more units to do than planned. */
  add(n: number): void
  /** Ends the bar with a final line (elapsed time). */
  done(note?: string): void
  /** The current line, without terminal control characters. */
  line(): string
}

/** `75s` → `1m15s`; `3725s` → `1h02m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?'
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

/** Starts a bar at 0 of `total`. */
export function progress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr
  const now = options.now ?? (() => performance.now())
  const logEveryMs = options.logEveryMs ?? 10_000
  const started = now()
  let total = Math.max(0, options.total)
  let finished = 0
  let note = ''
  let lastLog = Number.NEGATIVE_INFINITY
  let closed = false

  const line = (): string => {
    const elapsed = (now() - started) / 1000
    const fraction = total > 0 ? Math.min(1, finished / total) : 1
    const width = 24
    const filled = Math.round(fraction * width)
    const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`
    const eta = finished > 0 ? formatDuration((elapsed / finished) * (total - finished)) : '?'
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4)
    const tail = note === '' ? '' : `  ${note}`
    return `${options.label} [${bar}] ${percent} ${finished}/${total}  elapsed ${formatDuration(elapsed)}  ETA ${eta}${tail}`
  }

  const draw = (force: boolean): void => {
    if (closed) return
    if (stream.isTTY) {
      const text = line()
      const columns = stream.columns ?? 120
      stream.write(`\r${text.length > columns - 1 ? text.slice(0, columns - 1) : text}\x1b[K`)
      return
    }
    const t = now()
    if (force || t - lastLog >= logEveryMs) {
      lastLog = t
      stream.write(`${line()}\n`)
    }
  }

  draw(true)
  return {
    tick(n = 1, what) {
      finished += n
      if (what !== undefined) note = what
      draw(false)
    },
    add(n) {
      total += n
      draw(false)
    },
    done(what) {
      if (closed) return
      finished = Math.max(finished, total)
      note = what ?? 'done'
      if (stream.isTTY) {
        draw(true)
        stream.write('\n')
      } else {
        draw(true)
      }
      closed = true
    },
    line,
  }
}
