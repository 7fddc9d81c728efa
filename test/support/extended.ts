/**
 * The fused kernel's model of an extended-form weight file (test/fixtures/extended), read straight
 * from its tensors and `__metadata__.architecture`, for the tests and benches that step it before the
 * weight loader reads that form.
 */
import type { KernelModel } from '../../src/core/fused/kernel'
import { decode } from '../../src/safetensors'

/** The kernel model of an extended-form weight file's bytes. */
export function extendedKernelModel(bytes: Uint8Array): KernelModel {
  const file = decode(bytes)
  const a = JSON.parse(file.metadata?.architecture ?? '{}')
  const inputLayer: number = a.inputLayer?.size ?? 0
  // state_dict order: the input layer, then each cell, then the head.
  const order = [
    ...(inputLayer > 0 ? ['input.weight', 'input.bias'] : []),
    ...Array.from({ length: a.layers }, (_, k) =>
      ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'].map((t) => `cells.${k}.${t}`),
    ).flat(),
    'head.weight',
    'head.bias',
  ]
  const names = [...file.tensors.keys()].sort()
  if (a.features?.kind !== 'moments' || names.join() !== [...order].sort().join())
    throw new Error(`not an extended-form file with tensors ${order.join(', ')}`)
  return {
    layers: a.layers,
    hidden: a.hidden,
    features: a.features,
    featureSize: a.features.beta1.length + 1,
    inputLayer,
    output: a.output,
    tensors: order.map((name) => file.tensors.get(name)!.data as Float32Array),
  }
}
