/* The first layer of train/'s batched MLP tasks (tasks.MLPProblem), forward and weight gradient,
 * reading the minibatch's images as sparse rows. MNIST images are 81% zeros and Fashion-MNIST's
 * 50%, so skipping them does a fifth (a half) of the dense product's work, and nothing gathers the
 * minibatch into a dense [B, batch, 784] copy first. Compiled on first use by train/kernel.py.
 *
 * The pool is CSR: image i's nonzero pixels are cols[rowptr[i] .. rowptr[i + 1]) with values vals[..].
 * Instance b's minibatch is idx[b * batch .. (b + 1) * batch) (image numbers), and its first-layer
 * weight W_b is row-major [784, H] at theta + b * ld (theta's first 784 * H floats per instance).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16
#define MAXV 4 /* hidden units up to MAXV * LANES */

typedef float vf __attribute__((vector_size(4 * LANES)));

/* Rows of H floats <-> rows of nv whole vectors (zero-padded), so that the inner loops are whole
 * SIMD vectors with no tail. */
static void pad_rows(const float *src, int64_t rows, int64_t H, vf *dst, int nv) {
  memset(dst, 0, sizeof(vf) * nv * rows);
  for (int64_t r = 0; r < rows; r++) memcpy(dst + r * nv, src + r * H, sizeof(float) * H);
}

static void unpad_rows(const vf *src, int64_t rows, int64_t H, float *dst, int nv) {
  for (int64_t r = 0; r < rows; r++) memcpy(dst + r * H, src + r * nv, sizeof(float) * H);
}

/* Scratch for fan_in rows of H units as whole vectors: sets *nv, the vectors a row takes. NULL if
 * H > MAXV * LANES or memory runs out. */
static vf *padded_scratch(int64_t fan_in, int64_t H, int *nv) {
  *nv = (int)((H + LANES - 1) / LANES);
  return *nv > MAXV ? NULL : aligned_alloc(sizeof(vf), sizeof(vf) * *nv * fan_in);
}

/* One image's sum of x[p] * W[p, :] over its nonzero pixels (k in [k0, k1)), in nv vectors: two
 * interleaved accumulators hide the FMA latency; nv is a constant where this is inlined. */
static inline __attribute__((always_inline)) void sparse_row(const int32_t *cols, const float *vals, int64_t k0,
                                                             int64_t k1, const vf *w, int nv, vf *acc) {
  vf a0[MAXV] = {{0}}, a1[MAXV] = {{0}};
  int64_t k = k0;
  for (; k + 1 < k1; k += 2) {
    const vf *r0 = w + (int64_t)cols[k] * nv, *r1 = w + (int64_t)cols[k + 1] * nv;
    const float v0 = vals[k], v1 = vals[k + 1];
    for (int j = 0; j < nv; j++) {
      a0[j] += v0 * r0[j];
      a1[j] += v1 * r1[j];
    }
  }
  if (k < k1)
    for (int j = 0; j < nv; j++) a0[j] += vals[k] * w[(int64_t)cols[k] * nv + j];
  for (int j = 0; j < nv; j++) acc[j] = a0[j] + a1[j];
}

static inline __attribute__((always_inline)) void forward_instance(const int64_t *rowptr, const int32_t *cols,
                                                                   const float *vals, const int64_t *idx,
                                                                   int64_t batch, const vf *w, int64_t H, int nv,
                                                                   float *out) {
  for (int64_t e = 0; e < batch; e++) {
    vf acc[MAXV];
    const int64_t img = idx[e];
    sparse_row(cols, vals, rowptr[img], rowptr[img + 1], w, nv, acc);
    memcpy(out + e * H, acc, sizeof(float) * H);
  }
}

/* out[b, e, :] = sum over image idx[b, e]'s nonzero pixels p of x[p] * W_b[p, :]   (out [B, batch, H]).
 * Returns -1 if H > MAXV * LANES or memory runs out. */
int l2o_sparse_forward(const int64_t *rowptr, const int32_t *cols, const float *vals, const int64_t *idx,
                       int64_t n_inst, int64_t batch, const float *theta, int64_t ld, int64_t fan_in,
                       int64_t hidden, float *out) {
  const int64_t H = hidden;
  int nv;
  vf *w = padded_scratch(fan_in, H, &nv);
  if (!w) return -1;
  for (int64_t b = 0; b < n_inst; b++) {
    pad_rows(theta + b * ld, fan_in, H, w, nv);
    const int64_t *ib = idx + b * batch;
    float *ob = out + b * batch * H;
    switch (nv) { /* each case a copy with nv constant */
      case 1: forward_instance(rowptr, cols, vals, ib, batch, w, H, 1, ob); break;
      case 2: forward_instance(rowptr, cols, vals, ib, batch, w, H, 2, ob); break;
      case 3: forward_instance(rowptr, cols, vals, ib, batch, w, H, 3, ob); break;
      default: forward_instance(rowptr, cols, vals, ib, batch, w, H, 4, ob); break;
    }
  }
  free(w);
  return 0;
}

static inline __attribute__((always_inline)) void grad_instance(const int64_t *rowptr, const int32_t *cols,
                                                                const float *vals, const int64_t *idx,
                                                                int64_t batch, const float *dz, int64_t H, int nv,
                                                                vf *g) {
  for (int64_t e = 0; e < batch; e++) {
    vf d[MAXV] = {{0}};
    memcpy(d, dz + e * H, sizeof(float) * H);
    const int64_t img = idx[e];
    for (int64_t k = rowptr[img]; k < rowptr[img + 1]; k++) {
      vf *row = g + (int64_t)cols[k] * nv;
      const float v = vals[k];
      for (int j = 0; j < nv; j++) row[j] += v * d[j];
    }
  }
}

/* grad_b[p, :] = sum over e, and over image idx[b, e]'s nonzero pixels p, of x[p] * dz[b, e, :]:
 * the gradient of W_b (row-major [fan_in, H] at grad + b * ld, overwritten; rows of pixels that no
 * image of the minibatch lights get 0). Returns -1 if H > MAXV * LANES or memory runs out. */
int l2o_sparse_weight_grad(const int64_t *rowptr, const int32_t *cols, const float *vals, const int64_t *idx,
                           int64_t n_inst, int64_t batch, const float *dz, int64_t fan_in, int64_t hidden,
                           float *grad, int64_t ld) {
  const int64_t H = hidden;
  int nv;
  vf *g = padded_scratch(fan_in, H, &nv);
  if (!g) return -1;
  for (int64_t b = 0; b < n_inst; b++) {
    memset(g, 0, sizeof(vf) * nv * fan_in);
    const int64_t *ib = idx + b * batch;
    const float *db = dz + b * batch * H;
    switch (nv) {
      case 1: grad_instance(rowptr, cols, vals, ib, batch, db, H, 1, g); break;
      case 2: grad_instance(rowptr, cols, vals, ib, batch, db, H, 2, g); break;
      case 3: grad_instance(rowptr, cols, vals, ib, batch, db, H, 3, g); break;
      default: grad_instance(rowptr, cols, vals, ib, batch, db, H, 4, g); break;
    }
    unpad_rows(g, fan_in, H, grad + b * ld, nv);
  }
  free(g);
  return 0;
}
