"""`qloom build`: one QONNX file in, a complete build directory out.

    build/<name>/
      model.onnx              the input model, as given
      graphs/                 every representation as ONNX (Netron): imported, integer, dataflow
      folding.json            FINN-style folding (PE, SIMD, ram_style) that was built
      design.json             stages, streams, cycle formulas
      build_config.json       the options as a config file (FINN's names; qloom build --config)
      driver/                 driver.py (numpy; PYNQ AXI DMA) + io.json: pack inputs, unpack outputs
      rtl/                    generated top + library copies + memory files
      sim/                    RTL simulation result (outputs checked against the integer model)
      synth/                  per-stage Yosys results, Vivado TCL, ECP5 place and route + bitstream
      report.json, report.html

With --devices (scale-out, qloom.fold.partition) the pipeline is cut into one segment per
device: segments/<i>_<part>/ holds each segment's rtl/ (its own top, AXI-Stream in and out on
the cut streams), design.json, sim/ (the segment alone) and synth/; there is no rtl/ of the
whole design; sim/ is the chain simulated through link models (qloom.sim.chain); report.json
lists the segments and links under "partition".

The RTL is generated once, into rtl/ with the FIFO depths that sizing measured: the verification
simulation runs those files, and the Vivado project and nextpnr take copies of them (memory
files at the same relative paths, mem/*.hex). `build` returns the report as a
`qloom.report.model.BuildReport`, whose `to_json()` is report.json.

The directory is assembled as build/<name>.partial and renamed only when every requested step
passed, so a directory without the suffix is always complete; a failed build leaves the
.partial directory (with FAILED.txt) and a non-zero exit.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qloom.errors import QloomError
from qloom.frontend.domain import InputSpec
from qloom.report.model import (
    BuildReport,
    InputDomain,
    PartitionSummary,
    PnrSummary,
    Resources,
    RtlSummary,
    SimSummary,
    StageRow,
    Totals,
)


class BuildError(QloomError):
    """A build step failed (e.g. RTL outputs differ from the integer model)."""

    exit_code = 1


@dataclass
class BuildOptions:
    model: Path
    out_dir: Path = Path("build")
    name: str | None = None
    part: str = "xc7z020"
    clock_mhz: float = 100.0
    target_fps: float | None = None
    max_fps: bool = False
    max_utilization: float = 0.8
    latency_slack: float = 0.0  # fraction of extra estimated cost accepted for less latency
    # every MVAU's weights loaded after reset over the top's weight stream (weights.bin)
    # instead of $readmemh constants: UltraRAM-able, changeable without a rebuild
    runtime_weights: bool = False
    folding: Path | str | None = None
    data: str = "random"  # FILE.npy / FILE.npz, a dataset name, or "random"
    input_spec: InputSpec | None = None  # the input domain, when the model does not give it
    sim_frames: int = 100
    sim_shards: int = 1  # frame shards simulated in parallel (threads, or Ray tasks)
    synth: bool = False
    pnr_part: str | None = None  # an ECP5/iCE40 part for place and route (default: none)
    # nextpnr seeds to try (1..N) until the clock target is met; the fastest result is kept
    pnr_seeds: int = 1
    # per-stage synthesis in parallel: None = threads on this machine, "local" = an embedded
    # Ray instance, an address = Ray tasks on that cluster (qloom.fold.synth.synth_stages)
    ray_address: str | None = None
    quiet: bool = False
    # a board top (qloom.deploy.board) in board/: "ulx3s" / "orangecrab"; with pnr_part (""
    # = the board's own part) the board top is placed and routed instead of the I/O harness
    board: str | None = None
    baud: int = 115_200
    # scale-out (qloom.fold.partition): parts in chain order ("4xxczu7ev", "xc7a35t,xczu7ev")
    # replace `part`; the pipeline is cut into one segment per device, joined by `links`
    # ("aurora-10g", "2.5:40", or one per gap, comma-separated; default aurora-10g)
    devices: str | None = None
    links: str | None = None
    extra: dict = field(default_factory=dict)


class _Steps:
    """The build's named steps: each message starts one (and ends the one before); printed
    unless quiet, and written to build.log and time_per_step.json (the only files of a build
    that hold times, so that the rest is identical for identical inputs)."""

    def __init__(self, console, quiet: bool):
        self.console, self.quiet = console, quiet
        self.t0 = time.perf_counter()
        self.started = time.strftime("%Y-%m-%d %H:%M:%S")
        self.steps: list[tuple[str, float]] = []
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        """A finding the user must see, --quiet or not: stderr and build.log."""
        self.warnings.append(text)
        print(f"qloom: warning: {text}", file=sys.stderr)

    def __call__(self, what: str) -> _Steps:
        now = time.perf_counter() - self.t0
        self.steps.append((what, now))
        if not self.quiet:
            self.console.print(f"[dim]{now:7.1f} s[/] {what}")
        return self

    def write(self, directory: Path, outcome: str) -> None:
        end = time.perf_counter() - self.t0
        bounds = [t for _, t in self.steps[1:]] + [end]
        rows = [
            {"step": what, "start_s": round(t, 3), "seconds": round(b - t, 3)}
            for (what, t), b in zip(self.steps, bounds, strict=True)
        ]
        record = {"started": self.started, "outcome": outcome, "total_s": round(end, 3)}
        (directory / "time_per_step.json").write_text(
            json.dumps({**record, "steps": rows}, indent=2)
        )
        log = [f"[{r['start_s']:8.1f} s] {r['step']}" for r in rows]
        log += [f"warning: {w}" for w in self.warnings]
        log.append(f"[{end:8.1f} s] {outcome}")
        (directory / "build.log").write_text("\n".join(log) + "\n")


MARKER = ".qloom-build"  # present in every directory qloom created; only those are replaced


def check_options(opts: BuildOptions) -> None:
    """Reject options that cannot describe a build (the CLI and the API alike)."""

    def number(name: str, value, kinds: tuple[type, ...] = (int, float)) -> None:
        if not isinstance(value, kinds) or isinstance(value, bool):
            want = "an integer" if kinds == (int,) else "a number"
            raise QloomError(f"{name} must be {want}, got {value!r} ({type(value).__name__})")

    for name, value in (("--clock-mhz", opts.clock_mhz), ("--target-fps", opts.target_fps),
                        ("--max-utilization", opts.max_utilization),
                        ("--latency-slack", opts.latency_slack)):  # fmt: skip
        if value is not None:
            number(name, value)
    number("--sim-frames", opts.sim_frames, (int,))
    number("--sim-shards", opts.sim_shards, (int,))
    if not 1 <= opts.sim_shards <= 4096:
        raise QloomError(f"--sim-shards must be in 1..4096 (parallel simulations), got "
                         f"{opts.sim_shards}")  # fmt: skip
    number("--pnr-seeds", opts.pnr_seeds, (int,))
    if not 1 <= opts.pnr_seeds <= 32:
        raise QloomError(f"--pnr-seeds must be in 1..32 (nextpnr runs), got {opts.pnr_seeds}")
    if opts.ray_address is not None and (not isinstance(opts.ray_address, str) or
                                         not opts.ray_address.strip()):  # fmt: skip
        raise QloomError(f"--ray-address must be 'local' or a Ray address (host:port), got "
                         f"{opts.ray_address!r}")  # fmt: skip
    for name, flag in (("--max-fps", opts.max_fps), ("--synth", opts.synth)):
        if not isinstance(flag, bool):
            raise QloomError(f"{name} must be True or False, got {flag!r}")

    def positive(name: str, value: float | None) -> None:
        if value is not None and not (math.isfinite(value) and value > 0):
            raise QloomError(f"{name} must be a finite positive number, got {value}")

    positive("--clock-mhz", opts.clock_mhz)
    positive("--target-fps", opts.target_fps)
    if not (math.isfinite(opts.max_utilization) and 0 < opts.max_utilization <= 1):
        raise QloomError(
            f"--max-utilization must be in (0, 1] (a fraction of the part), got "
            f"{opts.max_utilization}"
        )
    if not (math.isfinite(opts.latency_slack) and opts.latency_slack >= 0):
        raise QloomError(
            f"--latency-slack must be a fraction >= 0 (0.1: up to 10 % more estimated cost for "
            f"a shorter latency), got {opts.latency_slack}"
        )
    if opts.folding and (opts.target_fps or opts.max_fps):
        what = "--target-fps" if opts.target_fps else "--max-fps"
        raise QloomError(
            f"--folding {opts.folding} fixes PE and SIMD, so {what} cannot choose them: give "
            f"one of the two (the build reports the FPS a folding file reaches)"
        )
    if opts.sim_frames < 0:
        raise QloomError(f"--sim-frames must be >= 0 (0 skips simulation), got {opts.sim_frames}")
    _check_board_options(opts)
    _check_device_options(opts)
    name = opts.name if opts.name is not None else Path(opts.model).stem
    if name in ("", ".", "..") or "/" in name or "\\" in name or name.endswith(".partial"):
        raise QloomError(
            f"--name {name!r} must be one plain directory name (no '/', not '.', '..' or "
            "'*.partial'): the build goes to <out>/<name>"
        )


def _check_board_options(opts: BuildOptions) -> None:
    """--board / --baud / --pnr without a part, checked before any work is done."""
    if opts.pnr_part == "" and not opts.board:
        raise QloomError("--pnr needs a PART (e.g. --pnr LFE5U-85F) unless --board is given")
    if opts.board is None:
        return
    from qloom.deploy.board import get_board, uart_timing

    board = get_board(opts.board)
    if opts.pnr_part and opts.pnr_part not in board.parts:
        raise QloomError(
            f"--board {board.name}: --pnr {opts.pnr_part} is not its part; the {board.title} "
            f"carries {', '.join(board.parts)} (--pnr alone: {board.default_part})"
        )
    uart_timing(board.name, opts.clock_mhz, opts.baud)  # the PLL reaches the clock, baud fits


def _check_device_options(opts: BuildOptions) -> None:
    """--devices / --link: parsed before any work is done; what a chain cannot do yet."""
    if opts.devices is None:
        if opts.links is not None:
            raise QloomError("--link needs --devices (the chain of parts the links join)")
        return
    from qloom.fold.partition import parse_devices, parse_links

    parse_devices(opts.devices)
    parse_links(opts.links)
    for flag, given in (("--max-fps", opts.max_fps), ("--pnr", opts.pnr_part is not None),
                        ("--board", opts.board is not None)):  # fmt: skip
        if given:
            raise QloomError(
                f"--devices cuts the design across several parts; {flag} is for a one-part "
                "build (give --target-fps, or build each segment's part on its own)"
            )


def _owned_or_absent(path: Path, what: str) -> None:
    """Raise unless `path` does not exist or is a directory qloom created (has the marker)."""
    if not path.exists() and not path.is_symlink():
        return
    if (
        path.is_dir()
        and not path.is_symlink()
        and ((path / MARKER).is_file() or _legacy_build(path))
    ):
        return
    raise QloomError(
        f"{path} exists and is not a qloom build directory (no {MARKER} marker); qloom will not "
        f"replace it with the {what}: choose another --name or --out, or move it away"
    )


def _legacy_build(path: Path) -> bool:
    """A build directory written by qloom before the marker existed: its report.json says so."""
    try:
        report = json.loads((path / "report.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and {"model", "part", "totals", "stages"} <= set(report)


@contextmanager
def _locked(out: Path, name: str) -> Iterator[None]:
    """One build at a time per <out>/<name>: a second one stops with a message."""
    lock_path = out / f".{name}.lock"
    with open(lock_path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise QloomError(
                f"another qloom build into {out / name} is running (pid {pid}); wait for it or "
                "use another --name"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _folding(opts: BuildOptions, integer, say) -> tuple[dict, str]:
    from qloom.dataflow import to_dataflow
    from qloom.fold import check_fits, fold_for_target, fold_max_fps, load_folding
    from qloom.synth import get_device

    device = get_device(opts.part)
    if opts.folding or not (opts.max_fps or opts.target_fps):
        if str(opts.folding) == "parallel":
            folding, how = load_folding("parallel", integer).folding, "fully parallel"
        elif opts.folding:
            tr = load_folding(opts.folding, integer)
            folding, how = (
                tr.folding,
                f"from {opts.folding}" + (f" ({tr.note()})" if tr.note() else ""),
            )
        else:
            folding, how = {}, "minimal (PE=SIMD=1)"
        # a folding the solver did not choose may not fit: say so before RTL and synthesis
        design = to_dataflow(integer, folding)
        if opts.runtime_weights:
            design = _with_runtime_weights(design, lambda _: None)
        check_fits(design, device, opts.max_utilization, f"the {how} folding")
        return folding, how
    # the solver folds the run-time-weight design itself: its memories may go to UltraRAM
    source = _runtime_design(integer) if opts.runtime_weights else integer
    if opts.max_fps:
        say(
            f"folding for the highest FPS that fits {device.name} "
            f"(<= {opts.max_utilization:.0%} utilization)"
        )
        return fold_max_fps(source, opts.clock_mhz, device, opts.max_utilization), "max FPS"
    slack = f", latency within {opts.latency_slack:.0%} more cost" if opts.latency_slack else ""
    say(f"folding for {opts.target_fps:g} FPS at {opts.clock_mhz:g} MHz on {device.name}{slack}")
    folding = fold_for_target(
        source, opts.target_fps, opts.clock_mhz, device, opts.max_utilization, opts.latency_slack
    )
    return folding, f"target {opts.target_fps:g} FPS{slack}"


def _folding_across(opts: BuildOptions, integer, devices, say) -> tuple[dict, str, int | None]:
    """The folding of a multi-device build, and the target's cycle budget (None without a
    target). The solver folds for the target without its one-part fit check (an infinite
    cap): whether the design fits is the partition's question, segment by segment. Block RAM
    is priced by its share of a part (no BRAM is idle before the cuts are known)."""
    from qloom.fold import fold_design, load_folding

    if opts.target_fps:
        say(f"folding for {opts.target_fps:g} FPS at {opts.clock_mhz:g} MHz (across devices)")
        res = fold_design(integer, opts.target_fps, opts.clock_mhz, devices[0], math.inf, (1.0,),
                          opts.latency_slack)  # fmt: skip
        return res.folding, f"target {opts.target_fps:g} FPS", res.budget_cycles
    if opts.folding:
        tr = load_folding(opts.folding, integer)
        how = "fully parallel" if str(opts.folding) == "parallel" else f"from {opts.folding}"
        return tr.folding, how + (f" ({tr.note()})" if tr.note() else ""), None
    return {}, "minimal (PE=SIMD=1)", None


#: run-time weights: the words of the top's weight stream, uint32 little-endian
WEIGHTS_FILE = "weights.bin"


def _runtime_design(integer):
    """The minimal design of `integer` with every MVAU's weights loaded at run time: what the
    solver folds for --runtime-weights (such weights may go to UltraRAM)."""
    from qloom.dataflow import to_dataflow

    design = to_dataflow(integer)
    return design.refold({s.name: {"weights": "runtime"} for s in design.of_kind("MVAU")})


def _with_runtime_weights(design, say):
    """--runtime-weights: every MVAU of the design loads its weights after reset (a folding
    the solver chose for them already says so: then nothing is lowered again)."""
    mvaus = design.of_kind("MVAU")
    if not mvaus:
        say("--runtime-weights: the design has no MVAU; all its weights stay constant")
        return design
    say(f"run-time weights: {len(mvaus)} MVAU(s) load theirs over s_axis_weights ({WEIGHTS_FILE})")
    constant = [s.name for s in mvaus if not s.runtime_weights]
    return design.refold({n: {"weights": "runtime"} for n in constant}) if constant else design


def _timing_twin(design):
    """The design with constant weights, for FIFO sizing: the same stages, streams and
    schedule (an MVAU's cycles and pipeline do not depend on where its weights come from),
    without the weight load (millions of idle cycles on big nets) that simulating the
    run-time-weight design would go through first. The depths are per stream, in beats."""
    loaders = design.runtime_weight_stages()
    return design.refold({s.name: {"weights": "constant"} for s in loaders}) if loaders else design


def _write_weights(design, path: Path, say) -> int:
    """The weight stream's words (`DataflowDesign.weight_words`) as uint32 little-endian;
    returns how many."""
    words = design.weight_words()
    path.write_bytes(words.astype("<u4").tobytes())
    say(f"{WEIGHTS_FILE}: {len(words):,} words for {len(design.runtime_weight_stages())} MVAU(s)")
    return len(words)


def _compare(sim_outputs: dict, reference: dict, frames: int) -> int:
    """Number of frames whose RTL outputs differ from the integer model's."""
    bad = np.zeros(frames, dtype=bool)
    for name, want in reference.items():
        if name not in sim_outputs:
            continue
        got = np.asarray(sim_outputs[name]).reshape(frames, -1)
        want = np.asarray(want).reshape(frames, -1)
        bad |= ~np.all(np.isclose(got, want, rtol=0, atol=0), axis=1)
    return int(bad.sum())


def build(opts: BuildOptions) -> BuildReport:
    """Build `opts.model` into <out>/<name> (see the module docstring); raises QloomError.
    Returns the build's report (`report.dir` is the build directory)."""
    check_options(opts)
    model = Path(opts.model)
    if not model.is_file():
        raise QloomError(f"{model}: no such model file")
    out = Path(opts.out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise QloomError(f"--out {out}: cannot create the directory ({e.strerror})") from None
    if not out.is_dir():
        raise QloomError(f"--out {out} is not a directory")
    name = opts.name or model.stem
    with _locked(out.resolve(), name):
        return _build_locked(opts, model, out.resolve() / name)


def _build_locked(opts: BuildOptions, model: Path, final: Path) -> BuildReport:
    from rich.console import Console

    from qloom.dataflow import to_dataflow
    from qloom.flow import compile_model, run_integer
    from qloom.fold import estimate_stage
    from qloom.irio import save_graph
    from qloom.report.html import write_html
    from qloom.rtl.top import generate_top
    from qloom.synth import get_device

    console = Console(stderr=True, quiet=opts.quiet)
    say = _Steps(console, opts.quiet)
    name = final.name
    work = final.with_name(f"{name}.partial")
    _owned_or_absent(final, "new build")
    _owned_or_absent(work, "new build's work directory")
    device = get_device(opts.part)
    devices = None
    if opts.devices is not None:  # scale-out: the chain's first part stands for `part`
        from qloom.fold.partition import parse_devices

        devices = parse_devices(opts.devices)
        device = devices[0]
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / MARKER).write_text("a qloom build directory: qloom may replace it\n")
    report = BuildReport(
        model=name,
        input=str(model),
        part=device.name,
        clock_mhz=opts.clock_mhz,
        target_fps=opts.target_fps,
    )
    try:
        say(f"compiling {model}")
        compiled = compile_model(model, opts.input_spec)
        report.input_domain = InputDomain.from_json(compiled.domain.to_json())
        say(f"hardware input: {compiled.domain.describe()}")
        shutil.copy(model, work / "model.onnx")
        save_graph(compiled.imported, work / "graphs" / "1_imported.onnx")
        save_graph(compiled.integer, work / "graphs" / "2_integer.onnx")
        budget = None
        if devices is None:
            folding, how = _folding(opts, compiled.integer, say)
        else:
            folding, how, budget = _folding_across(opts, compiled.integer, devices, say)
        design = to_dataflow(compiled.integer, folding)
        if opts.pnr_part and not opts.board and devices is None:
            _check_pnr_fits(design, opts.pnr_part)
        if opts.runtime_weights:
            design = _with_runtime_weights(design, say)
        if design.runtime_weight_stages() and (devices is not None or opts.board):
            raise QloomError(
                f"run-time weights with {'--devices' if devices is not None else '--board'}: "
                "the scale-out chain and the board tops have no weight stream yet; build "
                "with constant weights or without that option"
            )
        part = None
        if devices is not None:
            from qloom.fold.partition import partition

            def cut(depths):
                return partition(design, devices, opts.links, opts.max_utilization,
                                 opts.clock_mhz, budget, f"the {how} design", depths)  # fmt: skip

            part = cut(None)  # a chain that cannot hold the design fails before simulating
        fifo_depths = images = source = None
        if opts.sim_frames > 0:
            from qloom.data.inputs import load_inputs
            from qloom.sim.design import size_fifos

            data = "random" if opts.data in ("none", None) else opts.data
            inputs = load_inputs(data, compiled.domain, compiled.imported, opts.sim_frames)
            images, source = compiled.hardware_input(inputs.x), inputs.source
            say(f"sizing FIFOs (RTL simulation, {min(8, len(images))} frames)")
            # size_fifos simulates its own instrumented copies of the top (in a temporary
            # directory) with generous glue FIFOs: a different design from the one built,
            # which gets the depths it measured
            fifo_depths = size_fifos(_timing_twin(design), images[:8], quiet=opts.quiet)
        if part is not None:
            if fifo_depths:  # cut again with the glue FIFOs: deep ones can outweigh stages
                part = cut(fifo_depths)
            for line in part.summary().splitlines():
                say(line.strip())
        device_of = {n: g.device for g in (part.segments if part else ()) for n in g.stages}
        save_graph(design.to_graph(), work / "graphs" / "3_dataflow.onnx")
        design.write_folding(work / "folding.json")
        (work / "design.json").write_text(json.dumps(design.to_json(), indent=2, default=str))
        from qloom.config import config_json  # (qloom.config reads BuildOptions from here)

        (work / "build_config.json").write_text(json.dumps(config_json(opts), indent=2) + "\n")
        report.folding = how
        stages = []
        for s in design.stages:
            dev = device_of.get(s.name, device)
            est = {k.lower(): v for k, v in estimate_stage(s, dev).as_dict().items()}
            stages.append(
                StageRow(
                    name=s.name,
                    kind=s.kind,
                    folding=s.folding(),
                    cycles=s.cycles_per_frame(),
                    est=Resources.from_json(est),
                    latency=s.latency_cycles(),
                )
            )
        cpf = design.cycles_per_frame() if part is None else part.cycles_per_frame()
        report.stages = stages
        report.totals = Totals(
            cycles_per_frame=cpf,
            bottleneck=design.bottleneck().name if part is None else part.bottleneck(),
            fps_at_clock=opts.clock_mhz * 1e6 / cpf,
            latency_estimate_cycles=design.latency_estimate(),
            est=_sum(s.est for s in stages),
        )
        if part is not None:  # scale-out: segments/<i>_<part>/ instead of rtl/
            from qloom.deploy import write_driver

            write_driver(design, work / "driver")  # the chain's input and output: the design's
            _scale_out(part, work, report, fifo_depths, images, source, compiled.integer,
                       opts, say)  # fmt: skip
        else:
            # the RTL, generated once: the simulation, Yosys/Vivado and nextpnr all read rtl/
            say("generating the RTL (rtl/)")
            rtl = generate_top(design, work / "rtl", fifo_depths)
            words = 0
            if rtl.weight_port is not None:
                words = _write_weights(design, work / WEIGHTS_FILE, say)
            _count_glue_fifos(rtl, device, report)
            report.rtl = RtlSummary(
                top=rtl.top,
                files=[str(p.relative_to(work)) for p in rtl.sources if work in p.parents],
                weight_words=words,
            )
            from qloom.deploy import write_driver

            write_driver(design, work / "driver")  # host side: DMA byte packing (numpy only)
            from qloom.deploy.vivado_bd import write_deploy  # Xilinx: IP + block-design TCL

            deploy = None
            if rtl.weight_port is None:  # the IP has no weight stream interface yet
                deploy = write_deploy(design, rtl, device, opts.clock_mhz, work / "deploy")
            if deploy is not None:  # the IP description and the block-design scripts
                report.rtl.deployment += sorted(
                    str(p.relative_to(work)) for p in [deploy / "ip" / "component.xml",
                                                       *deploy.glob("bd_*.tcl")]
                )  # fmt: skip
            if images is not None:
                from qloom.sim.shard import simulate_sharded

                shards = opts.sim_shards
                ray = opts.ray_address if shards > 1 else None
                where = f" ({shards} frame shards{' as Ray tasks' if ray else ''})"
                say(f"simulating {source} in Verilator{where if shards > 1 else ''}")
                res = simulate_sharded(
                    design, images, shards, rtl=rtl, quiet=opts.quiet, ray_address=ray
                )
                reference = run_integer(compiled.integer, images)
                against, differ = "integer model", None
                if design.departs_from_graph:
                    # truth tables with filled don't-cares compute their own function: the
                    # RTL must equal the design's folded model (the tables it holds)
                    own = design.execute(images)
                    differ = _compare(own, reference, len(images))
                    reference, against = own, "design's don't-care tables"
                    say(f"don't-care tables: the RTL is checked against the design's own "
                        f"tables, which differ from the integer model on {differ} of "
                        f"{len(images)} frames")  # fmt: skip
                mismatches = (
                    _compare(res.outputs, reference, len(images)) if res.ok else len(images)
                )
                report.sim = SimSummary(
                    frames=len(images),
                    inputs=source,
                    mismatches=mismatches,
                    cycles_per_frame=res.cycles_per_frame,
                    latency_cycles=res.latency,
                    total_cycles=res.total_cycles,
                    fifo_depths=res.fifo_depths,
                    problems=res.problems + res.diagnosis,
                    verdict="yes" if res.ok and mismatches == 0 else "NO",
                    reference=against,
                    differ_from_integer=differ,
                )
                sim_stage_latency(report, res)
                (work / "sim").mkdir(exist_ok=True)
                (work / "sim" / "result.json").write_text(
                    json.dumps(report.sim.to_json(), indent=2)
                )
                if not report.sim.passed:
                    raise BuildError(
                        f"RTL simulation: {mismatches} of {len(images)} frames differ "
                        f"from the {against}; {'; '.join(res.problems[:3])}"
                    )
            if opts.synth:
                _synthesize(design, device, rtl, work, report, say, opts.ray_address)
            if opts.pnr_part and not opts.board:
                _place_and_route(rtl, opts, work, report, say)
            if opts.board:
                _board(design, rtl, opts, work, report, say)
    except BaseException as e:
        (work / "FAILED.txt").write_text(f"{type(e).__name__}: {e}\n")
        (work / "report.json").write_text(report.dumps())
        say.write(work, f"FAILED: {type(e).__name__}: {e}")
        raise
    if report.partition is None:  # a chain's utilization is per device (its segments)
        _utilization(report, device)
        _warn_over(report.totals.utilization if report.totals else {}, device.name, say)
    say("writing report.json and report.html")
    (work / "report.json").write_text(report.dumps())
    write_html(report, work / "report.html")
    say.write(work, "done")
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    if not opts.quiet:
        console.print(f"done: {final}/report.html")
    report.dir = final
    return report


def _count_glue_fifos(rtl, device, report: BuildReport) -> None:
    """The glue FIFOs of the generated top into the totals (the stage rows do not hold them:
    a frame-deep FIFO can be the largest memory of a design)."""
    from qloom.fold.estimate import estimate_glue_fifos

    glue = [f for f in rtl.fifos if f.glue and f.depth > 0]
    est = estimate_glue_fifos(glue, device).as_dict()
    report.totals.fifos = Resources.from_json({k.lower(): v for k, v in est.items()})
    report.totals.fifo_count = len(glue)


def _warn_over(utilization: dict[str, float], part: str, say) -> None:
    """Say so when the accelerator (glue FIFOs included) needs more than the part has: the
    folding and the cuts fit the stages within the cap, but FIFO sizing can add more."""
    over = {k: v for k, v in utilization.items() if v > 100}
    if over:
        used = ", ".join(f"{k} {v:.0f} %" for k, v in over.items())
        say.warn(f"the accelerator does not fit {part}: {used} of the part with its glue "
                 "FIFOs; fold for a lower --target-fps or use a larger part")  # fmt: skip


def _utilization(report: BuildReport, device) -> None:
    """The accelerator (stages + glue FIFOs) in percent of the part, per resource."""
    t = report.totals
    if t is None:
        return
    t.utilization = _percent(t.accelerator, device)


def _percent(used: Resources, device) -> dict[str, float]:
    """`used` in percent of `device`, per resource the part has: LUT, FF, BRAM, DSP, and URAM
    where the design uses any (run-time weights in UltraRAM)."""
    cap = device.capacity()
    kinds = ("LUT", "FF", "BRAM", "DSP") + (("URAM",) if used.uram else ())
    counts = used.to_json()
    return {k: round(100.0 * counts.get(k.lower(), 0) / cap[k], 2) for k in kinds if cap.get(k)}


def _sum(items) -> Resources:
    total = Resources(0, 0, 0, 0)
    for r in items:
        total = total + r
    return total


def _memory_files(rtl) -> dict[str, Path]:
    """The memory files of generated RTL by their path relative to its directory (mem/x.hex,
    as the top names them): the synthesis tools stage them at the same relative paths."""
    files = [p for d in rtl.memories.values() for p in d.values()]
    return dict(sorted((p.relative_to(rtl.run_dir).as_posix(), p) for p in files))


def _synthesize(design, device, rtl, work: Path, report: BuildReport, say,
                ray_address: str | None = None) -> None:  # fmt: skip
    """Per-stage out-of-context Yosys synthesis (cached by content; in parallel, on Ray
    with `ray_address`) and a Vivado script for the generated top in rtl/."""
    from qloom.fold.synth import synth_stages
    from qloom.synth import write_vivado_project

    where = f" on Ray ({ray_address})" if ray_address else ""
    say(f"synthesizing {len(design.stages)} stages for {device.name} with Yosys{where}")
    results = synth_stages([(s, device) for s in design.stages], ray_address=ray_address)
    for st, r in zip(report.stages, results, strict=True):
        st.synth = Resources(lut=r.luts, ff=r.ffs, bram=r.bram, dsp=r.dsp, uram=r.uram)
    report.totals.synth = _sum(st.synth for st in report.stages)
    (work / "synth").mkdir(exist_ok=True)
    (work / "synth" / "yosys_stages.json").write_text(
        json.dumps([{"name": s.name, **s.synth.to_json()} for s in report.stages], indent=2)
    )
    write_vivado_project(
        work / "synth" / "vivado",
        sorted(rtl.sources),
        rtl.top,
        device,
        {},
        _memory_files(rtl),
        freq_mhz=report.clock_mhz,
    )


def _check_pnr_fits(design, part: str) -> None:
    """Refuse a --pnr part the design's estimate already overfills, before simulation and the
    synthesis for it (which on big designs take long before nextpnr would fail to place)."""
    from qloom.fold import check_fits

    check_fits(design, part, 1.0, f"--pnr {part}: the design")


def _place_and_route(rtl, opts: BuildOptions, work: Path, report: BuildReport, say) -> None:
    """nextpnr on the generated top in rtl/ (its memory files staged at their paths)."""
    from qloom.synth import get_device, place_and_route

    dev = get_device(opts.pnr_part)
    best = None
    for seed in range(1, opts.pnr_seeds + 1):  # placement is seeded: a near miss may pass
        say(f"place and route on {dev.name} with nextpnr (target {opts.clock_mhz:g} MHz, "
            f"seed {seed} of {opts.pnr_seeds})")  # fmt: skip
        res = place_and_route(
            rtl.sources,
            rtl.top,
            {},
            dev,
            work / "synth" / ("pnr" if seed == 1 else f"pnr-seed{seed}"),
            _memory_files(rtl),
            opts.clock_mhz,
            seed=seed,
            quiet=opts.quiet,
        )
        if best is None or (res.fmax_mhz or 0) > (best.fmax_mhz or 0):
            best = res
        if res.timing_met:
            break
    _record_pnr(report, dev.name, best, work)


def _record_pnr(report: BuildReport, part: str, res, work: Path) -> None:
    """A place-and-route result (accelerator or board top) into the report: Fmax, FPS there,
    timing, utilization, the bitstream relative to the build directory."""
    t = report.totals
    t.fmax_mhz = res.fmax_mhz
    t.fps_at_fmax = res.fmax_mhz * 1e6 / t.cycles_per_frame if res.fmax_mhz else None
    report.pnr = PnrSummary(
        part=part,
        fmax_mhz=res.fmax_mhz,
        timing_met=res.timing_met,
        utilization=res.utilization,
        bitstream=str(Path(res.bitstream).relative_to(work)) if res.bitstream else None,
    )


def _board(design, rtl, opts: BuildOptions, work: Path, report: BuildReport, say) -> None:
    """The board top in board/ (qloom.deploy.board: PLL to --clock-mhz, UART at --baud, the
    board's pins); with --pnr it is what gets placed and routed (its report becomes the
    build's pnr entry, board/pnr.json holds the details). A missed clock does not fail the
    build: it is said loudly, here and in the summary."""
    from qloom.deploy import io_description
    from qloom.deploy.board import place_and_route_board, write_board
    from qloom.deploy.client import frame_bytes

    if len(rtl.out_ports) != 1:
        n = len(rtl.out_ports)
        raise BuildError(f"--board: the board top carries one output stream, {rtl.top} has {n}")
    frame_in, _ = frame_bytes(io_description(design))
    board = write_board(
        rtl.top, rtl.in_width, rtl.out_widths[0], work / "board", opts.board, opts.clock_mhz,
        opts.baud, part=opts.pnr_part or None, frame_bytes=frame_in, window=2,
    )  # fmt: skip
    report.rtl.deployment += [
        str(p.relative_to(work.resolve())) for p in (board.top_file, board.lpf, board.info_file)
    ]
    say(
        f"board top for the {board.board} ({board.part}): PLL {board.clock_mhz:.4f} MHz, "
        f"{board.baud} baud, {board.rx_fifo_bytes}-byte receive FIFO (board/)"
    )
    if opts.pnr_part is None:
        return
    say(f"place and route of the board top on {board.part} (target {board.clock_mhz:.4g} MHz)")
    res = place_and_route_board(board, rtl.sources, _memory_files(rtl), work / "board" / "pnr")
    pnr_json = json.dumps(res.to_json(work / "board"), indent=2)
    (work / "board" / "pnr.json").write_text(pnr_json + "\n")
    say(res.timing_line())
    _record_pnr(report, board.part, res, work)


# -- scale-out: one network across several devices (--devices, qloom.fold.partition) ----------
def _scale_out(part, work: Path, report: BuildReport, fifo_depths, images, source, integer,
               opts: BuildOptions, say) -> None:  # fmt: skip
    """The segments of a multi-device build: per segment its own top in
    segments/<i>_<part>/rtl/ (AXI-Stream in and out on the cut streams), design.json and
    estimate (with --synth its stages' Yosys totals for its own part and a Vivado script);
    the whole chain simulated through link models (qloom.sim.chain) and every segment alone;
    the report's `partition` section."""
    from qloom.fold.estimate import estimate_glue_fifos
    from qloom.report.model import LinkRow, SegmentRow
    from qloom.rtl.top import generate_top
    from qloom.sim.chain import segment_fifo_depths

    rows, tops = [], []
    for seg in part.segments:
        d = work / "segments" / seg.dirname
        say(f"generating the RTL of segment {seg.index} ({seg.device.name}) in {d.name}/rtl/")
        rtl = generate_top(seg.design, d / "rtl", segment_fifo_depths(seg.design, fifo_depths))
        (d / "design.json").write_text(json.dumps(seg.design.to_json(), indent=2, default=str))
        tops.append(rtl)
        glue = [f for f in rtl.fifos if f.glue and f.depth > 0]
        fifos = _as_report(estimate_glue_fifos(glue, seg.device))
        rows.append(
            SegmentRow(
                index=seg.index,
                part=seg.device.name,
                dir=f"segments/{seg.dirname}",
                stages=list(seg.stages),
                input_stream=seg.design.input_stream,
                output_streams=list(dict.fromkeys(seg.design.output_streams.values())),
                cycles_per_frame=seg.cycles_per_frame,
                est=_as_report(seg.estimate),
                utilization={},
                load=round(seg.load, 4),
                fifos=fifos,
                fifo_count=len(glue),
                rtl_top=rtl.top,
            )
        )
    links = [
        LinkRow(
            index=lk.index,
            name=lk.model.name,
            gbps=lk.model.gbps,
            latency_cycles=lk.latency_cycles,
            stream=lk.stream,
            after_stage=lk.after_stage,
            bits_per_frame=lk.bits_per_frame,
            bits_per_cycle=round(float(lk.bits_per_cycle), 6),
            cycles_per_frame=lk.cycles_per_frame,
            beat_delay_cycles=lk.beat_delay,
        )
        for lk in part.links
    ]
    report.partition = PartitionSummary(
        rows, links, part.cycles_per_frame(), part.bottleneck(), opts.max_utilization
    )
    report.totals.fifos = _sum(r.fifos for r in rows)
    report.totals.fifo_count = sum(r.fifo_count for r in rows)
    if images is not None:
        _simulate_chain(part, tops, work, report, images, source, integer, opts, say)
    if opts.synth:
        _synthesize_segments(part, tops, work, report, say, opts.ray_address)
    for row, seg in zip(rows, part.segments, strict=True):
        row.utilization = _percent((row.synth or row.est) + row.fifos, seg.device)
        _warn_over(row.utilization, f"segment {seg.index}'s {seg.device.name}", say)


def _as_report(r) -> Resources:
    """A qloom.fold estimate (floats) as the report's integer counts."""
    return Resources.from_json({k.lower(): v for k, v in r.as_dict().items()})


def sim_stage_latency(report: BuildReport, res) -> None:
    """The first simulated frame through each stage and glue FIFO (a `DesignSimResult`'s
    `stage_timing`) into the report: each stage row's `latency_simulated` (first input beat ..
    last output beat, as its formula counts) and `first_beat_simulated`, and the sim section's
    `latency_path` (glue FIFOs included) and `output_span`."""
    rows = {r.name: r for r in report.stages}
    for t in res.stage_timing:
        if not t.glue and t.name in rows:
            rows[t.name].latency_simulated = t.latency
            rows[t.name].first_beat_simulated = t.first_beat
    if report.sim is not None:
        report.sim.latency_path = list(res.stage_timing)
        report.sim.output_span = res.output_span


def _simulate_chain(part, tops, work: Path, report: BuildReport, images, source, integer,
                    opts: BuildOptions, say) -> None:  # fmt: skip
    """The chain in Verilator (segments + link models, outputs against the integer model),
    then each segment top alone (its output stream against the model's, its own pace)."""
    from qloom.flow import run_integer
    from qloom.sim.chain import simulate_chain, simulate_segments

    n = len(part.segments)
    say(f"simulating {source} through {n} segments and {n - 1} link models in Verilator")
    res = simulate_chain(part, images, rtl=tops, quiet=opts.quiet)
    reference = run_integer(integer, images)
    mismatches = _compare(res.outputs, reference, len(images)) if res.ok else len(images)
    mismatches = max([mismatches, res.mismatches] + [lk.mismatches for lk in res.links])
    say(f"simulating each of the {n} segment tops alone")
    alone = simulate_segments(part, images, rtl=tops, quiet=opts.quiet)
    problems = list(res.problems)
    for seg, row in zip(alone, report.partition.devices, strict=True):
        row.sim = seg.to_json()
        problems += [f"segment {seg.index}: {p}" for p in seg.problems]
        if seg.mismatches:
            problems.append(f"segment {seg.index} alone: {seg.mismatches} frames differ")
        (work / row.dir / "sim").mkdir(parents=True, exist_ok=True)
        (work / row.dir / "sim" / "result.json").write_text(json.dumps(row.sim, indent=2))
    for lk, row in zip(res.links, report.partition.links, strict=True):
        row.sim = {
            "cycles_per_frame": lk.cycles_per_frame,
            "beat_delay_min": lk.latency_min,
            "mismatches": lk.mismatches,
        }
    bad_alone = any(s.mismatches or not s.ok for s in alone)
    report.sim = SimSummary(
        frames=len(images),
        inputs=source,
        mismatches=mismatches,
        cycles_per_frame=res.cycles_per_frame,
        latency_cycles=res.latency,
        total_cycles=res.total_cycles,
        fifo_depths={f.stream: f.depth for t in tops for f in t.fifos},
        problems=problems,
        verdict="yes" if res.ok and mismatches == 0 and not bad_alone else "NO",
    )
    (work / "sim").mkdir(exist_ok=True)
    (work / "sim" / "result.json").write_text(json.dumps(report.sim.to_json(), indent=2))
    if not report.sim.passed:
        raise BuildError(
            f"RTL simulation of the {n}-device chain: {mismatches} of {len(images)} frames "
            f"differ from the integer model; {'; '.join(problems[:3])}"
        )


def _synthesize_segments(part, tops, work: Path, report: BuildReport, say,
                         ray_address: str | None = None) -> None:  # fmt: skip
    """Per-stage out-of-context Yosys for each stage's own part (cached by content; every
    segment's stages in parallel, on Ray with `ray_address`), the totals per segment, and a
    Vivado script per segment top."""
    from qloom.fold.synth import synth_stages
    from qloom.synth import write_vivado_project

    rows = {r.name: r for r in report.stages}
    jobs = [(s, seg.device) for seg in part.segments for s in seg.design.stages]
    where = f" on Ray ({ray_address})" if ray_address else ""
    say(f"synthesizing {len(jobs)} stages of {len(part.segments)} segments with Yosys{where}")
    for (s, _), r in zip(jobs, synth_stages(jobs, ray_address=ray_address), strict=True):
        rows[s.name].synth = Resources(lut=r.luts, ff=r.ffs, bram=r.bram, dsp=r.dsp, uram=r.uram)
    for seg, rtl, srow in zip(part.segments, tops, report.partition.devices, strict=True):
        srow.synth = _sum(rows[n].synth for n in seg.stages)
        d = work / srow.dir / "synth"
        d.mkdir(parents=True, exist_ok=True)
        (d / "yosys_stages.json").write_text(
            json.dumps([{"name": n, **rows[n].synth.to_json()} for n in seg.stages], indent=2)
        )
        write_vivado_project(d / "vivado", sorted(rtl.sources), rtl.top, seg.device, {},
                             _memory_files(rtl), freq_mhz=report.clock_mhz)  # fmt: skip
    report.totals.synth = _sum(st.synth for st in report.stages)
