/* NonMaxSuppression (opset 10): per batch and class, boxes taken greedily in falling score order
 * (ties by index) while their IoU with every box taken so far is at most iou_threshold, scores
 * at or under score_threshold dropped, at most max_output_boxes_per_class each. Output: int64
 * [selected, 3] rows (batch, class, box), no gradient. */
#include "import/onnx_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct { float score; int64_t i; } scored;

static int by_score(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Box i of batch b as (y1, x1, y2, x2) with y1 <= y2, x1 <= x2. */
static void corners(const gf_tensor *boxes, int64_t b, int64_t i, bool center, float *c) {
    const int64_t o = (b * boxes->shape[1] + i) * 4;
    float v[4];
    for (int k = 0; k < 4; k++) v[k] = gf_get_f32(boxes, o + k);
    if (center) { /* [x_center, y_center, width, height] */
        c[0] = v[1] - v[3] / 2, c[1] = v[0] - v[2] / 2, c[2] = v[1] + v[3] / 2,
        c[3] = v[0] + v[2] / 2;
        return;
    }
    c[0] = v[0] < v[2] ? v[0] : v[2], c[2] = v[0] < v[2] ? v[2] : v[0];
    c[1] = v[1] < v[3] ? v[1] : v[3], c[3] = v[1] < v[3] ? v[3] : v[1];
}

static float iou(const float *a, const float *b) {
    float h = (a[2] < b[2] ? a[2] : b[2]) - (a[0] > b[0] ? a[0] : b[0]);
    float w = (a[3] < b[3] ? a[3] : b[3]) - (a[1] > b[1] ? a[1] : b[1]);
    if (h <= 0 || w <= 0) return 0;
    float inter = h * w,
          uni = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return uni > 0 ? inter / uni : 0;
}

bool ox_op_nms(ox_exec *e) {
    gf_tensor *boxes = e->in[0], *scores = e->in[1];
    if (!ox_need(e, 0, GF_F32) || !ox_need(e, 1, GF_F32)) return false;
    if (boxes->ndim != 3 || boxes->shape[2] != 4 || scores->ndim != 3 ||
        scores->shape[0] != boxes->shape[0] || scores->shape[2] != boxes->shape[1])
        return ox_fail(e, GF_ERR_SHAPE, "expected boxes [B, N, 4] and scores [B, C, N]");
    double max_out = 0, thr = 0, sthr = -INFINITY;
    if (e->n_in > 2 && e->in[2] && e->in[2]->numel && !ox_input_scalar(e, 2, &max_out))
        return false;
    if (e->n_in > 3 && e->in[3] && e->in[3]->numel && !ox_input_scalar(e, 3, &thr)) return false;
    if (e->n_in > 4 && e->in[4] && e->in[4]->numel && !ox_input_scalar(e, 4, &sthr)) return false;
    const bool center = ox_attr_int(e->node, "center_point_box", 0) != 0;
    const int64_t nb = boxes->shape[0], nc = scores->shape[1], n = boxes->shape[1];
    const int64_t cap = max_out < 0 ? 0 : max_out > (double)n ? n : (int64_t)max_out;
    if (!ox_check_numel(e, ox_mul(ox_mul(nb * nc, cap), 3), "the selected indices")) return false;
    scored *order = gf_scratch(e->ctx, sizeof(scored) * (size_t)(n + 1));
    int64_t *kept = gf_scratch(e->ctx, sizeof(int64_t) * (size_t)(n + 1));
    int64_t *rows = gf_scratch(e->ctx, sizeof(int64_t) * (size_t)(3 * nb * nc * cap + 3));
    float *box = gf_scratch_f32(e->ctx, 4 * (n + 1));
    if (!order || !kept || !rows || !box) return false;
    int64_t sel = 0;
    for (int64_t b = 0; b < nb; b++) {
        for (int64_t i = 0; i < n; i++) corners(boxes, b, i, center, box + 4 * i);
        for (int64_t c = 0; c < nc; c++) {
            int64_t m = 0, k = 0;
            for (int64_t i = 0; i < n; i++) {
                float s = gf_get_f32(scores, (b * nc + c) * n + i);
                if (s > sthr) order[m++] = (scored){s, i};
            }
            qsort(order, (size_t)m, sizeof *order, by_score);
            for (int64_t j = 0; j < m && k < cap; j++) {
                bool keep = true;
                for (int64_t q = 0; q < k && keep; q++)
                    keep = iou(box + 4 * order[j].i, box + 4 * kept[q]) <= thr;
                if (!keep) continue;
                kept[k++] = order[j].i;
                rows[3 * sel] = b, rows[3 * sel + 1] = c, rows[3 * sel + 2] = order[j].i, sel++;
            }
        }
    }
    int64_t shape[2] = {sel, 3};
    gf_tensor *o = gf_empty(e->ctx, GF_I64, 2, shape);
    if (o && sel) memcpy(o->data, rows, sizeof(int64_t) * (size_t)(3 * sel));
    return (e->out[0] = o) != NULL;
}
