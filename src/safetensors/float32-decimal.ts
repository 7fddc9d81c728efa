/**
 * The shortest decimal that reads back as the same float32: at most 9 significant digits, where
 * JavaScript's own number-to-text gives the shortest decimal of the float64 (up to 17 digits, e.g.
 * 0.10000000149011612 for the float32 nearest 0.1). A reader that parses the text as a float64 and
 * rounds it to float32 (JSON.parse then Float32Array, Python's float then torch.float32) gets the
 * same bits back.
 *
 * Method: every real in the float32's rounding interval (half-way to each neighbour, the ends
 * included when its mantissa is even) reads back as it. The answer is the integer d and exponent x
 * with d·10^x in that interval for the largest x, d nearest the value. The bounds are computed in
 * float64 where that is provably exact or clear of an integer, else exactly with BigInt (rare).
 */

const pow10 = Array.from({ length: 23 }, (_, i) => 10 ** i)
// 2^k for k in [−151, 104], at index k + 151: every half-gap of a float32 (Math.pow per number is slow).
const pow2 = Array.from({ length: 256 }, (_, i) => 2 ** (i - 151))
const float = new Float32Array(1)
const word = new Uint32Array(float.buffer)

// The float32 being written, as module state: this runs per number of large answers, so it makes
// no objects or closures per number. value = m · 2^e; its rounding interval is [low, high].
let magnitude = 0
let m = 0
let e = 0
/** Whether the ends of the interval read back as the value (round half to even). */
let inclusive = false
/** The lower half-gap is half as wide at a power of two (the neighbour below is closer). */
let narrowBelow = false
let low = 0
let high = 0
// The answer: digits · 10^exponent.
let digits = 0
let exponent = 0

function load(value: number): void {
  float[0] = value
  const bits = word[0]
  const biased = (bits >>> 23) & 0xff
  const fraction = bits & 0x7fffff
  e = biased === 0 ? -149 : biased - 150
  m = biased === 0 ? fraction : fraction | 0x800000
  magnitude = Math.abs(float[0])
  const half = pow2[e - 1 + 151]
  inclusive = m % 2 === 0
  narrowBelow = fraction === 0 && biased > 1
  low = magnitude - (narrowBelow ? half / 2 : half)
  high = magnitude + half
}

/**
 * ceil (up) or floor of y / 10^x over the integers in the interval, in float64: exact when y/10^x
 * is a known integer, sure when clear of one; NaN when unsure (then the exact path decides).
 */
function fastEnd(y: number, x: number, up: boolean): number {
  if (x > 22 || x < -22) return Number.NaN
  const q = x >= 0 ? y / pow10[x] : y * pow10[-x]
  if (x >= 0 && y % pow10[x] === 0 && q < 2 ** 53) {
    // The end is exactly the integer q: in the interval only if the ends are.
    return inclusive ? q : up ? q + 1 : q - 1
  }
  if (Math.abs(q - Math.round(q)) <= Math.max(1, q) * 2 ** -40) return Number.NaN
  return up ? Math.ceil(q) : Math.floor(q)
}

/** ceil/floor of an interval end over 10^x, exactly (BigInt): the ends are (4m − 2 or 1)·2^(e−2) and (4m + 2)·2^(e−2). */
function exactEnd(x: number, up: boolean): number {
  let num = up ? 4n * BigInt(m) - (narrowBelow ? 1n : 2n) : 4n * BigInt(m) + 2n
  let den = 1n
  if (e - 2 >= 0) num <<= BigInt(e - 2)
  else den <<= BigInt(2 - e)
  if (x >= 0) den *= 10n ** BigInt(x)
  else num *= 10n ** BigInt(-x)
  const exact = num % den === 0n
  let q = num / den
  if (up && !exact) q += 1n
  if (exact && !inclusive) q += up ? 1n : -1n
  return Number(q)
}

/**
 * Sets digits and exponent to the shortest decimal in the interval: the largest x for which some
 * integer d has d·10^x in it, d nearest the value. False when the float64 bounds are unsure.
 */
function shortest(exact: boolean): boolean {
  // A step 10^x no wider than the interval nearly always has a multiple in it (an excluded end
  // may take the only one: then one digit finer); a coarser step may have one too.
  let x = Math.floor(Math.log10(high - low))
  let found = false
  for (;;) {
    const lo = exact ? exactEnd(x, true) : fastEnd(low, x, true)
    const hi = exact ? exactEnd(x, false) : fastEnd(high, x, false)
    if (Number.isNaN(lo) || Number.isNaN(hi)) return false
    if (lo > hi) {
      if (found) return true
      x--
      continue
    }
    const scaled = x >= 0 ? magnitude / (pow10[x] ?? 10 ** x) : magnitude * (pow10[-x] ?? 10 ** -x)
    digits = Math.min(hi, Math.max(lo, Math.round(scaled)))
    exponent = x
    found = true
    x++
  }
}

/** Digits and exponent as JavaScript writes numbers (Number.prototype.toString's rules). */
function format(digits: string, x: number): string {
  const n = digits.length
  const k = n + x
  if (n <= k && k <= 21) return digits + '0'.repeat(k - n)
  if (0 < k && k <= 21) return `${digits.slice(0, k)}.${digits.slice(k)}`
  if (-6 < k && k <= 0) return `0.${'0'.repeat(-k)}${digits}`
  const e = k - 1
  const mantissa = n === 1 ? digits : `${digits[0]}.${digits.slice(1)}`
  return `${mantissa}e${e < 0 ? '-' : '+'}${Math.abs(e)}`
}

/**
 * The shortest decimal text of a float32 `value` that reads back (float64, then rounded to
 * float32) as the same float32; '-0' for negative zero. Throws on NaN and ±Infinity, which JSON
 * cannot carry.
 *
 * @example float32Decimal(Math.fround(0.1)) // '0.1', where String() gives '0.10000000149011612'
 */
export function float32Decimal(value: number): string {
  if (value === 0) return Object.is(value, -0) ? '-0' : '0'
  if (!Number.isFinite(value)) throw new RangeError(`${value} has no decimal form`)
  load(value)
  if (!shortest(false)) shortest(true)
  return (value < 0 ? '-' : '') + format(String(digits), exponent)
}

/** Values [begin, end) as JSON array elements, comma-separated (no brackets). */
export function float32JsonElements(values: Float32Array, begin = 0, end = values.length): string {
  let text = ''
  for (let i = begin; i < end; i++)
    text += i === begin ? float32Decimal(values[i]) : `,${float32Decimal(values[i])}`
  return text
}

/** Float32 values as a JSON array, each as its shortest round-tripping decimal. */
export function float32JsonArray(values: Float32Array): string {
  let text = '['
  for (let i = 0; i < values.length; i++)
    text += i === 0 ? float32Decimal(values[i]) : `,${float32Decimal(values[i])}`
  return `${text}]`
}
