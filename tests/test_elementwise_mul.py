"""Elementwise Mul of two streams (issue 11, part 4): the integer Mul and the ElementwiseMul
stage (qloom_emul) for the product of two same-shape branches and for a per-channel gate
broadcast over an image (squeeze-and-excitation).

- RTL unit tests: qloom_emul against the stage model, random valid/ready stalls on both inputs
  and the output, and the gap-free cycles per frame;
- Brevitas models: integer model == qonnx execute_onnx exactly on 1,000 random inputs, then
  `qloom build` (bit-exact, cycles per frame within 5 % of the formula) and `qloom sim` with
  random stalls on 100 frames (the helpers of test_input_domains);
- unsupported Muls are refused by node name.
"""

from __future__ import annotations

import numpy as np
import pytest
from model_corpus import brevitas_mul_cnn
from test_input_domains import _exact_then_sim, _fails

from qloom.dataflow.mul import ElementwiseMul
from qloom.dataflow.stage import pack_beats
from qloom.datatype import DataType
from qloom.flow import compile_model
from qloom.rtl.library import library_files

RTL_CASES = {
    # a per-channel gate (C = 8) over 12 pixels, 2 lanes: unsigned 4-bit x signed 3-bit
    "gate-u4-s3-pe2": (96, 8, DataType.int(4, False), DataType.int(3, True), 2),
    # two same-shape streams in lockstep, 3 lanes: signed 4-bit x unsigned 3-bit
    "same-s4-u3-pe3": (12, 12, DataType.int(4, True), DataType.int(3, False), 3),
    # a bipolar image times a signed 4-bit gate (C = 3), one lane
    "gate-bipolar-s4": (15, 3, DataType("BIPOLAR"), DataType.int(4, True), 1),
}


def _rand(rng, dtype: DataType, shape) -> np.ndarray:
    if dtype.is_bipolar:
        return rng.choice([-1, 1], size=shape)
    return rng.integers(dtype.min, dtype.max + 1, size=shape)


@pytest.mark.parametrize("case", list(RTL_CASES))
def test_emul_rtl_with_stalls(case):
    from qloom.sim import Port, VerilatorError, build, find_verilator

    try:
        find_verilator()
    except VerilatorError:
        pytest.skip("Verilator not installed")
    n, c, adt, bdt, pe = RTL_CASES[case]
    st = ElementwiseMul("m", n, c, adt, bdt, pe=pe)
    sa, sb = st.in_streams()
    (so,) = st.out_streams()
    m = build(
        st.rtl_module,
        library_files(st.rtl_module),
        st.rtl_params(),
        inputs=[Port("s0_axis", sa.width), Port("s1_axis", sb.width)],
        outputs=[Port("m_axis", so.width)],
    )
    rng = np.random.default_rng(len(case))
    frames = 30
    a = _rand(rng, adt, (frames, sa.beats, sa.elems))
    b = _rand(rng, bdt, (frames, sb.beats, sb.elems))
    out = st.execute(a, b)
    lo, hi = out.min(), out.max()
    assert so.dtype.min <= lo and hi <= so.dtype.max

    def words(x, dt):
        return [w for f in x for w in pack_beats(f, dt)]

    ins, exp = [words(a, adt), words(b, bdt)], words(out, so.dtype)
    stalls = [([0.6, 0.5], 0.5), ([1.0, 0.3], 0.7), ([0.4, 1.0], 0.4), ([0.5, 0.5], 1.0)]
    for seed, (pi, po) in enumerate(stalls):
        res = m.run(ins, [len(exp)], pi, po, seed=seed)
        res.check()
        assert res.outputs[0] == exp, (case, pi, po, seed)
    res = m.run(ins, [len(exp)])
    res.check()
    assert res.outputs[0] == exp
    # gap-free: one a beat per cycle, the first frame's b loaded before it
    first_b = sb.beats if st.broadcast else 0
    assert res.cycles <= frames * st.cycles_per_frame() + first_b + 4, res.cycles


def test_integer_mul_broadcasts_a_gate():
    """The integer op: a (N, H, W, C) times b (N, C) or (N, 1, 1, C) or the same shape."""
    from qloom.execute.integer import INTEGER_OPS
    from qloom.ir import Node

    rng = np.random.default_rng(0)
    a = rng.integers(-8, 8, (5, 3, 4, 6))
    g = rng.integers(0, 4, (5, 6))
    node = Node("Mul", "m", ("a", "b"), ("y",), {})
    (y,) = INTEGER_OPS["Mul"](node, [a, g])
    np.testing.assert_array_equal(y, a * g[:, None, None, :])
    (y,) = INTEGER_OPS["Mul"](node, [a, g.reshape(5, 1, 1, 6)])
    np.testing.assert_array_equal(y, a * g[:, None, None, :])
    (y,) = INTEGER_OPS["Mul"](node, [a, a[::-1]])
    np.testing.assert_array_equal(y, a * a[::-1])


def test_brevitas_mul_in_hardware(tmp_path):
    """A small CNN with a squeeze-and-excitation block (the gate: global average pool, 1x1
    conv, 4-bit QuantReLU with a learned float scale, times the feature map) and the product
    of two conv branches: integer == qonnx exactly on 1,000 inputs; RTL == integer with
    random stalls on 100 frames; cycles per frame within 5 % of the formula (one build
    holds both products, which keeps the test short)."""
    pytest.importorskip("brevitas")
    path = brevitas_mul_cnn(tmp_path / "mul.onnx", "both")
    c = compile_model(path)
    assert [n.op for n in c.integer.nodes].count("Mul") == 2
    report = _exact_then_sim(path, (2, 8, 8), tmp_path, "5e3")
    stages = {s.name: s for s in report.stages}
    muls = [s for s in report.stages if s.kind == "Mul"]
    assert len(muls) == 2
    # the gate's Mul holds the image in a frame-deep FIFO; the product's, both branches
    fifos = sorted(n for n in stages if n.startswith("/Mul") and "_fifo" in n)
    assert len(fifos) == 3, fifos


def test_unsupported_muls_are_refused_by_name(tmp_path, capsys):
    """A product of operands that are neither one shape nor image x per-channel gate, and an
    operand with a nonzero zero point: one message naming the node."""
    pytest.importorskip("brevitas")
    import onnx
    from onnx import helper

    path = brevitas_mul_cnn(tmp_path / "se.onnx", "se")
    m = onnx.load(path)
    (mul,) = [n for n in m.graph.node if n.op_type == "Mul" and len(n.input) == 2
              and not any(i.name in n.input for i in m.graph.initializer)]  # fmt: skip
    # the gate reshaped to (1, 1, C, 1): it varies along H, not along the channels
    gate = mul.input[1]
    shape = helper.make_tensor("bad_shape", onnx.TensorProto.INT64, [4], [1, 1, 8, 1])
    m.graph.initializer.append(shape)
    m.graph.node.insert(
        list(m.graph.node).index(mul),
        helper.make_node("Reshape", [gate, "bad_shape"], ["gate_bad"], name="bad_reshape"),
    )
    mul.input[1] = "gate_bad"
    onnx.save(m, tmp_path / "bad.onnx")
    _fails(["run", str(tmp_path / "bad.onnx")], capsys, mul.name, "per-channel")


def _vector_product(path, sx: float, sy: float, zero_y: float = 0.0):
    """x (1, 16) -> an 8-bit quantizer (1/16) -> two signed 4-bit quantizers of scales sx and
    sy (the second with zero point zero_y) -> Mul -> a signed 8-bit quantizer (1/8)."""
    from model_corpus import _Builder

    b = _Builder(3)
    q = b.quant("x", 1 / 16, 8, signed=True)
    qx = b.quant(q, sx, 4, signed=True)
    qy = b.quant(q, sy, 4, signed=True)
    if zero_y:
        b.inits[-2].CopyFrom(onnx_zero(b.inits[-2].name, zero_y))
    y = b.quant(b.node("Mul", [qx, qy]), 1 / 8, 8, signed=True)
    return b.save(path, (1, 16), y, (1, 16))


def onnx_zero(name: str, value: float):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def test_product_of_two_vectors_is_exact_and_zero_points_are_refused(tmp_path, capsys):
    """The same-shape product of two (1, 16) vectors with learned-looking scales (0.37 and
    0.61: qonnx rounds each operand and the product to float32) is exact against qonnx on
    1,000 inputs; a nonzero zero point on an operand is refused, naming the Mul."""
    from qloom.frontend.reference import qonnx_outputs

    path = _vector_product(tmp_path / "vec.onnx", 0.37, 0.61)
    c = compile_model(path)
    assert [n.op for n in c.integer.nodes].count("Mul") == 1
    x = np.random.default_rng(1).normal(0, 2, (1000, 16)).astype(np.float32)
    ref = qonnx_outputs(path, x, 100)
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], ref)
    assert len(np.unique(ref)) > 10
    bad = _vector_product(tmp_path / "zp.onnx", 0.37, 0.61, zero_y=1.0)
    _fails(["run", str(bad)], capsys, "Mul_", "zero point")
