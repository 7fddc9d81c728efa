/**
 * The server under test: `npm start`'s own command line (package.json), started as a child with
 * its own data directory and keys, that the suite can kill -9 and restart on the same port, and
 * whose memory and event loop it watches. $L2O_SERVER_NODE_ARGS adds node flags to it (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where its time goes).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { extraNodeArguments, startArguments } from '../support/start-command'

export const root = path.resolve(import.meta.dirname, '../..')
export const adminKey = 'l2o_reliability_admin_key_000000'
export const clientKey = 'l2o_reliability_client_key_00000'

// Servers still running when the suite exits (an error, Ctrl-C) go with it.
const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

export interface ServerOptions {
  dataDir: string
  port: number
  /** Extra flags for node-main.ts, e.g. ['--body-timeout-ms', '5000']. */
  flags?: string[]
}

/** One run of the server process. */
export class ServerProcess {
  readonly url: string
  private child: ChildProcess | undefined
  private log = ''
  private readonly loopFile: string

  constructor(readonly options: ServerOptions) {
    this.url = `http://127.0.0.1:${options.port}`
    this.loopFile = path.join(options.dataDir, 'event-loop.json')
  }

  get pid(): number {
    if (this.child?.pid === undefined) throw new Error('the server is not running')
    return this.child.pid
  }

  /** Starts it and resolves once it listens. */
  async start(timeoutMs = 120_000): Promise<void> {
    const args = startArguments()
    const at = args.indexOf('tsx')
    args.splice(at + 1, 0, '--import', path.join(root, 'test/reliability/loop-monitor.ts'))
    const child = spawn(
      process.execPath,
      [
        ...extraNodeArguments(),
        ...args,
        '--port',
        String(this.options.port),
        '--data-dir',
        this.options.dataDir,
        ...(this.options.flags ?? []),
      ],
      {
        cwd: root,
        env: {
          ...process.env,
          L2O_ADMIN_KEY: adminKey,
          L2O_CLIENT_KEY: clientKey,
          L2O_LOOP_REPORT: this.loopFile,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    this.child = child
    live.add(child)
    child.once('exit', () => live.delete(child))
    this.log = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the server did not start in ${timeoutMs} ms:\n${this.log}`)),
        timeoutMs,
      )
      const onData = (chunk: Buffer) => {
        this.log = (this.log + chunk.toString()).slice(-20_000)
        if (/listening on http/.test(this.log)) {
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', onData)
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`the server exited (${code ?? signal}) while starting:\n${this.log}`))
      })
    })
  }

  /** What it printed lately. */
  output(): string {
    return this.log
  }

  /** SIGKILL: no shutdown of any kind. */
  async kill9(): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  /** SIGTERM, as Ctrl-C would: the server closes its database. */
  async stop(): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }

  /** Resident memory now, in MB (Linux /proc). */
  rssMb(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8')
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
  }

  /** CPU time the process has used so far, in seconds (Linux /proc, user + system). */
  cpuSeconds(): number {
    const fields = readFileSync(`/proc/${this.pid}/stat`, 'utf8').split(') ')[1].split(' ')
    // utime and stime are fields 14 and 15 of /proc/pid/stat, in clock ticks (100 per second).
    return (Number(fields[11]) + Number(fields[12])) / 100
  }

  /** Starts a new measurement of the event loop's delay. */
  async resetLoopDelay(): Promise<void> {
    process.kill(this.pid, 'SIGUSR2')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  /** The event loop's delay since the last reset (the longest block is maxMs). */
  async loopDelay(): Promise<{
    maxMs: number
    p99Ms: number
    meanMs: number
    /** The longest block the server's own work caused (lateness capped by its CPU time). */
    ownMaxMs: number
    gcMaxMs: number
    gcTotalMs: number
  }> {
    await new Promise((resolve) => setTimeout(resolve, 300))
    return JSON.parse(readFileSync(this.loopFile, 'utf8'))
  }
}

/** Samples a server's resident memory every `everyMs` until stopped; resolves to the peak in MB. */
export function watchMemory(server: ServerProcess, everyMs = 100): { stop: () => number } {
  let peak = 0
  const sample = () => {
    try {
      peak = Math.max(peak, server.rssMb())
    } catch {
      // Between a kill and a restart there is no process to read.
    }
  }
  sample()
  const timer = setInterval(sample, everyMs)
  return {
    stop: () => {
      clearInterval(timer)
      sample()
      return peak
    },
  }
}
