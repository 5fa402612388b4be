"""qloom vs FINN's published results at FINN's throughput points: FPGA 2017 (Umuroglu et al.)
on ZC706 and FINN's BNN-PYNQ overlays on PYNQ-Z1/Z2.

    .venv/bin/python bench/finn_compare.py [--nets sfc,lfc,cnv] [--frames 4]
        [--synth-limit 900] [--stage-timeout 600] [--no-synth] [--ecp5]
        [--points max,pynq,ecp5] [--latency-slack 0.1]

For every FINN design point with a published FPS (FINN_POINTS below, each number with its
source; a point carries its part and clock), the zoo network (random weights, BN statistics
from one random training-mode batch, as bench/executor_speed.py's cnv_model) is exported
to QONNX, compiled, folded with `fold_design` to the same FPS at the point's clock on its
part (xc7z045 at 200 MHz for FPGA 2017, xc7z020 at 100 MHz for BNN-PYNQ), simulated in
Verilator on a few random frames (measured cycles/frame vs the formula, outputs bit-exact vs
the integer model) and synthesized per stage with Yosys for that part (`synth_stage`, cached
by content). A BNN-PYNQ point also gets a "-finnfold" row: FINN's own PE/SIMD per layer;
--latency-slack adds a "-lat" row per point: the solver's shortest-latency folding within
that fraction more estimated cost (the cheapest folding makes each layer wait for its whole
input; see `qloom build --latency-slack`).
Points run cheapest first (by estimated LUTs); a design whose synthesis exceeds --synth-limit
seconds gets its remaining stages skipped (reported as partial). --ecp5 adds nextpnr
place and route on LFE5U-85F (Fmax) for designs estimated under --ecp5-max-lut LUTs.
--points ecp5 adds one row per network for the ECP5: FINN's max points do not fit an
LFE5U-85F, so each network is folded for the highest FPS whose LUT estimate stays within
ECP5_UTILIZATION of the part's LUTs (block RAM and DSPs up to the whole part), simulated
(bit-exact, cycles/frame) and placed and routed (Fmax, FPS at Fmax, LUT4/FF/EBR/DSP, the
critical path's end points).

Prints a table and writes bench/results/finn_compare.json. Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CLOCK_MHZ = 200.0  # FINN FPGA 2017: ZC706 at 200 MHz
PART = "xc7z045"
PYNQ_PART = "xc7z020"  # BNN-PYNQ: PYNQ-Z1 / PYNQ-Z2 at 100 MHz (make-hw.sh FREQ="100.0")
PYNQ_CLOCK_MHZ = 100.0
#: the ECP5 rows: each network folded for the highest FPS whose LUT estimate fits this share
#: of the LFE5U-85F's LUTs at ECP5_CLOCK_MHZ (FINN's max points do not fit an ECP5); placed
#: and routed
ECP5_PART = "LFE5U-85F"
ECP5_CLOCK_MHZ = 100.0
ECP5_UTILIZATION = 0.15

ARXIV = (
    "Umuroglu et al., FINN, FPGA 2017, arXiv:1612.07119 abstract (https://arxiv.org/abs/1612.07119)"
)
NEURALUT = (
    "FINN SFC-max row of NeuraLUT's Table III (comparison table citing FINN FPGA 2017), "
    "as transcribed in a public GitHub notes file; the FINN paper's own table was not "
    "reachable with the search tool"
)

LFC_CONFIG = (
    "FINN's finnthesizer config.h for the LFC topology (784-1024-1024-1024-10): L0 1024x832 "
    "SIMD 64 PE 128 (104 cycles), L1 and L2 1024x1024 SIMD 64 PE 128 (128), L3 16x1024 SIMD 8 "
    "PE 16 (128): 128 cycles/frame = 1.5625 M FPS at 200 MHz; found with code search next to "
    "FINN's HLS-era host code that loads 'lfc-max-zc706' (the index did not name the "
    "repository), so the FPS is derived from FINN's folding, not read from the paper"
)

BNN_PYNQ = (
    "Xilinx/BNN-PYNQ (FINN's PYNQ overlays), bnn/src/network/{net}W1A1/README.md: Vivado "
    "2018.2 post-placement utilization of the whole PYNQ-Z1/Z2 design (procsys_wrapper: the "
    "accelerator with its AXI memory interface and run-time loadable weight memories, plus "
    "the Zynq shell), 100 MHz"
)
BNN_PYNQ_FPS = (
    "derived from FINN's folding in Xilinx/BNN-PYNQ bnn/src/network/{net}W1A1/hw/config.h "
    "(finnthesizer output; slowest layer {cycles} cycles/frame) at the 100 MHz of make-hw.sh; "
    "no measured FPS is published next to the utilization"
)

#: FINN's PE/SIMD per MVAU, in layer order, from BNN-PYNQ's config.h (FINN pads LFC's 784
#: inputs to 832 and the last layer's 10 outputs to 64 or 16; qloom uses the legal value
#: nearest below where FINN's does not divide the unpadded size)
BNN_PYNQ_FOLDING = {
    "lfc": [(32, 64), (64, 32), (32, 64), (16, 8)],
    "cnv": [(16, 3), (32, 32), (16, 32), (16, 32), (4, 32), (1, 32), (1, 4), (1, 8), (4, 1)],
}


def bnn_pynq_point(net: str, cycles: int, lut: int, ff: int, bram36: int, bram18: int,
                   dsp: int) -> dict:  # fmt: skip
    """A BNN-PYNQ overlay as a FINN design point (numbers as published, see BNN_PYNQ)."""
    src = BNN_PYNQ.format(net=net)
    return {
        "net": net,
        "point": "pynq",
        "part": PYNQ_PART,
        "clock_mhz": PYNQ_CLOCK_MHZ,
        "fps": PYNQ_CLOCK_MHZ * 1e6 / cycles,
        "latency_us": None,
        "lut": lut,
        "ff": ff,
        "bram": bram36 + bram18 / 2,  # "Block RAM Tile" (RAMB36 equivalents)
        "bram18": 2 * bram36 + bram18,
        "dsp": dsp,
        "finn_folding": BNN_PYNQ_FOLDING[net],
        "source": {
            "fps": BNN_PYNQ_FPS.format(net=net, cycles=cycles),
            "latency_us": "not published",
            **{k: src for k in ("lut", "ff", "bram", "dsp")},
        },
    }


#: FINN's design points: FPGA 2017 on ZC706 at 200 MHz, and the BNN-PYNQ overlays on
#: xc7z020 at 100 MHz. None = not found with the search tool.
FINN_POINTS = [
    {
        "net": "sfc",
        "point": "max",
        "fps": 12.3e6,  # "up to 12.3 million image classifications per second" (MNIST, SFC-max)
        "latency_us": 0.31,
        "lut": 91131,
        "bram": 5,  # as NeuraLUT prints it; unit (BRAM18/36) not checked
        "source": {"fps": ARXIV, "latency_us": ARXIV, "lut": NEURALUT, "bram": NEURALUT},
    },
    {
        "net": "cnv",
        "point": "max",
        "fps": 21906.0,  # "21906 image classifications per second with 283 us latency"
        "latency_us": 283.0,
        "lut": None,
        "bram": None,
        "source": {"fps": ARXIV, "latency_us": ARXIV, "lut": "not found", "bram": "not found"},
    },
    {
        "net": "lfc",
        "point": "max",
        "fps": CLOCK_MHZ * 1e6 / 128,  # 128 cycles/frame: FINN's LFC folding, see LFC_CONFIG
        "latency_us": None,
        "lut": None,
        "bram": None,
        "source": {
            "fps": LFC_CONFIG,
            "latency_us": "not found",
            "lut": "not found",
            "bram": "not found",
        },  # fmt: skip
    },
    # SFC-fix / LFC-fix / CNV-fix: not found (the paper's table was not reachable)
    # BNN-PYNQ lfcW1A1: slowest layers 512 cycles (L1-L3); 28,360 LUT, 33,470 FF,
    # 110 BRAM tiles (6 RAMB36 + 208 RAMB18), 4 DSP
    bnn_pynq_point("lfc", 512, 28360, 33470, 6, 208, 4),
    # BNN-PYNQ cnvW1A1: slowest layers 32,768 cycles (L6, L7); 26,072 LUT, 41,312 FF,
    # 124 BRAM tiles (76 RAMB36 + 96 RAMB18), 24 DSP
    bnn_pynq_point("cnv", 32768, 26072, 41312, 76, 96, 24),
]

FINN_KEYS = ("fps", "latency_us", "lut", "ff", "bram", "bram18", "dsp")

NETS = {
    "sfc": ("sfc-w1a1", 1, 28),
    "lfc": ("lfc-w1a1", 1, 28),
    "cnv": ("cnv-w1a1", 3, 32),
}


def export_model(net: str) -> Path:
    """The zoo network with random weights and BN statistics from one random batch."""
    name, ch, size = NETS[net]
    out = RESULTS / "models" / f"{name}.onnx"
    if out.exists():
        return out
    import torch

    from qloom.train.export import export_qonnx
    from qloom.train.zoo import build_model

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = build_model(name, ch, size, 10)
    model.train()
    with torch.no_grad():
        model(torch.rand(64, ch, size, size))
    return export_qonnx(model.eval(), out, in_shape=(1, ch, size, size))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def prepare(pt: dict, latency_slack: float = 0.0) -> list[dict]:
    """Compile and fold one point (cheap): the row of the solver's cheapest folding at FINN's
    FPS and, where FINN's own PE/SIMD are known, a row with those ("<point>-finnfold"); with
    `latency_slack`, a row folded for the shortest latency within that fraction more cost
    ("<point>-lat")."""
    from qloom.errors import FoldingError
    from qloom.flow import compile_model
    from qloom.fold import fold_design, fold_max_fps_design
    from qloom.frontend.domain import RAW_PIXELS

    row = {k: pt[k] for k in ("net", "point")}
    row["part"] = part = pt.get("part", PART)
    row["clock_mhz"] = clock = pt.get("clock_mhz", CLOCK_MHZ)
    row["finn"] = {k: pt.get(k) for k in FINN_KEYS}
    row["finn_source"] = pt["source"]
    t0 = time.monotonic()
    path = export_model(pt["net"])
    compiled = compile_model(path, RAW_PIXELS)
    row["compile_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    try:
        fr = fold_design(compiled.integer, pt["fps"], clock, part, max_utilization=1.0)
        row["fold"] = "fold_for_target"
    except FoldingError as e:
        row["fold_error"] = str(e)
        log(f"{pt['net']}-{pt['point']}: {e}; using fold_max_fps_design instead")
        fr = fold_max_fps_design(compiled.integer, clock, part, max_utilization=1.0)
        row["fold"] = "fold_max_fps (target unreachable)"
    row["fold_s"] = time.monotonic() - t0
    rows = [attach(row, fr, compiled)]
    if latency_slack and row["fold"] == "fold_for_target":
        fast = fold_design(compiled.integer, pt["fps"], clock, part, max_utilization=1.0,
                           latency_slack=latency_slack)  # fmt: skip
        new = {k: v for k, v in row.items() if not k.startswith("_")}
        new["point"] = f"{row['point']}-lat"
        new["fold"] = f"fold_for_target, latency within {latency_slack:.0%} more cost"
        rows.append(attach(new, fast, compiled))
    if pt.get("finn_folding"):
        rows.append(finn_folded(row, fr, compiled, pt["finn_folding"]))
    return rows


def finn_folded(row: dict, fr, compiled, plan: list[tuple[int, int]]) -> dict:
    """`row` refolded with FINN's PE/SIMD per MVAU (the legal value nearest below FINN's where
    it does not divide qloom's unpadded size); the other stages keep the solver's folding."""
    from qloom.dataflow.lower import to_dataflow
    from qloom.fold import FoldResult, estimate_design

    folding = json.loads(json.dumps(fr.folding))
    mvaus = [s for s in fr.design.stages if s.kind == "MVAU"]
    if len(mvaus) != len(plan):
        raise ValueError(f"{row['net']}: {len(mvaus)} MVAUs, FINN's folding has {len(plan)}")
    for s, (pe, simd) in zip(mvaus, plan, strict=True):
        legal = s.legal_values()
        folding[s.name]["PE"] = max(v for v in legal["PE"] if v <= pe)
        folding[s.name]["SIMD"] = max(v for v in legal["SIMD"] if v <= simd)
    design = to_dataflow(compiled.integer, folding)
    est = estimate_design(design, row["part"])
    refolded = FoldResult(design.folding_json(), design, est, fr.budget_cycles, fr.clock_mhz)
    new = {k: v for k, v in row.items() if not k.startswith("_")}
    new["point"] = f"{row['point']}-finnfold"
    new["fold"] = "FINN's PE/SIMD per MVAU (BNN-PYNQ config.h), solver folding elsewhere"
    return attach(new, refolded, compiled)


def prepare_ecp5(net: str) -> dict:
    """An ECP5 row: the fastest folding of `net` within ECP5_UTILIZATION of the part's LUTs."""
    from qloom.flow import compile_model
    from qloom.fold import fold_max_fps_design
    from qloom.frontend.domain import RAW_PIXELS

    row = {"net": net, "point": "ecp5", "part": ECP5_PART, "clock_mhz": ECP5_CLOCK_MHZ}
    t0 = time.monotonic()
    compiled = compile_model(export_model(net), RAW_PIXELS)
    row["compile_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    caps = {"LUT": ECP5_UTILIZATION}  # block RAM may fill the part (LFC's weights: 87 %)
    fr = fold_max_fps_design(compiled.integer, ECP5_CLOCK_MHZ, ECP5_PART, caps)
    row["fold"] = f"fold_max_fps ({ECP5_UTILIZATION:.0%} of the LUTs of {ECP5_PART})"
    row["fold_s"] = time.monotonic() - t0
    return attach(row, fr, compiled)


def attach(row: dict, fr, compiled) -> dict:
    """Add the folded design (and what the tables show of it) to `row`."""
    design = fr.design
    row["cycles_per_frame_formula"] = design.cycles_per_frame()
    row["latency_estimate_cycles"] = design.latency_estimate()
    row["bottleneck"] = design.bottleneck().name
    row["estimate"] = {
        k: {kk.lower(): vv for kk, vv in v.as_dict().items()} for k, v in fr.estimate.items()
    }
    row["folding"] = fr.folding
    row["_design"] = design
    row["_graph"] = compiled.integer
    row["_shape"] = compiled.imported.tensors[compiled.imported.inputs[0]].shape
    return row


def simulate_row(row: dict, frames: int) -> None:
    from qloom.flow import run_integer
    from qloom.sim.design import simulate, size_fifos

    design, graph = row["_design"], row["_graph"]
    shape = tuple(row["_shape"])
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(frames, *shape), dtype=np.uint8)
    t0 = time.monotonic()
    depths = size_fifos(design, images[: min(frames, 8)], quiet=True)
    row["_fifo_depths"] = depths
    res = simulate(design, images, fifo_depths=depths, quiet=True)
    sim = {
        "frames": frames,
        "ok": res.ok,
        "cycles_per_frame": res.cycles_per_frame,
        "latency_cycles": res.latency,
        "build_s": res.build_s,
        "sim_s": res.wall_s,
        "total_s": time.monotonic() - t0,
        "problems": res.problems + res.diagnosis,
    }
    if res.ok:
        ref = run_integer(graph, images)
        bad = np.zeros(frames, dtype=bool)
        for t in graph.outputs:
            got = np.asarray(res.outputs[t]).reshape(frames, -1)
            bad |= ~np.all(got == np.asarray(ref[t]).reshape(frames, -1), axis=1)
        sim["mismatches"] = int(bad.sum())
    row["sim"] = sim


def synth_row(row: dict, limit_s: float, stage_timeout: float) -> None:
    from qloom.fold.synth import synth_stage

    design = row["_design"]
    t_start = time.monotonic()
    stages, total, skipped = [], {"lut": 0, "ff": 0, "bram": 0, "dsp": 0}, []
    # smallest stages first so that a time-out loses the fewest
    order = sorted(design.stages, key=lambda s: row["estimate"][s.name]["lut"])
    for s in order:
        if time.monotonic() - t_start > limit_s:
            skipped.append({"name": s.name, "why": f"design synthesis limit {limit_s:.0f} s"})
            continue
        t0 = time.monotonic()
        try:
            r = synth_stage(s, row["part"], timeout=stage_timeout)
        except Exception as e:  # noqa: BLE001 - a bench reports and goes on
            skipped.append({"name": s.name, "why": f"{type(e).__name__}: {str(e)[:200]}"})
            log(f"  {s.name}: synthesis failed: {type(e).__name__}")
            continue
        d = {"lut": r.luts, "ff": r.ffs, "bram": r.bram, "dsp": r.dsp}
        est = row["estimate"][s.name]["lut"]
        stages.append(
            {"name": s.name, "kind": s.kind, **d, "cached": r.cached, "est_lut": est,
             "s": time.monotonic() - t0}
        )  # fmt: skip
        for k in total:
            total[k] += d[k]
        log(f"  {s.name} ({s.kind}): {r.luts} LUT {r.ffs} FF {r.bram} BRAM18 {r.dsp} DSP"
            f" ({'cached' if r.cached else f'{time.monotonic() - t0:.0f} s'})")  # fmt: skip
    glue = synth_glue_fifos(row, stage_timeout) if "_fifo_depths" in row else None
    if glue is not None:
        for k in total:
            total[k] += glue[k]
    row["synth"] = {
        "stages": stages,
        "glue_fifos": glue,
        "total": total,
        "skipped": skipped,
        "complete": not skipped,
        "seconds": time.monotonic() - t_start,
    }


def synth_glue_fifos(row: dict, timeout: float) -> dict:
    """Yosys totals of the stitched top's glue FIFOs at the simulated depths (`qloom_fifo`
    out of context per distinct width x depth, cached by content), so that the qloom total
    covers the whole accelerator, not only its stages."""
    import tempfile

    from qloom.rtl.library import library_files
    from qloom.rtl.top import generate_top
    from qloom.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="qloom-glue-") as tmp:
        rtl = generate_top(row["_design"], tmp, row["_fifo_depths"], copy_library=False)
    total = {"lut": 0, "ff": 0, "bram": 0, "dsp": 0, "fifos": 0, "beats": 0}
    for f in rtl.fifos:
        params = {"WIDTH": f.width, "DEPTH": f.depth}
        r = synthesize(library_files("qloom_fifo"), "qloom_fifo", params, row["part"],
                       timeout=timeout)  # fmt: skip
        for k, v in (("lut", r.luts), ("ff", r.ffs), ("bram", r.bram), ("dsp", r.dsp)):
            total[k] += v
        total["fifos"] += 1
        total["beats"] += f.depth
    log(f"  {total['fifos']} glue FIFOs ({total['beats']} beats): {total['lut']} LUT "
        f"{total['ff']} FF {total['bram']} BRAM18")  # fmt: skip
    return total


def ecp5_row(row: dict) -> None:
    from qloom.rtl.top import generate_top
    from qloom.sim.design import size_fifos
    from qloom.synth import place_and_route

    design = row["_design"]
    shape = tuple(row["_shape"])
    images = np.random.default_rng(0).integers(0, 256, size=(4, *shape), dtype=np.uint8)
    depths = size_fifos(design, images, quiet=True)
    work = RESULTS / "finn_compare_pnr" / f"{row['net']}-{row['point']}"
    rtl = generate_top(design, work / "rtl", depths, memory_subdir="")
    mems = [p for d in rtl.memories.values() for p in d.values()]
    t0 = time.monotonic()
    clock = row["clock_mhz"]
    res = place_and_route(rtl.sources, rtl.top, {}, ECP5_PART, work / "pnr", mems, clock,
                          quiet=True)  # fmt: skip
    used = {k: v["used"] for k, v in res.utilization.items()}
    row["ecp5"] = {
        "fmax_mhz": res.fmax_mhz,
        "target_mhz": clock,
        "timing_met": res.timing_met,
        "lut4": used.get("TRELLIS_COMB"),
        "ff": used.get("TRELLIS_FF"),
        "ebr": used.get("DP16KD"),
        "dsp": used.get("MULT18X18D"),
        "harness": res.harness,
        "critical_path": critical_path(res.report),
        "utilization": res.utilization,
        "seconds": time.monotonic() - t0,
    }
    if res.fmax_mhz:
        cpf = (row.get("sim") or {}).get("cycles_per_frame") or row["cycles_per_frame_formula"]
        row["ecp5"]["fps_at_fmax"] = res.fmax_mhz * 1e6 / cpf


def critical_path(report: str | Path | None) -> dict | None:
    """First and last cell of nextpnr's critical path and its delay split (logic/routing)."""
    if not report or not Path(report).exists():
        return None
    paths = json.loads(Path(report).read_text()).get("critical_paths") or []
    if not paths:
        return None
    # the register-to-register paths set the Fmax; nextpnr also lists the I/O paths
    # ("<async>" at one end), which the 4-pin harness makes long but which no clock limits
    clocked = [cp for cp in paths if "<async>" not in (cp.get("from"), cp.get("to"))]
    steps = max(clocked or paths, key=lambda cp: sum(st["delay"] for st in cp["path"]))["path"]
    delay = {k: sum(st["delay"] for st in steps if st["type"] == k) for k in ("logic", "routing")}
    return {
        "from": steps[0]["from"]["cell"],
        "to": steps[-1]["to"]["cell"],
        "delay_ns": round(sum(st["delay"] for st in steps), 3),
        **{f"{k}_ns": round(v, 3) for k, v in delay.items()},
    }


def derived(row: dict) -> None:
    cpf = (row.get("sim") or {}).get("cycles_per_frame") or row["cycles_per_frame_formula"]
    lat = (row.get("sim") or {}).get("latency_cycles")
    clock = row["clock_mhz"]
    row["fps"] = clock * 1e6 / cpf
    row["latency_us"] = lat / clock if lat else None
    synth = row.get("synth")
    lut = synth["total"]["lut"] if synth and synth["complete"] else None
    f = row["finn"]
    if lut and f["lut"] and f["fps"]:
        row["fps_per_lut_ratio"] = (row["fps"] / lut) / (f["fps"] / f["lut"])
        row["lut_ratio"] = lut / f["lut"]


def fmt(v, spec=",.0f") -> str:
    if v is None:
        return "n/f"
    return format(v, spec)


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="qloom vs FINN at FINN's throughput points")
    md = []
    cols = ["net", "point", "part @ MHz", "FINN FPS", "FINN lat us", "FINN LUT", "FINN FF",
            "FINN BRAM18", "FINN DSP", "cyc/frame sim", "formula", "bit-exact", "FPS",
            "lat us", "Yosys LUT", "FF", "BRAM18", "DSP", "est LUT", "LUT vs FINN",
            "FPS/LUT vs FINN", "ECP5 Fmax"]  # fmt: skip
    for c in cols:
        t.add_column(c, justify="left" if c in ("net", "point", "part @ MHz") else "right")
    md.append("| " + " | ".join(cols) + " |")
    md.append("|" + "---|" * len(cols))
    for r in rows:
        f, sim, syn = r["finn"], r.get("sim") or {}, r.get("synth")
        tot = syn["total"] if syn else {}
        part = "" if not syn or syn["complete"] else " (partial)"
        exact = "-" if "mismatches" not in sim else ("yes" if sim["mismatches"] == 0 else "NO")
        bram18 = f.get("bram18")
        cells = [
            r["net"], r["point"], f"{r['part']} @ {r['clock_mhz']:g}",
            fmt(f["fps"]), fmt(f["latency_us"], ".2f"), fmt(f["lut"]), fmt(f.get("ff")),
            fmt(bram18, "g") if bram18 is not None else fmt(f["bram"], "g") + " (unit?)",
            fmt(f.get("dsp")), fmt(sim.get("cycles_per_frame"), ",.1f"),
            fmt(r["cycles_per_frame_formula"]), exact, fmt(r["fps"]),
            fmt(r["latency_us"], ".2f"),
            (fmt(tot.get("lut")) + part) if syn else "-",
            fmt(tot.get("ff")) if syn else "-", fmt(tot.get("bram"), "g") if syn else "-",
            fmt(tot.get("dsp"), "g") if syn else "-", fmt(r["estimate"]["total"]["lut"]),
            fmt(r.get("lut_ratio"), ".2f"), fmt(r.get("fps_per_lut_ratio"), ".2f"),
            fmt((r.get("ecp5") or {}).get("fmax_mhz"), ".1f"),
        ]  # fmt: skip
        t.add_row(*cells)
        md.append("| " + " | ".join(cells) + " |")
    Console(width=300).print(t)
    print("\n".join(md))


def print_ecp5_table(rows: list[dict]) -> None:
    if not rows:
        return
    cols = ["net", "cyc/frame sim", "formula", "bit-exact", "Fmax MHz", "FPS at Fmax",
            "LUT4", "FF", "EBR", "DSP", "est LUT", "P&R s"]  # fmt: skip
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        sim, e = r.get("sim") or {}, r.get("ecp5") or {}
        exact = "-" if "mismatches" not in sim else ("yes" if sim["mismatches"] == 0 else "NO")
        cells = [
            r["net"], fmt(sim.get("cycles_per_frame"), ",.1f"),
            fmt(r["cycles_per_frame_formula"]), exact, fmt(e.get("fmax_mhz"), ".1f"),
            fmt(e.get("fps_at_fmax")), fmt(e.get("lut4")), fmt(e.get("ff")), fmt(e.get("ebr")),
            fmt(e.get("dsp")), fmt(r["estimate"]["total"]["lut"]), fmt(e.get("seconds")),
        ]  # fmt: skip
        md.append("| " + " | ".join(cells) + " |")
        if "error" in e:
            print(f"{r['net']}-ecp5: {e['error']}")
    print(f"\n{ECP5_PART}, fastest folding within {ECP5_UTILIZATION:.0%} of its LUTs (estimate) at "
          f"{ECP5_CLOCK_MHZ:g} MHz target:")  # fmt: skip
    print("\n".join(md))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="sfc,lfc,cnv")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--no-sim", action="store_true")
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--synth-limit", type=float, default=900.0, help="seconds per design")
    ap.add_argument("--stage-timeout", type=float, default=600.0, help="Yosys seconds per stage")
    ap.add_argument("--ecp5", action="store_true", help="nextpnr on LFE5U-85F (small designs)")
    ap.add_argument(
        "--latency-slack",
        type=float,
        default=0.0,
        help="add a row per point folded for latency within this fraction more cost",
    )
    ap.add_argument("--ecp5-max-lut", type=float, default=20000)
    ap.add_argument(
        "--points",
        default="max,pynq",
        help="max: FINN's FPGA 2017 points on xc7z045; pynq: FINN's BNN-PYNQ overlays on "
        "xc7z020 (solver folding and FINN's own PE/SIMD); ecp5: each network at the fastest "
        f"folding within a share of {ECP5_UTILIZATION:g} of {ECP5_PART}, simulated, placed and "
        "routed",
    )
    args = ap.parse_args()

    nets = args.nets.split(",")
    rows = []
    points = args.points.split(",")
    for pt in FINN_POINTS:
        if pt["net"] not in nets or pt["point"] not in points:
            continue
        if pt["fps"] is None:
            log(f"{pt['net']}-{pt['point']}: FINN's FPS not found, skipped")
            rows.append({"net": pt["net"], "point": pt["point"], "skipped": "FINN FPS not found",
                         "finn_source": pt["source"]})  # fmt: skip
            continue
        log(f"{pt['net']}-{pt['point']}: compile + fold for {pt['fps']:,.0f} FPS")
        for row in prepare(pt, args.latency_slack):
            log(f"  {row['point']}: {row['cycles_per_frame_formula']} cycles/frame, estimate "
                f"{row['estimate']['total']}, fold {row['fold_s']:.1f} s")  # fmt: skip
            rows.append(row)
    if "ecp5" in points:
        for net in nets:
            log(f"{net}-ecp5: compile + fold for {ECP5_UTILIZATION:.0%} of {ECP5_PART}'s LUTs")
            row = prepare_ecp5(net)
            log(f"  {row['cycles_per_frame_formula']} cycles/frame, estimate "
                f"{row['estimate']['total']}")  # fmt: skip
            rows.append(row)
    done = [r for r in rows if "_design" in r]
    done.sort(key=lambda r: r["estimate"]["total"]["lut"])  # cheapest first
    out = RESULTS / "finn_compare.json"

    def save() -> None:
        meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": platform.platform(),
                "cpus": os.cpu_count()}  # fmt: skip
        clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        ran = {(r["net"], r["point"]) for r in clean}
        if out.exists():  # keep the rows of networks not run this time
            old = json.loads(out.read_text()).get("rows", [])
            clean += [r for r in old if (r["net"], r["point"]) not in ran]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "rows": clean}, indent=2, default=str))

    for r in done:
        name = f"{r['net']}-{r['point']}"
        if not args.no_sim:
            log(f"{name}: simulating {args.frames} frames")
            try:
                simulate_row(r, args.frames)
                log(f"  {r['sim']}")
            except Exception as e:  # noqa: BLE001
                r["sim"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
                log(f"  simulation failed: {r['sim']['error']}")
        if r["point"] == "ecp5":
            log(f"{name}: nextpnr on {ECP5_PART}")
            try:
                ecp5_row(r)
                log(f"  { ({k: v for k, v in r['ecp5'].items() if k != 'utilization'}) }")
            except Exception as e:  # noqa: BLE001
                r["ecp5"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            save()
            continue
        derived(r)
        save()
        if not args.no_synth:
            log(f"{name}: Yosys synthesis of {len(r['_design'].stages)} stages for {r['part']}")
            synth_row(r, args.synth_limit, args.stage_timeout)
        if args.ecp5 and r["estimate"]["total"]["lut"] <= args.ecp5_max_lut:
            log(f"{name}: nextpnr on LFE5U-85F")
            try:
                ecp5_row(r)
            except Exception as e:  # noqa: BLE001
                r["ecp5"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        derived(r)
        save()
    print_table([r for r in done if r["point"] != "ecp5"])
    print_ecp5_table([r for r in done if r["point"] == "ecp5"])
    for r in rows:
        if "skipped" in r:
            print(f"{r['net']}-{r['point']}: skipped ({r['skipped']})")
        elif r.get("synth") and r["synth"]["skipped"]:
            print(f"{r['net']}-{r['point']}: not synthesized: {r['synth']['skipped']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
