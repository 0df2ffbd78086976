/* Where to cut an imported TensorFlow.js model: the block ends a cut sweep probes
 * (graft probe --cut-sweep). */
#include "import/tfjs_internal.h"

#include <stdlib.h>
#include <string.h>

/* A 1 x 1, stride-1 convolution that widens the channels of its input (a block's expansion,
 * MobileNetV2's block_N_expand and Conv_1). */
static bool widening_pointwise(const tj_graph *g, const tj_node *nd) {
    if (nd->kind != TJ_CONV || nd->kh != 1 || nd->kw != 1 || nd->sh != 1 || nd->sw != 1)
        return false;
    const tj_node *in = &g->nodes[nd->in[0]];
    return nd->out_ndim > 0 && in->out_ndim > 0 &&
           nd->out[nd->out_ndim - 1] > in->out[in->out_ndim - 1];
}

/* Whether node i is a block end: the kept layers after it read nothing before it, and it is
 * an Add or Concatenate, is read by several layers, is read by a widening 1 x 1 convolution,
 * a pooling or a Flatten layer, or is the module's output. first_after: the smallest input
 * index of the kept layers after i. */
static bool block_end(const tj_graph *g, int i, int first_after) {
    const tj_node *nd = &g->nodes[i];
    if (!nd->keep || i == g->input || first_after < i) return false;
    if (i == g->output || nd->kind == TJ_ADD || nd->kind == TJ_CONCAT) return true;
    int readers = 0;
    bool starts = false;
    for (int b = i + 1; b <= g->output; b++) {
        const tj_node *r = &g->nodes[b];
        if (!r->keep) continue;
        for (int k = 0; k < r->n_in; k++) {
            if (r->in[k] != i) continue;
            readers++;
            starts = starts || widening_pointwise(g, r) || r->kind == TJ_MAXPOOL ||
                     r->kind == TJ_AVGPOOL || r->kind == TJ_GAP || r->kind == TJ_GMP ||
                     r->kind == TJ_FLATTEN;
        }
    }
    return readers > 1 || starts;
}

int gf_tfjs_block_ends(gf_ctx *ctx, const gf_module *m, const char **names, int cap) {
    const tj_graph *g = tj_graph_of(ctx, m, "TensorFlow.js block ends");
    if (!g) return -1;
    int *first = malloc(sizeof *first * (size_t)(g->n + 1));
    if (!first) {
        gf_ctx_set_error(ctx, GF_ERR_NOMEM, "TensorFlow.js block ends: out of memory");
        return -1;
    }
    first[g->n] = g->n; /* first[i]: the smallest input of the kept layers at or after i */
    for (int i = g->n - 1; i >= 0; i--) {
        first[i] = first[i + 1];
        const tj_node *nd = &g->nodes[i];
        for (int k = 0; nd->keep && i <= g->output && k < nd->n_in; k++)
            if (nd->in[k] < first[i]) first[i] = nd->in[k];
    }
    int count = 0;
    for (int i = 0; i <= g->output; i++)
        if (block_end(g, i, first[i + 1])) {
            if (names && count < cap) names[count] = g->nodes[i].name;
            count++;
        }
    free(first);
    return count;
}
