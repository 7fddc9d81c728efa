/** A kernel model (src/core/fused/kernel.ts) as safetensors bytes, to send it to the bench Worker. */
import type { KernelModel } from '../../src/core/fused/kernel'
import { decode, encode, type Tensor } from '../../src/safetensors'

export function encodeKernelModel(model: KernelModel): Uint8Array {
  const { tensors, ...rest } = model
  const named: Record<string, Tensor> = {}
  tensors.forEach((t, i) => {
    named[`t${i}`] = { dtype: 'F32', shape: [t.length], data: t }
  })
  return encode(named, { model: JSON.stringify(rest), count: String(tensors.length) })
}

export function decodeKernelModel(bytes: Uint8Array): KernelModel {
  const file = decode(bytes)
  const rest = JSON.parse(file.metadata!.model) as Omit<KernelModel, 'tensors'>
  const tensors = Array.from(
    { length: Number(file.metadata!.count) },
    (_, i) => file.tensors.get(`t${i}`)!.data as Float32Array,
  )
  return { ...rest, tensors }
}
