"""`qloom sim`: compile a model, lower it to a dataflow design, simulate the stitched RTL in
Verilator on a dataset and compare every output with the integer model.

    qloom sim model.onnx --data mnist-test --limit 100 --folding folding.json --stall 0.3

Exit code 0 when every frame matches, 1 on any mismatch or failed simulation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_parser(subparsers) -> argparse.ArgumentParser:
    s = subparsers.add_parser(
        "sim", help="simulate the generated RTL (Verilator) and compare with the integer model"
    )
    s.add_argument(
        "model",
        help="QONNX / FINN-ONNX file, or a qloom build directory (its model, folding, input "
        "domain and sized FIFO depths)",
    )
    from qloom.options import add_data_options, add_domain_options

    add_data_options(s, 100, "first N inputs (0: all; default 100)")
    add_domain_options(s)
    s.add_argument(
        "--folding", default=None, help="folding.json (FINN form: PE, SIMD, ...) or 'parallel'"
    )
    s.add_argument(
        "--stall",
        type=float,
        default=0.0,
        help="probability that the testbench withholds an input beat / refuses an output beat "
        "in a cycle (random stalls and backpressure; default 0: full rate)",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--size-fifos",
        action="store_true",
        help="size the glue FIFOs from a full-rate run first (peak occupancy + margin)",
    )
    s.add_argument("--fifo-depth", type=int, default=2, help="glue FIFO depth (default 2)")
    s.add_argument("--out", default=None, help="keep the run directory (top, memories) here")
    s.set_defaults(fn=run)
    return s


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from qloom.data.inputs import load_inputs
    from qloom.dataflow import to_dataflow
    from qloom.flow import compile_model, predictions, run_integer
    from qloom.fold import read_folding
    from qloom.options import input_spec
    from qloom.sim.design import simulate, size_fifos

    console = Console()
    if not 0.0 <= args.stall < 1.0:
        console.print(f"[red]--stall must be in [0, 1), got {args.stall}[/]")
        return 2
    model, spec, build_depths = Path(args.model), input_spec(args), None
    if model.is_dir():
        model, folding_file, spec_of_build, build_depths = _from_build_dir(model)
        spec = spec or spec_of_build
        args.folding = args.folding or folding_file
    compiled = compile_model(model, spec)
    inputs = load_inputs(
        args.data, compiled.domain, compiled.imported, args.limit, args.data_dir, args.seed
    )
    images, labels = compiled.hardware_input(inputs.x), inputs.labels
    graph = compiled.integer
    folding = read_folding(args.folding, graph) if args.folding else None
    design = to_dataflow(graph, folding)
    depths = None
    if build_depths is not None and not args.size_fifos and args.fifo_depth == 2:
        from qloom.rtl.top import glue_streams

        glue = set(glue_streams(design))
        depths = {s: d for s, d in build_depths.items() if s in glue}
    elif args.size_fifos:
        depths = size_fifos(design, images[: min(len(images), 8)], seed=args.seed)
    elif args.fifo_depth != 2:
        from qloom.rtl.top import glue_streams

        depths = {s: args.fifo_depth for s in glue_streams(design)}
    p = 1.0 - args.stall
    res = simulate(
        design,
        images,
        in_valid_prob=p,
        out_ready_prob=p,
        seed=args.seed,
        fifo_depths=depths,
        work_dir=args.out,
    )
    ref = run_integer(graph, images)
    n = len(images)
    mismatches = n
    acc = None
    if res.ok:
        bad = np.zeros(n, dtype=bool)
        for t in graph.outputs:
            got = np.asarray(res.outputs[t]).reshape(n, -1)
            want = np.asarray(ref[t]).reshape(n, -1)
            bad |= ~np.all(got == want, axis=1)
        mismatches = int(bad.sum())
        if labels is not None:
            acc = float(np.mean(predictions(graph, res.outputs) == labels))
    ref_acc = float(np.mean(predictions(graph, ref) == labels)) if labels is not None else None

    table = Table(title=f"RTL simulation of {model.name} ({design.name})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("frames", inputs.source)
    table.add_row("hardware input", compiled.domain.describe())
    table.add_row("stall probability", f"{args.stall:g} (seed {args.seed})")
    table.add_row("mismatches vs integer model", str(mismatches))
    table.add_row(
        "top-1 accuracy (RTL / integer)",
        f"{100 * acc:.2f} % / {100 * ref_acc:.2f} %"
        if acc is not None and ref_acc is not None
        else "-",
    )
    cpf = f"{res.cycles_per_frame:,.1f}" if res.cycles_per_frame is not None else "-"
    table.add_row("cycles/frame measured (median)", cpf)
    table.add_row("cycles/frame formula", f"{design.cycles_per_frame():,}")
    table.add_row("bottleneck stage", design.bottleneck().name if design.stages else "-")
    table.add_row("latency, first frame (cycles)", str(res.latency))
    table.add_row("total cycles", f"{res.total_cycles:,}")
    table.add_row(
        "simulation speed", f"{res.cycles_per_second / 1e6:.2f} M cycles/s ({res.wall_s:.1f} s)"
    )
    console.print(table)
    if res.ok and res.cycles_per_frame and res.cycles_per_frame > design.cycles_per_frame() * 1.01:
        how = (
            "sized from the build"
            if build_depths is not None
            else ("sized" if args.size_fifos else f"depth {args.fifo_depth}")
        )
        console.print(
            f"[yellow]warning: {res.cycles_per_frame:,.0f} cycles/frame measured, "
            f"{design.cycles_per_frame():,} by the formula: the glue FIFOs ({how}) throttle "
            "the pipeline; --size-fifos sizes them from a full-rate run[/]"
            if not args.stall
            else f"[yellow]note: {res.cycles_per_frame:,.0f} cycles/frame measured under "
            f"stalls, {design.cycles_per_frame():,} by the formula at full rate[/]",
            highlight=False,
        )
    if res.fifo_depths:
        ft = Table(title="FIFOs")
        ft.add_column("stream")
        ft.add_column("depth", justify="right")
        ft.add_column("peak occupancy", justify="right")
        ft.add_column("beats/frame", justify="right")
        for f in res.rtl.fifos if res.rtl else ():
            ft.add_row(
                f.stream + ("" if f.glue else " (stage)"),
                str(f.depth),
                str(res.fifo_max.get(f.stream, "-")),
                str(f.beats_per_frame),
            )
        console.print(ft)
    if res.ok and res.stage_timing:
        console.print(latency_table(res))
    if not res.ok:
        console.print("[bold red]simulation failed:[/]")
        for line in res.problems + [f"stalled: {d}" for d in res.diagnosis]:
            console.print(f"  {line}", highlight=False)
        return 1
    if mismatches:
        console.print(f"[bold red]{mismatches} of {n} frames differ from the integer model[/]")
        return 1
    console.print(f"[green]all {n} frames equal the integer model[/]")
    return 0


def latency_table(res):
    """The first frame through every stage and glue FIFO (`DesignSimResult.stage_timing`):
    the latency formula, the simulated latency (first input beat .. last output beat) and the
    first-beat delay, whose sum on a chain plus the output frame's span is the whole latency."""
    from rich.table import Table

    from qloom.sim.design import first_beat_sum

    def cell(v) -> str:
        return "-" if v is None else f"{v:,}"

    total, span = first_beat_sum(res.stage_timing), res.output_span
    caption = (
        "simulated: first input beat .. last output beat, as the formula counts (which assumes "
        "input at full rate and an output never held back); first beat: first output beat - "
        "first input beat"
    )
    if total is not None and span is not None and total + span == res.latency:
        caption += (
            f"\nsum of first beats {total:,} + output frame {span:,} = {res.latency:,} cycles, "
            "the whole design's latency"
        )
    elif total is not None:
        caption += "\nthe pipeline branches: the first beats add up along each path"
    lt = Table(title="Latency, first frame (cycles)", caption=caption)
    lt.add_column("stage / glue FIFO")
    lt.add_column("kind")
    lt.add_column("formula", justify="right")
    lt.add_column("simulated", justify="right")
    lt.add_column("first beat", justify="right")
    for t in res.stage_timing:
        # a glue FIFO's first input .. last output beat is the stream's pace, not the FIFO's
        lt.add_row(t.name, t.kind, cell(t.formula), cell(None if t.glue else t.latency),
                   cell(t.first_beat), style="dim" if t.glue else None)  # fmt: skip
    return lt


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m qloom.sim.cli ...`) until qloom.cli wires `sim` in."""
    parser = argparse.ArgumentParser(prog="qloom")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    import sys

    sys.exit(main())


def _from_build_dir(path: Path):
    """model, folding file, input spec and glue FIFO depths of a qloom build directory."""
    import json

    from qloom.errors import QloomError
    from qloom.report.model import BuildReport

    report_file, model = path / "report.json", path / "model.onnx"
    if not (path / ".qloom-build").exists() or not report_file.is_file() or not model.is_file():
        raise QloomError(
            f"{path} is a directory but not a qloom build (no .qloom-build, report.json and "
            "model.onnx in it); give a model file or a build directory"
        )
    report = BuildReport.read(path)
    spec = None
    config = path / "build_config.json"
    if config.is_file():
        from qloom.config import options_from_config

        spec = options_from_config(json.loads(config.read_text()), model)[0].input_spec
    folding = path / "folding.json"
    depths = report.sim.fifo_depths if report.sim is not None else None
    return model, str(folding) if folding.is_file() else None, spec, depths
