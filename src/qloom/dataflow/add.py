"""Add: elementwise out = A_MUL*a + B_MUL*b (+ BIAS) of two streams in lockstep (the join of a
residual connection). N elements per frame, N/PE beats of PE elements on all three streams;
the output type is the narrowest one holding every possible result (no wrap-around).
Cycles per frame: N / PE.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.resources import Resources
from qloom.dataflow.rules import lowering_rule, unsupported
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

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node
    from qloom.synth.devices import Device


@dataclass(frozen=True, eq=False)
class Add(Stage):
    n: int
    a_dtype: DataType
    b_dtype: DataType
    a_mul: int = 1
    b_mul: int = 1
    bias: int = 0
    pe: int = 1

    kind = "Add"
    fold_params = ("PE",)
    finn_op = "AddStreams"
    rtl_module = "qloom_add"

    @classmethod
    def example(cls) -> Add:
        """A small instance (the protocol test and the docs use it)."""
        return cls("add_example", 16, DataType.int(4, True), DataType.int(3, False), pe=4)

    def __post_init__(self) -> None:
        check_divides("Add", self.name, "PE", self.pe, "N", self.n)

    @property
    def out_dtype(self) -> DataType:
        a = (self.a_mul * self.a_dtype.min, self.a_mul * self.a_dtype.max)
        b = (self.b_mul * self.b_dtype.min, self.b_mul * self.b_dtype.max)
        return DataType.for_range(min(a) + min(b) + self.bias, max(a) + max(b) + self.bias)

    def in_streams(self) -> tuple[StreamSpec, ...]:
        beats = self.n // self.pe
        return (
            StreamSpec(self.a_dtype, self.pe, beats),
            StreamSpec(self.b_dtype, self.pe, beats),
        )

    def out_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.out_dtype, self.pe, self.n // self.pe),)

    def cycles_per_frame(self) -> int:
        return self.n // self.pe

    def legal_values(self) -> dict[str, list[int]]:
        return {"PE": divisors(self.n)}

    def folding(self) -> dict:
        return {"PE": self.pe}

    def estimate(self, device: Device) -> Resources:
        """Estimated LUT / FF / BRAM / DSP of this stage on `device` (6-input LUTs)."""
        return estimate_add(self, device)

    def rtl_params(self) -> dict:
        def signed(d: DataType) -> int:
            return int(d.signed and not d.is_bipolar)

        return {
            "N": self.n,
            "PE": self.pe,
            "ABITS": self.a_dtype.bits,
            "ASIGNED": signed(self.a_dtype),
            "BBITS": self.b_dtype.bits,
            "BSIGNED": signed(self.b_dtype),
            "OBITS": self.out_dtype.bits,
            "A_MUL": self.a_mul,
            "B_MUL": self.b_mul,
            "BIAS": self.bias,
        }

    def execute(self, a_beats, b_beats):
        a, single = as_frames(a_beats)
        b, _ = as_frames(b_beats)
        check_stream(self, a, self.in_streams()[0], 0)
        check_stream(self, b, self.in_streams()[1], 1)
        return restore(self.a_mul * a + self.b_mul * b + self.bias, single)


# -- resource estimate (LUT coefficients fitted to Yosys: see qloom.fold.estimate) ---------
ADD_LUT = {"const": 2.0, "out_bits": 0.9}


def estimate_add(s: Add, device: Device) -> Resources:
    p = s.rtl_params()
    lut = ADD_LUT["const"] + ADD_LUT["out_bits"] * s.pe * p["OBITS"]
    return Resources(lut=lut, ff=s.pe * p["OBITS"] + 1)


# -- lowering rule: the integer-graph op(s) this stage implements -----------------------------
@lowering_rule("Add")
def lower_add(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    (node,) = nodes
    a, b = node.inputs
    if ctx.dtype_of[a].is_bipolar or ctx.dtype_of[b].is_bipolar:
        raise unsupported(node, "adding BIPOLAR streams is not supported")
    n = int(np.prod(ctx.g.tensors[a].shape))
    fold = ctx.fold(node.name, "Add", {"PE": 1})
    stage = Add(
        node.name,
        n,
        ctx.dtype_of[a],
        ctx.dtype_of[b],
        a_mul=int(node.attrs["a_mul"]),
        b_mul=int(node.attrs["b_mul"]),
        pe=fold["PE"],
    )
    ins = [
        ctx.take_joined(t, spec, node.name, port)
        for port, (t, spec) in enumerate(zip((a, b), stage.in_streams(), strict=True))
    ]
    stage = dataclasses.replace(stage, inputs=tuple(ins), outputs=(node.outputs[0],))
    ctx.add_stage(stage)
    ctx.register(node.outputs[0], node.outputs[0], stage.out_streams()[0])
