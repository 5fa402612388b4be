"""Abstract values used while lowering an imported graph to integers.

Every imported tensor that depends on the input is described as: an integer tensor of the
integer graph (channels-last), an index array saying where each imported element lives in it,
and a chain of float32 elementwise steps giving the real value the imported graph computes.
Constants in a step are per integer channel (or scalar), which is what thresholds need.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from qloom.datatype import DataType

AFFINE = ("mul", "div", "add", "sub", "sqrtdiv")


@dataclass(frozen=True, eq=False)
class Pool:
    """A max pool not yet emitted: it commutes with the nondecreasing steps after it."""

    at: int  # number of steps applied before the pool
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    out_shape: tuple[int, ...]  # integer (NHWC) shape after pooling


@dataclass(frozen=True, eq=False)
class PendingAdd:
    """The sum of two quantized tensors whose integer Add node is not emitted yet.

    Why deferred: the multipliers depend on the consumer. A quantizer right after the Add can
    often use multipliers much smaller than the exact ones (see qloom.streamline.addscale);
    anything else (a linear op, a concat, the float tail) needs the exact sum. `x` and `y`
    are the operands exactly as the imported graph computes them (integers plus their
    float32 steps); the first `at` steps of the sum's Value describe the exact sum
    (zero-point correction, common unit), the rest are the steps the graph applies after it.
    """

    node: str  # the imported Add node
    x: Value
    y: Value
    sx: float  # the operands' scales (real = s * (q - z))
    sy: float
    at: int


@dataclass(frozen=True, eq=False)
class Product:
    """The exact integer product of two quantized tensors (an integer Mul node, emitted).

    Kept so that the quantizer after it can reproduce qonnx's float32 arithmetic exactly: qonnx
    rounds each operand (q * s) and then their product to float32, which near a quantizer step
    need not agree with s_x*s_y * (qx*qy) in float32. `x` and `y` are the operands as the
    imported graph computes them, `y_channel` maps each channel of the product to y's channel
    (a per-channel operand broadcast over the pixels of x has one channel per channel of x),
    and the first `at` steps of the product's Value give the real product."""

    node: str  # the imported Mul node
    x: Value
    y: Value
    y_channel: np.ndarray
    at: int


@dataclass(frozen=True, eq=False)
class Value:
    tensor: str  # integer-graph tensor (before `pool`, if one is pending)
    shape: tuple[int, ...]  # its per-sample NHWC / (C,) shape
    idx: np.ndarray  # imported per-sample shape -> flat index into the (pooled) integer tensor
    lo: np.ndarray  # per-channel integer range of `tensor`
    hi: np.ndarray
    dtype: DataType
    steps: tuple[tuple[str, object], ...] = ()
    pool: Pool | None = None
    add: PendingAdd | None = None  # `tensor` is the exact sum of `add`, not emitted yet
    prod: Product | None = None  # `tensor` is the exact product of two quantized tensors

    @property
    def channels(self) -> int:
        return self.shape[-1]

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.pool.out_shape if self.pool else self.shape

    def with_step(self, kind: str, param=None) -> Value:
        return dataclasses.replace(self, steps=self.steps + ((kind, param),))

    def channel_of(self) -> np.ndarray:
        """Integer channel of each imported element."""
        return self.idx % self.channels

    def per_channel(self, const: np.ndarray, what: str) -> np.ndarray | np.float32:
        """Map a constant that broadcasts against the imported tensor onto integer channels."""
        const = np.asarray(const, dtype=np.float32)
        if const.size == 1:
            return np.float32(const.ravel()[0])
        if const.ndim > self.idx.ndim:  # a leading batch axis of 1
            const = const.reshape(const.shape[const.ndim - self.idx.ndim :])
        imported = np.broadcast_to(const, self.idx.shape)
        ch = self.channel_of()
        per = np.zeros(self.channels, dtype=np.float32)
        per[ch.ravel()] = imported.ravel()
        if not np.array_equal(per[ch], imported):
            raise ValueError(f"{what} varies along a non-channel axis")
        return per

    # -- affine view ------------------------------------------------------------------------
    @property
    def is_affine(self) -> bool:
        return all(k in AFFINE for k, _ in self.steps)

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b) per channel with real = a*q + b, for affine step chains (float64)."""
        a = np.ones(self.channels)
        b = np.zeros(self.channels)
        for kind, p in self.steps:
            p64 = np.asarray(p, dtype=np.float64)
            if kind == "mul":
                a, b = a * p64, b * p64
            elif kind in ("div", "sqrtdiv"):
                a, b = a / p64, b / p64
            elif kind == "add":
                b = b + p64
            elif kind == "sub":
                b = b - p64
        return np.broadcast_to(a, (self.channels,)), np.broadcast_to(b, (self.channels,))


def canonical_idx(chw: tuple[int, ...]) -> np.ndarray:
    """Index array of an imported (C, H, W) tensor stored channels-last as (H, W, C)."""
    c, h, w = chw
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1)
