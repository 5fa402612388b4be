"""Truth tables with don't-cares (qloom.dataflow.truthtable, issue 16): addresses that the
calibration inputs never produce are filled to simplify each neuron's function. Off by default
(the tables are the MVAU's exactly); on, every seen address keeps its output, so the design
equals the integer graph on the calibration inputs, and the RTL equals the filled tables."""

from __future__ import annotations

import numpy as np
import pytest

from qloom.dataflow import to_dataflow
from qloom.dataflow.truthtable import fill_dont_cares, seen_mask
from qloom.datatype import DataType
from qloom.errors import FoldingError
from qloom.execute import execute
from qloom.ir import Graph, Node, TensorInfo

IN_T, ACT_T = DataType("INT2"), DataType("UINT2")


def two_layers(seed: int = 0) -> Graph:
    """x (16 x INT2) -> fc0 (12 neurons, fan-in 4: 8-bit tables) -> fc1 (4 neurons, fan-in 4)."""
    rng = np.random.default_rng(seed)
    tensors = {"x": TensorInfo((16,), IN_T, "NC")}
    nodes, x, width = [], "x", 16
    for i, mh in enumerate((12, 4)):
        w = np.zeros((width, mh), np.int64)
        for n in range(mh):
            w[rng.choice(width, 4, replace=False), n] = rng.choice([-3, -2, -1, 1, 2, 3], 4)
        t = np.sort(rng.integers(-4, 5, size=(mh, 3)), axis=1)
        a, y = f"acc{i}", f"y{i}"
        tensors[a] = TensorInfo((mh,), DataType("INT32"), "NC")
        tensors[y] = TensorInfo((mh,), ACT_T, "NC")
        nodes.append(Node("MatMul", f"fc{i}", (x,), (a,), {"weights": w}))
        attrs = dict(thresholds=t, negate=None, out_base=0, out_dtype=ACT_T)
        nodes.append(Node("MultiThreshold", f"act{i}", (a,), (y,), attrs))
        x, width = y, mh
    return Graph(tuple(nodes), ("x",), (x,), tensors, name="tt2", kind="integer")


def calibration(n: int = 300, seed: int = 1) -> np.ndarray:
    """Inputs that leave most addresses unseen: half the inputs constant, the rest in 0..1."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(n, 16))
    x[:, ::2] = -2
    return x


def folding(dont_care=None, **extra) -> dict:
    entry = {"style": "truth_table"} | ({} if dont_care is None else {"dont_care": dont_care})
    return {f"fc{i}": entry | extra for i in range(2)}


def test_off_gives_the_exact_tables():
    g = two_layers()
    plain = to_dataflow(g, folding())
    off = to_dataflow(g, folding(dont_care=None) | {"fc0": {"style": "truth_table",
                                                            "dont_care": None}})  # fmt: skip
    for a, b in zip(plain.stages, off.stages, strict=True):
        np.testing.assert_array_equal(a.tables, b.tables)
        assert b.dont_care == ""
    assert off.folding_json() == plain.folding_json()
    assert "dont_care" not in plain.folding_json()["fc0"]


@pytest.mark.parametrize("fill", ["nearest", "table"])
def test_seen_addresses_keep_their_outputs(fill):
    g = two_layers()
    calib = calibration()
    exact = to_dataflow(g, folding())
    dc = to_dataflow(g, folding(calib, dont_care_fill=fill))
    out = g.outputs[0]
    # the design equals the integer graph on every calibration input ...
    np.testing.assert_array_equal(dc.execute(calib)[out], execute(g, calib)[out])
    env = execute(g, calib, keep_all=True)
    for s, e, t in zip(dc.stages, exact.stages, ("x", "y0"), strict=True):
        assert s.dont_care == "array of 300 frames" and s.dont_care_fill == fill
        seen = seen_mask(s.addresses(env[t]), s.address_bits)
        # ... because every seen address keeps its exact output
        np.testing.assert_array_equal(s.tables[seen], e.tables[seen])
        assert (s.tables != e.tables).any()  # and unseen ones were free to change
        # the filled functions depend on fewer address bits
        assert s.support().sum() < e.support().sum()
    # elsewhere it is another function (the integer graph is not what the hardware computes)
    x = np.random.default_rng(2).integers(-2, 2, size=(2000, 16))
    assert (dc.execute(x)[out] != execute(g, x)[out]).any()
    assert dc.folding_json()["fc0"] == {"style": "truth_table", "max_bits": 12,
                                        "dont_care": "array of 300 frames",
                                        "dont_care_fill": fill}  # fmt: skip


def test_fill_drops_bits_and_fills_from_the_nearest_seen_address():
    # 3-bit address, output = bit 0 on the seen addresses 0, 1, 3; bits 1 and 2 can go
    table = np.array([[0, 1, 3, 1, 2, 2, 3, 3]])
    seen = np.array([[0], [1], [3]])
    for fill in ("table", "nearest"):
        got = fill_dont_cares(table, seen, 3, fill)
        np.testing.assert_array_equal(got, [[0, 1, 0, 1, 0, 1, 0, 1]])
    # seen 0 -> 0, 3 -> 1, 5 -> 1: bit 0 can go (the lowest of three equal choices), then
    # neither bit 1 nor bit 2 can; the kept-bits key 0b110 was never seen
    table = np.array([[0, 0, 0, 1, 0, 1, 0, 0]])
    seen = np.array([[0], [3], [5]])
    # "nearest": 0b110 is one flip from the seen keys 0b010 and 0b100, both 1
    got = fill_dont_cares(table, seen, 3, "nearest")
    np.testing.assert_array_equal(got, [[0, 0, 1, 1, 1, 1, 1, 1]])
    # "table" (the default): the original entry at 0b110 (bit 0 from the most frequent seen
    # address, 0)
    got = fill_dont_cares(table, seen, 3)
    np.testing.assert_array_equal(got, [[0, 0, 1, 1, 1, 1, 0, 0]])
    with pytest.raises(FoldingError, match="dont_care_fill='best' is not one of nearest, table"):
        fill_dont_cares(table, seen, 3, "best")


def test_dont_care_data_from_a_file(tmp_path):
    g = two_layers()
    calib = calibration()
    np.save(tmp_path / "calib.npy", calib)
    np.savez(tmp_path / "calib.npz", x=calib, y=np.zeros(len(calib)))
    a = to_dataflow(g, folding(calib))
    for f in ("calib.npy", "calib.npz"):
        path = str(tmp_path / f)
        b = to_dataflow(g, folding(path))
        for s, t in zip(a.stages, b.stages, strict=True):
            np.testing.assert_array_equal(s.tables, t.tables)
        assert b.folding_json()["fc1"]["dont_care"] == path
        # folding.json round trip: the recorded entry rebuilds the same design
        c = to_dataflow(g, b.folding_json())
        np.testing.assert_array_equal(c.stages[0].tables, b.stages[0].tables)


def test_bad_dont_care_values_are_refused_by_name(tmp_path):
    g = two_layers()
    calib = calibration()
    cases = [
        (5, "TruthTable 'fc0': dont_care=5 is not a .npy / .npz file of the network's hardware "
            "inputs (or an array); leave it out for exact tables"),
        (str(tmp_path / "missing.npy"), "TruthTable 'fc0': dont_care file "
            f"{tmp_path / 'missing.npy'} cannot be read as .npy / .npz"),
        (calib[:, :8], "TruthTable 'fc0': dont_care data (array of 300 frames) has shape "
            "(300, 8); the network's hardware input is (frames >= 1, 16)"),
        (calib + 4, "TruthTable 'fc0': dont_care data (array of 300 frames) has values outside "
            "the network's hardware input type INT2"),
    ]  # fmt: skip
    for value, msg in cases:
        with pytest.raises(FoldingError) as e:
            to_dataflow(g, folding(value))
        assert str(e.value).startswith(msg), str(e.value)
    np.savez(tmp_path / "two.npz", a=calib, b=calib)
    with pytest.raises(FoldingError, match=r"holds \['a', 'b'\]; expected one array or one named"):
        to_dataflow(g, folding(str(tmp_path / "two.npz")))
    with pytest.raises(FoldingError) as e:
        to_dataflow(g, folding(calib, dont_care_fill="espresso"))
    assert str(e.value) == (
        "TruthTable 'fc0': dont_care_fill='espresso' is not one of nearest, table"
    )


def test_rtl_equals_the_filled_tables():
    """Each don't-care TruthTable stage in Verilator (random valid/ready) against its folded
    model on inputs that were NOT in the calibration set, and the stitched design against
    the design's folded model (which differs from the integer graph on some of them)."""
    from qloom.sim import VerilatorError, find_verilator
    from qloom.sim.design import simulate
    from qloom.sim.rtlcheck import check_against_rtl

    try:
        find_verilator()
    except VerilatorError as e:
        pytest.skip(f"no Verilator: {e}")
    g = two_layers()
    dc = to_dataflow(g, folding(calibration()))
    x = np.random.default_rng(3).integers(-2, 2, size=(200, 16))
    out = g.outputs[0]
    want = dc.execute(x)[out]
    assert (want != execute(g, x)[out]).any()
    for c in check_against_rtl(dc, x[:60], kinds={"TruthTable"}):
        assert c.ok, f"{c.stage}: {c.detail}"
    res = simulate(dc, x, in_valid_prob=0.7, out_ready_prob=0.7, seed=4, quiet=True).check()
    np.testing.assert_array_equal(np.asarray(res.outputs[out]).reshape(want.shape), want)


def test_qloom_build_with_a_dont_care_file(tmp_path, monkeypatch, capsys):
    """The user's path: `qloom build MODEL --folding folding.json` where the folding file
    names the training inputs ("dont_care": "train.npy", next to it), run from another
    directory. The build checks the RTL against the design's own tables, says on how many
    simulated frames they differ from the integer model, and its folding.json records where
    the file is, so the build can be repeated from anywhere."""
    import json

    pytest.importorskip("brevitas")
    from qloom.cli import main
    from qloom.sim import VerilatorError, find_verilator
    from qloom.train.logicnets import export_untrained

    try:
        find_verilator()
    except VerilatorError as e:
        pytest.skip(f"no Verilator: {e}")
    import qloom

    onnx = export_untrained("jsc-s", tmp_path / "jsc-s.onnx", seed=0)
    m = qloom.load(onnx)
    g = m.compiled.integer
    rng = np.random.default_rng(0)
    train = m.compiled.hardware_input(rng.normal(0, 0.3, (200, 16)).astype(np.float32))
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    np.save(cfg / "train.npy", train)
    layers = [n.name for n in g.nodes if n.op == "MatMul"]
    folding = {name: {"style": "truth_table", "dont_care": "train.npy"} for name in layers}
    (cfg / "folding.json").write_text(json.dumps(folding))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    data = tmp_path / "test.npy"
    np.save(data, rng.normal(0, 1.0, (60, 16)).astype(np.float32))
    rc = main(["--quiet", "build", str(onnx), "--folding", "../cfg/folding.json", "--data",
               str(data), "--sim-frames", "60", "--out", str(tmp_path / "out")])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    build = tmp_path / "out" / "jsc-s"
    sim = json.loads((build / "sim" / "result.json").read_text())
    assert sim["mismatches"] == 0 and sim["verdict"] == "yes"
    assert sim["reference"] == "design's don't-care tables"
    assert 0 < sim["differ_from_integer"] < 60  # wider test inputs reach unseen addresses
    recorded = json.loads((build / "folding.json").read_text())
    assert {recorded[n]["dont_care"] for n in layers} == {str(cfg / "train.npy")}
