/**
 * The playground: one task trained twice in this browser with tf.js, by a learned optimizer served
 * by this server (through the SDK, `l2o/tf`) and by Adam (tf.train.adam) at a chosen learning rate.
 * Both loss curves are drawn as the steps come, with the server's step latency; the 2-D tasks also
 * draw both paths over the function's contours. A failed request stops the run and shows the
 * server's problem+json detail.
 */
import * as tf from '@tensorflow/tfjs-core'
import { ApiError, L2oClient } from '../../../src/sdk'
import { TfOptimizer } from '../../../src/sdk/tf'
import { h, replace } from '../dom'
import { drawContours, drawLossChart } from '../plot'
import { type Task, tasks } from '../tasks'

const colors = { learned: '#d9480f', adam: '#1c7ed6' }
const keyStorage = 'l2o.clientKey'
let runs = 0

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s[s.length >> 1]
}

/** The message a failed run shows: the problem+json detail when the server answered. */
export function describeFailure(error: unknown): string {
  if (error instanceof ApiError) {
    return `${error.status} ${error.title ?? error.code}: ${error.detail}${error.requestId ? ` (request ${error.requestId})` : ''}`
  }
  return error instanceof Error ? error.message : String(error)
}

export async function playgroundPage(client: L2oClient, query: URLSearchParams): Promise<HTMLElement> {
  const learned = (await client.optimizers.list()).filter((o) => o.kind === 'learned')
  const references = learned.flatMap((o) => [...o.versions].reverse().map((v) => `${o.name}@${v}`))
  const wanted = query.get('optimizer')
  const chosenTask = tasks.find((t) => t.id === query.get('task')) ?? tasks[0]

  const optimizerSelect = h(
    'select',
    { id: 'pg-optimizer', name: 'optimizer' },
    references.map((r) => h('option', { value: r, selected: r === wanted }, r)),
  )
  const taskSelect = h(
    'select',
    { id: 'pg-task', name: 'task' },
    tasks.map((t) => h('option', { value: t.id, selected: t === chosenTask }, t.title)),
  )
  const keyInput = h('input', {
    id: 'pg-key',
    name: 'key',
    type: 'password',
    autocomplete: 'off',
    placeholder: 'l2o_… (npm start prints one)',
    value: sessionStorage.getItem(keyStorage) ?? '',
  })
  const lrInput = h('input', {
    id: 'pg-lr',
    name: 'lr',
    type: 'number',
    step: 'any',
    min: '0',
    value: chosenTask.adamLearningRate,
  })
  const stepsInput = h('input', {
    id: 'pg-steps',
    name: 'steps',
    type: 'number',
    min: '1',
    max: '1000',
    value: query.get('steps') ?? chosenTask.steps,
  })
  const runButton = h('button', { id: 'pg-run', type: 'submit', class: 'primary' }, 'Run')
  const stopButton = h('button', { id: 'pg-stop', type: 'button', disabled: true }, 'Stop')
  const description = h('p', { class: 'muted', id: 'pg-description' }, chosenTask.description)
  const status = h(
    'p',
    { id: 'pg-status', class: 'status', role: 'status' },
    'Paste a client key and press Run.',
  )
  const failure = h('div', { id: 'pg-error', class: 'error', role: 'alert', hidden: true })
  const stats = h('dl', { id: 'pg-stats', class: 'stats' })
  const lossCanvas = h('canvas', { id: 'pg-loss', class: 'chart', width: 600, height: 300 })
  const pathCanvas = h('canvas', { id: 'pg-paths', class: 'chart square', width: 420, height: 420 })
  const pathBox = h(
    'figure',
    { class: 'paths' },
    pathCanvas,
    h('figcaption', {}, 'Paths over the contours (⊕ marks the minimum; hollow dots the start)'),
  )

  // A task's own settings replace the inputs when the user picks it, not when the URL chose them.
  const showTask = (resetInputs: boolean) => {
    const task = tasks.find((t) => t.id === taskSelect.value) ?? tasks[0]
    if (resetInputs) {
      lrInput.value = String(task.adamLearningRate)
      stepsInput.value = String(task.steps)
    }
    description.textContent = task.description
    pathBox.hidden = task.surface === undefined
    if (task.surface) drawContours(pathCanvas, task.surface.f, task.surface.window, [], task.surface.minimum)
    drawLossChart(lossCanvas, [], task.steps)
  }
  taskSelect.addEventListener('change', () => showTask(true))

  let controller: AbortController | undefined
  stopButton.addEventListener('click', () => controller?.abort())

  const form = h(
    'form',
    { class: 'controls', id: 'pg-form' },
    h('label', {}, 'Learned optimizer', optimizerSelect),
    h('label', {}, 'Task', taskSelect),
    h('label', {}, 'Client key', keyInput),
    h('label', {}, "Adam's learning rate", lrInput),
    h('label', {}, 'Steps', stepsInput),
    h('div', { class: 'buttons' }, runButton, stopButton),
  )
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const task = tasks.find((t) => t.id === taskSelect.value) ?? tasks[0]
    const settings = {
      reference: optimizerSelect.value,
      apiKey: keyInput.value.trim(),
      learningRate: Number(lrInput.value),
      steps: Math.max(1, Math.min(1000, Math.floor(Number(stepsInput.value) || task.steps))),
    }
    sessionStorage.setItem(keyStorage, settings.apiKey)
    controller = new AbortController()
    runButton.disabled = true
    stopButton.disabled = false
    failure.hidden = true
    try {
      await run(task, settings, controller.signal, { status, stats, lossCanvas, pathCanvas })
    } catch (error) {
      if (controller.signal.aborted) status.textContent = 'Stopped.'
      else {
        failure.hidden = false
        replace(failure, h('strong', {}, 'The run stopped. '), describeFailure(error))
        status.textContent = 'Stopped on an error.'
      }
    } finally {
      runButton.disabled = false
      stopButton.disabled = true
    }
  })

  const page = h(
    'div',
    { class: 'page playground' },
    h('h1', {}, 'Playground'),
    h(
      'p',
      { class: 'lead' },
      'Trains one task twice in this browser with tf.js: with a learned optimizer served by this server (each step sends the gradients and applies the updates it gets back), and with Adam at the learning rate you choose.',
    ),
    references.length === 0 &&
      h('p', { class: 'error' }, 'No learned optimizer is registered on this server.'),
    form,
    description,
    status,
    failure,
    h(
      'div',
      { class: 'charts' },
      h('figure', {}, lossCanvas, h('figcaption', {}, 'Loss per step (log scale)')),
      pathBox,
    ),
    stats,
  )
  queueMicrotask(() => showTask(false))
  return page
}

interface View {
  status: HTMLElement
  stats: HTMLElement
  lossCanvas: HTMLCanvasElement
  pathCanvas: HTMLCanvasElement
}

async function run(
  task: Task,
  settings: { reference: string; apiKey: string; learningRate: number; steps: number },
  signal: AbortSignal,
  view: View,
): Promise<void> {
  const { reference, apiKey, learningRate, steps } = settings
  if (!(learningRate > 0)) throw new Error("Adam's learning rate must be a positive number")
  view.status.textContent = `Starting ${reference} on ${task.title}…`
  await task.load()
  const client = new L2oClient({
    baseUrl: location.origin,
    apiKey: apiKey || undefined,
    retry: { maxRetries: 1 },
  })
  // Session mode: the server keeps the state, so a step sends only gradients (the MLP's 15,910
  // coordinates with an 80-float state each would otherwise move 5 MB each way per step).
  const remote = await TfOptimizer.create(client, { optimizer: reference, mode: 'session' })
  const prefix = `run${++runs}`
  const learnedParams = task.init(`${prefix}/learned`)
  const adamParams = task.init(`${prefix}/adam`)
  const adam = tf.train.adam(learningRate)
  const losses = { learned: [] as number[], adam: [] as number[] }
  const paths = { learned: [] as [number, number][], adam: [] as [number, number][] }
  const latencies: number[] = []
  const position = async (params: tf.Variable[]): Promise<[number, number]> => {
    const [x, y] = await params[0].data()
    return [x, y]
  }
  const draw = () => {
    drawLossChart(
      view.lossCanvas,
      [
        { label: `learned ${reference}`, color: colors.learned, values: losses.learned },
        { label: `Adam, lr ${learningRate}`, color: colors.adam, values: losses.adam },
      ],
      steps,
    )
    if (task.surface) {
      drawContours(
        view.pathCanvas,
        task.surface.f,
        task.surface.window,
        [
          { label: 'learned', color: colors.learned, points: paths.learned },
          { label: 'Adam', color: colors.adam, points: paths.adam },
        ],
        task.surface.minimum,
      )
    }
    const last = (xs: number[]) => (xs.length > 0 ? xs[xs.length - 1].toPrecision(4) : '—')
    replace(
      view.stats,
      [
        ['step', String(losses.learned.length)],
        ['learned loss', last(losses.learned)],
        ['Adam loss', last(losses.adam)],
        [
          'step latency (last)',
          latencies.length > 0 ? `${latencies[latencies.length - 1].toFixed(1)} ms` : '—',
        ],
        ['step latency (median)', latencies.length > 0 ? `${median(latencies).toFixed(1)} ms` : '—'],
      ].map(([k, v]) => [h('dt', {}, k), h('dd', { 'data-stat': k }, v)]),
    )
  }
  try {
    for (let step = 0; step < steps && !signal.aborted; step++) {
      if (task.surface) {
        paths.learned.push(await position(learnedParams))
        paths.adam.push(await position(adamParams))
      }
      const { value, grads } = tf.variableGrads(() => task.loss(learnedParams, step), learnedParams)
      losses.learned.push((await value.data())[0])
      const t0 = performance.now()
      try {
        await remote.applyGradients(grads, signal)
      } finally {
        latencies.push(performance.now() - t0)
        value.dispose()
        tf.dispose(Object.values(grads))
      }
      const adamLoss = adam.minimize(() => task.loss(adamParams, step), true, adamParams)
      losses.adam.push(adamLoss === null ? Number.NaN : (await adamLoss.data())[0])
      adamLoss?.dispose()
      draw()
      view.status.textContent = `Step ${step + 1} of ${steps}`
      // Let the page paint between steps.
      await new Promise((resolve) => requestAnimationFrame(resolve))
    }
    if (task.surface) {
      paths.learned.push(await position(learnedParams))
      paths.adam.push(await position(adamParams))
    }
    draw()
    view.status.textContent = signal.aborted
      ? `Stopped after ${losses.learned.length} steps.`
      : `Done: ${steps} steps, median step latency ${median(latencies).toFixed(1)} ms.`
  } finally {
    adam.dispose()
    for (const v of [...learnedParams, ...adamParams]) v.dispose()
    await remote.close().catch(() => {})
  }
}
