import { lstmSpec } from '../../contract'
import { assertLstmWeights, type LstmWeights, lstmWeightTensors } from '../lstm-weights'
import type { Optimizer } from '../optimizer'
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

/** The Optimizer of a model in the kernel's own terms (kernel.ts's KernelModel). */
export function fusedKernelOptimizer(model: KernelModel, kernel: WebAssembly.Module): Optimizer {
  const instance = kernelInstance(kernel, model)
  return defineOptimizer(
    instance.stateSize,
    (grads, state) => {
      const updates = new Float32Array(grads.length)
      const next = new Float32Array(state.length)
      instance.step(grads, state, updates, next)
      return { updates, state: next }
    },
    { stepInto: (grads, state, out) => instance.step(grads, state, out.updates, out.state) },
  )
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
