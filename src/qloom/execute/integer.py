"""Semantics of the integer graph: channels-last int64 tensors, exact integer arithmetic.

Ops (all attrs are numpy arrays or plain values; see qloom.streamline for how they are made):
  MultiThreshold  out = base + count(sign*x >= T[c]) per channel (BIPOLAR out: 2*count - 1)
  MatMul          x.reshape(N, K) @ weights(K, M)
  XnorMatMul      popcount(xnor) of bipolar x and weights: (x @ w + K) / 2
  Conv            NHWC conv with weights (KH, KW, Cin/groups, Cout), integer pad_value
  MaxPool/SumPool NHWC pooling
  Add             a_mul * a + b_mul * b
  FloatTail       real = steps(x) gathered back into the imported layout (host-side float output)
"""

from __future__ import annotations

import numpy as np

from qloom.execute.kernels import conv2d_nhwc, exact_matmul, pool2d_nhwc
from qloom.execute.reference import Kernel
from qloom.ir import Node

INTEGER_OPS: dict[str, Kernel] = {}


def op(name: str):
    def register(fn: Kernel) -> Kernel:
        INTEGER_OPS[name] = fn
        return fn

    return register


def count_at_least(x: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For channels-last int x (..., C) and sorted thresholds (C, K): count of T[c,k] <= x."""
    c, k = thresholds.shape
    if c == 1 or (thresholds == thresholds[:1]).all():
        lo, hi = int(x.min()), int(x.max())
        if hi - lo < 1 << 16:  # small input range (pixels): a lookup table per value
            lut = np.searchsorted(thresholds[0], np.arange(lo, hi + 1), side="right")
            lut = lut.astype(np.int16 if k < 1 << 15 else np.int64)  # less memory traffic
            return lut[x - lo] if lo else lut[x]
        return np.searchsorted(thresholds[0], x, side="right")
    flat = x.reshape(-1, c)
    if k <= 8:  # few levels: one vectorized compare beats a search per channel
        out = np.zeros(flat.shape, dtype=np.int16)
        for j in range(k):
            out += flat >= thresholds[:, j]
        return out.reshape(x.shape)
    out = np.empty(flat.shape, dtype=np.int64)
    for ch in range(c):
        out[:, ch] = np.searchsorted(thresholds[ch], flat[:, ch], side="right")
    return out.reshape(x.shape)


def multithreshold(x: np.ndarray, attrs) -> np.ndarray:
    negate = attrs.get("negate")
    if negate is not None and negate.any():
        x = np.where(negate, -x.astype(np.int64), x)
    count = count_at_least(x, attrs["thresholds"])
    if attrs["out_dtype"].is_bipolar:
        return 2 * count - 1
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
    return [(exact_matmul(x, w) + w.shape[0]) // 2]


@op("Conv")
def _conv(node: Node, xs):
    a = node.attrs
    y = conv2d_nhwc(xs[0], a["weights"], a["stride"], a["pads"], a["groups"], a["pad_value"])
    return [y]


@op("XnorConv")
def _xnor_conv(node: Node, xs):
    a = node.attrs
    w = a["weights"]
    y = conv2d_nhwc(xs[0], w, a["stride"], a["pads"], a["groups"], 0)
    k = w.shape[0] * w.shape[1] * w.shape[2]
    return [(y + k) // 2]


@op("MaxPool")
def _maxpool(node: Node, xs):
    a = node.attrs
    return [pool2d_nhwc(xs[0], a["kernel"], a["stride"], a["pads"], "max")]


@op("SumPool")
def _sumpool(node: Node, xs):
    a = node.attrs
    return [pool2d_nhwc(xs[0].astype(np.int64), a["kernel"], a["stride"], a["pads"], "sum")]


@op("Add")
def _add(node: Node, xs):
    a = node.attrs
    return [a["a_mul"] * xs[0].astype(np.int64) + a["b_mul"] * xs[1].astype(np.int64)]


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
