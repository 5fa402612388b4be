"""Integer multipliers for an Add of two quantized tensors with different scales.

Why this is possible at all: a float scale is a dyadic rational (an integer times a power of
two), so two scales sx and sy have an exact common unit u = gcd(sx, sy) (as fractions) and
sx*x + sy*y = u * (mx*x + my*y) with the coprime integers mx = sx/u, my = sy/u
(`exact_multipliers`). For scales that are simple fractions (0.75 and 0.5: u = 0.25, mx = 3,
my = 2) the multipliers are small; for learned float32 scales they have ~24 bits plus the
scales' exponent difference, which often overflows the accumulator.

When an activation quantizer follows the Add, exactness is cheaper: the quantizer only needs
to know which output level each operand pair (x, y) gives, so any integer combination
m1*x + m2*y that orders the pairs consistently with their levels does as well. The
quantizer's level of every pair in the operands' bounded ranges is enumerated (qonnx's own
float32 arithmetic: the two operands as the model computes them, their float32 sum, the steps
after it, the quantizer), candidate multipliers are tried from the smallest up
(`candidate_multipliers`: the continued-fraction approximations of sx/sy, ending with the
exact mx/my), and the first whose accumulator gives the same level as qonnx for every pair
wins (`table_thresholds`). That is an exhaustive proof over all inputs the hardware can see,
not a sampled check.

qonnx rounds each operand's product and then their sum to float32, so near a quantizer step
its level is not always a monotone function of the exact sum; then no multipliers reproduce
it on every pair, and the exact ones get the thresholds that misplace the fewest pairs
(`closest_thresholds`: rare pairs, counted in tests/test_add_scales.py).
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd, lcm

import numpy as np

from qloom.datatype import DataType

#: widest Add output (accumulator) qloom emits: qloom_add computes in 66 bits and wraps to
#: OBITS <= 64, but an Add output may feed any stage (the SWU takes at most 32-bit elements,
#: MVAU accumulators grow from it) and the integer executor and stream packing use int64
MAX_ADD_BITS = 32
#: qloom_add's A_MUL / B_MUL are 32-bit signed Verilog constants
MAX_MULTIPLIER = (1 << 31) - 1
#: at most this many (channel, x, y) operand pairs are enumerated to look for smaller
#: multipliers (4 M: 64 channels of two 8-bit operands)
MAX_PAIRS = 1 << 22


def exact_multipliers(sx: float, sy: float) -> tuple[int, int, Fraction]:
    """(mx, my, u) with sx = mx*u and sy = my*u exactly, mx and my coprime positive integers.

    u is the greatest common divisor of the two scales as fractions (float scales are dyadic
    rationals, so it always exists): gcd(a/b, c/d) = gcd(a, c) / lcm(b, d) in lowest terms.
    """
    fx, fy = Fraction(float(sx)), Fraction(float(sy))
    if fx <= 0 or fy <= 0:
        raise ValueError(f"scales must be positive, got {sx!r} and {sy!r}")
    unit = Fraction(gcd(fx.numerator, fy.numerator), lcm(fx.denominator, fy.denominator))
    mx, my = fx / unit, fy / unit
    assert mx.denominator == 1 and my.denominator == 1
    return int(mx), int(my), unit


def bits_for_range(lo: int, hi: int) -> int:
    """Bits of the narrowest UINTn/INTn holding [lo, hi] (DataType.for_range, unbounded)."""
    lo, hi = int(lo), int(hi)
    if lo >= 0:
        return max(1, hi.bit_length())
    return max(2, max((-lo - 1).bit_length(), hi.bit_length()) + 1)


def sum_bits(m1: int, m2: int, x: DataType, y: DataType) -> int:
    """Bits of m1*x + m2*y (m1, m2 > 0) over the operand types, as the Add stage sizes its
    output (qloom.dataflow.add.Add.out_dtype), in Python integers (exact multipliers can
    overflow int64)."""
    return bits_for_range(m1 * x.min + m2 * y.min, m1 * x.max + m2 * y.max)


def candidate_multipliers(sx: float, sy: float, max_terms: int = 12) -> list[tuple[int, int]]:
    """Multiplier pairs (m1, m2) with m1/m2 approximating sx/sy, smallest first, the exact
    pair last: the convergents and (a geometric selection of) the semiconvergents of the
    continued fraction of sx/sy, which are its best rational approximations."""
    mx, my, _ = exact_multipliers(sx, sy)
    terms = []
    p, q = mx, my
    while q:
        terms.append(p // q)
        p, q = q, p % q
    out: set[tuple[int, int]] = set()
    h1, h2, k1, k2 = 1, 0, 0, 1  # h_{n-1}, h_{n-2}, k_{n-1}, k_{n-2}
    for a in terms:
        ts = {a} | {t for t in (1 << i for i in range(a.bit_length())) if t < a}
        ts |= {(a + 1) // 2}
        for t in sorted(ts)[-max_terms:]:
            h, k = t * h1 + h2, t * k1 + k2
            if h > 0 and k > 0:
                out.add((h, k))
        h1, h2, k1, k2 = a * h1 + h2, h1, a * k1 + k2, k1
    assert (h1, k1) == (mx, my)
    out.add((mx, my))
    return sorted(out, key=lambda m: (max(m), m))


class LevelOrder:
    """The table of operand pairs (x, y) (C, n) and their levels, sorted by level once, to
    test candidate multipliers in O(pairs) each: thresholds on m1*x + m2*y reproduce the
    levels iff, per channel, every pair of a lower level has a smaller (or, for a decreasing
    channel, larger) accumulator than every pair of a higher level."""

    def __init__(self, x: np.ndarray, y: np.ndarray, level: np.ndarray) -> None:
        order = np.argsort(level, axis=1, kind="stable")
        self.x = np.take_along_axis(x, order, 1)
        self.y = np.take_along_axis(y, order, 1)
        self.step = np.diff(np.take_along_axis(level, order, 1), axis=1) != 0

    def separates(self, m1: int, m2: int) -> bool:
        """True when thresholds on m1*x + m2*y can give every pair its level (checked on the
        first channel, where most candidates fail, before all of them)."""
        for rows in (slice(0, 1), slice(None)):
            a = m1 * self.x[rows] + m2 * self.y[rows]
            step = self.step[rows]
            before_max = np.maximum.accumulate(a, axis=1)[:, :-1]
            after_min = np.minimum.accumulate(a[:, ::-1], axis=1)[:, ::-1][:, 1:]
            before_min = np.minimum.accumulate(a, axis=1)[:, :-1]
            after_max = np.maximum.accumulate(a[:, ::-1], axis=1)[:, ::-1][:, 1:]
            inc = np.all((before_max < after_min) | ~step, axis=1)
            dec = np.all((before_min > after_max) | ~step, axis=1)
            if not np.all(inc | dec):
                return False
        return True


def table_thresholds(
    acc: np.ndarray, level: np.ndarray, lo: np.ndarray, hi: np.ndarray, bipolar: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Thresholds reproducing `level` (C, n) as a function of the integers `acc` (C, n).

    Returns (thresholds (C, K) ascending, negate (C,), min level (C,), max level (C,)) in the
    format of lower._search_thresholds (level = base + #{k: sign*acc >= T[c, k]}, base = the
    smallest level, or -1 for BIPOLAR), or None when no thresholds can: two pairs with the
    same accumulator have different levels, or the levels are not monotone in it. lo/hi (C,)
    are the accumulator's per-channel bounds (attained by the table). The result is checked
    on every entry of the table.
    """
    order = np.argsort(acc, axis=1, kind="stable")
    a_s = np.take_along_axis(acc, order, 1)
    l_s = np.take_along_axis(level, order, 1)
    dl, da = np.diff(l_s, axis=1), np.diff(a_s, axis=1)
    if np.any((da == 0) & (dl != 0)):
        return None
    inc, dec = (dl >= 0).all(1), (dl <= 0).all(1)
    if not np.all(inc | dec):
        return None
    negate = dec & ~inc
    a2 = np.where(negate[:, None], -a_s[:, ::-1], a_s)
    l2 = np.where(negate[:, None], l_s[:, ::-1], l_s)
    hi2 = np.where(negate, -np.asarray(lo), np.asarray(hi)).astype(np.int64)
    v_lo, v_hi = l2[:, 0], l2[:, -1]
    base = -1 if bipolar else int(v_lo.min())
    targets = np.array([1]) if bipolar else np.arange(base + 1, int(v_hi.max()) + 1)
    c, n = acc.shape
    if targets.size == 0:  # a constant output: one threshold no accumulator reaches
        thresholds = (hi2 + 1)[:, None]
    else:
        thresholds = np.empty((c, targets.size), np.int64)
        for ch in range(c):
            i = np.searchsorted(l2[ch], targets, side="left")
            thresholds[ch] = np.where(i < n, a2[ch, np.minimum(i, n - 1)], hi2[ch] + 1)
    for ch in range(c):  # the proof: every pair of the table gets its level back
        cnt = np.searchsorted(thresholds[ch], a2[ch], side="right")
        got = 2 * cnt - 1 if bipolar else base + cnt
        if not np.array_equal(got, l2[ch]):
            return None
    return thresholds, negate, v_lo, v_hi


def closest_thresholds(
    acc: np.ndarray, level: np.ndarray, lo: np.ndarray, hi: np.ndarray, bipolar: bool
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], int]:
    """Thresholds on `acc` (C, n) that give as many pairs as possible their `level` (C, n),
    for a table no thresholds reproduce exactly (qonnx rounds each operand's product and
    their float32 sum, so near a quantizer step its level need not be monotone in the exact
    sum). Same format as table_thresholds, plus the number of pairs still given another
    level. Each step k is placed independently where it misplaces fewest pairs: all pairs
    before the first of level >= k are below it and all after the last of level < k above,
    so only the (short) window between those two is searched."""
    c, n = acc.shape
    lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    order = np.argsort(acc, axis=1, kind="stable")
    a_s = np.take_along_axis(acc, order, 1)
    l_s = np.take_along_axis(level, order, 1)
    negate = l_s[:, 0] > l_s[:, -1]
    a2 = np.where(negate[:, None], -a_s[:, ::-1], a_s)
    l2 = np.where(negate[:, None], l_s[:, ::-1], l_s)
    hi2 = np.where(negate, -lo, hi)
    v_lo, v_hi = l2.min(1), l2.max(1)
    base = -1 if bipolar else int(v_lo.min())
    targets = np.array([1]) if bipolar else np.arange(base + 1, int(v_hi.max()) + 1)
    thresholds = np.empty((c, max(targets.size, 1)), np.int64)
    wrong = 0
    for ch in range(c):
        a, lv = a2[ch], l2[ch]
        if targets.size == 0:
            thresholds[ch] = hi2[ch] + 1
            continue
        first_ge = np.searchsorted(np.maximum.accumulate(lv), targets, side="left")
        rmin = np.minimum.accumulate(lv[::-1])[::-1]
        last_lt = np.searchsorted(rmin, targets, side="left") - 1
        split = first_ge.copy()
        for j in np.nonzero(last_lt >= first_ge)[0]:  # an inverted window: fewest misplaced
            i0, i1 = int(first_ge[j]), int(last_lt[j]) + 1
            ge = lv[i0:i1] >= targets[j]
            s = np.arange(i0, i1 + 1)
            errors = np.concatenate([[0], np.cumsum(ge)]) + np.concatenate(
                [np.cumsum((~ge)[::-1])[::-1], [0]]
            )
            ok = (s == 0) | (s == n) | (a[np.maximum(s - 1, 0)] < a[np.minimum(s, n - 1)])
            split[j] = s[ok][np.argmin(errors[ok])]
        t = np.where(split < n, a[np.minimum(split, n - 1)], hi2[ch] + 1)
        thresholds[ch] = np.maximum.accumulate(t)
        cnt = np.searchsorted(thresholds[ch], a, side="right")
        wrong += int(np.sum((2 * cnt - 1 if bipolar else base + cnt) != lv))
    return (thresholds, negate, v_lo, v_hi), wrong
