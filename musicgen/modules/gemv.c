/* Matrix products for few rows on AVX2 + FMA CPUs (musicgen.modules.gemv): the weight-bound products
 * of a decode step, where a handful of activation rows meet every weight matrix once per step.
 *
 * y[m, n] = sum_k x[m, k] * w[n, k] for float32 x [M, K] (row stride ldx), weights w [N, K]
 * (contiguous; bfloat16 stored as uint16, or float32) and y [M, N] (row stride ldy).
 *
 * musicgen_bf16_gemv: CPUs without bf16 arithmetic (AVX2) run PyTorch's bf16 linear through a
 * generic path that is bound by converting and multiplying, not by reading memory. Here a bf16
 * weight becomes a float32 by a 16-bit left shift (bf16 is the top half of a float32), eight at a
 * time, and is multiplied with fused multiply-adds in float32, so a decode step reads half the bytes
 * of float32 weights at close to the speed float32 weights are read. Each output is one dot product
 * accumulated in float32 in a fixed order (four partial sums of eight lanes, then summed, then the
 * tail), so a row's result does not depend on the other rows or on the number of threads. Threads
 * split the output rows n. (A variant reading four weight rows at once was about 12 % slower on the
 * 2-core AMD EPYC.)
 *
 * musicgen_f32_gemv: float32 weights. MKL's sgemm at 2-16 rows reads the weights at a third to a
 * half of the machine's read bandwidth on the AMD EPYC measured (benchmarks/generation.py); here a
 * register block of weight rows x activation rows (4 x 2, or 2 x 4 for groups of four rows, 1 x 1
 * at the edges) is accumulated with one 8-lane FMA chain per output, so each weight vector loaded
 * feeds 2-4 FMAs and each activation vector 2-4. Every output is the same sequence of operations
 * whatever the block it falls in (one chain over k in steps of 8, ascending; a horizontal sum; the
 * scalar tail in order), so results are batch- and thread-invariant bit for bit.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

static inline __m256 load8(const uint16_t *p) {
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

static inline float bf16_to_float(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

/* float -> bf16 rounded to nearest even, NaN -> quiet NaN: PyTorch's conversion, bit for bit. */
static inline uint16_t float_to_bf16(float f) {
    union { uint32_t u; float f; } v;
    v.f = f;
    if (f != f) return 0x7FC0;
    return (uint16_t)((v.u + 0x7FFF + ((v.u >> 16) & 1)) >> 16);
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* One weight row against two x rows (xa, xb; the same row twice when M is odd): 32 weights per
 * iteration into four partial sums per x row, so four independent FMA chains per row hide the FMA
 * latency while the weights stream through once, in order. Row a's result uses only xa. */
static void row2(const float *xa, const float *xb, const uint16_t *w, float *ya, float *yb, int64_t K) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
        __m256 v0 = load8(w + k), v1 = load8(w + k + 8), v2 = load8(w + k + 16), v3 = load8(w + k + 24);
        a0 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(xa + k), a0);
        b0 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(xb + k), b0);
        a1 = _mm256_fmadd_ps(v1, _mm256_loadu_ps(xa + k + 8), a1);
        b1 = _mm256_fmadd_ps(v1, _mm256_loadu_ps(xb + k + 8), b1);
        a2 = _mm256_fmadd_ps(v2, _mm256_loadu_ps(xa + k + 16), a2);
        b2 = _mm256_fmadd_ps(v2, _mm256_loadu_ps(xb + k + 16), b2);
        a3 = _mm256_fmadd_ps(v3, _mm256_loadu_ps(xa + k + 24), a3);
        b3 = _mm256_fmadd_ps(v3, _mm256_loadu_ps(xb + k + 24), b3);
    }
    for (; k + 8 <= K; k += 8) {
        __m256 v0 = load8(w + k);
        a0 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(xa + k), a0);
        b0 = _mm256_fmadd_ps(v0, _mm256_loadu_ps(xb + k), b0);
    }
    float sa = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    float sb = hsum(_mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3)));
    for (; k < K; ++k) {
        float wk = bf16_to_float(w[k]);
        sa += wk * xa[k];
        sb += wk * xb[k];
    }
    *ya = sa;
    *yb = sb;
}

/* x_bf16 / y_bf16: x is read, y written, as bf16 (uint16) instead of float32, which saves the
 * caller two dtype conversions per product when the activations are bf16. Returns 0, or -1 when the
 * float32 copy of a bf16 x could not be allocated. */
int musicgen_bf16_gemv(const void *x, int x_bf16, int64_t ldx, const uint16_t *w, void *y, int y_bf16,
                       int64_t ldy, int64_t M, int64_t N, int64_t K, int threads) {
    const float *xf = (const float *)x;
    float *copy = NULL;
    if (x_bf16) {
        copy = (float *)malloc((size_t)(M * K > 0 ? M * K : 1) * sizeof(float));
        if (!copy) return -1;
        for (int64_t m = 0; m < M; ++m)
            for (int64_t k = 0; k < K; ++k) copy[m * K + k] = bf16_to_float(((const uint16_t *)x)[m * ldx + k]);
        xf = copy;
        ldx = K;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t n = 0; n < N; ++n)
        for (int64_t m = 0; m < M; m += 2) {
            int64_t m1 = m + 1 < M ? m + 1 : m;
            float ya, yb;
            row2(xf + m * ldx, xf + m1 * ldx, w + n * K, &ya, &yb, K);
            if (y_bf16) {
                ((uint16_t *)y)[m * ldy + n] = float_to_bf16(ya);
                ((uint16_t *)y)[m1 * ldy + n] = float_to_bf16(yb);
            } else {
                ((float *)y)[m * ldy + n] = ya;
                ((float *)y)[m1 * ldy + n] = yb;
            }
        }
    free(copy);
    return 0;
}

/* An NB x MB block: weight rows w[0..NB) (stride K) against x rows x[0..MB) (stride ldx), written to
 * y[r * ldy + i]. The per-output order is the one described at the top of this file. */
#define F32_BLOCK(NB, MB)                                                                            \
    static void f32_block_##NB##x##MB(const float *x, int64_t ldx, const float *w, int64_t K,        \
                                      float *y, int64_t ldy) {                                       \
        __m256 c[NB][MB];                                                                            \
        for (int i = 0; i < NB; ++i)                                                                 \
            for (int r = 0; r < MB; ++r) c[i][r] = _mm256_setzero_ps();                              \
        int64_t k = 0;                                                                               \
        for (; k + 8 <= K; k += 8) {                                                                 \
            __m256 v[NB];                                                                            \
            for (int i = 0; i < NB; ++i) v[i] = _mm256_loadu_ps(w + i * K + k);                      \
            for (int r = 0; r < MB; ++r) {                                                           \
                __m256 xr = _mm256_loadu_ps(x + r * ldx + k);                                        \
                for (int i = 0; i < NB; ++i) c[i][r] = _mm256_fmadd_ps(v[i], xr, c[i][r]);           \
            }                                                                                        \
        }                                                                                            \
        for (int i = 0; i < NB; ++i)                                                                 \
            for (int r = 0; r < MB; ++r) {                                                           \
                float s = hsum(c[i][r]);                                                             \
                for (int64_t j = k; j < K; ++j) s += w[i * K + j] * x[r * ldx + j];                  \
                y[r * ldy + i] = s;                                                                  \
            }                                                                                        \
    }
F32_BLOCK(4, 2)
F32_BLOCK(2, 4)
F32_BLOCK(4, 1)
F32_BLOCK(1, 4)
F32_BLOCK(1, 2)
F32_BLOCK(1, 1)

/* The x rows from m on against the weight rows [n, n + nb), nb in {4, 1}. */
static void f32_rows(const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t M,
                     int64_t n, int nb, int64_t K) {
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) {
        if (nb == 4) {
            f32_block_2x4(x + m * ldx, ldx, w + n * K, K, y + m * ldy + n, ldy);
            f32_block_2x4(x + m * ldx, ldx, w + (n + 2) * K, K, y + m * ldy + n + 2, ldy);
        } else {
            f32_block_1x4(x + m * ldx, ldx, w + n * K, K, y + m * ldy + n, ldy);
        }
    }
    for (; m + 2 <= M; m += 2) {
        if (nb == 4) f32_block_4x2(x + m * ldx, ldx, w + n * K, K, y + m * ldy + n, ldy);
        else f32_block_1x2(x + m * ldx, ldx, w + n * K, K, y + m * ldy + n, ldy);
    }
    for (; m < M; ++m) {
        if (nb == 4) f32_block_4x1(x + m * ldx, ldx, w + n * K, K, y + m * ldy + n, ldy);
        else f32_block_1x1(x + m * ldx, ldx, w + n * K, K, y + m * ldy + n, ldy);
    }
}

int musicgen_f32_gemv(const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t M,
                      int64_t N, int64_t K, int threads) {
    int64_t blocks = N / 4;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < blocks; ++b) f32_rows(x, ldx, w, y, ldy, M, b * 4, 4, K);
    for (int64_t n = blocks * 4; n < N; ++n) f32_rows(x, ldx, w, y, ldy, M, n, 1, K);
    return 0;
}
