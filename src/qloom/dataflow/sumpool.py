"""SumPool: non-overlapping K x K_W sum pooling on a channels-last stream, the hardware of an
average pool (AveragePool, GlobalAveragePool, Brevitas TruncAvgPool): the division by K*K_W
and the requantization live in the Thresholding stage that follows, as in FINN's
QuantAvgPool. The geometry, cycles (one input beat per cycle) and folding (PE | CH) are those
of MaxPool; the RTL is qloom_maxpool with SUM = 1 and an OBITS-wide sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.maxpool import MaxPool, non_overlapping, pool_args
from qloom.dataflow.rules import lowering_rule, unsupported
from qloom.dataflow.windowpool import place_window_pool
from qloom.datatype import DataType

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node


@dataclass(frozen=True, eq=False)
class SumPool(MaxPool):
    sum_dtype: DataType | None = None  # type of the sums (None: wide enough for any window)

    kind = "SumPool"
    finn_op = "Pool"

    @classmethod
    def example(cls) -> SumPool:
        """A small instance (the protocol test and the docs use it)."""
        return cls("sumpool_example", 4, 4, 4, 2, DataType.int(3, False), pe=2)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dtype.is_bipolar:
            raise ValueError(f"SumPool '{self.name}': BIPOLAR input (widen it first)")
        if self.sum_dtype is None:
            n = self.k * self.kw
            dt = DataType.for_range(n * self.dtype.min, n * self.dtype.max)
            object.__setattr__(self, "sum_dtype", dt)

    @property
    def out_dtype(self) -> DataType:
        return self.sum_dtype

    def rtl_params(self) -> dict:
        return {**super().rtl_params(), "SUM": 1, "OBITS": self.sum_dtype.bits}

    @staticmethod
    def _reduce(windows: np.ndarray) -> np.ndarray:
        return windows.sum(axis=(2, 4))


# -- lowering rule: the integer-graph op(s) this stage implements -----------------------------
@lowering_rule("SumPool")
def lower_sumpool(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    (node,) = nodes
    if not non_overlapping(node):  # overlapping windows: SWU + WindowPool (sum)
        place_window_pool(ctx, node, "sum")
        return
    if ctx.dtype_of[node.inputs[0]].is_bipolar:
        raise unsupported(node, "average pooling of a BIPOLAR stream has no stage yet")
    args, kwargs = pool_args(ctx, node)
    sums = ctx.g.tensors[node.outputs[0]].dtype
    ctx.place(SumPool(*args, **kwargs, sum_dtype=sums), [node.inputs[0]], node.outputs[0])
