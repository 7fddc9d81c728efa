/** The list of optimizers: learned ones with versions, digests, status and aliases; the baselines. */
import type { L2oClient, OptimizerDetail } from '../../../src/sdk'
import { formatNumber, h } from '../dom'

const shortDigest = (digest: string) => `${digest.slice(0, 15)}…`
const day = (iso: string) => iso.slice(0, 10)

export async function optimizersPage(client: L2oClient): Promise<HTMLElement> {
  const summaries = await client.optimizers.list()
  const details = await Promise.all(summaries.map((s) => client.optimizers.get(s.name)))
  const learned = details.filter((d) => d.kind === 'learned')
  const baselines = details.filter((d) => d.kind === 'baseline')
  return h(
    'div',
    { class: 'page' },
    h('h1', {}, 'Optimizers'),
    h(
      'p',
      { class: 'lead' },
      'Learned optimizers are frozen weight files, versioned and immutable; aliases such as stable move. ',
      'Pin a version by its digest for a run. The baselines are the hand-designed rules they are measured against.',
    ),
    h('h2', {}, 'Learned'),
    learned.length === 0 ? h('p', { class: 'muted' }, 'None registered yet.') : learned.map(learnedCard),
    h('h2', {}, 'Baselines'),
    baselineTable(baselines),
  )
}

function learnedCard(o: OptimizerDetail): HTMLElement {
  const aliasesOf = (version: string) => o.aliases.filter((a) => a.version === version).map((a) => a.alias)
  return h(
    'section',
    { class: 'card optimizer', 'data-optimizer': o.name },
    h('h3', {}, o.name),
    o.description && h('p', {}, o.description),
    h(
      'table',
      { class: 'versions' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'version'),
          h('th', {}, 'status'),
          h('th', {}, 'aliases'),
          h('th', {}, 'digest'),
          h('th', {}, 'published'),
        ),
      ),
      h(
        'tbody',
        {},
        [...o.versions].reverse().map((v) =>
          h(
            'tr',
            { 'data-version': `${o.name}@${v.version}` },
            h('td', {}, h('a', { href: `#/optimizers/${o.name}/${v.version}` }, v.version)),
            h('td', {}, h('span', { class: `badge ${v.status}` }, v.status)),
            h(
              'td',
              {},
              aliasesOf(v.version).map((a) => h('span', { class: 'badge alias' }, a)),
            ),
            h('td', {}, h('code', { title: v.digest }, shortDigest(v.digest))),
            h('td', {}, day(v.createdAt)),
          ),
        ),
      ),
    ),
    o.aliases.length > 0 &&
      h(
        'details',
        { class: 'history' },
        h('summary', {}, 'Alias history'),
        h(
          'ul',
          {},
          o.aliases.map((a) =>
            h(
              'li',
              {},
              h('strong', {}, a.alias),
              ' → ',
              a.version,
              ': ',
              a.history.map((m, i) => [i > 0 ? ', ' : '', `${m.version} (${day(m.movedAt)})`]),
            ),
          ),
        ),
      ),
  )
}

function baselineTable(baselines: OptimizerDetail[]): HTMLElement {
  return h(
    'table',
    { class: 'baselines' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'name'), h('th', {}, 'rule'), h('th', {}, 'hyperparameters: default (range)')),
    ),
    h(
      'tbody',
      {},
      baselines.map((b) =>
        h(
          'tr',
          { 'data-baseline': b.name },
          h('td', {}, h('code', {}, b.name)),
          h('td', {}, b.description),
          h(
            'td',
            {},
            Object.entries(b.hyperparameterSpecs ?? {}).map(([k, spec]) =>
              h(
                'span',
                { class: 'hp' },
                h('code', {}, k),
                ' ',
                spec.default === undefined
                  ? `required, ${spec.range}`
                  : `${formatNumber(spec.default)} (${spec.range})`,
              ),
            ),
          ),
        ),
      ),
    ),
  )
}
