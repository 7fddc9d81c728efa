/**
 * Mixed load: many clients (one key each) step as fast as they are answered, half with sessions and
 * half stateless binary steps that carry their state, while a separate thread times /healthz. A
 * refusal counts as documented when it is 429 or 503 with Retry-After (the client then waits that
 * long and resends); anything else other than a 2xx is an error.
 */
import http from 'node:http'
import os from 'node:os'
import { Worker } from 'node:worker_threads'
import { seededRandom } from '../../examples/mnist-mlp'
import { decode, encode } from '../../src/safetensors'
import { json, quantile, send } from './http'
import { adminKey, type ServerProcess, watchMemory } from './server'

export interface LoadFigures {
  clients: number
  seconds: number
  numParams: number
  answers: number
  answersPerSecond: number
  sessionP50Ms: number
  sessionP99Ms: number
  statelessP50Ms: number
  statelessP99Ms: number
  /** The fewest answers any client got, over the fair share (answers / clients). */
  minShareOfFair: number
  refusals: number
  errors: number
  errorExamples: string[]
  healthP50Ms: number
  healthP99Ms: number
  healthMaxMs: number
  healthProbes: number
  loopMaxMs: number
  loopP99Ms: number
  /** The longest block of the loop by the server's own work: lateness capped by its CPU time. */
  loopOwnMaxMs: number
  /** The longest garbage-collection pause, and all of them together. */
  gcMaxMs: number
  gcTotalMs: number
  peakRssMb: number
  /** The server's CPU time per answer (compute, HTTP, database), and the machine's load meanwhile. */
  serverCpuMsPerAnswer: number
  loadAverage: number
}

const optimizer = 'l2o-mnist@1.1.0'
const binary = 'application/vnd.l2o.safetensors'

export async function mixedLoad(
  server: ServerProcess,
  options: { clients: number; seconds: number; numParams: number; sessions?: boolean },
): Promise<LoadFigures> {
  const base = server.url
  const n = options.numParams
  const { digest } = (await json(base, 'GET', `/v1/resolve?ref=${optimizer}`, adminKey)) as { digest: string }
  const keys: string[] = []
  for (let i = 0; i < options.clients; i++) {
    const made = (await json(base, 'POST', '/v1/admin/clients', adminKey, { name: `load-${i}` })) as {
      secret: string
    }
    keys.push(made.secret)
  }
  const sessions: string[] = []
  for (let i = 0; options.sessions !== false && i < options.clients; i += 2) {
    const made = (await json(base, 'POST', '/v1/sessions', keys[i], { optimizer, numParams: n })) as {
      id: string
    }
    sessions[i] = made.id
  }

  const answers = new Array<number>(options.clients).fill(0)
  const latency = { session: [] as number[], stateless: [] as number[] }
  let refusals = 0
  let errors = 0
  const errorExamples: string[] = []
  const fail = (what: string) => {
    errors++
    if (errorExamples.length < 8) errorExamples.push(what)
  }

  // Warm-up, not measured: the first step of an optimizer in a process decodes its weights and
  // runs tfjs's kernels for the first time (a few hundred ms, once).
  const warm = (await json(base, 'POST', '/v1/sessions', adminKey, { optimizer, numParams: n })) as {
    id: string
  }
  const warmGrads = { grads: { dtype: 'F32' as const, shape: [n], data: new Float32Array(n).fill(0.001) } }
  const warmHeaders = { authorization: `Bearer ${adminKey}`, 'content-type': binary }
  await send(base, {
    method: 'POST',
    path: '/v1/step',
    headers: warmHeaders,
    body: encode(warmGrads, { optimizer }),
  })
  await send(base, {
    method: 'POST',
    path: `/v1/sessions/${warm.id}/shards/0/steps/1`,
    headers: warmHeaders,
    body: encode(warmGrads),
  })

  await server.resetLoopDelay()
  const cpuBefore = server.cpuSeconds()
  const memory = watchMemory(server)
  const health = healthProbe(base)
  const deadline = performance.now() + options.seconds * 1000
  const client = async (i: number) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const random = seededRandom(100 + i)
    const grads = Float32Array.from({ length: n }, () => (random() - 0.5) * 0.01)
    const auth = { authorization: `Bearer ${keys[i]}`, 'content-type': binary, accept: binary }
    const grads32 = { dtype: 'F32' as const, shape: [n], data: grads }
    // Bodies built once: a session step's never changes; a stateless step's takes the state of the
    // last answer into its own bytes (the client's work stays small next to the server's).
    const sessionBody = encode({ grads: grads32 })
    const fresh = encode({ grads: grads32 }, { optimizer })
    const carrying = encode(
      { grads: grads32, state: { dtype: 'F32', shape: [n, 80], data: new Float32Array(n * 80) } },
      { optimizer, digest },
    )
    const stateAt = carrying.byteOffset + stateOffset(carrying)
    let first = true
    let t = 1
    while (performance.now() < deadline) {
      const session = sessions[i] !== undefined
      const body = session ? sessionBody : first ? fresh : carrying
      const path = session ? `/v1/sessions/${sessions[i]}/shards/0/steps/${t}` : '/v1/step'
      let answer: Awaited<ReturnType<typeof send>>
      try {
        answer = await send(base, { method: 'POST', path, headers: auth, body }, agent, 60_000)
      } catch (error) {
        fail(`client ${i}: ${(error as Error).message}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
        continue
      }
      if ((answer.status === 429 || answer.status === 503) && answer.headers['retry-after'] !== undefined) {
        refusals++
        await new Promise((resolve) => setTimeout(resolve, Number(answer.headers['retry-after']) * 1000))
        continue
      }
      if (answer.status !== 200) {
        fail(`client ${i}: ${answer.status} ${answer.body.toString().slice(0, 160)}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
        continue
      }
      answers[i]++
      if (session) {
        latency.session.push(answer.ms)
        t++
      } else {
        latency.stateless.push(answer.ms)
        const state = decode(
          new Uint8Array(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength),
        ).tensors.get('state')!
        new Uint8Array(carrying.buffer, stateAt, state.data.byteLength).set(
          new Uint8Array(state.data.buffer, state.data.byteOffset, state.data.byteLength),
        )
        first = false
      }
    }
    agent.destroy()
  }
  await Promise.all(Array.from({ length: options.clients }, (_, i) => client(i)))
  const seconds = options.seconds
  const cpu = server.cpuSeconds() - cpuBefore
  const loadAverage = os.loadavg()[0]
  const probes = await health.stop()
  const loop = await server.loopDelay()
  const total = answers.reduce((a, b) => a + b, 0)
  if (process.env.L2O_LOAD_DEBUG) {
    console.log('answers by client (even: session)', answers.join(' '))
    console.log('healthz ms', probes.map((p) => p.toFixed(0)).join(' '))
  }
  return {
    clients: options.clients,
    seconds,
    numParams: n,
    answers: total,
    answersPerSecond: total / seconds,
    sessionP50Ms: quantile(latency.session, 0.5),
    sessionP99Ms: quantile(latency.session, 0.99),
    statelessP50Ms: quantile(latency.stateless, 0.5),
    statelessP99Ms: quantile(latency.stateless, 0.99),
    minShareOfFair: Math.min(...answers) / (total / options.clients),
    refusals,
    errors,
    errorExamples,
    healthP50Ms: quantile(probes, 0.5),
    healthP99Ms: quantile(probes, 0.99),
    healthMaxMs: Math.max(...probes),
    healthProbes: probes.length,
    loopMaxMs: loop.maxMs,
    loopP99Ms: loop.p99Ms,
    loopOwnMaxMs: loop.ownMaxMs,
    gcMaxMs: loop.gcMaxMs,
    gcTotalMs: loop.gcTotalMs,
    peakRssMb: memory.stop(),
    serverCpuMsPerAnswer: (cpu * 1000) / total,
    loadAverage,
  }
}

/** Where the `state` tensor's bytes start in an encoded body. */
function stateOffset(body: Uint8Array): number {
  const headerLength = Number(new DataView(body.buffer, body.byteOffset).getBigUint64(0, true))
  const header = JSON.parse(new TextDecoder().decode(body.subarray(8, 8 + headerLength))) as Record<
    string,
    { data_offsets?: [number, number] }
  >
  return 8 + headerLength + header.state.data_offsets![0]
}

/**
 * GET /healthz every 50 ms from a thread of its own, so the time measured is the server's, not
 * this process's busy event loop. stop() resolves to the latencies in ms.
 */
function healthProbe(base: string): { stop: () => Promise<number[]> } {
  const worker = new Worker(
    `
    const http = require('node:http')
    const { parentPort, workerData } = require('node:worker_threads')
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const times = []
    let running = true
    parentPort.on('message', () => { running = false })
    const probe = () => new Promise((resolve) => {
      const start = performance.now()
      const req = http.get(workerData.base + '/healthz', { agent }, (res) => {
        res.resume()
        res.on('end', () => { if (res.statusCode === 200) times.push(performance.now() - start); else times.push(Infinity); resolve() })
      })
      req.on('error', () => { times.push(Infinity); resolve() })
    })
    ;(async () => {
      while (running) {
        await probe()
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      parentPort.postMessage(times)
    })()
    `,
    { eval: true, workerData: { base } },
  )
  const done = new Promise<number[]>((resolve) => worker.once('message', resolve))
  return {
    stop: async () => {
      worker.postMessage('stop')
      const times = await done
      await worker.terminate()
      return times
    },
  }
}
