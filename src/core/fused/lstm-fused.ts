import { type LstmSpec, lstmSpec } from '../../contract'
import { type GainPass, gainPass } from '../kinds'
import { assertLstmWeights, type LstmWeights, lstmWeightTensors } from '../lstm-weights'
import type { CallPool, Optimizer, StepResult } from '../optimizer'
import { defineOptimizer } from '../validate'
import { type KernelModel, kernelInstance } from './kernel'

/**
 * The coordinatewise LSTM optimizer on the fused kernel (lstm.c as WebAssembly SIMD): the same math
 * as lstmOptimizer, every coordinate in one pass, several times faster than tfjs. `kernel` is
 * lstm.wasm compiled by the runtime. Throws RangeError when the architecture exceeds its bounds.
 *
 * @example
 * const opt = fusedLstmOptimizer(weights, kernel)
 * const { updates, state } = opt.update(grads, opt.init(grads.length))
 */
export function fusedLstmOptimizer(weights: LstmWeights, kernel: WebAssembly.Module): Optimizer {
  assertLstmWeights(weights)
  return fusedKernelOptimizer(kernelModel(weights), kernel)
}

/**
 * The Optimizer of a model in the kernel's own terms (kernel.ts's KernelModel). A `tanh-rms`
 * output's `gain` is not coordinatewise, so it runs here, around the kernel and over the whole call
 * (kinds.ts's GainPass): its pool from the old state before the kernel steps (in place, perhaps)
 * and in chunks, then its pass over every coordinate of the call.
 */
export function fusedKernelOptimizer(model: KernelModel, kernel: WebAssembly.Module): Optimizer {
  const instance = kernelInstance(kernel, model)
  const gain = gainOfModel(model)
  const stepInto = (grads: Float32Array, state: Float32Array, out: StepResult, pool?: CallPool) => {
    const pooled = gain === undefined ? undefined : (pool ?? gain.pool(grads, state))
    let finite = instance.step(grads, state, out.updates, out.state)
    if (gain !== undefined && pooled !== undefined) {
      finite = gain.apply(pooled, grads, state, out.state, out.updates) && finite
    }
    return finite
  }
  return defineOptimizer(
    instance.stateSize,
    (grads, state, pool) => {
      const out = { updates: new Float32Array(grads.length), state: new Float32Array(state.length) }
      stepInto(grads, state, out, pool)
      return out
    },
    { stepInto, pool: gain?.pool },
  )
}

/** The gain's pass for a kernel model, or undefined without a gain (kernelInstance checked the kinds). */
function gainOfModel(model: KernelModel): GainPass | undefined {
  if (model.output.kind !== 'tanh-rms' || model.output.gain === undefined) return undefined
  if (model.features.kind !== 'moments') throw new RangeError('a tanh-rms gain needs moments features')
  const spec: LstmSpec = lstmSpec({
    kind: 'lstm-cw',
    layers: model.layers,
    hidden: model.hidden,
    features: model.features,
    ...(model.inputLayer > 0 ? { inputLayer: { size: model.inputLayer, activation: 'elu' as const } } : {}),
    output: model.output,
  })
  return gainPass(spec)
}

/** The kernel's view of LSTM weights. */
export function kernelModel(weights: LstmWeights): KernelModel {
  const spec = lstmSpec(weights.architecture)
  return {
    layers: spec.layers,
    hidden: spec.hidden,
    features: spec.features,
    featureSize: spec.featureSize,
    inputLayer: spec.inputLayer?.size ?? 0,
    output: spec.output,
    tensors: [...lstmWeightTensors(weights).values()],
  }
}
