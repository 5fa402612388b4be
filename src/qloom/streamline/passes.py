"""Integer-graph clean-up passes. Each is a pure function Graph -> Graph with a contract."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qloom.datatype import DataType
from qloom.ir import Graph, Node


@dataclass(frozen=True)
class Pass:
    """A named graph -> graph function that states what it needs and what it guarantees."""

    name: str
    requires: str
    guarantees: str
    fn: Callable[[Graph], Graph]

    def __call__(self, graph: Graph) -> Graph:
        return self.fn(graph)


def graph_pass(requires: str, guarantees: str):
    def wrap(fn: Callable[[Graph], Graph]) -> Pass:
        return Pass(fn.__name__, requires, guarantees, fn)

    return wrap


LINEAR = ("MatMul", "Conv")


def _sole_consumer(g: Graph, tensor: str) -> Node | None:
    users = g.consumers(tensor)
    return users[0] if len(users) == 1 and tensor not in g.outputs else None


def _widen_symmetric(g: Graph, tensor: str) -> dict:
    info = g.tensors[tensor]
    m = max(abs(info.dtype.min), abs(info.dtype.max))
    return {tensor: dataclasses.replace(info, dtype=DataType.for_range(-m, m))}


@graph_pass(
    requires="integer graph",
    guarantees="a MultiThreshold fed only by a MatMul/Conv has no `negate`: the negated "
    "channels' weights are negated instead (FINN's trick for negative scales)",
)
def absorb_negation(g: Graph) -> Graph:
    for mt in g.nodes:
        if mt.op != "MultiThreshold" or mt.attrs.get("negate") is None:
            continue
        src = g.producer(mt.inputs[0])
        if src is None or src.op not in LINEAR or _sole_consumer(g, mt.inputs[0]) is not mt:
            continue
        neg = mt.attrs["negate"]
        w = src.attrs["weights"] * np.where(neg, -1, 1)  # output channel is the last axis
        g = g.replace_nodes(
            [src, mt],
            [src.with_attrs(weights=w), mt.with_attrs(negate=None)],
            _widen_symmetric(g, mt.inputs[0]),
        )
    return g


def _xnor_candidate(g: Graph, node: Node) -> bool:
    if node.op not in LINEAR or g.tensors[node.inputs[0]].dtype.name != "BIPOLAR":
        return False
    if not np.all(np.abs(node.attrs["weights"]) == 1):
        return False
    if node.op == "Conv" and any(node.attrs["pads"]):
        return False  # zero padding is not bipolar: stays a multi-bit convolution
    if node.attrs.get("groups", 1) != 1:
        return False  # depthwise: the VVAU reads +-1 operands in its multi-bit datapath
    users = g.consumers(node.outputs[0])
    return (
        bool(users)
        and all(
            (u.op == "MultiThreshold" and u.attrs.get("negate") is None) or u.op == "FloatTail"
            for u in users
        )
        and node.outputs[0] not in g.outputs
    )


@graph_pass(
    requires="integer graph after absorb_negation",
    guarantees="a MatMul/Conv with BIPOLAR input and +-1 weights becomes XnorMatMul/XnorConv "
    "whose output is the popcount P = (acc + K) / 2; consumers' thresholds are "
    "ceil((T + K) / 2) and float tails read 2P - K",
)
def bipolar_to_xnor(g: Graph) -> Graph:
    for node in g.nodes:
        if not _xnor_candidate(g, node):
            continue
        w = node.attrs["weights"]
        k = int(np.prod(w.shape[:-1]))
        new = [dataclasses.replace(node, op="Xnor" + node.op)]
        users = g.consumers(node.outputs[0])
        for u in users:
            if u.op == "MultiThreshold":
                t = u.attrs["thresholds"]
                new.append(u.with_attrs(thresholds=(t + k + 1) // 2))
            else:
                steps = (("mul", np.float32(2)), ("sub", np.float32(k))) + tuple(u.attrs["steps"])
                new.append(u.with_attrs(steps=steps))
        info = g.tensors[node.outputs[0]]
        infos = {node.outputs[0]: dataclasses.replace(info, dtype=DataType.for_range(0, k))}
        # keep the consumers in place: replace the producer first, then each consumer
        g = g.replace_nodes([node], new[:1], infos)
        for old, upd in zip(users, new[1:], strict=True):
            g = g.replace_nodes([g.node(old.name)], [upd])
    return g


PIPELINE: tuple[Pass, ...] = (absorb_negation, bipolar_to_xnor)
