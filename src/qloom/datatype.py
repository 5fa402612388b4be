"""Integer data types of tensors in the qloom IR (FINN/QONNX names: BIPOLAR, UINT2, INT8...).

A DataType is a value object: two types with the same name are equal. BIPOLAR values are
{-1, +1} in the integer executor and a single bit (0 -> -1, 1 -> +1) on the hardware stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DataType:
    """A set of integers (or FLOAT32) that a tensor's elements belong to."""

    name: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"BIPOLAR|BINARY|FLOAT32|U?INT([1-9]|[1-5][0-9]|6[0-4])", self.name):
            raise ValueError(
                f"unknown DataType {self.name!r}; use BIPOLAR, BINARY, UINTn, INTn, FLOAT32"
            )
        if self.name == "INT1":
            raise ValueError("INT1 is not a type; use BIPOLAR ({-1,+1}) or BINARY ({0,1})")

    # -- constructors -------------------------------------------------------------------------
    @staticmethod
    def int(bits: int, signed: bool) -> DataType:
        if bits == 1:
            return DataType("BIPOLAR" if signed else "BINARY")
        return DataType(f"{'INT' if signed else 'UINT'}{bits}")

    @staticmethod
    def for_range(lo: int, hi: int) -> DataType:
        """The narrowest UINTn/INTn type holding every integer in [lo, hi]."""
        lo, hi = int(lo), int(hi)
        if lo >= 0:
            bits = max(1, int(hi).bit_length())
            return DataType("BINARY") if bits == 1 else DataType(f"UINT{bits}")
        bits = 2
        while lo < -(1 << (bits - 1)) or hi > (1 << (bits - 1)) - 1:
            bits += 1
        return DataType(f"INT{bits}")

    # -- properties ---------------------------------------------------------------------------
    @property
    def is_float(self) -> bool:
        return self.name == "FLOAT32"

    @property
    def is_bipolar(self) -> bool:
        return self.name == "BIPOLAR"

    @property
    def signed(self) -> bool:
        return self.name.startswith("INT") or self.name in ("BIPOLAR", "FLOAT32")

    @property
    def bits(self) -> int:
        """Bits per element on a hardware stream."""
        if self.name in ("BIPOLAR", "BINARY"):
            return 1
        if self.is_float:
            return 32
        return int(self.name.lstrip("UINT"))

    @property
    def min(self) -> int:
        if self.is_bipolar:
            return -1
        if self.is_float:
            raise ValueError("FLOAT32 has no integer range")
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        if self.is_bipolar:
            return 1
        if self.is_float:
            raise ValueError("FLOAT32 has no integer range")
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def allowed(self, values: np.ndarray) -> bool:
        """True if every element of `values` belongs to this type."""
        v = np.asarray(values)
        if self.is_float:
            return True
        if not np.all(v == np.round(v)):
            return False
        if self.is_bipolar:
            return bool(np.all((v == -1) | (v == 1)))
        return bool(np.all((v >= self.min) & (v <= self.max)))

    def to_bits(self, values: np.ndarray) -> np.ndarray:
        """Unsigned bit pattern of each element as it travels on a hardware stream."""
        v = np.asarray(values, dtype=np.int64)
        if self.is_bipolar:
            return (v > 0).astype(np.int64)
        return v & ((1 << self.bits) - 1)

    def from_bits(self, bits: np.ndarray) -> np.ndarray:
        """Inverse of to_bits."""
        b = np.asarray(bits, dtype=np.int64)
        if self.is_bipolar:
            return 2 * b - 1
        if self.signed:
            return np.where(b >= 1 << (self.bits - 1), b - (1 << self.bits), b)
        return b

    def __str__(self) -> str:
        return self.name


BIPOLAR = DataType("BIPOLAR")
BINARY = DataType("BINARY")
FLOAT32 = DataType("FLOAT32")
