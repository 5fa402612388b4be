"""Simulate a whole DataflowDesign in Verilator: the generated top level, all frames in one run.

`simulate(design, images)` writes the stitched top (`qloom.rtl.top.generate_top`) and its memory
files into a run directory (or takes a top already generated: `rtl=`), builds it with the
stream harness (cached by content: designs that differ only in weights share the build),
streams every image through it in one simulation and returns the outputs in the form
`DataflowDesign.execute` gives them (so they compare directly with the folded model and with
`qloom.flow.run_integer`), the measured cycles, each FIFO's peak occupancy, the first frame's
timing through every stage and glue FIFO (`stage_timing`, `LatencyStep`s: the harness probes
the handshakes on the top's stream wires), and, if the run fails, a diagnosis of which
streams were stalled.

`size_fifos(design, images)` simulates once with generous glue FIFOs at full rate and returns
depths = peak occupancy + margin, which keep the throughput of the generous run.

Example::

    from qloom.frontend.domain import RAW_PIXELS
    from qloom.flow import compile_model, run_integer
    from qloom.dataflow import to_dataflow
    from qloom.sim.design import simulate
    g = compile_model("TFC_2W2A.onnx", RAW_PIXELS).integer
    d = to_dataflow(g, folding)
    r = simulate(d, images[:100], in_valid_prob=0.5, out_ready_prob=0.5).check()
    assert (r.outputs[g.outputs[0]] == run_integer(g, images[:100])[g.outputs[0]]).all()
    print(r.cycles_per_frame, d.cycles_per_frame(), r.latency, r.fifo_max)
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.stage import from_beats, pack_beats, to_beats, unpack_beats
from qloom.errors import QloomError
from qloom.report.model import LatencyStep
from qloom.rtl.top import RtlFiles, generate_top, glue_streams
from qloom.sim.verilator import Port, SimError, SimResult, build

DEFAULT_IDLE = 100_000


@dataclass
class DesignSimResult:
    """What one simulation of a stitched design delivered. Cycles count from reset release."""

    outputs: dict[str, np.ndarray]  # as DataflowDesign.execute: tensor name -> (frames, ...)
    beats: dict[str, np.ndarray]  # output stream -> received beats (frames, beats, elems)
    frames: int
    total_cycles: int  # 1 + cycle of the last output beat
    frame_end_cycles: list[int]  # cycle of each frame's last beat on the first output port
    cycles_per_frame: float | None  # steady state: median interval between frame ends
    cycles_per_frame_mean: float | None  # (last end - first end) / (frames - 1)
    latency: int | None  # first frame: first input beat .. last output beat, inclusive
    estimate: int  # design.cycles_per_frame(), the analytic initiation interval
    fifo_depths: dict[str, int]  # stream -> depth of each FIFO (glue and FIFO stages)
    fifo_max: dict[str, int]  # stream -> peak occupancy (monitor_fifos=True)
    ok: bool
    deadlock: bool
    problems: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)  # stalled streams (failed runs only)
    wall_s: float = 0.0  # simulator run time
    build_s: float = 0.0  # generate + build (0-ish when cached)
    rtl: RtlFiles | None = None
    raw: SimResult | None = None
    # the first frame through every stage and glue FIFO, in pipeline order (time_stages=True)
    stage_timing: list[LatencyStep] = field(default_factory=list)

    @property
    def output_span(self) -> int | None:
        """The first frame on the (first) output port: its last beat - its first beat + 1."""
        if not self.frame_end_cycles or self.raw is None or not self.raw.out_cycles[0]:
            return None
        return self.frame_end_cycles[0] - self.raw.out_cycles[0][0] + 1

    @property
    def cycles_per_second(self) -> float:
        return self.total_cycles / self.wall_s if self.wall_s > 0 else 0.0

    def check(self) -> DesignSimResult:
        """Raise SimError with the problems and the stall diagnosis unless the run is ok."""
        if not self.ok:
            lines = self.problems + [f"stalled: {d}" for d in self.diagnosis]
            raise SimError("design simulation failed:\n  " + "\n  ".join(lines))
        return self

    def summary(self) -> str:
        cpf = f"{self.cycles_per_frame:.1f}" if self.cycles_per_frame is not None else "-"
        return (
            f"{self.frames} frames in {self.total_cycles:,} cycles, {cpf} cycles/frame "
            f"(estimate {self.estimate}), latency {self.latency}, "
            f"{self.cycles_per_second / 1e6:.2f} M cycles/s"
        )


def _quiet() -> bool:
    from qloom.synth.tools import quiet_default

    return quiet_default()


def _status(message: str):
    from qloom.synth.tools import status

    return status(message)


def input_words(design: DataflowDesign, images: np.ndarray) -> list[int]:
    """Raw images (N, C, H, W) -> the TDATA words of the design's input stream, all frames."""
    from qloom.flow import integer_input

    spec = design.input_spec
    beats = to_beats(integer_input(design.source, images), spec.elems)
    if beats.shape[1] != spec.beats:
        raise QloomError(
            f"design input stream carries {spec.beats} beats per frame, the images give "
            f"{beats.shape[1]}"
        )
    return pack_beats(beats.reshape(-1, spec.elems), spec.dtype)


def outputs_from_words(
    design: DataflowDesign, words: dict[str, list[int]], frames: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Output stream words -> (outputs as DataflowDesign.execute, beats per stream)."""
    from qloom.execute import execute as run_graph

    beats = {}
    for s, w in words.items():
        spec = design.streams[s]
        b = unpack_beats(list(w), spec.dtype, spec.elems)
        beats[s] = b.reshape(frames, spec.beats, spec.elems)
    out = {
        t: from_beats(beats[s], design.output_shapes[t]) for t, s in design.output_streams.items()
    }
    if design.host is not None:
        out.update(run_graph(design.host, {t: out[t] for t in design.host.inputs}))
    return out, beats


@dataclass(frozen=True)
class _Timed:
    """A stage or glue element of the top and the wires its frames enter and leave by."""

    name: str
    kind: str
    glue: bool
    ins: tuple[str, ...]
    outs: tuple[str, ...]
    formula: int | None


def timed_elements(design: DataflowDesign, rtl: RtlFiles) -> list[_Timed]:
    """Every stage of the top and every glue element between two of them (a glue FIFO, and a
    fault injector where `fault_masks` put one), in pipeline order (each glue element after the
    stage that feeds it), with the top-level wires it reads and drives.

    Per stream, `rtl.wires` lists in declaration order its own wire, then the glue FIFO's
    output (`FifoInfo.out_wire`) where it has a glue FIFO, then, where a fault injector sits
    on it, the wire its producer drives into the injector. The consumer reads the FIFO's
    output (else the stream's own wire); the producer drives the injector's input (else the
    stream's own wire). An `RtlFiles` without `wires` gives no elements (nothing is timed)."""
    per_stream: dict[str, list[str]] = {}
    for w, s in rtl.wires.items():
        per_stream.setdefault(s, []).append(w)
    if any(s not in per_stream for s in design.streams):
        return []
    fifo_out = {f.stream: f.out_wire for f in rtl.fifos if f.glue}
    reads, drives = {}, {}
    for s, ws in per_stream.items():
        reads[s] = fifo_out.get(s, ws[0])
        drives[s] = next((w for w in ws[1:] if w != reads[s]), ws[0])

    def glue(s: str) -> _Timed | None:
        if drives[s] == reads[s]:
            return None
        kinds = (["glue FIFO"] if s in fifo_out else []) + (
            ["fault injection"] if len(per_stream[s]) > (2 if s in fifo_out else 1) else []
        )
        return _Timed(s, " + ".join(kinds), True, (drives[s],), (reads[s],), None)

    out = []
    if (g := glue(design.input_stream)) is not None:
        out.append(g)
    for st in design.stages:
        ins = tuple(reads[s] for s in st.inputs)
        outs = tuple(drives[s] for s in st.outputs)
        out.append(_Timed(st.name, st.kind, False, ins, outs, st.latency_cycles()))
        out += [g for s in st.outputs if (g := glue(s)) is not None]
    return out


def _stage_timing(
    elements: list[_Timed], first: dict[str, int | None], last: dict[str, int | None]
) -> list[LatencyStep]:
    def earliest(ws, of):
        vals = [of[w] for w in ws]
        return None if not vals or any(v is None for v in vals) else min(vals)

    def latest(ws, of):
        vals = [of[w] for w in ws]
        return None if not vals or any(v is None for v in vals) else max(vals)

    return [
        LatencyStep(
            e.name,
            e.kind,
            e.glue,
            earliest(e.ins, first),
            earliest(e.outs, first),
            latest(e.outs, last),
            e.formula,
        )
        for e in elements
    ]


def first_beat_sum(timing: list[LatencyStep]) -> int | None:
    """Sum of the `first_beat` of every stage and glue element: on a chain (one stream from
    stage to stage, as in TFC) the cycles from the first input beat to the first output beat at
    the ports, so that the whole design's `latency` (first input beat .. last output beat,
    inclusive) is this plus the first output frame's span on the output port (its last beat -
    its first + 1, `DesignSimResult.output_span`)."""
    lat = [t.first_beat for t in timing]
    return None if any(v is None for v in lat) else sum(lat)


def _idle_bound(design: DataflowDesign, p_in: float, p_out: float) -> int:
    slow = max((s.cycles_per_frame() for s in design.stages), default=0)
    return int(DEFAULT_IDLE + 4 * (slow + design.latency_estimate()) / min(p_in, p_out))


def simulate(
    design: DataflowDesign,
    images: np.ndarray,
    *,
    in_valid_prob: float = 1.0,
    out_ready_prob: float = 1.0,
    seed: int = 0,
    fifo_depths: dict[str, int] | None = None,
    monitor_fifos: bool = True,
    work_dir: str | Path | None = None,
    diagnose: bool = True,
    max_idle_cycles: int | None = None,
    cache_dir: str | Path | None = None,
    quiet: bool | None = None,
    rtl: RtlFiles | None = None,
    fault_masks: dict[str, list[int]] | None = None,
    time_stages: bool = True,
    weights: np.ndarray | None = None,
) -> DesignSimResult:
    """Simulate `images` (uint8 NCHW, as datasets give them) through the stitched design.

    in_valid_prob / out_ready_prob: per-cycle probability that the testbench offers an input
        beat / accepts an output beat (random stalls and backpressure, seeded by `seed`).
    fifo_depths: glue FIFO depth per stream (default 2; see qloom.rtl.top.generate_top).
    monitor_fifos: record each FIFO's peak occupancy (slightly slower simulation).
    work_dir: run directory for the top, memory files and hdl copies (default: temporary).
    rtl: the design's top as `generate_top` already wrote it (e.g. a build's rtl/): simulated
        as it is, from its directory, instead of generating one into `work_dir`; its FIFO
        depths are the generated ones (then give neither `fifo_depths` nor `work_dir`).
    fault_masks: stream -> XOR mask words (one per beat, qloom.faults.stream_masks): a
        `qloom_fault` stage on each of those streams (generate_top(fault_masks=...)), so the
        outputs are those of `run_integer(..., faults=...)`, not the fault-free ones.
    diagnose: on a failed run (deadlock, missing beats), rebuild with every stream's
        tvalid/tready monitored, rerun with the same seed and name the stalled streams.
    time_stages: time the first frame through every stage and glue FIFO (`stage_timing`):
        the harness watches the handshakes on the top's stream wires until each has carried
        one frame.
    weights: the uint32 words streamed into the top's weight port when the design loads
        weights at run time (default `design.weight_words()`; another design's words load
        other weights into the same build). They are offered from reset on, beside the
        frames, with the same random stalls (`in_valid_prob`); the run-time-weight stages take
        no frame before their weights are in, so the first frame's latency includes the load.
    """
    images = np.asarray(images)
    frames = len(images)
    if frames < 1:
        raise ValueError("simulate needs at least one image")
    if quiet is None:
        quiet = _quiet()
    if rtl is not None and fault_masks:
        raise ValueError("simulate(rtl=...) runs the given RTL as generated: no fault_masks")
    if rtl is not None and (fifo_depths is not None or work_dir is not None):
        raise ValueError(
            "simulate(rtl=...) runs the given RTL as generated: its FIFO depths and directory "
            "are fixed, give neither fifo_depths nor work_dir"
        )
    tmp = None
    if rtl is not None:
        run_dir = rtl.run_dir
    elif work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="qloom-dsim-")
        run_dir = Path(tmp.name)
    else:
        run_dir = Path(work_dir)
    try:
        t0 = time.monotonic()
        if rtl is None:
            rtl = generate_top(design, run_dir, fifo_depths, fault_masks=fault_masks)
        words = input_words(design, images)
        n_out = [design.streams[s].beats * frames for s in rtl.out_streams]
        monitors = rtl.monitors if monitor_fifos else []
        ports_in = [Port(rtl.in_port, rtl.in_width)]
        streams_in = [words]
        if rtl.weight_port is not None:
            ports_in.append(Port(rtl.weight_port, 32))
            w = design.weight_words() if weights is None else weights
            streams_in.append([int(x) for x in np.asarray(w, dtype=np.uint32)])
        elif weights is not None and len(weights):
            raise ValueError(f"{rtl.top} loads no weights at run time: no weights to give")
        ports_out = [Port(p, w) for p, w in zip(rtl.out_ports, rtl.out_widths, strict=True)]
        elements = timed_elements(design, rtl) if time_stages else []
        probe_wires = list(dict.fromkeys(w for e in elements for w in (*e.ins, *e.outs)))
        probes = [f"{rtl.top}.{w}" for w in probe_wires]
        msg = f"building {rtl.top} ({len(design.stages)} stages) with Verilator..."
        status = _status(msg) if not quiet else _null()
        with status:
            model = build(rtl.top, rtl.sources, inputs=ports_in, outputs=ports_out,
                          monitor=monitors, probe=probes, cache_dir=cache_dir)  # fmt: skip
        build_s = time.monotonic() - t0
        idle = max_idle_cycles or _idle_bound(design, in_valid_prob, out_ready_prob)
        run_kw = dict(
            n_out=n_out,
            in_valid_prob=in_valid_prob,
            out_ready_prob=out_ready_prob,
            seed=seed,
            max_idle_cycles=idle,
            cwd=rtl.run_dir,
        )
        est = design.cycles_per_frame() * frames / min(in_valid_prob, out_ready_prob)
        msg = f"simulating {frames} frames of {design.name} (~{est:,.0f} cycles)..."
        status = _status(msg) if not quiet else _null()
        with status:
            beats = [design.streams[rtl.wires[w]].beats for w in probe_wires]
            res = model.run(streams_in, **run_kw, probe_beats=beats)
        problems = res.problems() if not res.ok else []
        diagnosis: list[str] = []
        if not res.ok and diagnose:
            # the rerun is the same run (same seed): stop it where this one stopped, since
            # the monitored handshakes follow the testbench's random stalls and would count
            # as activity, so that a deadlock would never end the rerun
            rerun = {**run_kw, "max_cycles": max(1, res.total_cycles)}
            diagnosis = _diagnose(design, rtl, ports_in, ports_out, streams_in, rerun, cache_dir)
        got = {s: res.outputs[i] for i, s in enumerate(rtl.out_streams)}
        if res.ok:
            outputs, beats = outputs_from_words(design, got, frames)
        else:
            outputs, beats = {}, {}
        per = design.streams[rtl.out_streams[0]].beats
        cyc = res.out_cycles[0]
        ends = [cyc[(f + 1) * per - 1] for f in range(frames) if (f + 1) * per <= len(cyc)]
        median = mean = None
        if len(ends) >= 2:
            median = float(np.median(np.diff(ends)))
            mean = (ends[-1] - ends[0]) / (len(ends) - 1)
        latency = None
        if ends and res.in_cycles[0]:
            latency = ends[0] - res.in_cycles[0][0] + 1
        depth_of = {f.stream: f.depth for f in rtl.fifos}
        fifo_max = {
            f.stream: res.monitor_max[f.monitor] for f in rtl.fifos if f.monitor in res.monitor_max
        }
        return DesignSimResult(
            outputs=outputs,
            beats=beats,
            frames=frames,
            total_cycles=res.cycles,
            frame_end_cycles=ends,
            cycles_per_frame=median,
            cycles_per_frame_mean=mean,
            latency=latency,
            estimate=design.cycles_per_frame(),
            fifo_depths=depth_of,
            fifo_max=fifo_max,
            ok=res.ok,
            deadlock=res.deadlock,
            problems=problems,
            diagnosis=diagnosis,
            wall_s=res.wall_s,
            build_s=build_s,
            rtl=rtl,
            raw=res,
            stage_timing=_stage_timing(
                elements,
                {w: res.probe_first.get(p) for w, p in zip(probe_wires, probes, strict=True)},
                {w: res.probe_last.get(p) for w, p in zip(probe_wires, probes, strict=True)},
            ),
        )
    finally:
        if tmp is not None:
            tmp.cleanup()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _diagnose(design, rtl, ports_in, ports_out, streams_in, run_kw, cache_dir) -> list[str]:
    """Rerun a failed simulation with every top-level stream wire's tvalid/tready monitored;
    name the streams whose producer holds data the consumer does not take (and FIFOs that are
    full or empty) at the moment the run stopped."""
    wires = sorted(rtl.wires)
    monitors = list(rtl.monitors)
    for w in wires:
        monitors += [f"{rtl.top}.{w}_tvalid", f"{rtl.top}.{w}_tready"]
    try:
        model = build(rtl.top, rtl.sources, inputs=ports_in, outputs=ports_out,
                      monitor=monitors, cache_dir=cache_dir)  # fmt: skip
        res = model.run(streams_in, **run_kw)
    except (SimError, QloomError) as e:  # diagnosis is best effort
        return [f"(no diagnosis: {e})"]
    last = res.monitor_last
    users = {s: f"{st.kind} '{st.name}'" for st in design.stages for s in st.inputs}
    makers = {s: f"{st.kind} '{st.name}'" for st in design.stages for s in st.outputs}
    fifo_out = {f.out_wire for f in rtl.fifos if f.glue}
    blocked: dict[str, bool] = {}  # stream -> a beat waits at its consumer's input
    for w in wires:
        s = rtl.wires[w]
        v = last.get(f"{rtl.top}.{w}_tvalid")
        r = last.get(f"{rtl.top}.{w}_tready")
        if v == 1 and r == 0 and (w in fifo_out or s not in blocked):
            blocked[s] = True  # the FIFO output side decides when there is a FIFO
        elif w in fifo_out:
            blocked[s] = False
    fill = {f.stream: (last.get(f.monitor), f.depth) for f in rtl.fifos}
    out = []
    for s, b in blocked.items():
        if not b:
            continue
        src = makers.get(s, "the testbench")
        dst = users.get(s, "the testbench")
        c, d = fill.get(s, (None, None))
        extra = f", FIFO {c}/{d}" + (" full" if c is not None and c >= d else "") if d else ""
        out.append(f"stream '{s}' ({src} -> {dst}): beat not accepted{extra}")
    # the head of the blockage: a stage with a blocked input but no blocked output
    for st in design.stages:
        ins = [s for s in st.inputs if blocked.get(s)]
        if ins and not any(blocked.get(s) for s in st.outputs):
            idle = [s for s in st.inputs if not blocked.get(s)]
            why = f"; its other input(s) {', '.join(idle)} bring nothing" if idle else ""
            out.insert(
                0, f"{st.kind} '{st.name}' holds up '{', '.join(ins)}' with its output free{why}"
            )
    return out or ["no stream was stalled at the end of the run (starved: waiting for input)"]


# -- FIFO sizing ----------------------------------------------------------------------------------
def generous_depths(design: DataflowDesign, cap: int = 1 << 14) -> dict[str, int]:
    """Glue FIFO depths no full-rate run fills: two frames of the stream (at least 16)."""
    return {s: min(cap, max(16, 2 * design.streams[s].beats)) for s in glue_streams(design)}


def size_fifos(
    design: DataflowDesign,
    images: np.ndarray,
    margin: int = 2,
    *,
    generous: dict[str, int] | None = None,
    shrink: bool = True,
    **sim_kw,
) -> dict[str, int]:
    """Glue FIFO depths from one full-rate simulation with generous FIFOs: for every stream,
    peak occupancy + margin (at least 2). Pass the result as `fifo_depths` to `simulate` /
    `generate_top`; a FIFO that never fills leaves the schedule, and so the cycles per frame,
    as in the generous run (a few frames, >= 3, give a steady state).

    shrink: FIFOs that filled up completely in the generous run get the minimal depth instead
        when a second simulation shows the same cycles per frame."""
    depths = generous or generous_depths(design)
    res = simulate(design, images, fifo_depths=depths, monitor_fifos=True, **sim_kw).check()
    sized = {s: max(2, res.fifo_max.get(s, 0) + margin) for s in depths}
    full = [s for s in depths if res.fifo_max.get(s, 0) >= depths[s]]
    if shrink and full and res.cycles_per_frame:
        # A FIFO that filled up sits behind a producer running ahead of a bursty consumer
        # (e.g. an MVAU taking its input only in fold 0): the producer can as well wait.
        # Try the minimal depth there and keep it if the throughput stays.
        trial = dict(sized, **{s: max(2, margin) for s in full})
        res2 = simulate(design, images, fifo_depths=trial, monitor_fifos=False, **sim_kw)
        if res2.ok and res2.cycles_per_frame and res2.cycles_per_frame <= res.cycles_per_frame:
            sized = trial
    return sized
