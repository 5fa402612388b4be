"""Batched numpy kernels shared by the reference and the integer executors (NHWC layout).

Integer callers pass int64 arrays and get exact int64 results: matrix products run in float64
BLAS, which is exact while |values| < 2**53 (far beyond any few-bit accumulator).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def exact_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w; int64 inputs give an exact int64 result, float32 gives float32."""
    if np.issubdtype(x.dtype, np.integer) and np.issubdtype(w.dtype, np.integer):
        x_max = max(-int(x.min(initial=0)), int(x.max(initial=0)))
        bound = x.shape[-1] * x_max * int(np.abs(w).max(initial=0))
        ftype = np.float32 if bound < 1 << 24 else np.float64  # float32 is exact below 2**24
        return np.rint(x.astype(ftype) @ w.astype(ftype)).astype(np.int64)
    return x @ w


def pad_nhwc(x: np.ndarray, pads: tuple[int, int, int, int], value: float = 0) -> np.ndarray:
    """pads = (top, left, bottom, right)."""
    t, left, b, r = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


def windows_nhwc(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, KH, KW, C) sliding windows (a view, no copy)."""
    kh, kw = kernel
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))  # N, H', W', C, KH, KW
    win = win[:, :: stride[0], :: stride[1]]
    return np.moveaxis(win, 3, 5)


def conv2d_nhwc(
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    groups: int = 1,
    pad_value: float = 0,
) -> np.ndarray:
    """x: (N, H, W, Cin); w: (KH, KW, Cin/groups, Cout) -> (N, OH, OW, Cout)."""
    kh, kw, cin_g, cout = w.shape
    xp = pad_nhwc(x, pads, pad_value)
    win = windows_nhwc(xp, (kh, kw), stride)  # N, OH, OW, KH, KW, Cin
    n, oh, ow = win.shape[:3]
    if groups == 1:
        cols = win.reshape(n * oh * ow, kh * kw * cin_g)
        out = exact_matmul(cols, w.reshape(kh * kw * cin_g, cout))
        return out.reshape(n, oh, ow, cout)
    cout_g = cout // groups
    outs = []
    for g in range(groups):
        cols = win[..., g * cin_g : (g + 1) * cin_g].reshape(n * oh * ow, kh * kw * cin_g)
        wg = w[..., g * cout_g : (g + 1) * cout_g].reshape(kh * kw * cin_g, cout_g)
        outs.append(exact_matmul(cols, wg))
    return np.concatenate(outs, axis=-1).reshape(n, oh, ow, cout)


def pool2d_nhwc(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    mode: str,
) -> np.ndarray:
    """mode: 'max' or 'sum'. Max pads with the lowest value, sum with zeros."""
    if mode == "max":
        lowest = np.iinfo(x.dtype).min if np.issubdtype(x.dtype, np.integer) else -np.inf
        xp = pad_nhwc(x, pads, lowest)
        return windows_nhwc(xp, kernel, stride).max(axis=(3, 4))
    xp = pad_nhwc(x, pads, 0)
    acc = np.int64 if np.issubdtype(x.dtype, np.integer) else x.dtype
    return windows_nhwc(xp, kernel, stride).sum(axis=(3, 4), dtype=acc)


def onnx_pads(attrs, kernel: tuple[int, int]) -> tuple[int, int, int, int]:
    """ONNX pads [top, left, bottom, right] (auto_pad NOTSET/VALID only)."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "VALID"):
        raise ValueError(f"auto_pad={auto}")
    p = tuple(attrs.get("pads", (0, 0, 0, 0)))
    return (p[0], p[1], p[2], p[3])
