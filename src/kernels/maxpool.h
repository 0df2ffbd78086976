/* Max-pooling kernels for one [h, w] plane: the general reference (padding, dilation, ceil
 * mode) and a vectorised fast path for windows that tile the plane (kernel == stride, no
 * padding, no dilation, every window inside), which is the usual 2x2 pooling. Internal to
 * src/ops/pool.c and tests/test_kernels.c. */
#ifndef GRAFT_KERNELS_MAXPOOL_H
#define GRAFT_KERNELS_MAXPOOL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct gf_maxpool_geom {
    int64_t h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw, dh, dw;
} gf_maxpool_geom;

/* True when the fast tiled kernels apply to g. */
bool gf_maxpool_tiled(const gf_maxpool_geom *g);

/* y [oh, ow] = the maximum of each window of x [h, w]; arg (NULL: not wanted) = its index in
 * the plane. PyTorch's rules: the first of equal maxima wins, a NaN always wins (so the last
 * NaN of a window is the one kept). Both kernels give identical results where both apply;
 * the tiled one runs 2x2 windows in explicit 4-lane vectors (SSE2 on x86-64). */
void gf_maxpool_plane_ref(const gf_maxpool_geom *g, const float *x, float *y, int32_t *arg);
void gf_maxpool_plane_tiled(const gf_maxpool_geom *g, const float *x, float *y, int32_t *arg);

/* The same with the argmax as a tap: the winner's position r * kw + c within its window
 * (row r, column c of the kh x kw taps, counted from the window's corner, padding taps
 * included), one byte per output instead of a 4-byte index. For windows of at most 256
 * taps (gf_maxpool_taps_fit), i.e. every usual pooling; tap may be NULL. */
bool gf_maxpool_taps_fit(const gf_maxpool_geom *g);
void gf_maxpool_plane_ref_taps(const gf_maxpool_geom *g, const float *x, float *y, uint8_t *tap);
void gf_maxpool_plane_tiled_taps(const gf_maxpool_geom *g, const float *x, float *y,
                                 uint8_t *tap);

/* Backward of one plane: gx[arg[k]] += dy[k]. With fresh set, gx is uninitialised and the
 * whole plane is written instead: 0 + dy at each window's winner, 0 elsewhere (bitwise what
 * zero-filling and accumulating gives), as a zero-fill of the plane (in cache) and the
 * scatter. */
void gf_maxpool_plane_bwd(const gf_maxpool_geom *g, const float *dy, const int32_t *arg,
                          float *gx, bool fresh);
/* The same from taps; for a tiled geometry a fresh plane is written in one pass. */
void gf_maxpool_plane_bwd_taps(const gf_maxpool_geom *g, const float *dy, const uint8_t *tap,
                               float *gx, bool fresh);

#endif
