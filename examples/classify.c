/* A model written by `graft train` put to use: the weights file holds the model, its class names
 * and the preprocessing of its training data, so a new image or CSV row is read, resized and
 * normalised as the training data was, and each input's class is printed by name.
 * Build against an installed graft:
 *     cc -O2 classify.c $(pkg-config --cflags --libs graft) -o classify
 * Run:  graft train --data csv:iris.csv --out iris.safetensors
 *       classify iris.safetensors rows.csv      (or an image, for a model trained on images)
 * Exit status: 0 done, 1 error, 2 usage. */
#include <graft/graft.h>

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) return fprintf(stderr, "usage: classify WEIGHTS IMAGE|ROWS.csv\n"), 2;
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_bundle *b = ctx ? gf_bundle_load(ctx, argv[1], NULL) : NULL; /* model, classes, inputs */
    gf_tensor *x = b ? gf_bundle_read(ctx, b, argv[2], NULL) : NULL; /* [n, ...] prepared */
    gf_tensor *k = x ? gf_argmax(ctx, gf_bundle_predict(ctx, b, x), 1, false) : NULL; /* [n] */
    for (int64_t i = 0; k && i < k->numel; i++)
        printf("%s\n", gf_bundle_class_name(b, (int)gf_i64(k)[i]));
    if (ctx && !k) fprintf(stderr, "classify: %s\n", gf_ctx_error(ctx));
    gf_tensor_free(x);
    gf_bundle_free(b);
    gf_ctx_free(ctx);
    return k ? 0 : 1;
}
