/* test_parity FIXTURE.json...    runs the cases of each fixture file (see harness.h)
 * test_parity --coverage FILES   checks that every public op has at least one case with a
 *                                gradient check, across the given files. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every differentiable public op of ops.h, by its fixture name. */
static const char *const required_ops[] = {
    "add", "sub", "mul", "div", "pow", "affine", "matmul", "linear",
    "exp", "log", "sqrt", "pow_scalar", "clamp", "relu", "leaky_relu", "elu", "gelu", "silu",
    "sigmoid", "tanh", "softplus", "softmax", "log_softmax", "sum", "mean", "max",
    "reshape", "flatten", "transpose", "permute", "slice", "contiguous", "concat", "split", "pad",
    "conv2d", "conv1d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "batch_norm", "layer_norm", "embedding", "cross_entropy", "mse_loss",
    "cross_entropy_ex", "nll_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "bce_with_logits",
    "kl_div", "scaled_dot_product_attention", "multi_head_attention",
};

static int coverage(int argc, char **argv) {
    size_t nreq = sizeof required_ops / sizeof required_ops[0];
    int *seen = calloc(nreq, sizeof(int));
    for (int a = 0; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (!f) {
            fprintf(stderr, "%s: cannot read\n", argv[a]);
            free(seen);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc((size_t)n + 1);
        size_t got = fread(buf, 1, (size_t)n, f);
        buf[got] = '\0';
        fclose(f);
        cJSON *root = cJSON_Parse(buf);
        free(buf);
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cases")) {
            const char *op = case_str(c, "op", "");
            for (size_t i = 0; i < nreq; i++)
                if (strcmp(op, required_ops[i]) == 0 && case_bool(c, "gc", true)) seen[i]++;
        }
        cJSON_Delete(root);
    }
    int missing = 0;
    printf("op coverage (cases with parity + finite-difference check):\n");
    for (size_t i = 0; i < nreq; i++) {
        printf("  %-20s %d\n", required_ops[i], seen[i]);
        if (!seen[i]) missing++;
    }
    free(seen);
    printf("coverage: %zu passed, %d failed\n", nreq - (size_t)missing, missing);
    return missing ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--coverage") == 0) return coverage(argc - 2, argv + 2);
    int total = 0, failed = 0;
    for (int a = 1; a < argc; a++) {
        int n;
        int f = harness_run_file(argv[a], &n);
        if (f < 0) {
            failed++;
            continue;
        }
        total += n;
        failed += f;
    }
    printf("%d passed, %d failed\n", total - failed, failed);
    return failed || total == 0 ? 1 : 0;
}
