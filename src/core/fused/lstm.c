/* The fused serving kernel: one step of the coordinatewise LSTM optimizer of docs/optimizer-math.md
 * (every feature kind, the ELU input layer, every output transform, `tanh-rms`'s `decay` included,
 * and the zero-gradient rule) in one pass over the coordinates, compiled to WebAssembly SIMD by
 * clang (build.sh; the .wasm is committed and CI checks that it rebuilds to the same bytes). Loaded
 * by kernel.ts. `tanh-rms`'s `gain` is not coordinatewise: this kernel keeps its step count and
 * leaves its two slots [p, a] as they are, and kernel.ts's caller runs its pass over the whole call.
 *
 * Layout. The state is the service's own, coordinate-major [N, S] (DESIGN §2, §5), stepped in
 * place. Coordinates go BLOCK = 8 at a time, as two 4-lane vectors: a block's 8 state rows are
 * transposed into `block` ([S][2] vectors, one row of S per state float) by 4x4 transposes in
 * registers, stepped there, and transposed back. Everything else happens on those vectors: the
 * features, the input layer, per unit of each cell the four gate rows (i, f, g, o) as eight
 * accumulators (4 gates x 2 vectors) over the cell's input [x; h] with each weight splatted from
 * memory, the activations and the cell update right away, and the head.
 *
 * Arithmetic is float32 as PyTorch's, except where the math document says float64 (the `moments`
 * features, bit for bit as specified). exp, expm1, log and tanh are polynomial or rational
 * approximations of a few ulp (kernel-math.test.ts checks them over the whole float32 range);
 * sums run in input order, so results differ from PyTorch's by rounding only (test/parity).
 */
#include <stdint.h>
#include <wasm_simd128.h>

typedef float v4 __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef double v2d __attribute__((vector_size(16)));

#define EXPORT(name) __attribute__((export_name(name)))

/* Bounds of the contract's schema (src/contract/architecture.ts): MAX_LAYERS, MAX_HIDDEN, and
 * MAX_MOMENTS (so F <= 10, with logRms); an input layer is at most MAX_HIDDEN wide; the step count
 * of `decay` and `gain` stops at MAX_STEP_COUNT, and its two slots follow the `moments` ones, then
 * the gain's two. */
#define MAX_LAYERS 8
#define MAX_HIDDEN 256
#define MAX_MOMENTS 8
#define MAX_FEATURES (MAX_MOMENTS + 2)
#define MAX_INPUT 256
#define MAX_STATE (2 * MAX_LAYERS * MAX_HIDDEN + MAX_MOMENTS + 2 + 4)
#define MAX_STEP_COUNT 65535
#define BLOCK 8

enum { FEATURES_LOG_SIGN = 0, FEATURES_NONE = 1, FEATURES_MOMENTS = 2 };
enum { OUTPUT_LINEAR = 0, OUTPUT_TANH = 1, OUTPUT_TANH_RMS = 2 };

/* A model: sizes, kind parameters and packed weights, built by l2o_model_pack from the tensors in
 * state_dict order. */
struct model {
  int32_t layers, hidden, features, input, state, feature_kind, output_kind, moments;
  float p, threshold, scale;
  /* `tanh-rms`: the power of r' (0 for the other output kinds). */
  double power;
  /* `tanh-rms`'s step count: kept (1) with a `decay` or a `gain`, else 0. */
  int32_t counted;
  /* `tanh-rms`'s `decay`: T (0 without decay), d and log2 T. */
  int32_t decay_after;
  double decay_power, decay_log2_after;
  double exp_p, beta1[MAX_MOMENTS], beta2, eps;
  /* `moments` with `logRms` = q: q and e^-q; q = 0 without it. */
  double log_rms, log_floor;
  /* Offsets (floats) into params: the input layer's W [E][F] and b [E]; per cell k, per unit u,
   * the four gate rows of [W_ih | W_hh] interleaved, [in_k + H][4], then the biases b_ih + b_hh
   * [H][4], the i, f and o rows times -log2(e) (see exp2_approx); the head's weight [H] and bias. */
  int32_t input_weight, input_bias, cell[MAX_LAYERS], cell_bias[MAX_LAYERS], head;
  float params[];
};

/* Scratch for one block, [row][vector]: the transposed state, the cell inputs [x; h], the new h. */
static v4 block[MAX_STATE][2];
static v4 cell_in[MAX_INPUT + MAX_HIDDEN][2];
static v4 hidden_new[MAX_HIDDEN][2];
static v4 features_in[MAX_FEATURES][2];

static inline v4 splat(float x) { return (v4){x, x, x, x}; }
static inline v4 load_splat(const float *p) { return (v4)wasm_v128_load32_splat(p); }
static inline v4 select(v4i mask, v4 a, v4 b) { return (v4)wasm_v128_bitselect((v128_t)a, (v128_t)b, (v128_t)mask); }
/* pmin/pmax: one instruction each (min/max must also order -0 and propagate NaN, which costs). */
static inline v4 clamp(v4 x, float lo, float hi) {
  return (v4)wasm_f32x4_pmax(wasm_f32x4_pmin((v128_t)x, (v128_t)splat(hi)), (v128_t)splat(lo));
}
static inline v4 absolute(v4 x) { return (v4)((v4i)x & 0x7fffffff); }

/* -log2(e): the input gate's, forget gate's and output gate's rows of the packed weights are
 * scaled by it, so their pre-activations come out as t = -a log2(e) and sigmoid(a) = 1 / (1 + 2^t)
 * needs no multiply and no Cody-Waite reduction: t's own rounding is one ulp of a, far below the
 * rounding of the sum that made a. */
#define MINUS_LOG2E (-1.44269504088896341f)

/* 2^t: t = n + f with |f| <= 1/2 exactly, a degree-5 polynomial for 2^f fitted for relative error
 * (9e-8, 2.2 ulp in float32), 2^n put into the exponent bits. t is clamped to [-125, 118] first, so 2^n
 * stays normal and 2^t times a tanh denominator (at most 210) cannot overflow. */
static inline v4 exp2_approx(v4 t) {
  t = clamp(t, -125.0f, 118.0f);
  /* 1.5 * 2^23 + 127: adding it rounds t to an integer n, and leaves n + 127 in the low bits. */
  const float magic = 12583039.0f;
  v4 big = t + magic;
  v4 f = t - (big - magic);
  v4 p = splat(1.32646121e-3f);
  p = p * f + 9.67148039e-3f;
  p = p * f + 5.55073358e-2f;
  p = p * f + 2.40222424e-1f;
  p = p * f + 6.93147004e-1f;
  p = p * f + 1.0f;
  return p * (v4)((v4i)big << 23);
}

/* expm1(x) for x <= 0 (the ELU's negative side): x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 in
 * two parts), expm1(r) as its Taylor series to r^8 (error < 2e-9 relative), then
 * 2^n expm1(r) + (2^n - 1), exact where n = 0, so tiny x keep their relative precision. */
static inline v4 expm1_negative(v4 x) {
  x = clamp(x, -30.0f, 0.0f);
  const float magic = 12583039.0f;
  v4 big = x * 1.44269504088896341f + magic;
  v4 n = big - magic;
  v4 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  v4 q = splat(1.0f / 40320);
  q = q * r + 1.0f / 5040;
  q = q * r + 1.0f / 720;
  q = q * r + 1.0f / 120;
  q = q * r + 1.0f / 24;
  q = q * r + 1.0f / 6;
  q = q * r + 0.5f;
  v4 em = q * (r * r) + r;
  v4 two_n = (v4)((v4i)big << 23);
  return two_n * em + (two_n - 1.0f);
}

/* sigmoid(a) as the cell computes it, from t = -a log2(e). */
static inline v4 sigmoid_scaled(v4 t) { return 1.0f / (1.0f + exp2_approx(t)); }

/* tanh(x) = x P(x^2) / Q(x^2), a [13/6] rational fitted for relative error on [0, 9], returned as
 * numerator and denominator so that callers can share one division (1 <= Q <= 210). x is clamped
 * to +-8.09: the largest float32 below which the quotient never exceeds 1 in magnitude (it reaches
 * 1 - 2 ulp there, where tanh is 1 - 3 ulp). Odd, and exact at 0 (+-0 stay +-0). */
static inline void tanh_parts(v4 x, v4 *numerator, v4 *denominator) {
  x = clamp(x, -8.09135532f, 8.09135532f);
  v4 x2 = x * x;
  v4 p = splat(-8.48955434e-14f);
  p = p * x2 + 5.27829451e-11f;
  p = p * x2 + -2.02259801e-08f;
  p = p * x2 + 1.11545015e-05f;
  p = p * x2 + 3.10397511e-03f;
  p = p * x2 + 1.30840271e-01f;
  p = p * x2 + 9.99999993e-01f;
  v4 q = splat(2.54617249e-04f);
  q = q * x2 + 2.44952541e-02f;
  q = q * x2 + 4.64173543e-01f;
  q = q * x2 + 1.0f;
  *numerator = x * p;
  *denominator = q;
}

static inline v4 tanh_approx(v4 x) {
  v4 p, q;
  tanh_parts(x, &p, &q);
  return p / q;
}

/* log(x) for x > 0 (Cephes' logf): x = m 2^e with m in [sqrt(1/2), sqrt 2), a polynomial in m - 1.
 * Subnormal x are scaled by 2^23 first. */
static inline v4 log_positive(v4 x) {
  v4i tiny = x < 1.17549435e-38f;
  x = select(tiny, x * 8388608.0f, x);
  v4i bits = (v4i)x;
  v4i e = (bits >> 23) - 126;
  e = e - (tiny & 23);
  v4 m = (v4)((bits & 0x007fffff) | 0x3f000000); /* in [0.5, 1) */
  v4i low = m < 0.707106781186547524f;
  e = e + low; /* low is -1 where true */
  m = select(low, m + m, m) - 1.0f;
  v4 ef = __builtin_convertvector(e, v4);
  v4 z = m * m;
  v4 y = splat(7.0376836292e-2f);
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y = y + ef * -2.12194440e-4f;
  y = y - 0.5f * z;
  return m + y + ef * 0.693359375f;
}

/* log(x) in float64 for x > 0 finite: fdlibm's __ieee754_log (Sun Microsystems, 1993; as in V8's
 * Math.log and musl before 2018), error < 1 ulp. For `logRms`, once per coordinate. */
static double log_f64(double x) {
  static const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10,
                      two54 = 1.80143985094819840000e+16, lg1 = 6.666666666666735130e-01,
                      lg2 = 3.999999999940941908e-01, lg3 = 2.857142874366239149e-01,
                      lg4 = 2.222219843214978396e-01, lg5 = 1.818357216161805012e-01,
                      lg6 = 1.531383769920937332e-01, lg7 = 1.479819860511658591e-01;
  union { double d; uint64_t u; } v = {x};
  int32_t hx = (int32_t)(v.u >> 32), k = 0;
  if (hx < 0x00100000) { /* subnormal */
    k -= 54;
    v.d *= two54;
    hx = (int32_t)(v.u >> 32);
  }
  k += (hx >> 20) - 1023;
  hx &= 0x000fffff;
  int32_t i = (hx + 0x95f64) & 0x100000;
  v.u = ((uint64_t)(uint32_t)(hx | (i ^ 0x3ff00000)) << 32) | (v.u & 0xffffffffu); /* x or x/2 in [sqrt(2)/2, sqrt(2)) */
  k += i >> 20;
  const double f = v.d - 1.0, dk = (double)k;
  if ((0x000fffff & (2 + hx)) < 3) { /* -2^-20 <= f < 2^-20 */
    if (f == 0.0) return k == 0 ? 0.0 : dk * ln2_hi + dk * ln2_lo;
    const double r = f * f * (0.5 - 0.33333333333333333 * f);
    return k == 0 ? f - r : dk * ln2_hi - ((r - dk * ln2_lo) - f);
  }
  const double s = f / (2.0 + f), z = s * s, w = z * z;
  const double t1 = w * (lg2 + w * (lg4 + w * lg6)), t2 = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7)));
  const double r = t2 + t1;
  if (((hx - 0x6147a) | (0x6b851 - hx)) > 0) {
    const double hfsq = 0.5 * f * f;
    return k == 0 ? f - (hfsq - s * (hfsq + r)) : dk * ln2_hi - ((hfsq - (s * (hfsq + r) + dk * ln2_lo)) - f);
  }
  return k == 0 ? f - s * (f - r) : dk * ln2_hi - ((s * (f - r) - dk * ln2_lo) - f);
}

/* float64 helpers: 4 float32 lanes as two float64 pairs, and back (rounded once). */
static inline v2d low_f64(v4 x) { return (v2d)wasm_f64x2_promote_low_f32x4((v128_t)x); }
static inline v2d high_f64(v4 x) {
  return (v2d)wasm_f64x2_promote_low_f32x4((v128_t)__builtin_shufflevector(x, x, 2, 3, 2, 3));
}
static inline v4 to_f32(v2d lo, v2d hi) {
  return __builtin_shufflevector((v4)wasm_f32x4_demote_f64x2_zero((v128_t)lo),
                                 (v4)wasm_f32x4_demote_f64x2_zero((v128_t)hi), 0, 1, 4, 5);
}

/* r'^power for `tanh-rms` (docs/optimizer-math.md §6): 2^t, t = power · log2 r', and exactly 0
 * where r' = 0. In vectors: r' = 2^k m with m in [1, 2) (a subnormal r' scaled by 2^24 first), k
 * exact and the float32 log of m within 6e-8, so t, formed in float64 and rounded to float32 once,
 * is off by at most |t| 2^-24 plus ~1e-7 (about 1e-6 relative in the result at power 0.3). It was a
 * scalar float64 log per lane, about 15% of a `tanh-rms` step. */
static inline v4 rms_power(double power, v4 r) {
  v4i tiny = r < 1.17549435e-38f;
  v4i bits = (v4i)select(tiny, r * 16777216.0f, r);
  v4 k = __builtin_convertvector((bits >> 23) - 127, v4) - select(tiny, splat(24.0f), splat(0.0f));
  v4 log_m = log_positive((v4)((bits & 0x007fffff) | 0x3f800000));
  v2d p = {power, power};
  v4 t = to_f32(p * (low_f64(k) + low_f64(log_m) * 1.4426950408889634),
                p * (high_f64(k) + high_f64(log_m) * 1.4426950408889634));
  return select(r > 0.0f, exp2_approx(t), splat(0.0f));
}

/* Test entry: out[i] = f(in[i]) for the approximations above (kind 0 2^x, 1 expm1 of x <= 0,
 * 2 sigmoid as the cell computes it, 3 tanh, 4 log of x > 0, 5 the float32 rounding of the float64
 * log of x > 0, 6 x^0.3 of x >= 0 as `tanh-rms` computes it), n a multiple of 4. */
EXPORT("l2o_math") void l2o_math(int kind, const float *in, float *out, int n) {
  for (int i = 0; i < n; i += 4) {
    v4 x = *(const v4 *)(in + i), y;
    switch (kind) {
    case 0: y = exp2_approx(x); break;
    case 1: y = expm1_negative(x); break;
    case 2: y = sigmoid_scaled(x * MINUS_LOG2E); break;
    case 3: y = tanh_approx(x); break;
    case 4: y = log_positive(x); break;
    case 6: y = rms_power(0.3, x); break;
    default:
      for (int l = 0; l < 4; l++) y[l] = (float)log_f64((double)x[l]);
      break;
    }
    *(v4 *)(out + i) = y;
  }
}

/* Floats of a packed model's params for these sizes (l2o_model_pack's layout). */
static int32_t param_floats(int layers, int hidden, int features, int input) {
  int32_t count = input > 0 ? input * features + input : 0;
  int x = input > 0 ? input : features;
  for (int k = 0; k < layers; k++) count += 4 * hidden * ((k == 0 ? x : hidden) + hidden) + 4 * hidden;
  return count + hidden + 1;
}

/* Bytes l2o_model_pack needs, or 0 when the sizes are beyond the kernel's bounds. */
EXPORT("l2o_model_bytes") int32_t l2o_model_bytes(int layers, int hidden, int features, int input, int moments) {
  if (layers < 1 || layers > MAX_LAYERS || hidden < 1 || hidden > MAX_HIDDEN || features < 1 ||
      features > MAX_FEATURES || input < 0 || input > MAX_INPUT || moments < 0 || moments > MAX_MOMENTS)
    return 0;
  return (int32_t)sizeof(struct model) + 4 * param_floats(layers, hidden, features, input);
}

/* Builds a model at `m` (l2o_model_bytes of room, 16-byte aligned) from `raw`, the tensors in
 * state_dict order: input.weight [E, F], input.bias [E] (when E > 0); per cell k weight_ih
 * [4H, in_k], weight_hh [4H, H], bias_ih [4H], bias_hh [4H]; head.weight [1, H], head.bias [1].
 * `beta1` holds `moments` float64s. `exp_p` is e^p and `threshold` the least float32 >= e^-p (so
 * a float32 |g| compares with it as its float64 does with e^-p); `log_rms` is `moments`' q (0 for
 * none) and `log_floor` e^-q; see kernel.ts. */
EXPORT("l2o_model_pack")
int32_t l2o_model_pack(struct model *m, const float *raw, int layers, int hidden, int features, int input,
                       int feature_kind, float p, double exp_p, float threshold, int moments,
                       const double *beta1, double beta2, double eps, double log_rms, double log_floor,
                       int output_kind, float scale, double power, int decay_after, double decay_power,
                       int output_slots) {
  if (l2o_model_bytes(layers, hidden, features, input, moments) == 0) return -1;
  /* `tanh-rms` reads the `moments` RMS slot, and only it takes a `decay` (T in [1, 65535] and
   * 0 < d <= 1; T = 0 for none) or slots of its own: 0, 2 (the step count, for a `decay` or a
   * `gain`) or 4 (the count, then the gain's [p, a], which this kernel steps over). */
  if (output_kind == OUTPUT_TANH_RMS && feature_kind != FEATURES_MOMENTS) return -1;
  if (decay_after != 0 && (output_kind != OUTPUT_TANH_RMS || decay_after < 1 || decay_after > MAX_STEP_COUNT ||
                           !(decay_power > 0.0 && decay_power <= 1.0) || output_slots < 2))
    return -1;
  if (!(output_slots == 0 || output_slots == 2 || output_slots == 4) ||
      (output_slots != 0 && output_kind != OUTPUT_TANH_RMS))
    return -1;
  const int H = hidden;
  m->layers = layers;
  m->hidden = H;
  m->features = features;
  m->input = input;
  m->feature_kind = feature_kind;
  m->output_kind = output_kind;
  m->moments = moments;
  m->state = 2 * layers * H + (feature_kind == FEATURES_MOMENTS ? moments + 2 : 0) + output_slots;
  m->counted = output_slots >= 2;
  m->p = p;
  m->exp_p = exp_p;
  m->threshold = threshold;
  m->scale = scale;
  m->power = power;
  m->decay_after = decay_after;
  m->decay_power = decay_power;
  m->decay_log2_after = decay_after != 0 ? log_f64((double)decay_after) * 1.4426950408889634 : 0.0;
  for (int k = 0; k < moments; k++) m->beta1[k] = beta1[k];
  m->beta2 = beta2;
  m->eps = eps;
  m->log_rms = log_rms;
  m->log_floor = log_floor;
  float *out = m->params;
  int32_t at = 0;
  if (input > 0) {
    m->input_weight = at;
    for (int i = 0; i < input * features; i++) out[at++] = *raw++;
    m->input_bias = at;
    for (int i = 0; i < input; i++) out[at++] = *raw++;
  }
  int x = input > 0 ? input : features;
  for (int k = 0; k < layers; k++) {
    const int in = k == 0 ? x : H, width = in + H;
    const float *w_ih = raw, *w_hh = w_ih + 4 * H * in, *b_ih = w_hh + 4 * H * H, *b_hh = b_ih + 4 * H;
    raw = b_hh + 4 * H;
    m->cell[k] = at;
    for (int u = 0; u < H; u++)
      for (int j = 0; j < width; j++)
        for (int q = 0; q < 4; q++) {
          const int row = q * H + u;
          const float w = j < in ? w_ih[row * in + j] : w_hh[row * H + (j - in)];
          out[at++] = q == 2 ? w : w * MINUS_LOG2E;
        }
    m->cell_bias[k] = at;
    for (int u = 0; u < H; u++)
      for (int q = 0; q < 4; q++) {
        const float b = b_ih[q * H + u] + b_hh[q * H + u];
        out[at++] = q == 2 ? b : b * MINUS_LOG2E;
      }
  }
  m->head = at;
  for (int u = 0; u <= H; u++) out[at++] = *raw++;
  return 0;
}

/* Transposes 4 coordinates' rows (at rows, stride S floats) into block[r..r+3][v]. */
static inline void gather4(const float *rows, int S, int r, int v) {
  v4 a = wasm_v128_load(rows + r), b = wasm_v128_load(rows + S + r);
  v4 c = wasm_v128_load(rows + 2 * S + r), d = wasm_v128_load(rows + 3 * S + r);
  v4 ab_lo = __builtin_shufflevector(a, b, 0, 4, 1, 5), ab_hi = __builtin_shufflevector(a, b, 2, 6, 3, 7);
  v4 cd_lo = __builtin_shufflevector(c, d, 0, 4, 1, 5), cd_hi = __builtin_shufflevector(c, d, 2, 6, 3, 7);
  block[r][v] = __builtin_shufflevector(ab_lo, cd_lo, 0, 1, 4, 5);
  block[r + 1][v] = __builtin_shufflevector(ab_lo, cd_lo, 2, 3, 6, 7);
  block[r + 2][v] = __builtin_shufflevector(ab_hi, cd_hi, 0, 1, 4, 5);
  block[r + 3][v] = __builtin_shufflevector(ab_hi, cd_hi, 2, 3, 6, 7);
}

static inline void scatter4(float *rows, int S, int r, int v) {
  v4 a = block[r][v], b = block[r + 1][v], c = block[r + 2][v], d = block[r + 3][v];
  v4 ab_lo = __builtin_shufflevector(a, b, 0, 4, 1, 5), ab_hi = __builtin_shufflevector(a, b, 2, 6, 3, 7);
  v4 cd_lo = __builtin_shufflevector(c, d, 0, 4, 1, 5), cd_hi = __builtin_shufflevector(c, d, 2, 6, 3, 7);
  wasm_v128_store(rows + r, (v128_t)__builtin_shufflevector(ab_lo, cd_lo, 0, 1, 4, 5));
  wasm_v128_store(rows + S + r, (v128_t)__builtin_shufflevector(ab_lo, cd_lo, 2, 3, 6, 7));
  wasm_v128_store(rows + 2 * S + r, (v128_t)__builtin_shufflevector(ab_hi, cd_hi, 0, 1, 4, 5));
  wasm_v128_store(rows + 3 * S + r, (v128_t)__builtin_shufflevector(ab_hi, cd_hi, 2, 3, 6, 7));
}

/* The block's `count` state rows into block[][], zeros past count (a partial last block). */
static void load_block(const float *state, int S, int count) {
  if (count == BLOCK) {
    int r = 0;
    for (; r + 4 <= S; r += 4) {
      gather4(state, S, r, 0);
      gather4(state + 4 * S, S, r, 1);
    }
    for (; r < S; r++)
      for (int l = 0; l < BLOCK; l++) block[r][l >> 2][l & 3] = state[l * S + r];
    return;
  }
  for (int r = 0; r < S; r++)
    for (int l = 0; l < BLOCK; l++) block[r][l >> 2][l & 3] = l < count ? state[l * S + r] : 0.0f;
}

static void store_block(float *state, int S, int count) {
  if (count == BLOCK) {
    int r = 0;
    for (; r + 4 <= S; r += 4) {
      scatter4(state, S, r, 0);
      scatter4(state + 4 * S, S, r, 1);
    }
    for (; r < S; r++)
      for (int l = 0; l < BLOCK; l++) state[l * S + r] = block[r][l >> 2][l & 3];
    return;
  }
  for (int r = 0; r < S; r++)
    for (int l = 0; l < count; l++) state[l * S + r] = block[r][l >> 2][l & 3];
}

static inline v2d select_f64(v2d mask, v2d a, v2d b) {
  return (v2d)wasm_v128_bitselect((v128_t)a, (v128_t)b, (v128_t)mask);
}

/* Feature kind `moments` (docs/optimizer-math.md §3) for one vector of 4 coordinates: float64
 * arithmetic on float32 operands, in the document's order, each stored value rounded once. Writes
 * the K + 1 features (K + 2 with logRms) to features_in[][v] and the new slots into block; returns
 * `seen`. */
static inline v4i moments(const struct model *m, v4 g, int v) {
  const int K = m->moments, slots = 2 * m->layers * m->hidden;
  v4 z = block[slots + K + 1][v], r_old = block[slots + K][v];
  v4i before = z > 0.0f;
  v4i seen = before | (g != 0.0f);
  v2d before_lo = (v2d)wasm_i64x2_extend_low_i32x4((v128_t)before);
  v2d before_hi = (v2d)wasm_i64x2_extend_high_i32x4((v128_t)before);
  v2d g_lo = low_f64(g), g_hi = high_f64(g), zero = {0.0, 0.0};
  v2d beta2 = {m->beta2, m->beta2};
  v2d w_lo = select_f64(before_lo, beta2, zero), w_hi = select_f64(before_hi, beta2, zero);
  v2d r_lo = low_f64(r_old), r_hi = high_f64(r_old);
  v2d s_lo = w_lo * r_lo * r_lo + (1.0 - w_lo) * g_lo * g_lo;
  v2d s_hi = w_hi * r_hi * r_hi + (1.0 - w_hi) * g_hi * g_hi;
  v4 r = to_f32((v2d)wasm_f64x2_sqrt((v128_t)s_lo), (v2d)wasm_f64x2_sqrt((v128_t)s_hi));
  v2d eps = {m->eps, m->eps};
  v2d den_lo = low_f64(r) + eps, den_hi = high_f64(r) + eps;
  for (int k = 0; k < K; k++) {
    v2d beta = {m->beta1[k], m->beta1[k]};
    v2d b_lo = select_f64(before_lo, beta, zero), b_hi = select_f64(before_hi, beta, zero);
    v4 old = block[slots + k][v];
    v4 mk = to_f32(b_lo * low_f64(old) + (1.0 - b_lo) * g_lo, b_hi * high_f64(old) + (1.0 - b_hi) * g_hi);
    block[slots + k][v] = mk;
    features_in[k][v] = to_f32(low_f64(mk) / den_lo, high_f64(mk) / den_hi);
  }
  features_in[K][v] = to_f32(g_lo / den_lo, g_hi / den_hi);
  if (m->log_rms > 0) { /* x_{K+2} = f32(log(max(r', e^-q)) / q), in float64 from the float32 r' */
    v4 scale;
    for (int l = 0; l < 4; l++) {
      const double rl = (double)r[l];
      scale[l] = (float)(log_f64(rl > m->log_floor ? rl : m->log_floor) / m->log_rms);
    }
    features_in[K + 1][v] = scale;
  }
  block[slots + K][v] = r;
  block[slots + K + 1][v] = select(seen, splat(1.0f), splat(0.0f));
  return seen;
}

/* `tanh-rms`'s step count and `decay` (docs/optimizer-math.md §6) for one vector of 4 coordinates,
 * after `moments` (its slots [c_lo, c_hi] follow r and z): reads the step count t from the two
 * base-256 digits, each clamped to [0, 255] and then truncated (the same as clamping its floor, for
 * any finite value), writes t' = min(t + 1, 65535) where `seen`, else 0, back as digits, and returns
 * the factor min(1, (T / t')^d), 1 without a decay (a `gain` alone keeps the count). It is exactly
 * 1 for t' <= T, and when no lane is beyond T nothing more is computed: every step then equals
 * plain `tanh-rms`'s bit for bit. Elsewhere 2^e with
 * e = d (log2 T - log2 t') in float64, all in vectors: t' = 2^k m exactly, m in [1, 2), whose
 * float32 log (1 ulp of log m < ln 2: 6e-8 absolute) is the one inexact input; e = n + f exactly
 * (n = round(e), |f| <= 1/2, f then rounded to float32: 3e-8), so the float32 2^f (exp2_approx,
 * 2.2 ulp) times the exact 2^n is within ~3e-7 relative (decay.test.ts checks every t'). */
static inline v4 decay(const struct model *m, v4i seen, int v) {
  const int row = 2 * m->layers * m->hidden + m->moments + 2;
  v4i lo = (v4i)wasm_i32x4_trunc_sat_f32x4((v128_t)clamp(block[row][v], 0.0f, 255.0f));
  v4i hi = (v4i)wasm_i32x4_trunc_sat_f32x4((v128_t)clamp(block[row + 1][v], 0.0f, 255.0f));
  v4i t = (v4i)wasm_i32x4_min((v128_t)((hi << 8) + lo + 1), wasm_i32x4_splat(MAX_STEP_COUNT)) & seen;
  block[row][v] = __builtin_convertvector(t & 255, v4);
  block[row + 1][v] = __builtin_convertvector(t >> 8, v4);
  if (m->decay_after == 0) return splat(1.0f);
  v4i late = t > m->decay_after;
  if (!wasm_v128_any_true((v128_t)late)) return splat(1.0f);
  /* t' = 0 (unseen) reads as 1 here: its lane is not late, this only keeps the numbers tame. */
  v4i bits = (v4i)__builtin_convertvector((v4i)wasm_i32x4_max((v128_t)t, wasm_i32x4_splat(1)), v4);
  v4 k = __builtin_convertvector((bits >> 23) - 127, v4);
  v4 log_m = log_positive((v4)((bits & 0x007fffff) | 0x3f800000));
  v2d d = {m->decay_power, m->decay_power}, log2_after = {m->decay_log2_after, m->decay_log2_after};
  v2d e_lo = d * (log2_after - (low_f64(k) + low_f64(log_m) * 1.4426950408889634));
  v2d e_hi = d * (log2_after - (high_f64(k) + high_f64(log_m) * 1.4426950408889634));
  v2d n_lo = (v2d)wasm_f64x2_nearest((v128_t)e_lo), n_hi = (v2d)wasm_f64x2_nearest((v128_t)e_hi);
  v4 two_n = (v4)(((v4i)wasm_i32x4_trunc_sat_f32x4((v128_t)to_f32(n_lo, n_hi)) + 127) << 23);
  return select(late, exp2_approx(to_f32(e_lo - n_lo, e_hi - n_hi)) * two_n, splat(1.0f));
}

/* Features `log-sign` (log|g| / p in float32 as PyTorch, the threshold compared as float64; e^p g
 * in float64, rounded once, finite for any p) and `none`, for one vector. */
static inline void log_sign(const struct model *m, v4 g, int v) {
  v4 a = absolute(g);
  v4i big = a >= m->threshold;
  v4 one = (v4)(((v4i)g & (int32_t)0x80000000) | 0x3f800000); /* sign(g); g != 0 where big */
  v2d exp_p = {m->exp_p, m->exp_p};
  v4 scaled = to_f32(low_f64(g) * exp_p, high_f64(g) * exp_p);
  features_in[0][v] = select(big, log_positive(select(big, a, splat(1.0f))) / m->p, splat(-1.0f));
  features_in[1][v] = select(big, one, scaled);
}

/* The cell update for one vector from its gate pre-activations, i, f and o scaled by -log2(e) (§5):
 * c' = sigmoid(f) c + sigmoid(i) tanh(g) and h' = sigmoid(o) tanh(c'), as
 * c / (1 + 2^tf) + Pg / ((1 + 2^ti) Qg) and Pc / ((1 + 2^to) Qc): three divisions instead of five
 * (two for c', so that no product of c with a denominator can overflow). */
static inline v4 cell_update(v4 ti, v4 tf, v4 g, v4 to, v4 *c) {
  v4 pg, qg, pc, qc;
  tanh_parts(g, &pg, &qg);
  v4 c_new = *c / (1.0f + exp2_approx(tf)) + pg / ((1.0f + exp2_approx(ti)) * qg);
  *c = c_new;
  tanh_parts(c_new, &pc, &qc);
  return pc / ((1.0f + exp2_approx(to)) * qc);
}

/* One LSTM cell over the block (docs/optimizer-math.md §5): cell_in holds [x; h_old] (in + H rows);
 * writes c' into block and h' into hidden_new. With `head`, also returns the head's
 * y = b_out + sum_u w_out[u] h'_u in out[0..1]. */
static inline void cell(const struct model *m, int k, int in, v4 *head_out) {
  const int H = m->hidden, width = in + H;
  const float *w = m->params + m->cell[k], *bias = m->params + m->cell_bias[k];
  const int c_row = (2 * k + 1) * H;
  const float *head_w = m->params + m->head;
  v4 y0 = load_splat(head_w + H), y1 = y0;
  for (int u = 0; u < H; u++, w += 4 * width) {
    v4 i0 = load_splat(bias + 4 * u), f0 = load_splat(bias + 4 * u + 1);
    v4 g0 = load_splat(bias + 4 * u + 2), o0 = load_splat(bias + 4 * u + 3);
    v4 i1 = i0, f1 = f0, g1 = g0, o1 = o0;
    for (int j = 0; j < width; j++) {
      const v4 x0 = cell_in[j][0], x1 = cell_in[j][1];
      const float *wj = w + 4 * j;
      v4 wi = load_splat(wj), wf = load_splat(wj + 1), wg = load_splat(wj + 2), wo = load_splat(wj + 3);
      i0 += wi * x0;
      i1 += wi * x1;
      f0 += wf * x0;
      f1 += wf * x1;
      g0 += wg * x0;
      g1 += wg * x1;
      o0 += wo * x0;
      o1 += wo * x1;
    }
    v4 h0 = cell_update(i0, f0, g0, o0, &block[c_row + u][0]);
    v4 h1 = cell_update(i1, f1, g1, o1, &block[c_row + u][1]);
    hidden_new[u][0] = h0;
    hidden_new[u][1] = h1;
    if (head_out) {
      v4 wu = load_splat(head_w + u);
      y0 += wu * h0;
      y1 += wu * h1;
    }
  }
  if (head_out) {
    head_out[0] = y0;
    head_out[1] = y1;
  }
}

/* All-ones lanes where x is NaN or ±Infinity (its exponent all ones). */
static inline v4i non_finite(v4 x) { return ((v4i)x & 0x7f800000) == 0x7f800000; }

/* One step for n coordinates: grads [n], state [n, S] (stepped in place), updates [n]. Returns -1
 * when every update and new state value is finite, else the first coordinate of the first block of
 * BLOCK that holds one (all blocks are still computed): callers need not scan the results again. */
EXPORT("l2o_step") int32_t l2o_step(const struct model *m, const float *grads, float *state, float *updates, int n) {
  const int S = m->state, H = m->hidden, L = m->layers;
  int32_t first_bad = -1;
  for (int j0 = 0; j0 < n; j0 += BLOCK) {
    const int count = n - j0 < BLOCK ? n - j0 : BLOCK;
    float *rows = state + (int64_t)j0 * S;
    load_block(rows, S, count);
    v4 g[2] = {{0}, {0}};
    for (int l = 0; l < count; l++) g[l >> 2][l & 3] = grads[j0 + l];
    v4i seen[2] = {{-1, -1, -1, -1}, {-1, -1, -1, -1}};
    for (int v = 0; v < 2; v++) {
      if (m->feature_kind == FEATURES_LOG_SIGN) log_sign(m, g[v], v);
      else if (m->feature_kind == FEATURES_NONE) features_in[0][v] = g[v];
      else seen[v] = moments(m, g[v], v);
    }
    /* The step count and `decay` (only with `moments`, so `seen` is defined): one branch per block
     * without them. */
    v4 factor[2];
    if (m->counted) factor[0] = decay(m, seen[0], 0), factor[1] = decay(m, seen[1], 1);
    int in = m->features;
    if (m->input > 0) {
      /* ELU input layer (§4), float32, sums in input order. */
      const float *w = m->params + m->input_weight, *b = m->params + m->input_bias;
      for (int e = 0; e < m->input; e++)
        for (int v = 0; v < 2; v++) {
          v4 a = load_splat(b + e);
          for (int f = 0; f < in; f++) a += load_splat(w + e * in + f) * features_in[f][v];
          cell_in[e][v] = select(a > 0.0f, a, expm1_negative(a));
        }
      in = m->input;
    } else {
      for (int f = 0; f < in; f++) cell_in[f][0] = features_in[f][0], cell_in[f][1] = features_in[f][1];
    }
    v4 y[2];
    for (int k = 0; k < L; k++) {
      const int h_row = 2 * k * H;
      for (int u = 0; u < H; u++) cell_in[in + u][0] = block[h_row + u][0], cell_in[in + u][1] = block[h_row + u][1];
      cell(m, k, in, k == L - 1 ? y : 0);
      for (int u = 0; u < H; u++) {
        block[h_row + u][0] = cell_in[u][0] = hidden_new[u][0];
        block[h_row + u][1] = cell_in[u][1] = hidden_new[u][1];
      }
      in = H;
    }
    store_block(rows, S, count);
    /* Lanes past `count` hold a zero state stepped with a zero gradient: finite, so the whole
     * block can be tested. */
    v4i bad = {0, 0, 0, 0};
    for (int r = 0; r < S; r++) bad |= non_finite(block[r][0]) | non_finite(block[r][1]);
    for (int v = 0; v < 2; v++) {
      v4 out = m->output_kind == OUTPUT_LINEAR ? y[v] * m->scale : tanh_approx(y[v]) * m->scale;
      if (m->output_kind == OUTPUT_TANH_RMS) out = out * rms_power(m->power, block[2 * L * H + m->moments][v]); /* r' */
      /* The factor is a float32, so the float32 product is the float64 one rounded once (§6). */
      if (m->decay_after != 0) out = out * factor[v];
      out = select(seen[v], out, splat(0.0f)); /* the zero-gradient rule (§6): exactly +0 */
      bad |= non_finite(out);
      for (int l = 0; l < 4 && 4 * v + l < count; l++) updates[j0 + 4 * v + l] = out[l];
    }
    if (first_bad < 0 && (bad[0] | bad[1] | bad[2] | bad[3])) first_bad = j0;
  }
  return first_bad;
}
