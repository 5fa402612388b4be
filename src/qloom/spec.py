"""The invariants of each IR level, as executable checks (tests run them after every pass).

- imported graph: one input with a static shape, every op supported, every node input produced
  before use or constant;
- integer graph: every op executable by the integer executor (or a host op after the float
  tail), every tensor before the float tail integer-typed with a layout, thresholds ascending
  and integer, weights integer;
- dataflow design: every stream has one producer (a stage or the design input) and its
  consumers; the spec a stage declares for a port equals the stream it is connected to (the
  connect-time check of Amaranth's lib.wiring, with both sides named).

Each check raises SpecError naming the node, tensor or stage; it returns None when the IR holds.
"""

from __future__ import annotations

import numpy as np

from qloom.ir import Graph


class SpecError(AssertionError):
    """An IR that breaks its level's invariants (a bug in a pass, not the user's fault)."""


def check_imported(g: Graph) -> None:
    from qloom.frontend.load import SUPPORTED_OPS

    if g.kind != "imported" or len(g.inputs) != 1:
        raise SpecError(f"graph '{g.name}': an imported graph has one input, kind 'imported'")
    if g.inputs[0] not in g.tensors:
        raise SpecError(f"graph input '{g.inputs[0]}' has no shape")
    for n in g.nodes:
        if n.op not in SUPPORTED_OPS:
            raise SpecError(f"node '{n.name}': op {n.op} is not a supported import op")


def check_integer(g: Graph) -> None:
    from qloom.execute.integer import INTEGER_OPS
    from qloom.streamline.lower import HOST_OPS

    if g.kind != "integer" or len(g.inputs) != 1:
        raise SpecError(f"graph '{g.name}': an integer graph has one input, kind 'integer'")
    host: set[str] = set()
    for t in g.inputs:
        _integer_tensor(g, t, f"graph input '{t}'")
    for n in g.nodes:
        after_tail = n.op == "FloatTail" or any(t in host for t in n.inputs if t)
        if after_tail:
            if n.op != "FloatTail" and n.op not in HOST_OPS:
                raise SpecError(f"node '{n.name}': {n.op} after the float tail is not a host op")
            host.update(n.outputs)
            continue
        if n.op not in INTEGER_OPS:
            raise SpecError(f"node '{n.name}': op {n.op} has no integer executor")
        for t in n.outputs:
            _integer_tensor(g, t, f"output '{t}' of node '{n.name}' ({n.op})")
        if "weights" in n.attrs:
            w = np.asarray(n.attrs["weights"])
            if not np.issubdtype(w.dtype, np.integer):
                raise SpecError(f"node '{n.name}': weights of type {w.dtype}, not integers")
        if n.op == "MultiThreshold":
            t = np.asarray(n.attrs["thresholds"])
            if not np.issubdtype(t.dtype, np.integer) or np.any(np.diff(t, axis=-1) < 0):
                raise SpecError(f"node '{n.name}': thresholds are not ascending integers")
    for t in g.outputs:
        if t not in host and t not in g.tensors:
            raise SpecError(f"graph output '{t}' has no tensor info")


def _integer_tensor(g: Graph, t: str, what: str) -> None:
    info = g.tensors.get(t)
    if info is None:
        raise SpecError(f"{what} has no tensor info")
    if info.dtype.is_float:
        raise SpecError(f"{what} is FLOAT32 before the float tail")
    want = "NHWC" if len(info.shape) == 3 else "NC"
    if info.layout != want:
        raise SpecError(f"{what} of shape {info.shape} has layout {info.layout!r}, not {want}")


def check_dataflow(design) -> None:
    """Streams and stage ports agree; every stream is produced once and consumed."""
    produced: dict[str, str] = {design.input_stream: "the design input"}
    for s in design.stages:
        for port, (stream, spec) in enumerate(zip(s.outputs, s.out_streams(), strict=False)):
            if stream in produced:
                raise SpecError(
                    f"stream '{stream}' is driven by both {produced[stream]} and stage '{s.name}'"
                )
            produced[stream] = f"stage '{s.name}' ({s.kind})"
            _same(design, stream, spec, f"output {port} of stage '{s.name}' ({s.kind})")
    consumed: set[str] = set(design.output_streams.values())
    for s in design.stages:
        if len(s.inputs) != len(s.in_streams()) or len(s.outputs) != len(s.out_streams()):
            raise SpecError(f"stage '{s.name}' ({s.kind}): ports and streams differ in number")
        for port, (stream, spec) in enumerate(zip(s.inputs, s.in_streams(), strict=False)):
            if stream not in produced:
                raise SpecError(f"stage '{s.name}' reads stream '{stream}', which nothing drives")
            consumed.add(stream)
            _same(design, stream, spec, f"input {port} of stage '{s.name}' ({s.kind})")
    unused = sorted(set(produced) - consumed)
    if unused:
        raise SpecError(f"stream(s) {', '.join(unused)} are driven but never read")


def _same(design, stream: str, spec, where: str) -> None:
    have = design.streams.get(stream)
    if have != spec:
        raise SpecError(f"{where} declares {spec}, but stream '{stream}' carries {have}")
