// HTTP benchmark (not a test): the Node server (`npm start`'s entry, a child process on an ephemeral
// port) against the in-process core, at N = 1,000 and 65,536 with the paper's architecture (L=2,
// H=20, S=80). Prints per mode: median latency, coordinates/s, bytes on the wire per coordinate per
// step (request + response, bodies and headers, counted on the socket), the in-process core time
// for the same N and the ratio, the server's and this client's CPU time per step (client and server
// share the machine, so the client's adds to the wall clock), and the server's peak resident memory.
// Run: npm run bench:http [-- --runs 15 --sizes 1000,65536 --modes binary,json,session,echo]
// Mode echo is the wire floor: the stateless binary body sent to a plain node:http server
// (bench/echo-server.ts) that streams it back untouched; no Node server can answer a step in less.
// Profile the server: L2O_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" npm run bench:http ...
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { fusedLstmOptimizer } from '../src/core'
import { fusedKernel } from '../src/runtime/kernel-node'
import { readShippedVersions } from '../src/runtime/shipped-weights'
import { decode, encode } from '../src/safetensors'
import { shardRanges } from '../src/sdk/pool'
import { decodeLstmWeights, encodeLstmWeights } from '../src/weights'
import { paperArchitecture, randomGradients, randomLstmWeights } from '../test/support/random'
import { extraNodeArguments, startArguments } from '../test/support/start-command'
import { progress } from './progress'

const { values: flags } = parseArgs({
  options: { runs: { type: 'string' }, sizes: { type: 'string' }, modes: { type: 'string' } },
})
const RUNS = Number(flags.runs ?? 15)
const SIZES = (flags.sizes ?? '1000,65536').split(',').map(Number)
const MODES = new Set((flags.modes ?? 'binary,json,session,echo').split(','))
const WARMUP = 3
const root = path.resolve(import.meta.dirname, '..')
const adminKey = 'l2o_bench_admin_key_0123456789'
const clientKey = 'l2o_bench_client_key_0123456789'
const binary = 'application/vnd.l2o.safetensors'

// The client's own garbage (the in-process core run, the encoded body) is collected before each
// timed request, so a client GC pause does not land inside the measured exchange.
// npm run bench:http runs node with --expose-gc.
const gc = (globalThis as { gc?: unknown }).gc as
  | ((options: { type: 'minor'; execution: 'sync' }) => void)
  | undefined
if (gc === undefined) throw new Error('run with node --expose-gc (npm run bench:http does)')
// A minor GC: a full one would also flush compiled code and slow the next core run.
const settle = () => gc({ type: 'minor', execution: 'sync' })

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

// --- the server -------------------------------------------------------------------------------

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'l2o-bench-'))
const children: ChildProcess[] = []
process.on('exit', () => {
  for (const child of children) child.kill('SIGTERM')
  rmSync(dataDir, { recursive: true, force: true })
})

/** A child process that prints "listening on http://HOST:PORT" once it serves. */
function startProcess(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ port: number; pid: number; child: ChildProcess }> {
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let output = ''
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /listening on http:\/\/[\d.]+:(\d+)/.exec(output)
      if (match) resolve({ port: Number(match[1]), pid: child.pid!, child })
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.on('exit', (code) => reject(new Error(`${args.at(-1)} exited with ${code}:\n${output}`)))
  })
}

function startServer() {
  return startProcess(
    // `npm start`'s own command line (package.json; its --max-semi-space-size=2 lowered peak RSS
    // from 253 to 225 MB at the same latency), with $L2O_SERVER_NODE_ARGS's flags.
    [...extraNodeArguments(), ...startArguments(), '--port', '0', '--data-dir', dataDir],
    { ...process.env, L2O_ADMIN_KEY: adminKey, L2O_CLIENT_KEY: clientKey },
  )
}

const clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

/** CPU time a process has used so far (user + system, from /proc), in ms: 1/CLK_TCK s resolution. */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond
}

/** Resident memory of a process from /proc, in MB: current (VmRSS) and peak (VmHWM). */
function memoryOf(pid: number): { rss: number; peak: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN)
    return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 }
  } catch {
    return undefined
  }
}

// --- an HTTP client that counts bytes on the socket ----------------------------------------------

interface Answer {
  status: number
  /** Valid until `release()`: its memory then receives a later answer. */
  body: Buffer
  wireBytes: number
  release: () => void
}

function client(port: number, sockets: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets })
  // Answers are read into reused buffers: the client should cost the machine little, and a fresh
  // 21 MB buffer per answer would add page faults and garbage to every timed exchange.
  const spare: Buffer[] = []
  const take = (length: number): Buffer => {
    const i = spare.findIndex((b) => b.length >= length)
    return i >= 0 ? spare.splice(i, 1)[0] : Buffer.allocUnsafeSlow(length)
  }
  const send = (
    method: string,
    url: string,
    headers: Record<string, string>,
    body?: Uint8Array,
  ): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method, path: url, agent, headers })
      let start = { read: 0, written: 0 }
      req.on('socket', (socket) => {
        start = { read: socket.bytesRead, written: socket.bytesWritten }
      })
      req.on('error', reject)
      req.on('response', (res) => {
        // Into one buffer of Content-Length when sent.
        const length = Number(res.headers['content-length'])
        const known = Number.isSafeInteger(length)
        const whole = known ? take(length) : undefined
        const chunks: Buffer[] = []
        let at = 0
        res.on('data', (c: Buffer) => {
          if (whole) at += c.copy(whole, at)
          else chunks.push(c)
        })
        res.on('end', () => {
          const socket = req.socket!
          const wireBytes = socket.bytesRead - start.read + (socket.bytesWritten - start.written)
          resolve({
            status: res.statusCode!,
            body: whole?.subarray(0, length) ?? Buffer.concat(chunks),
            wireBytes,
            release: () => {
              if (whole) spare.push(whole)
            },
          })
        })
      })
      req.end(body)
    })
  return { send, close: () => agent.destroy() }
}

// --- the benchmark ---------------------------------------------------------------------------------

interface Row {
  mode: string
  n: number
  ms: number
  wireBytes: number
  coreMs: number
  /** The server's CPU time per step, and the in-process core's. */
  serverCpuMs?: number
  /** This process's (the client's) CPU time per step. */
  clientCpuMs?: number
  coreCpuMs?: number
  peakMb?: number
  note?: string
}

async function main() {
  const shipped = (await readShippedVersions()).find((v) => {
    const a = decodeLstmWeights(v.weights).architecture
    return a.layers === 2 && a.hidden === 20
  })
  const weightBytes = shipped?.weights ?? encodeLstmWeights(randomLstmWeights(paperArchitecture, 2016))
  const core = fusedLstmOptimizer(decodeLstmWeights(weightBytes), fusedKernel())
  const S = core.stateSize

  const { port, pid } = await startServer()
  const api = client(port, 4)
  const echo = await startProcess(['--import', 'tsx', path.join(root, 'bench/echo-server.ts')])
  const echoApi = client(echo.port, 1)
  const auth = { authorization: `Bearer ${clientKey}` }
  let reference = shipped ? `${shipped.name}@${shipped.version}` : 'bench-paper@1.0.0'
  if (!shipped) {
    const form = new FormData()
    form.append('version', '1.0.0')
    form.append('weights', new File([weightBytes], 'model.safetensors'))
    const res = await fetch(`http://127.0.0.1:${port}/v1/admin/optimizers/bench-paper/versions`, {
      method: 'POST',
      body: form,
      headers: { authorization: `Bearer ${adminKey}` },
    })
    if (res.status !== 201) throw new Error(`publish failed: ${res.status} ${await res.text()}`)
  }
  const resolved = (await (await fetch(`http://127.0.0.1:${port}/v1/resolve?ref=${reference}`)).json()) as {
    digest: string
    stateSize: number
  }
  reference = `${reference.split('@')[0]}@${resolved.digest}`
  if (resolved.stateSize !== S) throw new Error('server and core disagree on S')

  const rows: Row[] = []
  // Resident memory sampled every 10 ms, per mode (VmHWM only gives the peak of the whole life).
  let modePeak = 0
  const sampler = setInterval(() => {
    const m = memoryOf(pid)
    if (m) modePeak = Math.max(modePeak, m.rss)
  }, 10)
  const startMode = () => {
    modePeak = memoryOf(pid)?.rss ?? 0
  }

  const jsonAllowed = (n: number) => n * (S + 1) * 12 <= 8 * 1024 * 1024
  const steps = SIZES.reduce(
    (sum, n) =>
      sum +
      ['binary', 'json', 'session', 'echo'].filter((m) => MODES.has(m) && (m !== 'json' || jsonAllowed(n)))
        .length *
        (WARMUP + RUNS),
    0,
  )
  const bar = progress({ label: 'bench:http', total: steps })
  for (const n of SIZES) {
    const grads = randomGradients(n, n)
    // In-process core time, interleaved with the HTTP runs below so both see the same machine load.
    // As the server steps (and bench:kernel times it): the state in place, updates into one buffer.
    const coreOut = { updates: new Float32Array(n), state: core.init(n) }
    const coreTimes: number[] = []
    const coreCpu: number[] = []
    const timeCore = () => {
      const t = performance.now()
      const cpu = process.cpuUsage()
      core.updateInto(grads, coreOut.state, coreOut)
      const used = process.cpuUsage(cpu)
      coreTimes.push(performance.now() - t)
      coreCpu.push((used.user + used.system) / 1000)
    }
    // The server's CPU time over the timed runs of a mode, per step.
    let serverCpu = 0
    const serverCpuFrom = (i: number, of: number) => {
      if (i === WARMUP) serverCpu = cpuMsOf(of)
    }
    const serverCpuPerStep = (of: number) => (cpuMsOf(of) - serverCpu) / RUNS
    const coreCpuMs = () => median(coreCpu.slice(-RUNS))
    // This process's CPU time over each timed exchange (sending the body, reading the answer into a
    // buffer): on a machine where client and server share the cores, it adds to the wall clock.
    const clientCpu: number[] = []
    const clientCpuFrom = () => {
      const before = process.cpuUsage()
      return (i: number) => {
        const used = process.cpuUsage(before)
        if (i >= WARMUP) clientCpu.push((used.user + used.system) / 1000)
      }
    }
    const clientCpuMs = () => median(clientCpu.splice(0))

    /**
     * One mode's WARMUP + RUNS exchanges, each beside an in-process core step: `prepare(i)` builds
     * what the exchange needs (off the clock), `send` is timed, `check` reads and releases the
     * answers. Returns the mode's medians; the caller names the row.
     */
    const timeMode = async <P>(
      label: string,
      serverPid: number,
      prepare: (i: number) => P,
      send: (prepared: P, i: number) => Promise<Answer[]>,
      check: (answers: Answer[]) => void,
    ): Promise<Omit<Row, 'mode' | 'n' | 'peakMb'>> => {
      const times: number[] = []
      const wire: number[] = []
      coreTimes.length = 0
      for (let i = 0; i < WARMUP + RUNS; i++) {
        timeCore()
        serverCpuFrom(i, serverPid)
        const prepared = prepare(i)
        settle()
        const clientDone = clientCpuFrom()
        const t = performance.now()
        const answers = await send(prepared, i)
        const ms = performance.now() - t
        clientDone(i)
        check(answers)
        if (i >= WARMUP) {
          times.push(ms)
          wire.push(answers.reduce((sum, a) => sum + a.wireBytes, 0))
        }
        bar.tick(1, `${label} N=${n}`)
      }
      return {
        ms: median(times),
        wireBytes: median(wire),
        coreMs: median(coreTimes.slice(WARMUP)),
        serverCpuMs: serverCpuPerStep(serverPid),
        clientCpuMs: clientCpuMs(),
        coreCpuMs: coreCpuMs(),
      }
    }
    const ok = (mode: string) => (answers: Answer[]) => {
      for (const a of answers)
        if (a.status !== 200) throw new Error(`${mode}: ${a.status} ${a.body.toString().slice(0, 300)}`)
    }
    /** The stateless binary body for N coordinates and a fresh F32 state. */
    const binaryBody = (metadata?: Record<string, string>) =>
      encode(
        {
          grads: { dtype: 'F32', shape: [n], data: grads },
          state: { dtype: 'F32', shape: [n, S], data: core.init(n) },
        },
        metadata,
      )

    // Stateless binary: grads + F32 state in, updates + state out; each step continues the last.
    if (MODES.has('binary')) {
      startMode()
      // One request body, encoded once: each step writes the state it got back into it.
      const body = binaryBody({ optimizer: reference, digest: resolved.digest })
      const bodyState = decode(body).tensors.get('state')!.data as Float32Array
      const measured = await timeMode(
        'binary',
        pid,
        () => body,
        async (b) => [await api.send('POST', '/v1/step', { ...auth, 'content-type': binary }, b)],
        (answers) => {
          ok('binary step')(answers)
          const res = answers[0]
          const answer = decode(new Uint8Array(res.body.buffer, res.body.byteOffset, res.body.byteLength))
          bodyState.set(answer.tensors.get('state')!.data as Float32Array)
          res.release()
        },
      )
      rows.push({ mode: 'stateless binary (F32 state)', n, ...measured, peakMb: modePeak })
    }

    // The wire floor: the same body through a plain node:http echo (no parsing, no compute).
    if (MODES.has('echo')) {
      const body = binaryBody()
      const measured = await timeMode(
        'echo',
        echo.pid,
        () => body,
        async (b) => [await echoApi.send('POST', '/', { 'content-type': 'application/octet-stream' }, b)],
        (answers) => {
          ok('echo')(answers)
          if (answers[0].body.byteLength !== body.byteLength) throw new Error('echo: wrong answer')
          answers[0].release()
        },
      )
      rows.push({ mode: 'wire floor: node:http echo', n, ...measured })
    }

    // Stateless JSON: only where the 8 MiB JSON body limit allows a full state.
    if (MODES.has('json')) {
      if (!jsonAllowed(n)) {
        rows.push({
          mode: 'stateless JSON',
          n,
          ms: Number.NaN,
          wireBytes: Number.NaN,
          coreMs: Number.NaN,
          note: 'not allowed: JSON bodies are capped at 8 MiB (binary only at this N)',
        })
      } else {
        startMode()
        let state: number[] | undefined
        const measured = await timeMode(
          'JSON',
          pid,
          () =>
            Buffer.from(
              JSON.stringify({
                optimizer: reference,
                digest: resolved.digest,
                grads: Array.from(grads),
                state,
              }),
            ),
          async (b) => [
            await api.send('POST', '/v1/step', { ...auth, 'content-type': 'application/json' }, b),
          ],
          (answers) => {
            ok('JSON step')(answers)
            state = (JSON.parse(answers[0].body.toString()) as { state: number[] }).state
            answers[0].release()
          },
        )
        rows.push({ mode: 'stateless JSON', n, ...measured, peakMb: modePeak })
      }
    }

    // Session: grads in, updates out; one step = every shard (in parallel over 4 connections).
    if (MODES.has('session')) {
      startMode()
      const created = await api.send(
        'POST',
        '/v1/sessions',
        { ...auth, 'content-type': 'application/json' },
        Buffer.from(JSON.stringify({ optimizer: reference, numParams: n })),
      )
      const layout = JSON.parse(created.body.toString()) as { id: string; shardSize: number }
      const session = { id: layout.id, shards: shardRanges(n, layout.shardSize) }
      const bodies = session.shards.map((s) =>
        encode({
          grads: { dtype: 'F32', shape: [s.length], data: grads.subarray(s.offset, s.offset + s.length) },
        }),
      )
      const measured = await timeMode(
        'session',
        pid,
        () => bodies,
        (shardBodies, i) =>
          Promise.all(
            shardBodies.map((b, k) =>
              api.send(
                'POST',
                `/v1/sessions/${session.id}/shards/${k}/steps/${i + 1}`,
                { ...auth, 'content-type': binary },
                b,
              ),
            ),
          ),
        (answers) => {
          ok('session step')(answers)
          for (const a of answers) a.release()
        },
      )
      const shards = session.shards.length
      rows.push({
        mode: `session (${shards} shard${shards > 1 ? 's' : ''}, binary)`,
        n,
        ...measured,
        peakMb: modePeak,
      })
      await api.send('DELETE', `/v1/sessions/${session.id}`, auth)
    }
  }
  bar.done()
  const memory = memoryOf(pid)
  clearInterval(sampler)
  api.close()
  echoApi.close()

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  console.log(
    `l2o HTTP benchmark: Node ${process.version}, ${os.cpus().length}× ${cpu}, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  console.log(
    `optimizer ${reference.split('@')[0]} (L=2, H=20, S=${S}), the fused kernel in server and in-process; ` +
      `${RUNS} timed runs after ${WARMUP} warm-up, medians; client and server share this machine\n`,
  )
  const header = [
    'mode',
    'N',
    'median ms',
    'coords/s',
    'B/coord/step',
    'core ms',
    'HTTP/core',
    'server CPU ms',
    'client CPU ms',
    'core CPU ms',
    'CPU server/core',
    'server RSS MB',
  ]
  const table = rows.map((r) =>
    r.note
      ? [r.mode, r.n.toLocaleString('en'), r.note]
      : [
          r.mode,
          r.n.toLocaleString('en'),
          r.ms.toFixed(1),
          Math.round(r.n / (r.ms / 1000)).toLocaleString('en'),
          (r.wireBytes / r.n).toFixed(2),
          r.coreMs.toFixed(1),
          `${(r.ms / r.coreMs).toFixed(2)}×`,
          (r.serverCpuMs ?? Number.NaN).toFixed(1),
          (r.clientCpuMs ?? Number.NaN).toFixed(1),
          (r.coreCpuMs ?? Number.NaN).toFixed(1),
          `${((r.serverCpuMs ?? Number.NaN) / (r.coreCpuMs ?? Number.NaN)).toFixed(2)}×`,
          r.peakMb === undefined ? '–' : r.peakMb.toFixed(0),
        ],
  )
  const widths = header.map((h, i) =>
    Math.max(h.length, ...table.filter((row) => row.length === header.length).map((row) => row[i].length)),
  )
  const line = (cells: string[]) =>
    cells.length < header.length
      ? `| ${cells[0].padEnd(widths[0])} | ${cells[1].padStart(widths[1])} | ${cells[2]}`
      : `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  console.log(line(header))
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`)
  for (const row of table) console.log(line(row))
  console.log(
    `\nserver RSS MB: highest sampled every 10 ms while serving each mode (column); ` +
      `whole-life peak (VmHWM) ${memory?.peak.toFixed(0) ?? '?'} MB, ${memory?.rss.toFixed(0) ?? '?'} MB at the end`,
  )
  const at = (mode: string) => rows.find((r) => r.mode.startsWith(mode) && r.n === 65_536)
  const b = at('stateless binary')
  const s = at('session')
  const floor = at('wire floor')
  if (floor)
    console.log(
      `wire floor at N = 65,536: the echo alone takes ${(floor.ms / floor.coreMs).toFixed(2)}× the core's time ` +
        `(client CPU ${((floor.clientCpuMs ?? Number.NaN) / (floor.coreCpuMs ?? Number.NaN)).toFixed(2)}×, ` +
        `echo server CPU ${((floor.serverCpuMs ?? Number.NaN) / (floor.coreCpuMs ?? Number.NaN)).toFixed(2)}×)` +
        (b
          ? `; the stateless step costs the floor + ${(b.ms - floor.ms).toFixed(1)} ms, ${((b.ms - floor.ms) / b.coreMs).toFixed(2)}× the core`
          : ''),
    )
  if (b && s && memory) {
    const ok = (cond: boolean) => (cond ? 'ok' : 'MISSED')
    const limitPeak = Math.max(b.peakMb ?? 0, s.peakMb ?? 0)
    console.log(
      `targets at N = 65,536: binary ≤ 1.25× core: ${(b.ms / b.coreMs).toFixed(2)}× ${ok(b.ms / b.coreMs <= 1.25)} ` +
        `(CPU ${((b.serverCpuMs ?? Number.NaN) / (b.coreCpuMs ?? Number.NaN)).toFixed(2)}×; the client's CPU ` +
        `${((b.clientCpuMs ?? Number.NaN) / (b.coreCpuMs ?? Number.NaN)).toFixed(2)}× the core's); ` +
        `session ≤ 1.25× binary: ${(s.ms / b.ms).toFixed(2)}× ${ok(s.ms / b.ms <= 1.25)} ` +
        `(server CPU ${((s.serverCpuMs ?? Number.NaN) / (b.serverCpuMs ?? Number.NaN)).toFixed(2)}×); ` +
        `session ≤ 8.5 B/coord/step: ${(s.wireBytes / s.n).toFixed(2)} ${ok(s.wireBytes / s.n <= 8.5)}; ` +
        `server < 256 MB serving steps at the limit: ${limitPeak.toFixed(0)} MB ${ok(limitPeak < 256)}`,
    )
  }
  for (const child of children) child.kill('SIGTERM')
}

await main()
process.exit(0)
