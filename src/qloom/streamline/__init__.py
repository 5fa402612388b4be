"""Streamlining: imported graph -> integer graph, as a sequence of pure passes."""

from __future__ import annotations

from qloom.ir import Graph
from qloom.streamline.lower import DEFAULT_INPUT, InputSpec, to_integer_graph
from qloom.streamline.passes import PIPELINE, Pass

__all__ = ["DEFAULT_INPUT", "InputSpec", "PIPELINE", "Pass", "streamline", "to_integer_graph"]


def streamline(graph: Graph, input_spec: InputSpec = DEFAULT_INPUT) -> Graph:
    """Run the whole pipeline: lowering to integers, then the integer clean-up passes."""
    g = to_integer_graph(graph, input_spec)
    for p in PIPELINE:
        g = p(g)
    return g
