/**
 * Trains the paper's MNIST MLP (one hidden layer of 20 sigmoid units, batch 128, 100 steps) in
 * Node with tf.js, with the shipped learned optimizer served by l2o, then with tuned Adam (also
 * through l2o, as the `adam` baseline), and prints both final losses.
 *
 *   npm start                                   # in another terminal; prints a client key once
 *   L2O_KEY=<client key> npx tsx examples/tfjs-mnist.ts [--mode session|stateless] [--tune]
 *
 * Env: L2O_URL (default http://127.0.0.1:8787), L2O_KEY, L2O_OPTIMIZER (default l2o-mlp@1.6.0).
 * --tune sweeps Adam's learning rate over a grid on this exact problem and prints the best.
 */
import * as tf from '@tensorflow/tfjs-core'
import { L2oClient, type RemoteMode } from 'l2o'
import { TfOptimizer, type TfOptimizerOptions } from 'l2o/tf'
import {
  batchSchedule,
  batchTensors,
  createMlp,
  loadMnist,
  type MlpParams,
  type MnistData,
  mlpLoss,
  paramList,
  tailMean,
  trainMlp,
} from './mnist-mlp'

const steps = 100
const seed = 1
/**
 * Adam's learning rate, tuned on this problem (seed 1, 100 steps) with `--tune`: the grid
 * 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, scored by the mean minibatch loss of the last 10 steps
 * (0.03 won: 0.276, against 0.422 at 0.01 and 0.429 at 0.1).
 */
const adamLearningRate = 0.03
const tuningGrid = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]

const url = process.env.L2O_URL ?? 'http://127.0.0.1:8787'
const apiKey = process.env.L2O_KEY
const reference = process.env.L2O_OPTIMIZER ?? 'l2o-mlp@1.6.0'
const args = process.argv.slice(2)
const mode: RemoteMode = args.includes('--mode')
  ? (args[args.indexOf('--mode') + 1] as RemoteMode)
  : 'session'

async function selectBackend(): Promise<string> {
  try {
    await import('@tensorflow/tfjs-backend-wasm')
    if (await tf.setBackend('wasm')) return 'wasm'
  } catch {
    // fall through to the pure-JS backend
  }
  await import('@tensorflow/tfjs-backend-cpu')
  await tf.setBackend('cpu')
  return 'cpu'
}

/** Loss of the trained MLP on all 10,000 digits. */
function fullLoss(p: MlpParams, data: MnistData): number {
  return tf.tidy(() => {
    const { x, y } = batchTensors(
      data,
      Int32Array.from({ length: data.count }, (_, i) => i),
    )
    return mlpLoss(p, x, y).dataSync()[0]
  })
}

let runs = 0

async function run(l2o: L2oClient, data: MnistData, options: TfOptimizerOptions) {
  const opt = await TfOptimizer.create(l2o, options)
  const p = createMlp(seed, `run${++runs}`)
  const started = performance.now()
  const losses = await trainMlp(p, data, batchSchedule(data, steps, seed), (grads) =>
    opt.applyGradients(grads),
  )
  const seconds = (performance.now() - started) / 1000
  const result = {
    losses,
    tail: tailMean(losses),
    full: fullLoss(p, data),
    seconds,
    pinned: opt.remote.pinned,
  }
  await opt.close()
  tf.dispose(paramList(p))
  return result
}

if (!apiKey) {
  console.error('Set L2O_KEY to a client key (npm start prints one on first start).')
  process.exit(2)
}
const backend = await selectBackend()
const l2o = new L2oClient({ baseUrl: url, apiKey })
const data = loadMnist()

if (args.includes('--tune')) {
  for (const learningRate of tuningGrid) {
    const r = await run(l2o, data, {
      optimizer: 'adam',
      hyperparameters: { learningRate },
      mode: 'stateless',
    })
    console.log(`adam lr=${learningRate}: last-10 mean loss ${r.tail.toFixed(4)}`)
  }
  process.exit(0)
}

console.log(`MNIST MLP 784-20-10 (sigmoid), batch 128, ${steps} steps, tf.js ${backend}, server ${url}`)
const learned = await run(l2o, data, { optimizer: reference, mode })
console.log(`${reference} (${mode}, pinned ${learned.pinned.slice(0, 40)}…): ${learned.seconds.toFixed(1)} s`)
const adam = await run(l2o, data, {
  optimizer: 'adam',
  hyperparameters: { learningRate: adamLearningRate },
  mode: 'stateless',
})
console.log(`adam lr=${adamLearningRate}: ${adam.seconds.toFixed(1)} s`)
console.log('')
console.log('optimizer            final batch loss   mean of last 10   loss on all 10,000 digits')
for (const [label, r] of [
  [reference, learned],
  [`adam (lr ${adamLearningRate})`, adam],
] as const) {
  console.log(
    `${label.padEnd(20)} ${r.losses.at(-1)!.toFixed(4).padStart(16)} ${r.tail.toFixed(4).padStart(17)} ${r.full.toFixed(4).padStart(27)}`,
  )
}
