"""SumPool: non-overlapping K x K_W sum pooling on a channels-last stream, the hardware of an
average pool (AveragePool, GlobalAveragePool, Brevitas TruncAvgPool): the division by K*K_W
and the requantization live in the Thresholding stage that follows, as in FINN's
QuantAvgPool. The geometry, cycles (one input beat per cycle) and folding (PE | CH) are those
of MaxPool; the RTL is qloom_maxpool with SUM = 1 and an OBITS-wide sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qloom.dataflow.maxpool import MaxPool
from qloom.datatype import DataType


@dataclass(frozen=True, eq=False)
class SumPool(MaxPool):
    sum_dtype: DataType | None = None  # type of the sums (None: wide enough for any window)

    kind = "SumPool"
    finn_op = "Pool"

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
