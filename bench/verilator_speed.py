"""Verilator build time and simulation speed of the fully parallel TFC designs.

    .venv/bin/python bench/verilator_speed.py [--models TFC_1W1A,...] [--frames N]
        [--before-lib DIR [--before-models TFC_2W2A,...]] [--keep-cache]

Per model: `--folding parallel` (PE = MH, SIMD = MW in every layer, one frame per clock), the
generated top built cold (a fresh, empty Verilator cache: verilate + C++ compile with
`make -j2`, the runtime objects included), then N MNIST test images simulated at full rate,
every output compared with the integer executor and the measured cycles/frame printed.
`--before-lib DIR` builds each design a second time with the RTL library files of DIR instead
of the package's (e.g. a copy of `src/qloom/rtl/lib` from before a change), labelled
"before". The load average (`os.getloadavg`) before and after each build is printed: on a
shared machine build times grow with it. Not a test: no timing thresholds. Needs Verilator
(qloom[hw]) and ../shared (models and MNIST).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QLOOM_SHARED", ROOT.parent / "shared"))
MODELS = ["TFC_1W1A", "TFC_1W2A", "TFC_2W2A"]
_INSTANCE = re.compile(r"(?<![\w$`])(qloom_\w+)\s*(?:#\s*\(|[A-Za-z_][\w$]*\s*\()")
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def old_library(rtl, lib_dir: Path):
    """`rtl` with its hdl/ copies replaced by the files of `lib_dir` (and their submodules
    there, found the way `qloom.rtl.library` finds them)."""
    hdl = rtl.top_file.parent / "hdl"
    for p in hdl.glob("*.v"):
        p.unlink()
    need: list[str] = []

    def visit(name: str) -> None:
        if name in need or not (lib_dir / f"{name}.v").is_file():
            return
        need.append(name)
        text = _COMMENTS.sub(" ", (lib_dir / f"{name}.v").read_text())
        for m in _INSTANCE.findall(text):
            if m != name and "_error" not in m:
                visit(m)

    for p in rtl.library:
        visit(p.stem)
    files = []
    for name in need:
        shutil.copy(lib_dir / f"{name}.v", hdl / f"{name}.v")
        files.append(hdl / f"{name}.v")
    return replace(rtl, library=tuple(files))


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--frames", type=int, default=1000, help="MNIST test images to simulate")
    ap.add_argument("--before-lib", type=Path, help="RTL library directory of the 'before' run")
    ap.add_argument("--before-models", help="models to build with --before-lib (default: all)")
    ap.add_argument("--keep-cache", action="store_true", help="keep the Verilator caches")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from qloom.data import load_dataset
    from qloom.dataflow import to_dataflow
    from qloom.flow import compile_model, run_integer
    from qloom.fold import parallel_folding
    from qloom.frontend.domain import RAW_PIXELS
    from qloom.rtl.top import generate_top
    from qloom.sim import verilator_version
    from qloom.sim.design import simulate

    images, _ = load_dataset("mnist", "test")
    images = images[: args.frames]
    variants = [("after", None)]
    if args.before_lib:
        variants.insert(0, ("before", args.before_lib.resolve()))
    rows = []
    for model in args.models.split(","):
        path = SHARED / "models" / "mnist-tfc" / f"{model}.onnx"
        if not path.exists():
            print(f"{path} not found: skipped", file=sys.stderr)
            continue
        graph = compile_model(path, RAW_PIXELS).integer
        design = to_dataflow(graph, parallel_folding(to_dataflow(graph)))
        ref = run_integer(graph, images)
        for label, lib in variants:
            if lib is not None and args.before_models and model not in args.before_models:
                continue
            with tempfile.TemporaryDirectory(prefix="qloom-vspeed-") as td:
                td = Path(td)
                rtl = generate_top(design, td / "run")
                if lib is not None:
                    rtl = old_library(rtl, lib)
                cache = td / "cache"
                load0 = load()
                t0 = time.monotonic()
                res = simulate(design, images, rtl=rtl, cache_dir=cache, quiet=True).check()
                total = time.monotonic() - t0
                load1 = load()
                if args.keep_cache:
                    keep = ROOT / "bench" / "results" / f"vcache-{model}-{label}"
                    shutil.rmtree(keep, ignore_errors=True)
                    shutil.copytree(cache, keep)
            exact = all(np.array_equal(res.outputs[k], ref[k]) for k in graph.outputs)
            rows.append(
                dict(
                    model=model,
                    folding="parallel",
                    rtl=label,
                    build_s=round(res.build_s, 1),
                    sim_s=round(res.wall_s, 2),
                    total_s=round(total, 1),
                    frames=len(images),
                    frames_per_s=round(len(images) / res.wall_s, 1),
                    cycles_per_frame=res.cycles_per_frame,
                    bit_exact=exact,
                    load_before=load0,
                    load_after=load1,
                )
            )
            r = rows[-1]
            print(f"{model} {label}: build {r['build_s']} s, {r['frames_per_s']} frames/s, "
                  f"exact {exact}, cycles/frame {r['cycles_per_frame']}, load {load0} -> "
                  f"{load1}", file=sys.stderr, flush=True)  # fmt: skip

    table = Table(title=f"Verilator, fully parallel TFC, cold builds ({verilator_version()})")
    for col in ["model", "folding", "RTL", "build s (cold)", "sim frames/s", "frames",
                "bit-exact", "cycles/frame", "load 1/5/15 min before -> after build"]:  # fmt: skip
        table.add_column(col)
    for r in rows:
        table.add_row(r["model"], r["folding"], r["rtl"], f"{r['build_s']:.1f}",
                      f"{r['frames_per_s']:,.0f}", str(r["frames"]), str(r["bit_exact"]),
                      str(r["cycles_per_frame"]),
                      f"{r['load_before']} -> {r['load_after']}")  # fmt: skip
    Console(width=200).print(table)
    out = ROOT / "bench" / "results" / "verilator_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")
    return 0 if all(r["bit_exact"] and r["cycles_per_frame"] == 1.0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
