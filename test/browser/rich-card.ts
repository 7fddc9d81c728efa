/**
 * A card in the shape train/ship.py's make_card_mix writes (l2o-mlp@1.0.0 and later): per test and
 * horizon {mean, se, diverged} for 100/200/1,000 steps, ratios to the best tuned baseline, defaults,
 * tuned learning rates, a geometric-mean summary and an analysis object. The values are made up.
 */
const horizons = ['100', '200', '1000']
const optimizers = ['learned', 'sgd', 'nag', 'rmsprop', 'adam']

function test(note: string, scale: number, learnedDiverges: boolean) {
  const results = Object.fromEntries(
    optimizers.map((o, k) => [
      o,
      Object.fromEntries(
        horizons.map((h, i) => {
          const diverged = learnedDiverges && o === 'learned' && h === '1000'
          return [h, { mean: diverged ? null : (scale * (1 + k / 4)) / (i + 1), se: scale / 50, diverged }]
        }),
      ),
    ]),
  )
  return {
    task: { family: 'mnist-mlp', hidden: [20] },
    note,
    heldOutInstances: { '100': 256, '200': 256, '1000': 64 },
    tuneInstances: { '100': 16, '200': 16, '1000': 8 },
    results,
    defaults: { sgd: 0.1, nag: 0.1, rmsprop: 0.001, adam: 0.001 },
    ratios: Object.fromEntries(horizons.map((h) => [h, { bestBaseline: 'nag', ratio: 0.8, vsAdam: 0.7 }])),
    tunedLearningRates: Object.fromEntries(
      ['sgd', 'nag', 'rmsprop', 'adam'].map((o) => [o, { '100': 0.1, '200': 0.1, '1000': 0.03 }]),
    ),
    learnedEvalWallSeconds: 120.5,
  }
}

export const richCard = {
  name: 'demo-rich',
  version: '1.0.0',
  description: 'A card of the richer shape, for the console test.',
  taskFamily: 'mlp-mix: MLPs of several widths, depths and activations on MNIST',
  training: {
    stages: [
      {
        kind: 'imitation',
        config: { iterations: 100 },
        iterations: 100,
        stopped: 'iterations',
        wallSeconds: 600,
      },
      {
        kind: 'meta-training',
        config: { iterations: 400 },
        iterations: 400,
        stopped: 'patience',
        wallSeconds: 3000,
      },
    ],
    seed: [0, 1],
    device: 'cpu (test), 1 torch thread(s)',
    torchVersion: '1.13.0',
    python: '3.11.2',
    wallSeconds: 3600,
    metaObjective: 'first-order truncated BPTT',
  },
  evaluation: {
    protocol: 'whole-pool loss, tuned baselines',
    horizons: [100, 200, 1000],
    geoMean: { '100': 0.91, '200': 0.88, '1000': 1.05 },
    worstVsAdam: { '100': 1.1, '200': 1.2, '1000': 1.4 },
    divergedAt1000: { 'mnist-20-sigmoid': false, 'mnist-3x32-relu': true },
    tests: {
      'mnist-20-sigmoid': test('training task', 0.3, false),
      'mnist-3x32-relu': test('deeper, ReLU', 0.2, true),
    },
    device: 'cpu (test)',
  },
  analysis: {
    stepSizes: {
      'mnist-20-sigmoid': {
        medianAbsUpdate: { '1': 0.01, '200': 0.001 },
        medianAdamEquivalentLr: { '1': 0.02, '10': 0.015, '200': 0.004 },
        tunedAdamLr: 0.003,
      },
    },
    regression: {
      rows: 40960,
      fits: {
        'Adam direction m0.9/r alone': { r2: 0.71, terms: ['m0.9/r'] },
        'all of the above and sign(g)': { r2: 0.93, terms: ['g', 'sign'] },
      },
    },
    plots: { update: 'analysis-update.png', stepSizes: 'analysis-steps.png' },
  },
  notes: 'Made up for the test.',
  plots: { loss: 'loss.png', loss1000: 'loss-1000.png', update: 'analysis-update.png' },
  reproduce: 'npm run train -- ship l2o-mlp --version 1.0.0',
}
