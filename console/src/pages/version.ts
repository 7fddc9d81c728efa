/**
 * A version's page: the exact reference to pin with ready-to-copy snippets, its card (task family,
 * training, evaluation against tuned baselines, tuned learning rates), its plots and its analysis.
 * Cards come in several shapes (older ones have fewer fields): every section shows what is present.
 */
import type { L2oClient } from '../../../src/sdk'
import { copyButton, formatNumber, formatSeconds, h } from '../dom'

type Json = Record<string, unknown>
const obj = (v: unknown): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined)

interface VersionFile {
  name: string
  mediaType: string
  sizeBytes: number
}

export async function versionPage(client: L2oClient, name: string, version: string): Promise<HTMLElement> {
  const detail = await client.optimizers.get(name)
  const v = detail.versions.find((x) => x.version === version)
  if (v === undefined) {
    return h(
      'div',
      { class: 'page' },
      h('h1', {}, `${name}@${version}`),
      h(
        'p',
        { class: 'error' },
        `No version ${version} of ${name}. Versions: ${detail.versions.map((x) => x.version).join(', ')}.`,
      ),
    )
  }
  const card = obj(v.card) ?? {}
  const files = ((v as { files?: VersionFile[] }).files ?? []) as VersionFile[]
  const fileUrl = (file: string) =>
    `/v1/optimizers/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}/files/${encodeURIComponent(file)}`
  const aliases = detail.aliases.filter((a) => a.version === version).map((a) => a.alias)
  const pin = `${name}@${v.digest}`
  return h(
    'div',
    { class: 'page version' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Optimizers'), ' / ', name),
    h(
      'h1',
      {},
      `${name}@${version} `,
      h('span', { class: `badge ${v.status}` }, v.status),
      aliases.map((a) => h('span', { class: 'badge alias' }, a)),
    ),
    str(card.description) !== undefined && h('p', { class: 'lead' }, str(card.description)),
    v.status === 'deprecated' &&
      h(
        'p',
        { class: 'warning' },
        'Deprecated: runs pinned to it still work; aliases skip it. Start new runs on a newer version.',
      ),
    pinSection(pin, name, version),
    overview(card, v.architecture as unknown as Json, v.sizeBytes, v.createdAt),
    evaluationSection(obj(card.evaluation)),
    plotsSection(files, obj(card.plots), fileUrl),
    analysisSection(obj(card.analysis), files, fileUrl),
    trainingSection(obj(card.training)),
    str(card.notes) !== undefined &&
      h('section', {}, h('h2', {}, 'Notes'), h('p', { class: 'notes' }, str(card.notes))),
    str(card.reproduce) !== undefined &&
      h('section', {}, h('h2', {}, 'Reproduce'), h('pre', {}, h('code', {}, str(card.reproduce)))),
    h(
      'details',
      { class: 'raw' },
      h('summary', {}, 'card.json as published'),
      h('pre', {}, JSON.stringify(v.card, null, 1)),
    ),
  )
}

function pinSection(pin: string, name: string, version: string): HTMLElement {
  const origin = location.origin
  const snippets: [string, string][] = [
    [
      'TypeScript (tf.js)',
      `import { L2oClient } from 'l2o'
import { TfOptimizer } from 'l2o/tf'
const l2o = new L2oClient({ baseUrl: '${origin}', apiKey: process.env.L2O_KEY })
const opt = await TfOptimizer.create(l2o, {
  optimizer: '${pin}',
  mode: 'session',
})
await opt.applyGradients(tf.variableGrads(loss).grads)`,
    ],
    [
      'PyTorch',
      `import os
from l2o_client import RemoteOptimizer
opt = RemoteOptimizer(model.parameters(), url="${origin}", key=os.environ["L2O_KEY"],
                      optimizer="${pin}", mode="session")
loss.backward(); opt.step(); opt.zero_grad()`,
    ],
    [
      'curl',
      `curl -X POST ${origin}/v1/step -H "Authorization: Bearer $L2O_KEY" -H 'Content-Type: application/json' \\
  -d '{"optimizer":"${pin}","grads":[0.1,-0.2,0.03]}'`,
    ],
  ]
  return h(
    'section',
    { class: 'pin' },
    h('h2', {}, 'Pin this version'),
    h(
      'p',
      {},
      'The digest names exactly this weight file; a run that sends it is never moved by an alias. ',
      h(
        'a',
        { href: `#/playground?optimizer=${encodeURIComponent(`${name}@${version}`)}` },
        'Try it in the playground →',
      ),
    ),
    h('div', { class: 'pinned' }, h('code', { class: 'reference' }, pin), copyButton(pin, 'Copy reference')),
    snippets.map(([label, code]) =>
      h(
        'div',
        { class: 'snippet' },
        h('div', { class: 'snippet-head' }, h('span', {}, label), copyButton(code)),
        h('pre', {}, h('code', {}, code)),
      ),
    ),
  )
}

function overview(card: Json, architecture: Json, sizeBytes: number, createdAt: string): HTMLElement {
  const training = obj(card.training) ?? {}
  const rows: [string, unknown][] = [
    ['Task family', str(card.taskFamily)],
    [
      'Architecture',
      Object.entries(architecture)
        .map(([k, val]) => `${k} ${typeof val === 'object' ? JSON.stringify(val) : val}`)
        .join(', '),
    ],
    ['Weight file', `${sizeBytes.toLocaleString('en-US')} bytes, published ${createdAt.slice(0, 10)}`],
    ['Device', str(training.device)],
    [
      'Training wall time',
      num(training.wallSeconds) !== undefined ? formatSeconds(training.wallSeconds) : undefined,
    ],
    ['Evaluation device', str(obj(card.evaluation)?.device)],
  ]
  return h(
    'section',
    {},
    h('h2', {}, 'Card'),
    h(
      'table',
      { class: 'facts' },
      h(
        'tbody',
        {},
        rows
          .filter(([, val]) => val !== undefined && val !== '')
          .map(([k, val]) => h('tr', {}, h('th', {}, k), h('td', {}, String(val)))),
      ),
    ),
  )
}

interface Cell {
  mean?: number | null
  se?: number | null
  diverged?: boolean
}

const diverged = (c: Cell | undefined) =>
  c === undefined || c.diverged === true || typeof c.mean !== 'number' || !Number.isFinite(c.mean)

function evaluationSection(evaluation: Json | undefined): HTMLElement | false {
  const tests = obj(evaluation?.tests)
  if (evaluation === undefined || tests === undefined) return false
  const horizons = (Array.isArray(evaluation.horizons) ? evaluation.horizons : [100, 200]).map(String)
  const geo = obj(evaluation.geoMean)
  return h(
    'section',
    { class: 'evaluation' },
    h('h2', {}, 'Evaluation against tuned baselines'),
    str(evaluation.protocol) !== undefined && h('p', { class: 'muted' }, str(evaluation.protocol)),
    geo !== undefined &&
      h(
        'p',
        { class: 'summary' },
        'Geometric mean over tests of learned ÷ best tuned baseline (below 1: the learned optimizer wins): ',
        Object.entries(geo).map(([hz, value], i) => [
          i > 0 ? ', ' : '',
          h('strong', {}, `${hz} steps ${formatNumber(value, 3)}`),
        ]),
      ),
    Object.entries(tests).map(([testName, raw]) => testTable(testName, obj(raw) ?? {}, horizons)),
  )
}

function testTable(testName: string, test: Json, horizons: string[]): HTMLElement {
  const results = (obj(test.results) ?? {}) as Record<string, Record<string, Cell>>
  const optimizers = Object.keys(results)
  const ratios = obj(test.ratios)
  const present = horizons.filter((hz) => optimizers.some((o) => results[o]?.[hz] !== undefined))
  const tuned = obj(test.tunedLearningRates) as Record<string, Record<string, number>> | undefined
  const defaults = obj(test.defaults)
  const held = test.heldOutInstances
  return h(
    'div',
    { class: 'test', 'data-test': testName },
    h(
      'h3',
      {},
      testName,
      str(test.note) !== undefined && h('span', { class: 'muted' }, ` — ${str(test.note)}`),
    ),
    h(
      'table',
      { class: 'results' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'steps'),
          optimizers.map((o) => h('th', {}, o)),
          ratios !== undefined && h('th', {}, 'learned ÷ best'),
        ),
      ),
      h(
        'tbody',
        {},
        present.map((hz) => {
          const finite = optimizers.filter((o) => !diverged(results[o]?.[hz]))
          const best = finite.reduce<string | undefined>(
            (b, o) =>
              b === undefined || (results[o][hz].mean as number) < (results[b][hz].mean as number) ? o : b,
            undefined,
          )
          const ratio = obj(ratios?.[hz])
          return h(
            'tr',
            {},
            h('th', {}, hz),
            optimizers.map((o) => {
              const c = results[o]?.[hz]
              if (c === undefined) return h('td', { class: 'muted' }, '—')
              if (diverged(c)) return h('td', { class: 'diverged' }, 'diverged')
              const text = `${formatNumber(c.mean)}${typeof c.se === 'number' ? ` ± ${formatNumber(c.se, 2)}` : ''}`
              return h('td', { class: o === best ? 'best' : '' }, text)
            }),
            ratios !== undefined &&
              h(
                'td',
                {},
                ratio === undefined
                  ? '—'
                  : `${formatNumber(ratio.ratio, 3)} (vs ${str(ratio.bestBaseline) ?? '?'})`,
              ),
          )
        }),
      ),
    ),
    h(
      'p',
      { class: 'muted small' },
      held !== undefined &&
        `Held-out instances: ${
          typeof held === 'object'
            ? Object.entries(held as Json)
                .map(([k, n]) => `${n} at ${k} steps`)
                .join(', ')
            : held
        }. `,
      'Mean loss ± standard error; the best of each row in bold.',
    ),
    tuned !== undefined &&
      h(
        'table',
        { class: 'lrs' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'tuned learning rate'),
            present.map((hz) => h('th', {}, `${hz} steps`)),
            defaults !== undefined && h('th', {}, 'default'),
          ),
        ),
        h(
          'tbody',
          {},
          Object.entries(tuned).map(([o, byHorizon]) =>
            h(
              'tr',
              {},
              h('th', {}, o),
              present.map((hz) => h('td', {}, formatNumber(byHorizon?.[hz], 3))),
              defaults !== undefined && h('td', {}, defaultText(defaults[o])),
            ),
          ),
        ),
      ),
  )
}

const defaultText = (value: unknown): string => {
  if (typeof value === 'number') return formatNumber(value, 3)
  const o = obj(value)
  if (o === undefined) return '—'
  return Object.entries(o)
    .map(([k, v]) =>
      obj(v) !== undefined
        ? `${k}: ${JSON.stringify(v)}`
        : `${k} ${typeof v === 'number' ? formatNumber(v, 3) : v}`,
    )
    .join(', ')
}

function plotsSection(
  files: VersionFile[],
  plots: Json | undefined,
  url: (file: string) => string,
): HTMLElement | false {
  // In the card's order (its plots map), then any other image.
  const order = Object.values(plots ?? {})
  const rank = (file: string) => (order.includes(file) ? order.indexOf(file) : order.length)
  const images = files
    .filter((f) => f.mediaType.startsWith('image/'))
    .sort((a, b) => rank(a.name) - rank(b.name))
  if (images.length === 0) return false
  const labelOf = (file: string) => Object.entries(plots ?? {}).find(([, f]) => f === file)?.[0]
  return h(
    'section',
    { class: 'plots' },
    h('h2', {}, 'Plots'),
    h(
      'div',
      { class: 'plot-grid' },
      images.map((f) =>
        h(
          'figure',
          {},
          h(
            'a',
            { href: url(f.name), target: '_blank', rel: 'noopener' },
            h('img', { src: url(f.name), alt: `${labelOf(f.name) ?? f.name} plot` }),
          ),
          h('figcaption', {}, labelOf(f.name) ?? f.name, h('span', { class: 'muted' }, ` (${f.name})`)),
        ),
      ),
    ),
  )
}

function analysisSection(
  analysis: Json | undefined,
  files: VersionFile[],
  url: (file: string) => string,
): HTMLElement | false {
  const json = files.filter((f) => f.mediaType === 'application/json')
  if (analysis === undefined && json.length === 0) return false
  const fits = obj(obj(analysis?.regression)?.fits)
  const steps = obj(analysis?.stepSizes)
  return h(
    'section',
    { class: 'analysis' },
    h('h2', {}, 'Analysis'),
    fits !== undefined &&
      h(
        'div',
        {},
        h('h3', {}, 'What the updates are made of'),
        h(
          'p',
          { class: 'muted' },
          `Least-squares fits of the learned update on candidate terms (${num(obj(analysis?.regression)?.rows)?.toLocaleString('en-US') ?? '?'} coordinate-steps).`,
        ),
        h(
          'table',
          {},
          h('thead', {}, h('tr', {}, h('th', {}, 'terms'), h('th', {}, 'R²'))),
          h(
            'tbody',
            {},
            Object.entries(fits).map(([family, fit]) =>
              h('tr', {}, h('td', {}, family), h('td', {}, formatNumber(obj(fit)?.r2, 3))),
            ),
          ),
        ),
      ),
    steps !== undefined &&
      h(
        'div',
        {},
        h('h3', {}, 'Step sizes'),
        h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'test'),
              h('th', {}, 'tuned Adam lr'),
              h('th', {}, 'Adam-equivalent lr of the learned steps (median, by step)'),
            ),
          ),
          h(
            'tbody',
            {},
            Object.entries(steps).map(([test, s]) =>
              h(
                'tr',
                {},
                h('td', {}, test),
                h('td', {}, formatNumber(obj(s)?.tunedAdamLr, 3)),
                h(
                  'td',
                  {},
                  Object.entries(obj(obj(s)?.medianAdamEquivalentLr) ?? {})
                    .map(([t, lr]) => `step ${t}: ${formatNumber(lr, 3)}`)
                    .join(', '),
                ),
              ),
            ),
          ),
        ),
      ),
    json.length > 0 &&
      h(
        'p',
        {},
        'Files: ',
        json.map((f, i) => [i > 0 ? ', ' : '', h('a', { href: url(f.name) }, f.name)]),
      ),
  )
}

/** A card's meta-objective: one text, one per stage (a list), or one per stage kind (a map). */
function objectives(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string')
  const byStage = obj(value)
  if (byStage === undefined) return []
  return Object.entries(byStage).flatMap(([stage, text]) =>
    typeof text === 'string' ? [`${stage}: ${text}`] : [],
  )
}

/** A version derived from another (train/ship.py's derivedFrom): its network, other output fields. */
function derivedFrom(training: Json): HTMLElement | false {
  const from = obj(training.derivedFrom)
  const parent = str(from?.version)
  if (from === undefined || parent === undefined) return false
  const [name, version] = parent.split('@')
  const fields = Object.entries(obj(from.output) ?? {})
    .map(([key, value]) => `${key} ${JSON.stringify(value)}`)
    .join(', ')
  return h(
    'p',
    { class: 'derived' },
    'Derived from ',
    h('a', { href: `#/optimizers/${name}/${version}` }, parent),
    ` (${str(from.digest) ?? '?'}): the same network with the output's ${fields}. No training of its own: the stages below are ${parent}'s.`,
  )
}

function trainingSection(training: Json | undefined): HTMLElement | false {
  if (training === undefined) return false
  const stages = Array.isArray(training.stages) ? (training.stages as Json[]) : []
  return h(
    'section',
    {},
    h('h2', {}, 'Training'),
    derivedFrom(training),
    objectives(training.metaObjective).map((text) => h('p', { class: 'muted' }, text)),
    stages.length > 0 &&
      h(
        'table',
        {},
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'stage'),
            h('th', {}, 'iterations'),
            h('th', {}, 'stopped'),
            h('th', {}, 'wall time'),
            h('th', {}, 'config'),
          ),
        ),
        h(
          'tbody',
          {},
          stages.map((s) =>
            h(
              'tr',
              {},
              h('td', {}, str(s.kind) ?? '—'),
              h('td', {}, String(s.iterations ?? '—')),
              h('td', {}, String(s.stopped ?? '—')),
              h('td', {}, formatSeconds(s.wallSeconds)),
              h(
                'td',
                {},
                h('details', {}, h('summary', {}, 'config'), h('pre', {}, JSON.stringify(s.config, null, 1))),
              ),
            ),
          ),
        ),
      ),
    h(
      'p',
      { class: 'muted small' },
      [
        training.seed !== undefined && `seed ${JSON.stringify(training.seed)}`,
        str(training.torchVersion) && `torch ${training.torchVersion}`,
        str(training.python) && `Python ${training.python}`,
      ]
        .filter(Boolean)
        .join(' · '),
    ),
  )
}
