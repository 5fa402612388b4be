"""Property tests: random quantized MLPs and CNNs built with Brevitas (1-8 bit weights and
activations, batch norm with negative scales, per-channel weight scales, padding, max-pool)
and grouped / depthwise convs give the same outputs through qonnx's executor and through
qloom's integer graph."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
brevitas_nn = pytest.importorskip("brevitas.nn")

from brevitas.quant import (  # noqa: E402
    Int8ActPerTensorFloat,
    Int8WeightPerTensorFloat,
    Uint8ActPerTensorFloat,
)

from qloom.flow import compile_model, run_integer  # noqa: E402
from qloom.frontend.domain import RAW_PIXELS  # noqa: E402
from qloom.frontend.reference import qonnx_outputs  # noqa: E402
from qloom.train.export import export_qonnx  # noqa: E402
from qloom.train.zoo import BinaryActQuant, BinaryWeightQuant  # noqa: E402

torch.set_num_threads(1)
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class PerChannelWeights(Int8WeightPerTensorFloat):
    scaling_per_output_channel = True


def weight_kwargs(bits: int, per_channel: bool) -> dict:
    if bits == 1:
        return {"weight_quant": BinaryWeightQuant}
    quant = PerChannelWeights if per_channel else Int8WeightPerTensorFloat
    return {"weight_quant": quant, "weight_bit_width": bits}


def activation(bits: int, kind: str):
    if bits == 1:
        return brevitas_nn.QuantIdentity(act_quant=BinaryActQuant)
    if kind == "relu":
        return brevitas_nn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=bits)
    return brevitas_nn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=bits)


layer = st.fixed_dictionaries(
    {
        "width": st.sampled_from([4, 8, 12]),
        "wbits": st.integers(1, 8),
        "abits": st.integers(1, 8),
        "act": st.sampled_from(["relu", "signed"]),
        "per_channel": st.booleans(),
        "bn": st.booleans(),
    }
)


def calibrate(model, shape, seed):
    """Random BN statistics from one training-mode batch, then random gamma signs."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.rand((64,) + shape, generator=g))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                sign = torch.randint(0, 2, m.weight.shape, generator=g) * 2 - 1
                m.weight.mul_(sign * (0.5 + torch.rand(m.weight.shape, generator=g)))
                m.bias.add_(0.3 * torch.randn(m.bias.shape, generator=g))
    model.eval()
    return model


def check_equal(tmp_path, model, shape, seed):
    path = export_qonnx(model, tmp_path / "m.onnx", in_shape=(1,) + shape)
    images = np.random.default_rng(seed).integers(0, 256, size=(24,) + shape, dtype=np.uint8)
    reference = qonnx_outputs(path, images.astype(np.float32) / np.float32(255))
    compiled = compile_model(path, RAW_PIXELS)
    out = run_integer(compiled.integer, images)[compiled.integer.outputs[0]]
    assert out.shape == reference.shape
    scale = max(1.0, float(np.abs(reference).max()))
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4 * scale)
    # predictions agree wherever the reference's top-2 margin exceeds its float rounding:
    # exact integer ties are broken by summation order in qonnx's float matmul
    top2 = np.sort(reference, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-4 * scale
    assert np.array_equal(out.argmax(1)[clear], reference.argmax(1)[clear])
    assert clear.mean() > 0.5


@SETTINGS
@given(
    layers=st.lists(layer, min_size=1, max_size=3),
    in_bits=st.integers(1, 8),
    seed=st.integers(0, 1000),
)
def test_random_mlp(tmp_path_factory, layers, in_bits, seed):
    torch.manual_seed(seed)
    shape = (1, 6, 6)
    mods = [torch.nn.Flatten(), activation(in_bits, "signed")]
    width = 36
    for spec in layers:
        mods.append(
            brevitas_nn.QuantLinear(
                width,
                spec["width"],
                bias=False,
                **weight_kwargs(spec["wbits"], spec["per_channel"]),
            )
        )
        if spec["bn"]:
            mods.append(torch.nn.BatchNorm1d(spec["width"]))
        mods.append(activation(spec["abits"], spec["act"]))
        width = spec["width"]
    mods.append(brevitas_nn.QuantLinear(width, 5, bias=True, **weight_kwargs(4, False)))
    model = calibrate(torch.nn.Sequential(*mods), shape, seed)
    check_equal(tmp_path_factory.mktemp("mlp"), model, shape, seed)


conv_layer = st.fixed_dictionaries(
    {
        "channels": st.sampled_from([2, 4, 6]),
        "wbits": st.integers(1, 8),
        "abits": st.integers(1, 8),
        "act": st.sampled_from(["relu", "signed"]),
        "per_channel": st.booleans(),
        "pad": st.integers(0, 1),
        "pool": st.booleans(),
        # 1, 2 (a dense conv with block-diagonal weights), "depthwise" (groups = channels:
        # a VVAU; keeps the channel count), "x2" (depthwise with channel multiplier 2: dense)
        "groups": st.sampled_from([1, 2, "depthwise", "x2"]),
    }
)


@SETTINGS
@given(
    layers=st.lists(conv_layer, min_size=1, max_size=2),
    in_bits=st.integers(2, 8),
    seed=st.integers(0, 1000),
)
def test_random_cnn(tmp_path_factory, layers, in_bits, seed):
    torch.manual_seed(seed)
    shape = (2, 10, 10)
    mods = [activation(in_bits, "signed")]
    ch, size = 2, 10
    for spec in layers:
        out, groups = {
            "depthwise": (ch, ch),
            "x2": (2 * ch, ch),
            2: (spec["channels"], 2),
            1: (spec["channels"], 1),
        }[spec["groups"]]
        wbits = spec["wbits"]
        if wbits == 1 and groups > 1 and out != ch:
            wbits = 2  # grouped convs need a 0 weight: +-1 weights are refused
        mods.append(
            brevitas_nn.QuantConv2d(
                ch,
                out,
                3,
                padding=spec["pad"],
                groups=groups,
                bias=False,
                **weight_kwargs(wbits, spec["per_channel"]),
            )
        )
        mods.append(torch.nn.BatchNorm2d(out))
        ch, size = out, size - 2 + 2 * spec["pad"]
        if spec["pool"] and size >= 4:
            mods.append(torch.nn.MaxPool2d(2))
            size //= 2
        mods.append(activation(spec["abits"], spec["act"]))
    mods += [
        torch.nn.Flatten(),
        brevitas_nn.QuantLinear(ch * size * size, 4, bias=False, **weight_kwargs(2, False)),
    ]
    model = calibrate(torch.nn.Sequential(*mods), shape, seed)
    check_equal(tmp_path_factory.mktemp("cnn"), model, shape, seed)


def small_cnn_onnx(path):
    """A fixed small Brevitas CNN (padding, max-pool, 2-4 bit layers) exported to `path`;
    the dataflow and RTL tests reuse it."""
    torch.manual_seed(0)
    mods = [
        activation(4, "signed"),
        brevitas_nn.QuantConv2d(2, 4, 3, padding=1, bias=False, **weight_kwargs(3, True)),
        torch.nn.BatchNorm2d(4),
        torch.nn.MaxPool2d(2),
        activation(2, "relu"),
        brevitas_nn.QuantConv2d(4, 4, 3, padding=0, bias=False, **weight_kwargs(2, False)),
        torch.nn.BatchNorm2d(4),
        activation(3, "signed"),
        torch.nn.Flatten(),
        brevitas_nn.QuantLinear(36, 4, bias=False, **weight_kwargs(2, False)),
    ]
    model = calibrate(torch.nn.Sequential(*mods), (2, 10, 10), 0)
    return export_qonnx(model, path, in_shape=(1, 2, 10, 10))
