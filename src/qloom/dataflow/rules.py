"""The registry of lowering rules: integer-graph op -> the function that builds its stages.

Each stage file registers the rule of the ops it implements (`@lowering_rule("MaxPool")`), so
a new stage kind adds its rule where its model, estimate and RTL parameters live. A rule gets
the lowering context (qloom.dataflow.lower: the graph, the folding request via `ctx.fold`,
the stream types via `ctx.dtype_of`, and `ctx.place` to wire a stage in) and the node(s) the
planner gave it (an MVAU rule also gets the MultiThreshold fused into it; a label rule the
FloatTail before it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qloom.errors import UnsupportedModelError
from qloom.ir import Node

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext

Rule = Callable[["LoweringContext", tuple[Node, ...]], None]
RULES: dict[str, Rule] = {}


def lowering_rule(*ops: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for op in ops:
            if op in RULES:
                raise AssertionError(f"two lowering rules for {op}: {RULES[op]} and {fn}")
            RULES[op] = fn
        return fn

    return register


def unsupported(node: Node, why: str) -> UnsupportedModelError:
    return UnsupportedModelError.at(node, why)
