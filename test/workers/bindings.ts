/**
 * Bindings for the tests inside workerd, made on Node when vitest.workers.config.ts loads (through
 * tsx): the seed SQL as `npm run dev:edge` and a deploy run it, and the fixture files as bytes.
 */
import path from 'node:path'
import { readD1Migrations } from '@cloudflare/vitest-pool-workers'
import { seedStatements } from '../../scripts/seed-d1'
import { readShippedVersions } from '../../src/runtime/shipped-weights'
import { digestOf, encodeLstmWeights } from '../../src/weights'
import { randomLstmWeights } from '../support/random'

const root = path.resolve(import.meta.dirname, '../..')

/** Keys the seed registers; the tests send them (test/workers/seed.ts). */
const testKeys = { admin: 'l2o_workers_test_admin_key', client: 'l2o_workers_test_client_key' }

export async function testBindings() {
  // About 200 KB: its row needs several appends under D1's 100 KB statement limit.
  const bigWeights = encodeLstmWeights(
    randomLstmWeights(
      { kind: 'lstm-cw', layers: 2, hidden: 64, preprocessing: 'log-sign', p: 10, outputScale: 0.1 },
      3,
    ),
  )
  const shipped = await readShippedVersions()
  const seedSql = await seedStatements(
    [...shipped, { name: 'seed-big', version: '1.0.0', weights: bigWeights }],
    [
      { name: 'admin', role: 'admin', secret: testKeys.admin },
      { name: 'client', role: 'client', secret: testKeys.client },
    ],
  )
  return {
    bindings: {
      TEST_MIGRATIONS: await readD1Migrations(path.join(root, 'migrations')),
      TEST_SEED_SQL: seedSql,
      TEST_KEYS: testKeys,
      TEST_SHIPPED: shipped.map((v) => `${v.name}@${v.version}`),
      TEST_SHIPPED_FILES: await Promise.all(
        shipped.flatMap((v) =>
          (v.files ?? []).map(async (f) => ({
            path: `/v1/optimizers/${v.name}/versions/${v.version}/files/${f.name}`,
            digest: await digestOf(f.bytes),
          })),
        ),
      ),
    },
    dataBlobBindings: {
      TEST_BIG_WEIGHTS: bigWeights,
      TEST_PARITY_WEIGHTS: path.join(root, 'test/fixtures/workers-weights.safetensors'),
      TEST_PARITY_CASE: path.join(root, 'test/fixtures/workers-step.safetensors'),
      TEST_EXTENDED_WEIGHTS: path.join(root, 'test/fixtures/extended/moments-elu-tanh/model.safetensors'),
      TEST_EXTENDED_CASE: path.join(root, 'test/fixtures/workers-step-extended.safetensors'),
    },
  }
}
