"""A corpus of bad models: each gets one clear message naming what is wrong, exit code 2,
and no traceback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qloom.cli import main

QDOMAIN = "qonnx.custom_op.general"


def _const(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _quant(x, out, scale=1.0, bits=2.0, signed=1):
    inits = [_const(f"{out}_s", scale), _const(f"{out}_z", 0.0), _const(f"{out}_b", bits)]
    node = helper.make_node(
        "Quant",
        [x, f"{out}_s", f"{out}_z", f"{out}_b"],
        [out],
        domain=QDOMAIN,
        signed=signed,
        narrow=0,
        rounding_mode="ROUND",
    )
    return node, inits


def _save(tmp_path, nodes, inits, inputs=None, name="m.onnx"):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])]
    out = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", inputs, [out], initializer=inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QDOMAIN, 1)]
    )
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _qlinear(x, out, k, m, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.integers(-1, 2, size=(k, m)).astype(np.float32)
    qn, qi = _quant(f"{out}_w", f"{out}_wq")
    mm = helper.make_node("MatMul", [x, f"{out}_wq"], [out])
    return [qn, mm], qi + [_const(f"{out}_w", w)]


def _check(capsys, path, *fragments, extra=()):
    assert main(["inspect", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    flat = " ".join(err.split())
    for f in fragments:
        assert f in flat, f"{f!r} not in {flat!r}"


def test_missing_file(tmp_path, capsys):
    _check(capsys, tmp_path / "nope.onnx", "no such file")


def test_truncated_file(tmp_path, capsys):
    good = tmp_path / "good.onnx"
    nodes, inits = _qlinear("x", "y", 8, 4)
    q, qi = _quant("x", "xq")
    path = _save(tmp_path, [q] + nodes, qi + inits, name="good.onnx")
    data = path.read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data[: len(data) // 3])
    del good
    _check(capsys, bad, "bad.onnx", "truncated")


def test_not_onnx(tmp_path, capsys):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model")
    _check(capsys, bad, "notes.onnx")


def test_unsupported_op_names_node_and_lists_supported(tmp_path, capsys):
    q, qi = _quant("x", "xq")
    sig = helper.make_node("Sigmoid", ["xq"], ["y"], name="my_sigmoid")
    path = _save(tmp_path, [q, sig], qi)
    _check(capsys, path, "my_sigmoid", "Sigmoid", "not supported", "Supported ops:", "MatMul")


def test_float_only_model(tmp_path, capsys):
    w = _const("w", np.random.default_rng(0).normal(size=(8, 4)))
    mm = helper.make_node("MatMul", ["x", "w"], ["y"], name="fc0")
    path = _save(tmp_path, [mm], [w])
    # the float input is the first problem: which integers would the hardware receive?
    _check(capsys, path, "'x'", "fc0", "without a quantizer", "--input-type")
    # stated by the user, the float weights are the next one
    _check(capsys, path, "fc0", "floating point", "quantize", extra=("--input-type", "INT8"))


def test_dynamic_shape(tmp_path, capsys):
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "K"])
    nodes, inits = _qlinear("xq", "y", 8, 4)
    q, qi = _quant("x", "xq")
    path = _save(tmp_path, [q] + nodes, qi + inits, inputs=[inp])
    _check(capsys, path, "'x'", "dynamic dimension 'K'", "fixed input shape")


def test_missing_quantizer_before_matmul(tmp_path, capsys):
    q, qi = _quant("x", "xq")
    l0, i0 = _qlinear("xq", "h", 8, 8, seed=1)
    relu = helper.make_node("Relu", ["h"], ["hr"], name="relu0")
    l1, i1 = _qlinear("hr", "y", 8, 4, seed=2)
    l1[1].name = "fc1"
    path = _save(tmp_path, [q] + l0 + [relu] + l1, qi + i0 + i1)
    _check(capsys, path, "fc1", "MatMul", "not quantized", "quantizer")


def test_cli_process_exit_code_and_no_traceback(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x08\x01\x12")
    r = subprocess.run(
        [sys.executable, "-m", "qloom.cli", "inspect", str(bad)], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "error:" in r.stderr


@pytest.mark.parametrize("argv", [["run", "x.onnx", "--data", "no-such-set"]])
def test_unknown_dataset(argv, capsys, tmp_path):
    q, qi = _quant("x", "xq")
    nodes, inits = _qlinear("xq", "y", 8, 4)
    path = _save(tmp_path, [q] + nodes, qi + inits)
    argv = [a if a != "x.onnx" else str(path) for a in argv]
    assert main(argv) == 2
    assert "no-such-set" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content,fragment",
    [(None, "No such file"), ("{not json", "Expecting property name"), ("[1, 2]", "JSON object")],
)
def test_bad_folding_file(content, fragment, capsys, tmp_path):
    q, qi = _quant("x", "xq")
    nodes, inits = _qlinear("xq", "y", 8, 4)
    path = _save(tmp_path, [q] + nodes, qi + inits)
    folding = tmp_path / "folding.json"
    if content is not None:
        folding.write_text(content)
    argv = ["build", str(path), "--out", str(tmp_path / "b"), "--folding", str(folding)]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"folding file {folding}" in err and fragment in err
    assert not (tmp_path / "b" / "m").exists()  # only m.partial/FAILED.txt, as documented
    assert (tmp_path / "b" / "m.partial" / "FAILED.txt").is_file()


def _grouped_conv(tmp_path, wq: str, group: int = 2, zero: float = 0.0):
    """x (1, 4, 5, 5) -> Quant -> Conv(4 -> 4, 3x3, group) with weights through `wq`
    ("Quant" with zero point `zero`, or "BipolarQuant")."""
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])
    q, qi = _quant("x", "xq", bits=4.0, signed=0)
    w = np.random.default_rng(0).integers(-1, 2, size=(4, 4 // group, 3, 3))
    inits = qi + [_const("w", w), _const("w_s", 1.0)]
    if wq == "BipolarQuant":
        wn = helper.make_node(wq, ["w", "w_s"], ["wq"], domain=QDOMAIN)
    else:
        inits += [_const("w_z", zero), _const("w_b", 4.0)]
        wn = helper.make_node(
            "Quant", ["w", "w_s", "w_z", "w_b"], ["wq"], domain=QDOMAIN,
            signed=1, narrow=0, rounding_mode="ROUND",
        )  # fmt: skip
    conv = helper.make_node("Conv", ["xq", "wq"], ["y"], name="gconv", group=group,
                            kernel_shape=[3, 3])  # fmt: skip
    return _save(tmp_path, [q, wn, conv], inits, inputs=[inp])


def test_grouped_conv_with_bipolar_weights_is_refused(tmp_path, capsys):
    """A grouped conv is computed as a dense one with 0 weights outside the groups: +-1
    weights have no 0, so the node is named, with the reason and what works."""
    path = _grouped_conv(tmp_path, "BipolarQuant")
    _check(capsys, path, "gconv", "group=2", "bipolar", "no 0", "multi-bit weight quantizer")


def test_grouped_conv_with_weight_zero_point_is_refused(tmp_path, capsys):
    path = _grouped_conv(tmp_path, "Quant", zero=1.0)
    _check(capsys, path, "gconv", "nonzero zero point", "symmetric weight quantization")


def test_grouped_conv_group_must_split_channels(tmp_path, capsys):
    path = _grouped_conv(tmp_path, "Quant", group=4)
    # 4 groups of 1 input channel each, but 4 outputs: depthwise; group 3 does not split 4
    m = onnx.load(path)
    m.graph.node[-1].attribute[0].i = 3
    onnx.save(m, path)
    _check(capsys, path, "gconv", "group=3", "does not split")
