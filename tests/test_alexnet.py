"""AlexNet in the zoo (issue 17): names, the full network's layer shapes, the smallest input it
takes, and the quarter-width `alexnet-small` at 64 x 64 through the compiler (11x11 stride-4
conv, overlapping 3x3 stride-2 max pools, a pooled map flattened into the first FC), folded
for a target and cut across several small parts. Cheap: the full-width network is only built
(no export); bench/alexnet.py builds and simulates it across devices."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from brevitas.nn import QuantConv2d, QuantLinear  # noqa: E402

from qloom.cli import main  # noqa: E402
from qloom.flow import compile_model  # noqa: E402
from qloom.fold import fold_design  # noqa: E402
from qloom.fold.partition import PartitionError, partition  # noqa: E402
from qloom.frontend.reference import qonnx_outputs  # noqa: E402
from qloom.train.zoo import (  # noqa: E402
    TOPOLOGIES,
    alexnet_output_size,
    build_model,
    list_models,
    parse_model_name,
)

torch.set_num_threads(1)


def test_names_and_defaults():
    spec = parse_model_name("alexnet-w1a2")
    assert (spec.topology, spec.weight_bits, spec.act_bits, spec.input_bits) == (
        "alexnet",
        1,
        2,
        8,
    )
    assert parse_model_name("alexnet-small-w2a2").topology == "alexnet-small"
    assert (TOPOLOGIES["alexnet"].in_size, TOPOLOGIES["alexnet"].classes) == (224, 1000)
    assert {"alexnet-w1a2", "alexnet-small-w2a2"} <= set(list_models())  # `qloom export` names


def test_alexnet_layers():
    m = build_model("alexnet-w1a2", in_channels=3, in_size=224, num_classes=1000)
    convs = [c for c in m.modules() if isinstance(c, QuantConv2d)]
    shapes = [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs]
    assert shapes == [(96, 11, 4, 2), (256, 5, 1, 2), (384, 3, 1, 1), (384, 3, 1, 1),
                      (256, 3, 1, 1)]  # fmt: skip
    lin = [c for c in m.modules() if isinstance(c, QuantLinear)]
    assert [(c.in_features, c.out_features) for c in lin] == [
        (256 * 6 * 6, 4096),
        (4096, 4096),
        (4096, 1000),
    ]
    assert all(c.bias is None for c in convs + lin)
    weights = sum(c.weight.numel() for c in convs + lin)
    assert weights == 62_367_776  # AlexNet's 60.9 M parameters, one tower, no biases
    assert m.order[:6] == ["inp", "conv1", "bn1", "act1", "pool1", "conv2"]


def test_input_size_limits():
    topo = TOPOLOGIES["alexnet"]
    assert [alexnet_output_size(topo, s) for s in (63, 64, 224, 227)] == [1, 1, 6, 6]
    with pytest.raises(ValueError, match="at least 63x63"):
        build_model("alexnet-w1a2", in_channels=3, in_size=62)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("alexnet") / "alexnet-small-w1a2.onnx"
    argv = ["export", "--model", "alexnet-small-w1a2", "--out", str(path), "--in-size", "64",
            "--classes", "10"]  # fmt: skip
    assert main(argv) == 0
    return path, compile_model(path)


def test_integer_model_equals_qonnx(small):
    path, c = small
    x = np.random.default_rng(0).random((4, 3, 64, 64), dtype=np.float32)
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], qonnx_outputs(path, x, 4))
    ops = [n.op for n in c.integer.nodes]
    assert ops.count("Conv") == 5 and ops.count("MaxPool") == 3 and ops.count("MatMul") == 3


def test_folds_and_partitions_across_small_parts(small):
    _, c = small
    res = fold_design(c.integer, 1000, 100.0, "xc7a35t", float("inf"), (1.0,))
    d = res.design
    kinds = [s.kind for s in d.stages]
    assert kinds.count("WindowPool") == 3  # the overlapping pools
    assert d.stage("/conv1/Conv_swu").stride == (4, 4)
    assert d.cycles_per_frame() <= res.budget_cycles
    part = partition(d, "4xxc7a35t", "aurora-10g", 0.9, 100.0, res.budget_cycles)
    assert len(part.segments) >= 2  # one xc7a35t does not hold it
    assert [n for seg in part.segments for n in seg.stages] == [s.name for s in d.stages]
    assert all(seg.load <= 0.9 for seg in part.segments)
    assert part.cycles_per_frame() <= res.budget_cycles
    with pytest.raises(PartitionError, match="would need|devices"):
        partition(d, "1xxc7a35t", "aurora-10g", 0.9, 100.0, res.budget_cycles)
