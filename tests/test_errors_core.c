/* Bad input to core ops returns NULL with a message naming the op and both shapes. */
#include "testutil.h"

#include <string.h>

#include "graft/graft.h"

int main(void) {
    gf_ctx *ctx = gf_ctx_new(NULL);
    gf_tensor *a = gf_zeros(ctx, GF_F32, 2, (int64_t[]){2, 3});
    gf_tensor *b = gf_zeros(ctx, GF_F32, 2, (int64_t[]){4, 5});
    gf_tensor *i = gf_zeros(ctx, GF_I64, 1, (int64_t[]){3});
    EXPECT_ERR(ctx, gf_matmul(ctx, a, b), GF_ERR_SHAPE, "matmul", "[2, 3]", "[4, 5]");
    EXPECT_ERR(ctx, gf_add(ctx, a, b), GF_ERR_SHAPE, "add", "[2, 3]", "[4, 5]");
    EXPECT_ERR(ctx, gf_mul(ctx, a, i), GF_ERR_DTYPE, "mul", "float32", "int64");
    EXPECT_ERR(ctx, gf_sub(ctx, NULL, a), GF_ERR_INVALID, "sub", "NULL");
    EXPECT_ERR(ctx, gf_linear(ctx, a, b, NULL), GF_ERR_SHAPE, "linear", "[2, 3]", "[4, 5]");
    EXPECT_ERR(ctx, gf_transpose(ctx, a, 0, 5), GF_ERR_INVALID, "transpose", "axis 5");
    EXPECT_ERR(ctx, gf_reshape(ctx, a, 2, ((int64_t[]){4, 2})), GF_ERR_SHAPE, "reshape", "[2, 3]", "[4, 2]");
    EXPECT_ERR(ctx, gf_slice(ctx, a, 1, 2, 1, 1), GF_ERR_INVALID, "slice");
    gf_tensor *parts[2];
    gf_ctx_clear_error(ctx);
    CHECK(gf_split(ctx, a, (int64_t[]){1, 1}, 2, 1, parts) == GF_ERR_SHAPE);
    CHECK(strstr(gf_ctx_error(ctx), "split") != NULL);
    gf_tensor *cat[2] = {a, b};
    EXPECT_ERR(ctx, gf_concat(ctx, cat, 2, 0), GF_ERR_SHAPE, "concat", "[4, 5]", "[2, 3]");
    EXPECT_ERR(ctx, gf_pad(ctx, a, (int64_t[]){1}, 1, 0.0f), GF_ERR_INVALID, "pad");
    EXPECT_ERR(ctx, gf_permute(ctx, a, ((int[]){0, 0})), GF_ERR_INVALID, "permute");

    /* the first error is kept; a NULL input downstream adds no new message */
    gf_ctx_clear_error(ctx);
    gf_tensor *bad = gf_matmul(ctx, a, b);
    gf_tensor *next = gf_add(ctx, bad, a);
    CHECK(next == NULL && strstr(gf_ctx_error(ctx), "matmul") != NULL);
    gf_ctx_free(ctx);
    return test_finish("test_errors_core");
}
