"""The layer table of an integer graph: what `qloom inspect` prints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qloom.datatype import DataType
from qloom.ir import Graph, Node

HARDWARE = {
    "MatMul": "MVAU",
    "XnorMatMul": "MVAU (XNOR-popcount)",
    "Conv": "SWU + MVAU",
    "XnorConv": "SWU + MVAU (XNOR-popcount)",
    "MultiThreshold": "Thresholding",
    "MaxPool": "MaxPool",
    "SumPool": "SumPool (+ Thresholding)",
    "Add": "AddStreams",
    "Mul": "ElementwiseMul",
    "TopK": "LabelSelect",
    "ArgMax": "LabelSelect",
    "FloatTail": "host (float)",
}


@dataclass(frozen=True)
class LayerRow:
    name: str
    op: str
    hardware: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_dtype: str
    weight_dtype: str
    out_dtype: str
    macs: int
    param_bits: int


def weight_dtype(w: np.ndarray, xnor: bool) -> DataType:
    return DataType("BIPOLAR") if xnor else DataType.for_range(int(w.min()), int(w.max()))


def _row(g: Graph, n: Node) -> LayerRow:
    def info(t):
        return g.tensors.get(t)

    i, o = info(n.inputs[0]), info(n.outputs[0])
    macs, bits, wdt = 0, 0, "-"
    hw = HARDWARE.get(n.op, "-")
    if "weights" in n.attrs:
        w = n.attrs["weights"]
        dt = weight_dtype(w, n.op.startswith("Xnor"))
        wdt, bits = dt.name, w.size * dt.bits
        out_pixels = int(np.prod(o.shape[:-1])) if len(o.shape) == 3 else 1
        macs = out_pixels * w.size
        g = n.attrs.get("dense_of_groups", 1)
        if g > 1:  # a grouped conv computed as a dense one (block-diagonal weights)
            hw = f"{hw} (group={g} as dense: {g}x the MACs)"
        elif n.attrs.get("groups", 1) > 1:
            hw = "SWU + VVAU"
    if n.op == "MultiThreshold":
        t = n.attrs["thresholds"]
        tdt = DataType.for_range(int(t.min()), int(t.max())) if t.size else DataType("BINARY")
        bits = t.size * tdt.bits
        src = g.producer(n.inputs[0])
        if src is not None and "weights" in src.attrs:
            hw = f"fused into {src.name}"
    return LayerRow(
        name=n.name,
        op=n.op,
        hardware=hw,
        in_shape=tuple(i.shape) if i else (),
        out_shape=tuple(o.shape) if o else (),
        in_dtype=str(i.dtype) if i else "-",
        weight_dtype=wdt,
        out_dtype=str(o.dtype) if o else "-",
        macs=macs,
        param_bits=bits,
    )


def layer_rows(g: Graph) -> list[LayerRow]:
    return [_row(g, n) for n in g.nodes]
