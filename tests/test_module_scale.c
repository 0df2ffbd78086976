/* Model building stays linear in the number of layers: gf_module_add checked each new name
 * against every name before it (a spec of 500,000 layers ran past 120 s), and the spec builder
 * did the same for a container's child names; so does saving and reading its state_dict. No timing is asserted: at these sizes a quadratic
 * step takes minutes and runs into this test's ctest TIMEOUT (60 s), while the linear build
 * takes well under a second. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graft/graft.h"

enum { N_CHILDREN = 300000, N_SPEC = 200000 };

static void test_many_children(gf_ctx *ctx) {
    gf_module *seq = gf_nn_sequential(ctx);
    gf_status st = GF_OK;
    for (int i = 0; i < N_CHILDREN && st == GF_OK; i++) st = gf_module_append(ctx, seq, gf_nn_relu(ctx));
    CHECK(st == GF_OK && gf_module_num_children(seq) == N_CHILDREN);
    /* duplicates are still refused, lookups still find every child */
    CHECK(gf_module_add(ctx, seq, "123456", gf_nn_relu(ctx)) == GF_ERR_INVALID);
    gf_ctx_clear_error(ctx);
    CHECK(gf_module_child(seq, "0") && gf_module_child(seq, "299999") && !gf_module_child(seq, "300000"));
    /* removing and replacing keep the index right */
    gf_module *d = gf_module_detach(ctx, seq, "7");
    CHECK(d && !gf_module_child(seq, "7") && gf_module_child(seq, "8"));
    gf_module_free(d);
    CHECK(gf_module_add(ctx, seq, "7", gf_nn_tanh(ctx)) == GF_OK);
    CHECK(strcmp(gf_module_type(gf_module_child(seq, "7")), "Tanh") == 0);
    CHECK(gf_module_replace(ctx, seq, "9", gf_nn_sigmoid(ctx)) == GF_OK);
    CHECK(strcmp(gf_module_type(gf_module_child(seq, "9")), "Sigmoid") == 0);
    gf_module_free(seq);
}

/* A container spec with n named children, the last one repeating "l5" when dup. */
static char *spec_text(int n, bool dup, size_t *len) {
    size_t cap = (size_t)n * 40 + 128, k = 0;
    char *text = malloc(cap);
    k += (size_t)snprintf(text + k, cap - k, "{\"type\":\"container\",\"children\":{");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(text + k, cap - k, "%s\"l%d\":{\"type\":\"relu\"}", i ? "," : "", i);
    if (dup) k += (size_t)snprintf(text + k, cap - k, ",\"l5\":{\"type\":\"relu\"}");
    k += (size_t)snprintf(text + k, cap - k, "}}");
    *len = k;
    return text;
}

static void test_many_spec_children(gf_ctx *ctx) {
    size_t len;
    char *text = spec_text(N_SPEC, false, &len);
    gf_module *m = gf_spec_parse(ctx, text, len, NULL, NULL);
    CHECK(m && gf_module_num_children(m) == N_SPEC);
    if (!m) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    gf_module_free(m);
    free(text);
    /* a repeated name is still caught, and named */
    text = spec_text(N_SPEC, true, &len);
    EXPECT_ERR(ctx, gf_spec_parse(ctx, text, len, NULL, NULL), GF_ERR_INVALID,
               "child name \"l5\" given twice");
    gf_ctx_clear_error(ctx);
    free(text);
}

/* A state_dict of N_SPEC tensors through the safetensors writer and reader: the writer
 * checked each name against all before it and every pair of tensors for shared memory, the
 * reader's lookup by name scanned every entry. */
static void test_many_tensors(gf_ctx *ctx) {
    const int64_t n = N_SPEC; /* 7 JSON values each: within json-nodes */
    gf_tensor *all = gf_tensor_new(ctx, GF_F32, 1, &n);
    gf_st_writer *w = gf_st_writer_new(ctx);
    CHECK(all && w);
    if (!all || !w) return;
    for (int64_t i = 0; i < n; i++) gf_f32(all)[i] = (float)i;
    char name[32];
    gf_status st = GF_OK;
    for (int64_t i = 0; i < n && st == GF_OK; i++) {
        snprintf(name, sizeof name, "t%lld", (long long)i);
        st = gf_st_writer_add(w, name, gf_slice(ctx, all, 0, i, i + 1, 1), GF_ST_F32);
    }
    CHECK(st == GF_OK);
    CHECK(gf_st_writer_add(w, "t77", all, GF_ST_F32) == GF_ERR_INVALID); /* a name twice */
    gf_ctx_clear_error(ctx);
    char path[] = "/tmp/graft-scale-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(gf_st_writer_save(w, path) == GF_OK);
    gf_st_file *f = gf_st_open(ctx, path);
    CHECK(f && gf_st_count(f) == n);
    if (!f) fprintf(stderr, "%s\n", gf_ctx_error(ctx));
    int found = 0;
    for (int64_t i = 0; f && i < n; i++) {
        snprintf(name, sizeof name, "t%lld", (long long)i);
        const gf_st_info *info = gf_st_find(f, name);
        float v;
        if (info) memcpy(&v, info->data, 4);
        found += info && v == (float)i;
    }
    CHECK(found == n && (!f || !gf_st_find(f, "t-1")));
    gf_st_close(f);
    unlink(path);
    /* two names over the same bytes are still refused */
    CHECK(gf_st_writer_add(w, "again", gf_slice(ctx, all, 0, 5, 9, 1), GF_ST_F32) == GF_OK);
    CHECK(gf_st_writer_save(w, path) == GF_ERR_INVALID && strstr(gf_ctx_error(ctx), "share memory"));
    gf_ctx_clear_error(ctx);
    gf_st_writer_free(w);
    gf_tensor_free(all);
    gf_ctx_reset(ctx);
}

int main(void) {
    gf_ctx_params cp = gf_ctx_default_params();
    cp.n_threads = 1;
    gf_ctx *ctx = gf_ctx_new(&cp);
    test_many_children(ctx);
    test_many_spec_children(ctx);
    test_many_tensors(ctx);
    gf_ctx_free(ctx);
    return test_finish("test_module_scale");
}
