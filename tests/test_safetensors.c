/* safetensors: reading every dtype from a file written by an independent writer, round
 * trips through graft's writer, the malformed-file corpus (each with its specific error),
 * and atomic, alias-refusing writes. Add a malformed case in fixtures/gen_safetensors.py. */
#define _DEFAULT_SOURCE
#include "testutil.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graft/graft.h"

static char fixdir[1024];

static void test_read_all_dtypes(gf_ctx *ctx) {
    char path[1200], jpath[1200];
    snprintf(path, sizeof path, "%s/all_dtypes.safetensors", fixdir);
    snprintf(jpath, sizeof jpath, "%s/all_dtypes.json", fixdir);
    gf_st_file *f = gf_st_open(ctx, path);
    cJSON *ref = test_read_json(jpath);
    CHECK(f != NULL && ref != NULL);
    if (!f || !ref) {
        fprintf(stderr, "%s\n", gf_ctx_error(ctx));
        return;
    }
    CHECK(gf_st_count(f) == cJSON_GetArraySize(ref));
    CHECK(gf_st_metadata_get(f, "format") && strcmp(gf_st_metadata_get(f, "format"), "pt") == 0);
    const cJSON *e;
    cJSON_ArrayForEach(e, ref) {
        const gf_st_info *info = gf_st_find(f, e->string);
        CHECK(info != NULL);
        if (!info) continue;
        CHECK(strcmp(gf_st_dtype_name(info->dtype), cJSON_GetObjectItem(e, "dtype")->valuestring) == 0);
        gf_tensor *t = gf_st_load(ctx, f, info);
        CHECK(t != NULL);
        if (!t) continue;
        const cJSON *vals = cJSON_GetObjectItem(e, "values");
        CHECK(t->numel == cJSON_GetArraySize(vals));
        int i = 0, ok = 1;
        const cJSON *v;
        cJSON_ArrayForEach(v, vals) {
            double got = t->dtype == GF_F32 ? gf_f32(t)[i] : (double)gf_i64(t)[i];
            ok &= got == v->valuedouble || fabs(got - v->valuedouble) < 1e-6 * fabs(v->valuedouble);
            i++;
        }
        if (!ok) fprintf(stderr, "values differ for %s\n", e->string);
        CHECK(ok);
        gf_tensor_free(t);
    }
    /* shape mismatch when reading into a model tensor names both shapes */
    gf_tensor *wrong = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){3, 2});
    CHECK(gf_st_read_into(ctx, f, gf_st_find(f, "f32"), wrong) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "'f32'") && strstr(gf_ctx_error(ctx), "[2, 3]") &&
          strstr(gf_ctx_error(ctx), "[3, 2]"));
    gf_ctx_clear_error(ctx);
    gf_tensor_free(wrong);
    cJSON_Delete(ref);
    gf_st_close(f);
}

static void test_malformed_corpus(gf_ctx *ctx) {
    char mpath[1200];
    snprintf(mpath, sizeof mpath, "%s/bad_manifest.json", fixdir);
    cJSON *m = test_read_json(mpath);
    CHECK(m != NULL && cJSON_GetArraySize(m) >= 20);
    const cJSON *e;
    cJSON_ArrayForEach(e, m) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", fixdir, e->string);
        gf_ctx_clear_error(ctx);
        gf_st_file *f = gf_st_open(ctx, path);
        bool ok = f == NULL && gf_ctx_status(ctx) == GF_ERR_FORMAT &&
                  strstr(gf_ctx_error(ctx), e->valuestring) && strstr(gf_ctx_error(ctx), e->string);
        if (!ok)
            fprintf(stderr, "%s: expected an error containing '%s', got '%s'\n", e->string,
                    e->valuestring, gf_ctx_error(ctx));
        CHECK(ok);
        gf_st_close(f);
    }
    cJSON_Delete(m);
    gf_ctx_clear_error(ctx);
    CHECK(gf_st_open(ctx, "/nonexistent/x.safetensors") == NULL && gf_ctx_status(ctx) == GF_ERR_IO);
    gf_ctx_clear_error(ctx);
}

static void test_round_trip(gf_ctx *ctx, const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    gf_tensor *a = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){3, 5});
    for (int i = 0; i < 15; i++) gf_f32(a)[i] = (float)i * 0.37f - 2.0f;
    gf_tensor *lab = gf_tensor_new(ctx, GF_I64, 1, (int64_t[]){4});
    for (int i = 0; i < 4; i++) gf_i64(lab)[i] = 1000000000000LL * i - 7;
    gf_tensor *at = gf_transpose(ctx, a, 0, 1); /* a strided view is written in logical order */
    gf_tensor *b = gf_tensor_new(ctx, GF_F32, 2, (int64_t[]){5, 3});
    float tmpv[15];
    gf_copy_out(at, tmpv);
    gf_copy_in(b, tmpv);
    gf_st_writer *w = gf_st_writer_new(ctx);
    CHECK(gf_st_writer_add(w, "layer.weight", a, GF_ST_F32) == GF_OK);
    CHECK(gf_st_writer_add(w, "half", a, GF_ST_F16) == GF_OK);
    CHECK(gf_st_writer_add(w, "bhalf", a, GF_ST_BF16) == GF_OK);
    CHECK(gf_st_writer_add(w, "labels", lab, GF_ST_I64) == GF_OK);
    CHECK(gf_st_writer_add(w, "labels", lab, GF_ST_I64) != GF_OK); /* duplicate name */
    gf_ctx_clear_error(ctx);
    CHECK(gf_st_writer_set_metadata(w, "epoch", "3") == GF_OK);
    /* aliasing: the same memory under two names is refused, nothing is written */
    CHECK(gf_st_writer_add(w, "alias", at, GF_ST_F32) == GF_OK);
    CHECK(gf_st_writer_save(w, path) == GF_ERR_INVALID);
    CHECK(strstr(gf_ctx_error(ctx), "share memory") != NULL);
    CHECK(access(path, F_OK) != 0);
    gf_ctx_clear_error(ctx);
    gf_st_writer_free(w);

    w = gf_st_writer_new(ctx);
    gf_st_writer_add(w, "layer.weight", a, GF_ST_F32);
    gf_st_writer_add(w, "half", b, GF_ST_F16);
    gf_tensor *c = gf_tensor_from_data(ctx, GF_F32, 2, b->shape, b->data);
    gf_st_writer_add(w, "bhalf", c, GF_ST_BF16);
    gf_st_writer_add(w, "labels", lab, GF_ST_I64);
    gf_st_writer_set_metadata(w, "epoch", "3");
    CHECK(gf_st_writer_save(w, path) == GF_OK);
    gf_st_writer_free(w);

    gf_st_file *f = gf_st_open(ctx, path);
    CHECK(f != NULL);
    if (f) {
        CHECK(strcmp(gf_st_metadata_get(f, "epoch"), "3") == 0);
        gf_tensor *r = gf_st_load(ctx, f, gf_st_find(f, "layer.weight"));
        CHECK(r && memcmp(r->data, a->data, 15 * sizeof(float)) == 0);
        gf_tensor *h = gf_st_load(ctx, f, gf_st_find(f, "half"));
        gf_tensor *bh = gf_st_load(ctx, f, gf_st_find(f, "bhalf"));
        int ok = h && bh && h->shape[0] == 5;
        for (int i = 0; ok && i < 15; i++) {
            ok &= fabsf(gf_f32(h)[i] - gf_f32(b)[i]) <= 1e-3f * fabsf(gf_f32(b)[i]) + 1e-6f;
            ok &= fabsf(gf_f32(bh)[i] - gf_f32(b)[i]) <= 8e-3f * fabsf(gf_f32(b)[i]) + 1e-6f;
        }
        CHECK(ok);
        gf_tensor *l = gf_st_load(ctx, f, gf_st_find(f, "labels"));
        CHECK(l && l->dtype == GF_I64 && gf_i64(l)[3] == 3000000000000LL - 7);
        gf_tensor_free(r);
        gf_tensor_free(h);
        gf_tensor_free(bh);
        gf_tensor_free(l);
        gf_st_close(f);
    }
    /* header length keeps the data 8-byte aligned */
    FILE *fp = fopen(path, "rb");
    unsigned char len8[8] = {0};
    CHECK(fp && fread(len8, 1, 8, fp) == 8);
    if (fp) fclose(fp);
    CHECK(len8[0] % 8 == 0);

    /* a failed save (missing directory) leaves nothing behind */
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", dir);
    w = gf_st_writer_new(ctx);
    gf_st_writer_add(w, "a", a, GF_ST_F32);
    CHECK(gf_st_writer_save(w, bad) == GF_ERR_IO);
    gf_ctx_clear_error(ctx);
    gf_st_writer_free(w);
    /* no temporary files remain in the directory */
    DIR *d = opendir(dir);
    int tmp = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strstr(de->d_name, ".tmp.")) tmp++;
    if (d) closedir(d);
    CHECK(tmp == 0);
    unlink(path);
    gf_tensor_free(a);
    gf_tensor_free(b);
    gf_tensor_free(c);
    gf_tensor_free(lab);
}

static void test_half_conversions(void) {
    /* exact values, rounding to nearest even, subnormals, overflow, NaN */
    CHECK(gf_f32_to_f16(1.0f) == 0x3c00);
    CHECK(gf_f32_to_f16(-2.0f) == 0xc000);
    CHECK(gf_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(gf_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(gf_f32_to_f16(5.9604645e-08f) == 0x0001); /* smallest subnormal */
    CHECK(gf_f32_to_f16(2.98e-08f) == 0x0000);      /* below half of it */
    CHECK(gf_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00); /* tie → even */
    CHECK(gf_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);
    CHECK(isnan(gf_f16_to_f32(gf_f32_to_f16(NAN))));
    CHECK(gf_f16_to_f32(0x0001) == 5.9604645e-08f);
    CHECK(gf_f16_to_f32(0x7c00) == INFINITY);
    CHECK(gf_bf16_to_f32(gf_f32_to_bf16(1.0f)) == 1.0f);
    CHECK(gf_f32_to_bf16(1.0f + 1.0f / 256) == 0x3f80); /* tie → even */
    int ok = 1;
    for (uint32_t h = 0; h < 0x7c00; h++) ok &= gf_f32_to_f16(gf_f16_to_f32((uint16_t)h)) == h;
    CHECK(ok); /* every finite half survives a round trip */
}

int main(void) {
    const char *src = getenv("GRAFT_SOURCE_DIR");
    snprintf(fixdir, sizeof fixdir, "%s/tests/fixtures/st", src ? src : ".");
    char dir[] = "/tmp/graft_st_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    gf_ctx *ctx = gf_ctx_new(NULL);
    test_half_conversions();
    test_read_all_dtypes(ctx);
    test_malformed_corpus(ctx);
    test_round_trip(ctx, dir);
    gf_ctx_free(ctx);
    rmdir(dir);
    return test_finish("test_safetensors");
}
