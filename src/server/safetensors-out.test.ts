import { describe, expect, it } from 'vitest'
import { decode } from '../safetensors'
import { stepAnswerLayout } from './safetensors-out'

describe('stepAnswerLayout', () => {
  it('frames state rows then updates as a valid safetensors file', () => {
    for (const [dtype, state] of [
      ['F32', new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer)],
      ['BF16', new Uint8Array(Uint16Array.from([1, 2, 3, 4, 5, 6]).buffer)],
    ] as const) {
      const updates = Float32Array.from([7, 8, 9])
      const layout = stepAnswerLayout(3, 2, dtype, { optimizer: 'x@1.0.0', digest: 'sha256:ab' })
      const file = new Uint8Array(layout.totalBytes)
      file.set(layout.header)
      file.set(state, layout.header.length)
      file.set(new Uint8Array(updates.buffer), layout.header.length + layout.stateBytes)
      expect(layout.header.length % 8).toBe(0)
      const decoded = decode(file)
      expect(decoded.metadata).toEqual({ digest: 'sha256:ab', optimizer: 'x@1.0.0' })
      expect(decoded.tensors.get('updates')).toEqual({ dtype: 'F32', shape: [3], data: updates })
      expect(decoded.tensors.get('state')!.shape).toEqual([3, 2])
      expect(decoded.tensors.get('state')!.dtype).toBe(dtype)
    }
  })

  it('frames an empty [N, 0] state (sgd)', () => {
    const layout = stepAnswerLayout(2, 0, 'F32', {})
    const file = new Uint8Array(layout.totalBytes)
    file.set(layout.header)
    expect(decode(file).tensors.get('state')).toEqual({
      dtype: 'F32',
      shape: [2, 0],
      data: new Float32Array(0),
    })
  })
})
