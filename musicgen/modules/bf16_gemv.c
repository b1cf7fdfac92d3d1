/* bf16-weight matrix products for few rows on AVX2 + FMA CPUs (musicgen.modules.bf16_gemv).
 *
 * y[m, n] = sum_k x[m, k] * w[n, k] for float32 x [M, K] (row stride ldx), bfloat16 w [N, K]
 * (contiguous, stored as uint16) and float32 y [M, N] (row stride ldy).
 *
 * Why: CPUs without bf16 arithmetic (AVX2) run PyTorch's bf16 linear through a generic path that is
 * bound by converting and multiplying, not by reading memory. Here a bf16 weight becomes a float32 by
 * a 16-bit left shift (bf16 is the top half of a float32), eight at a time, and is multiplied with
 * fused multiply-adds in float32, so a decode step reads half the bytes of float32 weights at close
 * to the speed float32 weights are read. Each output is one dot product accumulated in float32 in a
 * fixed order (eight lanes, then the lanes summed, then the tail), so a row's result does not depend
 * on the other rows or on the number of threads.
 */
#include <immintrin.h>
#include <stdint.h>

static inline __m256 load8(const uint16_t *p) {
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

static inline float bf16_to_float(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* Rows n0 .. n0+3 of w against rows m0, m0+1 of x (mcount 1 or 2). */
static void block4(const float *x, int64_t ldx, const uint16_t *w, float *y, int64_t ldy,
                   int64_t m0, int64_t mcount, int64_t n0, int64_t K) {
    const uint16_t *w0 = w + (n0 + 0) * K, *w1 = w + (n0 + 1) * K;
    const uint16_t *w2 = w + (n0 + 2) * K, *w3 = w + (n0 + 3) * K;
    const float *xa = x + m0 * ldx, *xb = x + (m0 + (mcount > 1 ? 1 : 0)) * ldx;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(),
           b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 xva = _mm256_loadu_ps(xa + k), xvb = _mm256_loadu_ps(xb + k);
        __m256 v0 = load8(w0 + k), v1 = load8(w1 + k), v2 = load8(w2 + k), v3 = load8(w3 + k);
        a0 = _mm256_fmadd_ps(v0, xva, a0); b0 = _mm256_fmadd_ps(v0, xvb, b0);
        a1 = _mm256_fmadd_ps(v1, xva, a1); b1 = _mm256_fmadd_ps(v1, xvb, b1);
        a2 = _mm256_fmadd_ps(v2, xva, a2); b2 = _mm256_fmadd_ps(v2, xvb, b2);
        a3 = _mm256_fmadd_ps(v3, xva, a3); b3 = _mm256_fmadd_ps(v3, xvb, b3);
    }
    float sa[4] = {hsum(a0), hsum(a1), hsum(a2), hsum(a3)};
    float sb[4] = {hsum(b0), hsum(b1), hsum(b2), hsum(b3)};
    const uint16_t *ws[4] = {w0, w1, w2, w3};
    for (; k < K; ++k)
        for (int j = 0; j < 4; ++j) {
            float wv = bf16_to_float(ws[j][k]);
            sa[j] += wv * xa[k];
            sb[j] += wv * xb[k];
        }
    for (int j = 0; j < 4; ++j) {
        y[m0 * ldy + n0 + j] = sa[j];
        if (mcount > 1) y[(m0 + 1) * ldy + n0 + j] = sb[j];
    }
}

/* One row n of w against one row m of x: the same arithmetic as one lane of block4. */
static float dot1(const float *xr, const uint16_t *wr, int64_t K) {
    __m256 a = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) a = _mm256_fmadd_ps(load8(wr + k), _mm256_loadu_ps(xr + k), a);
    float s = hsum(a);
    for (; k < K; ++k) s += bf16_to_float(wr[k]) * xr[k];
    return s;
}

void musicgen_bf16_gemv(const float *x, int64_t ldx, const uint16_t *w, float *y, int64_t ldy,
                        int64_t M, int64_t N, int64_t K, int threads) {
    int64_t nblocks = N / 4;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t b = 0; b < nblocks; ++b)
        for (int64_t m0 = 0; m0 < M; m0 += 2)
            block4(x, ldx, w, y, ldy, m0, M - m0 >= 2 ? 2 : 1, 4 * b, K);
    for (int64_t n = 4 * nblocks; n < N; ++n)
        for (int64_t m = 0; m < M; ++m) y[m * ldy + n] = dot1(x + m * ldx, w + n * K, K);
}
