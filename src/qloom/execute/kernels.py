"""Batched numpy kernels shared by the reference and the integer executors (NHWC layout).

Integer callers pass int64 arrays and get exact int64 results: matrix products run in float64
BLAS, which is exact while |values| < 2**53 (far beyond any few-bit accumulator).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def exact_float(bound: int) -> type:
    """The float type whose BLAS products and sums are exact for integers up to `bound`."""
    return np.float32 if bound < 1 << 24 else np.float64


def exact_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w; int64 inputs give an exact int64 result, float32 gives float32."""
    if np.issubdtype(x.dtype, np.integer) and np.issubdtype(w.dtype, np.integer):
        x_max = max(-int(x.min(initial=0)), int(x.max(initial=0)))
        ftype = exact_float(x.shape[-1] * x_max * int(np.abs(w).max(initial=0)))
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
    """x: (N, H, W, Cin); w: (KH, KW, Cin/groups, Cout) -> (N, OH, OW, Cout).

    Integer x and w give an exact int64 result. They are cast to the exact float type before
    the im2col copy, not after: the windows are 9x the input, and copying them once in float32
    instead of twice (int64, then float) is most of a conv net's executor time."""
    kh, kw, cin_g, cout = w.shape
    integer = np.issubdtype(x.dtype, np.integer) and np.issubdtype(w.dtype, np.integer)
    if integer:
        x_max = max(-int(x.min(initial=0)), int(x.max(initial=0)), abs(int(pad_value)))
        ftype = exact_float(kh * kw * cin_g * x_max * int(np.abs(w).max(initial=0)))
        x, w = x.astype(ftype), w.astype(ftype)
    xp = pad_nhwc(x, pads, pad_value)
    win = windows_nhwc(xp, (kh, kw), stride)  # N, OH, OW, KH, KW, Cin
    n, oh, ow = win.shape[:3]
    cout_g = cout // groups
    outs = []
    for g in range(groups):
        cols = win[..., g * cin_g : (g + 1) * cin_g].reshape(n * oh * ow, kh * kw * cin_g)
        outs.append(cols @ w[..., g * cout_g : (g + 1) * cout_g].reshape(kh * kw * cin_g, cout_g))
    out = (outs[0] if groups == 1 else np.concatenate(outs, axis=-1)).reshape(n, oh, ow, cout)
    return out.astype(np.int64) if integer else out  # exact sums of integers: no rounding


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
