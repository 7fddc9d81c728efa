/**
 * End to end: the real Node server over real HTTP, the SDK in both modes, 100 steps of the paper's
 * MNIST MLP, compared with the same loop run on the in-process core (the fused kernel on the same
 * weight file, as the server runs it) to 1e-6.
 */
import { existsSync, readFileSync } from 'node:fs'
import * as tf from '@tensorflow/tfjs-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  batchSchedule,
  createMlp,
  loadMnist,
  type MlpParams,
  type MnistData,
  paramList,
  seededRandom,
  trainMlp,
} from '../../examples/mnist-mlp'
import { fusedLstmOptimizer, type LstmWeights } from '../../src/core'
import { fusedKernel } from '../../src/runtime/kernel-node'
import { initTf } from '../../src/runtime/tf-node'
import { bf16ToF32, f32ToBf16 } from '../../src/safetensors'
import { L2oClient, type RemoteMode } from '../../src/sdk'
import { TfOptimizer } from '../../src/sdk/tf'
import { encodeLstmWeights, readWeightFile } from '../../src/weights'
import { randomGradients } from '../support/random'
import { type ServerProcess, startServer } from './server-process'

const steps = 100
const shippedPath = 'weights/l2o-mnist/1.0.0/model.safetensors'

let server: ServerProcess
let data: MnistData
let weightBytes: Uint8Array
let reference: string

/** A random paper-sized LSTM optimizer (L = 2, H = 20, log-sign p = 10), for before weights ship. */
function randomWeights(seed: number): LstmWeights {
  const random = seededRandom(seed)
  const h = 20
  const u = (n: number, scale: number) => Float32Array.from({ length: n }, () => (2 * random() - 1) * scale)
  return {
    architecture: {
      kind: 'lstm-cw',
      layers: 2,
      hidden: h,
      preprocessing: 'log-sign',
      p: 10,
      outputScale: 0.1,
    },
    cells: [2, h].map((inputs) => ({
      weightIh: u(4 * h * inputs, 0.3),
      weightHh: u(4 * h * h, 0.3),
      biasIh: u(4 * h, 0.1),
      biasHh: u(4 * h, 0.1),
    })),
    head: { weight: u(h, 0.3), bias: u(1, 0.01) },
  }
}

beforeAll(async () => {
  await initTf('wasm')
  data = loadMnist()
  server = await startServer()
  if (existsSync(shippedPath)) {
    weightBytes = new Uint8Array(readFileSync(shippedPath))
    reference = 'l2o-mnist@1.0.0'
  } else {
    weightBytes = encodeLstmWeights(randomWeights(7))
    const form = new FormData()
    form.set('version', '1.0.0')
    form.set('weights', new Blob([weightBytes]), 'model.safetensors')
    const res = await fetch(`${server.url}/v1/admin/optimizers/e2e-lstm/versions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${server.adminKey}` },
      body: form,
    })
    expect(res.status, await res.clone().text()).toBeLessThan(300)
    reference = 'e2e-lstm@1.0.0'
  }
}, 120_000)

afterAll(async () => {
  await server?.stop()
})

const flatValues = async (p: MlpParams): Promise<Float32Array> => {
  const parts = await Promise.all(paramList(p).map((v) => v.data() as Promise<Float32Array>))
  const out = new Float32Array(parts.reduce((n, x) => n + x.length, 0))
  let offset = 0
  for (const x of parts) {
    out.set(x, offset)
    offset += x.length
  }
  return out
}

/** The loop with the optimizer in-process: flatten, core update, θ + update (as TfOptimizer does). */
async function runInProcess(seed: number): Promise<{ params: Float32Array; losses: number[] }> {
  const { weights } = await readWeightFile(weightBytes)
  const opt = fusedLstmOptimizer(weights, fusedKernel())
  const p = createMlp(seed, 'in-process')
  const n = paramList(p).reduce((k, v) => k + v.size, 0)
  let state = opt.init(n)
  const losses = await trainMlp(p, data, batchSchedule(data, steps, seed), async (pairs) => {
    const grads = new Float32Array(n)
    let offset = 0
    for (const { grad } of pairs) {
      grads.set((await grad.data()) as Float32Array, offset)
      offset += grad.size
    }
    const result = opt.update(grads, state)
    state = result.state
    tf.tidy(() => {
      let at = 0
      for (const { variable } of pairs) {
        variable.assign(
          tf.add(variable, tf.tensor(result.updates.subarray(at, at + variable.size), variable.shape)),
        )
        at += variable.size
      }
    })
  })
  const params = await flatValues(p)
  tf.dispose(paramList(p))
  return { params, losses }
}

/**
 * A fetch that loses the answer to some requests after the server has handled them, so the SDK's
 * retry must lean on the server: a stateless step is pure, and a session step t is stored once.
 */
function lossyFetch(lose: (url: string, n: number) => boolean, lost: { count: number }) {
  const seen = new Map<string, number>()
  return async (url: string, init: RequestInit): Promise<Response> => {
    const n = (seen.get(url) ?? 0) + 1
    seen.set(url, n)
    const response = await fetch(url, init)
    if (lose(url, n)) {
      await response.arrayBuffer()
      lost.count++
      throw new TypeError('fetch failed: answer lost after the server handled the request')
    }
    return response
  }
}

/** The same loop through the SDK; checkpoints and resumes at step 50 to cover save/load too. */
async function runRemote(
  seed: number,
  mode: RemoteMode,
): Promise<{ params: Float32Array; losses: number[] }> {
  let stepPosts = 0
  const lost = { count: 0 }
  // Session: lose the first answer to shard 0's steps 5 and 40. Stateless: every 97th step request.
  const lose = (url: string, n: number) =>
    mode === 'session'
      ? /\/shards\/0\/steps\/(5|40)$/.test(url) && n === 1
      : url.endsWith('/v1/step') && ++stepPosts % 97 === 0
  const l2o = new L2oClient({
    baseUrl: server.url,
    apiKey: server.clientKey,
    concurrency: 4,
    retry: { initialDelayMs: 1 },
    fetch: lossyFetch(lose, lost),
  })
  // Stateless: a smaller per-request limit than the server's, so one step is 4 concurrent shards.
  let opt = await TfOptimizer.create(l2o, { optimizer: reference, mode, maxCoordinatesPerRequest: 4096 })
  const p = createMlp(seed, `sdk-${mode}`)
  let step = 0
  const losses = await trainMlp(p, data, batchSchedule(data, steps, seed), async (pairs) => {
    if (++step === 51)
      opt = await TfOptimizer.create(l2o, { checkpoint: opt.save(), maxCoordinatesPerRequest: 4096 })
    await opt.applyGradients(pairs)
  })
  expect(opt.stepCount).toBe(steps)
  expect(lost.count).toBeGreaterThanOrEqual(2)
  // The run was pinned to exactly the weight file the in-process loop reads.
  expect(opt.remote.digest).toBe((await readWeightFile(weightBytes)).digest)
  expect(opt.remote.pinned).toBe(`${reference.split('@')[0]}@${opt.remote.digest}`)
  await opt.close()
  const params = await flatValues(p)
  tf.dispose(paramList(p))
  return { params, losses }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

describe('SDK against the Node server', () => {
  let expected: { params: Float32Array; losses: number[] }

  beforeAll(async () => {
    expected = await runInProcess(1)
  }, 60_000)

  for (const mode of ['stateless', 'session'] as const) {
    it(`trains the MNIST MLP for ${steps} steps in ${mode} mode exactly as the in-process core`, async () => {
      const got = await runRemote(1, mode)
      expect(got.params.length).toBe(15_910)
      expect(got.params.every(Number.isFinite)).toBe(true)
      expect(maxAbsDiff(got.params, expected.params)).toBeLessThanOrEqual(1e-6)
      expect(got.losses).toHaveLength(steps)
    }, 60_000)
  }
})

/** Publishes a weight file through the admin API of the running server. */
async function publishFile(name: string, bytes: Uint8Array): Promise<void> {
  const form = new FormData()
  form.set('version', '1.0.0')
  form.set('weights', new Blob([bytes]), 'model.safetensors')
  const res = await fetch(`${server.url}/v1/admin/optimizers/${name}/versions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${server.adminKey}` },
    body: form,
  })
  expect(res.status, await res.clone().text()).toBeLessThan(300)
}

describe('SDK with an extended optimizer (S read from /v1/resolve)', () => {
  const extendedPath = 'test/fixtures/extended/moments-elu-tanh/model.safetensors'
  const n = 2500
  const silent = [0, 1234, n - 1]
  /** Gradients of step t over 12 orders of magnitude, the `silent` coordinates always ±0. */
  const gradsAt = (t: number) => {
    const grads = randomGradients(n, 100 + t)
    for (const i of silent) grads[i] = t % 2 ? 0 : -0
    return grads
  }

  beforeAll(async () => {
    await publishFile('sdk-extended', new Uint8Array(readFileSync(extendedPath)))
  })

  for (const [mode, stateDtype] of [
    ['stateless', 'F32'],
    ['stateless', 'BF16'],
    ['session', 'F32'],
  ] as const) {
    it(`steps it in ${mode} mode (${stateDtype} state) as the in-process core, across a checkpoint`, async () => {
      const l2o = new L2oClient({ baseUrl: server.url, apiKey: server.clientKey, concurrency: 3 })
      let opt = await l2o.remoteOptimizer({
        optimizer: 'sdk-extended@1.0.0',
        mode,
        stateDtype,
        maxCoordinatesPerRequest: 1000,
      })
      expect(opt.resolved.stateSize).toBe(37)
      const core = fusedLstmOptimizer(
        (await readWeightFile(new Uint8Array(readFileSync(extendedPath)))).weights,
        fusedKernel(),
      )
      let state = core.init(n)
      for (let t = 0; t < 4; t++) {
        if (t === 2) opt = await l2o.loadOptimizer(opt.save(), { maxCoordinatesPerRequest: 1000 })
        const updates = await opt.step(gradsAt(t))
        const want = core.update(gradsAt(t), state)
        // A BF16 state is rounded between steps: the same math from the rounded state.
        state = stateDtype === 'BF16' ? bf16ToF32(f32ToBf16(want.state)) : want.state
        expect(maxAbsDiff(updates, want.updates), `step ${t}`).toBeLessThanOrEqual(1e-6)
        for (const i of silent) expect(Object.is(updates[i], 0), `coordinate ${i}`).toBe(true)
      }
      await opt.close()
    }, 60_000)
  }
})
