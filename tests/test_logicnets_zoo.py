"""LogicNets zoo models (qloom.train.logicnets): every name exports with exactly F nonzero
weights per neuron (the exported Quant nodes under qonnx, and qloom's integer graph), JSC-S
becomes five truth tables equal to the integer model at one frame per cycle, and a tiny
training run on a bundled tabular set beats chance. The image model img28-tt: the solver makes
every layer a truth table, a tiny Fashion-MNIST run beats chance, and (slow) its RTL equals the
integer model on 300 test images."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from qloom.train.logicnets import LOGICNETS, export_untrained, train_logicnets  # noqa: E402
from qloom.train.zoo import build_model, logicnets_models  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("logicnets")
    return {name: export_untrained(name, d / f"{name}.onnx") for name in LOGICNETS}


def test_published_shapes():
    """The LogicNets repository's configurations (examples/jet_substructure, cybersecurity)."""
    assert logicnets_models() == [
        "jsc-s",
        "jsc-m",
        "jsc-l",
        "nid-s",
        "nid-m",
        "nid-l",
        "img28-tt",
    ]
    s = LOGICNETS["jsc-l"]
    assert (s.hidden, s.input_bits, s.hidden_bits, s.output_bits) == (
        (32, 64, 192, 192, 16),
        4,
        3,
        7,
    )
    assert s.layer_fanins() == [3, 4, 4, 4, 4, 5] and s.max_table_bits() == 15
    assert LOGICNETS["nid-l"].layer_fanins() == [7, 5, 5, 5, 5]
    m = build_model("jsc-s")  # the zoo's entry point builds them too
    assert m(torch.randn(4, 16)).shape == (4, 5)


@pytest.mark.parametrize("name", list(LOGICNETS))
def test_export_has_exactly_fanin_nonzeros_per_neuron(name, exports):
    """qonnx's view of the exported weight Quant nodes and qloom's integer MatMuls: every
    neuron of every layer has exactly its layer's fan-in nonzero weights."""
    import qloom
    from qloom.train.prune import quantized_weights

    spec = LOGICNETS[name]
    fanins = spec.layer_fanins()
    q = quantized_weights(exports[name])
    keys = sorted(q, key=lambda k: int(re.search(r"layers\.(\d+)\.", k).group(1)))
    assert len(keys) == len(fanins)
    for k, f in zip(keys, fanins, strict=True):
        nz = (q[k] != 0).sum(axis=1)  # (out, in) torch layout
        assert (nz == f).all(), f"{name} {k}: nonzeros per neuron {np.unique(nz)} != {f}"
    g = qloom.load(exports[name]).compiled.integer
    mats = [n.attrs["weights"] for n in g.nodes if n.op == "MatMul"]
    assert [int((w != 0).sum(axis=0).min()) for w in mats] == fanins
    assert [int((w != 0).sum(axis=0).max()) for w in mats] == fanins


def test_jsc_s_as_truth_tables_equals_the_integer_model(exports):
    """All five sparse layers as truth tables (max_bits = fan-in x bits = 6): 1,000 random
    standardized inputs through the folded design equal the integer model, 1 cycle/frame."""
    import qloom
    from qloom.flow import run_integer

    m = qloom.load(exports["jsc-s"])
    g = m.compiled.integer
    names = [n.name for n in g.nodes if n.op == "MatMul"]
    bits = LOGICNETS["jsc-s"].max_table_bits()
    d = m.fold(folding={n: {"style": "truth_table", "max_bits": bits} for n in names})
    assert [s.kind for s in d.stages] == ["TruthTable"] * 5
    assert d.cycles_per_frame() == 1
    x = np.random.default_rng(1).normal(0, 1, (1000, 16)).astype(np.float32)
    q = m.compiled.hardware_input(x)
    got, ref = d.execute(q), run_integer(g, q)
    for t in g.outputs:
        np.testing.assert_array_equal(got[t], ref[t])
    assert len(np.unique(ref[g.outputs[0]].argmax(1))) > 1


def test_solver_chooses_truth_tables_where_they_are_cheaper(exports):
    """Without a folding file the solver prices every sparse layer's truth tables beside its
    MVAU foldings: JSC-S (6 address bits per neuron) becomes tables at any target, JSC-M's
    12-bit tables cost more than MVAUs folded for 1e6 FPS but are the only way to 1e8 FPS;
    NID-S's second layer (7 inputs x 2 bits = 14 > 12) stays an MVAU. The choice is exact."""
    import qloom
    from qloom.flow import run_integer

    def kinds(name, fps):
        d = qloom.load(exports[name]).fold(target_fps=fps, part="xcu280")
        return d, [s.kind for s in d.stages if s.kind in ("MVAU", "TruthTable")]

    d, k = kinds("jsc-s", 1e4)
    assert k == ["TruthTable"] * 5 and d.cycles_per_frame() == 1
    tables = [s.name for s in d.stages if s.kind == "TruthTable"]
    assert all(d.folding_json()[n] == {"style": "truth_table", "max_bits": 12} for n in tables)
    assert kinds("jsc-m", 1e8)[1] == ["TruthTable"] * 5
    assert kinds("jsc-m", 1e6)[1] == ["MVAU"] * 5
    assert kinds("nid-s", 1e6)[1] == ["TruthTable", "MVAU", "MVAU"]
    m = qloom.load(exports["jsc-s"])
    q = m.compiled.hardware_input(np.random.default_rng(2).normal(0, 1, (500, 16)))
    got, ref = d.execute(q), run_integer(m.compiled.integer, q)
    for t in m.compiled.integer.outputs:
        np.testing.assert_array_equal(got[t], ref[t])


def test_pnr_on_a_part_the_tables_overfill_is_refused_before_simulation(exports, tmp_path, capsys):
    """JSC-M as truth tables (1e8 FPS) needs ~140 k LUT4 of random 12-bit tables: `qloom
    build --pnr LFE5U-85F` says so at once (estimate at 2.6 LUT4 per LUT6 for tables above 6
    address bits, 4 for 6-bit ones), instead of simulating and synthesizing for an hour before
    nextpnr fails; JSC-S's 6-bit tables still fit."""
    import qloom
    from qloom.cli import main
    from qloom.fold.estimate import estimate_stage

    d = qloom.load(exports["jsc-s"]).fold(target_fps=1e4, part="xcu280")
    s = next(s for s in d.stages if s.kind == "TruthTable")
    assert s.address_bits == 6
    assert estimate_stage(s, "LFE5U-85F").lut == pytest.approx(4 * s.estimate(None).lut)
    rc = main(["--quiet", "build", str(exports["jsc-m"]), "--part", "xcu280", "--target-fps",
               "1e8", "--pnr", "LFE5U-85F", "--out", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "--pnr LFE5U-85F: the design does not fit the part LFE5U-85F" in err
    assert "(over)" in err and "Traceback" not in err
    assert not (tmp_path / "jsc-m").exists()


def test_tiny_training_beats_chance(tmp_path):
    """jsc-s's shape on scikit-learn's wine (13 features, 3 classes, 45 test rows), 30 epochs:
    well above the majority class (40 %); the export still has exactly 3 nonzeros per neuron."""
    from qloom.train.prune import quantized_weights

    rec = train_logicnets("jsc-s", "wine", epochs=30, out=tmp_path / "w.onnx", quiet=True)
    print(f"jsc-s on wine: {rec['test_accuracy']:.2f}% (chance {rec['chance_accuracy']:.2f}%)")
    assert rec["test_accuracy"] > rec["chance_accuracy"] + 20
    for w in quantized_weights(tmp_path / "w.onnx").values():
        assert ((w != 0).sum(axis=1) <= 3).all()


# -- img28-tt: 28x28 images (Fashion-MNIST) --------------------------------------------------


def _fashion_or_skip():
    from qloom.data import load_dataset
    from qloom.errors import DatasetNotFoundError

    try:
        return load_dataset("fashion-mnist", "test")
    except DatasetNotFoundError as e:
        pytest.skip(f"Fashion-MNIST not installed (Debian dataset-fashion-mnist): {e}")


def test_img28_tt_shape():
    """784 pixels at 2 bits, 256 and 100 hidden neurons at 2 bits, 10 outputs at 8 bits (few
    argmax ties), fan-in 6 everywhere: every neuron is a 12-bit table."""
    s = LOGICNETS["img28-tt"]
    assert s.image == (1, 28, 28) and s.default_dataset == "fashion-mnist"
    assert (s.hidden, s.input_bits, s.hidden_bits, s.output_bits) == ((256, 100), 2, 2, 8)
    assert s.layer_fanins() == [6, 6, 6] and s.max_table_bits() == 12
    m = build_model("img28-tt")
    assert m.in_shape == (1, 28, 28) and m(torch.rand(4, 1, 28, 28)).shape == (4, 10)


def test_img28_tt_solver_makes_every_layer_a_truth_table(exports):
    """At 1e8 FPS and 100 MHz (1 cycle per frame) on xcu280 the solver takes the three
    layers as TruthTable stages; the folded model equals the integer model on 300 random
    images in [0, 1] (through the model's own 2-bit input quantizer)."""
    import qloom
    from qloom.flow import run_integer

    m = qloom.load(exports["img28-tt"])
    d = m.fold(target_fps=1e8, clock_mhz=100.0, part="xcu280")
    assert [s.kind for s in d.stages] == ["TruthTable"] * 3
    assert [s.address_bits for s in d.stages] == [12, 12, 12]
    assert d.cycles_per_frame() == 1
    q = m.compiled.hardware_input(np.random.default_rng(3).random((300, 1, 28, 28)))
    assert q.min() >= -2 and q.max() <= 1  # the hardware reads 2-bit signed pixels
    got, ref = d.execute(q), run_integer(m.compiled.integer, q)
    for t in m.compiled.integer.outputs:
        np.testing.assert_array_equal(got[t], ref[t])


def test_img28_tt_tiny_training_beats_chance(tmp_path):
    """One epoch on 5,000 Fashion-MNIST training images (batch 64: 79 steps): far above
    chance (10 %; 61.6 % measured) on the 10,000 test images, in torch and in qloom's integer
    model; still at most F nonzeros per neuron (the untrained export has exactly F)."""
    from qloom.train.prune import quantized_weights

    _fashion_or_skip()
    rec = train_logicnets(
        "img28-tt", epochs=1, limit=5000, batch_size=64, out=tmp_path / "t.onnx", quiet=True
    )
    print(f"img28-tt, 1 epoch on 5,000 images: torch {rec['test_accuracy']:.2f}%, integer "
          f"{rec['integer_accuracy']:.2f}%")  # fmt: skip
    assert rec["test_rows"] == 10_000 and rec["train_rows"] == 5000
    assert rec["test_accuracy"] > 40 and rec["integer_accuracy"] > 40
    for w in quantized_weights(tmp_path / "t.onnx").values():
        assert ((w != 0).sum(axis=1) <= 6).all()  # a trained weight may round to 0
