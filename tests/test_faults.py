"""Fault injection (qloom.faults) and fault-aware training (qloom.train.faults).

The fault model is deterministic per (seed, tensor, frame) and flips bits at the requested
rate; the integer executor's faulty outputs do not depend on batching; training with faults
runs on the small synthetic dataset and hooks the quantized codes exactly; `qloom faults`
prints its table (and a plot) and refuses bad options with exit 2; the `qloom_fault` RTL stage
XORs its masks under random stalls; and a small CNN in RTL with injected faults equals the
integer executor's faulty outputs on every frame (bench/fat.py does the same on a CNV
with 8 faulted streams).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qloom import cli as main_cli
from qloom.datatype import DataType
from qloom.errors import QloomError
from qloom.faults import (
    FaultModel,
    bit_masks,
    faulty_graph,
    flip_codes,
    frame_positions,
    parse_rates,
    resolve_targets,
    stream_masks,
    stuck_weights,
)
from qloom.flow import run_integer

# -- the fault model ---------------------------------------------------------------------------


def test_positions_deterministic_and_at_rate() -> None:
    a = frame_positions(100_000, 0.01, 3, 17, 5)
    assert np.array_equal(a, frame_positions(100_000, 0.01, 3, 17, 5))
    assert not np.array_equal(a, frame_positions(100_000, 0.01, 4, 17, 5))  # seed
    assert not np.array_equal(a, frame_positions(100_000, 0.01, 3, 17, 6))  # frame
    assert not np.array_equal(a, frame_positions(100_000, 0.01, 3, 18, 5))  # tensor
    assert len(np.unique(a)) == len(a) and a.min() >= 0 and a.max() < 100_000
    # rate: 200 frames x 20,000 bits at 1e-3 -> 4,000 expected, sd ~63
    n = sum(len(frame_positions(20_000, 1e-3, 0, 1, f)) for f in range(200))
    assert abs(n - 4000) < 5 * 63
    assert len(frame_positions(64, 1.0, 0, 1, 0)) == 64
    assert len(frame_positions(64, 0.0, 0, 1, 0)) == 0
    # frame i of a run that starts at frame 10 is frame 10 + i
    m = bit_masks(30, 50, 2, 0.05, 1, 9)
    assert np.array_equal(m[10:], bit_masks(20, 50, 2, 0.05, 1, 9, first_frame=10))
    # each (element, bit) is hit independently: both bits of an element get hit
    assert ((m & 3) == 3).any() and ((m & 3) == 1).any() and ((m & 3) == 2).any()


def test_flip_codes_semantics() -> None:
    x = np.array([[-1, 0, 1, -2]], dtype=np.int16)
    # rate 1: every bit flips, two's complement of INT2: -1 <-> 0, 1 <-> -2
    assert flip_codes(x, DataType("INT2"), 1.0, 0, 1).tolist() == [[0, -1, -2, 1]]
    assert flip_codes(x, DataType("INT2"), 1.0, 0, 1).dtype == np.int16
    u = np.array([[0, 1, 2, 3]])
    assert flip_codes(u, DataType("UINT2"), 1.0, 0, 1).tolist() == [[3, 2, 1, 0]]
    b = np.array([[1, -1, -1]], dtype=np.int8)
    assert flip_codes(b, DataType("BIPOLAR"), 1.0, 0, 1).tolist() == [[-1, 1, 1]]  # negated
    assert flip_codes(x, DataType("INT2"), 0.0, 0, 1) is x
    w = np.array([[1, 0, -1, 1]])
    assert stuck_weights(w, DataType("INT2"), 1.0, 0, 1, "stuck0").tolist() == [[0, 0, 0, 0]]
    assert stuck_weights(w, DataType("INT2"), 1.0, 0, 1, "stuck1").tolist() == [[-1] * 4]
    assert stuck_weights(np.array([1, -1]), DataType("BIPOLAR"), 1.0, 0, 1, "stuck0").tolist() == [
        -1,
        -1,
    ]


@pytest.mark.parametrize(
    ("text", "match"),
    [("0,1.5", "outside"), ("-0.1", "outside"), ("x", "not a number"), (",", "at least one"),
     ("nan", "outside")],
)  # fmt: skip
def test_bad_rates(text: str, match: str) -> None:
    with pytest.raises(QloomError, match=match):
        parse_rates(text)


def test_executor_faults_independent_of_batching() -> None:
    from test_dataflow import tiny_cnn

    g = tiny_cnn("topk")
    targets = resolve_targets(g, "flip", None)
    assert targets == ("a0", "ar", "q0", "b1", "b2")  # not thr_in: it reads the graph input
    assert resolve_targets(g, "flip", ["thr1", "b2"]) == ("b1", "b2")  # node or tensor names
    assert resolve_targets(g, "stuck1", ["fc"]) == ("fc",)
    with pytest.raises(QloomError, match=r"no activation quantizer named 'nope'.*thr0"):
        resolve_targets(g, "flip", ["nope"])
    x = np.random.default_rng(0).integers(0, 256, (50, 3, 10, 10))
    m = FaultModel(0.02, 5, "flip", targets)
    a = run_integer(g, x, faults=m)["labels"]
    assert np.array_equal(a, run_integer(g, x, batch=7, faults=m)["labels"])
    clean = run_integer(g, x)["labels"]
    assert not np.array_equal(a, clean)
    assert np.array_equal(run_integer(g, x, faults=FaultModel(0.0, 5, "flip", targets))["labels"],
                          clean)  # fmt: skip
    s = FaultModel(0.05, 1, "stuck0", resolve_targets(g, "stuck0", None))
    assert np.array_equal(run_integer(g, x, faults=s)["labels"],
                          run_integer(g, x, batch=9, faults=s)["labels"])  # fmt: skip


# -- training with faults ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("brevitas")
    from train_data import write_synthetic_mnist

    return write_synthetic_mnist(tmp_path_factory.mktemp("data"), 256)


@pytest.fixture(scope="module")
def fat_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fat") / "fat.onnx"
    from train_data import train_cli

    rec = train_cli(data_dir, out, "--epochs", "2", "--fault-rate", "0.02")
    assert rec["faults"]["rate"] == 0.02 and rec["faults"]["kind"] == "flip"
    assert rec["faults"]["layers"] == ["features.3", "features.6", "features.9"]
    assert rec["test_accuracy"] > 50  # the synthetic bands are easy even with faults
    return out


def test_training_hooks_flip_codes_exactly() -> None:
    torch = pytest.importorskip("torch")
    from qloom.train.faults import FaultConfig, FaultInjector
    from qloom.train.zoo import build_model

    torch.manual_seed(0)
    model = build_model("tfc-w2a2")
    inj = FaultInjector(model, FaultConfig(1.0, "flip", ("features.3",)))
    act = dict(model.named_modules())["features.3"]
    x = torch.tensor([[-3.0, -0.2, 0.2, 3.0]], requires_grad=True)
    act.train()
    y = act(x)  # codes -1, 0, 0, 1: every bit flipped -> 0, -1, -1, -2
    assert y.tolist() == [[0.0, -1.0, -1.0, -2.0]]
    y.sum().backward()  # straight through: the quantizer's own gradient
    assert x.grad is not None
    act.eval()
    assert act(x).tolist() == [[-1.0, 0.0, 0.0, 1.0]]  # no faults outside training
    inj.remove()
    act.train()
    assert act(x).tolist() == [[-1.0, 0.0, 0.0, 1.0]]
    # a rate: about 10 % of the bits of a large batch
    inj = FaultInjector(model, FaultConfig(0.1, "flip", ("features.3",)))
    z = torch.zeros(200, 500)
    frac = float((act(z) != 0).float().mean())  # code 0 -> nonzero when either bit flips
    assert abs(frac - (1 - 0.9**2)) < 0.01
    inj.remove()
    # stuck-at on weights: every bit stuck at 1 makes every 2-bit weight code -1
    inj = FaultInjector(model, FaultConfig(1.0, "stuck1", ("features.4",)))
    lin = dict(model.named_modules())["features.4"]
    lin.train()
    q = lin.weight_quant(lin.weight)
    assert torch.all(q.value == -q.scale)
    inj.remove()
    with pytest.raises(QloomError, match="features.99 not in the model"):
        FaultInjector(model, FaultConfig(0.1, "flip", ("features.99",)))


def test_training_stuck_at_runs(data_dir: Path, tmp_path: Path) -> None:
    from train_data import train_cli

    rec = train_cli(data_dir, tmp_path / "s.onnx", "--epochs", "1", "--limit", "128",
                 "--fault-rate", "0.01", "--fault-kind", "stuck0")  # fmt: skip
    assert rec["faults"]["kind"] == "stuck0" and len(rec["faults"]["layers"]) == 4


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--fault-rate", "1.5"], "outside"),
        (["--fault-rate", "0.1", "--fault-kind", "sometimes"], "use one of flip"),
        (["--fault-rate", "0.1", "--fault-layers", "nope"], "nope not in the model"),
        (["--fault-kind", "stuck0"], "without --fault-rate"),
    ],
)
def test_train_fault_errors(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list, match: str
) -> None:
    argv = ["train", "--model", "tfc-w2a2", "--dataset", "mnist", "--epochs", "1"]
    argv += ["--out", str(tmp_path / "x.onnx"), "--data-dir", str(data_dir), "--limit", "64"]
    assert main_cli.main(argv + extra) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert match in err and err.count("error:") == 1


# -- qloom faults ------------------------------------------------------------------------------


def test_faults_cli_table_and_plot(
    fat_model: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "acc.png"
    argv = ["faults", str(fat_model), "--data", "mnist-test", "--data-dir", str(data_dir)]
    argv += ["--rates", "0,1e-3,0.2", "--seed", "3", "--plot", str(png)]
    assert main_cli.main(argv) == 0
    cap = capsys.readouterr()
    out = " ".join(cap.out.split())
    assert "flip faults, 100 inputs" in out and "plot written" in out
    assert "rate 3 of 3: 0.2" in cap.err and "features.3, features.6, features.9" in cap.err
    rows = [ln for ln in cap.out.splitlines() if "%" in ln]
    assert len(rows) == 3 and "100.00 %" in rows[0]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --quiet: the table only; --layers by module name; stuck-at on weights
    argv = ["faults", str(fat_model), "--data", "mnist-test", "--data-dir", str(data_dir),
            "--rates", "0.01", "--layers", "features.3", "--kind", "stuck1", "--quiet"]  # fmt: skip
    assert main_cli.main(argv) == 2  # features.3 is an activation, not a weighted layer
    capsys.readouterr()
    argv[argv.index("features.3")] = "features.4"
    assert main_cli.main(argv) == 0
    cap = capsys.readouterr()
    assert cap.err == "" and "weight bits stuck" in " ".join(cap.out.split())


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--rates", "0,2"], "--rates: fault rate 2 is outside [0, 1]"),
        (["--rates", "0.1", "--layers", "conv9"], "no activation quantizer named 'conv9'"),
        (["--kind", "melt"], "--kind 'melt': use one of flip, stuck0, stuck1"),
        (["--seed", "-1"], "--seed must be a non-negative integer"),
        (["--plot", "/nonexistent/dir/x.png"], "does not exist"),
    ],
)
def test_faults_cli_errors(
    fat_model: Path, capsys: pytest.CaptureFixture[str], extra: list, match: str
) -> None:
    assert main_cli.main(["faults", str(fat_model), "--limit", "10", *extra]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert match in err and err.count("error:") == 1


# -- RTL ---------------------------------------------------------------------------------------

needs_verilator = pytest.mark.skipif(
    not __import__("shutil").which("g++"), reason="no C++ compiler for Verilator"
)


def _verilator_or_skip() -> None:
    from qloom.sim import VerilatorError, find_verilator

    try:
        find_verilator()
    except VerilatorError as e:
        pytest.skip(f"no Verilator: {e}")


@needs_verilator
def test_fault_stage_under_stalls(tmp_path: Path) -> None:
    _verilator_or_skip()
    from qloom.dataflow.stage import write_hex
    from qloom.rtl.library import library_files
    from qloom.sim import Port, build

    width, depth = 13, 37
    rng = np.random.default_rng(4)
    masks = [int(v) for v in rng.integers(0, 1 << width, depth)]
    masks[::3] = [0] * len(masks[::3])
    f = write_hex(tmp_path / "m.hex", masks, width)
    m = build("qloom_fault", library_files("qloom_fault"),
              {"WIDTH": width, "DEPTH": depth, "MASK_FILE": str(f)},
              inputs=[Port("s_axis", width)], outputs=[Port("m_axis", width)])  # fmt: skip
    data = [int(v) for v in rng.integers(0, 1 << width, 500)]  # wraps around the masks
    want = [d ^ masks[i % depth] for i, d in enumerate(data)]
    for seed, (pi, po) in enumerate([(1.0, 1.0), (0.6, 0.5), (0.3, 0.9), (1.0, 0.2)]):
        res = m.run([data], [len(want)], pi, po, seed=seed).check()
        assert res.outputs[0] == want, (pi, po)
        if pi == po == 1.0:
            assert res.cycles <= len(data) + 2  # no added latency, one beat per cycle


def tiny_mlp():
    """16 UINT8 -> thr INT2 -> MatMul 16x8 + thr UINT2 (channel 1 negated) -> MatMul 8x6 + thr
    BIPOLAR -> XnorMatMul 6x4 (the accumulators are the output)."""
    from test_dataflow import rng_thresholds

    from qloom.ir import Graph, Node, TensorInfo

    rng = np.random.default_rng(3)
    nodes, tensors = [], {"x": TensorInfo((16,), DataType("UINT8"), "NC")}
    acc = DataType("INT32")

    def add(op, name, src, out, shape, dtype, **attrs):
        nodes.append(Node(op, name, (src,), (out,), attrs))
        tensors[out] = TensorInfo(shape, dtype, "NC")

    def mt(name, src, out, c, t, base, dtype, negate=None):
        add("MultiThreshold", name, src, out, (c,), dtype, thresholds=t, negate=negate,
            out_base=base, out_dtype=dtype)  # fmt: skip

    int2, uint2, bip = DataType("INT2"), DataType("UINT2"), DataType("BIPOLAR")
    mt("thr_in", "x", "t0", 16, rng_thresholds(rng, 16, 3, 0, 256), -2, int2)
    add("MatMul", "fc0", "t0", "c0", (8,), acc, weights=rng.integers(-3, 4, (16, 8)))
    neg = np.arange(8) == 1
    mt("thr0", "c0", "a0", 8, rng_thresholds(rng, 8, 3, -12, 12), 0, uint2, neg)
    add("MatMul", "fc1", "a0", "c1", (6,), acc, weights=rng.integers(-2, 3, (8, 6)))
    mt("thr1", "c1", "b1", 6, rng_thresholds(rng, 6, 1, -6, 6), -1, bip)
    add("XnorMatMul", "fc2", "b1", "y", (4,), DataType("UINT3"),
        weights=rng.choice([-1, 1], (6, 4)))  # fmt: skip
    return Graph(tuple(nodes), ("x",), ("y",), tensors, name="tinymlp", kind="integer")


@needs_verilator
def test_rtl_with_faults_equals_integer_with_faults(tmp_path: Path) -> None:
    """A small MLP (INT2, UINT2 with a negated channel, BIPOLAR into an XNOR layer) with flips
    on its three activation streams under random stalls: every frame's output equals the
    integer executor's faulty one, and the faults changed many of them; likewise with stuck-at
    weight bits (the design of the faulty graph)."""
    _verilator_or_skip()
    from qloom.dataflow import to_dataflow
    from qloom.rtl.top import RtlError, generate_top
    from qloom.sim.design import simulate

    g = tiny_mlp()
    design = to_dataflow(g, {"fc0": {"PE": 2, "SIMD": 4}, "fc1": {"PE": 3, "SIMD": 2}})
    x = np.random.default_rng(1).integers(0, 256, (60, 16))
    model = FaultModel(0.05, 3, "flip", resolve_targets(g, "flip", ["thr_in", "a0", "thr1"]))
    masks = stream_masks(design, model, len(x))
    assert set(masks) == {"t0", "a0", "b1"} and all(len(v) for v in masks.values())
    res = simulate(design, x, in_valid_prob=0.6, out_ready_prob=0.5, seed=2,
                   fault_masks=masks, work_dir=tmp_path / "sim").check()  # fmt: skip
    want = run_integer(g, x, faults=model)["y"]
    assert np.array_equal(res.outputs["y"], want)
    changed = np.any(want != run_integer(g, x)["y"], axis=1)
    assert changed.sum() > 10
    text = res.rtl.top_file.read_text()
    assert text.count("qloom_fault #(") == 3
    # normal builds have no fault stage; a fault on an unknown stream is refused
    assert "qloom_fault" not in generate_top(design, tmp_path / "plain").top_file.read_text()
    with pytest.raises(RtlError, match="unknown stream"):
        generate_top(design, tmp_path / "bad", fault_masks={"nope": [1]})
    with pytest.raises(QloomError, match="weights"):
        stream_masks(design, FaultModel(0.1, 0, "stuck0", ("fc2",)), 2)
    # stuck-at weight bits reach the RTL as the weight memories of the faulty graph
    stuck = FaultModel(0.1, 2, "stuck1", resolve_targets(g, "stuck1", None))
    fg = faulty_graph(g, stuck)
    sd = to_dataflow(fg, {"fc0": {"PE": 2, "SIMD": 4}, "fc1": {"PE": 3, "SIMD": 2}})
    res = simulate(sd, x[:30], in_valid_prob=0.7, out_ready_prob=0.7, seed=1).check()
    want = run_integer(g, x[:30], faults=stuck)["y"]
    assert np.array_equal(res.outputs["y"], want)
    assert np.any(want != run_integer(g, x[:30])["y"])
