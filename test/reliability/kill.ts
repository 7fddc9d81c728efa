/**
 * kill -9 restarts mid-session: the SDK's RemoteOptimizer (session mode, retrying) trains a
 * quadratic while the server is killed with SIGKILL and restarted on the same port and data, again
 * and again. Then the same run without kills. Every step's updates and the stored state of every
 * shard must be bit-identical: a lost step or a step applied twice would change both.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { seededRandom } from '../../examples/mnist-mlp'
import { L2oClient } from '../../src/sdk'
import { freePort } from '../support/port'
import { clientKey, ServerProcess } from './server'

export interface KillFigures {
  restarts: number
  /** Requests that failed on a dead or restarting server, and were retried by the client. */
  requestsCut: number
  steps: number
  shards: number
  /** Steps whose updates differ from the run without kills (a lost or doubled step shows here). */
  stepsDiffering: number
  /** Steps the server holds for a shard, other than the steps the client made. */
  shardStepsOff: number
  stateIdentical: boolean
  seconds: number
}

interface Run {
  updates: Float32Array[]
  states: Buffer[]
  shardSteps: number[]
  kills: number
  cut: number
}

const optimizer = 'l2o-mnist@1.1.0'

export async function killRestarts(options: {
  restarts: number
  minSteps: number
  numParams: number
}): Promise<KillFigures> {
  const started = performance.now()
  const killed = await trainingRun({ ...options, steps: options.minSteps, restarts: options.restarts })
  const reference = await trainingRun({ ...options, steps: killed.updates.length, restarts: 0 })
  let stepsDiffering = 0
  for (let t = 0; t < reference.updates.length; t++) {
    const a = Buffer.from(killed.updates[t].buffer)
    const b = Buffer.from(reference.updates[t].buffer)
    if (!a.equals(b)) stepsDiffering++
  }
  const steps = killed.updates.length
  return {
    restarts: killed.kills,
    requestsCut: killed.cut,
    steps,
    shards: killed.states.length,
    stepsDiffering,
    shardStepsOff: killed.shardSteps.filter((s) => s !== steps).length,
    stateIdentical:
      killed.states.length === reference.states.length &&
      killed.states.every((state, i) => state.equals(reference.states[i])),
    seconds: (performance.now() - started) / 1000,
  }
}

async function trainingRun(options: { restarts: number; steps: number; numParams: number }): Promise<Run> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'l2o-kill-'))
  const server = new ServerProcess({ dataDir, port: await freePort() })
  try {
    await server.start()
    // Counts the requests a kill cut off (the SDK then retries them).
    let cut = 0
    const client = new L2oClient({
      baseUrl: server.url,
      apiKey: clientKey,
      fetch: async (url, init) => {
        try {
          return await fetch(url, init)
        } catch (error) {
          cut++
          throw error
        }
      },
      timeoutMs: 20_000,
      retry: { maxRetries: 1000, initialDelayMs: 50, maxDelayMs: 500 },
    })
    const opt = await client.remoteOptimizer({ optimizer, mode: 'session' })

    // A quadratic whose gradient depends on the parameters, so any changed update changes the rest.
    const random = seededRandom(7)
    const n = options.numParams
    const theta = Float32Array.from({ length: n }, () => random() - 0.5)
    const target = Float32Array.from({ length: n }, () => random() - 0.5)
    const updates: Float32Array[] = []

    let kills = 0
    let training = true
    const killer = (async () => {
      const pause = seededRandom(11)
      while (training && kills < options.restarts) {
        await new Promise((resolve) => setTimeout(resolve, 150 + 550 * pause()))
        if (!training) break
        await server.kill9()
        kills++
        await server.start()
      }
    })()
    while (updates.length < options.steps || kills < options.restarts) {
      const grads = theta.map((v, i) => v - target[i])
      const update = await opt.step(grads)
      updates.push(update.slice())
      for (let i = 0; i < n; i++) theta[i] += update[i]
    }
    training = false
    await killer

    const session = await client.sessions.get(opt.sessionId!)
    const shardSteps: number[] = []
    for (const run of session.steps) for (let k = run.first; k <= run.last; k++) shardSteps.push(run.step)
    await server.stop()
    const db = new Database(path.join(dataDir, 'l2o.sqlite'), { readonly: true })
    const rows = db
      .prepare('select state from session_shards where session_id = ? order by shard')
      .all(opt.sessionId) as { state: Buffer }[]
    db.close()
    return { updates, states: rows.map((r) => r.state), shardSteps, kills, cut }
  } catch (error) {
    throw new Error(`${(error as Error).message}\nserver output:\n${server.output().slice(-3000)}`)
  } finally {
    await server.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}
