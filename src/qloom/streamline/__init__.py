"""Streamlining: imported graph -> integer graph, as a sequence of pure passes."""

from __future__ import annotations

from qloom.frontend.domain import InputDomain
from qloom.ir import Graph
from qloom.streamline.lower import to_integer_graph
from qloom.streamline.passes import PIPELINE, Pass

__all__ = ["PIPELINE", "Pass", "streamline", "to_integer_graph"]


def streamline(graph: Graph, domain: InputDomain | None = None) -> Graph:
    """Run the whole pipeline: lowering to integers, then the integer clean-up passes.
    `domain`: the hardware input (derived from the model when None)."""
    from qloom.spec import check_integer

    g = to_integer_graph(graph, domain)
    check_integer(g)
    for p in PIPELINE:
        g = p(g)
        check_integer(g)  # each pass keeps the integer graph's invariants
    return g
