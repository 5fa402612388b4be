"""Models that nobody on this team wrote, through the command line only: the input domain comes
from the model (annotation or first quantizer), `qloom run --data ... --save-outputs` equals
qonnx's execute_onnx on the original model, and `qloom build` then `qloom sim` is bit-exact."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from model_corpus import (
    CORPUS,
    brevitas_avgpool_cnn,
    brevitas_concat_cnn,
    brevitas_grouped_cnn,
    brevitas_mobilenet,
    brevitas_models,
    brevitas_overlap_pool_cnn,
    brevitas_padded_avgpool_cnn,
    brevitas_radio_1d,
    float_into_matmul,
)
from tfc_data import TFC_MODELS, qonnx_reference, tfc_path

from qloom.cli import main
from qloom.flow import compile_model
from qloom.frontend.reference import qonnx_outputs
from qloom.report.model import BuildReport

N_RUN = 1000
N_SIM = 100


def _models():
    params = [pytest.param(m, id=m.name) for m in CORPUS]
    try:
        import brevitas  # noqa: F401
    except ImportError:
        return params
    return params + [pytest.param(m, id=m.name) for m in brevitas_models()]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus")


def _written(model, corpus_dir, n=N_RUN, seed=0):
    path = corpus_dir / f"{model.name}.onnx"
    if not path.exists():
        model.write(path)
    x = model.inputs(np.random.default_rng(seed), n)
    data = corpus_dir / f"{model.name}-{seed}.npz"
    np.savez(data, inputs=x)
    return path, data, x


@pytest.mark.parametrize("model", _models())
def test_run_equals_qonnx_on_the_original_model(model, corpus_dir, capsys):
    path, data, x = _written(model, corpus_dir)
    out = corpus_dir / f"{model.name}-out.npy"
    assert main(["run", str(path), "--data", str(data), "--save-outputs", str(out)]) == 0
    assert model.hardware_type in capsys.readouterr().out.replace("\n", " ")
    ours = np.load(out)
    ref = qonnx_outputs(path, x, batch=100)
    assert ours.shape == ref.shape
    a, b = ours.reshape(len(x), -1), ref.reshape(len(x), -1)
    if np.issubdtype(ref.dtype, np.integer):  # labels (TopK indices)
        assert np.array_equal(a, b)
        assert len(np.unique(b)) > 1
        return
    assert np.array_equal(a.argmax(1), b.argmax(1))  # top-1 on every input
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(b).max())))
    assert len(np.unique(b.argmax(1))) > 1, "inputs that exercise a single class prove little"


@pytest.mark.parametrize("model", _models())
def test_derived_domain_is_the_models_own(model, corpus_dir):
    path, _, x = _written(model, corpus_dir, n=200)
    c = compile_model(path)
    assert str(c.domain.dtype) == model.hardware_type
    q = c.hardware_input(x)
    assert q.min() >= c.domain.dtype.min and q.max() <= c.domain.dtype.max
    assert len(np.unique(q)) > 1
    # random inputs from the derived domain cover the hardware range, and qonnx agrees
    r = c.random_inputs(200, seed=1)
    qr = c.hardware_input(r)
    levels = 2 if c.domain.dtype.is_bipolar else c.domain.dtype.max - c.domain.dtype.min + 1
    assert len(np.unique(qr)) >= min(3, levels)
    ours = c.run(r)[c.integer.outputs[0]].reshape(200, -1)
    ref = qonnx_outputs(path, r, batch=100).reshape(200, -1)
    if np.issubdtype(ref.dtype, np.integer):
        assert np.array_equal(ours, ref)
    else:
        assert np.array_equal(ours.argmax(1), ref.argmax(1))


@pytest.mark.parametrize("model", [pytest.param(m, id=m.name) for m in CORPUS])
def test_build_then_sim_is_bit_exact(model, corpus_dir, tmp_path):
    path, data, _ = _written(model, corpus_dir, n=N_SIM, seed=2)
    out = tmp_path / "builds"
    argv = ["--quiet", "build", str(path), "--out", str(out), "--data", str(data)]
    assert main(argv + ["--sim-frames", str(N_SIM), "--target-fps", "1e6"]) == 0
    report = BuildReport.read(out / model.name)
    assert report.input_domain.hardware_type == model.hardware_type
    assert report.sim.mismatches == 0 and report.sim.frames == N_SIM
    cpf = report.totals.cycles_per_frame
    assert abs(report.sim.cycles_per_frame - cpf) <= 0.05 * cpf + 1
    folding = out / model.name / "folding.json"
    argv = ["--quiet", "sim", str(path), "--data", str(data), "--limit", str(N_SIM)]
    assert main(argv + ["--folding", str(folding), "--stall", "0.3"]) == 0


@pytest.mark.parametrize("name", TFC_MODELS)
def test_tfc_with_the_models_own_domain_on_all_mnist(name, mnist_test):
    """Without --input-type the hardware receives the first quantizer's integers (BIPOLAR or
    INT2 for the TFC models, not 8-bit pixels) and still reproduces qonnx on every image."""
    images, labels = mnist_test
    c = compile_model(tfc_path(name))
    assert c.domain.host_nodes and str(c.domain.dtype) in ("BIPOLAR", "INT2")
    x = images.astype(np.float32) / np.float32(255)
    ours = c.run(x)[c.integer.outputs[0]]
    ref = qonnx_reference(tfc_path(name), images)
    assert np.array_equal(ours.argmax(1), ref.argmax(1))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


def test_softmax_runs_on_the_host(corpus_dir):
    from qloom.dataflow import to_dataflow

    model = next(m for m in CORPUS if m.name == "jet-softmax")
    path, _, _ = _written(model, corpus_dir, n=10)
    c = compile_model(path)
    assert c.integer.producer(c.integer.outputs[0]).op == "Softmax"
    design = to_dataflow(c.integer)
    assert design.host is not None and any(n.op == "Softmax" for n in design.host.nodes)
    assert all(s.kind != "Softmax" for s in design.stages)


# -- clear refusals -------------------------------------------------------------------------------
def _fails(argv, capsys, *needles):
    code = main(argv)
    err = capsys.readouterr().err.replace("\n", " ")
    assert code == 2, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)
    return err


def test_float_input_without_quantizer_is_refused(tmp_path, capsys):
    path = float_into_matmul(tmp_path / "m.onnx")
    _fails(["run", str(path)], capsys, "'x'", "MatMul_", "--input-type", "without a quantizer")
    # ... unless the user states the domain
    assert main(["run", str(path), "--input-type", "INT8", "--limit", "10"]) == 0


def test_radio_1d_vgg_conv1d_and_maxpool1d(tmp_path):
    """A RadioML-style 1-D VGG (Brevitas QuantConv1d + MaxPool1d on 2 x 64 I/Q signals):
    integer == qonnx on 1,000 inputs; RTL == integer on 100 frames with random stalls;
    cycles per frame within 5 % of the formula."""
    pytest.importorskip("brevitas")
    path = brevitas_radio_1d(tmp_path / "radio.onnx")
    x = np.random.default_rng(0).normal(0, 1, (N_RUN, 2, 64)).astype(np.float32)
    c = compile_model(path)
    ours = c.run(x)[c.integer.outputs[0]]
    ref = qonnx_outputs(path, x, batch=100)
    assert np.array_equal(ours.argmax(1), ref.argmax(1)) and len(np.unique(ref.argmax(1))) > 1
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    kinds = [s.kind for s in _build_then_sim(path, x[:N_SIM], tmp_path, "1e5").stages]
    assert {"SWU", "MVAU", "MaxPool"} <= set(kinds)


def _build_then_sim(path, x, tmp_path, fps: str, folding=None) -> BuildReport:
    """`qloom build` (bit-exact on x, cycles within 5 % of the formula), then `qloom sim` of
    the built folding with random stalls; returns the build report. `folding`: a folding.json
    to build with instead of folding for `fps`."""
    data = tmp_path / "x.npz"
    np.savez(data, inputs=x)
    out = tmp_path / "b"
    argv = ["--quiet", "build", str(path), "--out", str(out), "--data", str(data)]
    fold = ["--folding", str(folding)] if folding else ["--target-fps", fps]
    assert main(argv + fold) == 0
    report = BuildReport.read(out / path.stem)
    cpf = report.totals.cycles_per_frame
    assert report.sim.mismatches == 0 and report.sim.frames == len(x)
    assert abs(report.sim.cycles_per_frame - cpf) <= 0.05 * cpf
    folding = out / path.stem / "folding.json"
    argv = ["--quiet", "sim", str(path), "--data", str(data), "--folding", str(folding)]
    assert main(argv + ["--stall", "0.3", "--limit", str(len(x))]) == 0
    return report


def _exact_then_sim(path, shape, tmp_path, fps: str, folding=None) -> BuildReport:
    """Integer == qonnx exactly on N_RUN Gaussian inputs of `shape` (more than one class
    predicted), then `_build_then_sim` on the first N_SIM; returns the build report."""
    x = np.random.default_rng(0).normal(0, 1, (N_RUN, *shape)).astype(np.float32)
    c = compile_model(path)
    ref = qonnx_outputs(path, x, 100)
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], ref)
    assert len(np.unique(ref.argmax(1))) > 1
    return _build_then_sim(path, x[:N_SIM], tmp_path, fps, folding)


def test_average_pools_in_hardware(tmp_path):
    """AvgPool2d + quantizer and a global average pool (Brevitas, power-of-two scales) become
    SumPool + Thresholding stages: integer == qonnx exactly on 1,000 inputs; RTL == integer on
    100 frames with random stalls; cycles per frame within 5 % of the formula."""
    pytest.importorskip("brevitas")
    path = brevitas_avgpool_cnn(tmp_path / "avg.onnx")
    x = np.random.default_rng(0).normal(0, 1, (N_RUN, 2, 8, 8)).astype(np.float32)
    c = compile_model(path)
    assert [n.op for n in c.integer.nodes].count("SumPool") == 2
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], qonnx_outputs(path, x, 100))
    report = _build_then_sim(path, x[:N_SIM], tmp_path, "5e4")
    assert [s.kind for s in report.stages].count("SumPool") == 2


def test_overlapping_and_padded_pools_in_hardware(tmp_path):
    """MaxPool2d(3, stride 2, padding 1) and AvgPool2d(3, stride 2) become SWU + WindowPool:
    integer == qonnx exactly on 1,000 inputs; RTL == integer with random stalls; cycles per
    frame within 5 % of the formula."""
    pytest.importorskip("brevitas")
    path = brevitas_overlap_pool_cnn(tmp_path / "ovl.onnx")
    report = _exact_then_sim(path, (2, 12, 12), tmp_path, "5e4")
    assert [s.kind for s in report.stages].count("WindowPool") == 2


def test_padded_average_pool_in_hardware(tmp_path):
    """AvgPool2d(3, 1, padding=1) (count_include_pad=1) becomes SWU (zero padding) + WindowPool
    sums + Thresholding: integer == qonnx exactly on 1,000 inputs; RTL == integer with stalls."""
    pytest.importorskip("brevitas")
    path = brevitas_padded_avgpool_cnn(tmp_path / "padavg.onnx")
    report = _exact_then_sim(path, (2, 8, 8), tmp_path, "5e4")
    assert [s.kind for s in report.stages].count("WindowPool") == 1


def test_padded_average_pool_without_the_padding_in_the_count_is_refused(tmp_path, capsys):
    """count_include_pad=0 divides border windows by fewer elements: refused by node name."""
    pytest.importorskip("brevitas")
    import onnx
    from onnx import helper

    path = brevitas_padded_avgpool_cnn(tmp_path / "padavg.onnx")
    m = onnx.load(path)
    (pool,) = [n for n in m.graph.node if n.op_type == "AveragePool"]
    kept = [a for a in pool.attribute if a.name != "count_include_pad"]
    del pool.attribute[:]
    pool.attribute.extend(kept + [helper.make_attribute("count_include_pad", 0)])
    onnx.save(m, tmp_path / "excl.onnx")
    _fails(["run", str(tmp_path / "excl.onnx")], capsys, pool.name, "count_include_pad=0")


def test_concat_of_two_branches_in_hardware(tmp_path):
    """Two conv branches of one input with a shared QuantReLU, concatenated (Inception-style):
    a Concat stage; integer == qonnx exactly on 1,000 inputs; RTL == integer with stalls."""
    pytest.importorskip("brevitas")
    path = brevitas_concat_cnn(tmp_path / "concat.onnx")
    report = _exact_then_sim(path, (2, 8, 8), tmp_path, "5e3")
    assert [s.kind for s in report.stages].count("Concat") == 1


def test_concat_of_three_branches_in_hardware(tmp_path):
    """A three-input Concat becomes a chain of two two-input Concat stages; exact as above."""
    pytest.importorskip("brevitas")
    path = brevitas_concat_cnn(tmp_path / "concat3.onnx", branches=3)
    report = _exact_then_sim(path, (2, 8, 8), tmp_path, "5e3")
    assert [s.kind for s in report.stages].count("Concat") == 2


def test_concat_of_differently_scaled_branches_is_refused(tmp_path, capsys):
    pytest.importorskip("brevitas")
    path = brevitas_concat_cnn(tmp_path / "concat2.onnx", shared=False)
    _fails(["run", str(path)], capsys, "/Concat", "scales", "shared quantizer")


def test_mobilenet_depthwise_separable_in_hardware(tmp_path):
    """A MobileNet-v1-style w4a4 net (depthwise 3x3 convs with stride 1 and 2, pointwise 1x1
    convs, global average pool) from Brevitas: the depthwise convs become SWU + VVAU +
    Thresholding, the pointwise ones MVAUs without an SWU; integer == qonnx exactly on 1,000
    inputs; RTL == integer with random stalls; cycles per frame within 5 % of the formula."""
    pytest.importorskip("brevitas")
    path = brevitas_mobilenet(tmp_path / "mobilenet.onnx")
    report = _exact_then_sim(path, (3, 16, 16), tmp_path, "2e4")
    kinds = [s.kind for s in report.stages]
    assert kinds.count("VVAU") == 3 and kinds.count("MVAU") == 5
    assert kinds.count("SWU") == 4  # the stem and the depthwise convs; none for 1x1


def test_grouped_convolutions_in_hardware(tmp_path):
    """Convs with groups=2 (stride 2), groups=4 and a depthwise conv with channel multiplier 2
    become dense convs with block-diagonal weights (SWU + MVAU); a plain depthwise conv is a
    VVAU, here fast-folded with SIMD = K*K = 9 taps per beat (its SWU in the depthwise order,
    one pixel per CH/PE cycles, below the K*K cycles per pixel any SIMD = 1 folding needs) and
    the rest folded for 5e4 FPS: integer == qonnx exactly on 1,000 inputs; RTL == integer
    with random stalls; cycles per frame within 5 % of the formula; `qloom inspect`'s table
    says what the MVAU pays for the groups."""
    pytest.importorskip("brevitas")
    import json

    from qloom.fold.solver import fold_design
    from qloom.report.layers import layer_rows

    path = brevitas_grouped_cnn(tmp_path / "grouped.onnx")
    integer = compile_model(path).integer
    folding = fold_design(integer, 5e4).design.folding_json()
    (dw,) = [n.name for n in integer.nodes if n.attrs.get("groups", 1) > 1]
    folding[dw] = {**folding[dw], "PE": 1, "SIMD": 9}
    (tmp_path / "folding.json").write_text(json.dumps(folding))
    report = _exact_then_sim(path, (2, 8, 8), tmp_path, "", tmp_path / "folding.json")
    kinds = [s.kind for s in report.stages]
    assert kinds.count("MVAU") == 5 and kinds.count("VVAU") == 1
    (vv,) = [s for s in report.stages if s.kind == "VVAU"]
    assert vv.folding["SIMD"] == 9 and vv.cycles == 8 * 8 * 8  # pixels * CH/PE * K2/SIMD
    notes = [r.hardware for r in layer_rows(integer) if r.op == "Conv"]
    assert notes[1] == "SWU + VVAU"
    assert notes[2:] == [f"SWU + MVAU (group={g} as dense: {g}x the MACs)" for g in (2, 4, 8)]


def test_rank4_signal_is_refused_by_name(tmp_path, capsys):
    """Conv on a tensor that is neither (C, H, W) nor (C, L) names the node."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 2, 1, 1, 1), np.float32), "w")
    q = helper.make_node("Quant", ["x", "s", "z", "b"], ["q"], domain="qonnx.custom_op.general",
                         signed=1, narrow=0, rounding_mode="ROUND", name="qin")  # fmt: skip
    conv = helper.make_node("Conv", ["q", "w"], ["y"], name="conv3d", kernel_shape=[1, 1, 1])
    consts = [numpy_helper.from_array(np.float32(v), n) for v, n in ((1, "s"), (0, "z"), (8, "b"))]
    g = helper.make_graph(
        [q, conv],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3, 3])],
        initializer=[w, *consts],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "c3.onnx")
    _fails(["run", str(tmp_path / "c3.onnx")], capsys, "conv3d")
    proc = subprocess.run(
        [sys.executable, "-m", "qloom.cli", "inspect", str(tmp_path / "c3.onnx")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_bad_data_files(corpus_dir, tmp_path, capsys):
    model = next(m for m in CORPUS if m.name == "uint8-annotated")
    path, _, _ = _written(model, corpus_dir, n=10)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((5, 7), np.float32))
    _fails(["run", str(path), "--data", str(wrong)], capsys, "wrong.npy", "(N, 32)")
    no_inputs = tmp_path / "x.npz"
    np.savez(no_inputs, images=np.zeros((5, 32)))
    _fails(["run", str(path), "--data", str(no_inputs)], capsys, "x.npz", "'inputs'", "images")
    off_grid = tmp_path / "half.npy"
    np.save(off_grid, np.full((3, 32), 0.5, np.float32))
    _fails(["run", str(path), "--data", str(off_grid)], capsys, "UINT8", "0.5")
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy")
    _fails(["run", str(path), "--data", str(garbage)], capsys, "garbage.npy", "not a readable")
    labels = tmp_path / "labels.npz"
    np.savez(labels, inputs=np.zeros((4, 32)), labels=np.zeros(3, np.int64))
    _fails(["run", str(path), "--data", str(labels)], capsys, "labels.npz", "'labels'")
    _fails(["run", str(path), "--input-scale", "1/255"], capsys, "--input-type")
    _fails(["run", str(path), "--input-type", "UINT8", "--input-scale", "x"], capsys, "'x'")
    _fails(["run", str(path), "--input-type", "FLOAT32"], capsys, "integer type")
    _fails(["run", str(path), "--save-outputs", str(tmp_path / "o.txt")], capsys, ".npy or .npz")
    _fails(["run", str(path), "--limit", "-1"], capsys, ">= 0")
    _fails(["sim", str(path), "--limit", "-3"], capsys, ">= 0")


def test_labels_give_accuracy(corpus_dir, tmp_path, capsys):
    model = next(m for m in CORPUS if m.name == "float-int8")
    path, _, x = _written(model, corpus_dir, n=300)
    c = compile_model(path)
    pred = c.run(x)[c.integer.outputs[0]]
    data = tmp_path / "l.npz"
    np.savez(data, inputs=x, labels=pred.argmax(1))
    assert main(["run", str(path), "--data", str(data), "--compare-qonnx"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "top-1 accuracy 100.00 %" in out
    assert "top-1 equal on 300 / 300" in out
    assert "beyond float rounding on 0 / 300 inputs" in out
