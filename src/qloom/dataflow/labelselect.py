"""LabelSelect: top-K label selection (FINN's LabelSelect) on the final accumulators.

Input: N values per frame, N/PE beats of PE elements. Output: K beats of one element each, the
index (UINT, max(1, clog2(N)) bits) of one of the K largest values, largest first; equal values
are ordered lower index first (ONNX TopK's order).
Cycles per frame: max(N / PE, K).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.resources import Resources, clog2
from qloom.dataflow.rules import lowering_rule
from qloom.dataflow.stage import (
    Stage,
    StreamSpec,
    as_frames,
    check_divides,
    check_stream,
    divisors,
    restore,
)
from qloom.datatype import DataType
from qloom.execute import OPS

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node
    from qloom.synth.devices import Device


@dataclass(frozen=True, eq=False)
class LabelSelect(Stage):
    n: int
    in_dtype: DataType
    k: int = 1
    pe: int = 1

    kind = "LabelSelect"
    fold_params = ("PE",)
    finn_op = "LabelSelect"
    rtl_module = "qloom_labelselect"

    @classmethod
    def example(cls) -> LabelSelect:
        """A small instance (the protocol test and the docs use it)."""
        return cls("labelselect_example", 10, DataType.int(8, True), k=2, pe=5)

    def __post_init__(self) -> None:
        check_divides("LabelSelect", self.name, "PE", self.pe, "N", self.n)
        if not 1 <= self.k <= self.n:
            raise ValueError(f"LabelSelect '{self.name}': K={self.k} not in 1..{self.n}")

    @property
    def out_dtype(self) -> DataType:
        bits = max(1, (self.n - 1).bit_length())
        return DataType.int(bits, signed=False)

    def in_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.in_dtype, self.pe, self.n // self.pe),)

    def out_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.out_dtype, 1, self.k),)

    def cycles_per_frame(self) -> int:
        return max(self.n // self.pe, self.k)  # N/PE beats in, K beats out

    def latency_cycles(self) -> int:
        return self.cycles_per_frame() + self.k + 2

    def legal_values(self) -> dict[str, list[int]]:
        return {"PE": divisors(self.n)}

    def folding(self) -> dict:
        return {"PE": self.pe}

    def estimate(self, device: Device) -> Resources:
        """Estimated LUT / FF / BRAM / DSP of this stage on `device` (6-input LUTs)."""
        return estimate_labelselect(self, device)

    def rtl_params(self) -> dict:
        return {
            "N": self.n,
            "PE": self.pe,
            "BITS": self.in_dtype.bits,
            "SIGNED": int(self.in_dtype.signed and not self.in_dtype.is_bipolar),
            "K": self.k,
        }

    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.in_streams()[0])
        values = x.reshape(x.shape[0], self.n)
        order = np.argsort(-values, axis=1, kind="stable")[:, : self.k]
        return restore(order.reshape(x.shape[0], self.k, 1), single)


# -- resource estimate (LUT coefficients fitted to Yosys: see qloom.fold.estimate) ---------
LABEL_LUT = {"const": 4.0, "insert": 1.66}  # insert: PE * K * (BITS + index bits)


def estimate_labelselect(s: LabelSelect, device: Device) -> Resources:
    p = s.rtl_params()
    iw = max(1, clog2(s.n))
    per = p["BITS"] + iw
    lut = LABEL_LUT["const"] + LABEL_LUT["insert"] * s.pe * s.k * per
    return Resources(lut=lut, ff=1.2 * s.k * per + 10)


# -- lowering rule: the integer-graph op(s) this stage implements -----------------------------
@lowering_rule("TopK", "ArgMax")
def lower_label(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    label, tail = nodes
    x = tail.inputs[0]
    n = int(np.prod(ctx.g.tensors[x].shape))
    k = int(label.attrs.get("k", 1)) if label.op == "TopK" else 1
    fold = ctx.fold(label.name, "LabelSelect", {"PE": 1})
    stage = LabelSelect(label.name, n, ctx.dtype_of[x], k=k, pe=fold["PE"])
    out = label.outputs[-1] if label.op == "TopK" else label.outputs[0]
    ctx.place(stage, [x], out)
    dummy = np.zeros((1,) + tuple(np.asarray(tail.attrs["idx"]).shape), np.float32)
    shape = OPS["integer"][label.op](label, [dummy])[-1].shape[1:]
    ctx.label_shapes[out] = tuple(shape)
