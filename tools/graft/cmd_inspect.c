/* graft inspect FILE.safetensors [--json]: names, dtypes, shapes, sizes, metadata and the
 * parameter total of a weights file. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "graft/graft.h"
#include "cli.h"

static const char *const inspect_usage =
    "usage: graft inspect FILE.safetensors [--json]\n"
    "\n"
    "Lists every tensor of a safetensors file (name, dtype, shape, bytes), its metadata and\n"
    "the total number of elements. The file is fully validated first; a malformed file is\n"
    "reported with the tensor at fault and exit status 1.\n"
    "\n"
    "  --json    print the same as one JSON object on stdout\n"
    "\n"
    "example:\n"
    "  graft inspect model.safetensors\n"
    "  graft inspect model.safetensors --json | jq '.tensors[].name'\n";

static void print_table(const gf_st_file *f) {
    int64_t total = 0;
    uint64_t bytes = 0;
    size_t w = 4;
    for (int i = 0; i < gf_st_count(f); i++) {
        size_t n = strlen(gf_st_get(f, i)->name);
        if (n > w) w = n;
    }
    if (w > 60) w = 60;
    printf("%-*s  %-5s  %-20s  %12s\n", (int)w, "name", "dtype", "shape", "bytes");
    for (int i = 0; i < gf_st_count(f); i++) {
        const gf_st_info *t = gf_st_get(f, i);
        char shape[96];
        gf_dims_str(t->ndim, t->shape, shape, sizeof shape);
        printf("%-*s  %-5s  %-20s  %12llu\n", (int)w, t->name, gf_st_dtype_name(t->dtype), shape,
               (unsigned long long)(t->end - t->begin));
        total += t->numel;
        bytes += t->end - t->begin;
    }
    if (gf_st_metadata_count(f)) {
        printf("\nmetadata:\n");
        for (int i = 0; i < gf_st_metadata_count(f); i++)
            printf("  %s = %s\n", gf_st_metadata_key(f, i), gf_st_metadata_value(f, i));
    }
    printf("\n%d tensors, %lld parameters, %llu bytes of data\n", gf_st_count(f), (long long)total,
           (unsigned long long)bytes);
}

static int print_json(const gf_st_file *f) {
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "tensors");
    int64_t total = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < gf_st_count(f); i++) {
        const gf_st_info *t = gf_st_get(f, i);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "dtype", gf_st_dtype_name(t->dtype));
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddNumberToObject(o, "numel", (double)t->numel);
        cJSON_AddNumberToObject(o, "bytes", (double)(t->end - t->begin));
        cJSON_AddItemToArray(arr, o);
        total += t->numel;
        bytes += t->end - t->begin;
    }
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    for (int i = 0; i < gf_st_metadata_count(f); i++)
        cJSON_AddStringToObject(meta, gf_st_metadata_key(f, i), gf_st_metadata_value(f, i));
    cJSON_AddNumberToObject(root, "tensor_count", gf_st_count(f));
    cJSON_AddNumberToObject(root, "parameters", (double)total);
    cJSON_AddNumberToObject(root, "bytes", (double)bytes);
    char *s = cJSON_Print(root);
    int ok = s != NULL;
    if (s) puts(s);
    cJSON_free(s);
    cJSON_Delete(root);
    return ok ? 0 : 1;
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(inspect_usage, stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "graft inspect: unknown option '%s'\n%s", argv[i], inspect_usage);
            return CLI_USAGE;
        } else if (!path) path = argv[i];
        else {
            fprintf(stderr, "graft inspect: one file at a time ('%s' is extra)\n", argv[i]);
            return CLI_USAGE;
        }
    }
    if (!path) {
        fprintf(stderr, "graft inspect: no file given\n%s", inspect_usage);
        return CLI_USAGE;
    }
    gf_ctx *ctx = gf_ctx_new(NULL);
    if (!ctx) return 1;
    gf_st_file *f = gf_st_open(ctx, path);
    int rc = 1;
    if (!f) fprintf(stderr, "graft inspect: %s\n", gf_ctx_error(ctx));
    else {
        rc = json ? print_json(f) : (print_table(f), 0);
        gf_st_close(f);
    }
    gf_ctx_free(ctx);
    return rc;
}
