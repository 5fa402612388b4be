"""Whole networks in RTL (Verilator), bit-exact against the integer executor.

* Property tests: random Brevitas MLPs and CNNs (1-8 bit weights and activations, batch norm
  with negative scales, per-channel weight scales, padding, max-pool), exported to QONNX,
  streamlined, lowered with a random legal folding (PE / SIMD among the divisors of each
  stage), simulated on a few random frames with random input stalls and output backpressure:
  the outputs equal `run_integer` and the run does not deadlock.
* CNV-structured networks (FINN's CNV at reduced width, same layer structure) on 200 random
  images (slow; bench/rtl_cnv.py covers the full widths).
* Folding targets: the solver's folding meets the target measured in RTL (after FIFO sizing)
  and is minimal, for TFC_2W2A and a small CNV at three targets each.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
brevitas_nn = pytest.importorskip("brevitas.nn")

from qloom.sim import VerilatorError, find_verilator  # noqa: E402

try:
    find_verilator()
except VerilatorError as e:  # pragma: no cover - depends on the machine
    pytest.skip(f"no Verilator: {e}", allow_module_level=True)

from test_streamline_random import activation, calibrate, weight_kwargs  # noqa: E402
from tfc_data import tfc_path  # noqa: E402

from qloom.dataflow import to_dataflow  # noqa: E402
from qloom.flow import compile_model, run_integer  # noqa: E402
from qloom.fold.solver import fold_design, minimality_violations  # noqa: E402
from qloom.frontend.domain import RAW_PIXELS  # noqa: E402
from qloom.sim.design import simulate, size_fifos  # noqa: E402
from qloom.train.export import export_qonnx  # noqa: E402

torch.set_num_threads(1)
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# -- helpers --------------------------------------------------------------------------------------
def random_folding(graph, rng: np.random.Generator) -> dict:
    """A random legal folding: every foldable stage's PE / SIMD drawn among its legal values."""
    folding = {}
    for s in to_dataflow(graph).stages:
        if s.fold_params:
            legal = s.legal_values()
            folding[s.name] = {p: int(rng.choice(legal[p])) for p in s.fold_params}
    return folding


def assert_outputs_equal(graph, got: dict, want: dict) -> None:
    for name in graph.outputs:
        assert got[name].shape == want[name].shape, name
        n = len(want[name])
        bad = np.flatnonzero(~np.all(got[name].reshape(n, -1) == want[name].reshape(n, -1), axis=1))
        assert bad.size == 0, f"{name}: frames {bad.tolist()} differ from the integer model"


def check_random_network(tmp_path, model, shape, seed, frames=4):
    """Export, compile, lower with a random folding, simulate with random stalls, compare."""
    path = export_qonnx(model, tmp_path / "m.onnx", in_shape=(1,) + shape)
    graph = compile_model(path, RAW_PIXELS).integer
    rng = np.random.default_rng(seed)
    folding = random_folding(graph, rng)
    design = to_dataflow(graph, folding)
    images = rng.integers(0, 256, size=(frames,) + shape, dtype=np.uint8)
    p_in, p_out = (float(p) for p in rng.uniform(0.6, 0.8, size=2))
    res = simulate(design, images, in_valid_prob=p_in, out_ready_prob=p_out, seed=seed)
    assert not res.deadlock, res.problems + res.diagnosis
    res.check()
    assert_outputs_equal(graph, res.outputs, run_integer(graph, images))


# -- random MLPs ----------------------------------------------------------------------------------
mlp_layer = st.fixed_dictionaries(
    {
        "width": st.sampled_from([4, 8]),
        "wbits": st.integers(1, 8),
        "abits": st.integers(1, 8),
        "act": st.sampled_from(["relu", "signed"]),
        "per_channel": st.booleans(),
        "bn": st.booleans(),
    }
)


# 8 examples each (25, then 12, then 10): every example is a Verilator build, and a cold
# `make test` on 2 cores must stay under 30 min
@settings(max_examples=8, **SETTINGS)
@given(
    layers=st.lists(mlp_layer, min_size=1, max_size=2),
    in_bits=st.integers(1, 8),
    out_bits=st.integers(1, 8),
    seed=st.integers(0, 1000),
)
def test_random_mlp_rtl(tmp_path_factory, layers, in_bits, out_bits, seed):
    torch.manual_seed(seed)
    shape = (1, 6, 6)
    mods = [torch.nn.Flatten(), activation(in_bits, "signed")]
    width = 36
    for spec in layers:
        wq = weight_kwargs(spec["wbits"], spec["per_channel"])
        mods.append(brevitas_nn.QuantLinear(width, spec["width"], bias=False, **wq))
        if spec["bn"]:
            mods.append(torch.nn.BatchNorm1d(spec["width"]))
        mods.append(activation(spec["abits"], spec["act"]))
        width = spec["width"]
    mods.append(brevitas_nn.QuantLinear(width, 5, bias=True, **weight_kwargs(out_bits, False)))
    model = calibrate(torch.nn.Sequential(*mods), shape, seed)
    check_random_network(tmp_path_factory.mktemp("mlp"), model, shape, seed)


# -- random CNNs ----------------------------------------------------------------------------------
conv_layer = st.fixed_dictionaries(
    {
        "channels": st.sampled_from([2, 4]),
        "wbits": st.integers(1, 8),
        "abits": st.integers(1, 8),
        "act": st.sampled_from(["relu", "signed"]),
        "per_channel": st.booleans(),
        "pad": st.integers(0, 1),
        "pool": st.booleans(),
        "depthwise": st.booleans(),  # groups = channels (a VVAU); keeps the channel count
    }
)


@settings(max_examples=8, **SETTINGS)
@given(
    layers=st.lists(conv_layer, min_size=1, max_size=2),
    in_bits=st.integers(1, 8),
    seed=st.integers(0, 1000),
)
def test_random_cnn_rtl(tmp_path_factory, layers, in_bits, seed):
    torch.manual_seed(seed)
    shape = (2, 8, 8)
    mods = [activation(in_bits, "signed")]
    ch, size = 2, 8
    for spec in layers:
        wq = weight_kwargs(spec["wbits"], spec["per_channel"])
        out, groups = (ch, ch) if spec["depthwise"] else (spec["channels"], 1)
        mods.append(
            brevitas_nn.QuantConv2d(
                ch, out, 3, padding=spec["pad"], groups=groups, bias=False, **wq
            )
        )
        mods.append(torch.nn.BatchNorm2d(out))
        mods.append(activation(spec["abits"], spec["act"]))
        ch, size = out, size - 2 + 2 * spec["pad"]
        # max-pool after the activation (FINN's order): a pool before a decreasing activation
        # (negative BN scale) leaves a negated threshold with no MVAU to absorb it
        if spec["pool"] and size >= 4:
            mods.append(torch.nn.MaxPool2d(2))
            size //= 2
    mods += [
        torch.nn.Flatten(),
        brevitas_nn.QuantLinear(ch * size * size, 4, bias=False, **weight_kwargs(2, False)),
    ]
    model = calibrate(torch.nn.Sequential(*mods), shape, seed)
    check_random_network(tmp_path_factory.mktemp("cnn"), model, shape, seed)


# -- CNV-structured networks ----------------------------------------------------------------------
_TINY_CONV = ((4, False), (4, True), (8, False), (8, True), (16, False), (16, False))


@contextlib.contextmanager
def tiny_cnv_topologies():
    """FINN's CNV layer structure (3x3 convs c,c,pool,2c,2c,pool,4c,4c; FC f,f,10) at c=4,
    f=16, registered in the zoo only while the model is built."""
    from qloom.train.zoo import TOPOLOGIES, Topology

    added = {
        "cnv-tiny": Topology("cnv", "CNV at 1/16 width", conv=_TINY_CONV, fc=(16, 16)),
        "cnv-tiny-pad": Topology(
            "cnv", "CNV at 1/16 width, padding 1", conv=_TINY_CONV, fc=(16, 16), padding=1
        ),
    }
    new = [k for k in added if k not in TOPOLOGIES]
    TOPOLOGIES.update({k: added[k] for k in new})
    try:
        yield
    finally:
        for k in new:
            del TOPOLOGIES[k]


def cnv_graph(tmp_path, name: str, size: int, seed: int = 0):
    """A zoo CNV with random weights and BN statistics from one random training-mode batch."""
    from qloom.train.zoo import build_model

    torch.manual_seed(seed)
    with tiny_cnv_topologies():
        model = build_model(name, 3, size, 10)
    model.train()
    with torch.no_grad():
        model(torch.rand(64, 3, size, size))
    path = export_qonnx(model.eval(), tmp_path / f"{name}.onnx", in_shape=(1, 3, size, size))
    return compile_model(path, RAW_PIXELS).integer


@pytest.mark.slow
@pytest.mark.parametrize("name,size", [("cnv-tiny-w1a1", 32), ("cnv-tiny-pad-w2a2", 28)])
def test_cnv_structure_rtl_200_images(tmp_path, name, size):
    graph = cnv_graph(tmp_path, name, size)
    kinds = [s.kind for s in to_dataflow(graph).stages]
    assert kinds.count("MVAU") == 9 and kinds.count("MaxPool") == 2 and kinds.count("SWU") == 6
    design = fold_design(graph, 1e4).design  # 10,000 cycles/frame at 100 MHz
    images = np.random.default_rng(1).integers(0, 256, (200, 3, size, size), dtype=np.uint8)
    res = simulate(design, images, in_valid_prob=0.9, out_ready_prob=0.9, seed=2).check()
    assert_outputs_equal(graph, res.outputs, run_integer(graph, images))


# -- folding targets met in RTL -------------------------------------------------------------------
def check_target(graph, images, target_fps: float, device: str = "xc7z020") -> None:
    """fold_for_target's folding: minimal, and its sized RTL meets clock / target."""
    result = fold_design(graph, target_fps, 100.0, device)
    budget = result.budget_cycles
    assert budget == int(100e6 / target_fps)
    assert minimality_violations(graph, result.folding, budget) == []
    design = to_dataflow(graph, result.folding)
    assert design.cycles_per_frame() <= budget
    depths = size_fifos(design, images[:4])
    res = simulate(design, images, fifo_depths=depths).check()
    assert res.cycles_per_frame <= budget, (res.cycles_per_frame, budget, target_fps)
    assert_outputs_equal(graph, res.outputs, run_integer(graph, images))


@pytest.mark.parametrize("target", [1e4, 1e5, 1e6])
def test_tfc_folding_target_met_in_rtl(target):
    graph = compile_model(tfc_path("TFC_2W2A"), RAW_PIXELS).integer
    images = np.random.default_rng(3).integers(0, 256, (6, 1, 28, 28), dtype=np.uint8)
    check_target(graph, images, target)


@pytest.mark.parametrize("target", [1e3, 3e3, 1e4])
def test_cnv_folding_target_met_in_rtl(tmp_path, target):
    graph = cnv_graph(tmp_path, "cnv-tiny-w1a1", 32)
    images = np.random.default_rng(4).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    check_target(graph, images, target)
