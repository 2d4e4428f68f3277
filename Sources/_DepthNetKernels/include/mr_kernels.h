// Single-precision GEMM micro-kernels for DepthNet's convolutions, with runtime CPU dispatch.
//
// C[m][n] = act(sum_k A[m][k] * B[k][n] + bias[m]) for m < M, n in [n0, n1), where A has been
// packed once (at load time) by mr_pack_a into panels of MR_ROWS rows, B is row-major with row
// stride ldb and C row-major with row stride ldc. The kernels use AVX-512F or AVX2+FMA when the
// processor has them; mr_kernel_level() says which (0: none, callers then use cblas_sgemm). Every
// kernel takes the level to run at as its first argument (at most mr_kernel_level(); 1 keeps to the
// AVX2 kernels on an AVX-512 machine, to test them there): the caller chooses, nothing is global.
#ifndef MR_KERNELS_H
#define MR_KERNELS_H

#include "mr_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Rows per packed panel of A.
#define MR_ROWS 8

/// What this processor has: 2: AVX-512F, 1: AVX2 + FMA, 0: no vector kernel.
int mr_kernel_level(void);

/// Floats needed by mr_pack_a for an M × K matrix.
long mr_packed_size(int m, int k);

/// Packs row-major A (M × K, row stride lda) into panels of MR_ROWS rows: packed[p][k][r],
/// zero-padded to a multiple of MR_ROWS rows.
void mr_pack_a(int m, int k, const float *a, int lda, float *packed);

/// Packs a k × n matrix B, element (kk, j) at b[kk·row_stride + j·column_stride], into 32-column
/// panels packed[p][kk][l] = B(kk, 32p + l), zero-padded: the layout mr_gemm_packed reads with
/// ldb = 32 (one call per panel). B = Wᵀ of a PyTorch Linear weight W (n × k): row_stride 1,
/// column_stride k.
void mr_pack_b(int k, int n, const float *b, long row_stride, long column_stride, float *packed);

/// Softmax of scale·x over each of `rows` rows of `columns` floats (row stride `columns`), in
/// place, with a vectorised exp (Cephes polynomial, relative error ~1e-7) where the CPU allows.
void mr_softmax_rows(int level, float *m, long rows, long columns, float scale);

/// Floats needed by mr_pack_b.
long mr_packed_b_size(int k, int n);

/// C[:, n0..<n1] = act(A·B[:, n0..<n1] + bias); act 0: identity, 1: ReLU. bias may be NULL.
/// Requires level > 0.
void mr_gemm_packed(int level, int m, int k, int n0, int n1, const float *packed, const float *b, long ldb,
                    float *c, long ldc, const float *bias, int relu);

/// A convolution's geometry (one group): input cin × h × w, kernel kh × kw, output oh × ow.
typedef struct {
    int cin, h, w, kh, kw, stride, pad, oh, ow;
} mr_conv_shape;

/// Convolution as an implicit GEMM over 32-column panels of output positions j = oy·ow + ox:
/// for each panel p in [p0, p1) the patches are gathered into `scratch` (cin·kh·kw × 32 floats,
/// hot in cache, followed by room for cin·kh·kw ints) and multiplied by the packed weights
/// (m output channels) — or, for stride 1 and panels away from the borders, read in place — writing
/// dst[o][j] = act(Σ + bias[o]) with dst rows of oh·ow floats. Requires level > 0.
/// Only output channels of the row blocks [q0, q1) (MR_ROWS channels each; m is the total) are
/// computed, so that a layer with few panels can be split over output channels too.
void mr_conv_panels(int level, const mr_conv_shape *shape, const float *src, long p0, long p1, float *scratch,
                    int m, int q0, int q1, const float *packed, float *dst, const float *bias, int relu);

/// A convolution input prepared for in-place panels: zero-padded and split into `stride` column
/// phases, src[phase][c][y][i] = padded[c][y][stride·i + phase], each phase hp × wq.
typedef struct {
    const float *src;
    int cin, hp, wq, kh, kw, stride, oh, ow;
} mr_conv_prepared;

/// Where a convolution on a prepared input writes: output channel o, row oy, column ox at
/// dst[o·plane + (oy + pad)·row + pad + ox]. Plain NCHW: plane = oh·ow, row = ow, pad = 0; the
/// interior of the zero-padded input of a following convolution: plane = hp·wp, row = wp, pad =
/// its padding.
typedef struct {
    float *dst;
    long plane;
    int row, pad;
} mr_conv_output;

/// Like mr_conv_panels for a prepared input and ow a multiple of 16: output positions
/// [j0, j1) ∩ [0, oh·ow) (j0, j1 multiples of 16) are computed in steps of 48 (AVX-512) or 32
/// columns and a 16- or 32-column tail, each 16-column segment inside one output row, reading the
/// patches in place. Callers splitting a layer should cut at multiples of
/// mr_prepared_step() so that only the layer's last range has a (slower) tail. Only output
/// channels of the row blocks [q0, q1) (MR_ROWS channels each; m is the total) are computed; when
/// their weights outweigh the input, the loop runs row block by row block, so each weight is read
/// once. `offset` has room for cin·kh·kw ints. Requires level > 0.
void mr_conv_panels_prepared(int level, const mr_conv_prepared *input, long j0, long j1, int *offset, int m, int q0, int q1,
                             const float *packed, const mr_conv_output *out, const float *bias, int relu);

/// The column step of mr_conv_panels_prepared: 48 with AVX-512, 32 otherwise.
int mr_prepared_step(int level);

/// Output channels per block of the channel-vectorised kernel: 32 with AVX-512, 16 with AVX2.
int mr_channel_block(int level);

/// Floats needed by mr_pack_channels for an M × K matrix.
long mr_channel_packed_size(int level, int m, int k);

/// Packs row-major A (M × K, row stride lda) into blocks of mr_channel_block() rows with the rows
/// innermost, packed[b][kk][j] = A(b·block + j, kk), zero-padded to whole blocks.
void mr_pack_channels(int level, int m, int k, const float *a, int lda, float *packed);

/// Position tiles of mr_conv_channels_prepared for an oh × ow output: up to 12 (AVX-512) or 6
/// positions each, whole rows or even column runs, up to 3 rows.
long mr_channel_tiles(int level, int oh, int ow);

/// A convolution on a prepared input with the vector over output channels, for outputs whose rows
/// are too short for mr_conv_panels_prepared (any ow): tasks [t0, t1) of
/// channel blocks × mr_channel_tiles(oh, ow), task = block·tiles + tile (tasks of one block are
/// adjacent, so a thread's run of tasks reuses that block's weights). `packed` is from
/// mr_pack_channels; `offset` has room for cin·kh·kw ints. Requires level > 0.
void mr_conv_channels_prepared(int level, const mr_conv_prepared *input, long t0, long t1, int *offset, int m,
                               const float *packed, const mr_conv_output *out, const float *bias, int relu);

/// One output row of an exact ×2 bilinear upsampling with align_corners = false: the source row
/// is a·r0 + b·r1 (the vertical blend, w floats each), and out (2w floats) gets out[0] = row[0],
/// out[2i+1] = ¾·row[i] + ¼·row[i+1], out[2i+2] = ¼·row[i] + ¾·row[i+1], out[2w−1] = row[w−1].
/// Vectorised with AVX-512 where available. Requires w ≥ 2.
void mr_upsample2x_row(int level, const float *r0, const float *r1, float a, float b, int w, float *out);

/// One plane of a prepared convolution input (see mr_conv_prepared): out (hp × wq) row y, column i
/// = input[y − pad][stride·i + phase − pad] (h × w), zero outside the input.
void mr_prepare_plane(const float *input, int h, int w, int pad, int stride, int phase, int hp, int wq, float *out);

/// mrdepth-unet's output post-processing in place over n pixels of each plane: front = e^front,
/// back = front·(1 + softplus(back)), mask = 1 / (1 + e^−mask). AVX-512 where available (exp and log
/// by polynomials, within a few float ulps of libm), libm otherwise.
void mr_mrdepth_post(int level, float *front, float *back, float *mask, long n);

#ifdef __cplusplus
}
#endif
#endif
