"""Integer graph -> dataflow design: one hardware stage per layer, wired with AXI-Streams.

This module is the generic driver: it plans which nodes run in hardware and which on the host,
fuses a MultiThreshold into the MVAU before it, and wires streams (Duplicate, DWC, FIFO); the
rule that turns an op into stages lives in that stage's file (qloom.dataflow.rules registry).

Requires: an integer graph (qloom.streamline.streamline).
Guarantees: the returned DataflowDesign executes bit-exactly like the integer graph:
  * Conv / XnorConv       -> SWU + MVAU (XnorConv: binary mode)
  * MatMul / XnorMatMul   -> MVAU; a MultiThreshold that is the sole consumer of its output is
                             fused into it (a per-channel `negate` flips the weight rows);
                             otherwise NT = 0 and the MVAU streams its accumulators
  * MultiThreshold        -> Thresholding (standalone)
  * MaxPool               -> MaxPool (K == stride, no padding)
  * SumPool (average pool) -> SumPool (the same windows; the Thresholding after it divides)
  * Add                   -> Add, fed through a Duplicate and a frame-deep bypass FIFO
  * Mul (of two streams)  -> ElementwiseMul (qloom.dataflow.mul), frame-deep FIFOs in front
  * TopK / ArgMax after a FloatTail that is the same strictly increasing function of the
    accumulator for every element -> LabelSelect on the accumulators
  * any other FloatTail (and what follows it) stays on the host (`DataflowDesign.host`)
A tensor read by several stages gets Duplicate stages; a producer/consumer pair with different
elements per beat gets DWC stages (through lcm(a, b) when neither divides the other).

Folding: PE = SIMD = 1 everywhere unless `folding` (FINN folding.json form: stage name ->
{"PE": .., "SIMD": .., "ram_style": ..}) says otherwise. Stage names are the integer graph's
node names (MVAU: the MatMul/Conv node; Thresholding: the MultiThreshold node), "<conv>_swu"
for sliding windows, and generated names for Duplicate/DWC/FIFO stages.
A SWU takes SIMD = gcd(its MVAU's SIMD, channels) unless folded explicitly.
A Thresholding whose thresholds are the same for every channel may take any PE that divides the
frame: its threshold memory is then replicated over lcm(channels, PE) channels.

Zero padding of a BIPOLAR image (a padded Conv on +-1 activations; 0 is not a BIPOLAR value):
a Thresholding stage "<conv>_widen" (T = [1, 1], OUT_BASE = -1) turns the 1-bit stream into INT2
values +-1, the SWU pads that with 0 and the MVAU runs in multi-bit mode on {-1, 0, +1}.
Any other padding value outside the stream's type raises UnsupportedModelError.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# (qloom.dataflow imports every stage module, which registers its lowering rules)
from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.duplicate import Duplicate
from qloom.dataflow.dwc import DWC
from qloom.dataflow.fifo import FIFO
from qloom.dataflow.rules import RULES, unsupported
from qloom.dataflow.stage import Stage, StreamSpec, dwc_chain_elems
from qloom.datatype import DataType
from qloom.errors import FoldingError, UnsupportedModelError
from qloom.execute.integer import apply_steps
from qloom.ir import Graph, Node

LINEAR_OPS = ("MatMul", "XnorMatMul", "Conv", "XnorConv")
LABEL_OPS = ("TopK", "ArgMax")
# FINN folding.json keys qloom accepts and ignores
IGNORED_KEYS = {
    "mem_mode",
    "resType",
    "runtime_writeable_weights",  # the MVAU lowering reads it: 1 = "weights": "runtime"
    "ram_style_thresholds",
    "impl_style",
    "inFIFODepths",
    "outFIFODepths",
    "parallel_window",
    "preferred_backend",
    "rtlsim_trace",
    "depth_trigger_uram",
    "depth_trigger_bram",
}
MAX_MONOTONE_CHECK = 1 << 20


def to_dataflow(graph: Graph, folding: dict | None = None) -> DataflowDesign:
    """Map an integer graph onto hardware stages (see the module docstring)."""
    from qloom.spec import check_dataflow

    design = LoweringContext(graph, folding or {}).run()
    check_dataflow(design)
    return design


def _strictly_increasing_tail(g: Graph, tail: Node) -> bool:
    """True if the FloatTail maps every accumulator value to float32 by one and the same strictly
    increasing function for all its elements, so that ranking the outputs = ranking the ints."""
    idx = np.asarray(tail.attrs["idx"]).ravel()
    size = int(np.prod(g.tensors[tail.inputs[0]].shape))
    if not np.array_equal(idx, np.arange(size)):
        return False
    dt = g.tensors[tail.inputs[0]].dtype
    if dt.is_float or dt.max - dt.min + 1 > MAX_MONOTONE_CHECK:
        return False
    values = np.arange(dt.min, dt.max + 1, dtype=np.int64)
    chan = np.asarray(tail.attrs["channel_of"]).ravel()
    x = np.broadcast_to(values[:, None], (values.size, size))
    y = apply_steps(x, tail.attrs["steps"], chan)
    if y.shape != x.shape:
        return False
    return bool(np.all(y == y[:, :1]) and np.all(np.diff(y[:, 0]) > 0))


class LoweringContext:
    """What a lowering rule (qloom.dataflow.rules) works with: the integer graph `g`, the stream
    type of each tensor (`dtype_of`), `fold` (the user's folding for a stage, checked against
    its parameters), `place` (wire a stage between tensors), and the wiring state."""

    def __init__(self, g: Graph, folding: dict):
        if g.kind != "integer":
            raise UnsupportedModelError(
                f"graph '{g.name}' is a {g.kind} graph; to_dataflow needs an integer graph "
                "(qloom.streamline.streamline)"
            )
        self.g = g
        self.folding = {k: v for k, v in folding.items() if k != "Defaults"}
        self.used_folding: set[str] = set()
        self.stages: list[Stage] = []
        self.streams: dict[str, StreamSpec] = {}
        self.dtype_of: dict[str, DataType] = {}  # tensor -> dtype of the stream carrying it
        self.pending: dict[str, tuple[str | None, DataType, int | None]] = {}
        self.branches: dict[str, list[str]] = {}
        self.direct_dup: set[str] = set()  # streams coming straight out of a Duplicate
        self.uses: dict[str, int] = {}
        self.fused_into: dict[str, str] = {}

    # -- planning -----------------------------------------------------------------------------
    def _plan(self):
        g = self.g
        host: list[Node] = []
        labels: dict[str, Node] = {}  # label node name -> its FloatTail
        hw: list[tuple[str, tuple[Node, ...]]] = []
        fused: set[str] = set()
        host_tensors: set[str] = set()
        for node in g.nodes:
            if node.op == "FloatTail" or any(t in host_tensors for t in node.inputs):
                if node.op in LABEL_OPS and self._label_ok(node):
                    labels[node.name] = g.producer(node.inputs[0])
                    host.remove(labels[node.name])
                    hw.append(("label", (node, labels[node.name])))
                    continue
                host.append(node)
                host_tensors.update(node.outputs)
                continue
            if node.name in fused:
                continue
            if node.op not in RULES or node.op in LABEL_OPS:
                ops = ", ".join(op for op in RULES if op not in LABEL_OPS)
                raise unsupported(
                    node,
                    f"has no hardware stage (supported: {ops}, TopK/ArgMax on the "
                    "accumulators; FloatTail runs on the host)",
                )
            mt = self._fusable_threshold(node) if node.op in LINEAR_OPS else None
            if mt is not None:  # the MVAU applies the thresholds itself
                fused.add(mt.name)
                self.fused_into[mt.name] = node.name
                hw.append(("stage", (node, mt)))
            else:
                hw.append(("stage", (node,)))
        return hw, host

    def _fusable_threshold(self, node: Node) -> Node | None:
        out = node.outputs[0]
        users = self.g.consumers(out)
        if len(users) != 1 or out in self.g.outputs or users[0].op != "MultiThreshold":
            return None
        mt = users[0]
        if mt.attrs.get("negate") is not None and node.op.startswith("Xnor"):
            return None
        return mt

    def _label_ok(self, node: Node) -> bool:
        g = self.g
        tail = g.producer(node.inputs[0])
        if tail is None or tail.op != "FloatTail" or len(node.inputs) > 1 and node.inputs[1]:
            return False
        if tail.outputs[0] in g.outputs or len(g.consumers(tail.outputs[0])) != 1:
            return False
        if g.producer(tail.inputs[0]) is None:
            return False
        shape = tuple(np.asarray(tail.attrs["idx"]).shape)
        axis = node.attrs.get("axis", -1 if node.op == "TopK" else 0)
        axis = axis % max(1, len(shape))
        if any(s != 1 for i, s in enumerate(shape) if i != axis):
            return False
        if node.op == "TopK":
            if not node.attrs.get("largest", 1) or not node.attrs.get("sorted", 1):
                return False
            if node.outputs[0] in g.outputs or g.consumers(node.outputs[0]):
                return False  # the top values (floats) are needed: keep TopK on the host
        elif node.attrs.get("select_last_index", 0):
            return False
        return _strictly_increasing_tail(g, tail)

    # -- folding ------------------------------------------------------------------------------
    def fold(self, name: str, kind: str, defaults: dict) -> dict:
        req = self.folding.get(name, {})
        self.used_folding.add(name)
        out = dict(defaults)
        for key, value in req.items():
            if key in IGNORED_KEYS:
                continue
            if key not in defaults:
                allowed = ", ".join(defaults) or "nothing"
                raise FoldingError(
                    f"{kind} '{name}': {key} is not a folding parameter of a "
                    f"{kind} (it has: {allowed})"
                )
            out[key] = value
        return out

    # -- streams ------------------------------------------------------------------------------
    def register(self, tensor: str, stream: str, spec: StreamSpec) -> None:
        self.streams[stream] = spec
        self.dtype_of[tensor] = spec.dtype
        self.pending[tensor] = (stream, spec.dtype, spec.elems)

    def add_stage(self, stage: Stage) -> Stage:
        self.stages.append(stage)
        return stage

    def take(self, tensor: str, elems: int | None, consumer: str) -> str:
        """A stream carrying `tensor` with `elems` elements per beat (None: as produced)."""
        if tensor not in self.branches:
            stream, dtype, p_elems = self.pending[tensor]
            if stream is None:  # the graph input: the host sends what the consumer wants
                stream = tensor
                total = int(np.prod(self.g.tensors[tensor].shape))
                e = elems or 1
                self.streams[stream] = StreamSpec(dtype, e, total // e)
                self.input_stream = stream
            spec = self.streams[stream]
            branches = [stream]
            n = max(1, self.uses.get(tensor, 1))
            i = 0
            while len(branches) < n:
                src = branches.pop(0)
                dup = f"{tensor}_dup{i}"
                outs = (f"{dup}_out0", f"{dup}_out1")
                self.add_stage(Duplicate(dup, spec, inputs=(src,), outputs=outs))
                for o in outs:
                    self.streams[o] = spec
                    self.direct_dup.add(o)
                branches.extend(outs)
                i += 1
            self.branches[tensor] = branches
        stream = self.branches[tensor].pop(0)
        spec = self.streams[stream]
        if elems is None or elems == spec.elems:
            return stream
        chain = dwc_chain_elems(spec.elems, elems)
        direct = stream in self.direct_dup
        for j, (a, b) in enumerate(zip(chain, chain[1:], strict=False)):
            name = f"{consumer}_dwc_{tensor}" + (f"_{j}" if len(chain) > 2 else "")
            dwc = DWC(name, spec.dtype, spec.frame_elems, a, b, inputs=(stream,))
            stream = f"{name}_out"
            self.add_stage(dataclasses.replace(dwc, outputs=(stream,)))
            self.streams[stream] = dwc.out_streams()[0]
            if direct:
                self.direct_dup.add(stream)
        return stream

    def take_joined(
        self, tensor: str, spec: StreamSpec, consumer: str, port: int, always: bool = False
    ) -> str:
        """`take` for one input of a stage that joins two branches (Add, Concat): a stream
        straight out of a Duplicate (the other branch starts at the same tensor), or any
        stream with `always`, gets a frame-deep FIFO "<consumer>_fifo<port>", so that it can
        wait for the other branch."""
        s = self.take(tensor, spec.elems, consumer)
        if s not in self.direct_dup and not always:
            return s
        name = f"{consumer}_fifo{port}"
        ffold = self.fold(name, "FIFO", {"depth": spec.beats, "ram_style": "auto"})
        self.add_stage(FIFO(name, spec, depth=ffold["depth"], ram_style=ffold["ram_style"],
                            inputs=(s,), outputs=(f"{name}_out",)))  # fmt: skip
        self.streams[f"{name}_out"] = spec
        return f"{name}_out"

    def place(self, stage: Stage, in_tensors: list[str], out_tensor: str | None) -> Stage:
        ins = tuple(
            self.take(t, spec.elems, stage.name)
            for t, spec in zip(in_tensors, stage.in_streams(), strict=True)
        )
        outs: tuple[str, ...] = ()
        if out_tensor is not None:
            outs = (out_tensor,)
        stage = dataclasses.replace(stage, inputs=ins, outputs=outs)
        self.add_stage(stage)
        if out_tensor is not None:
            self.register(out_tensor, out_tensor, stage.out_streams()[0])
        return stage

    # -- stages -------------------------------------------------------------------------------
    def thresholds(self, node: Node, channels: int) -> np.ndarray:
        t = np.asarray(node.attrs["thresholds"], dtype=np.int64)
        if t.shape[0] == 1 and channels > 1:
            t = np.repeat(t, channels, axis=0)
        if t.shape[0] != channels:
            raise unsupported(node, f"{t.shape[0]} threshold rows for {channels} channels")
        return t

    # -- driver -------------------------------------------------------------------------------
    def run(self) -> DataflowDesign:
        g = self.g
        hw, host = self._plan()
        self.label_shapes: dict[str, tuple[int, ...]] = {}
        # how many streams each tensor feeds: hardware stages, the host, graph outputs
        host_inputs: list[str] = []
        produced_by_host = {o for n in host for o in n.outputs}
        for n in host:
            for t in n.inputs:
                if (
                    t
                    and t not in produced_by_host
                    and t not in host_inputs
                    and t not in g.constants
                ):
                    host_inputs.append(t)
        uses: dict[str, int] = {}
        for kind, nodes in hw:
            if kind == "label":  # LabelSelect reads the accumulators under the FloatTail
                ins = [nodes[1].inputs[0]]
            else:
                ins = list(nodes[0].inputs)
            for t in ins:
                uses[t] = uses.get(t, 0) + 1
        label_outs = {
            (n[0].outputs[-1] if n[0].op == "TopK" else n[0].outputs[0])
            for k, n in hw
            if k == "label"
        }
        hw_outputs = list(host_inputs)
        for t in g.outputs:
            if t not in produced_by_host and t not in hw_outputs and t not in label_outs:
                hw_outputs.append(t)
        for t in hw_outputs:
            uses[t] = uses.get(t, 0) + 1
        self.uses = uses
        (inp,) = g.inputs
        self.input_stream = inp
        self.dtype_of[inp] = g.tensors[inp].dtype
        self.pending[inp] = (None, g.tensors[inp].dtype, None)
        for _, nodes in hw:
            RULES[nodes[0].op](self, nodes)
        out_streams = {t: self.take(t, None, "host") for t in hw_outputs}
        for t in label_outs:
            out_streams[t] = t
        unknown = set(self.folding) - self.used_folding
        if unknown:
            names = ", ".join(s.name for s in self.stages if s.folding())
            fused = "".join(
                f" ('{u}' is fused into MVAU '{self.fused_into[u]}')"
                for u in sorted(unknown)
                if u in self.fused_into
            )
            raise FoldingError(
                f"folding names unknown stage(s) {', '.join(sorted(unknown))}{fused}; "
                f"stages: {names}"
            )
        host_graph = None
        if host:
            outs = tuple(t for t in g.outputs if t in produced_by_host)
            host_graph = Graph(
                nodes=tuple(host),
                inputs=tuple(host_inputs),
                outputs=outs,
                tensors={k: v for k, v in g.tensors.items()},
                constants=dict(g.constants),
                name=f"{g.name}_host",
                kind="integer",
            )
        return DataflowDesign(
            name=g.name,
            source=g,
            stages=tuple(self.stages),
            streams=dict(self.streams),
            input_stream=self.input_stream,
            output_streams=out_streams,
            output_shapes={
                t: self.label_shapes.get(t, tuple(g.tensors[t].shape)) for t in out_streams
            },
            host=host_graph,
        )
