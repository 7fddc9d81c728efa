/**
 * float32 <-> IEEE binary16 (F16) and bfloat16 (BF16), on whole arrays. 16-bit values are raw bit
 * patterns in a Uint16Array, as the safetensors codec stores them. Narrowing rounds to nearest,
 * ties to even; NaN stays NaN (quiet), F16 overflow gives ±Inf, ±0 and subnormals are exact where
 * representable. Widening is exact.
 */

// Reinterpret float32 bits without a per-element DataView call (a Float32Array is always 4-aligned).
const bitsOf = (src: Float32Array): Uint32Array => new Uint32Array(src.buffer, src.byteOffset, src.length)

/** Converts float32 values to F16 bit patterns, round to nearest even; overflow → ±Inf. */
export function f32ToF16(src: Float32Array): Uint16Array {
  const bits = bitsOf(src)
  const out = new Uint16Array(bits.length)
  for (let i = 0; i < bits.length; i++) {
    const f = bits[i]
    const a = f & 0x7fffffff
    // Fast path, normal F16 results (|x| in [2^-14, 2^16)): rebias the exponent by 112, then round
    // the 13 dropped bits to nearest even; a carry out of the mantissa bumps the exponent, which is
    // exactly right, up to and including 65520 → Inf.
    if (a >= 0x38800000 && a < 0x47800000)
      out[i] = ((f >>> 16) & 0x8000) | ((a - 0x37fff001 + ((a >>> 13) & 1)) >>> 13)
    else out[i] = f32BitsToF16(f)
  }
  return out
}

/** One float32 bit pattern to F16 bits, round to nearest even. */
export function f32BitsToF16(f: number): number {
  const sign = (f >>> 16) & 0x8000
  const e = (f >>> 23) & 0xff
  const m = f & 0x7fffff
  if (e === 0xff) return m === 0 ? sign | 0x7c00 : sign | 0x7e00 | (m >>> 13)
  if (e >= 143) return sign | 0x7c00 // ≥ 2^16: beyond F16's range even before rounding
  if (e >= 113) {
    // Normal F16: keep 10 of 23 mantissa bits, round the rest to nearest even (carry is fine, as above).
    let h = ((e - 112) << 10) | (m >>> 13)
    const rest = m & 0x1fff
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++
    return sign | h
  }
  // Subnormal F16 (unit 2^-24): value = (2^23 + m)·2^(e-150), so q = (2^23 + m) >> (126 - e).
  // Below 2^-25 (e < 102) everything rounds to ±0; exactly 2^-25 is a tie and goes to even (0).
  if (e < 102) return sign
  const shift = 126 - e
  const full = 0x800000 | m
  let q = full >>> shift
  const rest = full & ((1 << shift) - 1)
  const half = 1 << (shift - 1)
  if (rest > half || (rest === half && (q & 1) === 1)) q++
  return sign | q
}

// F16 → float32 bits for all 65,536 patterns: 256 KiB, built on first use, then one load per element.
let f16Table: Uint32Array | undefined

function buildF16Table(): Uint32Array {
  const table = new Uint32Array(65536)
  const scratch = new Float32Array(1)
  const scratchBits = new Uint32Array(scratch.buffer)
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16
    const e = (h >>> 10) & 0x1f
    const m = h & 0x3ff
    if (e === 0x1f) table[h] = sign | 0x7f800000 | (m << 13)
    else if (e !== 0) table[h] = sign | ((e + 112) << 23) | (m << 13)
    else {
      scratch[0] = m * 2 ** -24 // exact: subnormal F16 values are normal float32 values
      table[h] = sign | scratchBits[0]
    }
  }
  return table
}

/** Converts F16 bit patterns to float32 values (exact). */
export function f16ToF32(src: Uint16Array): Float32Array {
  f16Table ??= buildF16Table()
  const table = f16Table
  const out = new Float32Array(src.length)
  const outBits = new Uint32Array(out.buffer)
  for (let i = 0; i < src.length; i++) outBits[i] = table[src[i]]
  return out
}

/** Converts float32 values to BF16 bit patterns, round to nearest even (overflow → ±Inf). */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const bits = bitsOf(src)
  const out = new Uint16Array(bits.length)
  for (let i = 0; i < bits.length; i++) {
    const f = bits[i]
    out[i] =
      (f & 0x7fffffff) > 0x7f800000
        ? (f >>> 16) | 0x0040 // NaN: keep sign and top payload, force quiet so it cannot become Inf
        : (f + 0x7fff + ((f >>> 16) & 1)) >>> 16
  }
  return out
}

/** Converts BF16 bit patterns to float32 values (exact). */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length)
  const outBits = new Uint32Array(out.buffer)
  for (let i = 0; i < src.length; i++) outBits[i] = src[i] << 16
  return out
}
