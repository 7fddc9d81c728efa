/**
 * The l2o web console: the registry (optimizers, versions, cards, plots), and a playground that
 * trains in this browser against this server. Routes live in the URL's fragment, so the server
 * only ever serves index.html at / (the same on Node and as Workers Static Assets).
 */
import '@tensorflow/tfjs-backend-cpu'
// tf.variableGrads and tf.train.adam need the gradients of every op.
import '@tensorflow/tfjs-core/dist/register_all_gradients'
import * as tf from '@tensorflow/tfjs-core'
import { L2oClient } from '../../src/sdk'
import { h, replace } from './dom'
import { optimizersPage } from './pages/optimizers'
import { describeFailure, playgroundPage } from './pages/playground'
import { versionPage } from './pages/version'

const app = document.getElementById('app')!
// Reads need no key; the playground makes its own client with the key the user pastes.
const client = new L2oClient({ baseUrl: location.origin })

async function render(): Promise<void> {
  const [path, search = ''] = location.hash.replace(/^#/, '').split('?')
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent)
  const section = parts[0] === 'playground' ? 'playground' : 'optimizers'
  for (const link of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    link.classList.toggle('active', link.dataset.nav === section)
  }
  replace(app, h('p', { class: 'muted' }, 'Loading…'))
  try {
    let page: HTMLElement
    if (parts[0] === 'playground') page = await playgroundPage(client, new URLSearchParams(search))
    else if (parts[0] === 'optimizers' && parts.length === 3)
      page = await versionPage(client, parts[1], parts[2])
    else page = await optimizersPage(client)
    replace(app, page)
    document.title = `${page.querySelector('h1')?.textContent ?? 'l2o'} · l2o console`
  } catch (error) {
    replace(
      app,
      h(
        'div',
        { class: 'page' },
        h('h1', {}, 'Something went wrong'),
        h('p', { class: 'error', role: 'alert' }, describeFailure(error)),
      ),
    )
  }
}

await tf.setBackend('cpu')
window.addEventListener('hashchange', () => void render())
await render()
