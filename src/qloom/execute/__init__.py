"""Execute any qloom graph (imported or integer) on a batch of inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from qloom.execute.integer import INTEGER_OPS
from qloom.execute.reference import REFERENCE_OPS
from qloom.ir import Graph

# label ops (TopK, ArgMax) keep their ONNX semantics in the integer graph
OPS = {"imported": REFERENCE_OPS, "integer": {**REFERENCE_OPS, **INTEGER_OPS}}


def execute(
    graph: Graph,
    x: np.ndarray | Mapping[str, np.ndarray],
    *,
    keep_all: bool = False,
    hook: Callable[[str, np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Run `graph` on a batch. `x` has a leading batch axis. Returns the outputs by name
    (every intermediate tensor too with keep_all=True). `hook(name, value)`, if given, may
    replace every input and node output as it is made (fault injection: qloom.faults)."""
    env: dict[str, np.ndarray] = dict(graph.constants)
    if isinstance(x, Mapping):
        env.update(x)
    else:
        (name,) = graph.inputs
        env[name] = x
    if hook is not None:
        for name in graph.inputs:
            if name in env:
                env[name] = hook(name, env[name])
    table = OPS[graph.kind]
    for node in graph.nodes:
        kernel = table.get(node.op)
        if kernel is None:
            raise NotImplementedError(f"{node.name}: no executor for op {node.op}")
        args = [env[t] if t else None for t in node.inputs]
        results = kernel(node, args)
        if hook is not None:
            results = [hook(t, v) for t, v in zip(node.outputs, results, strict=False)]
        env.update(zip(node.outputs, results, strict=False))
    if keep_all:
        return env
    return {t: env[t] for t in graph.outputs}


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The single output of a single-output graph."""
    return execute(graph, x)[graph.outputs[0]]
