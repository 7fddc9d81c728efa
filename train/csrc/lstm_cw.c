/* Inference step of the coordinatewise LSTM optimizer for train/'s evaluation and meta-training
 * (docs/optimizer-math.md), compiled on first use by train/kernel.py with the machine's C
 * compiler and loaded with ctypes. Same math as LSTMOptimizer.fast_forward, float32 rounding and
 * polynomial exp and log aside (relative error ~1e-7; the logRms feature and the tanh-rms output's
 * r'^power use the log), LANES coordinates at a time in SIMD registers (GCC/Clang vector
 * extensions, float64 vectors for the moments), which on CPU is several times faster than torch's
 * one op per gate.
 *
 * The state is feature-major, [S, ld] (row r of coordinate j at state[r*ld + j]), updated in place.
 * Packed parameters, in this order: input.weight [E, F] and input.bias [E] (when E > 0); per layer
 * k, [W_ih | W_hh] as one row-major [4H, in_k + H] block and b_ih + b_hh [4H]; head.weight [H],
 * head.bias [1].
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#define LANES 16
#else
#define LANES 8
#endif
#define MAXW 128 /* max(H, E, F) */

typedef float vf __attribute__((vector_size(4 * LANES)));
typedef int32_t vi __attribute__((vector_size(4 * LANES)));
typedef double vd __attribute__((vector_size(8 * LANES)));
typedef int64_t vl __attribute__((vector_size(8 * LANES)));

enum { FEAT_LOG_SIGN = 0, FEAT_NONE = 1, FEAT_MOMENTS = 2 };
enum { OUT_LINEAR = 0, OUT_TANH = 1, OUT_TANH_RMS = 2 };

static inline vf splat(float x) { return (vf){0} + x; }
static inline vd splatd(double x) { return (vd){0} + x; }
static inline vd tod(vf x) { return __builtin_convertvector(x, vd); }
static inline vf tof(vd x) { return __builtin_convertvector(x, vf); }
static inline vf vsel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
static inline vf vclamp(vf x, float lo, float hi) {
  x = vsel(x < lo, splat(lo), x);
  return vsel(x > hi, splat(hi), x);
}

/* exp(x) for x in [-60, 60]: round x/ln2 with the 1.5·2^23 trick, Cephes' expf polynomial on the
 * remainder, and the power of two built in the exponent bits. */
static inline vf vexp(vf x) {
  const float magic = 12582912.f;
  vf t = x * 1.44269504088896341f + magic;
  vi n = (vi)t - (vi)splat(magic);
  vf nf = t - magic;
  vf r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
  vf q = splat(1.9875691500e-4f);
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * r * r + r + 1.f;
  return q * (vf)((n + 127) << 23);
}

/* log(x) for normal x > 0: x = 2^e m with m in [sqrt(1/2), sqrt(2)), Cephes' logf polynomial on
 * m - 1 (relative error ~1e-7). Callers keep x >= FLT_MIN. */
static inline vf vlog(vf x) {
  vi xi = (vi)x;
  vi e = ((xi >> 23) & 0xff) - 126;
  vf m = (vf)((xi & 0x007fffff) | 0x3f000000); /* in [0.5, 1) */
  vi low = m < 0.70710678118654752f;
  e = e + low; /* low lanes are -1 */
  m = vsel(low, m + m, m) - 1.f;
  vf z = m * m;
  vf y = splat(7.0376836292e-2f);
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  vf ef = __builtin_convertvector(e, vf);
  y = y * m * z + ef * -2.12194440e-4f - 0.5f * z;
  return m + y + ef * 0.693359375f;
}

static inline vf vsigmoid(vf x) { return 1.f / (1.f + vexp(-vclamp(x, -30.f, 30.f))); }

static inline vf vtanh(vf x) {
  vi neg = x < 0.f;
  vf a = vclamp(vsel(neg, -x, x), 0.f, 15.f);
  vf e = vexp(-2.f * a);
  vf t = (1.f - e) / (1.f + e);
  return vsel(neg, -t, t);
}

/* out[r] = b[r] + sum_k w[r, k] in[k] for r < rows (a multiple of 4): four rows at a time, so
 * that four independent accumulators hide the FMA latency. */
static inline void matvec(const float *w, const float *b, const vf *in, int cols, vf *out, int rows) {
  for (int r = 0; r < rows; r += 4) {
    const float *w0 = w + (int64_t)r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
    vf a0 = splat(b[r]), a1 = splat(b[r + 1]), a2 = splat(b[r + 2]), a3 = splat(b[r + 3]);
    for (int k = 0; k < cols; k++) {
      vf v = in[k];
      a0 += w0[k] * v;
      a1 += w1[k] * v;
      a2 += w2[k] * v;
      a3 += w3[k] * v;
    }
    out[r] = a0;
    out[r + 1] = a1;
    out[r + 2] = a2;
    out[r + 3] = a3;
  }
}

static inline vf load(const float *row, int nb) {
  vf v = {0};
  if (nb == LANES) memcpy(&v, row, sizeof v);
  else for (int l = 0; l < nb; l++) v[l] = row[l];
  return v;
}

static inline void store(float *row, vf v, int nb) {
  if (nb == LANES) memcpy(row, &v, sizeof v);
  else for (int l = 0; l < nb; l++) row[l] = v[l];
}

int l2o_lstm_cw_step(int layers, int hidden, int feat_in, int input_size, int feature_kind, float p,
                     int k_moments, const double *beta1, double beta2, double eps, double log_rms,
                     int output_kind, float out_scale, double out_power, int decay_after,
                     double decay_power, const float *params,
                     const float *grads, float *state, int64_t ld, float *updates, int64_t n) {
  /* the logRms feature's floor e^-q (rounded up to a float at least FLT_MIN) and 1 / q */
  const float floor_q = log_rms > 0.0 ? fmaxf((float)exp(-log_rms), 1.17549435e-38f) : 1.f;
  const float inv_q = log_rms > 0.0 ? (float)(1.0 / log_rms) : 0.f;
  const float power = (float)out_power;
  const int H = hidden, F = feat_in, E = input_size;
  if (H > MAXW || F > MAXW || E > MAXW || layers > 16) return -1;
  const int lstm = 2 * layers * H;
  const float exp_p = (float)exp((double)p);
  const double p_threshold = exp(-(double)p); /* compared in float64, as the contract says */
  vf x[MAXW], xe[MAXW], xin[2 * MAXW], h[MAXW], c[MAXW], gates[4 * MAXW];
  for (int64_t j0 = 0; j0 < n; j0 += LANES) {
    const int nb = (int)((n - j0) < LANES ? (n - j0) : LANES);
    vf g = load(grads + j0, nb), seen = splat(1.f), rms = splat(0.f);
    double decay[LANES];
    if (feature_kind == FEAT_NONE) {
      x[0] = g;
    } else if (feature_kind == FEAT_LOG_SIGN) {
      for (int l = 0; l < LANES; l++) {
        float a = fabsf(g[l]);
        int big = (double)a >= p_threshold;
        x[0][l] = big ? logf(a) / p : -1.f;
        x[1][l] = big ? (g[l] > 0.f ? 1.f : (g[l] < 0.f ? -1.f : 0.f)) : g[l] * exp_p;
      }
    } else { /* moments, in float64 from float32 operands, rounded once (docs/optimizer-math.md) */
      const int K = k_moments;
      float *rrow = state + (int64_t)(lstm + K) * ld + j0;
      float *zrow = state + (int64_t)(lstm + K + 1) * ld + j0;
      vf zo = load(zrow, nb), ro = load(rrow, nb);
      vl had = tod(zo) > 0.0; /* lanes with a history: the averages' weights apply */
      vd gd = tod(g), rd = tod(ro);
      vd wd = (vd)((vl)splatd(beta2) & had);
      vd sq = wd * rd * rd + (1.0 - wd) * gd * gd, sr;
      for (int l = 0; l < LANES; l++) sr[l] = __builtin_sqrt(sq[l]);
      vf rn = tof(sr);
      vd den = tod(rn) + eps;
      seen = vsel((zo > 0.f) | (g != 0.f), splat(1.f), splat(0.f));
      for (int k = 0; k < K; k++) {
        float *mrow = state + (int64_t)(lstm + k) * ld + j0;
        vd w = (vd)((vl)splatd(beta1[k]) & had);
        vf mn = tof(w * tod(load(mrow, nb)) + (1.0 - w) * gd);
        x[k] = tof(tod(mn) / den);
        store(mrow, mn, nb);
      }
      x[K] = tof(gd / den);
      if (log_rms > 0.0) /* the gradient's scale: log(max(r, e^-q)) / q */
        x[K + 1] = vlog(vsel(rn > floor_q, rn, splat(floor_q))) * inv_q;
      store(rrow, rn, nb);
      store(zrow, seen, nb);
      rms = rn;
      if (decay_after > 0) { /* tanh-rms's decay: the step count t' in two base-256 digits */
        float *lo = state + (int64_t)(lstm + K + 2) * ld + j0, *hi = lo + ld;
        for (int l = 0; l < nb; l++) {
          double t = 256.0 * fmin(fmax(floor((double)hi[l]), 0.0), 255.0) +
                     fmin(fmax(floor((double)lo[l]), 0.0), 255.0);
          t = seen[l] != 0.f ? fmin(t + 1.0, 65535.0) : 0.0;
          lo[l] = (float)fmod(t, 256.0);
          hi[l] = (float)floor(t / 256.0);
          decay[l] = t > 0.0 ? pow(fmin((double)decay_after / t, 1.0), decay_power) : 1.0;
        }
      }
    }
    const float *q = params;
    vf *cur = x;
    int in = F;
    if (E > 0) {
      const float *w = q, *b = q + E * F;
      q += E * F + E;
      for (int e = 0; e < E; e++) {
        vf acc = splat(b[e]);
        for (int f = 0; f < F; f++) acc += w[e * F + f] * x[f];
        vf em1 = vexp(vclamp(acc, -60.f, 0.f)) - 1.f;
        /* expm1 near 0 loses relative precision in exp(x) - 1; use its Taylor series there */
        vf small = acc * (1.f + acc * (0.5f + acc * (1.f / 6.f + acc * (1.f / 24.f))));
        em1 = vsel(acc > -1e-2f, small, em1);
        xe[e] = vsel(acc > 0.f, acc, em1);
      }
      cur = xe;
      in = E;
    }
    for (int k = 0; k < layers; k++) {
      const float *w = q, *b = q + 4 * H * (in + H);
      q += 4 * H * (in + H) + 4 * H;
      float *hrow = state + (int64_t)(2 * k * H) * ld + j0;
      float *crow = state + (int64_t)((2 * k + 1) * H) * ld + j0;
      for (int u = 0; u < H; u++) {
        h[u] = load(hrow + (int64_t)u * ld, nb);
        c[u] = load(crow + (int64_t)u * ld, nb);
      }
      memcpy(xin, cur, sizeof(vf) * in);
      memcpy(xin + in, h, sizeof(vf) * H);
      matvec(w, b, xin, in + H, gates, 4 * H);
      for (int u = 0; u < H; u++) {
        vf ig = vsigmoid(gates[u]), fg = vsigmoid(gates[H + u]);
        vf gg = vtanh(gates[2 * H + u]), og = vsigmoid(gates[3 * H + u]);
        c[u] = fg * c[u] + ig * gg;
        h[u] = og * vtanh(c[u]);
        store(hrow + (int64_t)u * ld, h[u], nb);
        store(crow + (int64_t)u * ld, c[u], nb);
      }
      memcpy(xe, h, sizeof(vf) * H);
      cur = xe;
      in = H;
    }
    const float *hw = q;
    vf y = splat(q[H]);
    for (int u = 0; u < H; u++) y += hw[u] * cur[u];
    if (output_kind != OUT_LINEAR) y = vtanh(y);
    y = y * out_scale;
    if (output_kind == OUT_TANH_RMS) { /* times r'^power = exp(power log r'); 0 where r' is 0 */
      vi tiny = rms < 1e-30f;
      vf pw = vexp(vclamp(vlog(vsel(tiny, splat(1.f), rms)) * power, -60.f, 60.f));
      pw = vsel(tiny, splat(0.f), pw);
      for (int l = 0; l < LANES; l++) /* rare: 0 < r' < 1e-30 */
        if (tiny[l] && rms[l] > 0.f) pw[l] = (float)pow((double)rms[l], out_power);
      y = y * pw;
    }
    if (decay_after > 0 && feature_kind == FEAT_MOMENTS)
      for (int l = 0; l < nb; l++) y[l] = (float)((double)y[l] * decay[l]);
    if (feature_kind == FEAT_MOMENTS) y = vsel(seen == 0.f, splat(0.f), y);
    store(updates + j0, y, nb);
  }
  return 0;
}

/* The same step over a blocked state [ceil(n / block), s, block]: each block's rows are contiguous,
 * so a step's working set stays in cache whatever n is. s is the state size S, which may hold slots
 * after the ones this kernel steps (a gain's, stepped by the caller). */
int l2o_lstm_cw_blocks(int layers, int hidden, int feat_in, int input_size, int feature_kind,
                       float p, int k_moments, const double *beta1, double beta2, double eps,
                       double log_rms, int output_kind, float out_scale, double out_power,
                       int decay_after, double decay_power, const float *params,
                       const float *grads, float *state, int64_t block, int64_t s, float *updates,
                       int64_t n) {
  for (int64_t b = 0; b * block < n; b++) {
    const int64_t j = b * block, m = n - j < block ? n - j : block;
    int rc = l2o_lstm_cw_step(layers, hidden, feat_in, input_size, feature_kind, p, k_moments, beta1,
                              beta2, eps, log_rms, output_kind, out_scale, out_power, decay_after,
                              decay_power, params, grads + j,
                              state + b * s * block, block, updates + j, m);
    if (rc != 0) return rc;
  }
  return 0;
}
