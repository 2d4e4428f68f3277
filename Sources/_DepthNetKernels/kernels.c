#include "mr_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int mr_kernel_level(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
}

long mr_packed_size(int m, int k) { return (long)((m + MR_ROWS - 1) / MR_ROWS) * MR_ROWS * k; }

void mr_pack_a(int m, int k, const float *a, int lda, float *packed) {
    int panels = (m + MR_ROWS - 1) / MR_ROWS;
    for (int p = 0; p < panels; p++) {
        float *out = packed + (long)p * MR_ROWS * k;
        for (int kk = 0; kk < k; kk++) {
            for (int r = 0; r < MR_ROWS; r++) {
                int row = p * MR_ROWS + r;
                out[kk * MR_ROWS + r] = row < m ? a[(long)row * lda + kk] : 0.0f;
            }
        }
    }
}

long mr_packed_b_size(int k, int n) { return (long)((n + 31) / 32) * 32 * k; }

void mr_pack_b(int k, int n, const float *b, long row_stride, long column_stride, float *packed) {
    int panels = (n + 31) / 32;
    for (int p = 0; p < panels; p++) {
        float *out = packed + (long)p * 32 * k;
        for (int kk = 0; kk < k; kk++) {
            const float *row = b + kk * row_stride;
            for (int l = 0; l < 32; l++) {
                int j = p * 32 + l;
                out[kk * 32 + l] = j < n ? row[j * column_stride] : 0.0f;
            }
        }
    }
}

// ---- AVX-512: 8 rows × 32 columns per micro-tile (16 zmm accumulators) ----

/// acc[r] += a[r] · (b0, b1) for the MR_ROWS rows of one k step.
__attribute__((target("avx512f"), always_inline))
static inline void fma_rows_avx512(__m512 acc[MR_ROWS][2], const float *a, __m512 b0, __m512 b1) {
    for (int r = 0; r < MR_ROWS; r++) {
        __m512 av = _mm512_set1_ps(a[r]);
        acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
}

/// Adds the bias, applies ReLU if asked and stores the first `rows` rows of a tile (masked columns).
__attribute__((target("avx512f"), always_inline))
static inline void store_avx512(__m512 acc[MR_ROWS][2], int rows, float *c, long ldc, const float *bias, int relu,
                                __mmask16 m0, __mmask16 m1) {
    __m512 zero = _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        __m512 add = _mm512_set1_ps(bias ? bias[r] : 0.0f);
        __m512 v0 = _mm512_add_ps(acc[r][0], add), v1 = _mm512_add_ps(acc[r][1], add);
        if (relu) { v0 = _mm512_max_ps(v0, zero); v1 = _mm512_max_ps(v1, zero); }
        _mm512_mask_storeu_ps(c + r * ldc, m0, v0);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, v1);
    }
}

__attribute__((target("avx512f")))
static void tile_avx512(int rows, int k, const float *a, const float *b, long ldb, float *c, long ldc,
                        int cols, const float *bias, int relu) {
    __m512 acc[MR_ROWS][2];
    for (int r = 0; r < MR_ROWS; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xFFFF : (cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1));
    if (cols == 32) {
        for (int kk = 0; kk < k; kk++) {
            const float *row = b + kk * ldb;
            __m512 b0 = _mm512_loadu_ps(row), b1 = _mm512_loadu_ps(row + 16);
            fma_rows_avx512(acc, a + kk * MR_ROWS, b0, b1);
        }
    } else {
        for (int kk = 0; kk < k; kk++) {
            const float *row = b + kk * ldb;
            __m512 b0 = _mm512_maskz_loadu_ps(m0, row), b1 = _mm512_maskz_loadu_ps(m1, row + 16);
            fma_rows_avx512(acc, a + kk * MR_ROWS, b0, b1);
        }
    }
    store_avx512(acc, rows, c, ldc, bias, relu, m0, m1);
}

// ---- AVX2 + FMA: 8 rows × 8 columns per micro-tile (8 ymm accumulators) ----

__attribute__((target("avx2,fma")))
static void tile_avx2(int rows, int k, const float *a, const float *b, long ldb, float *c, long ldc,
                      int cols, const float *bias, int relu) {
    __m256 acc[MR_ROWS];
    for (int r = 0; r < MR_ROWS; r++) acc[r] = _mm256_setzero_ps();
    int lanes[8];
    for (int i = 0; i < 8; i++) lanes[i] = i < cols ? -1 : 0;
    __m256i mask = _mm256_loadu_si256((const __m256i *)lanes);
    for (int kk = 0; kk < k; kk++) {
        const float *row = b + kk * ldb;
        __m256 bv = cols == 8 ? _mm256_loadu_ps(row) : _mm256_maskload_ps(row, mask);
        const float *ak = a + kk * MR_ROWS;
        for (int r = 0; r < MR_ROWS; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(ak + r), bv, acc[r]);
    }
    __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < rows; r++) {
        __m256 v = _mm256_add_ps(acc[r], _mm256_set1_ps(bias ? bias[r] : 0.0f));
        if (relu) v = _mm256_max_ps(v, zero);
        if (cols == 8) _mm256_storeu_ps(c + r * ldc, v); else _mm256_maskstore_ps(c + r * ldc, mask, v);
    }
}

void mr_gemm_packed(int level, int m, int k, int n0, int n1, const float *packed, const float *b, long ldb,
                    float *c, long ldc, const float *bias, int relu) {
    int panels = (m + MR_ROWS - 1) / MR_ROWS;
    int width = level == 2 ? 32 : 8;
    // Column blocks outermost: one block of B (k × width) stays in cache across all row panels.
    for (int n = n0; n < n1; n += width) {
        int cols = n1 - n < width ? n1 - n : width;
        for (int p = 0; p < panels; p++) {
            int rows = m - p * MR_ROWS < MR_ROWS ? m - p * MR_ROWS : MR_ROWS;
            const float *a = packed + (long)p * MR_ROWS * k;
            float *ct = c + (long)p * MR_ROWS * ldc + n;
            const float *bp = bias ? bias + p * MR_ROWS : 0;
            if (level == 2) tile_avx512(rows, k, a, b + n, ldb, ct, ldc, cols, bp, relu);
            else tile_avx2(rows, k, a, b + n, ldb, ct, ldc, cols, bp, relu);
        }
    }
}

__attribute__((target("avx2,fma")))
static void gather_panel(const mr_conv_shape *s, const float *src, long j0, int cols, float *panel) {
    // The panel's columns as runs within output rows: (oy, ox, lane, length), at most 32 runs.
    int seg_oy[32], seg_ox[32], seg_lane[32], seg_len[32], segments = 0;
    for (int lane = 0; lane < cols; segments++) {
        long j = j0 + lane;
        int oy = (int)(j / s->ow), ox = (int)(j % s->ow);
        int len = cols - lane < s->ow - ox ? cols - lane : s->ow - ox;
        seg_oy[segments] = oy; seg_ox[segments] = ox; seg_lane[segments] = lane; seg_len[segments] = len;
        lane += len;
    }
    const int stride = s->stride, pad = s->pad, h = s->h, w = s->w;
    int r = 0;
    for (int c = 0; c < s->cin; c++) {
        const float *plane = src + (long)c * h * w;
        for (int ky = 0; ky < s->kh; ky++) {
            for (int kx = 0; kx < s->kw; kx++, r++) {
                float *row = panel + r * 32;
                for (int q = 0; q < segments; q++) {
                    int iy = seg_oy[q] * stride - pad + ky, len = seg_len[q];
                    float *out = row + seg_lane[q];
                    if (iy < 0 || iy >= h) {
                        for (int t = 0; t < len; t++) out[t] = 0.0f;
                        continue;
                    }
                    const float *in = plane + (long)iy * w;
                    int base = seg_ox[q] * stride - pad + kx;
                    if (stride == 1 && base >= 0 && base + len <= w) {
                        const float *from = in + base;
                        if (len == 32) {
                            _mm256_storeu_ps(out, _mm256_loadu_ps(from));
                            _mm256_storeu_ps(out + 8, _mm256_loadu_ps(from + 8));
                            _mm256_storeu_ps(out + 16, _mm256_loadu_ps(from + 16));
                            _mm256_storeu_ps(out + 24, _mm256_loadu_ps(from + 24));
                        } else {
                            for (int t = 0; t < len; t++) out[t] = from[t];
                        }
                    } else {
                        for (int t = 0; t < len; t++) {
                            int ix = base + t * stride;
                            out[t] = ix >= 0 && ix < w ? in[ix] : 0.0f;
                        }
                    }
                }
            }
        }
    }
}

// ---- Direct panels: B row kk of a panel is src + offset[kk] (no gather), 32 full columns ----

/// Direct panels of `width` (16 or 32) columns: columns 0–15 read src0 and go to c0, 16–31 read
/// src1 and go to c1 (rows ldc apart).
__attribute__((target("avx2,fma")))
static void direct_avx2(int rows, int k, const float *a, const float *src0, const float *src1, const int *offset,
                        float *c0, float *c1, long ldc, const float *bias, int relu, int width) {
    for (int q = 0; q < width; q += 8) {
        const float *src = q < 16 ? src0 + q : src1 + (q - 16);
        __m256 acc[MR_ROWS];
        for (int r = 0; r < MR_ROWS; r++) acc[r] = _mm256_setzero_ps();
        for (int kk = 0; kk < k; kk++) {
            __m256 bv = _mm256_loadu_ps(src + offset[kk]);
            const float *ak = a + kk * MR_ROWS;
            for (int r = 0; r < MR_ROWS; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(ak + r), bv, acc[r]);
        }
        __m256 zero = _mm256_setzero_ps();
        for (int r = 0; r < rows; r++) {
            __m256 v = _mm256_add_ps(acc[r], _mm256_set1_ps(bias ? bias[r] : 0.0f));
            if (relu) v = _mm256_max_ps(v, zero);
            _mm256_storeu_ps((q < 16 ? c0 + q : c1 + (q - 16)) + r * ldc, v);
        }
    }
}

// ---- AVX-512 direct panels: 1–3 segments of 16 columns, segment t at src[t] + offset[kk], ----
// ---- its output at c[t] (rows ldc apart) ----
// 8 rows × 48 columns keeps 24 accumulators and needs 11 loads per 24 FMAs (8 × 32: 10 per 16),
// measured 7–30 % faster on the network's layers; 32 and 16 columns cover the tail of a range.

/// The body, inlined with a constant segment count into the three kernels below. Those are
/// marked no_builtin("memset"): otherwise clang turned the clearing of the 24 accumulators of the
/// 48-column kernel into a memset call and kept them in a stack array around the k loop.
__attribute__((target("avx512f"), always_inline))
static inline void direct_segments_avx512(int segs, int rows, int k, const float *a, const float *const *src,
                                          const int *offset, float *const *c, long ldc, const float *bias, int relu) {
    __m512 acc[MR_ROWS][3];
    for (int r = 0; r < MR_ROWS; r++)
        for (int t = 0; t < segs; t++) acc[r][t] = _mm512_setzero_ps();
    for (int kk = 0; kk < k; kk++) {
        int o = offset[kk];
        __m512 b[3];
        for (int t = 0; t < segs; t++) b[t] = _mm512_loadu_ps(src[t] + o);
        const float *ak = a + kk * MR_ROWS;
        for (int r = 0; r < MR_ROWS; r++) {
            __m512 av = _mm512_set1_ps(ak[r]);
            for (int t = 0; t < segs; t++) acc[r][t] = _mm512_fmadd_ps(av, b[t], acc[r][t]);
        }
    }
    __m512 zero = _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        __m512 add = _mm512_set1_ps(bias ? bias[r] : 0.0f);
        for (int t = 0; t < segs; t++) {
            __m512 v = _mm512_add_ps(acc[r][t], add);
            if (relu) v = _mm512_max_ps(v, zero);
            _mm512_storeu_ps(c[t] + r * ldc, v);
        }
    }
}

__attribute__((target("avx512f"), no_builtin("memset")))
static void direct16_avx512(int rows, int k, const float *a, const float *const *src, const int *offset,
                            float *const *c, long ldc, const float *bias, int relu) {
    direct_segments_avx512(1, rows, k, a, src, offset, c, ldc, bias, relu);
}

__attribute__((target("avx512f"), no_builtin("memset")))
static void direct32_avx512(int rows, int k, const float *a, const float *const *src, const int *offset,
                            float *const *c, long ldc, const float *bias, int relu) {
    direct_segments_avx512(2, rows, k, a, src, offset, c, ldc, bias, relu);
}

__attribute__((target("avx512f"), no_builtin("memset")))
static void direct48_avx512(int rows, int k, const float *a, const float *const *src, const int *offset,
                            float *const *c, long ldc, const float *bias, int relu) {
    direct_segments_avx512(3, rows, k, a, src, offset, c, ldc, bias, relu);
}

void mr_conv_panels(int level, const mr_conv_shape *shape, const float *src, long p0, long p1, float *scratch,
                    int m, int q0, int q1, const float *packed, float *dst, const float *bias, int relu) {
    long n = (long)shape->oh * shape->ow;
    int k = shape->cin * shape->kh * shape->kw;
    // Stride 1: a panel of 32 positions inside one output row whose receptive field is inside
    // the input reads B straight from the input, row kk at src + base + offset[kk].
    int *offset = (int *)(scratch + (long)k * 32);
    if (shape->stride == 1) {
        int r = 0;
        for (int c = 0; c < shape->cin; c++)
            for (int ky = 0; ky < shape->kh; ky++)
                for (int kx = 0; kx < shape->kw; kx++) offset[r++] = (c * shape->h + ky) * shape->w + kx;
    }
    for (long p = p0; p < p1; p++) {
        long j0 = p * 32;
        int cols = n - j0 < 32 ? (int)(n - j0) : 32;
        int oy = (int)(j0 / shape->ow), ox = (int)(j0 % shape->ow);
        int iy = oy - shape->pad, ix = ox - shape->pad;
        if (shape->stride == 1 && cols == 32 && ox + 32 <= shape->ow && iy >= 0 && iy + shape->kh <= shape->h
            && ix >= 0 && ix + 31 + shape->kw <= shape->w) {
            const float *base = src + (long)iy * shape->w + ix;
            for (int q = q0; q < q1; q++) {
                int rows = m - q * MR_ROWS < MR_ROWS ? m - q * MR_ROWS : MR_ROWS;
                const float *a = packed + (long)q * MR_ROWS * k;
                float *ct = dst + (long)q * MR_ROWS * n + j0;
                const float *bq = bias ? bias + q * MR_ROWS : 0;
                const float *seg[2] = {base, base + 16};
                float *out[2] = {ct, ct + 16};
                if (level == 2) direct32_avx512(rows, k, a, seg, offset, out, n, bq, relu);
                else direct_avx2(rows, k, a, base, base + 16, offset, ct, ct + 16, n, bq, relu, 32);
            }
            continue;
        }
        gather_panel(shape, src, j0, cols, scratch);
        int r0 = q0 * MR_ROWS, r1 = q1 * MR_ROWS < m ? q1 * MR_ROWS : m;
        mr_gemm_packed(level, r1 - r0, k, 0, cols, packed + (long)r0 * k, scratch, 32, dst + (long)r0 * n + j0, n,
                       bias ? bias + r0 : 0, relu);
    }
}

int mr_prepared_step(int level) { return level == 2 ? 48 : 32; }

/// offset[kk] for patch row kk = (c, ky, kx) of a prepared input: where that row's input for output
/// (0, 0) lies (stride phase kx mod stride, row ky, column kx / stride).
static void prepared_offsets(const mr_conv_prepared *d, int *offset) {
    int r = 0, s = d->stride;
    for (int c = 0; c < d->cin; c++)
        for (int ky = 0; ky < d->kh; ky++)
            for (int kx = 0; kx < d->kw; kx++)
                offset[r++] = (((kx % s) * d->cin + c) * d->hp + ky) * d->wq + kx / s;
}

/// One step of mr_conv_panels_prepared: `width` (48, 32 or 16) positions from j, row block q.
static inline void prepared_step(const mr_conv_prepared *d, int k, int level, long j, int width, int q, int m,
                                 const int *offset, const float *packed, const mr_conv_output *out, const float *bias,
                                 int relu) {
    const float *seg[3] = {0, 0, 0};
    float *dst[3] = {0, 0, 0};
    for (int t = 0; t < width / 16; t++) {
        long js = j + 16 * t;
        int oy = (int)(js / d->ow), ox = (int)(js % d->ow);
        seg[t] = d->src + (long)oy * d->stride * d->wq + ox;
        dst[t] = out->dst + (long)q * MR_ROWS * out->plane + (long)(oy + out->pad) * out->row + out->pad + ox;
    }
    int rows = m - q * MR_ROWS < MR_ROWS ? m - q * MR_ROWS : MR_ROWS;
    const float *a = packed + (long)q * MR_ROWS * k;
    const float *bq = bias ? bias + q * MR_ROWS : 0;
    if (level == 2) {
        if (width == 48) direct48_avx512(rows, k, a, seg, offset, dst, out->plane, bq, relu);
        else if (width == 32) direct32_avx512(rows, k, a, seg, offset, dst, out->plane, bq, relu);
        else direct16_avx512(rows, k, a, seg, offset, dst, out->plane, bq, relu);
    } else {
        direct_avx2(rows, k, a, seg[0], seg[1], offset, dst[0], dst[1], out->plane, bq, relu, width);
    }
}

void mr_conv_panels_prepared(int level, const mr_conv_prepared *d, long j0, long j1, int *offset, int m, int q0, int q1,
                             const float *packed, const mr_conv_output *out, const float *bias, int relu) {
    long n = (long)d->oh * d->ow;
    int k = d->cin * d->kh * d->kw, s = d->stride;
    prepared_offsets(d, offset);
    // Positions [j0, j1) ∩ [0, n), in steps of 48 columns (AVX-512) or 32, then a 16- or 32-column
    // tail; every 16-column segment lies inside one output row because ow is a multiple of 16.
    long end = j1 < n ? j1 : n;
#define STEP_WIDTH(j) (level == 2 && end - (j) >= 48 ? 48 : (end - (j) >= 32 ? 32 : 16))
    long weights = (long)(q1 - q0) * MR_ROWS * k, input = (long)s * d->cin * d->hp * d->wq;
    if (weights > input) {
        // The weights outweigh the input (deep layers): each row block's weights are read once,
        // for all positions, while the input stays in cache.
        for (int q = q0; q < q1; q++)
            for (long j = j0; j < end; j += STEP_WIDTH(j))
                prepared_step(d, k, level, j, STEP_WIDTH(j), q, m, offset, packed, out, bias, relu);
    } else {
        for (long j = j0; j < end; j += STEP_WIDTH(j))
            for (int q = q0; q < q1; q++)
                prepared_step(d, k, level, j, STEP_WIDTH(j), q, m, offset, packed, out, bias, relu);
    }
#undef STEP_WIDTH
}

// ---- Channel-vectorised convolution for small outputs ----
// Rows under 16 positions wide (the 8×8 and 4×4 layers of a 128 input) cannot fill the position
// vectors of the kernels above. Here the vector runs over output channels instead (32 with AVX-512,
// 16 with AVX2, weights packed [block][k][channel]) and each input value of a tile of up to 12
// (AVX-512) or 6 (AVX2) output positions is broadcast: per k step 2 weight loads and one broadcast
// per position feed two FMAs per position, reading the prepared input in place.

typedef struct {
    int colgroups, rowgroups, max_positions;
} chan_tiling;

static chan_tiling chan_tiles(int oh, int ow, int max_positions) {
    chan_tiling t;
    t.max_positions = max_positions;
    t.colgroups = (ow + max_positions - 1) / max_positions;
    int nc = (ow + t.colgroups - 1) / t.colgroups;
    int max_rows = max_positions / nc;
    if (max_rows > 3) max_rows = 3;
    if (max_rows < 1) max_rows = 1;
    t.rowgroups = (oh + max_rows - 1) / max_rows;
    return t;
}

static int chan_max_positions(int level) { return level == 2 ? 12 : 6; }

int mr_channel_block(int level) { return level == 2 ? 32 : 16; }

long mr_channel_packed_size(int level, int m, int k) {
    int cb = mr_channel_block(level);
    return (long)((m + cb - 1) / cb) * cb * k;
}

void mr_pack_channels(int level, int m, int k, const float *a, int lda, float *packed) {
    int cb = mr_channel_block(level), blocks = (m + cb - 1) / cb;
    for (int p = 0; p < blocks; p++)
        for (int kk = 0; kk < k; kk++)
            for (int j = 0; j < cb; j++) {
                int row = p * cb + j;
                packed[((long)p * k + kk) * cb + j] = row < m ? a[(long)row * lda + kk] : 0.0f;
            }
}

long mr_channel_tiles(int level, int oh, int ow) {
    chan_tiling t = chan_tiles(oh, ow, chan_max_positions(level));
    return (long)t.rowgroups * t.colgroups;
}

/// R rows × C consecutive columns of positions; row r's input at rowp[r] + offset[kk] + c.
/// buf gets the raw sums, [R·C][32].
__attribute__((target("avx512f"), always_inline))
static inline void chan_body_avx512(int R, int C, int k, const float *w, const int *offset, const float *const *rowp,
                                    float *buf) {
    __m512 acc[3][12][2];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c][0] = acc[r][c][1] = _mm512_setzero_ps();
    const float *p0 = rowp[0], *p1 = rowp[R > 1 ? 1 : 0], *p2 = rowp[R > 2 ? 2 : 0];
    for (int kk = 0; kk < k; kk++) {
        __m512 w0 = _mm512_loadu_ps(w + kk * 32), w1 = _mm512_loadu_ps(w + kk * 32 + 16);
        int o = offset[kk];
        for (int r = 0; r < R; r++) {
            const float *q = (r == 0 ? p0 : r == 1 ? p1 : p2) + o;
            for (int c = 0; c < C; c++) {
                __m512 b = _mm512_set1_ps(q[c]);
                acc[r][c][0] = _mm512_fmadd_ps(w0, b, acc[r][c][0]);
                acc[r][c][1] = _mm512_fmadd_ps(w1, b, acc[r][c][1]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            _mm512_storeu_ps(buf + (r * C + c) * 32, acc[r][c][0]);
            _mm512_storeu_ps(buf + (r * C + c) * 32 + 16, acc[r][c][1]);
        }
}

#define CHAN_CASE_512(R, C) \
    case (R) * 16 + (C): chan_body_avx512(R, C, k, w, offset, rowp, buf); break;

__attribute__((target("avx512f")))
static void chan_tile_avx512(int R, int C, int k, const float *w, const int *offset, const float *const *rowp,
                             float *buf) {
    switch (R * 16 + C) {
        CHAN_CASE_512(1, 1) CHAN_CASE_512(1, 2) CHAN_CASE_512(1, 3) CHAN_CASE_512(1, 4)
        CHAN_CASE_512(1, 5) CHAN_CASE_512(1, 6) CHAN_CASE_512(1, 7) CHAN_CASE_512(1, 8)
        CHAN_CASE_512(1, 9) CHAN_CASE_512(1, 10) CHAN_CASE_512(1, 11) CHAN_CASE_512(1, 12)
        CHAN_CASE_512(2, 1) CHAN_CASE_512(2, 2) CHAN_CASE_512(2, 3) CHAN_CASE_512(2, 4)
        CHAN_CASE_512(2, 5) CHAN_CASE_512(2, 6)
        CHAN_CASE_512(3, 1) CHAN_CASE_512(3, 2) CHAN_CASE_512(3, 3) CHAN_CASE_512(3, 4)
        default: abort();
    }
}

/// The AVX2 body: 16 channels (two ymm) × up to 6 positions.
__attribute__((target("avx2,fma"), always_inline))
static inline void chan_body_avx2(int R, int C, int k, const float *w, const int *offset, const float *const *rowp,
                                  float *buf) {
    __m256 acc[3][6][2];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c][0] = acc[r][c][1] = _mm256_setzero_ps();
    const float *p0 = rowp[0], *p1 = rowp[R > 1 ? 1 : 0], *p2 = rowp[R > 2 ? 2 : 0];
    for (int kk = 0; kk < k; kk++) {
        __m256 w0 = _mm256_loadu_ps(w + kk * 16), w1 = _mm256_loadu_ps(w + kk * 16 + 8);
        int o = offset[kk];
        for (int r = 0; r < R; r++) {
            const float *q = (r == 0 ? p0 : r == 1 ? p1 : p2) + o;
            for (int c = 0; c < C; c++) {
                __m256 b = _mm256_broadcast_ss(q + c);
                acc[r][c][0] = _mm256_fmadd_ps(w0, b, acc[r][c][0]);
                acc[r][c][1] = _mm256_fmadd_ps(w1, b, acc[r][c][1]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            _mm256_storeu_ps(buf + (r * C + c) * 16, acc[r][c][0]);
            _mm256_storeu_ps(buf + (r * C + c) * 16 + 8, acc[r][c][1]);
        }
}

#define CHAN_CASE_2(R, C) \
    case (R) * 16 + (C): chan_body_avx2(R, C, k, w, offset, rowp, buf); break;

__attribute__((target("avx2,fma")))
static void chan_tile_avx2(int R, int C, int k, const float *w, const int *offset, const float *const *rowp,
                           float *buf) {
    switch (R * 16 + C) {
        CHAN_CASE_2(1, 1) CHAN_CASE_2(1, 2) CHAN_CASE_2(1, 3) CHAN_CASE_2(1, 4) CHAN_CASE_2(1, 5) CHAN_CASE_2(1, 6)
        CHAN_CASE_2(2, 1) CHAN_CASE_2(2, 2) CHAN_CASE_2(2, 3)
        CHAN_CASE_2(3, 1) CHAN_CASE_2(3, 2)
        default: abort();
    }
}

void mr_conv_channels_prepared(int level, const mr_conv_prepared *d, long t0, long t1, int *offset, int m,
                               const float *packed, const mr_conv_output *out, const float *bias, int relu) {
    int k = d->cin * d->kh * d->kw, s = d->stride;
    int cb = mr_channel_block(level);
    prepared_offsets(d, offset);
    chan_tiling t = chan_tiles(d->oh, d->ow, chan_max_positions(level));
    long tiles = (long)t.rowgroups * t.colgroups;
    float buf[12 * 32];
    for (long task = t0; task < t1; task++) {
        int block = (int)(task / tiles), tile = (int)(task % tiles);
        int rg = tile / t.colgroups, cg = tile % t.colgroups;
        int y0 = rg * d->oh / t.rowgroups, y1 = (rg + 1) * d->oh / t.rowgroups;
        int x0 = cg * d->ow / t.colgroups, x1 = (cg + 1) * d->ow / t.colgroups;
        int R = y1 - y0, C = x1 - x0;
        const float *rowp[3];
        for (int i = 0; i < R; i++) rowp[i] = d->src + (long)(y0 + i) * s * d->wq + x0;
        const float *w = packed + (long)block * cb * k;
        if (level == 2) chan_tile_avx512(R, C, k, w, offset, rowp, buf);
        else chan_tile_avx2(R, C, k, w, offset, rowp, buf);
        int c0 = block * cb, channels = m - c0 < cb ? m - c0 : cb;
        for (int j = 0; j < channels; j++) {
            float add = bias ? bias[c0 + j] : 0.0f;
            float *plane = out->dst + (long)(c0 + j) * out->plane + out->pad + x0;
            for (int i = 0; i < R; i++)
                for (int c = 0; c < C; c++) {
                    float v = buf[(i * C + c) * cb + j] + add;
                    plane[(long)(y0 + i + out->pad) * out->row + c] = relu && v < 0.0f ? 0.0f : v;
                }
        }
    }
}

// ---- Softmax with a vectorised exp ----

#define EXP_HI 88.3762626647949f
#define EXP_LO -87.3365447504019f

__attribute__((target("avx512f")))
static inline __m512 exp_avx512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_LO)), _mm512_set1_ps(EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

__attribute__((target("avx512f")))
static void softmax_avx512(float *row, long columns, float scale) {
    __m512 top = _mm512_set1_ps(-INFINITY);
    long i = 0;
    for (; i + 16 <= columns; i += 16) top = _mm512_max_ps(top, _mm512_loadu_ps(row + i));
    float t = _mm512_reduce_max_ps(top);
    for (; i < columns; i++) t = row[i] > t ? row[i] : t;
    __m512 vt = _mm512_set1_ps(t), vs = _mm512_set1_ps(scale), sum = _mm512_setzero_ps();
    for (i = 0; i + 16 <= columns; i += 16) {
        __m512 e = exp_avx512(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(row + i), vt), vs));
        _mm512_storeu_ps(row + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    float total = _mm512_reduce_add_ps(sum);
    for (; i < columns; i++) { float e = expf((row[i] - t) * scale); row[i] = e; total += e; }
    __m512 inv = _mm512_set1_ps(1.0f / total);
    for (i = 0; i + 16 <= columns; i += 16) _mm512_storeu_ps(row + i, _mm512_mul_ps(_mm512_loadu_ps(row + i), inv));
    for (; i < columns; i++) row[i] *= 1.0f / total;
}

static void softmax_scalar(float *row, long columns, float scale) {
    float t = -INFINITY, total = 0;
    for (long i = 0; i < columns; i++) t = row[i] > t ? row[i] : t;
    for (long i = 0; i < columns; i++) { float e = expf((row[i] - t) * scale); row[i] = e; total += e; }
    for (long i = 0; i < columns; i++) row[i] *= 1.0f / total;
}

void mr_softmax_rows(int level, float *m, long rows, long columns, float scale) {
    for (long r = 0; r < rows; r++) {
        if (level == 2) softmax_avx512(m + r * columns, columns, scale);
        else softmax_scalar(m + r * columns, columns, scale);
    }
}

// ---- Exact ×2 bilinear upsampling (align_corners = false), one output row ----

__attribute__((target("avx512f")))
static int upsample2x_row_avx512(const float *r0, const float *r1, float a, float b, int w, float *out) {
    // Output 2i+1 = ¾·row[i] + ¼·row[i+1], output 2i+2 = ¼·row[i] + ¾·row[i+1], row = a·r0 + b·r1;
    // 16 input positions per step, interleaved into 32 outputs.
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), q1 = _mm512_set1_ps(0.25f), q3 = _mm512_set1_ps(0.75f);
    int i = 0;
    for (; i + 17 <= w; i += 16) {
        __m512 x0 = _mm512_fmadd_ps(va, _mm512_loadu_ps(r0 + i), _mm512_mul_ps(vb, _mm512_loadu_ps(r1 + i)));
        __m512 x1 = _mm512_fmadd_ps(va, _mm512_loadu_ps(r0 + i + 1), _mm512_mul_ps(vb, _mm512_loadu_ps(r1 + i + 1)));
        __m512 odd = _mm512_fmadd_ps(q3, x0, _mm512_mul_ps(q1, x1));
        __m512 even = _mm512_fmadd_ps(q1, x0, _mm512_mul_ps(q3, x1));
        _mm512_storeu_ps(out + 2 * i + 1, _mm512_permutex2var_ps(odd, lo, even));
        _mm512_storeu_ps(out + 2 * i + 17, _mm512_permutex2var_ps(odd, hi, even));
    }
    return i;
}

void mr_upsample2x_row(int level, const float *r0, const float *r1, float a, float b, int w, float *out) {
    int i = level == 2 ? upsample2x_row_avx512(r0, r1, a, b, w, out) : 0;
    // The rest (and everything without AVX-512), in the same arithmetic order.
    for (; i < w - 1; i++) {
        float x0 = a * r0[i] + b * r1[i], x1 = a * r0[i + 1] + b * r1[i + 1];
        out[2 * i + 1] = 0.75f * x0 + 0.25f * x1;
        out[2 * i + 2] = 0.25f * x0 + 0.75f * x1;
    }
    out[0] = a * r0[0] + b * r1[0];
    out[2 * w - 1] = a * r0[w - 1] + b * r1[w - 1];
}

// ---- Prepared (padded, stride-phase split) convolution input, one plane ----

void mr_prepare_plane(const float *input, int h, int w, int pad, int stride, int phase, int hp, int wq, float *out) {
    // Output column i reads input column stride·i + phase − pad; those outside [0, w) are zero.
    int s0 = phase - pad;
    int lo = s0 >= 0 ? 0 : (-s0 + stride - 1) / stride;          // first i with stride·i + s0 ≥ 0
    int hi = w - s0 <= 0 ? 0 : (w - s0 + stride - 1) / stride;    // first i with stride·i + s0 ≥ w
    if (hi > wq) hi = wq;
    if (lo > hi) lo = hi;
    for (int y = 0; y < hp; y++) {
        float *line = out + (long)y * wq;
        int iy = y - pad;
        if (iy < 0 || iy >= h) {
            memset(line, 0, sizeof(float) * (size_t)wq);
            continue;
        }
        const float *row = input + (long)iy * w + s0;
        for (int i = 0; i < lo; i++) line[i] = 0.0f;
        if (stride == 1) {
            memcpy(line + lo, row + lo, sizeof(float) * (size_t)(hi - lo));
        } else if (stride == 2) {
            for (int i = lo; i < hi; i++) line[i] = row[2 * i];
        } else {
            for (int i = lo; i < hi; i++) line[i] = row[(long)stride * i];
        }
        for (int i = hi; i < wq; i++) line[i] = 0.0f;
    }
}

// ---- mrdepth-unet post-processing: front = e^o0, back = front·(1 + softplus(o1)), mask = σ(o2) ----

/// log(u) for u ≥ 1 (here u = 1 + e^−|x| ∈ (1, 2]): exponent and mantissa split, Cephes' logf polynomial.
__attribute__((target("avx512f")))
static inline __m512 log_avx512(__m512 u) {
    __m512 e = _mm512_getexp_ps(u);                               // floor(log2 u)
    __m512 m = _mm512_getmant_ps(u, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);   // u / 2^e in [1, 2)
    __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));     // m in [√½, √2)
    e = _mm512_mask_add_ps(e, big, e, _mm512_set1_ps(1.0f));
    __m512 x = _mm512_sub_ps(m, _mm512_set1_ps(1.0f));
    __m512 p = _mm512_set1_ps(7.0376836292E-2f);
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(-1.1514610310E-1f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.1676998740E-1f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(-1.2420140846E-1f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.4249322787E-1f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(-1.6668057665E-1f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(2.0000714765E-1f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(-2.4999993993E-1f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(3.3333331174E-1f));
    __m512 x2 = _mm512_mul_ps(x, x);
    p = _mm512_mul_ps(_mm512_mul_ps(p, x), x2);
    p = _mm512_fnmadd_ps(x2, _mm512_set1_ps(0.5f), p);           // − x²/2
    p = _mm512_add_ps(p, x);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693147180559945f), p);
}

__attribute__((target("avx512f")))
static long mrdepth_post_avx512(float *front, float *back, float *mask, long n) {
    const __m512 one = _mm512_set1_ps(1.0f), zero = _mm512_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 f = exp_avx512(_mm512_loadu_ps(front + i));
        // softplus(x) = max(x, 0) + log1p(e^−|x|); log1p(t) = log(u)·t/(u − 1) with u = 1 + t (exact at rounding)
        __m512 x = _mm512_loadu_ps(back + i);
        __m512 t = exp_avx512(_mm512_sub_ps(zero, _mm512_abs_ps(x)));
        __m512 u = _mm512_add_ps(one, t);
        __m512 d = _mm512_sub_ps(u, one);
        __mmask16 tiny = _mm512_cmp_ps_mask(d, zero, _CMP_EQ_OQ);
        __m512 l = _mm512_mask_blend_ps(tiny, _mm512_mul_ps(log_avx512(u), _mm512_div_ps(t, d)), t);
        __m512 sp = _mm512_add_ps(_mm512_max_ps(x, zero), l);
        _mm512_storeu_ps(front + i, f);
        _mm512_storeu_ps(back + i, _mm512_mul_ps(f, _mm512_add_ps(one, sp)));
        __m512 z = _mm512_loadu_ps(mask + i);
        _mm512_storeu_ps(mask + i, _mm512_div_ps(one, _mm512_add_ps(one, exp_avx512(_mm512_sub_ps(zero, z)))));
    }
    return i;
}

void mr_mrdepth_post(int level, float *front, float *back, float *mask, long n) {
    long i = level == 2 ? mrdepth_post_avx512(front, back, mask, n) : 0;
    for (; i < n; i++) {
        float f = expf(front[i]), x = back[i];
        front[i] = f;
        back[i] = f * (1.0f + (x > 20.0f ? x : log1pf(expf(x))));
        mask[i] = 1.0f / (1.0f + expf(-mask[i]));
    }
}
