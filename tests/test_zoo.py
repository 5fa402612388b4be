"""Model zoo: every name builds, runs and exports to QONNX that qonnx executes like torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from qloom.train.export import export_qonnx, load_qonnx, qonnx_logits, torch_logits  # noqa: E402
from qloom.train.zoo import (  # noqa: E402
    TOPOLOGIES,
    build_model,
    list_models,
    parse_model_name,
)

torch.set_num_threads(1)


def _input_for(name: str) -> tuple[int, int]:
    """(channels, size) small enough to export quickly: CNV without padding needs 32x32."""
    spec = parse_model_name(name)
    topo = TOPOLOGIES[spec.topology]
    if topo.kind == "fc":
        return 1, 28
    if topo.kind == "alexnet":  # the stride-4 stem and three pools need at least 63x63
        return 3, 64
    return (3, 32) if topo.padding == 0 else (1, 8)


def _calibrate(model: torch.nn.Module, x: torch.Tensor) -> None:
    """One training-mode forward pass so BatchNorm statistics are not the identity."""
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def _quant_nodes(path: Path) -> list[tuple[str, int | None]]:
    """(op type, bit width or None) of every quantizer in an export."""
    m = onnx.load(str(path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    out = []
    for n in m.graph.node:
        if n.op_type == "BipolarQuant":
            out.append(("BipolarQuant", 1))
        elif n.op_type == "Quant":
            bw = inits.get(n.input[3])
            out.append(("Quant", int(bw) if bw is not None else None))
    return out


def test_names_parse_and_list() -> None:
    names = list_models()
    assert {"tfc-w1a1", "tfc-w1a2", "tfc-w2a2", "sfc-w1a1", "lfc-w1a1", "cnv-w1a1"} <= set(names)
    assert {"cnv-pad-w2a2", "cnv-small-pad-w1a1"} <= set(names)
    spec = parse_model_name("cnv-pad-w2a2")
    assert (spec.topology, spec.weight_bits, spec.act_bits, spec.input_bits) == ("cnv-pad", 2, 2, 8)
    spec = parse_model_name("tfc-w4a3")
    assert (spec.weight_bits, spec.act_bits, spec.input_bits) == (4, 3, 3)
    spec = parse_model_name("sfc-w1a1-i8")
    assert (spec.topology, spec.weight_bits, spec.act_bits, spec.input_bits) == ("sfc", 1, 1, 8)


@pytest.mark.parametrize(
    "bad", ["tfc", "tfc-w0a1", "tfc-w9a1", "xfc-w1a1", "tfc-w1a1x", "cnv-w1", "tfc-w1a1-i9"]
)
def test_bad_names(bad: str) -> None:
    with pytest.raises(ValueError, match="topology"):
        parse_model_name(bad)


def test_cnv_without_padding_needs_32x32() -> None:
    with pytest.raises(ValueError, match="cnv-pad"):
        build_model("cnv-w1a1", in_channels=1, in_size=28)
    model = build_model("cnv-pad-w1a1", in_channels=1, in_size=28)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_finn_layer_shapes() -> None:
    from brevitas.nn import QuantConv2d, QuantLinear

    for topo, width in (("tfc", 64), ("sfc", 256), ("lfc", 1024)):
        lin = [m for m in build_model(f"{topo}-w1a1").modules() if isinstance(m, QuantLinear)]
        assert [m.out_features for m in lin] == [width] * 3 + [10]
        assert all(m.bias is None for m in lin)
    m = build_model("cnv-w1a1", in_channels=3, in_size=32)
    convs = [c for c in m.modules() if isinstance(c, QuantConv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256]
    assert all(c.padding == (0, 0) and c.bias is None for c in convs)
    lin = [c for c in m.modules() if isinstance(c, QuantLinear)]
    assert [(c.in_features, c.out_features) for c in lin] == [(256, 512), (512, 512), (512, 10)]


# AlexNet at full width (fc7: 4096 x 4096) only in tests/test_alexnet.py: the small one here
ZOO = [n for n in list_models() if not n.startswith("alexnet-w")]


@pytest.mark.parametrize("name", ZOO + ["tfc-w4a4", "tfc-w1a1-i8", "cnv-small-pad-w3a2"])
def test_every_model_builds_and_exports(name: str, tmp_path: Path) -> None:
    ch, size = _input_for(name)
    model = build_model(name, in_channels=ch, in_size=size)
    x = torch.rand(4, ch, size, size)
    _calibrate(model, x)
    assert model(x).shape == (4, 10)
    path = export_qonnx(model, tmp_path / f"{name}.onnx")
    spec = parse_model_name(name)
    quants = _quant_nodes(path)
    # The input quantizer, then one per weight and one per activation.
    assert quants[0][1] == spec.input_bits
    allowed = {spec.weight_bits, spec.act_bits}
    resnet = TOPOLOGIES[spec.topology].kind == "resnet"
    if resnet:  # the pooled average of a1 activations is quantized to 2 bits, not binarized
        allowed.add(max(spec.act_bits, 2))
    assert {b for _, b in quants[1:]} <= allowed
    if spec.weight_bits == spec.act_bits == 1:
        assert all(op == "BipolarQuant" for op, b in quants[1:] if b == 1)
        assert sum(op != "BipolarQuant" for op, _ in quants[1:]) == (1 if resnet else 0)
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["qloom.model"] == spec.name


@pytest.mark.parametrize(
    "name,dynamo",
    [
        ("tfc-w1a1", False),
        ("tfc-w2a2", False),
        ("tfc-w1a2-i8", True),
        ("cnv-small-pad-w1a1", False),
        ("cnv-small-w2a2", False),
    ],
)
def test_qonnx_execution_matches_torch(name: str, dynamo: bool, tmp_path: Path) -> None:
    """qonnx's reference executor reproduces torch's logits (and so its predictions)."""
    ch, size = _input_for(name)
    torch.manual_seed(1)
    model = build_model(name, in_channels=ch, in_size=size)
    imgs = torch.randint(0, 256, (3, ch, size, size)).float() / 255.0
    _calibrate(model, imgs)
    path = export_qonnx(model, tmp_path / "m.onnx", dynamo=dynamo)
    mw = load_qonnx(path)
    ref = qonnx_logits(mw, imgs.numpy())
    out = torch_logits(model, imgs.numpy())
    np.testing.assert_allclose(ref, out, rtol=1e-4, atol=1e-4)
    assert (ref.argmax(1) == out.argmax(1)).all()


def test_binary_layers_are_bipolar() -> None:
    """w1a1: weights and hidden activations take exactly two values, +-1 (scale 1)."""
    from brevitas.nn import QuantIdentity, QuantLinear

    model = build_model("tfc-w1a1")
    _calibrate(model, torch.rand(8, 1, 28, 28))
    for m in model.modules():
        if isinstance(m, QuantLinear):
            assert set(torch.unique(m.quant_weight().value).tolist()) <= {-1.0, 1.0}
    acts = [m for m in model.modules() if isinstance(m, QuantIdentity)]
    y = acts[1](torch.randn(100))
    assert set(torch.unique(y).tolist()) == {-1.0, 1.0}


def test_multibit_levels() -> None:
    """w2a2: narrow signed 2-bit values {-1, 0, 1}; 4-bit ones are multiples of 1/7."""
    from brevitas.nn import QuantLinear

    model = build_model("tfc-w2a2")
    w = next(m for m in model.modules() if isinstance(m, QuantLinear)).quant_weight().value
    assert set(torch.unique(w).tolist()) <= {-1.0, 0.0, 1.0}
    model = build_model("tfc-w4a4")
    w = next(m for m in model.modules() if isinstance(m, QuantLinear)).quant_weight().value
    k = w * 7
    assert torch.allclose(k, k.round(), atol=1e-5) and k.abs().max() <= 7
