"""An exact-arithmetic oracle for the imported (QONNX) graph, and a three-way comparison.

Why: qloom's integer graph decides each quantizer by thresholds found on the model's float32
step chain, and qonnx evaluates the same model in float32 in its own operation order. Where a
value lands within float32 rounding of a quantizer step the two may disagree, and neither is
then "the" answer. This module computes what the quantized model means mathematically, so that
each disagreement can be attributed.

What "exact" means here, op by op. Every float32 constant of the model (weights, scales, zero
points, biases, BN parameters, thresholds, the input values) is taken as the dyadic rational it
denotes, and every operation is evaluated without rounding:
- Quant / IntQuant: level = round(x / scale + zero) with the node's rounding mode (ROUND is
  half to even, as numpy's and qonnx's), clamped to the bit width's range; decided exactly.
  BipolarQuant and 1-bit signed Quant: +1 iff x >= 0 (x / scale + zero >= 0), as qonnx.
  MultiThreshold: count of x >= t over its float32 thresholds, then out_scale, out_bias.
- MatMul, Gemm, Conv (also 1-D, depthwise), AveragePool, GlobalAveragePool: exact integer sums
  (int64, or Python integers where int64 could overflow), the scales kept as exact fractions.
- Add / Sub / Mul / Div by constants, ReLU, Clip, MaxPool, Concat, Add or Mul of two tensors,
  shape ops: exact.
- BatchNormalization: (x - mean) / p * gamma + beta exactly, where p = sqrt(var + eps) is the
  float32 number the model computes once (as onnxruntime and qonnx do): a square root is not a
  rational number, so this one parameter is the model's float32 value, not the real root.
- The float output after the last quantizer (the float tail) is returned rounded to float64;
  only the quantizer levels are exact.
Trunc is not supported (it raises, naming the node).

How: every tensor that depends on the input is held as `clamp(n * r + b, lo, hi)`: an integer
tensor `n` and per-position exact fractions r, b, lo, hi that broadcast against one sample
(per channel in practice). Linear ops run on `n` with integer kernels; elementwise constants,
batch norm, ReLU and Clip only change the fractions; a quantizer turns each position's fractions
into exact integer thresholds on `n` (integer arithmetic on numerators and denominators) and
counts, which is exact and as fast as qloom's own MultiThreshold.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from functools import reduce
from pathlib import Path

import numpy as np

from qloom.execute.kernels import conv2d_nhwc, onnx_pads, pool2d_nhwc
from qloom.execute.reference import REFERENCE_OPS
from qloom.frontend.domain import SHAPE_OPS
from qloom.ir import Graph, Node

INT_LIMIT = 1 << 62  # magnitudes below this stay in int64 (sums of two still fit)
FLOAT_EXACT = 1 << 52  # float64 BLAS sums of integers are exact below this
QUANTIZER_OPS = ("Quant", "IntQuant", "BipolarQuant", "MultiThreshold")
INF = math.inf

_to_frac = np.frompyfunc(lambda v: Fraction(float(v)), 1, 1)


def fractions(a) -> np.ndarray:
    """float32 values -> object array of the exact Fractions they denote."""
    return np.asarray(_to_frac(np.asarray(a, np.float32)), dtype=object).reshape(np.shape(a))


def _obj(a) -> np.ndarray:
    out = np.empty(np.shape(a), dtype=object)
    out[...] = a
    return out


def _per_sample(c, ndim: int) -> np.ndarray:
    """A constant that broadcasts against (batch, *shape) -> one that broadcasts against shape."""
    c = np.asarray(c)
    if c.ndim > ndim:
        lead = c.shape[: c.ndim - ndim]
        if any(d != 1 for d in lead):
            raise NotImplementedError(f"a constant of shape {c.shape} varies along the batch")
        c = c.reshape(c.shape[c.ndim - ndim :])
    return c.reshape((1,) * (ndim - c.ndim) + c.shape)


def _compact(p: np.ndarray) -> np.ndarray:
    """Shrink every axis along which a parameter array is constant to size 1."""
    for ax in range(p.ndim):
        if p.shape[ax] > 1:
            first = np.take(p, [0], axis=ax)
            if bool(np.all(p == first)):
                p = first
    return p


def _as_int(a: np.ndarray) -> np.ndarray:
    """An integer array as int64 when every value fits, else as Python ints (object)."""
    if a.dtype != object:
        return a.astype(np.int64, copy=False)
    if a.size == 0:
        return a.astype(np.int64)
    hi = max(abs(int(a.max())), abs(int(a.min())))
    return a.astype(np.int64) if hi < INT_LIMIT else a


def _absmax(a: np.ndarray) -> int:
    return max(abs(int(a.max(initial=0))), abs(int(a.min(initial=0)))) if a.size else 0


def _scale_int(n: np.ndarray, m: np.ndarray) -> np.ndarray:
    """n * m for integer arrays (m: Python ints, broadcastable), in int64 where it fits."""
    mm = np.asarray(m, dtype=object)
    if all(v == 1 for v in mm.ravel()):
        return n
    if _absmax(n) * _absmax(mm) < INT_LIMIT:
        return n.astype(np.int64) * mm.astype(np.int64)
    return n.astype(object) * mm


def _frac_gcd(a: Fraction, b: Fraction) -> Fraction:
    if a == 0:
        return abs(b)
    if b == 0:
        return abs(a)
    return Fraction(
        math.gcd(a.numerator * b.denominator, b.numerator * a.denominator),
        a.denominator * b.denominator,
    )


_gcd2 = np.frompyfunc(_frac_gcd, 2, 1)


def _int_ratio(a: np.ndarray, u) -> np.ndarray:
    """a / u for fractions that are integer multiples of u: an object array of Python ints."""
    q = np.asarray(a / u, dtype=object)
    return _obj(np.frompyfunc(lambda f: int(f), 1, 1)(q))


def dyadic(x: np.ndarray) -> tuple[np.ndarray, Fraction]:
    """float32 values -> (n, r) with x == n * r exactly, n integers, r a power of two."""
    x64 = np.asarray(x, np.float32).astype(np.float64)
    nz = x64[x64 != 0]
    if nz.size == 0:
        return np.zeros(x64.shape, np.int64), Fraction(1)
    _, e = np.frexp(nz)
    shift = 24 - int(e.min())  # every float32 is an integer times 2^(e - 24)
    if int(e.max()) + shift <= 62:
        n = np.ldexp(x64, shift).astype(np.int64)
        g = int(np.gcd.reduce(np.abs(n[n != 0])))
        tz = (g & -g).bit_length() - 1  # common trailing zero bits
        return n >> tz, Fraction(2) ** (tz - shift)
    n = np.frompyfunc(lambda v: int(Fraction(float(v)) * Fraction(2) ** shift), 1, 1)(x64)
    return _obj(n), Fraction(2) ** -shift


@dataclass
class Exact:
    """A tensor equal to clamp(n * r + b, lo, hi) exactly.

    n: (batch, *shape) integers (int64, or object holding Python ints); r, b: object arrays of
    Fractions broadcastable against `shape` (r may be negative); lo, hi: object arrays of
    Fractions or +-inf (None: no clamp)."""

    n: np.ndarray
    r: np.ndarray
    b: np.ndarray
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    @property
    def ndim(self) -> int:
        return self.n.ndim - 1

    @property
    def clamped(self) -> bool:
        return self.lo is not None

    def affine(self, a: np.ndarray, c: np.ndarray) -> Exact:
        """a * self + c for fraction arrays a, c (broadcastable against a sample)."""
        r, b = _compact(_obj(self.r * a)), _compact(_obj(self.b * a + c))
        if not self.clamped:
            return Exact(self.n, r, b)
        lo, hi = _affine_bounds(self.lo, self.hi, a, c)
        return Exact(self.n, r, b, lo, hi)

    def clip(self, lo, hi) -> Exact:
        """clamp(self, lo, hi): composes with the clamp already there."""
        cur_lo = self.lo if self.clamped else _obj(-INF)
        cur_hi = self.hi if self.clamped else _obj(INF)
        new_lo = _obj(np.frompyfunc(lambda v, a, z: min(max(v, a), z), 3, 1)(cur_lo, lo, hi))
        new_hi = _obj(np.frompyfunc(lambda v, a, z: min(max(v, a), z), 3, 1)(cur_hi, lo, hi))
        return Exact(self.n, self.r, self.b, _compact(new_lo), _compact(new_hi))

    def full_params(self) -> list[np.ndarray]:
        """r, b, lo, hi broadcast to one sample's shape (for shape ops)."""
        shape = self.n.shape[1:]
        ps = [self.r, self.b] + ([self.lo, self.hi] if self.clamped else [])
        return [_obj(np.broadcast_to(p, shape)) for p in ps]

    def with_params(self, n: np.ndarray, ps: list[np.ndarray]) -> Exact:
        ps = [_compact(p) for p in ps]
        return Exact(n, *ps) if len(ps) == 4 else Exact(n, ps[0], ps[1])

    def to_float(self) -> np.ndarray:
        """The value rounded to float64 (float tail outputs)."""
        y = self.n.astype(np.float64) * _f64(self.r) + _f64(self.b)
        if self.clamped:
            y = np.clip(y, _f64(self.lo), _f64(self.hi))
        return y


def _f64(p: np.ndarray) -> np.ndarray:
    return np.asarray(p, dtype=object).astype(np.float64)


def _affine_bound(v, a, c):
    if isinstance(v, float):  # +-inf
        return c if a == 0 else v * (1 if a > 0 else -1)
    return v * a + c


_affine_bound_u = np.frompyfunc(_affine_bound, 3, 1)


def _affine_bounds(lo, hi, a, c):
    new_lo = _obj(_affine_bound_u(lo, a, c))
    new_hi = _obj(_affine_bound_u(hi, a, c))
    neg = np.asarray(np.frompyfunc(lambda x: x < 0, 1, 1)(a), bool)
    if neg.any():  # a decreasing map swaps the bounds
        new_lo, new_hi = _obj(np.where(neg, new_hi, new_lo)), _obj(np.where(neg, new_lo, new_hi))
    return _compact(new_lo), _compact(new_hi)


# -- quantizers: exact integer thresholds on n -------------------------------------------------
def _boundaries(mode: str, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For integer levels k: (2 * b_k, inclusive_k) with level >= k  <=>  u >= b_k (inclusive)
    or u > b_k, for u = x / scale + zero before rounding with `mode` (qonnx's names)."""
    m = mode.upper()
    half = 2 * ks - 1  # 2 * (k - 1/2)
    if m in ("ROUND", "HALF_EVEN"):
        return half, ks % 2 == 0
    if m == "HALF_UP":  # ties away from zero
        return half, ks >= 1
    if m == "HALF_DOWN":  # ties towards zero
        return half, ks <= 0
    if m == "FLOOR":
        return 2 * ks, np.ones(ks.shape, bool)
    if m == "CEIL":
        return 2 * (ks - 1), np.zeros(ks.shape, bool)
    if m == "DOWN":  # towards zero
        return np.where(ks >= 1, 2 * ks, 2 * (ks - 1)), ks >= 1
    if m == "UP":  # away from zero
        return np.where(ks >= 1, 2 * (ks - 1), 2 * ks), ks <= 0
    raise NotImplementedError(f"rounding mode {mode}")


def _counts(
    x: Exact,
    g: np.ndarray,
    h: np.ndarray,
    bnum: np.ndarray,
    bden: int,
    inclusive: np.ndarray,
) -> np.ndarray:
    """#{k : u >= b_k (inclusive_k) or u > b_k} per element, exactly, for u = g * value + h.

    g > 0, h: fraction arrays broadcastable against a sample; b_k = bnum[..., k] / bden with
    bnum (Python ints) of shape P + (K,) broadcastable too. With u = alpha * n + beta per
    position, each condition is c * n >= q_k (or >) for integers c, q_k, i.e. a threshold on
    sign(c) * n; counting thresholds is exact."""
    alpha = _obj(x.r * g)
    beta = _obj(x.b * g + h)
    k = bnum.shape[-1]
    ps = np.broadcast_shapes(alpha.shape, beta.shape, bnum.shape[:-1])
    if x.clamped:
        ps = np.broadcast_shapes(ps, x.lo.shape, x.hi.shape)
    alpha, beta = np.broadcast_to(alpha, ps), np.broadcast_to(beta, ps)
    bnum = np.broadcast_to(bnum, ps + (k,))
    n = x.n
    is_obj = n.dtype == object
    n_lo, n_hi = (int(n.min()), int(n.max())) if n.size else (0, 0)
    out = np.empty(n.shape, np.int64)
    if x.clamped:
        lo_u = np.broadcast_to(_obj(_affine_bound_u(x.lo, g, h)), ps)
        hi_u = np.broadcast_to(_obj(_affine_bound_u(x.hi, g, h)), ps)
    for pos in np.ndindex(*ps) if ps else [()]:
        a, be = alpha[pos], beta[pos]
        q = (bnum[pos] * be.denominator - be.numerator * bden) * a.denominator  # object ints
        c = a.numerator * bden * be.denominator
        sl = (slice(None),) + tuple(i if ps[d] > 1 else slice(None) for d, i in enumerate(pos))
        view = n[sl]
        if c == 0:  # a constant: 0 >= q_k
            cnt = int(sum(bool(0 >= qk) if inc else bool(0 > qk) for qk, inc in
                          zip(q, inclusive, strict=True)))  # fmt: skip
            res = np.full(view.shape, cnt, np.int64)
        else:
            sgn, c = (1, c) if c > 0 else (-1, -c)
            # sgn * n >= ceil(q / c) (inclusive) or > q / c, i.e. >= floor(q / c) + 1
            t = [-((-qk) // c) if inc else qk // c + 1 for qk, inc in
                 zip(q, inclusive, strict=True)]  # fmt: skip
            if is_obj:
                m = view * sgn
                res = sum((m >= tk).astype(np.int64) for tk in t) if t else np.zeros(view.shape)
                res = np.asarray(res, np.int64)
            else:
                lo_m, hi_m = (n_lo, n_hi) if sgn > 0 else (-n_hi, -n_lo)
                ts = np.sort(np.array([min(max(tk, lo_m - 1), hi_m + 1) for tk in t], np.int64))
                m = view if sgn > 0 else -view.astype(np.int64)
                res = np.searchsorted(ts, np.ravel(m), side="right").reshape(view.shape)
        if x.clamped:  # Q(clamp(y, lo, hi)) = clamp(Q(y), Q(lo), Q(hi)) for nondecreasing Q
            bounds = [bnum[pos][j] / Fraction(bden) for j in range(k)]
            res = np.clip(res, _count_at(lo_u[pos], bounds, inclusive),
                          _count_at(hi_u[pos], bounds, inclusive))  # fmt: skip
        out[sl] = res
    return out


def _count_at(u, bounds: list[Fraction], inclusive: np.ndarray) -> int:
    """#{k : u >= b_k (inclusive_k) or u > b_k} for one exact value u (or +-inf)."""
    return sum(
        bool(u >= b) if inc else bool(u > b) for b, inc in zip(bounds, inclusive, strict=True)
    )


def _level_span(x: Exact, g, h, qmin: int, qmax: int) -> tuple[int, int]:
    """The levels k in (qmin, qmax] whose step lies within reach of this batch: every value
    has u = g * value + h >= k0 - 1 (so the steps below k0, each at most at its level k, are
    all passed) and u < k1 (so those above k1, each above k1 - 1, are never reached). Keeps a
    16- or 32-bit quantizer from listing 2^bits thresholds."""
    if x.n.size == 0:
        return qmin + 1, qmin
    ends = []
    for v in (int(x.n.min()), int(x.n.max())):
        ends += list(np.ravel(_obj((x.r * v + x.b) * g + h)))
    if x.clamped:
        ends += [u for u in np.ravel(_obj(_affine_bound_u(x.lo, g, h))) if u != -INF]
        ends += [u for u in np.ravel(_obj(_affine_bound_u(x.hi, g, h))) if u != INF]
    k0 = min(max(qmin + 1, math.floor(min(ends)) - 1), qmax + 1)
    k1 = max(min(qmax, math.ceil(max(ends)) + 1), qmin)
    return k0, k1  # k1 < k0: no step in reach, every level is k0 - 1


def _quant_levels(x: Exact, node: Node, consts: list) -> tuple[np.ndarray, Exact]:
    """(levels, output) of a quantizer node on an exact tensor."""
    nd = x.ndim
    one = _obj(Fraction(1)).reshape((1,) * nd)
    zero = _obj(Fraction(0)).reshape((1,) * nd)
    if node.op == "BipolarQuant":
        s = fractions(_per_sample(consts[0], nd))
        cnt = _counts(x, one, zero, _obj([0]), 1, np.array([True]))
        lv = 2 * cnt - 1
        return lv, Exact(lv, s, zero)
    if node.op == "MultiThreshold":
        a = node.attrs
        t = np.asarray(consts[0], np.float32)
        last = a.get("data_layout", "NCHW") in ("NHWC", "NC") and nd > 1
        shape = [1] * nd
        if t.shape[0] > 1:
            shape[-1 if last else 0] = t.shape[0]
        tn, td = dyadic(t)
        bden = td.denominator
        bnum = _obj(_scale_int(tn, np.array(td.numerator, dtype=object))).reshape(
            tuple(shape) + (t.shape[1],)
        )
        cnt = _counts(x, one, zero, bnum, bden, np.ones(t.shape[1], bool))
        out_scale = fractions(a.get("out_scale", 1.0)).reshape((1,) * nd)
        out_bias = fractions(a.get("out_bias", 0.0)).reshape((1,) * nd)
        return cnt, Exact(cnt, out_scale, out_bias)
    s = fractions(_per_sample(consts[0], nd))
    z = fractions(_per_sample(consts[1], nd))
    bits = int(np.asarray(consts[2]).ravel()[0])
    signed, narrow = bool(node.attrs.get("signed", 1)), bool(node.attrs.get("narrow", 0))
    g, h = _obj(1 / s), z
    if bits == 1 and signed:  # qonnx: +1 iff x / scale + zero >= 0
        lv = 2 * _counts(x, g, h, _obj([0]), 1, np.array([True])) - 1
    else:
        qmin = -(1 << (bits - 1)) + int(narrow) if signed else 0
        qmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - int(narrow)
        k0, k1 = _level_span(x, g, h, qmin, qmax)
        ks = np.arange(k0, k1 + 1, dtype=np.int64)
        bn, inc = _boundaries(node.attrs.get("rounding_mode", "ROUND"), ks)
        bnum = _obj([int(v) for v in bn]).reshape((1,) * nd + (len(ks),))
        lv = (k0 - 1) + _counts(x, g, h, bnum, 2, inc)
    if all(v == int(v) for v in z.ravel()):  # (level - z) * s with integer zero points
        zi = _as_int(_obj(np.frompyfunc(int, 1, 1)(z)))
        return lv, Exact(lv - zi if np.any(zi != 0) else lv, s, zero)
    return lv, Exact(lv, s, _obj(-z * s))


# -- the executor ------------------------------------------------------------------------------
@dataclass
class ExactResult:
    """Outputs (float64 rounding of the exact values) and every quantizer's integer levels in
    the imported layout (batch first), by the quantizer's output tensor name."""

    outputs: dict[str, np.ndarray]
    levels: dict[str, np.ndarray] = field(default_factory=dict)


def _const_exact(w: np.ndarray) -> Exact:
    """A float constant as an exact tensor with a batch axis of 1."""
    n, r = dyadic(w)
    nd = np.ndim(w)
    return Exact(n[None], _obj(r).reshape((1,) * nd), _obj(Fraction(0)).reshape((1,) * nd))


def _common_unit(x: Exact, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """n with r made uniform along `axes` (sample axes): (n * r / u, u) for u = gcd of r."""
    r = x.r
    u = r
    for ax in axes:
        if r.shape[ax] > 1:
            u = _obj(np.expand_dims(reduce(_gcd2, np.moveaxis(u, ax, 0)), ax))
    if u.shape == r.shape and bool(np.all(u == r)):
        return x.n, u
    return _scale_int(x.n, _int_ratio(r, u)), u


class _ExactRun:
    def __init__(self, graph: Graph):
        self.g = graph
        self.env: dict[str, object] = dict(graph.constants)
        self.qconst: dict[str, Exact] = {}
        self.levels: dict[str, np.ndarray] = {}

    def run(self, x: np.ndarray) -> ExactResult:
        (name,) = self.g.inputs
        x = np.asarray(x, np.float32)
        n, r = dyadic(x)
        nd = x.ndim - 1
        self.env[name] = Exact(n, _obj(r).reshape((1,) * nd), _obj(Fraction(0)).reshape((1,) * nd))
        for node in self.g.nodes:
            args = [self.env.get(t) if t else None for t in node.inputs]
            if not any(isinstance(a, Exact) for a in args) and not any(
                isinstance(a, _Float) for a in args
            ):
                self._constant(node, args)
                continue
            if any(isinstance(a, _Float) for a in args):
                self._host(node, args)
                continue
            fn = getattr(self, f"_op_{node.op}", None)
            if fn is None:
                raise NotImplementedError(f"node '{node.name}': op {node.op} has no exact kernel")
            out = fn(node, args)
            self.env[node.outputs[0]] = out
        outputs = {}
        for t in self.g.outputs:
            v = self.env[t]
            outputs[t] = v.to_float() if isinstance(v, Exact) else np.asarray(v.value)
        return ExactResult(outputs, self.levels)

    # -- constants and the float end ------------------------------------------------------
    def _constant(self, node: Node, args) -> None:
        results = REFERENCE_OPS[node.op](node, args)
        self.env.update(zip(node.outputs, results, strict=False))
        if node.op in QUANTIZER_OPS and node.op != "MultiThreshold":
            x = _const_exact(np.asarray(args[0], np.float32))
            _, q = _quant_levels(x, node, args[1:])
            self.qconst[node.outputs[0]] = q
        elif node.op in SHAPE_OPS and node.inputs[0] in self.qconst:
            self.qconst[node.outputs[0]] = self._shape(node, self.qconst[node.inputs[0]], args)

    def _host(self, node: Node, args) -> None:
        """Ops after the float output (Softmax, TopK, ArgMax): reference semantics on it."""
        vals = [a.value if isinstance(a, _Float) else a for a in args]
        vals = [v.to_float().astype(np.float32) if isinstance(v, Exact) else v for v in vals]
        for t, r in zip(node.outputs, REFERENCE_OPS[node.op](node, vals), strict=False):
            self.env[t] = _Float(r)

    def _weights(self, name: str) -> Exact:
        if name in self.qconst:
            return self.qconst[name]
        return _const_exact(np.asarray(self.env[name], np.float32))

    # -- elementwise ----------------------------------------------------------------------
    def _pair(self, node, args) -> tuple[Exact, np.ndarray, bool]:
        a, b = args
        if isinstance(a, Exact) and not isinstance(b, Exact):
            return a, fractions(_per_sample(b, a.ndim)), False
        if isinstance(b, Exact) and not isinstance(a, Exact):
            return b, fractions(_per_sample(a, b.ndim)), True
        raise NotImplementedError(f"node '{node.name}' ({node.op}) of two tensors")

    def _op_Add(self, node, args):
        if all(isinstance(a, Exact) for a in args):
            return self._add_tensors(node, *args)
        x, c, _ = self._pair(node, args)
        return x.affine(_obj(Fraction(1)), c)

    def _op_Sub(self, node, args):
        x, c, swapped = self._pair(node, args)
        if swapped:
            return x.affine(_obj(Fraction(-1)), c)
        return x.affine(_obj(Fraction(1)), _obj(-c))

    def _op_Mul(self, node, args):
        if all(isinstance(a, Exact) for a in args):
            return self._mul_tensors(node, *args)
        x, c, _ = self._pair(node, args)
        return x.affine(c, _obj(Fraction(0)))

    def _mul_tensors(self, node, x: Exact, y: Exact) -> Exact:
        """(n*r) * (m*s) = (n*m) * (r*s) for quantized tensors without offsets (numpy
        broadcasting, as the model's Mul)."""
        if x.clamped or y.clamped or any(v != 0 for v in np.ravel(np.append(x.b, y.b))):
            raise NotImplementedError(
                f"node '{node.name}': Mul of tensors with offsets or clamps (only quantized "
                "tensors with zero point 0)"
            )
        if max(_absmax(x.n), 1) * max(_absmax(y.n), 1) >= INT_LIMIT:
            n = x.n.astype(object) * y.n.astype(object)
        else:
            n = x.n * y.n
        return Exact(n, _compact(_obj(x.r * y.r)), _obj(Fraction(0)).reshape((1,) * (n.ndim - 1)))

    def _op_Div(self, node, args):
        x, c, swapped = self._pair(node, args)
        if swapped:
            raise NotImplementedError(f"node '{node.name}': division by a tensor")
        return x.affine(_obj(1 / c), _obj(Fraction(0)))

    def _op_BatchNormalization(self, node, args):
        x = args[0]
        gamma, beta, mean, var = (np.asarray(a, np.float32) for a in args[1:5])
        eps = np.float32(node.attrs.get("epsilon", 1e-5))
        p = np.sqrt(var + eps).astype(np.float32)  # the float32 value the model computes
        shape = (-1,) + (1,) * (x.ndim - 1)
        f = lambda v: fractions(v.reshape(shape))  # noqa: E731
        one, zero = _obj(Fraction(1)), _obj(Fraction(0))
        x = x.affine(one, _obj(-f(mean))).affine(_obj(1 / f(p)), zero)
        return x.affine(f(gamma), f(beta))

    def _op_Relu(self, node, args):
        return args[0].clip(_obj(Fraction(0)), _obj(INF))

    def _op_Clip(self, node, args):
        lo = args[1] if len(args) > 1 and args[1] is not None else node.attrs.get("min", -INF)
        hi = args[2] if len(args) > 2 and args[2] is not None else node.attrs.get("max", INF)
        conv = lambda v: _obj(Fraction(float(np.float32(v))) if np.isfinite(v) else float(v))  # noqa: E731
        return args[0].clip(conv(float(np.ravel(lo)[0])), conv(float(np.ravel(hi)[0])))

    def _op_HardTanh(self, node, args):
        return args[0].clip(_obj(Fraction(-1)), _obj(Fraction(1)))

    def _add_tensors(self, node, x: Exact, y: Exact) -> Exact:
        if x.clamped or y.clamped:
            raise NotImplementedError(f"node '{node.name}': Add of unquantized (clamped) tensors")
        u = _compact(_obj(_gcd2(x.r, y.r)))
        n = _scale_int(x.n, _int_ratio(x.r, u))
        m = _scale_int(y.n, _int_ratio(y.r, u))
        if n.dtype == object or m.dtype == object or _absmax(n) + _absmax(m) >= INT_LIMIT:
            s = n.astype(object) + m.astype(object)
        else:
            s = n + m
        return Exact(s, u, _compact(_obj(x.b + y.b)))

    # -- quantizers -----------------------------------------------------------------------
    def _quantizer(self, node, args):
        lv, out = _quant_levels(args[0], node, args[1:])
        self.levels[node.outputs[0]] = lv
        return out

    _op_Quant = _op_IntQuant = _op_BipolarQuant = _op_MultiThreshold = _quantizer

    def _op_Trunc(self, node, args):
        raise NotImplementedError(f"node '{node.name}': Trunc has no exact kernel yet")

    # -- linear ops -----------------------------------------------------------------------
    def _op_MatMul(self, node, args):
        return self._matmul(node, args[0], self._weights(node.inputs[1]))

    def _op_Gemm(self, node, args):
        a = node.attrs
        if a.get("transA", 0):
            raise NotImplementedError(f"node '{node.name}': Gemm with transA")
        w = self._weights(node.inputs[1])
        if a.get("transB", 0):
            w = Exact(np.swapaxes(w.n, 1, 2), w.r.T, w.b.T)
        y = self._matmul(node, args[0], w)
        if a.get("alpha", 1.0) != 1.0:
            y = y.affine(fractions(a["alpha"]).reshape((1,) * y.ndim), _obj(Fraction(0)))
        if len(args) > 2 and args[2] is not None:
            c = np.float32(a.get("beta", 1.0)) * np.asarray(args[2], np.float32)
            y = y.affine(_obj(Fraction(1)), fractions(_per_sample(c, y.ndim)))
        return y

    def _linear_input(self, node, x: Exact) -> tuple[np.ndarray, Fraction, np.ndarray]:
        if x.clamped:
            raise NotImplementedError(
                f"node '{node.name}' ({node.op}): its input passes through ReLU/Clip after the "
                "last quantizer"
            )
        n, u = _common_unit(x, tuple(range(x.ndim)))
        return n, u.ravel()[0], x.b

    def _matmul(self, node, x: Exact, w: Exact) -> Exact:
        n, u, b = self._linear_input(node, x)
        wn, wu = _common_unit(w, (0,))  # per output column
        wn = wn[0]
        k, m = wn.shape
        n2 = n.reshape(-1, k)
        bound = _absmax(n2) * _absmax(wn) * k
        if bound < FLOAT_EXACT and n2.dtype != object and wn.dtype != object:
            acc = np.rint(n2.astype(np.float64) @ wn.astype(np.float64)).astype(np.int64)
        else:
            acc = _as_int(n2.astype(object) @ wn.astype(object))
        acc = acc.reshape(n.shape[:-1] + (m,))
        wu = np.broadcast_to(wu, (1, m)).reshape(-1)
        r = _obj(u * wu).reshape((1,) * (x.ndim - 1) + (m,))
        bf = np.broadcast_to(b, x.n.shape[1:]).reshape(-1)
        if any(v != 0 for v in bf):
            bias = _obj(np.dot(bf.astype(object), wn.astype(object))) * wu
            bias = _obj(bias).reshape(r.shape)
        else:
            bias = _obj(Fraction(0)).reshape((1,) * x.ndim)
        return Exact(acc, _compact(r), _compact(bias))

    def _op_Conv(self, node, args):
        x = args[0]
        a = node.attrs
        w = self._weights(node.inputs[1])
        one_d = x.ndim == 2
        if any(d != 1 for d in a.get("dilations", (1,))):
            raise NotImplementedError(f"node '{node.name}': dilated Conv")
        n, u, b = self._linear_input(node, x)
        b = _compact(b)
        if b.size != 1:
            raise NotImplementedError(f"node '{node.name}': Conv input with per-channel offset")
        b0 = b.ravel()[0]
        wn, wu = _common_unit(w, tuple(range(1, w.ndim)))  # per output channel
        wn = wn[0]
        if one_d:
            n = n[..., None]
            wn = wn[..., None]
        kernel = tuple(wn.shape[2:])
        attrs = dict(a)
        if one_d:
            for key in ("strides",):
                if key in attrs:
                    attrs[key] = tuple(attrs[key]) + (1,)
            if "pads" in attrs:
                p0, p1 = attrs["pads"]
                attrs["pads"] = (p0, 0, p1, 0)
            attrs["kernel_shape"] = kernel
        pads = onnx_pads(attrs, kernel)
        stride = tuple(attrs.get("strides", (1, 1)))
        groups = int(a.get("group", 1))
        pad_value = 0
        if b0 != 0:
            pv = -b0 / u
            if any(pads) and pv.denominator != 1:
                raise NotImplementedError(f"node '{node.name}': padding off the integer grid")
            pad_value = int(pv) if any(pads) else 0
        xh = np.transpose(n, (0, 2, 3, 1))
        wh = np.transpose(wn, (2, 3, 1, 0))
        cin_g = wh.shape[2]
        bound = kernel[0] * kernel[1] * cin_g * max(_absmax(xh), abs(pad_value)) * _absmax(wh)
        if bound >= FLOAT_EXACT or xh.dtype == object or wh.dtype == object:
            raise NotImplementedError(f"node '{node.name}': Conv sums beyond 2^52")
        y = conv2d_nhwc(
            xh.astype(np.int64), wh.astype(np.int64), stride, pads, groups, pad_value
        ).astype(np.int64)
        y = np.transpose(y, (0, 3, 1, 2))
        o = wn.shape[0]
        shape = (o, 1) if one_d else (o, 1, 1)
        wu = np.broadcast_to(wu, (o,) + wu.shape[1:]).reshape(o, -1)[:, 0]
        if one_d:
            y = y[..., 0]
        r = _obj(u * wu).reshape(shape)
        if b0 != 0:
            wsum = [int(v) for v in wn.reshape(o, -1).sum(1)]
            bias = _obj([b0 * s * f for s, f in zip(wsum, wu, strict=True)])
            bias = bias.reshape(shape)
        else:
            bias = _obj(Fraction(0)).reshape((1,) * len(shape))
        out = Exact(y, _compact(r), _compact(bias))
        if len(args) > 2 and args[2] is not None:
            c = np.asarray(args[2], np.float32).reshape(shape)
            out = out.affine(_obj(Fraction(1)), fractions(c))
        return out

    # -- pooling --------------------------------------------------------------------------
    def _spatial(self, node, x: Exact) -> tuple[np.ndarray, bool]:
        """n as NHWC (1-D signals as L x 1), and whether the input was 1-D."""
        if x.ndim not in (2, 3):
            raise NotImplementedError(f"node '{node.name}': pooling of a rank-{x.ndim} sample")
        for p in [x.r, x.b] + ([x.lo, x.hi] if x.clamped else []):
            if any(d != 1 for d in p.shape[1:]):
                raise NotImplementedError(f"node '{node.name}': parameters vary in space")
        one_d = x.ndim == 2
        n = x.n[..., None] if one_d else x.n
        return np.transpose(n, (0, 2, 3, 1)), one_d

    def _geometry(self, node, one_d: bool, kernel) -> tuple:
        a = dict(node.attrs)
        if a.get("ceil_mode", 0):
            raise NotImplementedError(f"node '{node.name}': ceil_mode pooling")
        if one_d:
            kernel = tuple(kernel) + (1,)
            if "strides" in a:
                a["strides"] = tuple(a["strides"]) + (1,)
            if "pads" in a:
                p0, p1 = a["pads"]
                a["pads"] = (p0, 0, p1, 0)
        return tuple(kernel), tuple(a.get("strides", kernel)), onnx_pads(a, tuple(kernel))

    def _back(self, y: np.ndarray, one_d: bool) -> np.ndarray:
        y = np.transpose(y, (0, 3, 1, 2))
        return y[..., 0] if one_d else y

    def _op_MaxPool(self, node, args):
        x = args[0]
        xh, one_d = self._spatial(node, x)
        if xh.dtype == object:
            raise NotImplementedError(f"node '{node.name}': MaxPool of Python integers")
        kernel, stride, pads = self._geometry(node, one_d, node.attrs["kernel_shape"])
        # max of a decreasing function of n is that function of min n: pool sign * n
        sgn = np.asarray(np.frompyfunc(lambda v: -1 if v < 0 else 1, 1, 1)(x.r), np.int64)
        sg = np.transpose(sgn[..., None] if one_d else sgn, (1, 2, 0))[None]
        y = pool2d_nhwc(xh.astype(np.int64) * sg, kernel, stride, pads, "max") * sg
        return Exact(self._back(y, one_d), x.r, x.b, x.lo, x.hi)

    def _sum_pool(self, node, x: Exact, kernel) -> Exact:
        xh, one_d = self._spatial(node, x)
        if x.clamped:
            raise NotImplementedError(f"node '{node.name}': average of an unquantized tensor")
        kernel, stride, pads = self._geometry(node, one_d, kernel)
        if any(pads) and (not node.attrs.get("count_include_pad", 0) or np.any(x.b != 0)):
            raise NotImplementedError(f"node '{node.name}': this padded average pooling")
        y = pool2d_nhwc(xh.astype(np.int64), kernel, stride, pads, "sum")
        kk = Fraction(kernel[0] * kernel[1])
        return Exact(self._back(y, one_d), _obj(x.r / kk), x.b)

    def _op_AveragePool(self, node, args):
        return self._sum_pool(node, args[0], node.attrs["kernel_shape"])

    def _op_GlobalAveragePool(self, node, args):
        return self._sum_pool(node, args[0], args[0].n.shape[2:])

    # -- joins and shape ops --------------------------------------------------------------
    def _op_Concat(self, node, args):
        axis = int(node.attrs.get("axis", 1))
        if axis == 0 or any(not isinstance(a, Exact) for a in args):
            raise NotImplementedError(f"node '{node.name}': Concat along the batch or of constants")
        ax = axis - 1 if axis > 0 else axis
        clamped = any(a.clamped for a in args)
        parts = []
        for a in args:
            if clamped and not a.clamped:
                a = a.clip(_obj(-INF), _obj(INF))
            parts.append(a.full_params())
        ps = [np.concatenate([p[i] for p in parts], axis=ax) for i in range(len(parts[0]))]
        obj = any(a.n.dtype == object for a in args)
        n = np.concatenate([a.n.astype(object) if obj else a.n.astype(np.int64) for a in args],
                           axis=axis)  # fmt: skip
        return args[0].with_params(n, ps)

    def _shape(self, node: Node, x: Exact, args) -> Exact:
        fn = REFERENCE_OPS[node.op]
        n = fn(node, [x.n] + list(args[1:]))[0]
        ps = [fn(node, [p[None]] + list(args[1:]))[0][0] for p in x.full_params()]
        return x.with_params(n, ps)

    def _op_shape(self, node, args):
        return self._shape(node, args[0], args)

    _op_Reshape = _op_Flatten = _op_Transpose = _op_Squeeze = _op_Unsqueeze = _op_shape

    def _op_Identity(self, node, args):
        return args[0]

    # -- float end ------------------------------------------------------------------------
    def _end(self, node, args):
        x = args[0].to_float().astype(np.float32)
        vals = [x] + list(args[1:])
        results = REFERENCE_OPS[node.op](node, vals)
        for t, r in zip(node.outputs[1:], results[1:], strict=False):
            self.env[t] = _Float(r)
        return _Float(results[0])

    _op_Softmax = _op_LogSoftmax = _op_TopK = _op_ArgMax = _end


@dataclass
class _Float:
    """A float value after the network's last quantizer (host ops)."""

    value: np.ndarray

    def to_float(self) -> np.ndarray:
        return self.value


def run_exact(graph: Graph, x: np.ndarray, batch: int = 500) -> ExactResult:
    """Evaluate the imported graph exactly on model inputs `x` (N, *input shape), `batch`
    inputs at a time (the exact thresholds are found per batch; the levels do not depend on
    the batching)."""
    shape = graph.tensors[graph.inputs[0]].shape
    x = np.asarray(x, np.float32).reshape((len(x),) + shape)
    outs: dict[str, list] = {}
    levels: dict[str, list] = {}
    for i in range(0, len(x), batch):
        res = _ExactRun(graph).run(x[i : i + batch])
        for k, v in res.outputs.items():
            outs.setdefault(k, []).append(v)
        for k, v in res.levels.items():
            levels.setdefault(k, []).append(v)
    return ExactResult(
        {k: np.concatenate(v) for k, v in outs.items()},
        {k: np.concatenate(v) for k, v in levels.items()},
    )


# -- three-way comparison ----------------------------------------------------------------------
@dataclass(frozen=True)
class QuantizerRow:
    """One activation quantizer: how many of its integer levels differ between qloom's integer
    graph, qonnx's float32 execution and the exact oracle, and, where qloom and qonnx differ,
    which of the two the exact value supports."""

    tensor: str
    op: str
    values: int
    qloom_qonnx: int  # values where qloom != qonnx
    qloom_exact: int
    qonnx_exact: int
    exact_sides_qloom: int  # of qloom != qonnx: exact == qloom
    exact_sides_qonnx: int  # of qloom != qonnx: exact == qonnx
    inputs_differing: int  # inputs with some qloom != qonnx value here
    # the same on the inputs where all three agreed at every earlier quantizer: what this
    # quantizer's own rounding decides, free of differences propagated from upstream
    clean_inputs: int
    local_qloom_qonnx: int
    local_qloom_exact: int
    local_qonnx_exact: int


@dataclass(frozen=True)
class ExactComparison:
    rows: list[QuantizerRow]
    inputs: int
    outputs_differ_qloom_exact: int  # inputs whose float outputs differ beyond float rounding
    outputs_differ_qonnx_exact: int


def _qonnx_context(path: str | Path, x: np.ndarray, names: list[str], batch: int) -> dict:
    """qonnx execute_onnx on the original model with the full execution context: the tensors
    `names` and the first output, for all inputs."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    from qloom.frontend.load import cleaned_model

    model = ModelWrapper(cleaned_model(path))
    batch = min(batch, len(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if batch != 1:
            model = model.transform(ChangeBatchSize(batch)).transform(InferShapes())
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    keep = list(dict.fromkeys(list(names) + [oname]))
    got: dict[str, list] = {k: [] for k in keep}
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctx = execute_onnx(model, {iname: chunk}, return_full_exec_context=True)
        for k in keep:
            got[k].append(np.asarray(ctx[k])[:n])
    out = {k: np.concatenate(v) for k, v in got.items()}
    out["__output__"] = out[oname]
    return out


def _levels_of(graph: Graph, node: Node, y: np.ndarray) -> np.ndarray:
    """qonnx's float quantizer output -> integer levels (its float32 value is level's image)."""
    from qloom.frontend.validate import quantizer_levels

    y = np.asarray(y, np.float64)
    if node.op == "MultiThreshold":
        s = float(node.attrs.get("out_scale", 1.0))
        return np.rint((y - float(node.attrs.get("out_bias", 0.0))) / s).astype(np.int64)
    lv = quantizer_levels(graph, node)
    nd = y.ndim - 1
    s = _per_sample(np.asarray(lv.scale, np.float64), nd)
    z = _per_sample(np.asarray(lv.zero, np.float64), nd)
    u = y / s + z
    if lv.dtype.is_bipolar:
        return np.where(u > 0, 1, -1).astype(np.int64)
    return np.rint(u).astype(np.int64)


def _imported_layout(graph: Graph, name: str, arr: np.ndarray, shape) -> np.ndarray | None:
    """An integer-graph tensor (channels-last) in the imported layout, or None."""
    info = graph.tensors.get(name)
    a = np.asarray(arr)
    if info is None or a[0].size != int(np.prod(shape)):
        return None
    if info.layout == "NHWC" and a.ndim == 4:
        a = np.transpose(a, (0, 3, 1, 2))
    return a.reshape((len(a),) + tuple(shape)).astype(np.int64)


def compare_exact(
    path: str | Path, x: np.ndarray, compiled=None, batch: int = 100
) -> ExactComparison:
    """The three-way comparison on model inputs `x`: qloom's integer graph (compiled from
    `path` unless given), qonnx's execute_onnx on the original model, and the exact oracle,
    per activation quantizer. Each executor follows its own upstream levels, so a difference
    at one quantizer may be a consequence of one before it."""
    from qloom.execute import execute
    from qloom.flow import compile_model, integer_input

    c = compiled or compile_model(path)
    g, ig = c.imported, c.integer
    x = c.domain_check(np.asarray(x, np.float32))
    exact = run_exact(g, x)
    quantizers = [n for n in g.nodes if n.op in QUANTIZER_OPS and n.outputs[0] in exact.levels]
    names = [n.outputs[0] for n in quantizers]
    ref = _qonnx_context(path, x, names, batch)
    q = c.hardware_input(x)
    ours: dict[str, list] = {}
    wanted = {}
    for n in quantizers:  # a max pool deferred past the quantizer holds its imported value
        pooled = [m.outputs[0] for m in ig.nodes if m.name == f"{n.name}_maxpool"]
        wanted[n.outputs[0]] = pooled[0] if pooled else n.outputs[0]
    for i in range(0, len(q), 500):
        env = execute(ig, integer_input(ig, q[i : i + 500]), keep_all=True)
        for t, it in wanted.items():
            if it in env:
                ours.setdefault(t, []).append(env[it])
    rows = []
    clean = np.ones(len(x), bool)  # all three agreed at every earlier quantizer
    for n in quantizers:
        t = n.outputs[0]
        ex = exact.levels[t]
        qo = _levels_of(g, n, ref[t]).reshape(ex.shape)
        ql = None
        if t in ours:
            ql = _imported_layout(ig, wanted[t], np.concatenate(ours[t]), ex.shape[1:])
        if ql is None:
            ql = np.full(ex.shape, np.iinfo(np.int64).min)  # not in the integer graph
        d = ql != qo
        m = clean.reshape((-1,) + (1,) * (ex.ndim - 1))
        rows.append(
            QuantizerRow(
                tensor=t,
                op=n.op,
                values=int(ex.size),
                qloom_qonnx=int(d.sum()),
                qloom_exact=int((ql != ex).sum()),
                qonnx_exact=int((qo != ex).sum()),
                exact_sides_qloom=int((d & (ex == ql)).sum()),
                exact_sides_qonnx=int((d & (ex == qo)).sum()),
                inputs_differing=int(d.reshape(len(d), -1).any(1).sum()),
                clean_inputs=int(clean.sum()),
                local_qloom_qonnx=int((d & m).sum()),
                local_qloom_exact=int(((ql != ex) & m).sum()),
                local_qonnx_exact=int(((qo != ex) & m).sum()),
            )
        )
        same = (ql == qo) & (qo == ex)
        clean &= same.reshape(len(x), -1).all(1)
    out_name = g.outputs[0]
    ex_out = np.asarray(exact.outputs[out_name], np.float64).reshape(len(x), -1)
    ours_out = np.asarray(c.run(x)[ig.outputs[0]], np.float64).reshape(len(x), -1)
    ref_out = np.asarray(ref["__output__"], np.float64).reshape(len(x), -1)
    tol = 1e-5 * max(1.0, float(np.abs(ex_out).max(initial=0)))

    def differ(a):
        return int(np.any(np.abs(a - ex_out) > tol, axis=1).sum())

    return ExactComparison(rows, len(x), differ(ours_out), differ(ref_out))


def comparison_table(cmp: ExactComparison) -> list[list[str]]:
    """Rows of strings for printing (header first): ql = qloom's integer graph, qo = qonnx,
    ex = exact; ex=ql / ex=qo: of the values where ql != qo, the side the exact value supports;
    "inputs": inputs with some ql != qo value; "local": the same counts on the inputs where all
    three agreed at every earlier quantizer (this quantizer's own rounding)."""
    head = ["quantizer", "values", "ql!=qo", "ex=ql", "ex=qo", "ql!=ex", "qo!=ex", "inputs",
            "local inputs", "local ql!=qo", "local ql!=ex", "local qo!=ex"]  # fmt: skip
    body = []
    for r in cmp.rows:
        name = r.tensor if len(r.tensor) <= 28 else r.tensor[:27] + "~"
        counts = [r.values, r.qloom_qonnx, r.exact_sides_qloom, r.exact_sides_qonnx,
                  r.qloom_exact, r.qonnx_exact, r.inputs_differing, r.clean_inputs,
                  r.local_qloom_qonnx, r.local_qloom_exact, r.local_qonnx_exact]  # fmt: skip
        body.append([name] + [f"{v:,}" for v in counts])
    return [head] + body
