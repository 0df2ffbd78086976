/* The table of ONNX ops graft runs: per op type of the default domain, the first opset it is
 * run from, how many inputs and outputs it takes, which inputs hold weights (their float
 * initializers or Constant values become parameters), settings (they stay constants) or
 * BatchNormalization statistics (buffers), and its function. Opset-dependent semantics are
 * handled inside the functions (they read node->opset). docs/IMPORT.md lists the same ops. */
#include "import/onnx_internal.h"

#include <stdio.h>
#include <string.h>

#define B(i) (1u << (i))
#define MANY 4096

/* op, since, inputs min/max, outputs max, weights, settings, buffers, function, flags */
#define UN(name, since) {name, since, 1, 1, 1, 0, 0, 0, ox_op_unary, 0}
#define BIN(name, since, fn) {name, since, 2, 2, 1, 0, 0, 0, fn, 0}
#define RED(name) {name, 1, 1, 2, 1, 0, 0, 0, ox_op_reduce, 0}
static const ox_opdef table[] = {
    UN("Abs", 1), UN("Acos", 7), UN("Acosh", 9),
    BIN("Add", 1, ox_op_add), BIN("And", 1, ox_op_compare),
    {"ArgMax", 1, 1, 1, 1, 0, 0, 0, ox_op_argmax, 0},
    {"ArgMin", 1, 1, 1, 1, 0, 0, 0, ox_op_argmax, 0},
    UN("Asin", 7), UN("Asinh", 9), UN("Atan", 7), UN("Atanh", 9),
    {"AveragePool", 1, 1, 1, 1, 0, 0, 0, ox_op_average_pool, 0},
    {"BatchNormalization", 1, 5, 5, 5, B(1) | B(2), 0, B(3) | B(4), ox_op_batch_norm, 0},
    BIN("BitShift", 11, ox_op_bitshift),
    {"BlackmanWindow", 17, 1, 1, 1, 0, 0, 0, ox_op_window, 0},
    {"Cast", 1, 1, 1, 1, 0, 0, 0, ox_op_cast, 0},
    {"CastLike", 15, 2, 2, 1, 0, 0, 0, ox_op_cast_like, 0},
    UN("Ceil", 1),
    {"Celu", 12, 1, 1, 1, 0, 0, 0, ox_op_celu, 0},
    {"Clip", 1, 1, 3, 1, 0, B(1) | B(2), 0, ox_op_clip, 0},
    {"Compress", 9, 2, 2, 1, 0, 0, 0, ox_op_compress, 0},
    {"Concat", 1, 1, MANY, 1, 0, 0, 0, ox_op_concat, 0},
    {"Constant", 1, 0, 0, 1, 0, 0, 0, ox_op_constant, 0},
    {"ConstantOfShape", 9, 1, 1, 1, 0, 0, 0, ox_op_constant_of_shape, 0},
    {"Conv", 1, 2, 3, 1, B(1) | B(2), 0, 0, ox_op_conv, 0},
    {"ConvInteger", 10, 2, 4, 1, 0, 0, 0, ox_op_conv_integer, 0},
    {"ConvTranspose", 1, 2, 3, 1, B(1) | B(2), 0, 0, ox_op_conv_transpose, 0},
    UN("Cos", 7), UN("Cosh", 9),
    {"CumSum", 11, 2, 2, 1, 0, 0, 0, ox_op_cumsum, 0},
    {"DepthToSpace", 1, 1, 1, 1, 0, 0, 0, ox_op_depth_to_space, 0},
    {"DequantizeLinear", 10, 2, 3, 1, 0, B(1) | B(2), 0, ox_op_dequantize, 0},
    {"Det", 11, 1, 1, 1, 0, 0, 0, ox_op_det, 0},
    BIN("Div", 1, ox_op_div),
    {"Dropout", 1, 1, 3, 2, 0, B(1) | B(2), 0, ox_op_dropout, 0},
    {"DynamicQuantizeLinear", 11, 1, 1, 3, 0, 0, 0, ox_op_dynamic_quantize, 0},
    {"Einsum", 12, 1, 8, 1, 0, 0, 0, ox_op_einsum, 0},
    {"Elu", 1, 1, 1, 1, 0, 0, 0, ox_op_elu, 0},
    BIN("Equal", 1, ox_op_compare),
    UN("Erf", 9), UN("Exp", 1),
    BIN("Expand", 8, ox_op_expand),
    {"EyeLike", 9, 1, 1, 1, 0, 0, 0, ox_op_eye_like, 0},
    {"Flatten", 1, 1, 1, 1, 0, 0, 0, ox_op_flatten, 0},
    UN("Floor", 1),
    {"Gather", 1, 2, 2, 1, B(0), 0, 0, ox_op_gather, 0},
    {"GatherElements", 11, 2, 2, 1, 0, 0, 0, ox_op_gather_elements, 0},
    {"GatherND", 11, 2, 2, 1, 0, 0, 0, ox_op_gather_nd, 0},
    {"Gemm", 1, 2, 3, 1, B(1) | B(2), 0, 0, ox_op_gemm, 0},
    {"GlobalAveragePool", 1, 1, 1, 1, 0, 0, 0, ox_op_global_pool, 0},
    {"GlobalMaxPool", 1, 1, 1, 1, 0, 0, 0, ox_op_global_pool, 0},
    BIN("Greater", 1, ox_op_compare), BIN("GreaterOrEqual", 12, ox_op_compare),
    {"GridSample", 16, 2, 2, 1, 0, 0, 0, ox_op_grid_sample, 0},
    {"HammingWindow", 17, 1, 1, 1, 0, 0, 0, ox_op_window, 0},
    {"HannWindow", 17, 1, 1, 1, 0, 0, 0, ox_op_window, 0},
    {"HardSigmoid", 1, 1, 1, 1, 0, 0, 0, ox_op_hard_sigmoid, 0},
    {"HardSwish", 14, 1, 1, 1, 0, 0, 0, ox_op_hard_swish, 0},
    {"Hardmax", 1, 1, 1, 1, 0, 0, 0, ox_op_hardmax, 0},
    {"Identity", 1, 1, 1, 1, 0, 0, 0, ox_op_identity, 0},
    /* If: the condition, then the values of enclosing graphs its branches read */
    {"If", 1, 1, 1 << 30, OX_MAX_IF_OUT, 0, 0, 0, ox_op_if, 0},
    {"InstanceNormalization", 1, 3, 3, 1, B(1) | B(2), 0, 0, ox_op_instance_norm, 0},
    {"IsInf", 10, 1, 1, 1, 0, 0, 0, ox_op_isinf, 0},
    {"IsNaN", 9, 1, 1, 1, 0, 0, 0, ox_op_isnan, 0},
    {"GRU", 7, 3, 6, 2, B(1) | B(2) | B(3), 0, 0, ox_op_gru, 0},
    {"LRN", 1, 1, 1, 1, 0, 0, 0, ox_op_lrn, 0},
    {"LSTM", 7, 3, 8, 3, B(1) | B(2) | B(3) | B(7), 0, 0, ox_op_lstm, 0},
    {"LayerNormalization", 17, 2, 3, 3, B(1) | B(2), 0, 0, ox_op_layer_norm, 0},
    {"LeakyRelu", 1, 1, 1, 1, 0, 0, 0, ox_op_leaky_relu, 0},
    BIN("Less", 1, ox_op_compare), BIN("LessOrEqual", 12, ox_op_compare),
    UN("Log", 1),
    {"LogSoftmax", 1, 1, 1, 1, 0, 0, 0, ox_op_softmax, 0},
    {"MatMul", 1, 2, 2, 1, B(0) | B(1), 0, 0, ox_op_matmul, 0},
    {"MatMulInteger", 10, 2, 4, 1, 0, 0, 0, ox_op_matmul_integer, 0},
    {"Max", 1, 1, MANY, 1, 0, 0, 0, ox_op_minmax, 0},
    {"MaxPool", 1, 1, 1, 2, 0, 0, 0, ox_op_max_pool, 0},
    {"MaxUnpool", 9, 2, 3, 1, 0, 0, 0, ox_op_max_unpool, 0},
    {"Mean", 1, 1, MANY, 1, 0, 0, 0, ox_op_mean, 0},
    {"MeanVarianceNormalization", 9, 1, 1, 1, 0, 0, 0, ox_op_mvn, 0},
    {"Min", 1, 1, MANY, 1, 0, 0, 0, ox_op_minmax, 0},
    BIN("Mod", 10, ox_op_mod), BIN("Mul", 1, ox_op_mul),
    UN("Neg", 1),
    {"NegativeLogLikelihoodLoss", 12, 2, 3, 1, 0, B(2), 0, ox_op_nll_loss, 0},
    {"NonMaxSuppression", 10, 2, 5, 1, 0, B(2) | B(3) | B(4), 0, ox_op_nms, 0},
    {"NonZero", 9, 1, 1, 1, 0, 0, 0, ox_op_nonzero, 0},
    {"Not", 1, 1, 1, 1, 0, 0, 0, ox_op_not, 0},
    {"OneHot", 9, 3, 3, 1, 0, 0, 0, ox_op_one_hot, 0},
    BIN("Or", 1, ox_op_compare),
    {"PRelu", 1, 2, 2, 1, B(1), 0, 0, ox_op_prelu, 0},
    {"Pad", 1, 1, 4, 1, 0, B(2), 0, ox_op_pad, 0},
    {"Pow", 1, 2, 2, 1, 0, B(1), 0, ox_op_pow, 0},
    {"QLinearConv", 10, 8, 9, 1, 0, B(1) | B(4) | B(6), 0, ox_op_qlinear_conv, 0},
    {"QLinearMatMul", 10, 8, 8, 1, 0, B(1) | B(4) | B(6), 0, ox_op_qlinear_matmul, 0},
    {"QuantizeLinear", 10, 2, 3, 1, 0, B(1) | B(2), 0, ox_op_quantize, 0},
    {"Range", 11, 3, 3, 1, 0, 0, 0, ox_op_range, 0},
    UN("Reciprocal", 1),
    RED("ReduceL1"), RED("ReduceL2"), RED("ReduceLogSum"), RED("ReduceLogSumExp"),
    RED("ReduceMax"), RED("ReduceMean"), RED("ReduceMin"), RED("ReduceProd"), RED("ReduceSum"),
    RED("ReduceSumSquare"),
    {"RNN", 7, 3, 6, 2, B(1) | B(2) | B(3), 0, 0, ox_op_rnn, 0},
    {"Relu", 1, 1, 1, 1, 0, 0, 0, ox_op_relu, 0},
    {"Reshape", 1, 1, 2, 1, 0, 0, 0, ox_op_reshape, 0},
    {"Resize", 10, 1, 4, 1, 0, B(1) | B(2), 0, ox_op_resize, 0},
    {"ReverseSequence", 10, 2, 2, 1, 0, 0, 0, ox_op_reverse_sequence, 0},
    UN("Round", 11),
    {"Scatter", 9, 3, 3, 1, 0, 0, 0, ox_op_scatter_elements, 0},
    {"ScatterElements", 11, 3, 3, 1, 0, 0, 0, ox_op_scatter_elements, 0},
    {"ScatterND", 11, 3, 3, 1, 0, 0, 0, ox_op_scatter_nd, 0},
    {"Selu", 1, 1, 1, 1, 0, 0, 0, ox_op_selu, 0},
    {"Shape", 1, 1, 1, 1, 0, 0, 0, ox_op_shape, 0},
    {"Shrink", 9, 1, 1, 1, 0, 0, 0, ox_op_shrink, 0},
    {"Sigmoid", 1, 1, 1, 1, 0, 0, 0, ox_op_sigmoid, 0},
    UN("Sign", 9), UN("Sin", 7), UN("Sinh", 9),
    {"Size", 1, 1, 1, 1, 0, 0, 0, ox_op_size, 0},
    {"Slice", 1, 1, 5, 1, 0, 0, 0, ox_op_slice, 0},
    {"Softmax", 1, 1, 1, 1, 0, 0, 0, ox_op_softmax, 0},
    {"SoftmaxCrossEntropyLoss", 12, 2, 3, 2, 0, B(2), 0, ox_op_sce_loss, 0},
    {"Softplus", 1, 1, 1, 1, 0, 0, 0, ox_op_softplus, 0},
    UN("Softsign", 1),
    {"SpaceToDepth", 1, 1, 1, 1, 0, 0, 0, ox_op_space_to_depth, 0},
    {"Split", 2, 1, 2, MANY, 0, 0, 0, ox_op_split, 0},
    UN("Sqrt", 1),
    {"Squeeze", 1, 1, 2, 1, 0, 0, 0, ox_op_squeeze, 0},
    BIN("Sub", 1, ox_op_sub),
    {"Sum", 1, 1, MANY, 1, 0, 0, 0, ox_op_sum, 0},
    UN("Tan", 7),
    {"Tanh", 1, 1, 1, 1, 0, 0, 0, ox_op_tanh, 0},
    {"ThresholdedRelu", 10, 1, 1, 1, 0, 0, 0, ox_op_thresholded_relu, 0},
    BIN("Tile", 6, ox_op_tile),
    {"TopK", 1, 1, 2, 2, 0, 0, 0, ox_op_topk, 0},
    {"Transpose", 1, 1, 1, 1, 0, 0, 0, ox_op_transpose, 0},
    {"Trilu", 14, 1, 2, 1, 0, 0, 0, ox_op_trilu, 0},
    {"Unique", 11, 1, 1, 4, 0, 0, 0, ox_op_unique, 0},
    {"Unsqueeze", 1, 1, 2, 1, 0, 0, 0, ox_op_unsqueeze, 0},
    {"Upsample", 7, 1, 2, 1, 0, B(1), 0, ox_op_upsample, 0},
    {"Where", 9, 3, 3, 1, 0, 0, 0, ox_op_where, 0},
    BIN("Xor", 1, ox_op_compare),
};
#define N_TABLE (sizeof table / sizeof table[0])

/* Ops that draw random numbers: never run by graft (their streams are ONNX Runtime's). */
static const char *const random_ops[] = {"Bernoulli", "RandomNormal", "RandomNormalLike",
                                         "RandomUniform", "RandomUniformLike", "Multinomial", NULL};

const ox_opdef *ox_op_find(const char *domain, const char *op, int64_t opset, const char **why) {
    static _Thread_local char msg[256];
    if (domain[0] && strcmp(domain, "ai.onnx")) {
        snprintf(msg, sizeof msg, "%s of domain '%s' (graft runs the default ONNX domain only)", op,
                 domain);
        *why = msg;
        return NULL;
    }
    for (size_t i = 0; i < N_TABLE; i++) {
        if (strcmp(table[i].op, op)) continue;
        if (opset < table[i].since) {
            snprintf(msg, sizeof msg, "%s before opset %d", op, table[i].since);
            *why = msg;
            return NULL;
        }
        return &table[i];
    }
    bool random = false;
    for (int i = 0; random_ops[i]; i++) random |= !strcmp(random_ops[i], op);
    snprintf(msg, sizeof msg, "%s%s", op,
             random ? " (draws random numbers)" : " is not in graft's ONNX op set");
    *why = msg;
    return NULL;
}

const char *const *ox_op_names(void) {
    static const char *names[N_TABLE + 1];
    for (size_t i = 0; i < N_TABLE; i++) names[i] = table[i].op;
    names[N_TABLE] = NULL;
    return names;
}
