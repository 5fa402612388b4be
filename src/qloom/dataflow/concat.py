"""Concat: channel concatenation of two channels-last streams (FINN's StreamingConcat), e.g. the
join of two branches of an Inception- or DenseNet-style block. Per pixel the output carries
the CH0 channels of input 0, then the CH1 channels of input 1; PE elements per beat on all
three streams (PE divides CH0 and CH1). The output type is the narrowest holding both input
types (BIPOLAR only when both are). RTL: qloom_concat. Cycles per frame:
pixels * (CH0 + CH1) / PE.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import gcd
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.resources import Resources, counter_bits
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
class Concat(Stage):
    pixels: int
    ch0: int
    ch1: int
    dtype0: DataType
    dtype1: DataType
    pe: int = 1

    kind = "Concat"
    finn_op = "StreamingConcat"
    rtl_module = "qloom_concat"
    fold_params = ("PE",)

    @classmethod
    def example(cls) -> Concat:
        """A small instance (the protocol test and the docs use it)."""
        return cls("concat_example", 4, 4, 6, DataType.int(3, False), DataType.int(4, True), pe=2)

    def __post_init__(self) -> None:
        check_divides("Concat", self.name, "PE", self.pe, "gcd(CH0, CH1)", gcd(self.ch0, self.ch1))
        if self.dtype0.is_bipolar != self.dtype1.is_bipolar:
            raise ValueError(f"Concat '{self.name}': a BIPOLAR and a non-BIPOLAR input")

    @property
    def out_dtype(self) -> DataType:
        if self.dtype0.is_bipolar:
            return self.dtype0
        lo = min(self.dtype0.min, self.dtype1.min)
        return DataType.for_range(lo, max(self.dtype0.max, self.dtype1.max))

    def in_streams(self) -> tuple[StreamSpec, ...]:
        return (
            StreamSpec(self.dtype0, self.pe, self.pixels * self.ch0 // self.pe),
            StreamSpec(self.dtype1, self.pe, self.pixels * self.ch1 // self.pe),
        )

    def out_streams(self) -> tuple[StreamSpec, ...]:
        beats = self.pixels * (self.ch0 + self.ch1) // self.pe
        return (StreamSpec(self.out_dtype, self.pe, beats),)

    def cycles_per_frame(self) -> int:
        return self.out_streams()[0].beats

    def legal_values(self) -> dict[str, list[int]]:
        return {"PE": divisors(gcd(self.ch0, self.ch1))}

    def folding(self) -> dict:
        return {"PE": self.pe}

    def estimate(self, device: Device) -> Resources:
        """Not calibrated: a 2:1 multiplexer and an output register per output bit, plus the
        beat counter."""
        w = self.pe * self.out_dtype.bits
        nb = (self.ch0 + self.ch1) // self.pe
        return Resources(lut=w + 2 * counter_bits(nb) + 4, ff=w + counter_bits(nb) + 1)

    def rtl_params(self) -> dict:
        def signed(d: DataType) -> int:
            return int(d.signed and not d.is_bipolar)

        return {
            "CH0": self.ch0,
            "CH1": self.ch1,
            "PE": self.pe,
            "BITS0": self.dtype0.bits,
            "SIGNED0": signed(self.dtype0),
            "BITS1": self.dtype1.bits,
            "SIGNED1": signed(self.dtype1),
            "OBITS": self.out_dtype.bits,
        }

    def execute(self, a, b):
        x, single = as_frames(a)
        y, _ = as_frames(b)
        check_stream(self, x, self.in_streams()[0], 0)
        check_stream(self, y, self.in_streams()[1], 1)
        f = x.shape[0]
        px = np.concatenate(
            [x.reshape(f, self.pixels, self.ch0), y.reshape(f, self.pixels, self.ch1)], axis=2
        )
        return restore(px.reshape(f, -1, self.pe), single)


@lowering_rule("Concat")
def lower_concat(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    """A Concat stage with a frame-deep FIFO on each input (take_joined): input 1 waits while
    input 0's channels of a pixel pass and the other way round, and two branches from one
    fork differ in latency (an SWU holds rows back, a 1x1 conv does not); a FIFO of glue depth
    would deadlock them. The folding can set the FIFOs' depth ("<concat>_fifo0/1")."""
    (node,) = nodes
    a, b = node.inputs
    da, db = ctx.dtype_of[a], ctx.dtype_of[b]
    if da.is_bipolar != db.is_bipolar:
        raise unsupported(node, f"concatenating a {da} and a {db} stream is not supported")
    sa, sb = ctx.g.tensors[a].shape, ctx.g.tensors[b].shape
    pixels = int(np.prod(sa[:-1]))
    fold = ctx.fold(node.name, "Concat", {"PE": 1})
    stage = Concat(node.name, pixels, sa[-1], sb[-1], da, db, pe=fold["PE"])
    ins = [
        ctx.take_joined(t, spec, node.name, port, always=True)
        for port, (t, spec) in enumerate(zip((a, b), stage.in_streams(), strict=True))
    ]
    stage = dataclasses.replace(stage, inputs=tuple(ins), outputs=(node.outputs[0],))
    ctx.add_stage(stage)
    ctx.register(node.outputs[0], node.outputs[0], stage.out_streams()[0])
