"""ElementwiseMul: the exact product of two streams (FINN's ElementwiseMul), out = a * b.

Two shapes of it:
  * same shape (C == N): a and b carry N elements per frame each and move in lockstep, N/PE
    beats of PE elements on all three streams (the product of two branches);
  * broadcast (C < N, C divides N): b carries C values per frame (one per channel of a:
    a squeeze-and-excitation gate), a carries N = pixels * C elements channels-last, and
    element i of a is multiplied by element i mod C of b. The C/PE beats of b are stored in
    one of two banks (double buffering: the next frame's b loads while a streams), then the
    N/PE beats of a stream past them.
The output type is the narrowest holding every product (no wrap-around). A BIPOLAR operand
(one bit, 1 = +1) only selects the sign of the other (qloom_mul).

Cycles per frame: N / PE (C / PE more for the first frame of a broadcast).
Deadlock: in a squeeze-and-excitation block, b is computed from the whole frame of a (a
global pool), so a's input gets a frame-deep FIFO (`take_joined(always=True)`): a waits
there while the gate is computed. In the same-shape case both inputs get one, as Concat's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.resources import Resources, counter_bits, lutram_luts
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
from qloom.errors import FoldingError

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node
    from qloom.synth.devices import Device


@dataclass(frozen=True, eq=False)
class ElementwiseMul(Stage):
    n: int  # elements of a (and of the output) per frame
    c: int  # elements of b per frame: n (same shape) or the channels of a (broadcast)
    a_dtype: DataType
    b_dtype: DataType
    pe: int = 1

    kind = "Mul"
    fold_params = ("PE",)
    finn_op = "ElementwiseMul"
    rtl_module = "qloom_emul"

    @classmethod
    def example(cls) -> ElementwiseMul:
        """A small instance (the protocol test and the docs use it): a per-channel gate."""
        return cls("mul_example", 24, 4, DataType.int(4, False), DataType.int(3, True), pe=2)

    def __post_init__(self) -> None:
        if self.c < 1 or self.n % self.c:
            raise FoldingError(f"Mul '{self.name}': C={self.c} does not divide N={self.n}")
        check_divides("Mul", self.name, "PE", self.pe, "C", self.c)

    @property
    def broadcast(self) -> bool:
        return self.c != self.n

    @property
    def out_dtype(self) -> DataType:
        a, b = (self.a_dtype.min, self.a_dtype.max), (self.b_dtype.min, self.b_dtype.max)
        prods = [x * y for x in a for y in b]
        return DataType.for_range(min(prods), max(prods))

    def in_streams(self) -> tuple[StreamSpec, ...]:
        return (
            StreamSpec(self.a_dtype, self.pe, self.n // self.pe),
            StreamSpec(self.b_dtype, self.pe, self.c // self.pe),
        )

    def out_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.out_dtype, self.pe, self.n // self.pe),)

    def cycles_per_frame(self) -> int:
        return self.n // self.pe

    def latency_cycles(self) -> int:
        return (self.n + (self.c if self.broadcast else 0)) // self.pe + 2

    def memory_bits(self) -> int:
        return 2 * self.c * self.b_dtype.bits if self.broadcast else 0

    def legal_values(self) -> dict[str, list[int]]:
        return {"PE": divisors(self.c)}

    def folding(self) -> dict:
        return {"PE": self.pe}

    def estimate(self, device: Device) -> Resources:
        """Not calibrated (one check: N=96 C=8 PE=2 UINT4 x INT3, Yosys synth_xilinx 43 LUT +
        one RAM32M, 31 FF; this gives 50 LUT, 28 FF): per lane a LUT multiplier of ABITS x
        BBITS (a bipolar side: a conditional negation), the output register, the gate banks
        in LUTRAM and their counters."""
        a, b, o = self.a_dtype, self.b_dtype, self.out_dtype
        if a.is_bipolar or b.is_bipolar:
            lane = 1.5 * o.bits
        else:
            lane = 1.2 * a.bits * b.bits
        lut = self.pe * lane + 4
        ff = self.pe * o.bits + 1
        if self.broadcast:
            cf = self.c // self.pe
            buf = lutram_luts(2 * cf, self.pe * b.bits)
            cnt = counter_bits(cf) * 2 + counter_bits(self.n // self.pe) + 3
            return Resources(lut=lut + buf + cnt, ff=ff + cnt, lutram=buf)
        return Resources(lut=lut, ff=ff)

    def rtl_params(self) -> dict:
        def signed(d: DataType) -> int:
            return int(d.signed and not d.is_bipolar)

        return {
            "N": self.n,
            "C": self.c,
            "PE": self.pe,
            "ABITS": self.a_dtype.bits,
            "ASIGNED": signed(self.a_dtype),
            "ABIPOLAR": int(self.a_dtype.is_bipolar),
            "BBITS": self.b_dtype.bits,
            "BSIGNED": signed(self.b_dtype),
            "BBIPOLAR": int(self.b_dtype.is_bipolar),
            "OBITS": self.out_dtype.bits,
        }

    def execute(self, a_beats, b_beats):
        a, single = as_frames(a_beats)
        b, _ = as_frames(b_beats)
        check_stream(self, a, self.in_streams()[0], 0)
        check_stream(self, b, self.in_streams()[1], 1)
        f = a.shape[0]
        out = a.reshape(f, -1, self.c) * b.reshape(f, 1, self.c)
        return restore(out.reshape(f, -1, self.pe), single)


# -- lowering rule: the integer-graph op this stage implements ---------------------------------
@lowering_rule("Mul")
def lower_mul(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    """An integer Mul (qloom.streamline: the first input full size, the second the same size
    or one value per channel of the first). A broadcast Mul gets a frame-deep FIFO on its
    first input ("<mul>_fifo0"): the second is usually computed from the whole frame of the
    first (squeeze-and-excitation), which would otherwise deadlock. A same-shape Mul gets one
    on each input, as Concat: two branches from one fork differ in latency (an SWU holds rows
    back, a 1x1 conv does not), which glue FIFOs of depth 2 would deadlock. The folding can
    set their depth ("<mul>_fifo0/1")."""
    (node,) = nodes
    a, b = node.inputs
    n = int(np.prod(ctx.g.tensors[a].shape))
    c = int(np.prod(ctx.g.tensors[b].shape))
    fold = ctx.fold(node.name, "Mul", {"PE": 1})
    stage = ElementwiseMul(node.name, n, c, ctx.dtype_of[a], ctx.dtype_of[b], pe=fold["PE"])
    always = (True, not stage.broadcast)
    ins = [
        ctx.take_joined(t, spec, node.name, port, always=always[port])
        for port, (t, spec) in enumerate(zip((a, b), stage.in_streams(), strict=True))
    ]
    stage = dataclasses.replace(stage, inputs=tuple(ins), outputs=(node.outputs[0],))
    ctx.add_stage(stage)
    ctx.register(node.outputs[0], node.outputs[0], stage.out_streams()[0])
