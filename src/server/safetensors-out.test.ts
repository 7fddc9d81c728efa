import { describe, expect, it } from 'vitest'
import { encode } from '../weights'
import { allocateSafetensors } from './safetensors-out'

describe('allocateSafetensors', () => {
  it('writes the same bytes as the codec once its views are filled', () => {
    const updates = Float32Array.from([1, 2, 3])
    const state = Uint16Array.from([1, 2, 3, 4, 5, 6])
    const meta = { optimizer: 'x@1.0.0', digest: 'sha256:ab' }
    const out = allocateSafetensors(
      [
        { name: 'updates', dtype: 'F32', shape: [3] },
        { name: 'state', dtype: 'BF16', shape: [3, 2] },
      ],
      meta,
    )
    ;(out.views.get('updates') as Float32Array).set(updates)
    ;(out.views.get('state') as Uint16Array).set(state)
    const expected = encode(
      {
        updates: { dtype: 'F32', shape: [3], data: updates },
        state: { dtype: 'BF16', shape: [3, 2], data: state },
      },
      meta,
    )
    expect(Buffer.from(out.bytes).equals(Buffer.from(expected))).toBe(true)
  })

  it('handles empty tensors (an sgd state is [N, 0])', () => {
    const out = allocateSafetensors(
      [
        { name: 'updates', dtype: 'F32', shape: [2] },
        { name: 'state', dtype: 'F32', shape: [2, 0] },
      ],
      {},
    )
    const expected = encode(
      {
        updates: { dtype: 'F32', shape: [2], data: new Float32Array(2) },
        state: { dtype: 'F32', shape: [2, 0], data: new Float32Array(0) },
      },
      {},
    )
    expect(Buffer.from(out.bytes).equals(Buffer.from(expected))).toBe(true)
  })
})
