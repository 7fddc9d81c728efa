import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { firstMismatch, maxScaledError } from '../../../test/support/close'
import { extendedKernelModel } from '../../../test/support/extended'
import { fusedKernel } from '../../runtime/kernel-node'
import { decode } from '../../safetensors'
import { kernelInstance } from './kernel'

// The fused kernel on the extended architecture's fixtures (test/fixtures/extended: `moments`
// features, the ELU input layer, the `tanh` output, the zero-gradient rule), against their PyTorch
// goldens, the kernel fed each step's golden state.
//
// The goldens' moments slots are made with the β's rounded to float32 (train/optimizer.py's
// Moments widens torch.where of Python floats, which is float32), where docs/optimizer-math.md §3
// says the JSON numbers: on a coordinate whose old momentum and new gradient cancel, the two differ
// by up to 1e-4 relative. So the kernel runs here with the goldens' β's, and must then equal their
// slots to the bit; run with the JSON β's, it must equal the document's arithmetic to the bit.
const fixtures = path.join(import.meta.dirname, '../../../test/fixtures/extended')
const RTOL = 1e-5
const STATE_FLOOR = 0.1

function tensors(file: string) {
  const decoded = decode(new Uint8Array(readFileSync(file)))
  return (name: string) => {
    const t = decoded.tensors.get(name)
    if (t?.dtype !== 'F32') throw new Error(`${file} lacks F32 tensor ${name}`)
    return t
  }
}

/**
 * The `moments` slots docs/optimizer-math.md §3 specifies for one coordinate: float64 arithmetic on
 * float32 operands, the β's as the JSON numbers, each stored value rounded once.
 */
function momentSlots(f: { beta1: number[]; beta2: number }, g: number, old: Float32Array): number[] {
  const k = f.beta1.length
  const before = old[k + 1] > 0
  const w2 = before ? f.beta2 : 0
  const r = Math.fround(Math.sqrt(w2 * old[k] * old[k] + (1 - w2) * g * g))
  const m = f.beta1.map((b, j) => Math.fround((before ? b : 0) * old[j] + (1 - (before ? b : 0)) * g))
  return [...m, r, before || g !== 0 ? 1 : 0]
}

describe('the fused kernel on the extended architecture’s golden vectors', () => {
  const names = readdirSync(fixtures)
  it('has the fixtures: moments with the ELU input layer and tanh output, and moments with linear output', () => {
    expect(names.sort()).toEqual(['moments-elu-tanh', 'moments-linear'])
  })

  for (const name of names) {
    it(`${name}: PyTorch's updates and states at every step, the document's moment slots bit for bit, exact +0 for unseen coordinates`, () => {
      const asDocumented = extendedKernelModel(readFileSync(path.join(fixtures, name, 'model.safetensors')))
      const f = asDocumented.features as { kind: 'moments'; beta1: number[]; beta2: number; eps: number }
      const asTrained = { beta1: f.beta1.map(Math.fround), beta2: Math.fround(f.beta2) }
      const model = { ...asDocumented, features: { ...f, ...asTrained } }
      const golden = tensors(path.join(fixtures, name, 'golden.safetensors'))
      const grads = golden('grads')
      const states = golden('states')
      const updates = golden('updates')
      const [steps, n] = grads.shape
      const s = states.shape[2]
      const kernel = kernelInstance(fusedKernel(), model)
      const documented = kernelInstance(fusedKernel(), asDocumented)
      expect(kernel.stateSize).toBe(s)
      const lstm = 2 * model.layers * model.hidden
      const floor = 0.1 * Math.abs(model.output.scale)
      for (let t = 0; t < steps; t++) {
        const g = (grads.data as Float32Array).subarray(t * n, (t + 1) * n)
        const stateIn = (states.data as Float32Array).subarray(t * n * s, (t + 1) * n * s)
        const want = (states.data as Float32Array).subarray((t + 1) * n * s, (t + 2) * n * s)
        const wantUpdates = (updates.data as Float32Array).subarray(t * n, (t + 1) * n)
        const gotUpdates = new Float32Array(n)
        const got = new Float32Array(n * s)
        kernel.step(g, stateIn, gotUpdates, got)
        const u = firstMismatch(gotUpdates, wantUpdates, RTOL, floor)
        expect(
          u,
          `step ${t} update ${u}: ${gotUpdates[u]} vs ${wantUpdates[u]} (worst ${maxScaledError(gotUpdates, wantUpdates, floor)})`,
        ).toBe(-1)
        const i = firstMismatch(got, want, RTOL, STATE_FLOOR)
        expect(
          i,
          `step ${t} state ${i}: ${got[i]} vs ${want[i]} (worst ${maxScaledError(got, want, STATE_FLOOR)})`,
        ).toBe(-1)
        const byDoc = new Float32Array(n * s)
        documented.step(g, stateIn, new Float32Array(n), byDoc)
        let unseen = 0
        for (let c = 0; c < n; c++) {
          const slotsOf = (a: Float32Array) => [...a.subarray(c * s + lstm, (c + 1) * s)]
          const slots = slotsOf(got)
          expect(slots, `step ${t} coordinate ${c}: the golden's slots`).toEqual(slotsOf(want))
          const old = stateIn.subarray(c * s + lstm, (c + 1) * s)
          expect(slotsOf(byDoc), `step ${t} coordinate ${c}: the document's slots`).toEqual(
            momentSlots(f, g[c], old),
          )
          if (slots[slots.length - 1] === 0) {
            unseen++
            expect(Object.is(gotUpdates[c], 0), `step ${t} coordinate ${c}`).toBe(true)
          }
        }
        expect(unseen, `step ${t}: coordinates whose gradients were all ±0`).toBeGreaterThanOrEqual(6)
      }
    })
  }
})
