"""ImageNet-style ResNet-18 (224 x 224, 1000 classes; untrained): compiled, folded for one
Alveo U250, cut across several ZCU104s (xczu7ev) and proved bit-exact in a chained Verilator
simulation through link models (issue 17; the streaming ResNet of Baskin et al.).

    .venv/bin/python bench/resnet18.py [--models resnet18-w2a2,resnet18-w4a4] [--in-size N]
        [--classes N]
        [--u250-fps 100] [--target-fps 100] [--clock-mhz 100] [--devices 4xxczu7ev]
        [--fallback-devices 4xxczu9eg] [--link aurora-10g] [--max-utilization 0.9]
        [--frames 2] [--compare 5] [--seed 0]
        [--synth] [--synth-timeout 300] [--synth-budget 1800] [--synth-workers 1]
        [--out-dir DIR] [--quiet] [--runtime-weights] [--single] [--skip qonnx,chain]
        [--reuse-builds]

Per model (each step announced with the elapsed time unless --quiet):
  1. `qloom export` of the untrained zoo model at `--in-size` x `--in-size` with `--classes`
     classes (default: the topology's; ResNet-18 in qloom.train.zoo: 7x7 stride-2 stem conv 64
     -> BN -> act -> 3x3 stride-2 max pool with padding 1 -> 2 basic blocks each of 64,
     128/2, 256/2, 512/2 (1x1 stride-2 shortcuts) -> global average pool -> FC 1000, at
     224 x 224; batch norm statistics from one random batch; seed `--seed`), reused when
     present;
  2. compile (QONNX -> integer graph, timed) and the integer executor against qonnx's
     execute_onnx on `--compare` random inputs (outputs equal bit for bit?);
  3. the folding solver for `--u250-fps` at `--clock-mhz` on one xcu250 (fits at 80 %, the
     estimate) and the fastest folding the flow allows (the stage that bounds it);
  4. `qloom build --devices ... --link ...` at `--target-fps` (Model.build with scale-out:
     folding, partition over the fewest of `--devices` at `--max-utilization`, FIFO sizing,
     segment RTL, the chained Verilator simulation of `--frames` random frames through the
     link models checked against the integer executor, every segment alone): per device the
     estimated LUT / FF / BRAM18 / DSP (constant weights: no URAM), per link its cycles per
     frame, the chain's cycles per frame measured
     against the formula and its latency (links included); when the design does not fit
     `--devices`, the same across `--fallback-devices` (the reason recorded);
  5. with --synth: per-stage out-of-context Yosys (each stage for its segment's part) as Ray
     tasks (an embedded Ray with `--synth-workers` CPUs; qloom.fold.synth.synth_stage, cached
     by content), each stage limited to `--synth-timeout` s and the whole step to
     `--synth-budget` s: which stages finished, their totals per segment and in all, the
     wall time. With --reuse-builds step 4 reads the report of a finished build of the same
     options under --out-dir (no new build or simulation; its recorded figures and wall time).
With --runtime-weights (issue 17: every MVAU loads its weights after reset over the top's
32-bit weight stream, so the solver may put them in UltraRAM, URAM288 counted), step 3 folds
that design and counts its weight words (one per cycle at best: the load), and step 4 is an
estimate only (the multi-device build has no weight stream yet): the solver's folding across
devices cut over the fewest of `--devices` (else `--fallback-devices`). --single (where step
3 fits) builds on one xcu250 as `qloom build --part xcu250 [--runtime-weights]` does and
simulates `--frames` random frames in Verilator, the weights streamed in first, against the
integer executor (the top takes no frame before the weights are loaded, so latency and
cycles per frame are measured from the first frame it takes).
--per-frame simulates that build again and records each frame's latency and when the load
ended. --skip leaves out the qonnx comparison of step 2 and / or the chain (steps 4 and 5).
Prints a markdown table, writes bench/results/resnet18.json (models and builds under
--out-dir, default build/bench-resnet18/). Not a test: no timing thresholds; exit 1 when an
output differs (RTL vs integer; integer vs qonnx beyond float rounding where, at some
quantizer, qloom's own rounding is off the exact value more often than qonnx's: qonnx's
float32 rounding at a threshold is not a failure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import load_average, say

ROOT = Path(__file__).resolve().parents[1]
STEPS = 5


def _res(r) -> dict[str, int]:
    """A qloom.fold Resources (floats) as integer counts."""
    return {k.lower(): round(v) for k, v in r.as_dict().items()}


def _export(args, name: str, out_dir: Path) -> tuple[Path, float | None]:
    from qloom.train.export import export_untrained
    from qloom.train.zoo import TOPOLOGIES, parse_model_name

    topo = TOPOLOGIES[parse_model_name(name).topology]
    size = args.in_size or topo.in_size
    classes = args.classes or topo.classes
    # the file's stem names the RTL top: the topology's own shape keeps the short name
    shape = "" if (size, classes) == (topo.in_size, topo.classes) else f"-{size}px-{classes}c"
    path = out_dir / f"{name}{shape}-s{args.seed}.onnx"
    if path.exists():
        return path, None
    t = time.monotonic()
    export_untrained(name, path, 3, size, classes, args.seed)
    return path, round(time.monotonic() - t, 1)


def _u250(args, compiled) -> dict[str, Any]:
    """The solver on one xcu250 at --u250-fps, and the fastest folding (its bound)."""
    from qloom.errors import QloomError
    from qloom.fold import fold_design
    from qloom.synth import get_device

    dev = get_device("xcu250")
    out: dict[str, Any] = {"target_fps": args.u250_fps, "runtime_weights": args.runtime_weights}
    # --runtime-weights: every MVAU loads its weights after reset, so the solver may put them
    # in UltraRAM (qloom build --runtime-weights folds the same design)
    source = _runtime_design(compiled.integer) if args.runtime_weights else compiled.integer
    t = time.monotonic()
    try:
        r = fold_design(source, args.u250_fps, args.clock_mhz, dev)
        tot = _res(r.estimate["total"])
        out.update(
            fits=True,
            cycles_per_frame=r.design.cycles_per_frame(),
            fps=round(r.fps, 1),
            bottleneck=r.design.bottleneck().name,
            estimate=tot,
            utilization_percent=_percent(r.estimate["total"], dev),
            weight_words=len(r.design.weight_words()),
        )
    except QloomError as e:  # does not fit / not reachable
        out.update(fits=False, error=str(e))
    out["solver_s"] = round(time.monotonic() - t, 1)
    try:  # far beyond any stage: the error names the bound
        fold_design(source, 1e9, args.clock_mhz, dev)
    except QloomError as e:
        out["fastest"] = str(e)
    return out


def _timed_build(opts, **on_refusal) -> tuple[Any, float, dict[str, Any] | None]:
    """qloom.build.build(opts), timed: (report, wall seconds, None), or (None, wall seconds,
    the refusal as a result row with `on_refusal`'s fields) when the build says no."""
    from qloom.build import build
    from qloom.errors import QloomError

    t = time.monotonic()
    try:
        report = build(opts)
    except QloomError as e:
        wall = round(time.monotonic() - t, 1)
        return None, wall, _refusal(e, wall, **on_refusal)
    return report, round(time.monotonic() - t, 1), None


def _refusal(e: Exception, wall: float, **fields) -> dict[str, Any]:
    """A result row for a step qloom refused (`fields` say what was asked)."""
    return {"ok": False, **fields, "error_type": type(e).__name__, "error": str(e),
            "wall_s": wall}  # fmt: skip


def _build(args, name: str, onnx: Path, out_dir: Path, devices: str) -> tuple[dict[str, Any], Any]:
    from qloom.build import BuildOptions

    opts = BuildOptions(
        model=onnx,
        out_dir=out_dir,
        name=f"{name}-{args.target_fps:g}fps-{devices.replace(',', '_')}",
        clock_mhz=args.clock_mhz,
        target_fps=args.target_fps,
        max_utilization=args.max_utilization,
        data="random",
        sim_frames=args.frames,
        devices=devices,
        links=args.link,
        quiet=True,
    )
    prior = out_dir / opts.name
    reused = args.reuse_builds and (prior / "report.json").is_file()
    if reused:  # a finished build of these options: its report, not a new build
        from qloom.report.model import BuildReport

        report, refused = BuildReport.read(prior), None
        wall = json.loads((prior / "time_per_step.json").read_text()).get("total_s")
    else:
        report, wall, refused = _timed_build(opts, devices_given=devices)
    if refused:
        return refused, None
    steps = json.loads((report.dir / "time_per_step.json").read_text())
    p, sim, tot = report.partition, report.sim, report.totals
    rows = []
    for row in p.devices:
        rows.append(
            {
                "index": row.index,
                "part": row.part,
                "stages": len(row.stages),
                "first_stage": row.stages[0],
                "last_stage": row.stages[-1],
                "estimate": row.est.to_json(),
                "glue_fifos": row.fifos.to_json() if row.fifos else None,
                "uram": row.est.uram,
                "utilization_percent": row.utilization,
                "load_of_cap": row.load,
                "cycles_per_frame": row.cycles_per_frame,
                "sim_alone": row.sim,
            }
        )
    links = [lk.to_json() for lk in p.links]
    link_delay = sum(lk.beat_delay_cycles for lk in p.links)
    return {
        "ok": True,
        "devices_given": devices,
        "dir": str(report.dir),
        "devices": rows,
        "links": links,
        "cycles_per_frame_formula": p.cycles_per_frame,
        "bottleneck": p.bottleneck,
        "fps_at_clock": round(args.clock_mhz * 1e6 / p.cycles_per_frame, 2),
        "latency_estimate_cycles_stages": tot.latency_estimate_cycles,
        "latency_estimate_cycles_with_links": tot.latency_estimate_cycles + link_delay,
        "frames": sim.frames,
        "mismatches": sim.mismatches,
        "cycles_per_frame_measured": sim.cycles_per_frame,
        "latency_cycles_measured": sim.latency_cycles,
        "total_cycles": sim.total_cycles,
        "verdict": sim.verdict,
        "problems": sim.problems,
        "time_per_step": steps,
        "wall_s": wall,
        "reused": reused,
    }, report


def _percent(r, device) -> dict[str, float]:
    """A qloom.fold estimate in percent of `device`, per resource it uses (URAM included)."""
    from qloom.fold.estimate import utilization

    return {k: round(100 * v, 1) for k, v in utilization(r, device).items()}


def _runtime_design(integer):
    """`integer`'s minimal design with every MVAU's weights loaded at run time."""
    from qloom.build import _runtime_design as runtime_design

    return runtime_design(integer)


def _build_single(args, name: str, onnx: Path, out_dir: Path) -> dict[str, Any]:
    """`qloom build --part xcu250 --target-fps --u250-fps [--runtime-weights]` (Model.build's
    path): the solver's folding on one Alveo U250 at 80 %, the RTL, and the Verilator
    simulation of --frames random frames (after the weight stream, with --runtime-weights)
    checked against the integer executor."""
    from qloom.build import BuildOptions

    rt = "-runtime" if args.runtime_weights else ""
    opts = BuildOptions(
        model=onnx,
        out_dir=out_dir,
        name=f"{name}-{args.u250_fps:g}fps-xcu250{rt}",
        part="xcu250",
        clock_mhz=args.clock_mhz,
        target_fps=args.u250_fps,
        runtime_weights=args.runtime_weights,
        data="random",
        sim_frames=args.frames,
        quiet=True,
    )
    report, wall, refused = _timed_build(opts)
    if refused:
        return refused
    tot, sim = report.totals, report.sim
    words = report.dir / "weights.bin"
    return {
        "ok": True,
        "dir": str(report.dir),
        "part": report.part,
        "runtime_weights": args.runtime_weights,
        "stages": len(report.stages),
        "estimate_stages": tot.est.to_json(),
        "estimate_glue_fifos": tot.fifos.to_json() if tot.fifos else None,
        "estimate_accelerator": tot.accelerator.to_json(),
        "utilization_percent": tot.utilization,
        "uram_stages": {s.name: s.est.uram for s in report.stages if s.est.uram},
        # the weight stream: uint32 words, one per cycle at best: the load's cycles
        "weight_words": words.stat().st_size // 4 if words.exists() else 0,
        "cycles_per_frame_formula": tot.cycles_per_frame,
        "bottleneck": tot.bottleneck,
        "fps_at_clock": round(tot.fps_at_clock, 2),
        "latency_estimate_cycles": tot.latency_estimate_cycles,
        "frames": sim.frames if sim else 0,
        "mismatches": sim.mismatches if sim else None,
        "cycles_per_frame_measured": sim.cycles_per_frame if sim else None,
        # first frame: its first input beat .. its last output beat (with run-time weights the
        # top takes it only once the weights are loaded)
        "latency_cycles_measured": sim.latency_cycles if sim else None,
        "total_cycles": sim.total_cycles if sim else None,
        "verdict": sim.verdict if sim else None,
        "problems": sim.problems if sim else [],
        "time_per_step": json.loads((report.dir / "time_per_step.json").read_text()),
        "wall_s": wall,
    }


def per_frame(build_dir: Path, frames: int) -> dict[str, Any]:
    """The built design (its folding and glue FIFO depths) simulated again for `frames` random
    frames, frame by frame: when each frame's first input beat is taken and its last output
    beat leaves, when the weight stream's last word is taken, and the frames equal to the
    integer executor's. The build's report keeps only the first frame's latency and the median
    interval; with run-time weights the frames that enter during the load wait inside the
    pipeline, so these show where the load ends and what the frames behind it see."""
    from qloom.data.inputs import load_inputs
    from qloom.dataflow import to_dataflow
    from qloom.flow import compile_model, run_integer
    from qloom.report.model import BuildReport
    from qloom.sim.design import simulate

    rep = BuildReport.read(build_dir)
    c = compile_model(build_dir / "model.onnx")
    design = to_dataflow(c.integer, json.loads((build_dir / "folding.json").read_text()))
    images = c.hardware_input(load_inputs("random", c.domain, c.imported, frames).x)
    t = time.monotonic()
    res = simulate(design, images, fifo_depths=rep.sim.fifo_depths, quiet=True,
                   time_stages=False)  # fmt: skip
    wall = time.monotonic() - t
    want = run_integer(c.integer, images)
    equal = sum(
        all(np.array_equal(np.asarray(res.outputs[n])[i], np.asarray(want[n])[i])
            for n in c.integer.outputs)
        for i in range(frames)
    )  # fmt: skip
    ins, ends = res.raw.in_cycles[0], res.frame_end_cycles
    beats = len(ins) // frames
    first = [ins[i * beats] for i in range(frames)]
    weights = res.raw.in_cycles[1] if len(res.raw.in_cycles) > 1 else []
    return {
        "ok": res.ok,
        "frames": frames,
        "frames_equal": int(equal),
        "weight_words": len(weights),
        "weights_last_word_cycle": weights[-1] if weights else None,
        "first_input_beat": first,
        "frame_end": ends,
        "latency_per_frame": [e - f + 1 for e, f in zip(ends, first, strict=True)],
        "intervals": [b - a for a, b in pairwise(ends)],
        "total_cycles": res.total_cycles,
        "sim_wall_s": round(wall, 1),
    }


def _partition_estimate(args, compiled, devices: str) -> dict[str, Any]:
    """--runtime-weights: the chain as estimates only (the multi-device build has no weight
    stream yet): the solver's folding across devices (as `qloom build --devices` folds) of
    the design with every MVAU's weights loaded at run time, cut over the fewest of
    `devices` at --max-utilization, without glue FIFOs (they are sized by simulation)."""
    import math

    from qloom.errors import QloomError
    from qloom.fold import fold_design
    from qloom.fold.partition import parse_devices, partition

    devs = parse_devices(devices)
    t = time.monotonic()
    try:
        res = fold_design(_runtime_design(compiled.integer), args.target_fps, args.clock_mhz,
                          devs[0], math.inf, (1.0,))  # fmt: skip
        part = partition(res.design, devs, args.link, args.max_utilization, args.clock_mhz,
                         res.budget_cycles, "the run-time weight design")  # fmt: skip
    except QloomError as e:
        return _refusal(e, round(time.monotonic() - t, 1), devices_given=devices)
    rows = [
        {
            "index": g.index,
            "part": g.device.name,
            "stages": len(g.stages),
            "first_stage": g.stages[0],
            "last_stage": g.stages[-1],
            "estimate": _res(g.estimate),
            "utilization_percent": _percent(g.estimate, g.device),
            "load_of_cap": round(g.load, 4),
            "cycles_per_frame": g.cycles_per_frame,
        }
        for g in part.segments
    ]
    return {
        "ok": True,
        "estimate_only": True,
        "devices_given": devices,
        "devices": rows,
        "links": [lk.cycles_per_frame for lk in part.links],
        "cycles_per_frame_formula": part.cycles_per_frame(),
        "bottleneck": part.bottleneck(),
        "weight_words": len(res.design.weight_words()),
        "wall_s": round(time.monotonic() - t, 1),
    }


def _synth(args, report, t0: float) -> dict[str, Any]:
    """Per-stage Yosys as Ray tasks (qloom.fold.synth.synth_stage, as synth_stages runs it),
    each stage under --synth-timeout, the whole under --synth-budget; what finished."""
    import ray

    from qloom.dataflow import to_dataflow
    from qloom.flow import compile_model
    from qloom.fold.synth import synth_stage

    folding = json.loads((report.dir / "folding.json").read_text())
    design = to_dataflow(compile_model(report.dir / "model.onnx").integer, folding)
    part_of = {n: row.part for row in report.partition.devices for n in row.stages}
    seg_of = {n: row.index for row in report.partition.devices for n in row.stages}
    jobs = [(s, part_of[s.name]) for s in design.stages]
    t = time.monotonic()
    ray.init(address="local", num_cpus=args.synth_workers, include_dashboard=False,
             log_to_driver=False, logging_level="ERROR")  # fmt: skip
    task = ray.remote(num_cpus=1, max_retries=0)(synth_stage)
    # the smallest stages first, so that the budget covers as many as possible
    order = sorted(range(len(jobs)), key=lambda i: _res_key(report, jobs[i][0].name))
    refs = {task.remote(jobs[i][0], jobs[i][1], timeout=args.synth_timeout): i for i in order}
    done: dict[int, Any] = {}
    failed: dict[int, str] = {}
    pending = list(refs)
    deadline = t + args.synth_budget
    while pending and time.monotonic() < deadline:
        ready, pending = ray.wait(pending, num_returns=1, timeout=deadline - time.monotonic())
        for ref in ready:
            i = refs[ref]
            try:
                done[i] = ray.get(ref)
            except Exception as e:  # a timeout or a Yosys error: reported, not fatal
                failed[i] = str(e).strip().splitlines()[-1][:200]
            say(args.quiet, t0, f"   Yosys {len(done)} done, {len(failed)} failed, "
                 f"{len(pending)} left: {jobs[i][0].name}")  # fmt: skip
    for ref in pending:
        ray.cancel(ref, force=True)
    ray.shutdown()
    wall = round(time.monotonic() - t, 1)
    stages = []
    per_seg: dict[int, dict[str, int]] = {}
    for i, (s, part) in enumerate(jobs):
        row: dict[str, Any] = {"name": s.name, "kind": s.kind, "part": part}
        if i in done:
            r = done[i]
            row.update(lut=r.luts, ff=r.ffs, bram=r.bram, dsp=r.dsp, uram=r.uram,
                       yosys_s=r.seconds, cached=r.cached)  # fmt: skip
            seg = per_seg.setdefault(seg_of[s.name], {"lut": 0, "ff": 0, "bram": 0, "dsp": 0,
                                                      "uram": 0, "stages": 0})  # fmt: skip
            for k in ("lut", "ff", "bram", "dsp", "uram"):
                seg[k] += row[k]
            seg["stages"] += 1
        else:
            row["status"] = failed.get(i, "not finished within --synth-budget")
        stages.append(row)
    total = {k: sum(v[k] for v in per_seg.values()) for k in ("lut", "ff", "bram", "dsp", "uram")}
    return {
        "workers": args.synth_workers,
        "timeout_per_stage_s": args.synth_timeout,
        "budget_s": args.synth_budget,
        "wall_s": wall,
        "finished": len(done),
        "failed": len(failed),
        "not_finished": len(jobs) - len(done) - len(failed),
        "stages_total": len(jobs),
        "per_segment_finished": per_seg,
        "total_finished": total,
        "load_average_end": load_average(),
        "stages": stages,
    }


def _res_key(report, name: str) -> int:
    row = next(r for r in report.stages if r.name == name)
    return row.est.lut + 100 * row.est.bram


def _run_model(args, name: str, out_dir: Path, t0: float) -> dict[str, Any]:
    from qloom.flow import compile_model

    rec: dict[str, Any] = {"model": name, "trained": False}
    say(args.quiet, t0, f"1/{STEPS} {name}: export (untrained, seed {args.seed})")
    onnx, sec = _export(args, name, out_dir)
    rec["onnx"] = str(onnx)
    rec["export_s"] = sec
    say(args.quiet, t0, f"2/{STEPS} {name}: compile, integer executor vs qonnx on "
         f"{0 if 'qonnx' in args.skip else args.compare} random inputs")  # fmt: skip
    t = time.monotonic()
    c = compile_model(onnx)
    rec["compile_s"] = round(time.monotonic() - t, 2)
    ops = [n.op for n in c.integer.nodes]
    rec["integer_nodes"] = len(ops)
    if "qonnx" not in args.skip:
        _qonnx(args, rec, onnx, c, t0)
    say(args.quiet, t0, f"3/{STEPS} {name}: solver for {args.u250_fps:g} FPS on one xcu250"
         + (" (run-time weights)" if args.runtime_weights else ""))  # fmt: skip
    rec["u250"] = _u250(args, c)
    u = rec["u250"]
    say(args.quiet, t0, "   " + (f"fits: {u['estimate']}" if u["fits"] else u["error"]))
    if args.single and u["fits"]:
        say(args.quiet, t0, f"   build on one xcu250 at {args.u250_fps:g} FPS, {args.frames} "
             "frames through Verilator")  # fmt: skip
        rec["single"] = s = _build_single(args, name, onnx, out_dir)
        if args.per_frame and s["ok"]:
            say(args.quiet, t0, f"   again, frame by frame ({args.frames} frames)")
            s["per_frame"] = per_frame(Path(s["dir"]), args.frames)
        done = (f"{s['frames'] - s['mismatches']} / {s['frames']} frames equal, cycles/frame "
                f"{s['cycles_per_frame_measured']} (formula {s['cycles_per_frame_formula']}), "
                f"{s['wall_s']} s") if s["ok"] else s["error"]  # fmt: skip
        say(args.quiet, t0, "   " + done)
    if "chain" not in args.skip and args.runtime_weights:
        for devices in (args.devices, args.fallback_devices):
            say(args.quiet, t0, f"4/{STEPS} {name}: run-time weights across {devices} "
                 "(estimate only)")  # fmt: skip
            e = _partition_estimate(args, c, devices)
            rec.setdefault("chain_estimate", []).append(e)
            est = "; ".join(str(d["estimate"]) for d in e.get("devices", []))
            say(args.quiet, t0, f"   {len(e['devices'])} devices: {est}" if e["ok"]
                else f"   {e['error']}")  # fmt: skip
            if e["ok"] or not args.fallback_devices:
                break
    elif "chain" not in args.skip:
        report = _chain(args, rec, name, onnx, out_dir, t0)
        if args.synth and report is not None:
            say(
                args.quiet,
                t0,
                f"5/{STEPS} {name}: per-stage Yosys on Ray ({args.synth_workers} "
                f"CPUs, {args.synth_timeout:g} s per stage, {args.synth_budget:g} s in all)",
            )
            rec["synth"] = _synth(args, report, t0)
    return rec


def _qonnx(args, rec: dict[str, Any], onnx: Path, c, t0: float) -> None:
    """Step 2's comparison: the integer executor against qonnx on --compare random inputs."""
    from qloom.frontend.reference import qonnx_outputs

    shape = (args.compare, *c.imported.tensors[c.imported.inputs[0]].shape)  # per sample
    x = np.random.default_rng(args.seed).random(shape, dtype=np.float32)
    t = time.monotonic()
    ours = np.asarray(c.run(x)[c.integer.outputs[0]])
    rec["integer_s"] = round(time.monotonic() - t, 2)
    t = time.monotonic()
    ref = qonnx_outputs(onnx, x, args.compare)
    rec["qonnx_s"] = round(time.monotonic() - t, 2)
    a, b = ours.reshape(len(x), -1).astype(np.float64), ref.reshape(len(x), -1)
    tol = 1e-5 * max(1.0, float(np.abs(b).max()))  # as `qloom run --compare-qonnx`
    rec["qonnx_inputs"] = len(x)
    rec["qonnx_bit_equal"] = int(np.all(a == b, 1).sum())
    rec["qonnx_equal"] = int(np.all(np.abs(a - b) <= tol, 1).sum())  # within float rounding
    rec["qonnx_top1_equal"] = int((a.argmax(1) == b.argmax(1)).sum())
    rec["qonnx_max_abs_diff"] = float(np.abs(a - b).max())
    if rec["qonnx_equal"] < len(x):  # who is right: the exact-arithmetic oracle decides
        from qloom.execute.exact import compare_exact

        t = time.monotonic()
        cmp = compare_exact(onnx, x, c)
        local = [
            {"quantizer": r.tensor, "qloom_off_exact": r.local_qloom_exact,
             "qonnx_off_exact": r.local_qonnx_exact}
            for r in cmp.rows if r.local_qloom_exact or r.local_qonnx_exact
        ]  # fmt: skip
        rec["exact"] = {
            "outputs_off_exact_qloom": cmp.outputs_differ_qloom_exact,
            "outputs_off_exact_qonnx": cmp.outputs_differ_qonnx_exact,
            "local_rounding_differences": local,
            "seconds": round(time.monotonic() - t, 1),
        }
    say(args.quiet, t0, f"   compile {rec['compile_s']} s; integer == qonnx on "
         f"{rec['qonnx_equal']} / {len(x)}")  # fmt: skip


def _chain(args, rec: dict[str, Any], name: str, onnx: Path, out_dir: Path, t0: float):
    """Step 4: the multi-device build (constant weights), across --fallback-devices when
    --devices cannot hold it; its BuildReport (None when it failed)."""
    say(args.quiet, t0, f"4/{STEPS} {name}: build at {args.target_fps:g} FPS across "
         f"{args.devices} ({args.link}, cap {args.max_utilization:g}), {args.frames} frames "
         "through the chained Verilator simulation")  # fmt: skip
    rec["chain"], report = _build(args, name, onnx, out_dir, args.devices)
    ch = rec["chain"]
    if not ch["ok"] and args.fallback_devices and ch["error_type"] == "PartitionError":
        say(args.quiet, t0, f"   {args.devices}: {ch['error']}")
        say(args.quiet, t0, f"   again across {args.fallback_devices}")
        rec["chain_failed"] = ch
        rec["chain"], report = _build(args, name, onnx, out_dir, args.fallback_devices)
        ch = rec["chain"]
    if ch["ok"]:
        say(args.quiet, t0, f"   {len(ch['devices'])} devices, {ch['frames'] - ch['mismatches']}"
             f" / {ch['frames']} frames equal, cycles/frame {ch['cycles_per_frame_measured']} "
             f"(formula {ch['cycles_per_frame_formula']}), {ch['wall_s']} s")  # fmt: skip
    else:
        say(args.quiet, t0, f"   build failed: {ch['error']}")
    return report


def _table(results: list[dict[str, Any]], args) -> None:
    def n(v) -> str:
        return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"

    print()
    print("| | " + " | ".join(r["model"] + " (untrained)" for r in results) + " |")
    print("|---|" + "---|" * len(results))

    def row(label: str, fn) -> None:
        cells = []
        for r in results:
            try:
                cells.append(fn(r))
            except (KeyError, TypeError, IndexError):
                cells.append("-")
        print(f"| {label} | " + " | ".join(cells) + " |")

    row("compile (QONNX -> integer graph)", lambda r: f"{r['compile_s']:.1f} s")
    row(
        "integer executor == qonnx (float rounding)",
        lambda r: (
            f"{r['qonnx_equal']} / {r['qonnx_inputs']} random inputs (bit-equal "
            f"{r['qonnx_bit_equal']}, max diff {r['qonnx_max_abs_diff']:.2g}, same top-1 "
            f"{r['qonnx_top1_equal']}; integer {r['integer_s']:.1f} s, qonnx {r['qonnx_s']:.1f} s)"
        ),
    )

    row(
        "exact arithmetic (where they differ)",
        lambda r: (
            f"outputs off the exact ones: qloom {r['exact']['outputs_off_exact_qloom']}, qonnx "
            f"{r['exact']['outputs_off_exact_qonnx']}; local roundings off exact: qloom "
            f"{sum(q['qloom_off_exact'] for q in r['exact']['local_rounding_differences'])}, "
            f"qonnx {sum(q['qonnx_off_exact'] for q in r['exact']['local_rounding_differences'])}"
        ),
    )

    def u250(r) -> str:
        u = r["u250"]
        if not u["fits"]:
            return "does not fit: " + u["error"][:160]
        e, p = u["estimate"], u["utilization_percent"]
        uram = f", {e['uram']:,} URAM ({p['URAM']} %)" if e.get("uram") else ""
        return (f"{u['target_fps']:g} FPS: {e['lut']:,} LUT ({p['LUT']} %), {e['bram']:,} BRAM18 "
                f"({p['BRAM']} %){uram}, {e['dsp']:,} DSP; {u['cycles_per_frame']:,} cycles/frame "
                f"(solver {u['solver_s']:.0f} s)")  # fmt: skip

    rt = " (run-time weights)" if args.runtime_weights else ""
    row(f"one xcu250{rt} (estimate, cap 80 %)", u250)
    row("weight stream (words = load cycles)", lambda r: f"{r['u250']['weight_words']:,}")

    def single(r) -> str:
        s = r["single"]
        if not s["ok"]:
            return "FAILED: " + s["error"][:300]
        e = s["estimate_accelerator"]
        return (f"{e['lut']:,} LUT, {e['bram']:,} BRAM18, {e.get('uram', 0):,} URAM, "
                f"{e['dsp']:,} DSP (glue FIFOs incl.; {s['utilization_percent']} %); RTL == "
                f"integer {s['frames'] - s['mismatches']} / {s['frames']} frames; cycles/frame "
                f"{s['cycles_per_frame_formula']:,} / {n(s['cycles_per_frame_measured'])}; first "
                f"frame latency {n(s['latency_cycles_measured'])} cycles (estimate "
                f"{s['latency_estimate_cycles']:,}); {s['total_cycles']:,} cycles in all; "
                f"{s['wall_s']:.0f} s")  # fmt: skip

    row(f"one xcu250{rt}: build + Verilator", single)

    def frames(r) -> str:
        f = r["single"]["per_frame"]
        return (f"{f['frames_equal']} / {f['frames']} equal; weights loaded at cycle "
                f"{n(f['weights_last_word_cycle'])}; latency per frame "
                f"{', '.join(f'{v:,}' for v in f['latency_per_frame'])}; intervals "
                f"{', '.join(f'{v:,}' for v in f['intervals'])}")  # fmt: skip

    row("  frame by frame (--per-frame)", frames)

    def chain_estimate(r) -> str:
        e = r["chain_estimate"][-1]
        if not e["ok"]:
            return "does not fit: " + e["error"][:200]
        devs = "; ".join(f"{d['part']} {d['stages']} stages: {d['estimate']}"
                         for d in e["devices"])  # fmt: skip
        return (f"{len(e['devices'])} x {e['devices'][0]['part']} (cap "
                f"{args.max_utilization:g}): {devs}; {e['cycles_per_frame_formula']:,} "
                "cycles/frame")  # fmt: skip

    row("chain with run-time weights (estimate only)", chain_estimate)
    row("fastest folding", lambda r: r["u250"]["fastest"].split(": stage ")[1][:150])
    row("chain", lambda r: (f"{len(r['chain']['devices'])} x {r['chain']['devices'][0]['part']}"
        f", {args.link}, cap {args.max_utilization:g}") if r["chain"]["ok"]
        else "FAILED: " + r["chain"]["error"][:300])  # fmt: skip
    chains = [r.get("chain") or {} for r in results]
    for i in range(max((len(c.get("devices", [])) for c in chains), default=0)):

        def dev(r, i=i) -> str:
            d = r["chain"]["devices"][i]
            e = d["estimate"]
            return (f"{d['stages']} stages: {e['lut']:,} LUT, {e['bram']:,} BRAM18, 0 URAM, "
                    f"{e['dsp']:,} DSP ({d['load_of_cap'] * 100:.0f} % of cap)")  # fmt: skip

        row(f"device {i} (estimate)", dev)
    row("links (cycles/frame)", lambda r: ", ".join(
        f"{lk['cycles_per_frame']:,}" for lk in r["chain"]["links"]))  # fmt: skip
    row("RTL chain == integer", lambda r: f"{r['chain']['frames'] - r['chain']['mismatches']} / "
        f"{r['chain']['frames']} frames ({r['chain']['verdict']})")  # fmt: skip
    row("cycles/frame: formula / measured", lambda r: f"{r['chain']['cycles_per_frame_formula']:,}"
        f" / {n(r['chain']['cycles_per_frame_measured'])}")  # fmt: skip
    row(f"throughput at {args.clock_mhz:g} MHz (links incl.)",
        lambda r: f"{r['chain']['fps_at_clock']:,.1f} FPS")  # fmt: skip
    row("latency: estimate (+ links) / measured", lambda r: (
        f"{r['chain']['latency_estimate_cycles_with_links']:,} / "
        f"{n(r['chain']['latency_cycles_measured'])} cycles = "
        f"{r['chain']['latency_cycles_measured'] / args.clock_mhz / 1000:.2f} ms"))  # fmt: skip

    def steps(r) -> str:
        rows = r["chain"]["time_per_step"]["steps"]
        big = [f"{' '.join(x['step'].split()[:2])} {x['seconds']:.0f} s" for x in rows]
        return (
            f"{r['chain']['wall_s']:.0f} s ("
            + ", ".join(b for b, x in zip(big, rows, strict=True) if x["seconds"] >= 5)
            + ")"
        )

    row("build + simulation wall", steps)

    def synth(r) -> str:
        s = r["synth"]
        segs = "; ".join(f"dev {k}: {v['stages']} stages {v['lut']:,} LUT {v['ff']:,} FF "
                         f"{v['bram']:,} BRAM18 {v['uram']} URAM {v['dsp']} DSP"
                         for k, v in sorted(s["per_segment_finished"].items()))  # fmt: skip
        t = s.get("total_finished")
        tot = (f"; all: {t['lut']:,} LUT {t['ff']:,} FF {t['bram']:,} BRAM18 {t['uram']} URAM "
               f"{t['dsp']} DSP" if t else "")  # fmt: skip
        return (f"{s['finished']} / {s['stages_total']} stages in {s['wall_s']:.0f} s "
                f"({s['failed']} failed/timed out): {segs}{tot}")  # fmt: skip

    row("Yosys per stage (Ray)", synth)


def main(
    argv: list[str] | None = None,
    *,
    script: str = "resnet18.py",
    doc: str | None = None,
    defaults: dict[str, Any] | None = None,
) -> int:
    """The bench for any zoo models; another bench script (bench/alexnet.py) runs it with its
    own docstring and default options."""
    ap = argparse.ArgumentParser(description=(doc or __doc__).split("\n")[0])
    ap.add_argument("--models", default="resnet18-w2a2,resnet18-w4a4")
    ap.add_argument("--in-size", type=int, default=None, help="default: the topology's")
    ap.add_argument("--classes", type=int, default=None, help="default: the topology's")
    ap.add_argument("--u250-fps", type=float, default=100.0)
    ap.add_argument("--target-fps", type=float, default=100.0, help="the chain's folding")
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--devices", default="4xxczu7ev")
    ap.add_argument(
        "--fallback-devices",
        default="4xxczu9eg",
        help="the chain's parts when --devices cannot hold the design ('' for none)",
    )
    ap.add_argument("--link", default="aurora-10g")
    ap.add_argument("--max-utilization", type=float, default=0.9)
    ap.add_argument("--frames", type=int, default=2, help="random frames through the chain")
    ap.add_argument("--compare", type=int, default=5, help="random inputs, integer vs qonnx")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synth", action="store_true", help="per-stage Yosys on Ray")
    ap.add_argument("--synth-timeout", type=float, default=300.0, help="seconds per stage")
    ap.add_argument("--synth-budget", type=float, default=1800.0, help="seconds in all")
    ap.add_argument("--synth-workers", type=int, default=1, help="Ray CPUs")
    ap.add_argument("--out-dir", default=str(ROOT / "build" / "bench-resnet18"))
    ap.add_argument("--results", default=str(ROOT / "bench" / "results" / "resnet18.json"))
    ap.add_argument("--quiet", action="store_true", help="only the table")
    ap.add_argument(
        "--runtime-weights",
        action="store_true",
        help="every MVAU loads its weights after reset: the one-xcu250 solver and --single "
        "may put them in UltraRAM (the chain keeps constant weights)",
    )
    ap.add_argument(
        "--single",
        action="store_true",
        help="where step 3 fits: build on one xcu250 and simulate --frames frames",
    )
    ap.add_argument(
        "--per-frame",
        action="store_true",
        help="--single: simulate the build again and record each frame's latency",
    )
    ap.add_argument(
        "--reuse-builds",
        action="store_true",
        help="step 4: where --out-dir already holds the finished build of these options, read "
        "its report instead of building and simulating again (e.g. for --synth alone)",
    )
    ap.add_argument(
        "--skip",
        default="",
        type=lambda v: {x.strip() for x in v.split(",") if x.strip()},
        help="steps to leave out: qonnx (the comparison of step 2), chain (step 4, 5)",
    )
    ap.set_defaults(**(defaults or {}))
    args = ap.parse_args(argv)
    if args.frames < 2:
        ap.error("--frames must be at least 2 (cycles per frame are measured between frames)")

    t0 = time.monotonic()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "command": f"bench/{script} " + " ".join(sys.argv[1:] if argv is None else argv),
        "options": vars(args),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "load_average_start": load_average(),
        "models": [],
    }
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = True
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        rec = _run_model(args, name, out_dir, t0)
        result["models"].append(rec)
        # a difference beyond float rounding fails only where qloom's own rounding at some
        # quantizer is off the exact value more often than qonnx's (on the inputs where all
        # three agreed upstream): qloom reproduces qonnx's float32 levels where it can
        worse = [
            q
            for q in rec.get("exact", {}).get("local_rounding_differences", [])
            if q["qloom_off_exact"] > q["qonnx_off_exact"]
        ]
        ok &= rec.get("qonnx_equal") == rec.get("qonnx_inputs") or ("exact" in rec and not worse)
        for build in (rec.get("chain"), rec.get("single")):
            ok &= not (build and build["ok"]) or build["mismatches"] == 0
        result["load_average_end"] = load_average()
        result["total_minutes"] = round((time.monotonic() - t0) / 60, 1)
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")  # after each model
    _table(result["models"], args)
    print(
        f"load average {result['load_average_start']} -> {result['load_average_end']}; "
        f"{result['total_minutes']} min"
    )
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
