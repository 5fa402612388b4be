"""Simulate a design cut across several devices: the segment tops joined by link models.

`simulate_chain(partition, images)` is the proof that a `qloom.fold.partition.Partition`
works as one accelerator. It builds one Verilator model of the whole chain: every segment's
generated top (the very RTL each device gets) and, between two segments, a
`qloom_link_model` (qloom_link_model.v, simulation only) that enforces the link's bandwidth
(a transmit queue drained at the link's bits per cycle, an exact fraction, each beat
costing its width) and its latency (a sent beat arrives `max(1, latency)` cycles later), with
flow control (a full link holds off the sender). The stream harness (tb_stream.cpp) drives
the chain's input and output with random stalls as for a single design, and the chain top
exposes each link's two ends as extra output "taps" (valid = a beat moved there, always
ready), so that one run gives, per link, every beat that crossed and its cycle:

  * the final outputs, bit-exact against the folded model (== the integer model), and each
    cut stream against the model's stream at the cut;
  * the chain's cycles per frame (median interval between frame ends at the output) against
    the partition's formula: max(slowest stage, slowest link);
  * per link its cycles per frame (frame ends at its receiving end) and its measured latency
    (the smallest delay of a beat through it).

A segment runs at the chain's pace inside the chain (a fast segment waits for a slow one), so
its own cycles per frame are measured apart: `simulate_segments` runs each segment top alone,
fed the model's stream at its input cut at full rate (or with stalls), checks its output
stream and measures its cycles per frame against its slowest stage.

Link configurations (rate, cost, latency) are $readmemh files, not Verilog parameters, and
memory paths are relative to the run directory: one Verilator build serves every link model
and every set of weights of the same structure (cached by content like any design).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import numpy as np

from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.stage import pack_beats
from qloom.errors import QloomError
from qloom.fold.partition import Partition
from qloom.rtl.top import LIB_DIR, RtlFiles, generate_top, glue_streams, vname
from qloom.sim.verilator import Port, SimError, SimResult, build

LINK_MODEL = Path(__file__).resolve().parent / "qloom_link_model.v"
DEFAULT_IDLE = 100_000


@dataclass
class LinkSim:
    """One link as simulated: the stream it carried, checked, and its measured pace."""

    index: int
    stream: str
    mismatches: int  # frames whose beats on the link differ from the model's stream
    cycles_per_frame: float | None  # median interval between frame ends at the receiver
    formula: int  # LinkModel.cycles_per_frame
    latency_min: int | None  # smallest delay of a beat through the link (cycles, in to out)
    latency_formula: int  # Link.beat_delay: serialisation of one beat + latency
    sender_cycles_per_frame: float | None  # the sending segment's pace inside the chain

    def to_json(self) -> dict:
        return {
            "index": self.index,
            "stream": self.stream,
            "mismatches": self.mismatches,
            "cycles_per_frame": self.cycles_per_frame,
            "formula": self.formula,
            "latency_min": self.latency_min,
            "latency_formula": self.latency_formula,
        }


@dataclass
class ChainSimResult:
    outputs: dict[str, np.ndarray]  # as DataflowDesign.execute: tensor name -> (frames, ...)
    frames: int
    mismatches: int  # frames whose final outputs differ from the folded model's
    total_cycles: int
    cycles_per_frame: float | None  # steady state at the chain's output (median)
    estimate: int  # Partition.cycles_per_frame(): slowest stage or link
    latency: int | None  # first input beat .. first frame's last output beat, inclusive
    links: list[LinkSim]
    ok: bool
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    build_s: float = 0.0
    raw: SimResult | None = None

    @property
    def passed(self) -> bool:
        return self.ok and self.mismatches == 0 and all(lk.mismatches == 0 for lk in self.links)

    def check(self) -> ChainSimResult:
        """Raise SimError unless every frame arrived and every stream equals the model."""
        if not self.passed:
            bad = [f"link {lk.index}: {lk.mismatches} frames differ" for lk in self.links
                   if lk.mismatches]  # fmt: skip
            if self.mismatches:
                bad.append(f"outputs: {self.mismatches} of {self.frames} frames differ")
            raise SimError("chain simulation failed:\n  " + "\n  ".join(self.problems + bad))
        return self

    def summary(self) -> str:
        cpf = f"{self.cycles_per_frame:.1f}" if self.cycles_per_frame is not None else "-"
        links = "; ".join(
            f"link {lk.index} {lk.cycles_per_frame}/{lk.formula} cycles/frame, latency "
            f"{lk.latency_min}/{lk.latency_formula}"
            for lk in self.links
        )
        return (
            f"{self.frames} frames through {len(self.links) + 1} segments in "
            f"{self.total_cycles:,} cycles, {cpf} cycles/frame (formula {self.estimate}), "
            f"{self.mismatches} mismatches; {links}"
        )


@dataclass
class SegmentSim:
    """One segment top simulated alone on the model's stream at its input cut."""

    index: int
    frames: int
    mismatches: int
    cycles_per_frame: float | None
    formula: int  # the segment's slowest stage
    latency: int | None
    ok: bool
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "frames": self.frames,
            "mismatches": self.mismatches,
            "cycles_per_frame": self.cycles_per_frame,
            "formula": self.formula,
            "latency_cycles": self.latency,
            "problems": self.problems,
        }


# -- helpers ---------------------------------------------------------------------------------------
def _model_streams(design: DataflowDesign, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every stream of the folded model on `images` (hardware input integers)."""
    from qloom.flow import integer_input

    return design.run_streams(integer_input(design.source, images))


def _words(design: DataflowDesign, streams: dict[str, np.ndarray], name: str) -> list[int]:
    spec = design.streams[name]
    return pack_beats(streams[name].reshape(-1, spec.elems), spec.dtype)


def _frame_ends(cycles: list[int], per: int, frames: int) -> list[int]:
    return [cycles[(f + 1) * per - 1] for f in range(frames) if (f + 1) * per <= len(cycles)]


def _median_interval(ends: list[int]) -> float | None:
    return float(np.median(np.diff(ends))) if len(ends) >= 2 else None


def _bad_frames(got: list[int], want: list[int], per: int, frames: int) -> int:
    """Frames (of `per` beats) whose received words differ from the expected ones (a frame
    that did not fully arrive counts as differing)."""
    bad = 0
    for f in range(frames):
        if got[f * per : (f + 1) * per] != want[f * per : (f + 1) * per]:
            bad += 1
    return bad


def _status(message: str, quiet: bool | None):
    from qloom.synth.tools import status

    return status(message, quiet)


def segment_fifo_depths(
    design: DataflowDesign, depths: dict[str, int] | None
) -> dict[str, int] | None:
    """The whole design's glue FIFO depths (as `size_fifos` measured them) that belong to the
    top of the segment `design` (None: the default depths)."""
    if depths is None:
        return None
    glue = set(glue_streams(design))
    return {s: d for s, d in (depths or {}).items() if s in glue}


def segment_tops(
    partition: Partition, run_dir: Path, fifo_depths: dict[str, int] | None = None
) -> list[RtlFiles]:
    """Generate every segment's top into one run directory (memory files are named after
    their stages, unique across the design; the library copies are shared)."""
    return [
        generate_top(s.design, run_dir, segment_fifo_depths(s.design, fifo_depths))
        for s in partition.segments
    ]


def _gather(rtl: Sequence[RtlFiles], run_dir: Path) -> list[Path]:
    """Copy generated segment tops (e.g. a build's segments/*/rtl) into one run directory,
    memory files at their relative paths: the same files, simulated together."""
    library: dict[str, Path] = {}
    tops = []
    for r in rtl:
        dst = run_dir / r.top_file.name
        shutil.copyfile(r.top_file, dst)
        tops.append(dst)
        for files in r.memories.values():
            for p in files.values():
                target = run_dir / Path(p).resolve().relative_to(r.run_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, target)
        for lib in r.library:
            target = run_dir / LIB_DIR / lib.name
            if lib.name in library:
                if library[lib.name].read_bytes() != lib.read_bytes():
                    raise QloomError(f"two different copies of {lib.name} in the segment RTL")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lib, target)
            library[lib.name] = target
    return list(library.values()) + tops


# -- the chain top ---------------------------------------------------------------------------------
_CHAIN = Template(
    """\
// Generated by qloom.sim.chain: the segments of '$design' joined by link models.
// Simulation only. Taps t<k>a / t<k>b show the beats entering / leaving link k.
`default_nettype none

module $top (
    input  wire ap_clk,
    input  wire ap_rst_n,
$ports
);

$body
endmodule

`default_nettype wire
"""
)


def _port(direction: str, name: str, width: int) -> str:
    """The three wires of an AXI-Stream port of the chain top ("input": a sink's port)."""
    there = "input " if direction == "input" else "output"
    back = "output" if direction == "input" else "input "
    return (
        f"    {there} wire [{width - 1}:0] {name}_tdata,\n"
        f"    {there} wire {name}_tvalid,\n"
        f"    {back} wire {name}_tready"
    )


def _link_depth(partition: Partition, k: int) -> int:
    """Beats in flight at full rate over the latency, with margin, as a power of two >= 64
    (one size for most links keeps one Verilator build for all of them)."""
    lk = partition.links[k]
    per_cycle = min(1.0, float(lk.bits_per_cycle) / lk.spec.width)
    need = int(max(1, lk.latency_cycles) * per_cycle) + 8
    return max(64, 1 << (need - 1).bit_length())


def chain_top(partition: Partition, tops: Sequence[RtlFiles], run_dir: Path) -> tuple[str, Path]:
    """Write the chain's top (segments + link models + taps) and the link configuration
    files into `run_dir`; returns (module name, file)."""
    top = f"qloom_chain_{vname(partition.design.name)}"
    last = tops[-1]
    ports = [_port("input", "s_axis", tops[0].in_width)]
    ports += [_port("output", p, w) for p, w in zip(last.out_ports, last.out_widths, strict=True)]
    body: list[str] = []
    for k, lk in enumerate(partition.links):
        w = lk.spec.width
        ports += [_port("output", f"t{k}a_axis", w), _port("output", f"t{k}b_axis", w)]
        for end in ("a", "b"):
            body.append(
                f"wire [{w - 1}:0] l{k}{end}_tdata;\nwire l{k}{end}_tvalid;\n"
                f"wire l{k}{end}_tready;\n"
            )
    for i, (seg, r) in enumerate(zip(partition.segments, tops, strict=True)):
        src = "s_axis" if i == 0 else f"l{i - 1}b"
        conns = [f".s_axis_t{x}({src}_t{x})" for x in ("data", "valid", "ready")]
        if i == len(tops) - 1:
            outs = list(r.out_ports)
            conns += [f".{p}_t{x}({p}_t{x})" for p in outs for x in ("data", "valid", "ready")]
        else:
            conns += [f".m_axis_t{x}(l{i}a_t{x})" for x in ("data", "valid", "ready")]
        body.append(
            f"// segment {i}: {len(seg.stages)} stages\n{r.top} "
            f"u_seg{i} (\n    .ap_clk(ap_clk),\n    .ap_rst_n(ap_rst_n),\n    "
            + ",\n    ".join(conns)
            + "\n);\n"
        )
    links_dir = run_dir / "links"
    links_dir.mkdir(parents=True, exist_ok=True)
    for k, lk in enumerate(partition.links):
        rate = lk.bits_per_cycle
        cfg = [rate.numerator, lk.spec.width * rate.denominator, lk.latency_cycles]
        (links_dir / f"link{k}.hex").write_text("".join(f"{v:016x}\n" for v in cfg))
        body.append(
            f"// link {k}: stream '{lk.stream}' (rate and latency in links/link{k}.hex)\n"
            f"qloom_link_model #(\n"
            f"    .WIDTH({lk.spec.width}),\n    .DEPTH({_link_depth(partition, k)}),\n"
            f'    .CONFIG("links/link{k}.hex")\n) u_link{k} (\n'
            f"    .ap_clk(ap_clk),\n    .ap_rst_n(ap_rst_n),\n"
            + ",\n".join(
                f"    .{p}_t{x}(l{k}{e}_t{x})"
                for p, e in (("s_axis", "a"), ("m_axis", "b"))
                for x in ("data", "valid", "ready")
            )
            + "\n);\n"
        )
        for e in ("a", "b"):
            body.append(
                f"assign t{k}{e}_axis_tdata = l{k}{e}_tdata;\n"
                f"assign t{k}{e}_axis_tvalid = l{k}{e}_tvalid & l{k}{e}_tready;\n"
            )
    text = _CHAIN.substitute(
        design=partition.design.name.replace("\n", " "),
        top=top,
        ports=",\n".join(ports),
        body="\n".join(body),
    )
    path = run_dir / f"{top}.v"
    path.write_text(text)
    return top, path


# -- simulations -----------------------------------------------------------------------------------
def simulate_chain(
    partition: Partition,
    images: np.ndarray,
    *,
    in_valid_prob: float = 1.0,
    out_ready_prob: float = 1.0,
    seed: int = 0,
    fifo_depths: dict[str, int] | None = None,
    rtl: Sequence[RtlFiles] | None = None,
    work_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    max_idle_cycles: int | None = None,
    quiet: bool | None = None,
) -> ChainSimResult:
    """Simulate `images` (hardware input integers, as `compiled.hardware_input` gives them)
    through every segment and link of `partition` in one Verilator run (module docstring).

    in_valid_prob / out_ready_prob: random stalls at the chain's input and output.
    fifo_depths: the whole design's glue FIFO depths (each segment takes its own).
    rtl: the segment tops as already generated (a build's segments/*/rtl): copied together
        and simulated as they are, instead of generating them (then no fifo_depths).
    """
    images = np.asarray(images)
    frames = len(images)
    if frames < 1:
        raise ValueError("simulate_chain needs at least one image")
    if rtl is not None and len(rtl) != len(partition.segments):
        raise ValueError(f"rtl: {len(partition.segments)} segments, got {len(rtl)} tops")
    if rtl is not None and fifo_depths is not None:
        raise ValueError("simulate_chain(rtl=...) runs the tops as generated: no fifo_depths")
    if not LINK_MODEL.is_file():
        raise QloomError(f"the link simulation model {LINK_MODEL} is missing")
    design = partition.design
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="qloom-chain-")
        run_dir = Path(tmp.name)
    else:
        run_dir = Path(work_dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.monotonic()
        if rtl is None:
            tops = segment_tops(partition, run_dir, fifo_depths)
            sources = list(dict.fromkeys(p for t in tops for p in t.library))
            sources += [t.top_file for t in tops]
        else:
            tops = list(rtl)
            sources = _gather(tops, run_dir)
        shutil.copyfile(LINK_MODEL, run_dir / LINK_MODEL.name)
        top, top_file = chain_top(partition, tops, run_dir)
        sources += [run_dir / LINK_MODEL.name, top_file]
        last = tops[-1]
        outs = [Port(p, w) for p, w in zip(last.out_ports, last.out_widths, strict=True)]
        for k, lk in enumerate(partition.links):
            outs += [Port(f"t{k}a_axis", lk.spec.width), Port(f"t{k}b_axis", lk.spec.width)]
        with _status(f"building {top} ({len(tops)} segments) with Verilator...", quiet):
            model = build(top, sources, inputs=[Port("s_axis", tops[0].in_width)],
                          outputs=outs, cache_dir=cache_dir)  # fmt: skip
        build_s = time.monotonic() - t0

        streams = _model_streams(design, images)
        want = {s: _words(design, streams, s) for s in [design.input_stream, *last.out_streams]}
        want.update({lk.stream: _words(design, streams, lk.stream) for lk in partition.links})
        n_out = [design.streams[s].beats * frames for s in last.out_streams]
        n_out += [design.streams[lk.stream].beats * frames for lk in partition.links for _ in "ab"]
        p_out = [out_ready_prob] * len(last.out_streams) + [1.0] * (2 * len(partition.links))
        slow = partition.cycles_per_frame()
        lat = design.latency_estimate() + sum(lk.latency_cycles for lk in partition.links)
        idle = max_idle_cycles or int(
            DEFAULT_IDLE + 4 * (slow + lat) / min(in_valid_prob, out_ready_prob)
        )
        with _status(f"simulating {frames} frames through the chain...", quiet):
            res = model.run([want[design.input_stream]], n_out=n_out,
                            in_valid_prob=in_valid_prob, out_ready_prob=p_out, seed=seed,
                            max_idle_cycles=idle, cwd=run_dir)  # fmt: skip
        return _chain_result(partition, tops, res, want, frames, build_s)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _chain_result(partition, tops, res: SimResult, want, frames, build_s) -> ChainSimResult:
    from qloom.sim.design import outputs_from_words

    design = partition.design
    last = tops[-1]
    n_final = len(last.out_streams)
    mismatches = 0
    for i, s in enumerate(last.out_streams):
        per = design.streams[s].beats
        mismatches = max(mismatches, _bad_frames(res.outputs[i], want[s], per, frames))
    outputs = {}
    if res.ok:
        got = {s: res.outputs[i] for i, s in enumerate(last.out_streams)}
        outputs, _ = outputs_from_words(partition.segments[-1].design, got, frames)
    per0 = design.streams[last.out_streams[0]].beats
    ends = _frame_ends(res.out_cycles[0], per0, frames)
    latency = ends[0] - res.in_cycles[0][0] + 1 if ends and res.in_cycles[0] else None
    links = []
    for k, lk in enumerate(partition.links):
        a, b = n_final + 2 * k, n_final + 2 * k + 1
        per = lk.spec.beats
        delays = [y - x for x, y in zip(res.out_cycles[a], res.out_cycles[b], strict=False)]
        links.append(
            LinkSim(
                index=k,
                stream=lk.stream,
                mismatches=_bad_frames(res.outputs[b], want[lk.stream], per, frames),
                cycles_per_frame=_median_interval(_frame_ends(res.out_cycles[b], per, frames)),
                formula=lk.cycles_per_frame,
                latency_min=min(delays) if delays else None,
                latency_formula=lk.beat_delay,
                sender_cycles_per_frame=_median_interval(
                    _frame_ends(res.out_cycles[a], per, frames)
                ),
            )
        )
    return ChainSimResult(
        outputs=outputs,
        frames=frames,
        mismatches=mismatches,
        total_cycles=res.cycles,
        cycles_per_frame=_median_interval(ends),
        estimate=partition.cycles_per_frame(),
        latency=latency,
        links=links,
        ok=res.ok,
        problems=res.problems() if not res.ok else [],
        wall_s=res.wall_s,
        build_s=build_s,
        raw=res,
    )


def simulate_segments(
    partition: Partition,
    images: np.ndarray,
    *,
    in_valid_prob: float = 1.0,
    out_ready_prob: float = 1.0,
    seed: int = 0,
    fifo_depths: dict[str, int] | None = None,
    rtl: Sequence[RtlFiles] | None = None,
    cache_dir: str | Path | None = None,
    quiet: bool | None = None,
) -> list[SegmentSim]:
    """Each segment top alone, fed the folded model's stream at its input cut: its output
    stream checked against the model's, its cycles per frame measured (one Verilator build
    per segment, cached by content). `rtl`: the tops as generated (simulated from their own
    directories); else they are generated into a temporary directory."""
    images = np.asarray(images)
    frames = len(images)
    if rtl is not None and fifo_depths is not None:
        raise ValueError("simulate_segments(rtl=...) runs the tops as generated: no fifo_depths")
    design = partition.design
    streams = _model_streams(design, images)
    out: list[SegmentSim] = []
    with tempfile.TemporaryDirectory(prefix="qloom-segs-") as tmp:
        tops = list(rtl) if rtl is not None else segment_tops(partition, Path(tmp), fifo_depths)
        for seg, r in zip(partition.segments, tops, strict=True):
            sub = seg.design
            outs = [Port(p, w) for p, w in zip(r.out_ports, r.out_widths, strict=True)]
            with _status(f"building {r.top} with Verilator...", quiet):
                model = build(r.top, r.sources, inputs=[Port(r.in_port, r.in_width)],
                              outputs=outs, cache_dir=cache_dir)  # fmt: skip
            n_out = [sub.streams[s].beats * frames for s in r.out_streams]
            idle = int(DEFAULT_IDLE + 4 * (sub.cycles_per_frame() + sub.latency_estimate())
                       / min(in_valid_prob, out_ready_prob))  # fmt: skip
            with _status(f"simulating segment {seg.index} ({frames} frames)...", quiet):
                res = model.run([_words(design, streams, sub.input_stream)], n_out=n_out,
                                in_valid_prob=in_valid_prob, out_ready_prob=out_ready_prob,
                                seed=seed + seg.index, max_idle_cycles=idle,
                                cwd=r.run_dir)  # fmt: skip
            bad = 0
            for i, s in enumerate(r.out_streams):
                per = sub.streams[s].beats
                want = _words(design, streams, s)
                bad = max(bad, _bad_frames(res.outputs[i], want, per, frames))
            per = sub.streams[r.out_streams[0]].beats
            ends = _frame_ends(res.out_cycles[0], per, frames)
            lat = ends[0] - res.in_cycles[0][0] + 1 if ends and res.in_cycles[0] else None
            out.append(
                SegmentSim(
                    index=seg.index,
                    frames=frames,
                    mismatches=bad,
                    cycles_per_frame=_median_interval(ends),
                    formula=seg.cycles_per_frame,
                    latency=lat,
                    ok=res.ok,
                    problems=res.problems() if not res.ok else [],
                )
            )
    return out


__all__ = [
    "ChainSimResult",
    "LinkSim",
    "SegmentSim",
    "chain_top",
    "segment_fifo_depths",
    "segment_tops",
    "simulate_chain",
    "simulate_segments",
]
