/* Thread-count independent sgemm: a fixed tile grid over C, one single-threaded OpenBLAS call
 * per tile (see gemm.h for why). */
#include "kernels/gemm.h"

#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* A tile carries about this many multiply-adds (~0.1 ms on one core): each tile repacks its
 * slices of A and B, so fewer, larger tiles cost less on one thread while still giving two to
 * a few dozen threads work. The grid has at most GEMM_MAX_TILES tiles. */
#define GEMM_TILE_WORK ((int64_t)1 << 22)
/* A tile of the cut side is at least this wide: every tile repacks the whole uncut operand, a
 * copy that costs about 16 / width of the tile's multiply-adds on an AVX2 core (a 64-wide cut
 * of a 128 x 784 x 256 product made one-thread MLP inference 6% slower than one call). */
#define GEMM_MIN_SLICE 128
#define GEMM_MAX_TILES 64
/* Tile edges are multiples of this, so every OpenBLAS microkernel width divides them. */
#define GEMM_ALIGN 32

static int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* Edge of `parts` near-equal slices of len, aligned (len itself when parts is 1). */
static int64_t slice(int64_t len, int64_t parts) {
    return parts <= 1 ? len : round_up((len + parts - 1) / parts, GEMM_ALIGN);
}

/* Cutting C's columns makes every tile repack all of A (m x k), cutting its rows all of B
 * (k x n): the grid cuts only the longer side, whose whole-operand copy is the smaller one. */
void gf_gemm_tiles(int64_t m, int64_t n, int64_t k, int64_t *tile_m, int64_t *tile_n) {
    int64_t want = (m * n / GEMM_TILE_WORK) * k + (m * n % GEMM_TILE_WORK) * k / GEMM_TILE_WORK;
    if (want > GEMM_MAX_TILES) want = GEMM_MAX_TILES;
    const bool cut_cols = m <= n;
    const int64_t slices = (cut_cols ? n : m) / GEMM_MIN_SLICE;
    const int64_t parts = want < slices ? want : slices;
    *tile_n = cut_cols ? slice(n, parts) : n;
    *tile_m = cut_cols ? m : slice(m, parts);
}

static void scale(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

/* OpenBLAS writes a product with beta 0 by zeroing C first, then adding the product into it:
 * on a C larger than the cache that is a whole extra pass through memory. Such a tile goes in
 * column strips of about GEMM_STRIP_BYTES each, whose zeros are still in cache when the
 * product lands on them; each strip repacks A (m x k floats), so strips are at least
 * GEMM_MIN_STRIP wide. */
#define GEMM_STRIP_BYTES ((int64_t)192 << 10)
#define GEMM_MIN_STRIP 256

static int64_t strip_width(int64_t m, int64_t n, float beta) {
    if (beta != 0.0f || m * n * (int64_t)sizeof(float) <= 2 * GEMM_STRIP_BYTES) return n;
    int64_t w = GEMM_STRIP_BYTES / (m * (int64_t)sizeof(float)) / GEMM_ALIGN * GEMM_ALIGN;
    return w < GEMM_MIN_STRIP ? GEMM_MIN_STRIP : w;
}

static void one_tile(bool ta, bool tb, int64_t i0, int64_t mi, int64_t j0, int64_t nj, int64_t k,
                     float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                     float beta, float *c, int64_t ldc) {
    const float *at = ta ? a + i0 : a + i0 * lda;
    const int64_t sw = strip_width(mi, nj, beta);
    for (int64_t j = j0; j < j0 + nj; j += sw) {
        const float *bt = tb ? b + j * ldb : b + j;
        const int64_t w = j0 + nj - j < sw ? j0 + nj - j : sw;
        float *ct = c + i0 * ldc + j, strip_beta = beta;
        if (beta == 0.0f) { /* zeros, then the product added: OpenBLAS's beta-0 operations, but
                             * its zeroing loop is slower than memset (5-20% of a 1x1 conv) */
            for (int64_t r = 0; r < mi; r++) memset(ct + r * ldc, 0, sizeof(float) * (size_t)w);
            strip_beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)mi, (int)w, (int)k, alpha, at, (int)lda, bt, (int)ldb, strip_beta, ct,
                    (int)ldc);
    }
}

static bool in_parallel(void) {
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return false;
#endif
}

void gf_gemm(const gf_ctx *ctx, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
             int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scale(m, n, beta, c, ldc);
        return;
    }
    int64_t tm, tn;
    gf_gemm_tiles(m, n, k, &tm, &tn);
    const int64_t rows = (m + tm - 1) / tm, cols = (n + tn - 1) / tn, tiles = rows * cols;
    int nt = in_parallel() ? 1 : ctx->n_threads;
    if (nt > tiles) nt = (int)tiles;
    if (nt < 1) nt = 1;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t i0 = (t / cols) * tm, j0 = (t % cols) * tn;
        const int64_t mi = m - i0 < tm ? m - i0 : tm, nj = n - j0 < tn ? n - j0 : tn;
        one_tile(ta, tb, i0, mi, j0, nj, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
}
