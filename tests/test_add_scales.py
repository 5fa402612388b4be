"""Residual Adds of branches quantized with different scales (issues 11 and 17).

Float scales are dyadic rationals, so two scales have an exact common unit and integer
multipliers (`exact_multipliers`); when a quantizer follows the Add, qloom uses the smallest
multipliers that give it qonnx's level on every operand pair (an exhaustive check), else the
exact ones when they fit the Add stage, else a refusal naming the node, the scales and the
bits needed."""

from __future__ import annotations

import re
from fractions import Fraction
from math import gcd

import numpy as np
import pytest
from model_corpus import _Builder, add_of_two_scales, brevitas_residual_scales

from qloom.errors import UnsupportedModelError
from qloom.flow import compile_model, run_integer
from qloom.fold import fold_design
from qloom.frontend.reference import qonnx_outputs
from qloom.sim.design import simulate, size_fifos
from qloom.streamline import lower
from qloom.streamline.addscale import (
    LevelOrder,
    bits_for_range,
    candidate_multipliers,
    closest_thresholds,
    exact_multipliers,
    table_thresholds,
)


def f32(v: float) -> float:
    return float(np.float32(v))


# -- the multipliers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sx", "sy", "mx", "my", "unit"),
    [
        (0.75, 0.5, 3, 2, Fraction(1, 4)),
        (0.5, 0.25, 2, 1, Fraction(1, 4)),
        (0.37, 0.37, 1, 1, Fraction(0.37)),
        (2.0**-7, 3.0, 1, 384, Fraction(1, 128)),
    ],
)
def test_exact_multipliers_of_simple_scales(sx, sy, mx, my, unit):
    assert exact_multipliers(sx, sy) == (mx, my, unit)


@pytest.mark.parametrize(
    ("sx", "sy"), [(0.1, 0.3), (1.3 / 8, 2.1 / 16), (0.77 / 15, 1.13 / 8), (1e-3, 7.5)]
)
def test_exact_multipliers_of_float32_scales(sx, sy):
    """Non-dyadic-looking float32 scales (0.1, Brevitas' learned 1.3/8, ...) are dyadic
    rationals all the same: sx = mx*u and sy = my*u exactly, mx and my coprime."""
    sx, sy = f32(sx), f32(sy)
    mx, my, unit = exact_multipliers(sx, sy)
    assert Fraction(sx) == mx * unit and Fraction(sy) == my * unit and gcd(mx, my) == 1
    assert unit.denominator & (unit.denominator - 1) == 0  # a dyadic rational
    assert max(mx, my) >= 1 << 20  # ~24-bit mantissas: the exact multipliers are wide


def test_exact_multipliers_of_float32_tenths():
    assert exact_multipliers(f32(0.1), f32(0.3)) == (13421773, 40265320, Fraction(1, 2**27))


def test_exact_multipliers_refuse_nonpositive_scales():
    with pytest.raises(ValueError, match="positive"):
        exact_multipliers(0.5, 0.0)


def test_candidate_multipliers_are_best_approximations_smallest_first():
    assert candidate_multipliers(0.75, 0.5) == [(1, 1), (2, 1), (3, 2)]
    assert candidate_multipliers(0.5, 0.5) == [(1, 1)]
    sx, sy = f32(1.3 / 8), f32(2.1 / 16)
    cands = candidate_multipliers(sx, sy)
    assert cands[-1] == exact_multipliers(sx, sy)[:2]
    assert [max(c) for c in cands] == sorted(max(c) for c in cands)
    errs = [abs(m1 / m2 - sx / sy) for m1, m2 in cands]
    assert errs[-1] == 0.0 and max(errs) < 1 and min(errs[:-1]) < 1e-3


def test_bits_for_range_matches_datatypes():
    from qloom.datatype import DataType

    for lo, hi in ((0, 1), (0, 255), (-1, 0), (-128, 127), (-129, 5), (3, 1 << 40)):
        assert bits_for_range(lo, hi) == DataType.for_range(lo, hi).bits
    assert bits_for_range(-(1 << 70), 0) == 71


def test_table_thresholds_reproduce_levels_or_refuse():
    acc = np.array([[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0]])
    level = np.array([[0, 0, 1, 1, 1, 2], [0, 0, 1, 1, 1, 2]])  # channel 1 decreases in acc
    t, negate, lo, hi = table_thresholds(acc, level, np.array([0, 0]), np.array([5, 5]), False)
    assert t.tolist() == [[2, 5], [-3, 0]] and negate.tolist() == [False, True]
    assert lo.tolist() == [0, 0] and hi.tolist() == [2, 2]
    lo, hi = np.array([0]), np.array([3])
    tie = np.array([[0, 1, 1, 2]])  # one accumulator, two levels
    assert table_thresholds(tie, np.array([[0, 0, 1, 1]]), lo, hi, False) is None
    bumpy = np.array([[0, 1, 0, 1]])  # not monotone
    assert table_thresholds(np.array([[0, 1, 2, 3]]), bumpy, lo, hi, False) is None


def test_level_order_agrees_with_table_thresholds():
    """The O(pairs) test of a candidate says yes exactly when thresholds exist."""
    rng = np.random.default_rng(0)
    x = np.repeat(np.tile(np.arange(-8, 8), (3, 1)), 16, axis=1)
    y = np.tile(np.arange(-8, 8), (3, 16))
    sx, sy = np.float32(0.1625), np.float32(0.13125)
    level = np.rint((sx * x.astype(np.float32) + sy * y.astype(np.float32)) / np.float32(0.37))
    level = level.astype(np.int64) * np.array([[1], [-1], [1]])  # channel 1 decreasing
    order = LevelOrder(x, y, level)
    for m1, m2 in [(1, 1), (5, 4), (16, 13), (26, 21), (3, 1)] + [tuple(rng.integers(1, 40, 2))]:
        acc = m1 * x + m2 * y
        found = table_thresholds(acc, level, acc.min(1), acc.max(1), False)
        assert order.separates(m1, m2) == (found is not None), (m1, m2)


def test_closest_thresholds_misplace_the_fewest_pairs():
    acc = np.array([[0, 1, 2, 3, 4, 5, 6, 7]])
    level = np.array([[0, 0, 1, 0, 1, 1, 2, 2]])  # pair 3 is below a pair of level 1
    (t, negate, lo, hi), wrong = closest_thresholds(acc, level, [0], [7], False)
    assert t.tolist() == [[2, 6]] and not negate[0] and wrong == 1
    (t, negate, _, _), wrong = closest_thresholds(acc[:, ::-1], level, [0], [7], False)
    assert t.tolist() == [[-5, -1]] and negate[0] and wrong == 1
    (_, _, _, _), wrong = closest_thresholds(acc, np.sort(level), [0], [7], False)
    assert wrong == 0


# -- hand-built graphs: exact multipliers and refusals --------------------------------------------
def test_exact_multipliers_when_the_sum_is_the_output(tmp_path):
    """Scales 0.75 and 0.5 into the float output: Add with multipliers 3 and 2 (unit 0.25),
    equal to qonnx on every value of 1,000 inputs."""
    path = add_of_two_scales(tmp_path / "add.onnx", 0.75, 0.5)
    c = compile_model(path)
    (add,) = [n for n in c.integer.nodes if n.op == "Add"]
    assert (add.attrs["a_mul"], add.attrs["b_mul"]) == (3, 2)
    x = np.random.default_rng(0).normal(0, 3, (1000, 16)).astype(np.float32)
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], qonnx_outputs(path, x, 200))


WIDE = (
    "node 'Add_13' (Add): the operands' scales 0.100000001 and 0.300000012 are 13421773 and "
    "40265320 times their exact common unit 7.4505806e-09, so their exact integer sum needs a "
    "33-bit accumulator (qloom's Add takes at most 32 bits, and multipliers below 2**31); it "
    "feeds {feeds}; quantize both branches with one shared quantizer or with scales whose ratio "
    "is a small fraction (e.g. 0.75 and 0.5: multipliers 3 and 2){hint}"
)
EXACT_HINT = (
    ", or quantize the sum right after the Add (e.g. a Brevitas QuantReLU), which lets qloom "
    "look for smaller multipliers"
)


def test_a_sum_too_wide_for_the_add_is_refused(tmp_path):
    """8-bit operands of scales float32(0.1) and float32(0.3) feeding a MatMul: the exact sum
    needs 33 bits."""
    path = add_of_two_scales(tmp_path / "wide.onnx", f32(0.1), f32(0.3), classes=4)
    feeds = "node 'MatMul_19' (MatMul), which needs the exact sum"
    want = WIDE.format(feeds=feeds, hint=EXACT_HINT)
    with pytest.raises(UnsupportedModelError, match=f"^{re.escape(want)}$"):
        compile_model(path)


def test_a_quantized_sum_with_no_small_multipliers_is_refused(tmp_path):
    """The same operands into a quantizer of scale 0.2: many sums lie on a rounding tie of the
    quantizer, decided by qonnx's float32 rounding of each operand, which no multipliers of at
    most 32 bits order consistently (and the exact ones need 33 bits)."""
    path = add_of_two_scales(tmp_path / "tie.onnx", f32(0.1), f32(0.3), out_quant=(0.2, 5))
    why = (
        "the quantizer 'Quant_17', and no multipliers for a sum of at most 32 bits give that "
        "quantizer the level the model computes on every operand pair"
    )
    want = WIDE.format(feeds=why, hint="")
    with pytest.raises(UnsupportedModelError, match=f"^{re.escape(want)}$"):
        compile_model(path)


def test_a_quantized_sum_of_float32_scales_gets_small_multipliers(tmp_path):
    """Scales float32(0.1) and float32(0.3) into a quantizer of scale 0.37 (no ties): the
    exact multipliers need 33 bits, but small ones give every operand pair qonnx's level."""
    path = add_of_two_scales(tmp_path / "q.onnx", f32(0.1), f32(0.3), out_quant=(0.37, 5))
    c = compile_model(path)
    (add,) = [n for n in c.integer.nodes if n.op == "Add"]
    assert max(add.attrs["a_mul"], add.attrs["b_mul"]) < 1 << 12
    x = np.random.default_rng(1).normal(0, 3, (1000, 16)).astype(np.float32)
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], qonnx_outputs(path, x, 200))


def test_a_sum_feeding_two_quantizers_is_added_once(tmp_path):
    """One sum (scales float32 0.1 and 0.3, 6-bit) quantized twice (scales 0.37 and 0.55),
    the two results added and quantized again: the first Add is emitted once, with the small
    multipliers both quantizers accept; equal to qonnx on 1,000 inputs."""
    b = _Builder(11)
    q = b.quant("x", 1 / 16, 8, signed=True)
    y = b.node("Add", [b.quant(q, f32(0.1), 6, signed=True), b.quant(q, f32(0.3), 6, signed=True)])
    z = b.node("Add", [b.quant(y, 0.37, 5, signed=True), b.quant(y, 0.55, 3, signed=True)])
    path = b.save(tmp_path / "fan.onnx", (1, 16), b.quant(z, 0.25, 6, signed=True), (1, 16))
    c = compile_model(path)
    adds = [
        (n.inputs, n.attrs["a_mul"], n.attrs["b_mul"]) for n in c.integer.nodes if n.op == "Add"
    ]
    assert len(adds) == 2 and adds[0][1:] == (1, 3) and max(adds[1][1:]) < 64
    x = np.random.default_rng(2).normal(0, 3, (1000, 16)).astype(np.float32)
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], qonnx_outputs(path, x, 200))


def test_a_sum_through_a_max_pool_into_a_quantizer(tmp_path):
    """Add -> MaxPool -> Relu -> quantizer: small multipliers, thresholds before the pool."""
    b = _Builder(12)
    q = b.quant("x", 1 / 16, 8, signed=True)
    sx, sy = f32(1.3 / 8), f32(2.1 / 16)
    y = b.node("Add", [b.quant(q, sx, 4, signed=True), b.quant(q, sy, 5, signed=True)])
    y = b.node("Relu", [b.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])])
    path = b.save(tmp_path / "pool.onnx", (1, 3, 6, 6), b.quant(y, f32(1.9 / 15), 4, False),
                  (1, 3, 3, 3))  # fmt: skip
    c = compile_model(path)
    ops = [(n.op, n.attrs.get("a_mul"), n.attrs.get("b_mul")) for n in c.integer.nodes]
    assert ops[2:5] == [("Add", 21, 17), ("MultiThreshold", None, None), ("MaxPool", None, None)]
    x = np.random.default_rng(4).normal(0, 2, (1000, 3, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], qonnx_outputs(path, x, 200))


def test_exact_multipliers_where_qonnx_rounding_orders_no_smaller_ones(tmp_path, monkeypatch):
    """8-bit operands of learned scales 1.3/8 and 2.1/16 into an 8-bit quantizer of scale
    0.37: qonnx's float32 rounding of the operands decides some pairs near a step, so no
    multipliers (not even the exact ones) give all 193,248 operand pairs its level. qloom
    uses the exact multipliers (a 31-bit sum) with the thresholds that misplace the fewest
    pairs: 32 (the float32 chain on the exact sum would misplace 128); none of them occurred
    on 1,000 random inputs."""
    off = []

    def counting(*args):
        found, wrong = closest_thresholds(*args)
        off.append((wrong, args[0].size))
        return found, wrong

    monkeypatch.setattr(lower, "closest_thresholds", counting)
    sx, sy = f32(1.3 / 8), f32(2.1 / 16)
    path = add_of_two_scales(tmp_path / "b8.onnx", sx, sy, out_quant=(f32(0.37), 8))
    c = compile_model(path)
    (add,) = [n for n in c.integer.nodes if n.op == "Add"]
    assert (add.attrs["a_mul"], add.attrs["b_mul"]) == exact_multipliers(sx, sy)[:2]
    assert off == [(32, 193248)]
    x = np.random.default_rng(0).normal(0, 3, (1000, 16)).astype(np.float32)
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], qonnx_outputs(path, x, 200))


def test_wide_exact_multipliers_in_rtl(tmp_path):
    """4-bit operands of scales float32(0.1) and float32(0.3) summed into the float output:
    the exact multipliers 13421773 and 40265320 (a 30-bit sum) in qloom_add, RTL == integer
    model on 100 frames at full speed (cycles per frame = formula) and with random stalls.
    The float output equals qonnx within one float32 rounding (qonnx rounds each operand's
    product and their sum, qloom the exact sum times the unit)."""
    path = add_of_two_scales(tmp_path / "wide4.onnx", f32(0.1), f32(0.3), bits=4)
    c = compile_model(path)
    (add,) = [n for n in c.integer.nodes if n.op == "Add"]
    assert (add.attrs["a_mul"], add.attrs["b_mul"]) == (13421773, 40265320)
    x = np.random.default_rng(3).normal(0, 3, (1000, 16)).astype(np.float32)
    np.testing.assert_allclose(c.run(x)[c.integer.outputs[0]], qonnx_outputs(path, x, 200),
                               rtol=2.4e-7)  # fmt: skip
    design = fold_design(c.integer, 1e6, 100.0, "xc7z020").design
    assert [s.rtl_params()["OBITS"] for s in design.stages if s.kind == "Add"] == [30]
    q = c.hardware_input(x[:100])
    want = run_integer(c.integer, q)[c.integer.outputs[0]]
    depths = size_fifos(design, q[:8])
    full = simulate(design, q, fifo_depths=depths).check()
    assert np.array_equal(full.outputs[c.integer.outputs[0]], want)
    assert full.cycles_per_frame == design.cycles_per_frame()
    res = simulate(design, q, fifo_depths=depths, in_valid_prob=0.6, out_ready_prob=0.5, seed=4)
    assert np.array_equal(res.check().outputs[c.integer.outputs[0]], want)


# -- a Brevitas residual net with separately quantized branches -----------------------------------
@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    pytest.importorskip("brevitas")
    return brevitas_residual_scales(tmp_path_factory.mktemp("res") / "residual_scales.onnx")


def test_residual_branches_with_different_scales_equal_qonnx(residual):
    """Two residual blocks whose branches have their own learned scales (1.3/8 and 2.1/16;
    0.77/15 and 1.13/8): each Add gets small multipliers (exact ones would need 23-25 bits
    each), and the integer model equals qonnx on every output value of 1,000 inputs."""
    c = compile_model(residual)
    adds = [n for n in c.integer.nodes if n.op == "Add"]
    assert len(adds) == 2
    for n in adds:
        assert max(n.attrs["a_mul"], n.attrs["b_mul"]) < 64, n.attrs
        assert c.integer.tensors[n.outputs[0]].dtype.bits <= 12
    x = np.random.default_rng(0).normal(0, 1, (1000, 3, 8, 8)).astype(np.float32)
    ours = c.run(x)[c.integer.outputs[0]]
    ref = qonnx_outputs(residual, x, 100)
    assert len(np.unique(ref.argmax(1))) > 1
    np.testing.assert_array_equal(ours, ref)


def test_residual_branches_with_different_scales_in_rtl(residual):
    """RTL == integer model on 100 frames, at full speed (cycles per frame within 5 % of the
    formula) and under random input and output stalls."""
    c = compile_model(residual)
    design = fold_design(c.integer, 5e3, 100.0, "xc7z020").design
    kinds = [s.kind for s in design.stages]
    assert kinds.count("Add") == 2 and kinds.count("Duplicate") >= 1
    q = c.hardware_input(np.random.default_rng(2).normal(0, 1, (100, 3, 8, 8)).astype(np.float32))
    want = run_integer(c.integer, q)[c.integer.outputs[0]]
    depths = size_fifos(design, q[:8])
    full = simulate(design, q, fifo_depths=depths).check()
    assert np.array_equal(full.outputs[c.integer.outputs[0]], want)
    cpf = design.cycles_per_frame()
    assert abs(full.cycles_per_frame - cpf) <= 0.05 * cpf, (full.cycles_per_frame, cpf)
    for p_in, p_out, seed in ((0.5, 1.0, 1), (1.0, 0.4, 2), (0.6, 0.6, 3)):
        res = simulate(design, q, fifo_depths=depths, in_valid_prob=p_in, out_ready_prob=p_out,
                       seed=seed).check()  # fmt: skip
        assert np.array_equal(res.outputs[c.integer.outputs[0]], want), (p_in, p_out)
