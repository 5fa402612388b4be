"""`make demo`: the main job end to end.

1. Train a small binarized network (TFC-w1a1 with an 8-bit input layer) on Fashion-MNIST with
   Brevitas and export QONNX (skipped when build/demo/tfc-w1a1-i8.onnx exists: idempotent).
2. `qloom build` it for 100k frames/s at 100 MHz: fold, generate RTL, simulate every test image
   in Verilator checking each output against the integer model, synthesize each stage for a
   Xilinx xc7z020 with Yosys, place and route on an ECP5 LFE5U-85F with nextpnr (bitstream).
3. Print one summary table and the path of the report.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from qloom.build import BuildOptions, build
from qloom.data import load_dataset
from qloom.flow import compile_model, predictions, run_integer
from qloom.frontend.domain import RAW_PIXELS

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "demo"
DEMO_MODEL = "tfc-w1a1-i8"  # 1-bit weights and activations, 8-bit input (as FINN CNV)
DEMO_EPOCHS = int(os.environ.get("QLOOM_DEMO_EPOCHS", "10"))
TARGET_FPS = 1e5
FRAMES = int(os.environ.get("QLOOM_DEMO_FRAMES", "10000"))


def train_demo_model(console: Console, quiet: bool) -> Path:
    out = BUILD / f"{DEMO_MODEL}.onnx"
    if out.exists():
        console.print(f"[dim]using {out.relative_to(ROOT)} (delete it to retrain)[/]")
        return out
    from qloom.train.trainer import train

    console.print(f"training {DEMO_MODEL} on Fashion-MNIST for {DEMO_EPOCHS} epochs")
    train(DEMO_MODEL, "fashion-mnist", DEMO_EPOCHS, out, seed=0, quiet=quiet, threads=2)
    return out


def main() -> int:
    console = Console()
    quiet = bool(os.environ.get("QLOOM_QUIET"))
    BUILD.mkdir(parents=True, exist_ok=True)
    model = train_demo_model(console, quiet)
    images, labels = load_dataset("fashion-mnist", "test")
    compiled = compile_model(model, RAW_PIXELS)
    pred = predictions(compiled.integer, run_integer(compiled.integer, images))
    accuracy = float(np.mean(pred == labels))
    report = build(
        BuildOptions(
            model=model,
            out_dir=BUILD,
            part="xc7z020",
            clock_mhz=100.0,
            target_fps=TARGET_FPS,
            data="fashion-mnist-test",
            input_spec=RAW_PIXELS,  # the hardware takes raw pixels (the model divides by 255)
            sim_frames=FRAMES,
            synth=True,
            pnr_part="LFE5U-85F",
            quiet=quiet,
        )
    )
    t, sim, pnr = report.totals, report.sim, report.pnr
    table = Table(title=f"qloom demo: {DEMO_MODEL} on Fashion-MNIST, {TARGET_FPS:g} FPS target")
    table.add_column("")
    table.add_column("value")
    rows = [
        ("top-1 accuracy (integer model, 10,000 test images)", f"{100 * accuracy:.2f} %"),
        (
            "RTL outputs equal to the integer model",
            f"{sim.frames - sim.mismatches:,} / {sim.frames:,} frames",
        ),
        (
            "cycles / frame: formula, RTL simulation",
            f"{t.cycles_per_frame:,}, {sim.cycles_per_frame:,.0f}",
        ),
        ("throughput at 100 MHz", f"{t.fps_at_clock:,.0f} frames/s"),
        (
            "latency (RTL simulation)",
            f"{sim.latency_cycles:,} cycles = {sim.latency_cycles / 100:.2f} µs at 100 MHz",
        ),
        (
            "xc7z020 LUT / FF / BRAM18 / DSP (Yosys)",
            " / ".join(f"{v:,.0f}" for v in (t.synth.lut, t.synth.ff, t.synth.bram, t.synth.dsp)),
        ),
        ("xc7z020 LUT / BRAM18 (estimate)", f"{t.est.lut:,.0f} / {t.est.bram}"),
        (
            "LFE5U-85F Fmax (nextpnr)",
            f"{pnr.fmax_mhz:.1f} MHz -> {t.fps_at_fmax:,.0f} frames/s",
        ),
        ("LFE5U-85F bitstream", str(report.dir / pnr.bitstream)),
        ("report", str(report.dir / "report.html")),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
