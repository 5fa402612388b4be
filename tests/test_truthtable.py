"""The TruthTable stage (LogicNets-style neurons as truth tables): its tables equal the MVAU it
replaces, a sparse Brevitas MLP runs as a mixed TruthTable + MVAU design bit-exactly in the
folded model and in Verilator under random stalls at one frame per cycle, and layers that
cannot be tables are refused with one message naming the layer and the limit."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from qloom.dataflow import MVAU, TruthTable, to_dataflow
from qloom.dataflow.truthtable import CONTROL_LUTS
from qloom.datatype import BIPOLAR, DataType
from qloom.errors import FoldingError
from qloom.execute import execute
from qloom.fold.estimate import estimate_design
from qloom.ir import Graph, Node, TensorInfo

N_MODEL = 5000  # inputs through the folded model
N_RTL = 300  # frames through Verilator with random stalls


# -- integer graphs ------------------------------------------------------------------------------
def sparse_weights(rng, mw: int, mh: int, fanin: int, lo: int, hi: int) -> np.ndarray:
    """(MW, MH) as the integer graph holds them: each output column has at most `fanin` nonzero
    rows (some fewer, one none), values in [lo, hi] without 0."""
    w = np.zeros((mw, mh), np.int64)
    for n in range(1, mh):
        k = rng.integers(1, fanin + 1)
        vals = rng.integers(lo, hi + 1, size=k)
        w[rng.choice(mw, k, replace=False), n] = np.where(vals == 0, hi, vals)
    return w


def fc_layer(
    in_dtype: DataType,
    weights: np.ndarray,
    thresholds: np.ndarray | None,
    out_dtype: DataType,
    out_base: int = 0,
    negate: np.ndarray | None = None,
    op: str = "MatMul",
) -> Graph:
    """x (MW,) -> MatMul/XnorMatMul "fc" [-> MultiThreshold "act"]."""
    mw, mh = weights.shape
    acc_t = DataType("INT32") if op == "MatMul" else DataType("UINT8")
    tensors = {"x": TensorInfo((mw,), in_dtype, "NC"), "acc": TensorInfo((mh,), acc_t, "NC")}
    nodes = [Node(op, "fc", ("x",), ("acc",), {"weights": weights})]
    out = "acc"
    if thresholds is not None:
        attrs = dict(thresholds=thresholds, negate=negate, out_base=out_base, out_dtype=out_dtype)
        nodes.append(Node("MultiThreshold", "act", ("acc",), ("y",), attrs))
        tensors["y"] = TensorInfo((mh,), out_dtype, "NC")
        out = "y"
    return Graph(tuple(nodes), ("x",), (out,), tensors, name="layer", kind="integer")


def random_inputs(rng, dtype: DataType, n: int, mw: int) -> np.ndarray:
    if dtype.is_bipolar:
        return rng.choice([-1, 1], size=(n, mw))
    return rng.integers(dtype.min, dtype.max + 1, size=(n, mw))


# -- (b) the tables are the MVAU -----------------------------------------------------------------
LAYERS = {
    # in type, fan-in, weight range, thresholds range, NT, out type, out base, negated channels
    "int2-negate": (DataType("INT2"), 3, (-7, 7), (-30, 30), 3, DataType("UINT2"), 0, True),
    "uint2-signed-out": (DataType("UINT2"), 4, (-3, 3), (-20, 20), 3, DataType("INT2"), -2, False),
    "int3-bipolar-out": (DataType("INT3"), 2, (-5, 5), (-10, 10), 1, BIPOLAR, 0, True),
    "bipolar-in": (BIPOLAR, 6, (-2, 2), (-8, 8), 7, DataType("INT4"), -3, True),
    "binary-in": (DataType("BINARY"), 5, (-4, 4), (-6, 6), 2, DataType("UINT2"), 0, False),
}


@pytest.mark.parametrize("case", list(LAYERS))
def test_tables_equal_the_mvau_and_the_integer_graph(case):
    """A sparse MatMul + MultiThreshold (negative thresholds, per-channel negate, signed /
    unsigned / bipolar / binary inputs): the truth-table design equals the integer executor and
    the MVAU design on random inputs, and the stage's enumeration equals MVAU.execute."""
    in_t, fanin, (wlo, whi), (tlo, thi), nt, out_t, base, neg = LAYERS[case]
    rng = np.random.default_rng(sorted(LAYERS).index(case))
    mw, mh = 10, 12
    w = sparse_weights(rng, mw, mh, fanin, wlo, whi)
    t = np.sort(rng.integers(tlo, thi, size=(mh, nt)), axis=1)
    negate = rng.random(mh) < 0.4 if neg else None
    g = fc_layer(in_t, w, t, out_t, base, negate)
    x = random_inputs(rng, in_t, 4000, mw)
    tt = to_dataflow(g, {"fc": {"style": "truth_table"}})
    mv = to_dataflow(g, {"fc": {"style": "mvau", "PE": 4}})
    assert [s.kind for s in tt.stages] == ["TruthTable"]
    want = execute(g, x)["y"]
    assert len(np.unique(want)) > 1
    np.testing.assert_array_equal(tt.execute(x)["y"], want)
    np.testing.assert_array_equal(mv.execute(x)["y"], want)
    # the stage against the MVAU it came from, beat for beat (one vector per beat)
    (st,) = tt.stages
    m = MVAU(
        "fc",
        mw,
        mh,
        st_weights(w, negate),
        in_t,
        pe=mh,
        simd=mw,
        thresholds=t,
        out_base=base,
        out_dtype=out_t,
    )
    beats = x[:, None, :]
    np.testing.assert_array_equal(TruthTable.from_mvau(m).execute(beats), m.execute(beats))
    assert st.fanin == max(1, int((w != 0).sum(axis=0).max()))
    assert st.tables.shape == (mh, 1 << (st.fanin * in_t.bits))


def st_weights(w: np.ndarray, negate: np.ndarray | None) -> np.ndarray:
    """(MH, MW) rows as the MVAU holds them: negated channels flip their row."""
    rows = w.T.copy()
    if negate is not None:
        rows[negate] *= -1
    return rows


def test_binary_xnor_layer_as_tables():
    """An XnorMatMul (BIPOLAR in and weights, popcount of XNOR) with 6 inputs: every row is
    dense, 6 x 1 bit = 6 address bits; equal to the integer graph on every input."""
    rng = np.random.default_rng(5)
    w = rng.choice([-1, 1], size=(6, 8))
    t = np.sort(rng.integers(0, 7, size=(8, 1)), axis=1)
    g = fc_layer(BIPOLAR, w, t, BIPOLAR, op="XnorMatMul")
    x = np.array([[1 if (i >> b) & 1 else -1 for b in range(6)] for i in range(64)])
    d = to_dataflow(g, {"fc": {"style": "truth_table"}})
    assert d.stages[0].kind == "TruthTable" and d.stages[0].address_bits == 6
    np.testing.assert_array_equal(d.execute(x)["y"], execute(g, x)["y"])


def test_enumerating_a_jsc_l_sized_layer_is_fast():
    """192 neurons of fan-in 5 at 3 bits (2^15 entries each, LogicNets JSC-L's largest
    layer): all tables at once, equal to the MVAU on random inputs. The time is printed, not
    asserted (a few seconds idle, 13 s on the loaded 2-core VM): tests do not fail on timing."""
    rng = np.random.default_rng(0)
    mw, mh = 64, 192
    w = sparse_weights(rng, mw, mh, 5, -100, 100).T
    w[0, :5] = 7  # at least one neuron of fan-in 5
    t = np.sort(rng.integers(-400, 400, size=(mh, 7)), axis=1)
    m = MVAU(
        "l", mw, mh, w, DataType("UINT3"), pe=mh, simd=mw, thresholds=t, out_dtype=DataType("UINT3")
    )
    start = time.perf_counter()
    st = TruthTable.from_mvau(m, max_bits=15)
    seconds = time.perf_counter() - start
    print(f"enumeration of 192 x 2^15 entries: {seconds:.2f} s")
    assert st.tables.shape == (192, 1 << 15)
    x = rng.integers(0, 8, size=(2000, 1, mw))
    np.testing.assert_array_equal(st.execute(x), m.execute(x))


# -- (c) layers that cannot be tables ------------------------------------------------------------
def _layer(fanin: int = 3, thresholds: bool = True) -> Graph:
    w = np.zeros((16, 4), np.int64)
    w[:fanin, 2] = 1
    t = np.array([[0, 1, 2]] * 4) if thresholds else None
    return fc_layer(DataType("INT2"), w, t, DataType("UINT2"))


def _conv() -> Graph:
    tensors = {
        "x": TensorInfo((4, 4, 2), DataType("INT2"), "NHWC"),
        "c": TensorInfo((4, 4, 3), DataType("INT32"), "NHWC"),
        "y": TensorInfo((4, 4, 3), DataType("UINT2"), "NHWC"),
    }
    conv = Node(
        "Conv",
        "conv",
        ("x",),
        ("c",),
        dict(
            weights=np.ones((1, 1, 2, 3), np.int64),
            stride=(1, 1),
            pads=(0, 0, 0, 0),
            groups=1,
            pad_value=0,
        ),
    )
    act = Node(
        "MultiThreshold",
        "act",
        ("c",),
        ("y",),
        dict(
            thresholds=np.array([[0, 1, 2]] * 3),
            negate=None,
            out_base=0,
            out_dtype=DataType("UINT2"),
        ),
    )
    return Graph((conv, act), ("x",), ("y",), tensors, name="conv", kind="integer")


def test_ineligible_layers_are_refused_by_name():
    with pytest.raises(FoldingError) as e:
        to_dataflow(_layer(fanin=7), {"fc": {"style": "truth_table"}})
    assert str(e.value) == (
        "TruthTable 'fc': neuron 2 reads 7 inputs of 2 bits = 14 table address bits > "
        "max_bits=12 (at most 6 inputs per neuron at 2 bits); prune the layer, raise max_bits "
        "in its folding entry or use style mvau"
    )
    with pytest.raises(FoldingError) as e:
        to_dataflow(_layer(thresholds=False), {"fc": {"style": "truth_table"}})
    assert str(e.value) == (
        "TruthTable 'fc': style truth_table needs thresholds fused into the layer (a quantized "
        "activation that only this layer reads); found none, the layer outputs its "
        "accumulators; use style mvau"
    )
    with pytest.raises(FoldingError) as e:
        to_dataflow(_conv(), {"conv": {"style": "truth_table"}})
    assert str(e.value) == (
        "TruthTable 'conv': style truth_table needs a fully connected layer (MatMul); found a "
        "Conv; use style mvau"
    )
    with pytest.raises(FoldingError) as e:
        to_dataflow(_layer(), {"fc": {"style": "lut"}})
    assert str(e.value) == "layer 'fc': style='lut' is not one of mvau, truth_table"
    with pytest.raises(FoldingError) as e:
        to_dataflow(_layer(), {"fc": {"style": "truth_table", "PE": 2}})
    assert str(e.value) == (
        "TruthTable 'fc': PE is not a folding parameter of a TruthTable (it has: style, max_bits, "
        "dont_care, dont_care_fill)"
    )
    with pytest.raises(FoldingError) as e:
        to_dataflow(_layer(), {"fc": {"style": "truth_table", "max_bits": 40}})
    assert str(e.value) == "TruthTable 'fc': max_bits=40 is not an integer in 1..20"
    # the limit is the folding entry's: 7 x 2 bits fit max_bits 14
    d = to_dataflow(_layer(fanin=7), {"fc": {"style": "truth_table", "max_bits": 14}})
    assert d.stages[0].address_bits == 14
    assert d.folding_json()["fc"] == {"style": "truth_table", "max_bits": 14}


# -- (a) a sparse Brevitas MLP: tables for the sparse layers, an MVAU for the dense one ----------
def sparse_mlp(path: Path, widths=(16, 32, 16, 5), fanin: int = 3, bits: int = 2) -> Path:
    """LogicNets JSC-S in small: 2-bit inputs and activations, every hidden neuron reads
    `fanin` random inputs (a fixed mask on 4-bit weights; LogicNets' tables absorb any weight
    precision), batch norm, and a dense 4-bit output layer whose accumulators go to the host."""
    import torch
    from brevitas import nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFloat,
        Int8WeightPerTensorFloat,
        Uint8ActPerTensorFloat,
    )

    from qloom.train.export import export_qonnx

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    layers: list = [
        qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True)
    ]
    for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False)):
        lin = qnn.QuantLinear(
            a, b, bias=True, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=4
        )
        layers.append(lin)
        if i == len(widths) - 2:
            break
        mask = np.zeros((b, a), np.float32)
        for r in range(b):
            mask[r, rng.choice(a, fanin, replace=False)] = 1
        with torch.no_grad():
            lin.weight.mul_(torch.from_numpy(mask))
        layers += [
            torch.nn.BatchNorm1d(b),
            qnn.QuantReLU(
                act_quant=Uint8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True
            ),
        ]
    model = torch.nn.Sequential(*layers)
    for m in model.modules():  # one training pass sets the activation scales and BN stats
        if isinstance(m, torch.nn.BatchNorm1d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.randn(512, widths[0]) * 2)
    model.eval()
    return export_qonnx(model, path, in_shape=(1, widths[0]))


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    pytest.importorskip("brevitas")
    import qloom

    path = sparse_mlp(tmp_path_factory.mktemp("tt") / "sparse_mlp.onnx")
    m = qloom.load(path)
    names = [n.name for n in m.compiled.integer.nodes if n.op == "MatMul"]
    folding = {
        names[0]: {"style": "truth_table"},
        names[1]: {"style": "truth_table"},
        names[2]: {"PE": 5, "SIMD": 16},
    }
    x = np.random.default_rng(1).normal(0, 2, (N_MODEL, 16)).astype(np.float32)
    return m, folding, x


def test_sparse_mlp_mixed_design_equals_the_integer_model(mlp):
    """TruthTable, TruthTable, MVAU: the folded model equals the integer executor (and the
    all-MVAU design) on 5,000 random inputs, at one frame per cycle; folding.json round-trips
    and the estimate counts one LUT6 per output bit of a table of <= 6 address bits (plus the
    handshake's, CONTROL_LUTS)."""
    from qloom.flow import run_integer

    m, folding, x = mlp
    g = m.compiled.integer
    d = m.fold(folding=folding)
    assert [s.kind for s in d.stages] == ["TruthTable", "TruthTable", "MVAU"]
    assert [s.address_bits for s in d.stages[:2]] == [6, 6]
    assert d.cycles_per_frame() == 1
    q = m.compiled.hardware_input(x)
    got, ref = d.execute(q, keep_streams=True), run_integer(g, q)
    dense = to_dataflow(g).execute(q)
    for t in g.outputs:
        np.testing.assert_array_equal(got[t], ref[t])
        np.testing.assert_array_equal(dense[t], ref[t])
    assert len(np.unique(ref[g.outputs[0]].argmax(1))) > 1
    # the hidden activations leave the tables exactly as the integer graph computes them
    inner = execute(g, q, keep_all=True)
    for s in d.stages[:2]:
        np.testing.assert_array_equal(got[f"stream:{s.outputs[0]}"][:, 0], inner[s.outputs[0]])
    assert to_dataflow(g, d.folding_json()).folding_json() == d.folding_json()
    est = estimate_design(d, "xc7z020")
    for s in d.stages[:2]:
        live = s.support().any(axis=1).sum()  # neurons whose table is not a constant
        assert est[s.name].lut == live * s.out_dtype.bits + CONTROL_LUTS
        assert est[s.name].ff == s.mh * s.out_dtype.bits + 1


def test_sparse_mlp_in_verilator_with_stalls(mlp):
    """The stitched design in Verilator: 300 frames with 30 % random input and output stalls
    equal the integer model; at full rate one frame per cycle; each TruthTable stage alone
    against its folded model (random valid/ready) at 1 cycle per frame."""
    from qloom.sim import VerilatorError, find_verilator
    from qloom.sim.rtlcheck import check_against_rtl

    try:
        find_verilator()
    except VerilatorError as e:
        pytest.skip(f"no Verilator: {e}")
    from qloom.rtl.top import glue_streams

    m, folding, x = mlp
    d = m.fold(folding=folding)
    # two tables join directly (both elastic); the second table feeds the MVAU through a FIFO
    assert glue_streams(d) == [d.stages[1].outputs[0]]
    sim = m.simulate(x[:N_RTL], folding=folding, stall=0.3, seed=3)
    assert sim.mismatches == 0
    fast = m.simulate(x[:64], folding=folding)
    assert fast.mismatches == 0 and fast.formula_cycles_per_frame == 1
    assert fast.cycles_per_frame == 1, fast
    print(
        f"RTL: {N_RTL} frames with stalls exact; full rate {fast.cycles_per_frame} "
        f"cycle/frame, latency {fast.latency_cycles} cycles"
    )
    checks = check_against_rtl(d, m.compiled.hardware_input(x[:40]), kinds={"TruthTable"})
    assert len(checks) == 2
    for c in checks:
        assert c.ok, f"{c.stage}: {c.detail}"
        assert c.measured_cycles == 1
