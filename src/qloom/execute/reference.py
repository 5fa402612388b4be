"""Reference semantics of the imported graph: ONNX + QONNX ops, batched numpy, NCHW, float32.

The quantizers call qonnx's own functions so that the imported graph computes exactly what
qonnx's executor computes; the standard ops are vectorized numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from qonnx.custom_op.general.bipolar_quant import binary_quant
from qonnx.custom_op.general.multithreshold import multithreshold
from qonnx.custom_op.general.quant import quant
from qonnx.custom_op.general.trunc import trunc_v1, trunc_v2
from qonnx.custom_op.general.xnorpopcount import xnorpopcountmatmul

from qloom.execute.kernels import conv2d_nhwc, onnx_pads, pool2d_nhwc
from qloom.ir import Node

Kernel = Callable[[Node, Sequence[np.ndarray]], list[np.ndarray]]
REFERENCE_OPS: dict[str, Kernel] = {}


def op(*names: str):
    def register(fn: Kernel) -> Kernel:
        for n in names:
            REFERENCE_OPS[n] = fn
        return fn

    return register


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


@op("Quant", "IntQuant")
def _quant(node, xs):
    x, scale, zeropt, bits = xs[:4]
    a = node.attrs
    y = quant(
        x,
        scale,
        zeropt,
        bits,
        a.get("signed", 1),
        a.get("narrow", 0),
        a.get("rounding_mode", "ROUND"),
    )
    return [_f32(y)]


@op("BipolarQuant")
def _bipolar(node, xs):
    return [_f32(binary_quant(xs[0], xs[1]))]


@op("Trunc")
def _trunc(node, xs):
    a = node.attrs
    if len(xs) >= 6 or "signed" in a:
        x, scale, zeropt, in_bits, out_scale, out_bits = xs[:6]
        y = trunc_v2(
            x,
            scale,
            zeropt,
            in_bits,
            a.get("narrow", 0),
            a.get("signed", 1),
            out_scale,
            out_bits,
            a.get("rounding_mode", "FLOOR"),
        )
    else:
        x, scale, zeropt, in_bits, out_bits = xs[:5]
        y = trunc_v1(x, scale, zeropt, in_bits, out_bits, a.get("rounding_mode", "FLOOR"))
    return [_f32(y)]


@op("MultiThreshold")
def _multithreshold(node, xs):
    a = node.attrs
    channels_last = a.get("data_layout", "NCHW") in ("NHWC", "NC") and xs[0].ndim > 2
    y = multithreshold(
        xs[0], xs[1], a.get("out_scale", 1.0), a.get("out_bias", 0.0), channels_last=channels_last
    )
    return [_f32(y)]


@op("XnorPopcountMatMul")
def _xnor(node, xs):
    return [_f32(xnorpopcountmatmul(xs[0], xs[1]))]


@op("MatMul")
def _matmul(node, xs):
    return [_f32(np.matmul(xs[0], xs[1]))]


@op("Gemm")
def _gemm(node, xs):
    a = node.attrs
    x, w = xs[0], xs[1]
    if a.get("transA", 0):
        x = np.swapaxes(x, -1, -2)
    if a.get("transB", 0):
        w = w.T
    y = a.get("alpha", 1.0) * (x @ w)
    if len(xs) > 2 and xs[2] is not None:
        y = y + a.get("beta", 1.0) * xs[2]
    return [_f32(y)]


def _nchw_to_nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


def _nhwc_to_nchw(x):
    return np.transpose(x, (0, 3, 1, 2))


@op("Conv")
def _conv(node, xs):
    a = node.attrs
    x, w = xs[0], xs[1]
    if x.ndim != 4:
        raise ValueError(f"{node.name}: only 2-D convolution is supported")
    if any(d != 1 for d in a.get("dilations", (1, 1))):
        raise ValueError(f"{node.name}: dilated convolution is not supported")
    kernel = tuple(w.shape[2:])
    y = conv2d_nhwc(
        _nchw_to_nhwc(x).astype(np.float32),
        np.transpose(w, (2, 3, 1, 0)).astype(np.float32),
        tuple(a.get("strides", (1, 1))),
        onnx_pads(a, kernel),
        a.get("group", 1),
    )
    y = _nhwc_to_nchw(y)
    if len(xs) > 2:
        y = y + xs[2].reshape(1, -1, 1, 1)
    return [_f32(y)]


@op("BatchNormalization")
def _bn(node, xs):
    x, gamma, beta, mean, var = xs
    eps = node.attrs.get("epsilon", 1e-5)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    r = lambda v: _f32(v).reshape(shape)  # noqa: E731
    return [_f32((x - r(mean)) / np.sqrt(r(var) + _f32(eps)) * r(gamma) + r(beta))]


@op("Relu")
def _relu(node, xs):
    return [np.maximum(xs[0], np.float32(0))]


@op("Clip")
def _clip(node, xs):
    lo = xs[1] if len(xs) > 1 and xs[1] is not None else node.attrs.get("min", -np.inf)
    hi = xs[2] if len(xs) > 2 and xs[2] is not None else node.attrs.get("max", np.inf)
    return [_f32(np.clip(xs[0], lo, hi))]


@op("HardTanh")
def _hardtanh(node, xs):
    return [_f32(np.clip(xs[0], -1, 1))]


def _pool(node, xs, mode):
    a = node.attrs
    x = xs[0]
    kernel = tuple(a["kernel_shape"])
    stride = tuple(a.get("strides", kernel))
    if a.get("ceil_mode", 0):
        raise ValueError(f"{node.name}: ceil_mode pooling is not supported")
    pads = onnx_pads(a, kernel)
    y = pool2d_nhwc(_nchw_to_nhwc(x), kernel, stride, pads, mode)
    if mode == "sum":
        if any(pads) and not a.get("count_include_pad", 0):
            raise ValueError(f"{node.name}: padded average pooling must count_include_pad")
        y = y / np.float32(kernel[0] * kernel[1])
    return [_f32(_nhwc_to_nchw(y))]


@op("MaxPool")
def _maxpool(node, xs):
    return _pool(node, xs, "max")


@op("AveragePool")
def _avgpool(node, xs):
    return _pool(node, xs, "sum")


@op("GlobalAveragePool")
def _gap(node, xs):
    return [_f32(xs[0].mean(axis=(2, 3), keepdims=True))]


@op("Add")
def _add(node, xs):
    return [_f32(xs[0] + xs[1])]


@op("Concat")
def _concat(node, xs):
    return [_f32(np.concatenate(xs, axis=node.attrs.get("axis", 1)))]


@op("Sub")
def _sub(node, xs):
    return [_f32(xs[0] - xs[1])]


@op("Mul")
def _mul(node, xs):
    return [_f32(xs[0] * xs[1])]


@op("Div")
def _div(node, xs):
    return [_f32(xs[0] / xs[1])]


def _batched_shape(x: np.ndarray, shape: Sequence[int]) -> tuple[int, ...]:
    """A target shape whose leading dim is the batch (the file says 1 or -1)."""
    shape = [int(s) for s in shape]
    if shape and shape[0] in (1, -1, 0):
        shape[0] = x.shape[0]
    return tuple(shape)


@op("Reshape")
def _reshape(node, xs):
    return [xs[0].reshape(_batched_shape(xs[0], xs[1]))]


@op("Flatten")
def _flatten(node, xs):
    axis = node.attrs.get("axis", 1)
    return [xs[0].reshape(int(np.prod(xs[0].shape[:axis])), -1)]


@op("Transpose")
def _transpose(node, xs):
    perm = node.attrs.get("perm")
    return [np.transpose(xs[0], perm)]


def _axes(node, xs):
    return tuple(int(v) for v in (xs[1] if len(xs) > 1 else node.attrs["axes"]))


@op("Squeeze")
def _squeeze(node, xs):
    return [np.squeeze(xs[0], axis=_axes(node, xs))]


@op("Unsqueeze")
def _unsqueeze(node, xs):
    return [np.expand_dims(xs[0], axis=_axes(node, xs))]


@op("Identity")
def _identity(node, xs):
    return [xs[0]]


@op("TopK")
def _topk(node, xs):
    x = xs[0]
    k = int(np.asarray(xs[1]).ravel()[0]) if len(xs) > 1 else node.attrs["k"]
    axis = node.attrs.get("axis", -1)
    largest = node.attrs.get("largest", 1)
    order = np.argsort(-x if largest else x, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return [np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)]


@op("ArgMax")
def _argmax(node, xs):
    axis = node.attrs.get("axis", 0)
    y = np.argmax(xs[0], axis=axis)
    if node.attrs.get("keepdims", 1):
        y = np.expand_dims(y, axis)
    return [y.astype(np.int64)]


def _softmax_axis(node, x: np.ndarray) -> int:
    return int(node.attrs.get("axis", -1)) % x.ndim


@op("Softmax")
def _softmax(node, xs):
    x = _f32(xs[0])
    axis = _softmax_axis(node, x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [(e / e.sum(axis=axis, keepdims=True)).astype(np.float32)]


@op("LogSoftmax")
def _log_softmax(node, xs):
    x = _f32(xs[0])
    axis = _softmax_axis(node, x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return [(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(np.float32)]
