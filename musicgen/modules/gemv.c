/* Matrix products for few rows on AVX2 + FMA CPUs (musicgen.modules.gemv): the weight-bound products
 * of a decode step, where a handful of activation rows meet every weight matrix once per step.
 *
 * y[m, n] = sum_k x[m, k] * w[n, k] for float32 x [M, K] (row stride ldx), weights w [N, K]
 * (contiguous; float32, or bfloat16 stored as uint16) and y [M, N] (row stride ldy; float32, or
 * bfloat16 for the bf16 entry point when asked).
 *
 * Why: MKL's sgemm at 2-16 rows reads float32 weights at a third to a half of the machine's read
 * bandwidth on the AMD EPYC measured (benchmarks/generation.py), and CPUs without bf16 arithmetic
 * (AVX2) run PyTorch's bf16 linear through a generic path bound by converting and multiplying. Here
 * blocks of four weight rows are walked in tiles of KT along k; each tile (bf16 widened to float32
 * once, by a 16-bit left shift: bf16 is the top half of a float32) meets the x rows two at a time in
 * a register block of 4 x 2 fused multiply-adds, so each weight vector loaded feeds two FMAs, each x
 * vector four, the tile and the x rows' tiles stay in L1, and the weights stream through once.
 *
 * Order: every output is one 8-lane FMA chain over k in steps of 8, ascending (held in a buffer
 * between tiles, which is exact), then a horizontal sum, then the scalar tail in order (no
 * contraction: compiled with -ffp-contract=off). That sequence is the same whatever block or pair an
 * output falls in, so results do not depend on the other rows, the row count or the number of
 * threads, bit for bit. Threads split the blocks of weight rows.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

static inline __m256 load8_f32(const float *p) { return _mm256_loadu_ps(p); }

static inline __m256 load8_bf16(const uint16_t *p) {
    __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

static inline float scalar_f32(float v) { return v; }

static inline float scalar_bf16(uint16_t h) {
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

/* K is walked in tiles of KT: a tile of four weight rows (4 KB in float32) stays in L1 while every
 * x row passes over it (a tile of M x rows: M KB), and the accumulators wait in a small buffer
 * between tiles. Saving and reloading an accumulator is exact, so tiling does not change the order. */
#define KT 256
/* Above this many x rows, a bf16 tile is widened into a float32 buffer once rather than in registers
 * once per pair of x rows. */
#define CONVERT_ONCE_ROWS 8

typedef float f32_w;
typedef uint16_t bf16_w;
/* Four weight rows w[i * ldw + k] (float32, or bf16 widened in registers) against x rows [0, M),
 * k in [k0, k1) (k1 - k0 a multiple of 8); acc[m * 4 + i] is the chain of output (m, n + i). */
#define TILE4(T)                                                                                     \
    static void tile4_##T(const float *x, int64_t ldx, const T##_w *w, int64_t ldw, int64_t M,      \
                          int64_t k0, int64_t k1, __m256 *acc) {                                     \
        int64_t m = 0;                                                                               \
        for (; m + 2 <= M; m += 2) {                                                                 \
            __m256 a0 = acc[m * 4], a1 = acc[m * 4 + 1], a2 = acc[m * 4 + 2], a3 = acc[m * 4 + 3];   \
            __m256 b0 = acc[m * 4 + 4], b1 = acc[m * 4 + 5], b2 = acc[m * 4 + 6], b3 = acc[m * 4 + 7]; \
            const float *xa = x + m * ldx, *xb = xa + ldx;                                           \
            for (int64_t k = k0; k < k1; k += 8) {                                                   \
                __m256 v0 = load8_##T(w + k), v1 = load8_##T(w + ldw + k);                           \
                __m256 v2 = load8_##T(w + 2 * ldw + k), v3 = load8_##T(w + 3 * ldw + k);             \
                __m256 p = _mm256_loadu_ps(xa + k), q = _mm256_loadu_ps(xb + k);                     \
                a0 = _mm256_fmadd_ps(v0, p, a0);                                                     \
                a1 = _mm256_fmadd_ps(v1, p, a1);                                                     \
                a2 = _mm256_fmadd_ps(v2, p, a2);                                                     \
                a3 = _mm256_fmadd_ps(v3, p, a3);                                                     \
                b0 = _mm256_fmadd_ps(v0, q, b0);                                                     \
                b1 = _mm256_fmadd_ps(v1, q, b1);                                                     \
                b2 = _mm256_fmadd_ps(v2, q, b2);                                                     \
                b3 = _mm256_fmadd_ps(v3, q, b3);                                                     \
            }                                                                                        \
            acc[m * 4] = a0, acc[m * 4 + 1] = a1, acc[m * 4 + 2] = a2, acc[m * 4 + 3] = a3;          \
            acc[m * 4 + 4] = b0, acc[m * 4 + 5] = b1, acc[m * 4 + 6] = b2, acc[m * 4 + 7] = b3;      \
        }                                                                                            \
        if (m < M) {                                                                                 \
            __m256 a0 = acc[m * 4], a1 = acc[m * 4 + 1], a2 = acc[m * 4 + 2], a3 = acc[m * 4 + 3];   \
            const float *xa = x + m * ldx;                                                           \
            for (int64_t k = k0; k < k1; k += 8) {                                                   \
                __m256 p = _mm256_loadu_ps(xa + k);                                                  \
                a0 = _mm256_fmadd_ps(load8_##T(w + k), p, a0);                                       \
                a1 = _mm256_fmadd_ps(load8_##T(w + ldw + k), p, a1);                                 \
                a2 = _mm256_fmadd_ps(load8_##T(w + 2 * ldw + k), p, a2);                             \
                a3 = _mm256_fmadd_ps(load8_##T(w + 3 * ldw + k), p, a3);                             \
            }                                                                                        \
            acc[m * 4] = a0, acc[m * 4 + 1] = a1, acc[m * 4 + 2] = a2, acc[m * 4 + 3] = a3;          \
        }                                                                                            \
    }

TILE4(f32)
TILE4(bf16)

/* The outputs (m, n + i), i < nb <= 4, for all m < M, from the weight rows [n, n + nb). */
#define ROWS(T)                                                                              \
    static void rows_##T(const float *x, int64_t ldx, const T##_w *w, void *y, int64_t ldy,         \
                         int y_bf16, int64_t M, int64_t n, int nb, int64_t K, __m256 *acc) {         \
        const T##_w *wn = w + n * K;                                                                 \
        float wbuf[4 * KT] __attribute__((aligned(32)));                                             \
        for (int64_t j = 0; j < M * 4; ++j) acc[j] = _mm256_setzero_ps();                            \
        int64_t body = K / 8 * 8;                                                                    \
        for (int64_t k0 = 0; k0 < body; k0 += KT) {                                                  \
            int64_t k1 = k0 + KT < body ? k0 + KT : body;                                            \
            if (nb == 4 && (sizeof(T##_w) == 4 || M <= CONVERT_ONCE_ROWS)) { /* read in place */      \
                tile4_##T(x, ldx, wn, K, M, k0, k1, acc);                                            \
                continue;                                                                            \
            }                                                                                        \
            /* a float32 copy: bf16 at many rows (widened once, not once per pair of x rows), and  \
             * the last rows (N % 4), rows past nb zero (their outputs are unused) */               \
            for (int i = 0; i < 4; ++i)                                                              \
                for (int64_t k = k0; k < k1; k += 8)                                                 \
                    _mm256_store_ps(wbuf + i * KT + (k - k0),                                        \
                                    i < nb ? load8_##T(wn + i * K + k) : _mm256_setzero_ps());       \
            tile4_f32(x, ldx, wbuf - k0, KT, M, k0, k1, acc);                                            \
        }                                                                                            \
        for (int64_t m = 0; m < M; ++m)                                                              \
            for (int i = 0; i < nb; ++i) {                                                           \
                float s = hsum(acc[m * 4 + i]);                                                      \
                for (int64_t j = body; j < K; ++j) s += scalar_##T(wn[i * K + j]) * x[m * ldx + j];  \
                if (y_bf16) ((uint16_t *)y)[m * ldy + n + i] = float_to_bf16(s);                     \
                else ((float *)y)[m * ldy + n + i] = s;                                              \
            }                                                                                        \
    }

ROWS(f32)
ROWS(bf16)

/* Threads split the blocks of four weight rows; each has its own accumulator buffer [M][4] x 8.
 * Sets failed = 1 when a buffer could not be allocated. */
#define PRODUCT(T, x, ldx, w, y, ldy, y_bf16, M, N, K, threads, failed)                              \
    do {                                                                                             \
        int64_t blocks = ((N) + 3) / 4;                                                              \
        _Pragma("omp parallel num_threads(threads)")                                                 \
        {                                                                                            \
            __m256 *acc = (__m256 *)aligned_alloc(32, (size_t)((M) > 0 ? (M) : 1) * 4 * sizeof(__m256)); \
            if (!acc) {                                                                              \
                _Pragma("omp atomic write") failed = 1;                                              \
            }                                                                                        \
            _Pragma("omp for schedule(static)")                                                      \
            for (int64_t b = 0; b < blocks; ++b) {                                                   \
                int nb = (N) - b * 4 < 4 ? (int)((N) - b * 4) : 4;                                   \
                if (acc) rows_##T(x, ldx, w, y, ldy, y_bf16, M, b * 4, nb, K, acc);                 \
            }                                                                                        \
            free(acc);                                                                               \
        }                                                                                            \
    } while (0)

/* Returns 0, or -1 when an accumulator buffer could not be allocated. */
int musicgen_f32_gemv(const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t M,
                      int64_t N, int64_t K, int threads) {
    int failed = 0;
    PRODUCT(f32, x, ldx, w, y, ldy, 0, M, N, K, threads, failed);
    return failed ? -1 : 0;
}

/* x_bf16 / y_bf16: x is read, y written, as bf16 (uint16) instead of float32, which saves the
 * caller two dtype conversions per product when the activations are bf16. Returns 0, or -1 when the
 * float32 copy of a bf16 x or an accumulator buffer could not be allocated. */
int musicgen_bf16_gemv(const void *x, int x_bf16, int64_t ldx, const uint16_t *w, void *y, int y_bf16,
                       int64_t ldy, int64_t M, int64_t N, int64_t K, int threads) {
    const float *xf = (const float *)x;
    float *copy = NULL;
    if (x_bf16) {
        copy = (float *)malloc((size_t)(M * K > 0 ? M * K : 1) * sizeof(float));
        if (!copy) return -1;
        for (int64_t m = 0; m < M; ++m)
            for (int64_t k = 0; k < K; ++k) copy[m * K + k] = scalar_bf16(((const uint16_t *)x)[m * ldx + k]);
        xf = copy;
        ldx = K;
    }
    int failed = 0;
    PRODUCT(bf16, xf, ldx, w, y, ldy, y_bf16, M, N, K, threads, failed);
    free(copy);
    return failed ? -1 : 0;
}

/* The sum of n floats, read once with eight independent 8-lane accumulators per thread: a plain
 * read of memory for the benchmarks' bandwidth bound (what a weight product at best does with its
 * weights). Not used by the products. */
double musicgen_read_sum(const float *x, int64_t n, int threads) {
    double total = 0.0;
    int64_t blocks = n / 64;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        __m256 a[8];
        for (int i = 0; i < 8; ++i) a[i] = _mm256_setzero_ps();
#pragma omp for schedule(static)
        for (int64_t b = 0; b < blocks; ++b)
            for (int i = 0; i < 8; ++i) a[i] = _mm256_add_ps(a[i], _mm256_loadu_ps(x + b * 64 + i * 8));
        for (int i = 0; i < 8; ++i) total += hsum(a[i]);
    }
    for (int64_t k = blocks * 64; k < n; ++k) total += x[k];
    return total;
}
