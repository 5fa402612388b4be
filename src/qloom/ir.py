"""qloom's own small graph IR.

A Graph is an immutable, topologically ordered tuple of Nodes plus tensor metadata. Nodes carry
their constant parameters (weights, thresholds) in `attrs` so a node is self-contained and a pass
can rewrite it without touching a separate initializer table. Shapes exclude the batch dimension
(every executed tensor has a leading batch axis). Passes never mutate: they build new graphs with
`Graph.replace_nodes` / `dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qloom.datatype import FLOAT32, DataType


@dataclass(frozen=True, eq=False)
class TensorInfo:
    """Per-sample shape, element type and layout of a tensor.

    For integer tensors `scale`/`zero_point` give the real value a quantizer meant:
    real = scale * (q - zero_point) (broadcast along the channel axis).
    """

    shape: tuple[int, ...]
    dtype: DataType = FLOAT32
    layout: str = ""  # "NCHW", "NHWC", "NC" or "" (unknown / not image-like)
    scale: np.ndarray | float | None = None
    zero_point: np.ndarray | float | None = None

    def __post_init__(self) -> None:
        assert all(isinstance(d, int) and d > 0 for d in self.shape), f"bad shape {self.shape}"


@dataclass(frozen=True, eq=False)
class Node:
    """One operation. `op` selects the semantics (see qloom.execute.OPS)."""

    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert isinstance(self.inputs, tuple) and isinstance(self.outputs, tuple)
        assert self.outputs, f"node {self.name} has no outputs"

    def with_attrs(self, **changes: Any) -> Node:
        return dataclasses.replace(self, attrs={**self.attrs, **changes})

    def __repr__(self) -> str:
        return f"Node({self.op} {self.name}: {list(self.inputs)} -> {list(self.outputs)})"


@dataclass(frozen=True, eq=False)
class Graph:
    """A dataflow graph. `constants` holds named constant tensors (imported graphs only)."""

    nodes: tuple[Node, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tensors: Mapping[str, TensorInfo]
    constants: Mapping[str, np.ndarray] = field(default_factory=dict)
    name: str = "graph"
    kind: str = "imported"  # "imported" (reference semantics) or "integer"

    def __post_init__(self) -> None:
        self._check_topological()

    def _check_topological(self) -> None:
        known = set(self.inputs) | set(self.constants)
        for node in self.nodes:
            for t in node.inputs:
                if t and t not in known:
                    raise AssertionError(f"{node.name}: input {t!r} is not produced before use")
            known.update(node.outputs)
        for t in self.outputs:
            assert t in known, f"graph output {t!r} is never produced"

    # -- queries -------------------------------------------------------------------------------
    def producer(self, tensor: str) -> Node | None:
        return next((n for n in self.nodes if tensor in n.outputs), None)

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def is_constant(self, tensor: str) -> bool:
        return tensor in self.constants

    def const(self, tensor: str) -> np.ndarray:
        return self.constants[tensor]

    def info(self, tensor: str) -> TensorInfo:
        return self.tensors[tensor]

    # -- rewriting -----------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Graph:
        return dataclasses.replace(self, **changes)

    def with_tensors(self, infos: Mapping[str, TensorInfo]) -> Graph:
        return self.replace(tensors={**self.tensors, **infos})

    def replace_nodes(
        self, old: Iterable[Node], new: Iterable[Node], infos: Mapping[str, TensorInfo] = {}
    ) -> Graph:
        """Replace the nodes `old` (by identity) with `new`, placed where the first old one was."""
        old_ids = {id(n) for n in old}
        assert old_ids, "replace_nodes needs at least one node to replace"
        nodes: list[Node] = []
        inserted = False
        for n in self.nodes:
            if id(n) in old_ids:
                if not inserted:
                    nodes.extend(new)
                    inserted = True
            else:
                nodes.append(n)
        return self.replace(nodes=tuple(nodes), tensors={**self.tensors, **infos}).pruned()

    def rename_tensor(self, old: str, new: str) -> Graph:
        """Make every consumer of `old` (and the graph outputs) read `new` instead."""

        def sub(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(new if t == old else t for t in names)

        nodes = tuple(dataclasses.replace(n, inputs=sub(n.inputs)) for n in self.nodes)
        return self.replace(nodes=nodes, outputs=sub(self.outputs))

    def pruned(self) -> Graph:
        """Drop nodes, constants and tensor infos that no graph output depends on."""
        needed = set(self.outputs)
        keep: list[Node] = []
        for n in reversed(self.nodes):
            if any(o in needed for o in n.outputs):
                keep.append(n)
                needed.update(t for t in n.inputs if t)
        keep.reverse()
        used = needed | set(self.inputs)
        return dataclasses.replace(
            self,
            nodes=tuple(keep),
            constants={k: v for k, v in self.constants.items() if k in used},
            tensors={k: v for k, v in self.tensors.items() if k in used or k in self.outputs},
        )

    def fresh_name(self, base: str) -> str:
        taken = set(self.tensors) | {n.name for n in self.nodes} | set(self.constants)
        i = 0
        while f"{base}_{i}" in taken:
            i += 1
        return f"{base}_{i}"

    def summary(self) -> str:
        lines = [f"Graph {self.name}: inputs {list(self.inputs)} outputs {list(self.outputs)}"]
        for n in self.nodes:
            outs = ", ".join(
                f"{o}:{self.tensors[o].dtype}{list(self.tensors[o].shape)}"
                for o in n.outputs
                if o in self.tensors
            )
            lines.append(f"  {n.op:<22} {n.name:<28} -> {outs}")
        return "\n".join(lines)
