"""The `qloom` command line. Every user error prints one message and exits non-zero."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from qloom.errors import QloomError

if TYPE_CHECKING:
    from qloom.report.model import BuildReport, Resources

console = Console()
err_console = Console(stderr=True)


def _inspect(args: argparse.Namespace) -> int:
    from qloom.flow import compile_model
    from qloom.options import input_spec
    from qloom.report.layers import layer_rows
    from qloom.train.prune import layer_bops  # torch-free

    compiled = compile_model(args.model, input_spec(args))
    d = compiled.domain
    console.print(
        f"input '{d.input_name}' {'x'.join(map(str, d.input_shape))}: the hardware receives "
        f"{d.describe()}",
        highlight=False,
    )
    rows = layer_rows(compiled.integer)
    bops = {b.name: b for b in layer_bops(compiled.integer)}
    table = Table(title=f"{args.model}: integer graph ({len(rows)} nodes)")
    for col in (
        "layer",
        "op",
        "in",
        "out",
        "act in",
        "weights",
        "act out",
        "MACs",
        "density",
        "BOPs",
        "param bits",
        "hardware",
    ):
        numeric = col in ("MACs", "density", "BOPs", "param bits")
        table.add_column(col, justify="right" if numeric else "left")
    for r in rows:
        table.add_row(
            r.name,
            r.op,
            "x".join(map(str, r.in_shape)),
            "x".join(map(str, r.out_shape)),
            r.in_dtype,
            r.weight_dtype,
            r.out_dtype,
            f"{r.macs:,}" if r.macs else "",
            f"{bops[r.name].density:.3f}" if r.name in bops else "",
            f"{bops[r.name].bops:,}" if r.name in bops else "",
            f"{r.param_bits:,}" if r.param_bits else "",
            r.hardware,
        )
    console.print(table)
    macs = sum(r.macs for r in rows)
    bits = sum(r.param_bits for r in rows)
    total_bops = sum(b.bops for b in bops.values())
    console.print(
        f"total: {macs:,} MACs per frame, {total_bops:,} BOPs (MACs x weight bits x input bits x "
        f"density of nonzero weights), {bits:,} parameter bits ({bits / 8 / 1024:.1f} KiB)"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from qloom.data.inputs import load_inputs
    from qloom.flow import compile_model, predictions
    from qloom.options import input_spec

    compiled = compile_model(args.model, input_spec(args))
    inputs = load_inputs(
        args.data, compiled.domain, compiled.imported, args.limit, args.data_dir, args.seed
    )
    graph = compiled.integer
    console.print(f"hardware input: {compiled.domain.describe()}", highlight=False)
    t0 = time.perf_counter()
    outputs = compiled.run(inputs.x)
    dt = time.perf_counter() - t0
    n = len(inputs.x)
    pred = predictions(graph, outputs)
    line = f"{args.model}: {inputs.source}, integer executor {n / dt:,.0f} inputs/s"
    if inputs.labels is not None:
        line += f"; top-1 accuracy {100 * float(np.mean(pred == inputs.labels)):.2f} %"
    console.print(line, highlight=False)
    if args.compare_qonnx:
        _compare_qonnx(args.model, inputs.x, outputs[graph.outputs[0]], graph)
    if getattr(args, "compare_exact", False):
        _compare_exact(args.model, inputs.x, compiled)
    if args.save_outputs:
        _save_outputs(args.save_outputs, graph, outputs)
    return 0


def _compare_qonnx(model: str, x, ours, graph) -> None:
    """Agreement with qonnx's execute_onnx on the original model, on the same inputs."""
    import numpy as np

    from qloom.frontend.reference import qonnx_outputs

    t0 = time.perf_counter()
    ref = qonnx_outputs(model, x, batch=min(len(x), 100))
    dt = time.perf_counter() - t0
    a = np.asarray(ours, np.float64).reshape(len(x), -1)
    b = np.asarray(ref, np.float64).reshape(len(x), -1)
    same_top1 = int(np.sum(a.argmax(1) == b.argmax(1)))
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    # beyond float32 rounding of the float tail: a quantizer upstream gave another level
    tol = 1e-5 * max(1.0, float(np.abs(b).max())) if b.size else 0.0
    differ = int(np.sum(np.any(np.abs(a - b) > tol, axis=1)))
    console.print(
        f"qonnx execute_onnx on the original model ({dt:.1f} s): top-1 equal on {same_top1} / "
        f"{len(x)} inputs, max |difference| {diff:.3g}, outputs beyond float rounding on "
        f"{differ} / {len(x)} inputs",
        highlight=False,
    )


def _compare_exact(model: str, x, compiled) -> None:
    """Per activation quantizer: qloom's integer graph vs qonnx (float32) vs exact arithmetic."""
    from rich import box

    from qloom.execute.exact import compare_exact, comparison_table

    t0 = time.perf_counter()
    cmp = compare_exact(model, x, compiled=compiled)
    head, *rows = comparison_table(cmp)
    table = Table(
        title=f"integer levels per quantizer, {cmp.inputs:,} inputs: ql = qloom, qo = qonnx "
        "execute_onnx (float32), ex = exact arithmetic",
        caption="ex=ql / ex=qo: of the values where ql != qo, the side the exact value supports;"
        " inputs: with some ql != qo here; local: on the inputs where all three agreed at every "
        "earlier quantizer (this quantizer's own rounding)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for i, col in enumerate(head):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
    for r in rows:
        table.add_row(*r)
    # at least 150 columns wide: a narrow terminal wraps the lines instead of cutting columns
    Console(width=max(console.width, 150), quiet=console.quiet).print(table)
    console.print(
        "outputs beyond float rounding of the exact ones: qloom on "
        f"{cmp.outputs_differ_qloom_exact}, qonnx on {cmp.outputs_differ_qonnx_exact} of "
        f"{cmp.inputs:,} inputs "
        f"({time.perf_counter() - t0:.1f} s)",
        highlight=False,
    )


def _save_outputs(path_text: str, graph, outputs) -> None:
    """.npy: the model's first output; .npz: every output by name (batch axis first)."""
    from pathlib import Path

    import numpy as np

    from qloom.errors import QloomError

    path = Path(path_text)
    if path.suffix not in (".npy", ".npz"):
        raise QloomError(f"--save-outputs {path}: give a .npy or .npz file name")
    if not path.parent.is_dir():
        raise QloomError(f"--save-outputs {path}: directory {path.parent} does not exist")
    if path.suffix == ".npy":
        np.save(path, outputs[graph.outputs[0]])
    else:
        np.savez(path, **{k: outputs[k] for k in graph.outputs})
    console.print(f"outputs written to {path}", highlight=False)


def _build(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from qloom.build import BuildOptions, build
    from qloom.options import input_spec

    given = dict(
        out_dir=Path(args.out),
        name=args.name,
        part=args.part,
        clock_mhz=args.clock_mhz,
        target_fps=args.target_fps,
        max_fps=args.max_fps,
        max_utilization=args.max_utilization,
        latency_slack=args.latency_slack,
        runtime_weights=args.runtime_weights,
        folding=Path(args.folding) if args.folding else None,
        data=args.data,
        input_spec=input_spec(args),
        sim_frames=args.sim_frames,
        sim_shards=args.sim_shards,
        synth=args.synth,
        pnr_part=args.pnr,
        pnr_seeds=args.pnr_seeds,
        ray_address=args.ray_address,
        quiet=args.quiet,
        board=args.board,
        baud=args.baud,
        devices=args.devices,
        links=args.link,
    )
    if args.config:
        from qloom.config import options_from_config, read_config

        opts, notes = options_from_config(
            read_config(args.config), args.model, f"config file {args.config}"
        )
        # what the command line states explicitly wins over the file
        dest = {"out_dir": "out", "folding": "folding", "pnr_part": "pnr", "links": "link"}
        parser = args.build_parser
        explicit = {}
        for key, value in given.items():
            if key == "input_spec":
                if value is not None:
                    explicit[key] = value
            elif key != "quiet":
                d = dest.get(key, key)
                if getattr(args, d) != parser.get_default(d):
                    explicit[key] = value
        opts = replace(opts, quiet=args.quiet, **explicit)
        for n in notes:
            if not args.quiet:
                console.print(f"note: {n}", highlight=False)
    else:
        opts = BuildOptions(model=Path(args.model), **given)
    report = build(opts)
    _print_build(report)
    return 0


def _print_build(r: BuildReport) -> None:
    t, sim = r.totals, r.sim
    table = Table(title=f"qloom build {r.model} -> {r.dir}")
    table.add_column("")
    table.add_column("value")
    rows = [
        ("part / clock", f"{r.part} @ {r.clock_mhz:g} MHz"),
        ("hardware input", r.input_domain.hardware_type if r.input_domain else "-"),
        ("folding", r.folding),
        ("cycles/frame (formula)", f"{t.cycles_per_frame:,} (bottleneck {t.bottleneck})"),
        ("cycles/frame (RTL sim)", f"{sim.cycles_per_frame:,.0f}" if sim else "not simulated"),
        ("FPS at clock", f"{t.fps_at_clock:,.0f}"),
        ("latency (RTL sim)", f"{sim.latency_cycles:,} cycles" if sim else "-"),
        (
            f"RTL == {sim.reference if sim else 'integer model'}",
            f"{sim.verdict} ({sim.frames} frames of {sim.inputs})" if sim else "-",
        ),
        (f"{_labels(t.est)} (estimate)", _counts(t.est)),
    ]
    if r.rtl is not None and r.rtl.weight_words:
        rows.insert(-1, ("run-time weights", f"{r.rtl.weight_words:,} words (weights.bin)"))
    if sim and sim.differ_from_integer is not None:
        rows.insert(-1, ("don't-care tables vs integer model",
                         f"{sim.differ_from_integer} of {sim.frames} frames differ"))  # fmt: skip
    if t.synth is not None:
        rows.append((f"{_labels(t.synth)} (Yosys)", _counts(t.synth)))
    if t.fifos is not None and r.partition is None:
        pct = " / ".join(f"{v:.1f}" for v in (t.utilization or {}).values())
        rows.append(
            (
                f"accelerator incl. {t.fifo_count} glue FIFOs",
                f"{_counts(t.accelerator)} ({pct} % of {r.part})",
            )
        )
    if r.partition is not None:
        rows += _partition_rows(r)
    if r.pnr is not None:
        p = r.pnr
        rows.append((f"Fmax on {p.part} (nextpnr)", f"{p.fmax_mhz:.1f} MHz"))
        rows.append(("bitstream", str(p.bitstream)))
    if r.dir is not None:
        from qloom.deploy.board import summary_rows

        rows += summary_rows(r.dir / "board")  # qloom build --board: its settings, timing
    for k, v in rows:
        table.add_row(k, str(v))
    console.print(table)


def _partition_rows(r: BuildReport) -> list[tuple[str, str]]:
    """A multi-device build (--devices): one row per device and per link."""
    p, rows = r.partition, []
    for s in p.devices:
        used = s.synth if s.synth is not None else s.est
        if s.fifos is not None:
            used = used + s.fifos
        pct = " / ".join(f"{v:.1f}" for v in s.utilization.values())
        sim = f", alone {s.sim['cycles_per_frame']:,.0f} in RTL" if s.sim else ""
        n = len(s.stages)
        rows.append(
            (
                f"device {s.index}: {s.part} ({n} stage{'s' if n != 1 else ''})",
                f"{s.stages[0]} .. {s.stages[-1]}; {_counts(used)} incl. {s.fifo_count} glue "
                f"FIFOs ({pct} %); {s.cycles_per_frame:,} cycles/frame{sim}",
            )
        )
    for lk in p.links:
        sim = f", carried at {lk.sim['cycles_per_frame']:,.0f} in RTL" if lk.sim else ""
        rows.append(
            (
                f"link {lk.index}: device {lk.index} -> {lk.index + 1}",
                f"{lk.name} ({lk.gbps:g} Gbit/s, latency {lk.latency_cycles} cycles), stream "
                f"'{lk.stream}' {lk.bits_per_frame:,} bits/frame: {lk.cycles_per_frame:,} "
                f"cycles/frame{sim}",
            )
        )
    rows.append(("chain cycles/frame (formula)", f"{p.cycles_per_frame:,} ({p.bottleneck})"))
    return rows


def _counts(res: Resources) -> str:
    """LUT / FF / BRAM18 / DSP, and URAM288 where the design has run-time weights there."""
    vals = (res.lut, res.ff, res.bram, res.dsp) + ((res.uram,) if res.uram else ())
    return " / ".join(f"{v:,.0f}" for v in vals)


def _labels(res: Resources) -> str:
    """What `_counts` lists, in its order."""
    return "LUT / FF / BRAM18 / DSP" + (" / URAM" if res.uram else "")


def _devices(args: argparse.Namespace) -> int:
    from qloom.synth import DEVICES

    table = Table(title="FPGA parts")
    for col in ("part", "family", "LUT", "FF", "BRAM", "DSP", "boards"):
        table.add_column(col)
    for d in DEVICES:
        table.add_row(
            d.name,
            d.family,
            f"{d.luts:,}",
            f"{d.ffs:,}",
            str(d.bram),
            str(d.dsp),
            ", ".join(d.boards),
        )
    console.print(table)
    return 0


def _board_send(args: argparse.Namespace) -> int:
    from qloom.deploy.client import send_command  # (qloom.deploy imports the compiler)

    return send_command(args)


def _sweep(args: argparse.Namespace) -> int:
    from qloom.sweep.driver import main_cli

    return main_cli(args)


def _add_board_parser(sub) -> None:
    """``qloom board send BUILD_DIR --port P --data x.npy [--out y.npy]`` (qloom.deploy.client)."""
    s = sub.add_parser("board", help="talk to a board built with qloom build --board")
    b = s.add_subparsers(dest="board_command", required=True).add_parser(
        "send", help="stream inputs (.npy, the model's own domain) to the board, read results"
    )
    b.add_argument("build_dir", help="a qloom build directory with board/ (qloom build --board)")
    b.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    b.add_argument("--data", required=True, help="inputs: FILE.npy of shape (N, ...input shape)")
    b.add_argument("--out", default=None, help="write the model's first output to OUT.npy")
    b.add_argument("--baud", type=int, default=None, help="default: the build's (board.json)")
    b.add_argument(
        "--window", type=int, default=None, help="frames in flight (default: the board's FIFO)"
    )
    b.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a result")
    b.add_argument(
        "--check", action="store_true", help="compare with the integer model (exit 1 if not)"
    )
    b.set_defaults(fn=_board_send)


def build_parser() -> argparse.ArgumentParser:
    from qloom.options import DATA_HELP, add_data_options, add_domain_options

    p = argparse.ArgumentParser(prog="qloom", description=__doc__)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("inspect", help="print the layers of a QONNX model and their hardware")
    s.add_argument("model")
    add_domain_options(s)
    s.set_defaults(fn=_inspect)

    s = sub.add_parser("run", help="run the integer model on inputs (accuracy, outputs)")
    s.add_argument("model")
    add_data_options(s, 0, "only the first N inputs (random: N inputs, default 1000)")
    add_domain_options(s)
    s.add_argument("--seed", type=int, default=0, help="seed for --data random")
    s.add_argument(
        "--save-outputs",
        default=None,
        metavar="OUT",
        help="write the model's outputs (after the host's float tail, in the model's own "
        "output layout) to OUT.npy (first output) or OUT.npz (all, by name)",
    )
    s.add_argument(
        "--compare-qonnx",
        action="store_true",
        help="also run qonnx's execute_onnx on the original model and report the agreement",
    )
    s.add_argument(
        "--compare-exact",
        action="store_true",
        help="per quantizer, count the integer levels where qloom, qonnx's float32 execution "
        "and an exact-arithmetic evaluation of the model differ, and whom the exact value supports",
    )
    s.set_defaults(fn=_run)

    s = sub.add_parser("build", help="compile to verified RTL, synthesize, report")
    s.add_argument("model")
    s.add_argument("--out", default="build", help="parent of the build directory")
    s.add_argument("--name", default=None, help="build directory name (default: model stem)")
    s.add_argument("--part", default="xc7z020", help="FPGA part or board (qloom devices)")
    s.add_argument("--clock-mhz", type=float, default=100.0)
    s.add_argument("--target-fps", type=float, default=None)
    s.add_argument("--max-fps", action="store_true", help="fastest design that fits the part")
    s.add_argument("--max-utilization", type=float, default=0.8)
    s.add_argument(
        "--latency-slack",
        type=float,
        default=0.0,
        help="with --target-fps: fold for the shortest latency within this fraction more "
        "estimated cost (0.1 = 10 %%; default 0: the cheapest folding)",
    )
    s.add_argument(
        "--runtime-weights",
        action="store_true",
        help="every MVAU loads its weights after reset over an extra 32-bit AXI-Stream "
        "input of the top (s_axis_weights; words in weights.bin of the build, uint32 "
        "little-endian) instead of holding them as constants: weights can change without a "
        "rebuild and, with ram_style 'ultra' in the folding, live in UltraRAM; the top's "
        "weights_loaded output rises when all are in",
    )
    s.add_argument(
        "--folding",
        default=None,
        help="FINN-style folding.json to use as is, or 'parallel' (PE = MH, SIMD = MW)",
    )
    s.add_argument("--data", default="random", help=DATA_HELP)
    s.add_argument("--sim-frames", type=int, default=100, help="0 skips RTL simulation")
    s.add_argument(
        "--sim-shards",
        type=int,
        default=1,
        help="split the simulated frames into N shards run in parallel (threads, or Ray tasks "
        "with --ray-address)",
    )
    add_domain_options(s)
    s.add_argument("--synth", action="store_true", help="Yosys synthesis per stage for --part")
    s.add_argument(
        "--pnr",
        default=None,
        nargs="?",
        const="",
        metavar="PART",
        help="place and route on an ECP5/iCE40 part (e.g. LFE5U-85F): Fmax and bitstream; "
        "with --board, the board top on the board's part (PART may be left out)",
    )
    s.add_argument(
        "--pnr-seeds",
        type=int,
        default=1,
        metavar="N",
        help="place and route with nextpnr seeds 1..N until the clock target is met, keeping "
        "the fastest (default: 1)",
    )
    s.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="with --synth or --sim-shards: synthesize the stages / simulate the frame shards "
        "as Ray tasks, 'local' (an embedded instance) or a cluster's host:port (default: "
        "threads on this machine)",
    )
    s.add_argument(
        "--board",
        default=None,
        help="also write a board top into <build>/board/ (ulx3s, orangecrab): PLL to "
        "--clock-mhz, a UART to the host (qloom board send), the board's pins",
    )
    s.add_argument("--baud", type=int, default=115_200, help="the board's UART rate")
    s.add_argument(
        "--devices",
        default=None,
        metavar="PARTS",
        help="cut the pipeline across several FPGAs, in chain order (replaces --part): "
        "xczu7ev,xczu7ev or 4xxczu7ev; the fewest that hold it at --max-utilization are used",
    )
    s.add_argument(
        "--link",
        default=None,
        metavar="LINK",
        help="the link between two devices: aurora-10g (default), qsfp28-100g, eth-1g, or "
        "GBPS[:LATENCY_CYCLES]; a comma-separated list gives one per gap",
    )
    s.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="JSON build config in FINN's DataflowBuildConfig names (output_dir, target_fps, "
        "synth_clk_period_ns, board / fpga_part, folding_config_file, auto_fifo_depths) and "
        "qloom's own (max_utilization, sim_frames, data, synth, pnr_part, input_type, "
        "input_scale); options given on the command line win",
    )
    s.set_defaults(fn=_build, build_parser=s)

    s = sub.add_parser("devices", help="list the FPGA parts qloom knows")
    s.set_defaults(fn=_devices)

    _add_board_parser(sub)

    s = sub.add_parser(
        "sweep",
        help="design-space sweep as Ray tasks: train, fold to FPS targets, estimate, Pareto",
        epilog='example spec (JSON): {"models": ["tfc"], "precisions": ["w1a1", '
        '"w2a2"], "dataset": "fashion-mnist", "epochs": 3, "targets_fps": [1e4, '
        '1e6], "part": "xc7z020"}; see qloom.sweep.spec for every key',
    )
    s.add_argument("spec", help="sweep spec: JSON, or YAML (.yaml/.yml)")
    s.add_argument("--out", required=True, help="results folder (points/, results.csv, ...)")
    s.add_argument(
        "--ray-address", default=None, help="join this Ray cluster (default: embedded local)"
    )
    s.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS)
    s.set_defaults(fn=_sweep)

    from qloom.sim.cli import add_parser as add_sim

    add_sim(sub)
    from qloom.faults_cli import add_parser as add_faults

    add_faults(sub)
    try:
        from qloom.train.cli import add_export_parser
        from qloom.train.cli import add_parser as add_train
        from qloom.train.cli import run as run_train
    except ImportError:  # training needs torch + brevitas (the `train` extra)
        pass
    else:
        add_train(sub).set_defaults(fn=run_train)
        add_export_parser(sub)
    return p


class Terminated(BaseException):
    """SIGTERM, raised where the process is so that builds mark themselves failed."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quiet:
        os.environ["QLOOM_QUIET"] = "1"
    import signal
    import threading

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
    try:
        return _dispatch(args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return args.fn(args)
    except Terminated:
        err_console.print("[bold red]terminated[/]", highlight=False)
        return 143
    except QloomError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return e.exit_code
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]", highlight=False)
        return 130
    except Exception as e:  # a bug in qloom, not the user's fault: one line, not a traceback
        if args.debug:
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(e).__name__}: {e} (run with --debug for the "
            "traceback, and please report it)",
            highlight=False,
            soft_wrap=True,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
