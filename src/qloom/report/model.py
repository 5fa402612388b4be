"""The build report as types: what `qloom.build.build` returns and what report.json holds.

`BuildReport.to_json()` is the content of report.json (the same keys, in the same order, as
the dicts the build wrote before these types existed, so report.json files and the examples in
the README stay valid); `BuildReport.from_json(d)` reads one back and `BuildReport.read(dir)`
reads a build directory's report.json (report.html is rendered from a BuildReport).

A section the build did not reach is None and absent from the JSON: `sim` without simulation
(--sim-frames 0), `StageRow.synth` and `Totals.synth` without --synth, `pnr` (and the Fmax
entries of the totals) without --pnr, `partition` (the devices and links of a build across
several FPGAs) without --devices; a failed build's report.json holds what it had reached.
`dir` (where the build directory is) is not part of report.json: the file does not say where
it lies.

Example::

    from qloom.report.model import BuildReport
    r = BuildReport.read("build/TFC_2W2A")
    print(r.totals.cycles_per_frame, r.sim.verdict if r.sim else "not simulated")
    print([(s.name, s.est.lut, s.synth.lut if s.synth else None) for s in r.stages])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from qloom.errors import QloomError


@dataclass
class Resources:
    """LUT / FF / BRAM18 / DSP counts, and URAM288 blocks (run-time weights in UltraRAM): a
    stage's estimate or Yosys result, or their totals. `uram` is in the JSON only where it is
    not 0, so that the reports of designs without UltraRAM keep their four keys."""

    lut: int
    ff: int
    bram: int
    dsp: int
    uram: int = 0

    def to_json(self) -> dict:
        d = {"lut": self.lut, "ff": self.ff, "bram": self.bram, "dsp": self.dsp}
        if self.uram:
            d["uram"] = self.uram
        return d

    @classmethod
    def from_json(cls, d: dict) -> Resources:
        return cls(lut=d["lut"], ff=d["ff"], bram=d["bram"], dsp=d["dsp"], uram=d.get("uram", 0))

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.lut + other.lut,
            self.ff + other.ff,
            self.bram + other.bram,
            self.dsp + other.dsp,
            self.uram + other.uram,
        )


SynthTotals = Resources  # the totals of the Yosys results: the same four counts


@dataclass
class InputDomain:
    """Which integers the hardware receives, and why (`qloom.frontend.domain` `to_json`)."""

    hardware_type: str
    source: str
    input: str
    input_shape: list[int]
    hardware_tensor: str
    host_nodes: list[str]
    steps: list

    def to_json(self) -> dict:
        return {
            "hardware_type": self.hardware_type,
            "source": self.source,
            "input": self.input,
            "input_shape": self.input_shape,
            "hardware_tensor": self.hardware_tensor,
            "host_nodes": self.host_nodes,
            "steps": self.steps,
        }

    @classmethod
    def from_json(cls, d: dict) -> InputDomain:
        return cls(
            hardware_type=d["hardware_type"],
            source=d["source"],
            input=d["input"],
            input_shape=list(d["input_shape"]),
            hardware_tensor=d["hardware_tensor"],
            host_nodes=list(d["host_nodes"]),
            steps=list(d["steps"]),
        )

    def describe(self) -> str:
        return f"{self.hardware_type} integers, {self.source}"


@dataclass
class StageRow:
    """One hardware stage: its folding, cycles per frame, estimate and (with --synth) the
    out-of-context Yosys result."""

    name: str
    kind: str
    folding: dict[str, Any]  # PE, SIMD, ram_style ... as folding.json has them
    cycles: int
    est: Resources
    synth: Resources | None = None
    latency: int | None = None  # the stage's latency formula (cycles), `Stage.latency_cycles`
    # RTL simulation, first frame (`LatencyStep`): first input beat .. last
    # output beat, inclusive (the formula's definition), and first input beat .. first output
    # beat (what the stage adds to the pipeline's fill; summed in `SimSummary.latency_path`)
    latency_simulated: int | None = None
    first_beat_simulated: int | None = None

    def to_json(self) -> dict:
        d = {
            "name": self.name,
            "kind": self.kind,
            "folding": self.folding,
            "cycles": self.cycles,
            "est": self.est.to_json(),
        }
        if self.synth is not None:
            d["synth"] = self.synth.to_json()
        if self.latency is not None:
            d["latency"] = self.latency
        if self.latency_simulated is not None:
            d["latency_simulated"] = self.latency_simulated
        if self.first_beat_simulated is not None:
            d["first_beat_simulated"] = self.first_beat_simulated
        return d

    @classmethod
    def from_json(cls, d: dict) -> StageRow:
        return cls(
            name=d["name"],
            kind=d["kind"],
            folding=dict(d["folding"]),
            cycles=d["cycles"],
            est=Resources.from_json(d["est"]),
            synth=Resources.from_json(d["synth"]) if d.get("synth") is not None else None,
            latency=d.get("latency"),
            latency_simulated=d.get("latency_simulated"),
            first_beat_simulated=d.get("first_beat_simulated"),
        )


@dataclass
class LatencyStep:
    """The first simulated frame through one element of the top, in pipeline order: a stage,
    or the glue FIFO between two stages (`glue`; named after the stream it buffers). Cycles
    of its first input beat, first output beat and last output beat, counted from reset
    release as the simulation counts them (None: that beat never came)."""

    name: str
    kind: str
    glue: bool
    first_in: int | None
    first_out: int | None
    last_out: int | None
    formula: int | None = None  # Stage.latency_cycles (None for glue)

    @property
    def first_beat(self) -> int | None:
        """First input beat .. first output beat (cycles)."""
        if self.first_in is None or self.first_out is None:
            return None
        return self.first_out - self.first_in

    @property
    def latency(self) -> int | None:
        """First input beat .. last output beat, inclusive: the formula's definition."""
        if self.first_in is None or self.last_out is None:
            return None
        return self.last_out - self.first_in + 1

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "glue": self.glue,
            "first_in": self.first_in,
            "first_out": self.first_out,
            "last_out": self.last_out,
            "formula": self.formula,
        }

    @classmethod
    def from_json(cls, d: dict) -> LatencyStep:
        return cls(
            name=d["name"],
            kind=d["kind"],
            glue=bool(d["glue"]),
            first_in=d.get("first_in"),
            first_out=d.get("first_out"),
            last_out=d.get("last_out"),
            formula=d.get("formula"),
        )


@dataclass
class Totals:
    """The design as a whole. `fmax_mhz` / `fps_at_fmax` come from place and route: they are
    in report.json exactly when the report has a `pnr` section (as null if nextpnr reported no
    Fmax).

    `est` and `synth` are the sums over the stages; `fifos` is the estimate of the glue FIFOs
    the generated top inserts between stages (`fifo_count` of them, at their sized depths),
    which the stage rows do not contain. `utilization` is the whole accelerator (stages, by
    Yosys where synthesized, else estimated, plus the glue FIFOs) in percent of the part, per
    resource (LUT, FF, BRAM, DSP)."""

    cycles_per_frame: int
    bottleneck: str
    fps_at_clock: float
    latency_estimate_cycles: int
    est: Resources
    synth: SynthTotals | None = None
    fmax_mhz: float | None = None
    fps_at_fmax: float | None = None
    fifos: Resources | None = None
    fifo_count: int | None = None
    utilization: dict[str, float] | None = None

    @property
    def accelerator(self) -> Resources:
        """The whole accelerator: the stages (synthesized, else estimated) + glue FIFOs."""
        stages = self.synth if self.synth is not None else self.est
        return stages + self.fifos if self.fifos is not None else stages

    def to_json(self, placed: bool = False) -> dict:
        d = {
            "cycles_per_frame": self.cycles_per_frame,
            "bottleneck": self.bottleneck,
            "fps_at_clock": self.fps_at_clock,
            "latency_estimate_cycles": self.latency_estimate_cycles,
            "est": self.est.to_json(),
        }
        if self.synth is not None:
            d["synth"] = self.synth.to_json()
        if placed:
            d["fmax_mhz"] = self.fmax_mhz
            d["fps_at_fmax"] = self.fps_at_fmax
        if self.fifos is not None:
            d["fifos"] = {"count": self.fifo_count, "est": self.fifos.to_json()}
        if self.utilization is not None:
            d["utilization_percent"] = self.utilization
        return d

    @classmethod
    def from_json(cls, d: dict) -> Totals:
        return cls(
            cycles_per_frame=d["cycles_per_frame"],
            bottleneck=d["bottleneck"],
            fps_at_clock=d["fps_at_clock"],
            latency_estimate_cycles=d["latency_estimate_cycles"],
            est=Resources.from_json(d["est"]),
            synth=Resources.from_json(d["synth"]) if d.get("synth") is not None else None,
            fmax_mhz=d.get("fmax_mhz"),
            fps_at_fmax=d.get("fps_at_fmax"),
            fifos=Resources.from_json(d["fifos"]["est"]) if d.get("fifos") else None,
            fifo_count=d["fifos"]["count"] if d.get("fifos") else None,
            utilization=d.get("utilization_percent"),
        )


@dataclass
class SimSummary:
    """The verification simulation of the built RTL (also written as sim/result.json)."""

    frames: int
    inputs: str  # where the frames came from (a dataset, a file, random)
    mismatches: int  # frames whose RTL outputs differ from the reference's (below)
    cycles_per_frame: float | None  # measured steady state
    latency_cycles: int | None
    total_cycles: int
    fifo_depths: dict[str, int]  # stream -> depth of its FIFO in the built RTL
    problems: list[str]
    verdict: str  # "yes": every frame equal to the reference, else "NO"
    # the first frame through every stage and glue FIFO, in pipeline order; on a chain the
    # `first_beat`s add up to the cycles from the first input beat to the first output beat,
    # and `latency_cycles` = that sum + `output_span`
    latency_path: list[LatencyStep] = field(default_factory=list)
    output_span: int | None = None  # first frame on the output port: last beat - first + 1
    # what the RTL was compared with: the integer model, or (truth tables with filled
    # don't-cares) the design's own tables; then how many of the frames those tables answer
    # differently from the integer model
    reference: str = "integer model"
    differ_from_integer: int | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "yes"

    @property
    def is_chain(self) -> bool:
        """Each element of `latency_path` starts when the one before it delivers its first beat
        (one stream from stage to stage): the first-beat sum then spans the whole pipeline."""
        p = self.latency_path
        return bool(p) and all(
            a.first_out is not None and a.first_out == b.first_in for a, b in pairwise(p)
        )

    def to_json(self) -> dict:
        d = {
            "frames": self.frames,
            "inputs": self.inputs,
            "mismatches": self.mismatches,
            "cycles_per_frame": self.cycles_per_frame,
            "latency_cycles": self.latency_cycles,
            "total_cycles": self.total_cycles,
            "fifo_depths": self.fifo_depths,
            "problems": self.problems,
            "verdict": self.verdict,
        }
        if self.latency_path:
            d["latency_path"] = [s.to_json() for s in self.latency_path]
            d["output_span"] = self.output_span
        if self.differ_from_integer is not None:
            d["reference"] = self.reference
            d["differ_from_integer"] = self.differ_from_integer
        return d

    @classmethod
    def from_json(cls, d: dict) -> SimSummary:
        return cls(
            frames=d["frames"],
            inputs=d["inputs"],
            mismatches=d["mismatches"],
            cycles_per_frame=d["cycles_per_frame"],
            latency_cycles=d["latency_cycles"],
            total_cycles=d["total_cycles"],
            fifo_depths=dict(d["fifo_depths"]),
            problems=list(d["problems"]),
            verdict=d["verdict"],
            latency_path=[LatencyStep.from_json(s) for s in d.get("latency_path", [])],
            output_span=d.get("output_span"),
            reference=d.get("reference", "integer model"),
            differ_from_integer=d.get("differ_from_integer"),
        )


@dataclass
class RtlSummary:
    """The generated RTL: its top module and Verilog files, and what the build made of it for
    a board (deploy/ for Xilinx parts, board/ for an ECP5 board top); paths relative to the
    build directory."""

    top: str
    files: list[str]
    deployment: list[str] = field(default_factory=list)
    # run-time weights: the words the host streams into s_axis_weights after reset (the
    # build's weights.bin); 0: every weight is a constant of the bitstream
    weight_words: int = 0

    def to_json(self) -> dict:
        d: dict[str, Any] = {"top": self.top, "files": self.files}
        if self.deployment:
            d["deployment"] = self.deployment
        if self.weight_words:
            d["weight_words"] = self.weight_words
        return d

    @classmethod
    def from_json(cls, d: dict) -> RtlSummary:
        return cls(top=d["top"], files=list(d["files"]), deployment=list(d.get("deployment", [])),
                   weight_words=d.get("weight_words", 0))  # fmt: skip


@dataclass
class PnrSummary:
    """Place and route with nextpnr: Fmax, utilization per BEL type, the bitstream (relative to
    the build directory)."""

    part: str
    fmax_mhz: float | None
    timing_met: bool
    utilization: dict[str, dict[str, int]]
    bitstream: str | None

    def to_json(self) -> dict:
        return {
            "part": self.part,
            "fmax_mhz": self.fmax_mhz,
            "timing_met": self.timing_met,
            "utilization": self.utilization,
            "bitstream": self.bitstream,
        }

    @classmethod
    def from_json(cls, d: dict) -> PnrSummary:
        return cls(
            part=d["part"],
            fmax_mhz=d["fmax_mhz"],
            timing_met=d["timing_met"],
            utilization={k: dict(v) for k, v in d["utilization"].items()},
            bitstream=d["bitstream"],
        )


@dataclass
class SegmentRow:
    """One device of a multi-device build (`qloom build --devices`): the contiguous stages it
    holds, their estimate (and Yosys totals with --synth), its glue FIFOs, its share of the
    part, and its own simulation (the segment top alone on the model's stream at its cut)."""

    index: int
    part: str
    dir: str  # relative to the build directory: segments/<index>_<part>
    stages: list[str]
    input_stream: str
    output_streams: list[str]
    cycles_per_frame: int  # its slowest stage
    est: Resources
    utilization: dict[str, float]  # stages + glue FIFOs (Yosys where synthesized), % of part
    load: float  # the most used resource as a fraction of the --max-utilization cap
    fifos: Resources | None = None
    fifo_count: int | None = None
    synth: Resources | None = None
    rtl_top: str | None = None
    sim: dict[str, Any] | None = None  # frames, mismatches, cycles_per_frame, formula, ...

    def to_json(self) -> dict:
        d: dict[str, Any] = {
            "index": self.index,
            "part": self.part,
            "dir": self.dir,
            "stages": self.stages,
            "input_stream": self.input_stream,
            "output_streams": self.output_streams,
            "cycles_per_frame": self.cycles_per_frame,
            "est": self.est.to_json(),
            "utilization_percent": self.utilization,
            "load": self.load,
        }
        if self.fifos is not None:
            d["fifos"] = {"count": self.fifo_count, "est": self.fifos.to_json()}
        if self.synth is not None:
            d["synth"] = self.synth.to_json()
        if self.rtl_top is not None:
            d["rtl_top"] = self.rtl_top
        if self.sim is not None:
            d["sim"] = self.sim
        return d

    @classmethod
    def from_json(cls, d: dict) -> SegmentRow:
        fifos = d.get("fifos")
        return cls(
            index=d["index"],
            part=d["part"],
            dir=d["dir"],
            stages=list(d["stages"]),
            input_stream=d["input_stream"],
            output_streams=list(d["output_streams"]),
            cycles_per_frame=d["cycles_per_frame"],
            est=Resources.from_json(d["est"]),
            utilization=dict(d["utilization_percent"]),
            load=d["load"],
            fifos=Resources.from_json(fifos["est"]) if fifos else None,
            fifo_count=fifos["count"] if fifos else None,
            synth=Resources.from_json(d["synth"]) if d.get("synth") is not None else None,
            rtl_top=d.get("rtl_top"),
            sim=d.get("sim"),
        )


@dataclass
class LinkRow:
    """The link from device `index` to device `index + 1`: its model, the stream it carries
    and the cycles per frame that stream needs on it (and, simulated, what it took)."""

    index: int
    name: str
    gbps: float
    latency_cycles: int
    stream: str
    after_stage: str
    bits_per_frame: int
    bits_per_cycle: float
    cycles_per_frame: int
    beat_delay_cycles: int
    sim: dict[str, Any] | None = None  # cycles_per_frame, latency_min, mismatches

    def to_json(self) -> dict:
        d: dict[str, Any] = {
            "index": self.index,
            "from": self.index,
            "to": self.index + 1,
            "name": self.name,
            "gbps": self.gbps,
            "latency_cycles": self.latency_cycles,
            "stream": self.stream,
            "after_stage": self.after_stage,
            "bits_per_frame": self.bits_per_frame,
            "bits_per_cycle": self.bits_per_cycle,
            "cycles_per_frame": self.cycles_per_frame,
            "beat_delay_cycles": self.beat_delay_cycles,
        }
        if self.sim is not None:
            d["sim"] = self.sim
        return d

    @classmethod
    def from_json(cls, d: dict) -> LinkRow:
        return cls(
            index=d["index"],
            name=d["name"],
            gbps=d["gbps"],
            latency_cycles=d["latency_cycles"],
            stream=d["stream"],
            after_stage=d["after_stage"],
            bits_per_frame=d["bits_per_frame"],
            bits_per_cycle=d["bits_per_cycle"],
            cycles_per_frame=d["cycles_per_frame"],
            beat_delay_cycles=d["beat_delay_cycles"],
            sim=d.get("sim"),
        )


@dataclass
class PartitionSummary:
    """A build across several devices: the segments (report.json "partition": "devices")
    and the links between them; `cycles_per_frame` is the chain's, its slowest stage or
    link. Absent from the report of a one-part build."""

    devices: list[SegmentRow]
    links: list[LinkRow]
    cycles_per_frame: int
    bottleneck: str
    max_utilization: float

    def to_json(self) -> dict:
        return {
            "devices": [s.to_json() for s in self.devices],
            "links": [lk.to_json() for lk in self.links],
            "cycles_per_frame": self.cycles_per_frame,
            "bottleneck": self.bottleneck,
            "max_utilization": self.max_utilization,
        }

    @classmethod
    def from_json(cls, d: dict) -> PartitionSummary:
        return cls(
            devices=[SegmentRow.from_json(s) for s in d["devices"]],
            links=[LinkRow.from_json(lk) for lk in d["links"]],
            cycles_per_frame=d["cycles_per_frame"],
            bottleneck=d["bottleneck"],
            max_utilization=d["max_utilization"],
        )


@dataclass
class BuildReport:
    """Everything a build found, in the order report.json lists it."""

    model: str  # the build's name
    input: str  # the model file as given
    part: str
    clock_mhz: float
    target_fps: float | None
    input_domain: InputDomain | None = None
    folding: str | None = None  # how the folding was chosen
    stages: list[StageRow] = field(default_factory=list)  # in report.json with the totals
    totals: Totals | None = None
    sim: SimSummary | None = None
    rtl: RtlSummary | None = None
    pnr: PnrSummary | None = None
    partition: PartitionSummary | None = None  # --devices: the segments and links
    dir: Path | None = None  # the build directory (not in report.json)

    def to_json(self) -> dict:
        """The content of report.json."""
        d: dict[str, Any] = {
            "model": self.model,
            "input": self.input,
            "part": self.part,
            "clock_mhz": self.clock_mhz,
            "target_fps": self.target_fps,
        }
        if self.input_domain is not None:
            d["input_domain"] = self.input_domain.to_json()
        if self.folding is not None:
            d["folding"] = self.folding
        if self.totals is not None:
            d["stages"] = [s.to_json() for s in self.stages]
            d["totals"] = self.totals.to_json(placed=self.pnr is not None)
        if self.sim is not None:
            d["sim"] = self.sim.to_json()
        if self.rtl is not None:
            d["rtl"] = self.rtl.to_json()
        if self.pnr is not None:
            d["pnr"] = self.pnr.to_json()
        if self.partition is not None:
            d["partition"] = self.partition.to_json()
        return d

    def dumps(self) -> str:
        """report.json's text."""
        return json.dumps(self.to_json(), indent=2, default=str)

    @classmethod
    def from_json(cls, d: dict, dir: Path | str | None = None) -> BuildReport:
        def section(key, kind):
            return kind.from_json(d[key]) if d.get(key) is not None else None

        return cls(
            model=d["model"],
            input=d["input"],
            part=d["part"],
            clock_mhz=d["clock_mhz"],
            target_fps=d.get("target_fps"),
            input_domain=section("input_domain", InputDomain),
            folding=d.get("folding"),
            stages=[StageRow.from_json(s) for s in d.get("stages") or []],
            totals=section("totals", Totals),
            sim=section("sim", SimSummary),
            rtl=section("rtl", RtlSummary),
            pnr=section("pnr", PnrSummary),
            partition=section("partition", PartitionSummary),
            dir=Path(dir) if dir is not None else None,
        )

    @classmethod
    def read(cls, build_dir: Path | str) -> BuildReport:
        """The report.json of a build directory (`dir` set to that directory); a file that
        is not a build report is a QloomError naming it."""
        d = Path(build_dir)
        path = d / "report.json"
        try:
            return cls.from_json(json.loads(path.read_text()), dir=d)
        except OSError as e:
            raise QloomError(f"{path}: cannot read the build report ({e.strerror})") from None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise QloomError(
                f"{path} is not a qloom build report ({type(e).__name__}: {e})"
            ) from None
