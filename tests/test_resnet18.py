"""ImageNet-style ResNet-18 and CIFAR-style ResNet-20 in the zoo (issue 17): names, layer
shapes, `qloom export`'s defaults (224 x 224, 1000 classes for resnet18), and the 7x7
stride-2 stem with its padded 3x3 stride-2 max pool through the compiler: the max pool before
the first residual fork is pooled once, the integer model equals qonnx. Cheap: the full-width
network is only built, a narrow copy of its topology is exported and compiled (no RTL;
bench/resnet18.py builds the full network across devices)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from brevitas.nn import QuantConv2d, QuantLinear  # noqa: E402

from qloom.cli import main  # noqa: E402
from qloom.dataflow import to_dataflow  # noqa: E402
from qloom.flow import compile_model  # noqa: E402
from qloom.frontend.reference import qonnx_outputs  # noqa: E402
from qloom.train import export as export_mod  # noqa: E402
from qloom.train.zoo import TOPOLOGIES, build_model, parse_model_name  # noqa: E402

torch.set_num_threads(1)


def test_names_parse():
    spec = parse_model_name("resnet18-w4a4")
    assert (spec.topology, spec.weight_bits, spec.act_bits, spec.input_bits) == (
        "resnet18",
        4,
        4,
        8,
    )
    assert parse_model_name("resnet18-w2a2").weight_bits == 2
    assert parse_model_name("resnet20-w2a2").topology == "resnet20"
    assert (TOPOLOGIES["resnet18"].in_size, TOPOLOGIES["resnet18"].classes) == (224, 1000)
    # resnet8 keeps its CIFAR-style stem
    r8 = TOPOLOGIES["resnet8"]
    assert (r8.stem_kernel, r8.stem_stride, r8.stem_pool, r8.in_size, r8.classes) == (
        3,
        1,
        False,
        32,
        10,
    )


def test_resnet18_layers():
    m = build_model("resnet18-w4a4", in_channels=3, in_size=224, num_classes=1000)
    convs = [c for c in m.modules() if isinstance(c, QuantConv2d)]
    stem = convs[0]
    assert (stem.kernel_size, stem.stride, stem.padding, stem.out_channels) == (
        (7, 7),
        (2, 2),
        (3, 3),
        64,
    )
    pools = [p for p in m.modules() if isinstance(p, torch.nn.MaxPool2d)]
    assert len(pools) == 1 and (pools[0].kernel_size, pools[0].stride, pools[0].padding) == (
        3,
        2,
        1,
    )
    # 1 stem + 8 basic blocks x 2 + 3 downsampling 1x1 shortcuts
    assert len(convs) == 20
    assert [c.out_channels for c in convs if c.kernel_size == (1, 1)] == [128, 256, 512]
    assert [c.stride[0] for c in convs if c.kernel_size == (3, 3)] == [
        1, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1
    ]  # fmt: skip
    (fc,) = [c for c in m.modules() if isinstance(c, QuantLinear)]
    assert (fc.in_features, fc.out_features) == (512, 1000)
    n = sum(p.numel() for c in convs + [fc] for p in [c.weight])
    assert n == 11_678_912  # torchvision's resnet18 has 11,689,512 parameters with BN and bias
    m.eval()
    with torch.no_grad():  # 64 x 64 -> 32 -> 16 -> 16, 8, 4, 2 -> global pool
        assert m(torch.rand(1, 3, 64, 64)).shape == (1, 1000)


def test_resnet20_layers():
    m = build_model("resnet20-w2a2", in_channels=3, in_size=32)
    convs = [c for c in m.modules() if isinstance(c, QuantConv2d)]
    assert len(convs) == 1 + 9 * 2 + 2
    assert [c.out_channels for c in convs if c.kernel_size == (3, 3)] == [16] * 7 + [32] * 6 + [
        64
    ] * 6
    m.eval()
    with torch.no_grad():
        assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_export_defaults_follow_the_topology(tmp_path, monkeypatch):
    seen = []

    def fake(name, path, in_channels, in_size, classes, seed):
        seen.append((name, in_channels, in_size, classes))
        return path

    monkeypatch.setattr(export_mod, "export_untrained", fake)
    out = str(tmp_path / "x.onnx")
    assert main(["export", "--model", "resnet18-w4a4", "--out", out]) == 0
    assert main(["export", "--model", "resnet8-w2a2", "--out", out]) == 0
    assert main(["export", "--model", "resnet18-w2a2", "--out", out, "--in-size", "64",
                 "--classes", "10"]) == 0  # fmt: skip
    assert main(["export", "--model", "jsc-s", "--out", out]) == 0
    assert seen == [
        ("resnet18-w4a4", 3, 224, 1000),
        ("resnet8-w2a2", 3, 32, 10),
        ("resnet18-w2a2", 3, 64, 10),
        ("jsc-s", 3, 32, 10),
    ]


@pytest.fixture(scope="module")
def narrow_resnet18(tmp_path_factory):
    """ResNet-18's topology (7x7/2 stem, padded 3x3/2 max pool, 2 blocks per stage) at an
    eighth of its width, exported untrained at 64 x 64 (64 -> 32 -> 16: stages of 16, 8, 4
    and 2 pixels; at 32 x 32 the last stage's 3x3 stride-2 conv on 2 x 2 pixels has a 1 x 1
    output, which dataflow lowering refuses: 'weights expect 288 inputs')."""
    mp = pytest.MonkeyPatch()
    topo = dataclasses.replace(
        TOPOLOGIES["resnet18"],
        stem=8,
        blocks=((8, 1), (8, 1), (16, 2), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1)),
    )
    mp.setitem(TOPOLOGIES, "resnet18n", topo)
    try:
        path = tmp_path_factory.mktemp("r18") / "resnet18n-w2a2.onnx"
        export_mod.export_untrained("resnet18n-w2a2", path, 3, 64, 10)
    finally:
        mp.undo()
    return path


def test_resnet18_topology_compiles_and_equals_qonnx(narrow_resnet18):
    c = compile_model(narrow_resnet18)
    ops = [n.op for n in c.integer.nodes]
    assert ops.count("Add") == 8 and ops.count("MaxPool") == 1  # pooled once before the fork
    (pool,) = [n for n in c.integer.nodes if n.op == "MaxPool"]
    assert tuple(pool.attrs["kernel"]) == (3, 3) and tuple(pool.attrs["stride"]) == (2, 2)
    x = np.random.default_rng(0).random((8, 3, 64, 64), dtype=np.float32)
    ref = qonnx_outputs(narrow_resnet18, x, 8)
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], ref)
    kinds = [s.kind for s in to_dataflow(c.integer).stages]
    assert kinds.count("WindowPool") == 1 and kinds.count("Duplicate") == 8
    assert kinds.count("Add") == 8 and kinds.count("MVAU") == 21
