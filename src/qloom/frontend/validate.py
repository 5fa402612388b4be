"""Checks on an imported model that must hold before anything is compiled from it.

A quantizer with a NaN or zero scale, a bit width of 2.5 or an unsigned narrow 1-bit range
does not describe integers; qonnx executes such models anyway and qloom would build hardware
that agrees with itself and with nothing else. Each check names the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qloom.datatype import BIPOLAR, DataType
from qloom.errors import UnsupportedModelError
from qloom.ir import Graph, Node

MAX_BITS = 32


@dataclass(frozen=True)
class Levels:
    """A quantizer's output: real = (level - zero) * scale with integer level in [lo, hi]
    (BIPOLAR: level in {-1, +1}); scale and zero broadcast against the imported tensor."""

    dtype: DataType
    lo: int
    hi: int
    scale: np.ndarray
    zero: np.ndarray


def _fail(node: Node, what: str) -> UnsupportedModelError:
    return UnsupportedModelError.at(node, what)


def _const(graph: Graph, node: Node, i: int, what: str) -> np.ndarray:
    t = node.inputs[i] if i < len(node.inputs) else ""
    if not t or not graph.is_constant(t):
        raise _fail(node, f"its {what} (input {i}) must be a constant initializer")
    return np.asarray(graph.const(t))


def _finite_positive(node: Node, value: np.ndarray, what: str) -> np.ndarray:
    v = np.asarray(value, np.float32)
    if v.size == 0:
        raise _fail(node, f"its {what} is empty")
    if not np.all(np.isfinite(v)):
        raise _fail(node, f"its {what} contains NaN or infinity; it must be finite and positive")
    if not np.all(v > 0):
        bad = float(v.ravel()[np.argmax(~(v.ravel() > 0))])
        raise _fail(node, f"its {what} must be positive, found {bad:g}")
    return v


def quantizer_levels(graph: Graph, node: Node) -> Levels:
    """The integer levels of a quantizer node, checked (raises naming the node)."""
    if node.op == "BipolarQuant":
        scale = _finite_positive(node, _const(graph, node, 1, "scale"), "scale")
        return Levels(BIPOLAR, -1, 1, scale, np.zeros(1, np.float32))
    if node.op in ("Quant", "IntQuant"):
        scale = _finite_positive(node, _const(graph, node, 1, "scale"), "scale")
        zero = np.asarray(_const(graph, node, 2, "zero point"), np.float32)
        if not np.all(np.isfinite(zero)):
            raise _fail(node, "its zero point contains NaN or infinity")
        bw = np.asarray(_const(graph, node, 3, "bit width"), np.float64).ravel()
        if bw.size != 1 or not np.isfinite(bw[0]) or bw[0] != np.rint(bw[0]):
            raise _fail(node, f"bit width {bw.tolist()} is not one integer")
        bits = int(bw[0])
        if not 1 <= bits <= MAX_BITS:
            raise _fail(node, f"bit width {bits} is out of range; use 1 to {MAX_BITS} bits")
        signed = bool(node.attrs.get("signed", 1))
        narrow = bool(node.attrs.get("narrow", 0))
        if bits == 1 and signed:
            return Levels(BIPOLAR, -1, 1, scale, zero)
        lo = -(1 << (bits - 1)) + int(narrow) if signed else 0
        hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - int(narrow)
        if hi <= lo:
            raise _fail(
                node,
                f"a {'signed' if signed else 'unsigned'}{' narrow' if narrow else ''} "
                f"{bits}-bit range has a single value ({lo}); use narrow=0 or more bits",
            )
        return Levels(DataType.for_range(lo, hi), lo, hi, scale, zero)
    if node.op == "MultiThreshold":
        t = np.asarray(_const(graph, node, 1, "thresholds"), np.float32)
        if t.ndim != 2 or t.shape[1] == 0:
            raise _fail(node, f"thresholds of shape {t.shape}; expected (channels, steps)")
        if np.any(np.isnan(t)):
            raise _fail(node, "its thresholds contain NaN")
        out_scale = float(node.attrs.get("out_scale", 1.0))
        out_bias = float(node.attrs.get("out_bias", 0.0))
        if not np.isfinite(out_scale) or out_scale == 0 or not np.isfinite(out_bias):
            raise _fail(node, f"out_scale {out_scale:g} / out_bias {out_bias:g} must be finite")
        k = t.shape[1]
        if out_scale == 2 and out_bias == -1 and k == 1:
            return Levels(BIPOLAR, -1, 1, np.ones(1, np.float32), np.zeros(1, np.float32))
        scale = np.full(1, out_scale, np.float32)
        zero = np.full(1, -out_bias / out_scale, np.float32)
        return Levels(DataType.for_range(0, k), 0, k, scale, zero)
    raise _fail(node, "is not a quantizer")


def validate_model(graph: Graph) -> None:
    """Every quantizer describes integers; batch norm and weights are finite and legal."""
    for node in graph.nodes:
        if node.op in ("Quant", "IntQuant", "BipolarQuant", "MultiThreshold"):
            quantizer_levels(graph, node)
        elif node.op == "Trunc":
            _finite_positive(node, _const(graph, node, 1, "scale"), "scale")
        elif node.op == "BatchNormalization":
            names = ("scale (gamma)", "bias (beta)", "mean", "variance")
            for i, what in enumerate(names, start=1):
                v = np.asarray(_const(graph, node, i, what), np.float32)
                if not np.all(np.isfinite(v)):
                    raise _fail(node, f"its {what} contains NaN or infinity")
            var = np.asarray(_const(graph, node, 4, "variance"), np.float32)
            if np.any(var < 0):
                raise _fail(node, f"its variance is negative ({float(var.min()):g})")
    for name, value in graph.constants.items():
        v = np.asarray(value)
        if not np.issubdtype(v.dtype, np.floating) or np.all(np.isfinite(v)):
            continue
        users = graph.consumers(name)
        # an unbounded Clip and infinite FINN thresholds are meaningful; NaN never is
        bounds = all(
            (n.op == "Clip" and name in n.inputs[1:]) or (n.op == "MultiThreshold") for n in users
        )
        if bounds and users and not np.any(np.isnan(v)):
            continue
        names = ", ".join(f"'{n.name}'" for n in users) or "no node"
        raise UnsupportedModelError(
            f"initializer '{name}' (used by {names}) contains NaN or infinity", node=name
        )
