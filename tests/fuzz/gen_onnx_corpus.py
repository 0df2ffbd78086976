#!/usr/bin/env python3
"""Writes the ONNX seed corpus (tests/fuzz/corpus/onnx/) and the .npy one (corpus/npy/):
valid small models that tests/test_onnx.c loads and runs, and malformed ones it and the fuzz
targets must refuse with a message (truncated protobuf, wrong types, a missing initializer, a
cycle, huge declared dimensions, external data outside the model's folder, deep nesting, If
nodes without a branch, with a branch of the wrong output count, nested too deep).

The protobuf encoding is written out here (no onnx or protobuf package needed): field numbers
from onnx.proto. Run with /usr/bin/python3 from the repository root; the files are committed."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "onnx")
NPY = os.path.join(HERE, "corpus", "npy")

FLOAT, INT64 = 1, 7


def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def fv(field, v):  # varint field
    return varint(field << 3) + varint(v)


def fb(field, data):  # length-delimited field
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def ff(field, x):  # 32-bit float field
    return varint(field << 3 | 5) + struct.pack("<f", x)


def tensor(name, dims, values, dtype=FLOAT, raw=True, external=None):
    t = b"".join(fv(1, d) for d in dims) + fv(2, dtype) + fb(8, name)
    if external is not None:
        for k, v in external:
            t += fb(13, fb(1, k) + fb(2, v))
        return t + fv(14, 1)
    if raw:
        fmt = "<%d%s" % (len(values), "f" if dtype == FLOAT else "q")
        return t + fb(9, struct.pack(fmt, *values))
    if dtype == FLOAT:
        return t + fb(4, struct.pack("<%df" % len(values), *values))
    return t + fb(7, b"".join(varint(v) for v in values))


def attr_i(name, v):
    return fb(1, name) + fv(3, v) + fv(20, 2)


def attr_f(name, v):
    return fb(1, name) + ff(2, v) + fv(20, 1)


def attr_ints(name, vs):
    return fb(1, name) + b"".join(fv(8, v) for v in vs) + fv(20, 7)


def attr_t(name, t):
    return fb(1, name) + fb(5, t) + fv(20, 4)


def node(op, ins, outs, name="", attrs=(), domain=""):
    n = b"".join(fb(1, i) for i in ins) + b"".join(fb(2, o) for o in outs)
    n += fb(3, name) + fb(4, op)
    n += b"".join(fb(5, a) for a in attrs)
    if domain:
        n += fb(7, domain)
    return n


def value(name, dtype, dims):
    shape = b""
    for d in dims:
        shape += fb(1, fb(2, d) if isinstance(d, str) else fv(1, d))
    return fb(1, name) + fb(2, fb(1, fv(1, dtype) + fb(2, shape)))


def graph(nodes, inits, inputs, outputs, name="g"):
    g = b"".join(fb(1, n) for n in nodes) + fb(2, name)
    g += b"".join(fb(5, t) for t in inits)
    g += b"".join(fb(11, v) for v in inputs) + b"".join(fb(12, v) for v in outputs)
    return g


def model(g, opset=13, ir=8):
    return fv(1, ir) + fb(2, "graft-test") + fb(7, g) + fb(8, fb(1, "") + fv(2, opset))


def mlp():
    """x [N, 4] -> Gemm(fc1) -> Relu -> Gemm(fc2) -> y [N, 3]; dotted names as PyTorch's."""
    w1 = [((i * 7 + j * 3) % 11 - 5) / 10.0 for i in range(8) for j in range(4)]
    b1 = [(i - 4) / 20.0 for i in range(8)]
    w2 = [((i * 5 + j) % 9 - 4) / 8.0 for i in range(3) for j in range(8)]
    b2 = [0.1, -0.2, 0.3]
    nodes = [node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], "fc1", [attr_i("transB", 1)]),
             node("Relu", ["h"], ["r"], "relu"),
             node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["y"], "fc2", [attr_i("transB", 1)])]
    inits = [tensor("fc1.weight", [8, 4], w1), tensor("fc1.bias", [8], b1, raw=False),
             tensor("fc2.weight", [3, 8], w2), tensor("fc2.bias", [3], b2)]
    return model(graph(nodes, inits, [value("x", FLOAT, ["batch", 4])], [value("y", FLOAT, ["batch", 3])]))


def shape_subgraph():
    """x [N, 2, 3] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) -> [N, 6]."""
    nodes = [node("Shape", ["x"], ["s"], "shape"),
             node("Gather", ["s", "zero"], ["n"], "gather", [attr_i("axis", 0)]),
             node("Unsqueeze", ["n", "axes0"], ["n1"], "unsqueeze"),
             node("Concat", ["n1", "minus1"], ["target"], "concat", [attr_i("axis", 0)]),
             node("Reshape", ["x", "target"], ["y"], "reshape")]
    inits = [tensor("zero", [], [0], INT64), tensor("axes0", [1], [0], INT64, raw=False),
             tensor("minus1", [1], [-1], INT64)]
    return model(graph(nodes, inits, [value("x", FLOAT, ["N", 2, 3])], [value("y", FLOAT, ["N", 6])]))


def constant_weights():
    """Weights held by a Constant node: y = x @ W + b, W [3, 2] a Constant, b a Constant."""
    w = tensor("", [3, 2], [1.0, -1.0, 0.5, 2.0, -0.5, 0.25])
    nodes = [node("Constant", [], ["W"], "const_w", [attr_t("value", w)]),
             node("Constant", [], ["b"], "const_b", [attr_t("value", tensor("", [2], [0.5, -0.5]))]),
             node("MatMul", ["x", "W"], ["xw"], "matmul"),
             node("Add", ["xw", "b"], ["y"], "add")]
    return model(graph(nodes, [], [value("x", FLOAT, [1, 3])], [value("y", FLOAT, [1, 2])]))


def external(location):
    """One initializer in an external file; y = x * w."""
    inits = [tensor("w", [4], None, external=[("location", location), ("offset", "0"), ("length", "16")])]
    nodes = [node("Mul", ["x", "w"], ["y"], "mul")]
    return model(graph(nodes, inits, [value("x", FLOAT, [4])], [value("y", FLOAT, [4])]))


def attr_s(name, v):
    return fb(1, name) + fb(4, v) + fv(20, 3)


def many_ops():
    """One small network through many op families: x [1, 2, 5, 5] -> Conv (uneven pads) ->
    MaxPool (ceil mode) -> BatchNormalization -> Pad (reflect) -> Slice (negative step) ->
    Transpose -> Softmax -> ReduceMean -> Concat with a Constant -> y."""
    w = [((i * 13) % 7 - 3) / 6.0 for i in range(3 * 2 * 3 * 3)]
    inits = [tensor("conv.weight", [3, 2, 3, 3], w), tensor("conv.bias", [3], [0.1, 0.0, -0.1]),
             tensor("bn.weight", [3], [1.0, 0.5, 2.0]), tensor("bn.bias", [3], [0.0, 0.1, 0.2]),
             tensor("bn.running_mean", [3], [0.1, -0.1, 0.0]),
             tensor("bn.running_var", [3], [1.0, 2.0, 0.5]),
             tensor("pads", [8], [0, 0, 1, 1, 0, 0, 1, 1], INT64),
             tensor("starts", [1], [-1], INT64), tensor("ends", [1], [-100], INT64),
             tensor("axes", [1], [3], INT64), tensor("steps", [1], [-2], INT64)]
    nodes = [node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], "conv", [attr_ints("pads", [1, 0, 2, 1])]),
             node("MaxPool", ["c"], ["p"], "pool", [attr_ints("kernel_shape", [2, 2]),
                                                   attr_ints("strides", [2, 2]), attr_i("ceil_mode", 1)]),
             node("BatchNormalization", ["p", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
                  ["b"], "bn"),
             node("Pad", ["b", "pads"], ["q"], "pad", [attr_s("mode", "reflect")]),
             node("Slice", ["q", "starts", "ends", "axes", "steps"], ["s"], "slice"),
             node("Transpose", ["s"], ["t"], "transpose", [attr_ints("perm", [0, 2, 3, 1])]),
             node("Softmax", ["t"], ["sm"], "softmax", [attr_i("axis", -1)]),
             node("ReduceMean", ["sm"], ["m"], "mean", [attr_ints("axes", [1, 2]), attr_i("keepdims", 0)]),
             node("Constant", [], ["k"], "k", [attr_t("value", tensor("", [1, 1], [0.5]))]),
             node("Concat", ["m", "k"], ["y"], "concat", [attr_i("axis", 1)])]
    return model(graph(nodes, inits, [value("x", FLOAT, [1, 2, 5, 5])], [value("y", FLOAT, [1, 4])]))


def einsum():
    """y = einsum("bij,bjk->bik", a, b): the fuzzer mutates the equation."""
    nodes = [node("Einsum", ["a", "b"], ["y"], "einsum", [attr_s("equation", "bij,bjk->bik")])]
    return model(graph(nodes, [], [value("a", FLOAT, [2, 3, 4]), value("b", FLOAT, [2, 4, 5])],
                       [value("y", FLOAT, [2, 3, 5])]), opset=12)


def two_inputs():
    """y = Relu(a) + b: cut at the ReLU, the module needs a alone."""
    nodes = [node("Relu", ["a"], ["r"], "relu"), node("Add", ["r", "b"], ["y"], "add")]
    return model(graph(nodes, [], [value("a", FLOAT, [2]), value("b", FLOAT, [2])], [value("y", FLOAT, [2])]))


def recurrent_and_resize():
    """x [2, 1, 3] -> LSTM (hidden 2) -> Resize (linear, x2 on the last axis) -> y."""
    w = [((i * 5) % 7 - 3) / 5.0 for i in range(8 * 3)]
    r = [((i * 3) % 5 - 2) / 4.0 for i in range(8 * 2)]
    inits = [tensor("W", [1, 8, 3], w), tensor("R", [1, 8, 2], r),
             tensor("scales", [4], [1.0, 1.0, 1.0, 2.0])]
    nodes = [node("LSTM", ["x", "W", "R"], ["Y", "Y_h"], "lstm", [attr_i("hidden_size", 2)]),
             node("Resize", ["Y", "", "scales"], ["y"], "resize", [attr_s("mode", "linear")])]
    return model(graph(nodes, inits, [value("x", FLOAT, [2, 1, 3])], [value("y", FLOAT, [2, 1, 1, 4])]))


def cycle():
    nodes = [node("Add", ["x", "b"], ["a"], "first"), node("Relu", ["a"], ["b"], "second")]
    return model(graph(nodes, [], [value("x", FLOAT, [2])], [value("b", FLOAT, [2])]))


def missing_initializer():
    nodes = [node("Add", ["x", "bias"], ["y"], "add_bias")]
    return model(graph(nodes, [], [value("x", FLOAT, [2])], [value("y", FLOAT, [2])]))


def huge_dims():
    t = fv(1, 1 << 40) + fv(1, 1 << 40) + fv(2, FLOAT) + fb(8, "w") + fb(9, b"\0" * 16)
    nodes = [node("Add", ["x", "w"], ["y"], "add")]
    return model(graph(nodes, [t], [value("x", FLOAT, [2])], [value("y", FLOAT, [2])]))


def wrong_types():
    """raw_data of the wrong size, and a string initializer read by an Add."""
    bad = fv(1, 4) + fv(2, FLOAT) + fb(8, "w") + fb(9, b"\0" * 10)
    nodes = [node("Add", ["x", "w"], ["y"], "add")]
    return model(graph(nodes, [bad], [value("x", FLOAT, [4])], [value("y", FLOAT, [4])]))


def string_initializer():
    s = fv(1, 1) + fv(2, 8) + fb(8, "s") + fb(6, b"hello")
    nodes = [node("Add", ["x", "s"], ["y"], "add")]
    return model(graph(nodes, [s], [value("x", FLOAT, [1])], [value("y", FLOAT, [1])]))


def unsupported_ops():
    nodes = [node("Relu", ["x"], ["a"], "relu"), node("FancyOp", ["a"], ["b"], "fancy1"),
             node("StringNormalizer", ["b"], ["c"], "strings"), node("FancyOp", ["c"], ["y"], "fancy2")]
    return model(graph(nodes, [], [value("x", FLOAT, [2])], [value("y", FLOAT, [2])]))


def deep_nesting(depth):
    g = graph([node("Relu", ["x"], ["y"])], [], [], [])
    for _ in range(depth):
        g = graph([node("If", ["c"], ["y"], attrs=[fb(1, "then_branch") + fb(6, g) + fv(20, 5)])], [], [], [])
    return model(g)


def attr_g(name, g):
    return fb(1, name) + fb(6, g) + fv(20, 5)


def if_node(cond, outs, then_g, else_g, name="if"):
    attrs = [attr_g(k, g) for k, g in (("then_branch", then_g), ("else_branch", else_g)) if g]
    return node("If", [cond], outs, name, attrs)


def bool_scalar(name, v):
    return fv(2, 9) + fb(8, name) + fb(9, bytes([1 if v else 0]))


def if_const():
    """y = If(flag), flag a bool initializer (true): then_branch x * w (w: the outer graph's
    initializer) and a nested If on Not(flag) (false) whose else_branch adds the branch's own
    initializer bias; else_branch x - 1. Both conditions are known at load time."""
    inner_then = graph([node("Neg", ["xw"], ["in_t"])], [], [], [value("in_t", FLOAT, [])], "it")
    inner_else = graph([node("Add", ["xw", "bias"], ["in_e"])],
                       [tensor("bias", [3], [0.5, -0.5, 1.0])], [], [value("in_e", FLOAT, [])], "ie")
    then_g = graph([node("Mul", ["x", "w"], ["xw"]), node("Not", ["flag"], ["nflag"]),
                    if_node("nflag", ["t_out"], inner_then, inner_else, "inner")],
                   [], [], [value("t_out", FLOAT, [])], "then")
    else_g = graph([node("Sub", ["x", "one"], ["e_out"])], [tensor("one", [], [1.0])], [],
                   [value("e_out", FLOAT, [])], "else")
    inits = [bool_scalar("flag", True), tensor("w", [3], [2.0, 3.0, 4.0])]
    return model(graph([if_node("flag", ["y"], then_g, else_g, "outer")], inits,
                       [value("x", FLOAT, ["N", 3])], [value("y", FLOAT, ["N", 3])]), opset=16)


def if_runtime():
    """s = ReduceSum(x) (all axes); If(s > 0): then_branch (x * w, s), s of the outer graph
    given straight back; else_branch (x - off, -s), off the branch's own initializer."""
    then_g = graph([node("Mul", ["x", "w"], ["xw"])], [], [],
                   [value("xw", FLOAT, []), value("s", FLOAT, [])], "then")
    else_g = graph([node("Sub", ["x", "off"], ["xo"]), node("Neg", ["s"], ["ns"])],
                   [tensor("off", [3], [1.0, 2.0, 3.0])], [],
                   [value("xo", FLOAT, []), value("ns", FLOAT, [])], "else")
    nodes = [node("ReduceSum", ["x"], ["s"], "sum", [attr_i("keepdims", 0)]),
             node("Greater", ["s", "zero"], ["c"], "positive"),
             if_node("c", ["y", "t"], then_g, else_g, "choose")]
    inits = [tensor("zero", [], [0.0]), tensor("w", [3], [2.0, 3.0, 4.0])]
    return model(graph(nodes, inits, [value("x", FLOAT, ["N", 3])],
                       [value("y", FLOAT, ["N", 3]), value("t", FLOAT, [])]), opset=16)


def if_bad(kind):
    """Malformed If nodes: a missing else_branch, a branch of two outputs for one, and If
    branches nested 17 deep."""
    one = graph([node("Relu", ["x"], ["r"])], [], [], [value("r", FLOAT, [])], "b")
    two = graph([node("Relu", ["x"], ["r"])], [], [], [value("r", FLOAT, []), value("x", FLOAT, [])], "b")
    if kind == "missing":
        n = if_node("c", ["y"], one, None, "lonely")
    elif kind == "outputs":
        n = if_node("c", ["y"], two, one, "uneven")
    else:
        g = one
        for k in range(17):
            g = graph([if_node("c", ["r"], g, one, "deep%d" % k)], [], [], [value("r", FLOAT, [])], "d")
        n = if_node("c", ["y"], g, one, "deepest")
    return model(graph([n], [bool_scalar("c", True)], [value("x", FLOAT, [2])],
                       [value("y", FLOAT, [2])]), opset=16)


def npy(descr, shape, payload, version=1):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    head = d.encode()
    pad = (64 - (10 + len(head) + 1) % 64) % 64
    head += b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H", len(head)) + head + payload


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(NPY, exist_ok=True)
    good = mlp()
    files = {
        "mlp.onnx": good,
        "shape_subgraph.onnx": shape_subgraph(),
        "constant_weights.onnx": constant_weights(),
        "many_ops.onnx": many_ops(),
        "einsum.onnx": einsum(),
        "two_inputs.onnx": two_inputs(),
        "recurrent_and_resize.onnx": recurrent_and_resize(),
        "external.onnx": external("external.bin"),
        "external.bin": struct.pack("<4f", 1.0, 2.0, 3.0, 4.0),
        "bad_truncated.onnx": good[: len(good) // 2],
        "bad_cycle.onnx": cycle(),
        "bad_missing_initializer.onnx": missing_initializer(),
        "bad_huge_dims.onnx": huge_dims(),
        "bad_wrong_types.onnx": wrong_types(),
        "bad_string_initializer.onnx": string_initializer(),
        "bad_unsupported_ops.onnx": unsupported_ops(),
        "bad_external_dotdot.onnx": external("../secret.bin"),
        "bad_external_absolute.onnx": external("/etc/hostname"),
        "bad_external_missing.onnx": external("no_such_file.bin"),
        "bad_deep_nesting.onnx": deep_nesting(40),
        "if_const.onnx": if_const(),
        "if_runtime.onnx": if_runtime(),
        "bad_if_missing_branch.onnx": if_bad("missing"),
        "bad_if_outputs.onnx": if_bad("outputs"),
        "bad_if_deep.onnx": if_bad("deep"),
        "bad_opset.onnx": model(graph([node("Relu", ["x"], ["y"])], [], [value("x", FLOAT, [2])],
                                      [value("y", FLOAT, [2])]), opset=99),
        "bad_garbage.onnx": bytes(range(256)) * 4,
        "bad_empty.onnx": b"",
    }
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    npys = {
        "f4_2x3.npy": npy("<f4", "(2, 3)", struct.pack("<6f", 1, 2, 3, 4, 5, 6)),
        "i8_4.npy": npy("<i8", "(4,)", struct.pack("<4q", 1, -2, 3, -4)),
        "f8_scalar.npy": npy("<f8", "()", struct.pack("<d", 2.5)),
        "b1_3.npy": npy("|b1", "(3,)", b"\x01\x00\x01"),
        "bad_short.npy": npy("<f4", "(2, 3)", b"\0" * 8),
        "bad_descr.npy": npy("<U4", "(1,)", b"\0" * 16),
        "bad_fortran.npy": npy("<f4", "(2, 2)", b"\0" * 16).replace(b"False", b"True "),
        "bad_huge.npy": npy("<f4", "(4294967296, 4294967296)", b"\0" * 16),
        "bad_magic.npy": b"NUMPY" + b"\0" * 60,
    }
    for name, data in npys.items():
        with open(os.path.join(NPY, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    sys.exit(main())
