"""Models as other tools build them, one per input domain, generated at test time.

Each entry writes a QONNX / FINN-ONNX file and draws inputs in the model's own domain, the way
a user of that tool would feed onnxruntime or qonnx:
- uint8-annotated: FINN-streamlined style, raw uint8 input annotated UINT8, the graph divides;
- float-int8: float input, signed 8-bit quantizer of non-power-of-two scale 0.83;
- bipolar-annotated: network-intrusion style, input annotated BIPOLAR (+-1 features);
- signed-bipolarquant: signed float input into a BipolarQuant of scale 0.5;
- jet-softmax: 16 float features, 16-bit input quantizer, final Softmax (jet tagging);
- finn-onnx: FINN-ONNX, MultiThreshold on the float input first, TopK last;
- conv1d: a padded 1-D convolution on a 2 x 32 signal behind an 8-bit quantizer;
- brevitas-*: the same ideas exported by Brevitas (see `brevitas_models`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX = "qonnx.custom_op.general"


@dataclass(frozen=True)
class CorpusModel:
    name: str
    write: Callable[[Path], Path]
    inputs: Callable[[np.random.Generator, int], np.ndarray]
    hardware_type: str  # the input type qloom must derive


class _Builder:
    """A tiny graph builder: named constants, Quant nodes, and a model with annotations."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.k = 0

    def const(self, value, name: str | None = None) -> str:
        self.k += 1
        name = name or f"c{self.k}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], domain: str = "", n_out: int = 1, **attrs):
        self.k += 1
        outs = [f"t{self.k}_{i}" for i in range(n_out)]
        self.nodes.append(
            helper.make_node(op, inputs, outs, name=f"{op}_{self.k}", domain=domain, **attrs)
        )
        return outs[0] if n_out == 1 else outs

    def quant(self, x: str, scale, bits: int, signed: bool, narrow: bool = False) -> str:
        args = [x, self.const(scale), self.const(0.0), self.const(float(bits))]
        return self.node(
            "Quant", args, QONNX, signed=int(signed), narrow=int(narrow), rounding_mode="ROUND"
        )

    def qweights(self, k: int, m: int, bits: int, scale: float = 0.05) -> str:
        """Float weights behind a weight quantizer (as Brevitas exports them)."""
        w = self.rng.normal(0, 1, size=(k, m)).astype(np.float32) * scale * 2 ** (bits - 2)
        return self.quant(self.const(w), scale, bits, signed=True, narrow=True)

    def bipolar_weights(self, k: int, m: int) -> str:
        w = self.rng.normal(size=(k, m)).astype(np.float32)
        return self.node("BipolarQuant", [self.const(w), self.const(1.0)], QONNX)

    def save(self, path: Path, x_shape, y: str, y_shape, annotate: dict | None = None, y_type=1):
        graph = helper.make_graph(
            self.nodes,
            path.stem,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
            [helper.make_tensor_value_info(y, y_type, list(y_shape))],
            initializer=self.inits,
        )
        for tensor, dtype in (annotate or {}).items():
            ann = onnx.TensorAnnotation()
            ann.tensor_name = tensor
            kv = ann.quant_parameter_tensor_names.add()
            kv.key, kv.value = "finn_datatype", dtype
            graph.quantization_annotation.append(ann)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX, 1)]
        )
        model.ir_version = 8
        onnx.save(model, path)
        return path


def uint8_annotated(path: Path) -> Path:
    b = _Builder(1)
    s = b.node("Mul", ["x", b.const(1 / 255)])
    h = b.node("MatMul", [s, b.qweights(32, 24, 4)])
    h = b.node("Add", [h, b.const(b.rng.normal(0, 0.2, 24))])
    h = b.node("Relu", [h])
    h = b.quant(h, 0.1, 4, signed=False)
    y = b.node("MatMul", [h, b.qweights(24, 10, 4)])
    return b.save(path, (1, 32), y, (1, 10), {"x": "UINT8"})


def float_int8(path: Path) -> Path:
    b = _Builder(2)
    q = b.quant("x", 0.83, 8, signed=True)
    h = b.node("MatMul", [q, b.qweights(20, 16, 3)])
    gamma, beta = b.rng.uniform(-1, 1, 16), b.rng.normal(0, 1, 16)
    mean, var = b.rng.normal(0, 5, 16), b.rng.uniform(50, 200, 16)
    h = b.node("BatchNormalization", [h] + [b.const(v) for v in (gamma, beta, mean, var)])
    h = b.quant(h, 0.37, 3, signed=True)
    y = b.node("Gemm", [h, b.qweights(16, 6, 4), b.const(b.rng.normal(0, 0.1, 6))])
    return b.save(path, (1, 20), y, (1, 6))


def bipolar_annotated(path: Path) -> Path:
    b = _Builder(3)
    h = b.node("MatMul", ["x", b.bipolar_weights(48, 32)])
    gamma, beta = b.rng.uniform(0.5, 1.5, 32), b.rng.normal(0, 1, 32)
    h = b.node(
        "BatchNormalization",
        [h] + [b.const(v) for v in (gamma, beta, np.zeros(32), 4 * np.ones(32))],
    )
    h = b.node("BipolarQuant", [h, b.const(1.0)], QONNX)
    y = b.node("MatMul", [h, b.bipolar_weights(32, 2)])
    return b.save(path, (1, 48), y, (1, 2), {"x": "BIPOLAR"})


def signed_bipolarquant(path: Path) -> Path:
    b = _Builder(4)
    q = b.node("BipolarQuant", ["x", b.const(0.5)], QONNX)
    y = b.node("MatMul", [q, b.bipolar_weights(24, 4)])
    y = b.node("Add", [y, b.const(b.rng.normal(0, 0.3, 4))])
    return b.save(path, (1, 24), y, (1, 4))


def jet_softmax(path: Path) -> Path:
    b = _Builder(5)
    q = b.quant("x", 2.0**-10, 16, signed=True)
    h = b.node("MatMul", [q, b.qweights(16, 24, 6, 0.02)])
    h = b.node("Add", [h, b.const(b.rng.normal(0, 0.5, 24))])
    h = b.node("Relu", [h])
    h = b.quant(h, 0.125, 6, signed=False)
    h = b.node("MatMul", [h, b.qweights(24, 5, 6, 0.02)])
    h = b.node("Add", [h, b.const(b.rng.normal(0, 0.1, 5))])
    y = b.node("Softmax", [h], axis=-1)
    return b.save(path, (1, 16), y, (1, 5))


def finn_onnx(path: Path) -> Path:
    b = _Builder(6)
    t_in = np.sort(b.rng.normal(0, 1, size=(16, 3)), axis=1)
    h = b.node("MultiThreshold", ["x", b.const(t_in)], QONNX, out_dtype="UINT2")
    w1 = b.rng.integers(-3, 4, size=(16, 12))
    h = b.node("MatMul", [h, b.const(w1)])
    t_mid = np.sort(b.rng.integers(-20, 20, size=(12, 3)), axis=1) + 0.5
    h = b.node("MultiThreshold", [h, b.const(t_mid)], QONNX, out_dtype="UINT2")
    h = b.node("MatMul", [h, b.const(b.rng.integers(-3, 4, size=(12, 8)))])
    b.inits.append(numpy_helper.from_array(np.array([1], np.int64), "k"))
    _, idx = b.node("TopK", [h, "k"], n_out=2, axis=-1)
    return b.save(path, (1, 16), idx, (1, 1), y_type=TensorProto.INT64)


def _uniform_uint8(rng, n):
    return rng.integers(0, 256, size=(n, 32)).astype(np.float32)


CORPUS: list[CorpusModel] = [
    CorpusModel("uint8-annotated", uint8_annotated, _uniform_uint8, "UINT8"),
    CorpusModel(
        "float-int8", float_int8, lambda r, n: r.normal(0, 40, (n, 20)).astype(np.float32), "INT8"
    ),
    CorpusModel(
        "bipolar-annotated",
        bipolar_annotated,
        lambda r, n: (r.integers(0, 2, (n, 48)) * 2 - 1).astype(np.float32),
        "BIPOLAR",
    ),
    CorpusModel(
        "signed-bipolarquant",
        signed_bipolarquant,
        lambda r, n: r.normal(0, 1, (n, 24)).astype(np.float32),
        "BIPOLAR",
    ),
    CorpusModel(
        "jet-softmax", jet_softmax, lambda r, n: r.normal(0, 3, (n, 16)).astype(np.float32), "INT16"
    ),
    CorpusModel(
        "conv1d",
        lambda p: conv1d(p),
        lambda r, n: r.normal(0, 3, (n, 2, 32)).astype(np.float32),
        "INT8",
    ),
    CorpusModel(
        "finn-onnx", finn_onnx, lambda r, n: r.normal(0, 1, (n, 16)).astype(np.float32), "UINT2"
    ),
]


def float_into_matmul(path: Path) -> Path:
    """A float input that reaches a MatMul with no quantizer: qloom must refuse it."""
    b = _Builder(7)
    y = b.node("MatMul", ["x", b.qweights(8, 4, 4)])
    return b.save(path, (1, 8), y, (1, 4))


def conv1d(path: Path) -> Path:
    """A padded 1-D convolution on (N, C, L) signals, as a radio classifier has it."""
    b = _Builder(8)
    q = b.quant("x", 0.1, 8, signed=True)
    w = b.rng.normal(0, 0.5, size=(4, 2, 3)).astype(np.float32)
    wq = b.quant(b.const(w), 0.1, 4, signed=True, narrow=True)
    y = b.node("Conv", [q, wq], kernel_shape=[3], pads=[1, 1])
    return b.save(path, (1, 2, 32), y, (1, 4, 32))


# -- Brevitas exports ---------------------------------------------------------------------------
def brevitas_models() -> list[CorpusModel]:
    """The same domains as Brevitas exports them (needs torch + brevitas)."""
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFloat,
        Int8WeightPerTensorFloat,
        Uint8ActPerTensorFloat,
    )

    from qloom.train.export import export_qonnx
    from qloom.train.zoo import BinaryActQuant, BinaryWeightQuant

    def jet(path: Path) -> Path:
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            qnn.QuantIdentity(
                act_quant=Int8ActPerTensorFloat, bit_width=16, return_quant_tensor=True
            ),
            qnn.QuantLinear(
                16, 32, bias=True, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=6
            ),
            qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=6),
            qnn.QuantLinear(
                32, 5, bias=True, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=6
            ),
            torch.nn.Softmax(dim=-1),
        )
        _calibrate(model, torch.randn(256, 16) * 3)
        return export_qonnx(model, path, in_shape=(1, 16))

    def signed_binary(path: Path) -> Path:
        torch.manual_seed(1)
        model = torch.nn.Sequential(
            qnn.QuantIdentity(act_quant=BinaryActQuant),
            qnn.QuantLinear(24, 16, bias=False, weight_quant=BinaryWeightQuant),
            torch.nn.BatchNorm1d(16),
            qnn.QuantIdentity(act_quant=BinaryActQuant),
            qnn.QuantLinear(16, 3, bias=False, weight_quant=BinaryWeightQuant),
        )
        _calibrate(model, torch.randn(256, 24))
        return export_qonnx(model, path, in_shape=(1, 24))

    def int8_input(path: Path) -> Path:
        torch.manual_seed(2)
        model = torch.nn.Sequential(
            qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8),
            qnn.QuantLinear(
                20, 12, bias=True, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=4
            ),
            torch.nn.BatchNorm1d(12),
            qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=3),
            qnn.QuantLinear(
                12, 4, bias=True, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=4
            ),
        )
        _calibrate(model, torch.randn(256, 20) * 2)
        return export_qonnx(model, path, in_shape=(1, 20))

    return [
        CorpusModel(
            "brevitas-jet-softmax",
            jet,
            lambda r, n: r.normal(0, 3, (n, 16)).astype(np.float32),
            "INT16",
        ),
        CorpusModel(
            "brevitas-signed-binary",
            signed_binary,
            lambda r, n: r.normal(0, 1, (n, 24)).astype(np.float32),
            "BIPOLAR",
        ),
        CorpusModel(
            "brevitas-int8",
            int8_input,
            lambda r, n: r.normal(0, 2, (n, 20)).astype(np.float32),
            "INT8",
        ),
    ]


def _calibrate(model, x) -> None:
    """One training-mode pass sets activation scales and BN statistics, then eval mode."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def brevitas_radio_1d(
    path: Path,
    blocks: int = 3,
    length: int = 64,
    width: int = 8,
    wbits: int = 4,
    abits: int = 4,
    hidden: tuple[int, ...] = (),
    classes: int = 5,
    fixed_point: bool = False,
) -> Path:
    """A RadioML-style 1-D VGG: an 8-bit input quantizer, `blocks` x (QuantConv1d k3 pad 1,
    BN, QuantReLU, MaxPool1d 2), `hidden` QuantLinear + BN + QuantReLU layers, then a
    QuantLinear classifier, on 2 x `length` I/Q signals. The RadioML challenge baseline
    (VGG10) is blocks=7, length=1024, width=64, hidden=(128, 128), classes=24, w8a8.
    `fixed_point`: power-of-two scales (Brevitas *FixedPoint quantizers) instead of float."""
    import brevitas.quant as bq
    import torch
    from brevitas import nn as qnn

    kind = "FixedPoint" if fixed_point else "Float"
    act_in = getattr(bq, f"Int8ActPerTensor{kind}")
    weight = getattr(bq, f"Int8WeightPerTensor{kind}")
    act_relu = getattr(bq, f"Uint8ActPerTensor{kind}")

    from qloom.train.export import export_qonnx

    torch.manual_seed(3)
    wq = dict(weight_quant=weight, weight_bit_width=wbits)
    relu = dict(act_quant=act_relu, bit_width=abits)
    layers: list = [qnn.QuantIdentity(act_quant=act_in, bit_width=8)]
    ch = 2
    for _ in range(blocks):
        layers += [
            qnn.QuantConv1d(ch, width, 3, padding=1, bias=False, **wq),
            torch.nn.BatchNorm1d(width),
            qnn.QuantReLU(**relu),
            torch.nn.MaxPool1d(2),
        ]
        ch = width
    layers.append(torch.nn.Flatten())
    features = width * (length >> blocks)
    for h in hidden:
        layers += [
            qnn.QuantLinear(features, h, bias=False, **wq),
            torch.nn.BatchNorm1d(h),
            qnn.QuantReLU(**relu),
        ]
        features = h
    layers.append(qnn.QuantLinear(features, classes, bias=True, **wq))
    model = torch.nn.Sequential(*layers)
    _calibrate(model, torch.randn(128, 2, length))
    return export_qonnx(model, path, in_shape=(1, 2, length))


def brevitas_avgpool_cnn(path: Path) -> Path:
    """A small CNN with average pooling as Brevitas users write it: AvgPool2d then a quantizer,
    and a global average pool (AdaptiveAvgPool2d(1)) before the classifier. Power-of-two
    scales (FINN's choice), with which the average is exact in float32 too."""
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Uint8ActPerTensorFixedPoint,
    )

    from qloom.train.export import export_qonnx

    torch.manual_seed(4)
    w4 = dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4, bias=False)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8),
        qnn.QuantConv2d(2, 8, 3, padding=1, **w4),
        torch.nn.BatchNorm2d(8),
        qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4),
        torch.nn.AvgPool2d(2),
        qnn.QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4),
        qnn.QuantConv2d(8, 8, 3, padding=1, **w4),
        torch.nn.BatchNorm2d(8),
        qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4),
        torch.nn.AdaptiveAvgPool2d(1),
        qnn.QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4),
        torch.nn.Flatten(),
        qnn.QuantLinear(
            8, 4, bias=False, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4
        ),
    )
    _calibrate(model, torch.randn(128, 2, 8, 8))
    return export_qonnx(model, path, in_shape=(1, 2, 8, 8))


def brevitas_overlap_pool_cnn(path: Path) -> Path:
    """Pooling that windows must overlap for: a ResNet-stem-like MaxPool2d(3, stride 2,
    padding 1) and an AvgPool2d(3, stride 2) before a quantizer (power-of-two scales)."""
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Uint8ActPerTensorFixedPoint,
    )

    from qloom.train.export import export_qonnx

    torch.manual_seed(5)
    w4 = dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4, bias=False)
    relu4 = dict(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8),
        qnn.QuantConv2d(2, 8, 3, padding=1, **w4),
        torch.nn.BatchNorm2d(8),
        qnn.QuantReLU(**relu4),
        torch.nn.MaxPool2d(3, stride=2, padding=1),
        qnn.QuantConv2d(8, 8, 3, padding=1, **w4),
        torch.nn.BatchNorm2d(8),
        qnn.QuantReLU(**relu4),
        torch.nn.AvgPool2d(3, stride=2),
        qnn.QuantIdentity(**relu4),
        torch.nn.Flatten(),
        qnn.QuantLinear(
            8 * 2 * 2, 4, bias=False, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4
        ),  # fmt: skip
    )
    _calibrate(model, torch.randn(128, 2, 12, 12))
    return export_qonnx(model, path, in_shape=(1, 2, 12, 12))


def brevitas_mobilenet(path: Path, width: int = 8, size: int = 16) -> Path:
    """A MobileNet-v1-style net, w4a4: a 3x3 stem, then depthwise-separable blocks (3x3
    depthwise QuantConv2d with groups = channels, stride 1 or 2, BN, QuantReLU; 1x1 pointwise,
    BN, QuantReLU), a global average pool and a classifier, on a small 3 x size x size image.
    Power-of-two scales (FINN's choice)."""
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Uint8ActPerTensorFixedPoint,
    )

    from qloom.train.export import export_qonnx

    torch.manual_seed(6)
    w4 = dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4, bias=False)
    relu4 = dict(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4)

    def conv_bn_relu(cin, cout, k, stride=1, groups=1):
        return [
            qnn.QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, **w4),
            torch.nn.BatchNorm2d(cout),
            qnn.QuantReLU(**relu4),
        ]

    layers = [qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8)]
    layers += conv_bn_relu(3, width, 3, stride=2)
    ch = width
    for cout, stride in ((2 * width, 1), (2 * width, 2), (4 * width, 1)):
        layers += conv_bn_relu(ch, ch, 3, stride=stride, groups=ch)  # depthwise
        layers += conv_bn_relu(ch, cout, 1)  # pointwise
        ch = cout
    layers += [
        torch.nn.AdaptiveAvgPool2d(1),
        qnn.QuantIdentity(**relu4),
        torch.nn.Flatten(),
        qnn.QuantLinear(
            ch, 5, bias=False, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4
        ),  # fmt: skip
    ]
    model = torch.nn.Sequential(*layers)
    _calibrate(model, torch.randn(128, 3, size, size))
    return export_qonnx(model, path, in_shape=(1, 3, size, size))


def brevitas_grouped_cnn(path: Path, size: int = 8) -> Path:
    """Grouped convolutions, w4a4, power-of-two scales: a 1x1 stem (2 -> 8), a 3x3 depthwise
    conv (a VVAU), a 3x3 conv with groups=2 and stride 2, one with groups=4, a depthwise conv
    with channel multiplier 2 (groups = 8 in channels, 16 out), then a global average pool
    and a classifier."""
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Uint8ActPerTensorFixedPoint,
    )

    from qloom.train.export import export_qonnx

    torch.manual_seed(11)
    w4 = dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4, bias=False)
    relu4 = dict(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4)

    def conv_bn_relu(cin, cout, k=3, stride=1, groups=1):
        return [
            qnn.QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, **w4),
            torch.nn.BatchNorm2d(cout),
            qnn.QuantReLU(**relu4),
        ]

    layers = [qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8)]
    layers += conv_bn_relu(2, 8, k=1)
    layers += conv_bn_relu(8, 8, groups=8)  # depthwise
    layers += conv_bn_relu(8, 8, stride=2, groups=2)
    layers += conv_bn_relu(8, 8, groups=4)
    layers += conv_bn_relu(8, 16, groups=8)  # depthwise, channel multiplier 2
    layers += [
        torch.nn.AdaptiveAvgPool2d(1),
        qnn.QuantIdentity(**relu4),
        torch.nn.Flatten(),
        qnn.QuantLinear(
            16, 5, bias=False, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4
        ),  # fmt: skip
    ]
    model = torch.nn.Sequential(*layers)
    _calibrate(model, torch.randn(128, 2, size, size))
    return export_qonnx(model, path, in_shape=(1, 2, size, size))


def brevitas_padded_avgpool_cnn(path: Path) -> Path:
    """AvgPool2d(3, stride 1, padding 1) as PyTorch exports it (count_include_pad=1: every
    window divides by 9, the padding counts as zeros) between two convs, power-of-two scales."""
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Uint8ActPerTensorFixedPoint,
    )

    from qloom.train.export import export_qonnx

    torch.manual_seed(7)
    w4 = dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4, bias=False)
    relu4 = dict(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8),
        qnn.QuantConv2d(2, 4, 3, **w4),
        torch.nn.BatchNorm2d(4),
        qnn.QuantReLU(**relu4),
        torch.nn.AvgPool2d(3, stride=1, padding=1),
        qnn.QuantIdentity(**relu4),
        torch.nn.Flatten(),
        qnn.QuantLinear(
            4 * 6 * 6, 4, bias=False, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4
        ),  # fmt: skip
    )
    _calibrate(model, torch.randn(128, 2, 8, 8))
    return export_qonnx(model, path, in_shape=(1, 2, 8, 8))


def brevitas_concat_cnn(path: Path, shared: bool = True, branches: int = 2) -> Path:
    """Two conv branches of one input (3x3 and 1x1, like an Inception block) whose outputs
    share one QuantReLU (one scale), concatenated along the channels, then a 3x3 conv, a
    global average pool and a classifier; power-of-two scales. `shared=False`: each branch
    has its own QuantReLU (two scales). `branches=3`: a third 1x1 conv branch (three-input
    Concat)."""
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Uint8ActPerTensorFixedPoint,
    )

    from qloom.train.export import export_qonnx

    torch.manual_seed(8)
    w4 = dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4, bias=False)
    relu4 = dict(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8)
            self.a = qnn.QuantConv2d(2, 4, 3, padding=1, **w4)
            self.bn_a = torch.nn.BatchNorm2d(4)
            self.b = qnn.QuantConv2d(2, 2, 1, **w4)
            self.bn_b = torch.nn.BatchNorm2d(2)
            self.relu = qnn.QuantReLU(**relu4)  # shared: one scale for both branches
            self.relu_b = self.relu if shared else qnn.QuantReLU(**relu4)
            self.d = qnn.QuantConv2d(2, 3, 1, **w4) if branches == 3 else None
            self.bn_d = torch.nn.BatchNorm2d(3)
            self.c = qnn.QuantConv2d(6 + 3 * (branches == 3), 6, 3, **w4)
            self.bn_c = torch.nn.BatchNorm2d(6)
            self.relu_c = qnn.QuantReLU(**relu4)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.q = qnn.QuantIdentity(**relu4)
            self.fc = qnn.QuantLinear(6, 4, bias=False, weight_quant=Int8WeightPerTensorFixedPoint,
                                      weight_bit_width=4)  # fmt: skip

        def forward(self, x):
            x = self.inp(x)
            ys = [self.relu(self.bn_a(self.a(x))), self.relu_b(self.bn_b(self.b(x)))]
            if self.d is not None:
                ys.append(self.relu(self.bn_d(self.d(x))))
            y = torch.cat(ys, 1)
            y = self.relu_c(self.bn_c(self.c(y)))
            return self.fc(torch.flatten(self.q(self.pool(y)), 1))

    model = Net()
    _calibrate(model, torch.randn(128, 2, 8, 8))
    return export_qonnx(model, path, in_shape=(1, 2, 8, 8))


def brevitas_residual_scales(
    path: Path,
    main_scales: tuple[float, float] = (1.3, 0.77),
    short_scales: tuple[float, float] = (2.1, 1.13),
    out_scale: float = 1.9,
    channels: int = 4,
    size: int = 8,
) -> Path:
    """A residual net whose Adds join branches quantized by separate quantizers of different,
    non-power-of-two learned scales (Brevitas parameter scaling, set explicitly), as in real
    Brevitas ResNets: an 8-bit input quantizer and a 3x3 conv stem (power-of-two scales, 4-bit
    QuantReLU), then
    - block 1 (identity shortcut): conv-BN-QuantReLU-conv-BN into a signed 4-bit QuantIdentity
      of scale main_scales[0]/8; the shortcut through its own signed 5-bit QuantIdentity of
      scale short_scales[0]/16; their sum into a 4-bit QuantReLU of scale out_scale/15;
    - block 2 (1x1 stride-2 conv shortcut, channels doubled): conv(stride 2)-BN-QuantReLU-
      conv-BN into a 4-bit QuantReLU of scale main_scales[1]/15; the shortcut conv-BN into a
      signed 4-bit QuantIdentity of scale short_scales[1]/8; their sum into a power-of-two
      4-bit QuantReLU;
    then a global average pool, a 4-bit quantizer and a 5-class classifier."""
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8ActPerTensorFloat,
        Int8WeightPerTensorFixedPoint,
        Uint8ActPerTensorFixedPoint,
        Uint8ActPerTensorFloat,
    )

    from qloom.train.export import export_qonnx

    torch.manual_seed(9)
    w4 = dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4, bias=False)
    relu4 = dict(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4)

    def learned(quant, bits: int, value: float) -> dict:
        return dict(act_quant=quant, bit_width=bits, scaling_impl_type="parameter",
                    scaling_init=value)  # fmt: skip

    c1, c2 = channels, 2 * channels

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8)
            self.stem = torch.nn.Sequential(
                qnn.QuantConv2d(3, c1, 3, padding=1, **w4),
                torch.nn.BatchNorm2d(c1),
                qnn.QuantReLU(**relu4),
            )
            self.b1 = torch.nn.Sequential(
                qnn.QuantConv2d(c1, c1, 3, padding=1, **w4),
                torch.nn.BatchNorm2d(c1),
                qnn.QuantReLU(**relu4),
                qnn.QuantConv2d(c1, c1, 3, padding=1, **w4),
                torch.nn.BatchNorm2d(c1),
                qnn.QuantIdentity(**learned(Int8ActPerTensorFloat, 4, main_scales[0])),
            )
            self.s1 = qnn.QuantIdentity(**learned(Int8ActPerTensorFloat, 5, short_scales[0]))
            self.o1 = qnn.QuantReLU(**learned(Uint8ActPerTensorFloat, 4, out_scale))
            self.b2 = torch.nn.Sequential(
                qnn.QuantConv2d(c1, c2, 3, stride=2, padding=1, **w4),
                torch.nn.BatchNorm2d(c2),
                qnn.QuantReLU(**relu4),
                qnn.QuantConv2d(c2, c2, 3, padding=1, **w4),
                torch.nn.BatchNorm2d(c2),
                qnn.QuantReLU(**learned(Uint8ActPerTensorFloat, 4, main_scales[1])),
            )
            self.s2 = torch.nn.Sequential(
                qnn.QuantConv2d(c1, c2, 1, stride=2, **w4),
                torch.nn.BatchNorm2d(c2),
                qnn.QuantIdentity(**learned(Int8ActPerTensorFloat, 4, short_scales[1])),
            )
            self.o2 = qnn.QuantReLU(**relu4)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.q = qnn.QuantIdentity(**relu4)
            self.fc = qnn.QuantLinear(c2, 5, bias=False, weight_quant=Int8WeightPerTensorFixedPoint,
                                      weight_bit_width=4)  # fmt: skip

        def forward(self, x):
            x = self.stem(self.inp(x))
            x = self.o1(self.b1(x) + self.s1(x))
            x = self.o2(self.b2(x) + self.s2(x))
            return self.fc(torch.flatten(self.q(self.pool(x)), 1))

    model = Net()
    _calibrate(model, torch.randn(128, 3, size, size))
    return export_qonnx(model, path, in_shape=(1, 3, size, size))


def add_of_two_scales(
    path: Path,
    sx: float,
    sy: float,
    bits: int = 8,
    out_quant: tuple[float, int] | None = None,
    classes: int = 0,
) -> Path:
    """The join of two branches quantized with different scales, hand-built as QONNX: x
    (1, 16) -> an 8-bit input quantizer of scale 1/16 -> two signed `bits`-bit quantizers of
    scales sx and sy -> Add -> [a signed quantizer (scale, bits) = out_quant] -> [a 4-bit
    MatMul to `classes` outputs]; the last tensor is the output."""
    b = _Builder(10)
    q = b.quant("x", 1 / 16, 8, signed=True)
    y = b.node("Add", [b.quant(q, sx, bits, signed=True), b.quant(q, sy, bits, signed=True)])
    if out_quant is not None:
        y = b.quant(y, out_quant[0], out_quant[1], signed=True)
    if classes:
        y = b.node("MatMul", [y, b.qweights(16, classes, 4)])
    return b.save(path, (1, 16), y, (1, classes or 16))


def brevitas_mul_cnn(path: Path, kind: str = "both", size: int = 8) -> Path:
    """Elementwise products of two streams, w4a4, on a 2 x size x size image: a 3x3 conv stem
    (8 channels, power-of-two 4-bit QuantReLU), then
    - a squeeze-and-excitation block (kind "se" or "both"): a global average pool, a 4-bit
      quantizer, a 1x1 conv (8 -> 8) and a 4-bit QuantReLU gate with a learned float scale
      (a float sigmoid is not integer); the gate (1, 8, 1, 1) times the feature map, into a
      4-bit QuantReLU;
    - the product of two branches (kind "product" or "both"): a 3x3 and a 1x1 conv, each
      with its own QuantReLU (power-of-two and learned float scales), multiplied
      elementwise, into a 4-bit QuantReLU;
    then a 3x3 conv, a global average pool, a quantizer and a 4-class classifier."""
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Uint8ActPerTensorFixedPoint,
        Uint8ActPerTensorFloat,
    )

    from qloom.train.export import export_qonnx

    torch.manual_seed({"se": 12, "product": 13}.get(kind, 14))
    w4 = dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4, bias=False)
    relu4 = dict(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4)
    relu4f = dict(act_quant=Uint8ActPerTensorFloat, bit_width=4)
    ch = 8
    se, product = kind in ("se", "both"), kind in ("product", "both")

    def conv_bn(k, quant, cin=ch, cout=ch):
        return torch.nn.Sequential(
            qnn.QuantConv2d(cin, cout, k, padding=k // 2, **w4),
            torch.nn.BatchNorm2d(cout),
            qnn.QuantReLU(**quant),
        )

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8)
            self.stem = conv_bn(3, relu4, cin=2)
            if se:
                self.squeeze = torch.nn.Sequential(
                    torch.nn.AdaptiveAvgPool2d(1), qnn.QuantIdentity(**relu4), conv_bn(1, relu4f)
                )
                self.after_se = qnn.QuantReLU(**relu4)
            if product:
                self.a, self.b = conv_bn(3, relu4), conv_bn(1, relu4f)
                self.after = qnn.QuantReLU(**relu4)
            self.head = torch.nn.Sequential(
                qnn.QuantConv2d(ch, 6, 3, **w4),
                torch.nn.BatchNorm2d(6),
                qnn.QuantReLU(**relu4),
                torch.nn.AdaptiveAvgPool2d(1),
                qnn.QuantIdentity(**relu4),
                torch.nn.Flatten(),
                qnn.QuantLinear(
                    6, 4, bias=False, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=4
                ),
            )

        def forward(self, x):
            x = self.stem(self.inp(x))
            if se:
                x = self.after_se(x * self.squeeze(x))
            if product:
                x = self.after(self.a(x) * self.b(x))
            return self.head(x)

    model = Net()
    _calibrate(model, torch.randn(128, 2, size, size))
    return export_qonnx(model, path, in_shape=(1, 2, size, size))
