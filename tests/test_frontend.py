"""Frontend coverage: both Brevitas exporters, hand-made FINN-ONNX, label ops."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qloom.flow import compile_model, predictions, run_integer
from qloom.frontend.domain import RAW_PIXELS
from qloom.frontend.reference import qonnx_outputs

FINN = "qonnx.custom_op.general"


def _images(shape, n=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n,) + shape, dtype=np.uint8)


def _compare(path, images, atol=1e-5):
    compiled = compile_model(path, RAW_PIXELS)
    out = run_integer(compiled.integer, images)[compiled.integer.outputs[0]]
    ref = qonnx_outputs(path, images.astype(np.float32) / np.float32(255))
    np.testing.assert_allclose(out, ref, atol=atol, rtol=1e-5)
    return compiled, out


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_brevitas_exporters(tmp_path, dynamo):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from qloom.train.export import export_qonnx
    from qloom.train.zoo import build_model

    torch.manual_seed(0)
    model = build_model("tfc-w2a2", 1, 28, 10).eval()
    path = export_qonnx(model, tmp_path / "tfc.onnx", dynamo=dynamo)
    _compare(path, _images((1, 28, 28)))


def _finn_model(tmp_path):
    """x (1, 16) -> MultiThreshold {0,1} -> XnorPopcountMatMul -> MultiThreshold (2 bit)."""
    rng = np.random.default_rng(3)
    t_in = np.sort(rng.uniform(0, 1, size=(16, 1)), axis=1).astype(np.float32)
    w = rng.integers(0, 2, size=(16, 8)).astype(np.float32)
    t_mid = np.sort(rng.integers(4, 13, size=(8, 3)), axis=1).astype(np.float32) + 0.5
    inits = [numpy_helper.from_array(a, n) for a, n in ((t_in, "t_in"), (w, "w"), (t_mid, "t_mid"))]
    nodes = [
        helper.make_node(
            "MultiThreshold", ["x", "t_in"], ["b"], domain=FINN, out_dtype="BINARY", name="thr_in"
        ),
        helper.make_node("XnorPopcountMatMul", ["b", "w"], ["p"], domain=FINN, name="xnor"),
        helper.make_node(
            "MultiThreshold",
            ["p", "t_mid"],
            ["y"],
            domain=FINN,
            out_dtype="UINT2",
            out_scale=0.5,
            out_bias=0.25,
            name="thr_out",
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "finn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(FINN, 1)]
    )
    path = tmp_path / "finn.onnx"
    onnx.save(model, path)
    return path


def test_finn_onnx_multithreshold_and_xnor_popcount(tmp_path):
    path = _finn_model(tmp_path)
    compiled, _ = _compare(path, _images((16,), n=200))
    ops = [n.op for n in compiled.integer.nodes]
    assert ops == ["MultiThreshold", "MatMul", "MultiThreshold", "FloatTail"]


def test_topk_output_gives_labels(tmp_path):
    path = _finn_model(tmp_path)
    model = onnx.load(path)
    k = numpy_helper.from_array(np.array([1], dtype=np.int64), "k")
    model.graph.initializer.append(k)
    model.graph.node.append(helper.make_node("TopK", ["y", "k"], ["vals", "idx"], name="top"))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("idx", TensorProto.INT64, [1, 1]))
    onnx.save(model, path)
    images = _images((16,), n=100)
    compiled = compile_model(path, RAW_PIXELS)
    labels = predictions(compiled.integer, run_integer(compiled.integer, images))
    ref = qonnx_outputs(path, images.astype(np.float32) / np.float32(255))
    assert np.array_equal(labels, ref[:, 0])


def test_residual_depthwise_and_global_pool(tmp_path):
    """A skip connection (two branches sharing one quantizer, then Add), a depthwise conv and
    global average pooling, exported by Brevitas, compile and match qonnx.

    Power-of-two scales (FINN's hardware-friendly choice) keep the reference's float sums
    exact; with arbitrary float scales an average that lands exactly on a rounding tie is
    decided by float summation order in the reference, which no integer model can follow.
    """
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Uint8ActPerTensorFixedPoint,
    )

    from qloom.train.export import export_qonnx

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            act = {"act_quant": Int8ActPerTensorFixedPoint, "bit_width": 4}
            w = {"weight_quant": Int8WeightPerTensorFixedPoint, "bias": False}
            self.inp = qnn.QuantIdentity(**act)
            self.conv1 = qnn.QuantConv2d(2, 4, 3, padding=1, **w, weight_bit_width=4)
            self.bn1 = torch.nn.BatchNorm2d(4)
            self.act1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=3)
            self.conv2 = qnn.QuantConv2d(4, 4, 3, padding=1, **w, weight_bit_width=3)
            self.skip = qnn.QuantConv2d(2, 4, 1, **w, weight_bit_width=2)
            self.shared = qnn.QuantIdentity(**act)
            self.act2 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4)
            self.dw = qnn.QuantConv2d(4, 4, 3, groups=4, **w, weight_bit_width=4)
            self.bn3 = torch.nn.BatchNorm2d(4)
            self.act3 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4)
            self.gap = torch.nn.AdaptiveAvgPool2d(1)
            self.act4 = qnn.QuantIdentity(**act)
            self.fc = qnn.QuantLinear(4, 3, bias=True, weight_bit_width=4)

        def forward(self, x):
            x = self.inp(x)
            y = self.shared(self.conv2(self.act1(self.bn1(self.conv1(x)))))
            z = self.act2(y + self.shared(self.skip(x)))
            z = self.act3(self.bn3(self.dw(z)))
            z = self.act4(self.gap(z))
            return self.fc(torch.flatten(z, 1))

    torch.manual_seed(1)
    model = Net()
    model.train()
    with torch.no_grad():
        model(torch.rand(32, 2, 8, 8))
    model.eval()
    path = export_qonnx(model, tmp_path / "res.onnx", in_shape=(1, 2, 8, 8))
    compiled, _ = _compare(path, _images((2, 8, 8), n=256), atol=1e-4)
    ops = [n.op for n in compiled.integer.nodes]
    assert "Add" in ops and "SumPool" in ops
    assert any(n.op == "Conv" and n.attrs["groups"] == 4 for n in compiled.integer.nodes)


def test_trunc_average_pool(tmp_path):
    """Brevitas TruncAvgPool2d exports AveragePool + Trunc: a sum pool and thresholds."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from brevitas import nn as qnn
    from brevitas.quant import Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint

    from qloom.train.export import export_qonnx

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(
                act_quant=Uint8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True
            )
            self.pool = qnn.TruncAvgPool2d(
                kernel_size=2, stride=2, bit_width=4, return_quant_tensor=True
            )
            self.fc = qnn.QuantLinear(
                32, 3, bias=False, weight_bit_width=4, weight_quant=Int8WeightPerTensorFixedPoint
            )

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.inp(x)), 1))

    torch.manual_seed(0)
    path = export_qonnx(Net().eval(), tmp_path / "trunc.onnx", in_shape=(1, 2, 8, 8))
    compiled, _ = _compare(path, _images((2, 8, 8), n=256))
    ops = [n.op for n in compiled.integer.nodes]
    assert ops == ["MultiThreshold", "SumPool", "MultiThreshold", "MatMul", "FloatTail"]
