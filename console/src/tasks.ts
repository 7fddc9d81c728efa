/**
 * The playground's tasks, in tf.js: two 2-D functions whose paths can be drawn, and the paper's
 * MNIST MLP (784-20-10, sigmoid) on the few hundred digits bundled with the console.
 */
import * as tf from '@tensorflow/tfjs-core'
import { seededRandom } from '../../examples/seeded-random'

/** The window of a 2-D plot. */
export interface Window2d {
  x: [number, number]
  y: [number, number]
}

/** A task the playground trains twice: with the learned optimizer and with Adam. */
export interface Task {
  id: string
  title: string
  description: string
  /** Adam's learning rate to start from (the user may change it). */
  adamLearningRate: number
  steps: number
  /** Fetches what the task needs (the digits); called before the first init. */
  load(): Promise<void>
  /** Fresh parameters, the same numbers every call; names start with `prefix`. */
  init(prefix: string): tf.Variable[]
  /** The loss of the parameters at `step` (the MLP: on that step's minibatch). */
  loss(params: tf.Variable[], step: number): tf.Scalar
  /** 2-D tasks: the function, the window to draw, its minimum. */
  surface?: { f: (x: number, y: number) => number; window: Window2d; minimum: [number, number] }
}

function point(prefix: string, x: number, y: number): tf.Variable[] {
  return [tf.variable(tf.tensor1d([x, y]), true, `${prefix}/xy`)]
}

const rosenbrock: Task = {
  id: 'rosenbrock',
  title: 'Rosenbrock (2-D)',
  description:
    'f(x, y) = (1 − x)² + 100 (y − x²)², from (−1.2, 1): a curved valley with its minimum at (1, 1).',
  adamLearningRate: 0.05,
  steps: 100,
  load: async () => {},
  init: (prefix) => point(prefix, -1.2, 1),
  loss: ([xy]) =>
    tf.tidy(() => {
      const x = tf.slice(xy, [0], [1])
      const y = tf.slice(xy, [1], [1])
      const a = tf.square(tf.sub(1, x))
      const b = tf.mul(100, tf.square(tf.sub(y, tf.square(x))))
      return tf.sum(tf.add(a, b)) as tf.Scalar
    }),
  surface: {
    f: (x, y) => (1 - x) ** 2 + 100 * (y - x * x) ** 2,
    window: { x: [-2, 2], y: [-1, 3] },
    minimum: [1, 1],
  },
}

// An ill-conditioned quadratic: curvatures 1 and 40 along axes turned by 30°.
const angle = Math.PI / 6
const [cos, sin] = [Math.cos(angle), Math.sin(angle)]
const curvatures = [1, 40]
const quadraticF = (x: number, y: number) => {
  const u = cos * x + sin * y
  const v = -sin * x + cos * y
  return 0.5 * (curvatures[0] * u * u + curvatures[1] * v * v)
}

const quadratic: Task = {
  id: 'quadratic',
  title: 'Ill-conditioned quadratic (2-D)',
  description: 'f = ½ (u² + 40 v²) on axes turned by 30°, from (−2.5, 2): condition number 40, minimum at 0.',
  adamLearningRate: 0.3,
  steps: 100,
  load: async () => {},
  init: (prefix) => point(prefix, -2.5, 2),
  loss: ([xy]) =>
    tf.tidy(() => {
      const rotation = tf.tensor2d([cos, -sin, sin, cos], [2, 2])
      const uv = tf.matMul(tf.reshape(xy, [1, 2]), rotation)
      return tf.mul(0.5, tf.sum(tf.mul(tf.tensor1d(curvatures), tf.square(uv)))) as tf.Scalar
    }),
  surface: { f: quadraticF, window: { x: [-3, 3], y: [-3, 3] }, minimum: [0, 0] },
}

/** The bundled digits: per image one label byte, then 784 pixels (0–255); console/build.ts writes them. */
export const digitsUrl = '/assets/digits.bin'
const imageSize = 784
const batchSize = 64
let digits: { images: Float32Array; labels: Uint8Array; count: number } | undefined

/** Parses digits.bin. */
export function parseDigits(bytes: Uint8Array): { images: Float32Array; labels: Uint8Array; count: number } {
  const count = Math.floor(bytes.length / (imageSize + 1))
  const images = new Float32Array(count * imageSize)
  const labels = new Uint8Array(count)
  for (let i = 0; i < count; i++) {
    const at = i * (imageSize + 1)
    labels[i] = bytes[at]
    for (let p = 0; p < imageSize; p++) images[i * imageSize + p] = bytes[at + 1 + p] / 255
  }
  return { images, labels, count }
}

const mlp: Task = {
  id: 'mlp',
  title: 'MNIST MLP (784-20-10, bundled digits)',
  description:
    "The paper's MNIST task: one hidden layer of 20 sigmoid units, cross-entropy, minibatches of 64 from 400 digits bundled with this page.",
  adamLearningRate: 0.03,
  steps: 100,
  async load() {
    if (digits !== undefined) return
    const response = await fetch(digitsUrl)
    if (!response.ok) throw new Error(`${digitsUrl} answered ${response.status}; run npm run build:console`)
    digits = parseDigits(new Uint8Array(await response.arrayBuffer()))
  },
  init(prefix) {
    // PyTorch's nn.Linear initialisation, U(±1/√fan_in), from a fixed seed.
    const random = seededRandom(2016)
    const uniform = (n: number, fanIn: number) =>
      Float32Array.from({ length: n }, () => (2 * random() - 1) / Math.sqrt(fanIn))
    return [
      tf.variable(tf.tensor2d(uniform(imageSize * 20, imageSize), [imageSize, 20]), true, `${prefix}/w1`),
      tf.variable(tf.tensor1d(uniform(20, imageSize)), true, `${prefix}/b1`),
      tf.variable(tf.tensor2d(uniform(20 * 10, 20), [20, 10]), true, `${prefix}/w2`),
      tf.variable(tf.tensor1d(uniform(10, 20)), true, `${prefix}/b2`),
    ]
  },
  loss([w1, b1, w2, b2], step) {
    const data = digits!
    const random = seededRandom(1000 + step)
    const x = new Float32Array(batchSize * imageSize)
    const y = new Float32Array(batchSize * 10)
    for (let row = 0; row < batchSize; row++) {
      const i = Math.floor(random() * data.count)
      x.set(data.images.subarray(i * imageSize, (i + 1) * imageSize), row * imageSize)
      y[row * 10 + data.labels[i]] = 1
    }
    return tf.tidy(() => {
      const hidden = tf.sigmoid(tf.add(tf.matMul(tf.tensor2d(x, [batchSize, imageSize]), w1), b1))
      const logits = tf.add(tf.matMul(hidden, w2), b2)
      const labels = tf.tensor2d(y, [batchSize, 10])
      return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1))) as tf.Scalar
    })
  },
}

/** Every task, in the order the picker shows them. */
export const tasks: Task[] = [rosenbrock, quadratic, mlp]
