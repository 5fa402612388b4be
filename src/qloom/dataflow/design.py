"""DataflowDesign: the ordered hardware stages of one accelerator, their streams, and the
host-side float tail; executable on images, with cycle and latency estimates and FINN-style
folding.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qloom.dataflow.stage import Stage, StreamSpec, from_beats, to_beats
from qloom.ir import Graph, Node, TensorInfo


@dataclass(frozen=True, eq=False)
class DataflowDesign:
    name: str
    source: Graph  # the integer graph it was made from
    stages: tuple[Stage, ...]  # topological order
    streams: dict[str, StreamSpec]  # stream name -> what it carries
    input_stream: str  # fed by the host: the integer graph's input, channels-last
    output_streams: dict[str, str]  # integer-graph tensor leaving the accelerator -> stream
    output_shapes: dict[str, tuple[int, ...]]
    host: Graph | None = None  # float tail (and what follows it) run on the host
    meta: dict = field(default_factory=dict)

    # -- queries --------------------------------------------------------------------------------
    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def of_kind(self, kind: str) -> list[Stage]:
        return [s for s in self.stages if s.kind == kind]

    @property
    def input_spec(self) -> StreamSpec:
        return self.streams[self.input_stream]

    def cycles_per_frame(self) -> int:
        """Initiation interval of the pipeline: the slowest stage's cycles per frame."""
        return max((s.cycles_per_frame() for s in self.stages), default=0)

    def bottleneck(self) -> Stage:
        return max(self.stages, key=lambda s: s.cycles_per_frame())

    def latency_estimate(self) -> int:
        """Cycles from a frame's first input beat to its last output beat (both counted), from
        the stages' formulas, overlap included (`stream_timing`). Glue FIFOs (LUTRAM,
        fall-through) add nothing. An estimate: report.json has the simulated latency beside
        it."""
        _, last = self.stream_timing()
        return max(last[s] for s in self.output_streams.values()) + 1

    def stream_timing(self) -> tuple[dict[str, int], dict[str, int]]:
        """Per stream, the estimated cycles of a frame's first and last beat (the input's first
        beat at 0): the frame enters one beat per cycle; a stage starts when all its inputs
        have started; given how far apart its input beats come (their spacing), its first
        output comes `first_out_cycles(spacing)` later and its last one at max(last input beat
        + `tail_cycles(spacing)`, first input beat + `latency_cycles` - 1) (a slow input delays
        it, so does its own pace)."""
        first = {self.input_stream: 0}
        last = {self.input_stream: self.input_spec.beats - 1}

        def spacing(s: str) -> float:
            beats = self.streams[s].beats
            return (last[s] - first[s]) / (beats - 1) if beats > 1 else 1.0

        for st in self.stages:
            f_in = max(first[s] for s in st.inputs)
            l_in = max(last[s] for s in st.inputs)
            gap = max(spacing(s) for s in st.inputs)
            out = f_in + st.first_out_cycles(gap)
            end = max(l_in + st.tail_cycles(gap), f_in + st.latency_cycles() - 1)
            for s in st.outputs:
                first[s], last[s] = min(out, end), end
        return first, last

    def memory_bits(self) -> int:
        return sum(s.memory_bits() for s in self.stages)

    @property
    def departs_from_graph(self) -> bool:
        """True where a stage computes its own function rather than the integer graph's
        (truth tables with filled don't-cares): the RTL must then equal this design's folded
        model (`execute`), not the integer graph."""
        return any(getattr(s, "dont_care", "") for s in self.stages)

    def fps(self, clock_mhz: float = 100.0) -> float:
        return clock_mhz * 1e6 / max(1, self.cycles_per_frame())

    # -- execution ------------------------------------------------------------------------------
    def run_streams(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Integer-graph input (N, ...) channels-last -> every stream (N, beats, elems)."""
        spec = self.input_spec
        env = {self.input_stream: to_beats(x, spec.elems)}
        for stage in self.stages:
            outs = stage.execute(*(env[s] for s in stage.inputs))
            if len(stage.outputs) == 1 and not isinstance(outs, tuple):
                outs = (outs,)
            for name, value in zip(stage.outputs, outs, strict=True):
                env[name] = value
        return env

    def execute(
        self, images: np.ndarray, *, keep_streams: bool = False, batch: int = 1000
    ) -> dict[str, np.ndarray]:
        """Raw images (N, C, H, W) as datasets give them -> the integer graph's outputs (same
        names and shapes as qloom.flow.run_integer), plus the accelerator's output tensors (and
        every stream with keep_streams=True)."""
        from qloom.execute import execute as run_graph
        from qloom.flow import integer_input

        parts = []
        for i in range(0, len(images), batch):
            env = self.run_streams(integer_input(self.source, images[i : i + batch]))
            out = {
                t: from_beats(env[s], self.output_shapes[t]) for t, s in self.output_streams.items()
            }
            if self.host is not None:
                out.update(run_graph(self.host, {t: out[t] for t in self.host.inputs}))
            if keep_streams:
                out.update({f"stream:{k}": v for k, v in env.items()})
            parts.append(out)
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def to_graph(self) -> Graph:
        """The design as a qloom IR graph (kind "dataflow"): one node per stage (op = stage kind,
        attrs["stage"] = the stage), one tensor per stream, shaped (beats, elems) per frame."""
        nodes = tuple(
            Node(s.kind, s.name, tuple(s.inputs), tuple(s.outputs), {"stage": s})
            for s in self.stages
        )
        tensors = {
            name: TensorInfo((spec.beats, spec.elems), spec.dtype, "")
            for name, spec in self.streams.items()
        }
        outputs = tuple(dict.fromkeys(self.output_streams.values()))
        return Graph(nodes, (self.input_stream,), outputs, tensors, name=self.name, kind="dataflow")

    # -- reports --------------------------------------------------------------------------------
    def folding_json(self) -> dict:
        """FINN-style folding.json: {"Defaults": {}, stage: {"PE":.., "SIMD":.., ...}}."""
        out: dict = {"Defaults": {}}
        for s in self.stages:
            f = s.folding()
            if f:
                out[s.name] = f
        return out

    def refold(self, folding: dict) -> DataflowDesign:
        """This design with the stages named in `folding` (FINN form: stage -> {"PE": ..,
        "SIMD": .., "ram_style": ..}) refolded and every other stage kept as it is.

        The stages check their own parameters (`Stage.refold` rules); the wiring between them
        (DWCs where stream widths change, Duplicate and FIFO specs, the input's elements per
        beat) follows from the folded widths, so it is derived again from the integer graph
        by the same lowering that made this design. The design itself is not changed."""
        from qloom.dataflow.lower import to_dataflow
        from qloom.errors import FoldingError

        names = {s.name for s in self.stages}
        unknown = sorted(k for k in folding if k != "Defaults" and k not in names)
        if unknown:
            raise FoldingError(
                f"refold of '{self.name}': no stage {', '.join(unknown)}; its stages: "
                f"{', '.join(s.name for s in self.stages if s.folding())}"
            )
        merged = self.folding_json()
        for name, params in folding.items():
            if name == "Defaults":
                continue
            # an entry with a "style" chooses the layer's stage kind: its own parameters only
            merged[name] = dict(params) if "style" in params else {**merged.get(name, {}), **params}
        return to_dataflow(self.source, merged)

    def write_folding(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.folding_json(), indent=2) + "\n")
        return p

    def to_json(self) -> dict:
        def spec(s: StreamSpec) -> dict:
            return {"dtype": str(s.dtype), "elems": s.elems, "beats": s.beats, "width": s.width}

        stages = []
        for s in self.stages:
            entry = {
                "name": s.name,
                "kind": s.kind,
                "finn_op": s.finn_op,
                "rtl_module": s.rtl_module,
                "inputs": list(s.inputs),
                "outputs": list(s.outputs),
                "in_streams": [spec(x) for x in s.in_streams()],
                "out_streams": [spec(x) for x in s.out_streams()],
                "folding": s.folding(),
                "cycles_per_frame": s.cycles_per_frame(),
                "memory_bits": s.memory_bits(),
                "rtl_params": s.rtl_params(),
            }
            stages.append(entry)
        return {
            "name": self.name,
            "input_stream": self.input_stream,
            "input": spec(self.input_spec),
            "output_streams": dict(self.output_streams),
            "outputs": {t: spec(self.streams[s]) for t, s in self.output_streams.items()},
            "host_ops": [n.op for n in self.host.nodes] if self.host is not None else [],
            "cycles_per_frame": self.cycles_per_frame(),
            "latency_estimate": self.latency_estimate(),
            "bottleneck": self.bottleneck().name if self.stages else None,
            "stages": stages,
        }

    def runtime_weight_stages(self) -> list[Stage]:
        """The stages whose weights are loaded after reset, in the order of the top's weight
        stream (stage order: their loaders form one daisy chain)."""
        return [s for s in self.stages if s.runtime_weights]

    def weight_words(self) -> np.ndarray:
        """Every uint32 word the host streams into the top's weight port (`s_axis_weights`)
        after reset: each runtime-weight stage's words, in chain order. The one definition of
        that order and format (simulation, `weights.bin`, drivers use it)."""
        parts = [s.weight_stream_words() for s in self.runtime_weight_stages()]
        return np.concatenate(parts).astype(np.uint32) if parts else np.zeros(0, np.uint32)

    def write_memories(self, directory: str | Path) -> dict[str, dict[str, Path]]:
        """$readmemh files of every stage with memories: stage -> {param: path}."""
        return {s.name: files for s in self.stages if (files := s.write_memories(directory))}

    def summary(self) -> str:
        lines = [
            f"Dataflow design {self.name}: input {self.input_stream} {self.input_spec}, "
            f"{len(self.stages)} stages, {self.cycles_per_frame()} cycles/frame "
            f"(bottleneck {self.bottleneck().name if self.stages else '-'}), latency ~ "
            f"{self.latency_estimate()} cycles"
        ]
        lines += ["  " + s.describe() for s in self.stages]
        if self.host is not None:
            lines.append(f"  host: {', '.join(n.op for n in self.host.nodes)}")
        return "\n".join(lines)
