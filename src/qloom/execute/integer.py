"""Semantics of the integer graph: channels-last integer tensors, exact integer arithmetic.

Tensors are int64 or narrower where the values fit (bipolar activations int8, popcounts and
small accumulators int16), and may be channel-major in memory (the bit-packed XNOR kernels
return transposed views); every op reads any dtype and layout.

Ops (all attrs are numpy arrays or plain values; see qloom.streamline for how they are made):
  MultiThreshold  out = base + count(sign*x >= T[c]) per channel (BIPOLAR out: 2*count - 1)
  MatMul          x.reshape(N, K) @ weights(K, M)
  XnorMatMul      popcount(xnor) of bipolar x and weights: (x @ w + K) / 2, on packed bits
  Conv            NHWC conv with weights (KH, KW, Cin/groups, Cout), integer pad_value
  MaxPool/SumPool NHWC pooling
  Add             a_mul * a + b_mul * b
  Mul             a * b elementwise; b of one value per channel of a is broadcast over its pixels
  Concat          the inputs joined along the channel (last) axis
  FloatTail       real = steps(x) gathered back into the imported layout (host-side float output)
"""

from __future__ import annotations

import numpy as np

from qloom.execute.kernels import (
    PACKED_MIN_ROWS,
    bipolar_constant,
    conv2d_nhwc,
    exact_matmul,
    is_bipolar,
    native_threshold,
    pool2d_nhwc,
    xnor_conv2d_nhwc,
    xnor_matmul,
)
from qloom.execute.reference import Kernel
from qloom.ir import Node

INTEGER_OPS: dict[str, Kernel] = {}


def op(name: str):
    def register(fn: Kernel) -> Kernel:
        INTEGER_OPS[name] = fn
        return fn

    return register


def count_at_least(x: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For channels-last int x (..., C) and sorted thresholds (C, K): count of T[c,k] <= x.
    The count keeps x's memory layout (the packed XNOR kernels return channel-major views)."""
    c, k = thresholds.shape
    if c == 1 or (thresholds == thresholds[:1]).all():
        lo, hi = int(x.min()), int(x.max())
        if hi - lo < 1 << 16:  # small input range (pixels): a lookup table per value
            lut = np.searchsorted(thresholds[0], np.arange(lo, hi + 1), side="right")
            lut = lut.astype(np.int16 if k < 1 << 15 else np.int64)  # less memory traffic
            return lut[np.subtract(x, lo, dtype=np.int32)] if lo else lut[x]
        return np.searchsorted(thresholds[0], x, side="right")
    flat = x.reshape(-1, c)
    if k <= 8:  # few levels: one vectorized compare per level beats a search per channel
        t = thresholds
        if np.issubdtype(x.dtype, np.integer):
            info = np.iinfo(x.dtype)
            if info.min <= t.min() and t.max() <= info.max:  # else numpy widens x, exactly
                t = t.astype(x.dtype)  # int16 x >= int64 T would widen every element of x
        out = (flat >= t[:, 0]).view(np.int8)  # layout of x; same-type adds: no cast loop
        for j in range(1, k):
            out += (flat >= t[:, j]).view(np.int8)
        return out.reshape(x.shape)
    out = np.empty(flat.shape, dtype=np.int64)
    for ch in range(c):
        out[:, ch] = np.searchsorted(thresholds[ch], flat[:, ch], side="right")
    return out.reshape(x.shape)


def multithreshold(x: np.ndarray, attrs) -> np.ndarray:
    """Bipolar outputs are int8 (+-1), the others int16 or wider: narrow tensors are most of
    the integer executor's speed on conv nets, whose activations are its memory traffic."""
    negate = attrs.get("negate")
    if negate is not None and negate.any():
        x = np.where(negate, -x.astype(np.int64), x)
    bipolar = attrs["out_dtype"].is_bipolar
    fused = native_threshold(x, attrs["thresholds"], bipolar)
    if fused is not None:
        return fused if bipolar else attrs["out_base"] + fused.astype(np.int16)
    count = count_at_least(x, attrs["thresholds"])  # a new array: updated in place below
    if bipolar:
        y = count.astype(np.int8 if attrs["thresholds"].shape[1] < 64 else np.int64, copy=False)
        np.multiply(y, 2, out=y)
        return np.subtract(y, 1, out=y)
    if count.dtype == np.int8:
        count = count.astype(np.int16)
    return attrs["out_base"] + count


@op("MultiThreshold")
def _mt(node: Node, xs):
    return [multithreshold(xs[0], node.attrs)]


@op("MatMul")
def _matmul(node: Node, xs):
    x = xs[0].reshape(xs[0].shape[0], -1)
    return [exact_matmul(x, node.attrs["weights"])]


@op("XnorMatMul")
def _xnor(node: Node, xs):
    x = xs[0].reshape(xs[0].shape[0], -1)
    w = node.attrs["weights"]
    if len(x) >= PACKED_MIN_ROWS and is_bipolar(x) and bipolar_constant(w):
        return [xnor_matmul(x, w)]  # bit-packed: the same integers as the formula below
    return [(exact_matmul(x, w) + w.shape[0]) // 2]


@op("Conv")
def _conv(node: Node, xs):
    a = node.attrs
    y = conv2d_nhwc(xs[0], a["weights"], a["stride"], a["pads"], a["groups"], a["pad_value"])
    return [y]


@op("XnorConv")
def _xnor_conv(node: Node, xs):
    a = node.attrs
    x, w = xs[0], a["weights"]
    (sh, sw), (kh, kw) = a["stride"], w.shape[:2]
    rows = len(x) * ((x.shape[1] - kh) // sh + 1) * ((x.shape[2] - kw) // sw + 1)
    packable = a["groups"] == 1 and not any(a["pads"])  # zero padding is not +-1
    if packable and rows >= PACKED_MIN_ROWS and is_bipolar(x) and bipolar_constant(w):
        return [xnor_conv2d_nhwc(x, w, a["stride"])]  # bit-packed: the same integers
    y = conv2d_nhwc(x, w, a["stride"], a["pads"], a["groups"], 0).astype(np.int64)
    return [(y + kh * kw * w.shape[2]) // 2]


@op("MaxPool")
def _maxpool(node: Node, xs):
    a = node.attrs
    return [pool2d_nhwc(xs[0], a["kernel"], a["stride"], a["pads"], "max")]


@op("SumPool")
def _sumpool(node: Node, xs):
    a = node.attrs
    return [pool2d_nhwc(xs[0].astype(np.int64), a["kernel"], a["stride"], a["pads"], "sum")]


@op("Concat")
def _concat(node: Node, xs):
    return [np.concatenate([x.astype(np.int64) for x in xs], axis=-1)]


@op("Add")
def _add(node: Node, xs):
    a = node.attrs
    return [a["a_mul"] * xs[0].astype(np.int64) + a["b_mul"] * xs[1].astype(np.int64)]


@op("Mul")
def _mul(node: Node, xs):
    a, b = xs[0].astype(np.int64), xs[1].astype(np.int64)
    n = a.shape[0]
    fb = b.reshape(n, -1)
    return [(a.reshape(n, -1, fb.shape[1]) * fb[:, None, :]).reshape(a.shape)]


def apply_steps(x: np.ndarray, steps, channel_of: np.ndarray | None = None) -> np.ndarray:
    """Apply float32 elementwise steps. Each step's parameter is a scalar or a per-channel
    vector; `channel_of` maps each element of x (last axes) to its channel when given."""
    y = x.astype(np.float32)
    for kind, p in steps:
        if p is not None and not isinstance(p, tuple) and np.ndim(p) > 0 and channel_of is not None:
            p = p[channel_of]
        if kind == "mul":
            y = y * p
        elif kind == "div":
            y = y / p
        elif kind == "add":
            y = y + p
        elif kind == "sub":
            y = y - p
        elif kind == "relu":
            y = np.maximum(y, np.float32(0))
        elif kind == "clip":
            lo, hi = p
            y = np.clip(y, lo, hi)
        elif kind == "sqrtdiv":  # batch norm: (x) / sqrt(var + eps)
            y = y / p
        else:
            raise ValueError(f"unknown step {kind}")
        y = y.astype(np.float32)
    return y


@op("FloatTail")
def _float_tail(node: Node, xs):
    a = node.attrs
    idx = a["idx"]
    flat = xs[0].reshape(xs[0].shape[0], -1)
    gathered = flat[:, idx.ravel()].reshape((flat.shape[0],) + idx.shape)
    return [apply_steps(gathered, a["steps"], a["channel_of"])]
