"""The exact-arithmetic oracle (qloom.execute.exact) and the three-way comparison.

Why these tests: the oracle is the referee between qloom's integer graph and qonnx's float32
execution where they disagree, so it must (1) agree with both wherever float32 has no rounding
at a decision (power-of-two scales: the shared TFC models, the test corpus), (2) equal an
independent evaluation with Python Fractions, (3) get the mathematically right level where
float32 provably puts a value on the other side of a quantizer step, and (4) attribute every
disagreement on a deep w8a8 net with batch norm (counted, not hidden).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from model_corpus import CORPUS, _Builder, brevitas_models, brevitas_radio_1d, float_int8
from tfc_data import tfc_path

from qloom.cli import main
from qloom.execute.exact import compare_exact, comparison_table, run_exact
from qloom.flow import compile_model


def _consistent(rows) -> None:
    """Counts that must hold between the three pairs whatever the model."""
    for r in rows:
        assert r.exact_sides_qloom + r.exact_sides_qonnx <= r.qloom_qonnx
        assert abs(r.qloom_exact - r.qonnx_exact) <= r.qloom_qonnx <= r.qloom_exact + r.qonnx_exact
        assert r.local_qloom_qonnx <= r.qloom_qonnx and r.local_qloom_exact <= r.qloom_exact


def test_oracle_equals_qonnx_and_qloom_on_tfc_2w2a(mnist_test):
    """Power-of-two scales, 2-bit levels: no float32 rounding at any decision, so all three
    executors give the same level on every value (300 MNIST test images)."""
    path = tfc_path("TFC_2W2A")
    x = mnist_test[0][:300].astype(np.float32) / np.float32(255)
    cmp = compare_exact(path, x)
    assert len(cmp.rows) == 4  # the input quantizer and three hidden layers
    for r in cmp.rows:
        assert r.values > 0
        assert (r.qloom_qonnx, r.qloom_exact, r.qonnx_exact) == (0, 0, 0), r
    assert cmp.outputs_differ_qloom_exact == cmp.outputs_differ_qonnx_exact == 0


@pytest.mark.parametrize("model", CORPUS, ids=[m.name for m in CORPUS])
def test_oracle_agrees_on_the_corpus(model, tmp_path):
    """The test corpus (1,000 inputs each, including the float input into a signed 8-bit
    quantizer of scale 0.83 and batch norm): no value differs between any pair."""
    path = model.write(tmp_path / f"{model.name}.onnx")
    cmp = compare_exact(path, model.inputs(np.random.default_rng(0), 1000))
    for r in cmp.rows:
        assert (r.qloom_qonnx, r.qloom_exact, r.qonnx_exact) == (0, 0, 0), r


def _fraction_levels(graph, x: np.ndarray) -> dict[str, list]:
    """An independent evaluation of an MLP graph, one input at a time, in Python Fractions
    (round() of a Fraction rounds half to even). Quantizer levels by output tensor."""
    one = np.frompyfunc(lambda v: Fraction(float(v)), 1, 1)

    def frac(a) -> np.ndarray:
        a = np.asarray(a, np.float32)
        return np.asarray(one(a), dtype=object).reshape(a.shape)

    env = {k: frac(v) for k, v in graph.constants.items()}
    env[graph.inputs[0]] = frac(x)
    levels = {}
    for n in graph.nodes:
        a = [env[t] for t in n.inputs]
        if n.op == "Quant":
            s, z, bits = a[1].ravel()[0], a[2].ravel()[0], int(a[3].ravel()[0])
            signed, narrow = n.attrs.get("signed", 1), n.attrs.get("narrow", 0)
            lo = -(1 << (bits - 1)) + narrow if signed else 0
            hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - narrow
            lv = np.frompyfunc(lambda v: min(max(round(v / s + z), lo), hi), 1, 1)(a[0])  # noqa: B023
            levels[n.outputs[0]] = lv
            env[n.outputs[0]] = (lv - z) * s
        elif n.op == "MatMul":
            env[n.outputs[0]] = np.dot(a[0], a[1])
        elif n.op == "Gemm":
            env[n.outputs[0]] = np.dot(a[0], a[1]) + a[2]
        elif n.op == "BatchNormalization":
            g, b, m, v = a[1:]
            eps = np.float32(n.attrs.get("epsilon", 1e-5))
            p = frac(np.sqrt(np.asarray(v, np.float64).astype(np.float32) + eps))
            env[n.outputs[0]] = (a[0] - m) / p * g + b
        else:
            raise AssertionError(n.op)
    return levels


def test_oracle_equals_a_fraction_evaluation(tmp_path):
    """float-int8 (scale 0.83 input quantizer, MatMul, batch norm, 3-bit quantizer, Gemm)
    evaluated value by value with Python Fractions gives the oracle's levels."""
    g = compile_model(float_int8(tmp_path / "m.onnx")).imported
    x = np.random.default_rng(5).normal(0, 40, (40, 20)).astype(np.float32)
    got = run_exact(g, x).levels
    for i in range(len(x)):
        want = _fraction_levels(g, x[i : i + 1])
        assert len(got) == 2 and set(got) <= set(want)  # want also has the weight quantizers
        for t in got:
            assert np.array_equal(np.asarray(want[t], np.int64), got[t][i : i + 1]), (t, i)


def _tie_model(path: Path) -> Path:
    """INT8 input -> identity MatMul -> Mul 0.35 -> Quant (scale 0.1, 8 bits) -> MatMul.
    For an accumulator of 1, 0.35f / 0.1f is 3.4999998882... exactly but 3.5 in float32,
    which rounds half to even to 4: float32 puts it on the wrong side of the step."""
    b = _Builder(0)
    h = b.node("MatMul", ["x", b.const(np.eye(4))])
    h = b.node("Mul", [h, b.const(0.35)])
    h = b.quant(h, 0.1, 8, signed=True)
    y = b.node("MatMul", [h, b.const(np.ones((4, 2)))])
    return b.save(path, (1, 4), y, (1, 2), {"x": "INT8"})


def _all_int8() -> np.ndarray:
    a = np.arange(-128, 128)
    return np.stack([np.roll(a, k) for k in range(4)], axis=1).astype(np.float32)


def test_float32_wrong_side_of_a_step_is_counted(tmp_path):
    path = _tie_model(tmp_path / "tie.onnx")
    x = _all_int8()
    s, c = Fraction(float(np.float32(0.1))), Fraction(float(np.float32(0.35)))
    want = np.array([[min(max(round(int(v) * c / s), -128), 127) for v in row] for row in x])
    g = compile_model(path).imported
    (name,) = run_exact(g, x).levels
    lv = run_exact(g, x).levels[name]
    assert np.array_equal(lv, want)  # the mathematically right level for every accumulator
    assert lv[x == 1].tolist() == [3] * 4  # 3.4999998882 -> 3
    f32 = np.round(np.float32(0.35) / np.float32(0.1))
    assert f32 == 4  # qonnx and qloom's float32 chain: 3.5 -> 4
    cmp = compare_exact(path, x)
    (row,) = cmp.rows
    assert row.qloom_qonnx == 0  # qloom reproduces qonnx, as it promises
    f32_levels = np.clip(np.round(x * np.float32(0.35) / np.float32(0.1)), -128, 127)
    wrong = int(np.sum(f32_levels != want))
    assert row.qloom_exact == row.qonnx_exact == wrong >= 4  # each counted
    _consistent(cmp.rows)


def test_cli_prints_the_table(tmp_path, capsys):
    path = _tie_model(tmp_path / "tie.onnx")
    data = tmp_path / "x.npz"
    np.savez(data, inputs=_all_int8())
    assert main(["run", str(path), "--data", str(data), "--compare-exact"]) == 0
    out = capsys.readouterr().out
    assert "ql!=qo" in out and "exact arithmetic" in out and "local ql!=ex" in out
    head, row = comparison_table(compare_exact(path, _all_int8()))
    assert row[0] in out and f" {row[5]} " in out  # the quantizer and its ql!=ex count


@pytest.fixture(scope="module")
def brevitas_dir(tmp_path_factory):
    pytest.importorskip("brevitas")
    return tmp_path_factory.mktemp("brevitas")


def test_host_input_quantizer_rounding_is_counted(brevitas_dir):
    """Brevitas' 16-bit input quantizer (float scale 1609723 / 2^32): qloom's host runs it in
    float32 as qonnx does, so both land on a .5 tie for a few inputs that are exactly just
    off it; the oracle decides them by the exact quotient."""
    model = next(m for m in brevitas_models() if m.name == "brevitas-jet-softmax")
    path = model.write(brevitas_dir / "jet.onnx")
    x = model.inputs(np.random.default_rng(0), 1000)
    cmp = compare_exact(path, x)
    first = cmp.rows[0]
    assert first.qloom_qonnx == 0 and first.qloom_exact == first.qonnx_exact > 0
    _consistent(cmp.rows)


def test_deep_w8a8_batchnorm_net_is_attributed(brevitas_dir):
    """A small RadioML-style net (3 conv1d + BN + 8-bit ReLU blocks, float scales, 1,000
    signals): qloom, qonnx and the oracle differ on a few values per million at each layer's
    own rounding, every difference counted and attributed."""
    path = brevitas_radio_1d(
        brevitas_dir / "radio.onnx", blocks=3, length=64, width=16, wbits=8, abits=8,
        hidden=(16,), classes=8,
    )  # fmt: skip
    c = compile_model(path)
    x = c.random_inputs(1000, seed=0)
    cmp = compare_exact(path, x, compiled=c)
    _consistent(cmp.rows)
    _check_first_conv_with_fractions(c, x)
    assert len(cmp.rows) == 5
    values = sum(r.values for r in cmp.rows)
    local = sum(r.local_qloom_exact + r.local_qonnx_exact for r in cmp.rows)
    assert local <= 1e-5 * values  # rounding cases only
    assert cmp.rows[0].qloom_qonnx == 0  # the input quantizer runs qonnx's own function


def _check_first_conv_with_fractions(c, x: np.ndarray) -> None:
    """Recompute the first conv block's levels (Conv pad 1, BN, ReLU, 8-bit Quant) with
    Python Fractions where qloom's integer graph and the oracle disagree, and on a sample."""
    from qloom.execute import execute
    from qloom.flow import integer_input

    g, k = c.imported, c.imported.constants
    quant = next(n for n in g.nodes if n.op == "Quant")  # the input quantizer
    bn = next(n for n in g.nodes if n.op == "BatchNormalization")
    wquant = next(n for n in g.nodes if n.op == "Quant" and n.inputs[0] in k)
    act = next(n for n in g.nodes if n.op == "Quant" and n.inputs[0] not in k and n is not quant)
    levels = run_exact(g, x).levels
    q0, q1 = levels[quant.outputs[0]], levels[act.outputs[0]]
    env = execute(c.integer, integer_input(c.integer, c.hardware_input(x)), keep_all=True)
    ours = np.transpose(env[act.outputs[0]], (0, 3, 1, 2))[..., 0]
    fr = lambda v: Fraction(float(np.float32(v)))  # noqa: E731
    s_in, s_out = fr(k[quant.inputs[1]].ravel()[0]), fr(k[act.inputs[1]].ravel()[0])
    w, sw = k[wquant.inputs[0]], np.broadcast_to(k[wquant.inputs[1]], k[wquant.inputs[0]].shape)
    wl = np.vectorize(lambda a, b: max(min(round(fr(a) / fr(b)), 127), -127))(w, sw)
    gamma, beta, mean, var = (k[t].astype(np.float32) for t in bn.inputs[1:5])
    p = np.sqrt(var + np.float32(bn.attrs.get("epsilon", 1e-5))).astype(np.float32)
    rng = np.random.default_rng(0)
    sample = [tuple(rng.integers(0, d) for d in q1.shape) for _ in range(20)]
    differ = [tuple(i) for i in np.argwhere(ours != q1)[:10]]
    for n, o, t in differ + sample:
        acc = sum(
            int(q0[n, ci, t + j - 1]) * s_in * int(wl[o, ci, j]) * fr(sw[o, ci, j])
            for ci in range(q0.shape[1])
            for j in range(3)
            if 0 <= t + j - 1 < q0.shape[2]
        )
        y = max((acc - fr(mean[o])) / fr(p[o]) * fr(gamma[o]) + fr(beta[o]), 0)
        assert q1[n, o, t] == min(round(y / s_out), 255), (n, o, t)
