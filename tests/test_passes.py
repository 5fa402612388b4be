"""One test per integer-graph pass (qloom.streamline.passes): the pass changes the graph the
way its contract says, and the graph computes the same function before and after it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
brevitas_nn = pytest.importorskip("brevitas.nn")

from test_streamline_random import activation, calibrate, weight_kwargs  # noqa: E402

from qloom.execute import execute  # noqa: E402
from qloom.flow import compile_model, integer_input  # noqa: E402
from qloom.streamline import to_integer_graph  # noqa: E402
from qloom.streamline.passes import PIPELINE, absorb_negation, bipolar_to_xnor  # noqa: E402
from qloom.train.export import export_qonnx  # noqa: E402


def _graphs(tmp_path, model, shape):
    """The integer graph straight from lowering, and hardware inputs from its domain."""
    path = export_qonnx(model, tmp_path / "m.onnx", in_shape=(1,) + shape)
    c = compile_model(path)
    return to_integer_graph(c.imported, c.domain), c.hardware_input(c.random_inputs(500))


def _same_function(before, after, q) -> None:
    out_b = execute(before, integer_input(before, q))
    out_a = execute(after, integer_input(after, q))
    for name in before.outputs:
        np.testing.assert_array_equal(out_a[name], out_b[name])


def _binary_mlp_with_negative_scales():
    """BIPOLAR input, binary weights, BN with random gamma signs (negated channels)."""
    torch.manual_seed(1)
    mods = [
        torch.nn.Flatten(),
        activation(1, "signed"),
        brevitas_nn.QuantLinear(16, 12, bias=False, **weight_kwargs(1, False)),
        torch.nn.BatchNorm1d(12),
        activation(1, "signed"),
        brevitas_nn.QuantLinear(12, 8, bias=False, **weight_kwargs(3, False)),
        torch.nn.BatchNorm1d(8),
        activation(2, "relu"),
        brevitas_nn.QuantLinear(8, 4, bias=False, **weight_kwargs(2, False)),
    ]
    return calibrate(torch.nn.Sequential(*mods), (1, 4, 4), 1), (1, 4, 4)


def test_absorb_negation(tmp_path):
    model, shape = _binary_mlp_with_negative_scales()
    g, q = _graphs(tmp_path, model, shape)
    thresholds = [n for n in g.nodes if n.op == "MultiThreshold"]
    negated = [n.name for n in thresholds if n.attrs.get("negate") is not None]
    assert negated, "the model should have negated channels (negative BN scales)"
    after = absorb_negation(g)
    assert all(after.node(n).attrs.get("negate") is None for n in negated)
    _same_function(g, after, q)


def test_bipolar_to_xnor(tmp_path):
    model, shape = _binary_mlp_with_negative_scales()
    g, q = _graphs(tmp_path, model, shape)
    g = absorb_negation(g)
    after = bipolar_to_xnor(g)
    ops = [n.op for n in after.nodes]
    assert "XnorMatMul" in ops and ops.count("XnorMatMul") == 1  # the 3-bit layer stays
    _same_function(g, after, q)


def test_depthwise_conv_stays_multibit_through_the_pipeline(tmp_path):
    """A depthwise conv on BIPOLAR input with binary weights is not turned into an XnorConv
    (the VVAU reads +-1 operands itself); negated channels are absorbed into its filters."""
    torch.manual_seed(2)
    mods = [
        activation(1, "signed"),
        brevitas_nn.QuantConv2d(4, 4, 3, groups=4, bias=False, **weight_kwargs(1, False)),
        torch.nn.BatchNorm2d(4),
        activation(2, "signed"),
        torch.nn.Flatten(),
        brevitas_nn.QuantLinear(4 * 4 * 4, 3, bias=False, **weight_kwargs(2, False)),
    ]
    model = calibrate(torch.nn.Sequential(*mods), (4, 6, 6), 2)
    g, q = _graphs(tmp_path, model, (4, 6, 6))
    after = g
    for p in PIPELINE:
        after = p(after)
    conv = [n for n in after.nodes if n.op.endswith("Conv")]
    assert [n.op for n in conv] == ["Conv"] and conv[0].attrs["groups"] == 4
    assert all(n.attrs.get("negate") is None for n in after.nodes if n.op == "MultiThreshold")
    _same_function(g, after, q)
