"""The bit-packed XNOR-popcount kernels (and the integer kernels reworked with them) give exactly
what straightforward int64 numpy gives: popcount(xnor(x, w)) = (x @ w + K) / 2 for +-1 x, w, on
reduction lengths around word boundaries, batch 1 and larger, convs with stride, one thread or
several, and the integer graph's ops whether they take the packed or the float path; each test
runs on the compiled kernels (qloom.execute.native) and on the numpy ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from qloom.datatype import DataType
from qloom.execute import kernels, native
from qloom.execute.integer import INTEGER_OPS, multithreshold
from qloom.ir import Node

RNG = np.random.default_rng(15)
REDUCTIONS = [1, 7, 63, 64, 65, 127, 128, 129, 200, 576, 784]


def bipolar(shape, dtype=np.int8) -> np.ndarray:
    return RNG.choice(np.array([-1, 1], dtype), shape)


def ref_xnor_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (x.astype(np.int64) @ w.astype(np.int64) + w.shape[0]) // 2


def ref_conv(x: np.ndarray, w: np.ndarray, stride, pads=(0, 0, 0, 0), pad_value=0) -> np.ndarray:
    """int64 NHWC conv, one einsum over the sliding windows."""
    t, left, b, r = pads
    x = np.pad(x.astype(np.int64), ((0, 0), (t, b), (left, r), (0, 0)), constant_values=pad_value)
    win = sliding_window_view(x, w.shape[:2], axis=(1, 2))[:, :: stride[0], :: stride[1]]
    return np.einsum("nhwcij,ijco->nhwo", win, w.astype(np.int64))


def ref_xnor_conv(x: np.ndarray, w: np.ndarray, stride) -> np.ndarray:
    return (ref_conv(x, w, stride) + w.shape[0] * w.shape[1] * w.shape[2]) // 2


@pytest.fixture(autouse=True, params=["native", "numpy"])
def kernel_path(request, monkeypatch):
    """Every test on both implementations of the packed kernels."""
    if request.param == "numpy":
        monkeypatch.setattr(kernels, "_native", lambda k=0: False)
    else:
        assert native.lib() is not None, "the compiled kernels did not build"
    return request.param


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def small_steps(request, monkeypatch):
    """Steps of a few rows, so that a small test runs many chunks on one thread or two."""
    monkeypatch.setenv("QLOOM_THREADS", str(request.param))
    monkeypatch.setattr(kernels, "MIN_STEP", 3)
    monkeypatch.setattr(kernels, "CHUNK_ELEMS", 64)


# -- packed kernels --------------------------------------------------------------------------
@pytest.mark.parametrize("k", REDUCTIONS)
def test_pack_signs_sets_the_bit_of_each_plus_one(k):
    """Bit j of word i is value i * 64 + j being +1, padding bits 0: the same words from int8
    (the compiled kernel where it serves), from int64 and from a strided view."""
    x = bipolar((3, 5, k))
    words = kernels.pack_signs(x)
    assert words.shape == (3, 5, -(-k // 64)) and words.dtype == np.uint64
    value = np.arange(words.shape[-1] * 64)
    bits = (words[..., value // 64] >> (value % 64).astype(np.uint64)) & np.uint64(1)
    assert np.array_equal(bits[..., :k], x > 0) and not bits[..., k:].any()
    assert np.array_equal(kernels.pack_signs(x.astype(np.int64)), words)
    assert np.array_equal(kernels.pack_signs(np.swapaxes(np.swapaxes(x, 0, 1).copy(), 0, 1)), words)


@pytest.mark.parametrize("k", REDUCTIONS)
@pytest.mark.parametrize("m", [1, 5, 300])
def test_xnor_matmul_equals_reference(k, m):
    x, w = bipolar((m, k)), bipolar((k, 37), np.int64)
    got = kernels.xnor_matmul(x, w)
    assert got.shape == (m, 37)
    assert np.array_equal(got, ref_xnor_matmul(x, w))


@pytest.mark.parametrize("k", [1, 63, 64, 65, 200])
def test_xnor_matmul_in_chunks_on_threads(k, small_steps):
    x, w = bipolar((41, k)), bipolar((k, 9), np.int64)
    assert np.array_equal(kernels.xnor_matmul(x, w), ref_xnor_matmul(x, w))


def test_all_matching_and_all_mismatching_rows():
    """The extremes K and 0, where a wrong padding bit or an overflowing uint8 sum would show."""
    k = 64 * 7 + 5  # 8 words: two uint8 groups of 3 and one of 2
    w = bipolar((k, 4), np.int64)
    x = np.concatenate([w.T, -w.T]).astype(np.int8)
    got = kernels.xnor_matmul(x, w)
    assert got[np.arange(4), np.arange(4)].tolist() == [k] * 4
    assert got[4 + np.arange(4), np.arange(4)].tolist() == [0] * 4


@pytest.mark.parametrize("cin", [1, 3, 63, 64, 65, 128])
@pytest.mark.parametrize(
    "kernel,stride", [((3, 3), (1, 1)), ((1, 1), (1, 1)), ((2, 3), (2, 1)), ((3, 3), (2, 2))]
)
@pytest.mark.parametrize("batch", [1, 4])
def test_xnor_conv_equals_reference(cin, kernel, stride, batch):
    x, w = bipolar((batch, 9, 7, cin)), bipolar(kernel + (cin, 11), np.int64)
    got = kernels.xnor_conv2d_nhwc(x, w, stride)
    assert np.array_equal(got, ref_xnor_conv(x, w, stride))


@pytest.mark.parametrize("cin", [3, 64, 130])
def test_xnor_conv_in_chunks_on_threads(cin, small_steps):
    x, w = bipolar((6, 8, 8, cin)), bipolar((3, 3, cin, 5), np.int64)
    assert np.array_equal(kernels.xnor_conv2d_nhwc(x, w, (1, 1)), ref_xnor_conv(x, w, (1, 1)))


def test_xnor_conv_reads_a_channel_major_input(kernel_path):
    """numpy's packed kernel returns a transposed view; the next layer reads it as it is."""
    x, w = bipolar((3, 10, 10, 64)), bipolar((3, 3, 64, 70), np.int64)
    h = kernels.xnor_conv2d_nhwc(x, w, (1, 1))
    assert h.flags.c_contiguous == (kernel_path == "native")
    y = np.where(h > 300, 1, -1).astype(np.int8)
    y = np.ascontiguousarray(y.reshape(-1, 70).T).T.reshape(y.shape)  # channel-major again
    w2 = bipolar((3, 3, 70, 8), np.int64)
    assert np.array_equal(kernels.xnor_conv2d_nhwc(y, w2, (1, 1)), ref_xnor_conv(y, w2, (1, 1)))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    m=st.integers(1, 70),
    k=st.integers(1, 300),
    n=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_xnor_matmul_random_shapes(m, k, n, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.choice(np.int8([-1, 1]), (m, k)), rng.choice(np.int64([-1, 1]), (k, n))
    assert np.array_equal(kernels.xnor_matmul(x, w), ref_xnor_matmul(x, w))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    batch=st.integers(1, 3),
    hw=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    cin=st.integers(1, 140),
    cout=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
)
def test_xnor_conv_random_shapes(batch, hw, kernel, stride, cin, cout, seed):
    rng = np.random.default_rng(seed)
    h, w_ = hw[0] + kernel[0] - 1, hw[1] + kernel[1] - 1  # at least one output pixel
    x = rng.choice(np.int8([-1, 1]), (batch, h, w_, cin))
    w = rng.choice(np.int64([-1, 1]), kernel + (cin, cout))
    assert np.array_equal(kernels.xnor_conv2d_nhwc(x, w, stride), ref_xnor_conv(x, w, stride))


# -- the integer graph's ops -----------------------------------------------------------------
def xnor_node(op: str, w: np.ndarray, **attrs) -> Node:
    return Node(op, "n", ("x",), ("y",), {"weights": w, **attrs})


@pytest.mark.parametrize("batch", [1, kernels.PACKED_MIN_ROWS, 700])  # float, packed, packed
@pytest.mark.parametrize("k", [65, 784])
def test_xnor_matmul_op(batch, k):
    x, w = bipolar((batch, k), np.int16), bipolar((k, 64), np.int64)
    (got,) = INTEGER_OPS["XnorMatMul"](xnor_node("XnorMatMul", w), [x])
    assert np.array_equal(got, ref_xnor_matmul(x, w))


@pytest.mark.parametrize("batch", [1, 8])  # 49 rows: float path; 392 rows: packed
@pytest.mark.parametrize("stride", [(1, 1), (2, 1)])
def test_xnor_conv_op(batch, stride):
    x, w = bipolar((batch, 9, 9, 64), np.int16), bipolar((3, 3, 64, 16), np.int64)
    node = xnor_node("XnorConv", w, stride=stride, pads=(0, 0, 0, 0), groups=1)
    (got,) = INTEGER_OPS["XnorConv"](node, [x])
    assert np.array_equal(got, ref_xnor_conv(x, w, stride))


def test_xnor_ops_outside_the_packed_domain_keep_the_formula():
    """Zero padding and non-+-1 inputs are not XNOR arithmetic: the float formula stays."""
    w = bipolar((3, 3, 8, 4), np.int64)
    x = bipolar((40, 6, 6, 8), np.int16)
    padded = xnor_node("XnorConv", w, stride=(1, 1), pads=(1, 1, 1, 1), groups=1)
    (got,) = INTEGER_OPS["XnorConv"](padded, [x])
    assert np.array_equal(got, (ref_conv(x, w, (1, 1), (1, 1, 1, 1)) + 72) // 2)
    x[0, 0, 0, 0] = 0
    node = xnor_node("XnorConv", w, stride=(1, 1), pads=(0, 0, 0, 0), groups=1)
    (got,) = INTEGER_OPS["XnorConv"](node, [x])
    assert np.array_equal(got, (ref_conv(x, w, (1, 1)) + 72) // 2)
    xm, wm = bipolar((600, 100), np.int16), bipolar((100, 5), np.int64)
    xm[3, 3] = 3
    (got,) = INTEGER_OPS["XnorMatMul"](xnor_node("XnorMatMul", wm), [xm])
    assert np.array_equal(got, (xm.astype(np.int64) @ wm + 100) // 2)


def test_exact_matmul_in_chunks_on_threads(small_steps):
    x, w = RNG.integers(-200, 200, (50, 30)), RNG.integers(-9, 9, (30, 7))
    got = kernels.exact_matmul(x, w)
    assert got.dtype == np.int64 and np.array_equal(got, x @ w)
    assert np.array_equal(kernels.exact_matmul(x[0], w), x[0] @ w)  # a vector stays one


@pytest.mark.parametrize("pads,pad_value,groups", [((0, 0, 0, 0), 0, 1), ((1, 2, 0, 1), -3, 1)])
def test_integer_conv_equals_reference(pads, pad_value, groups, small_steps):
    x = RNG.integers(-128, 128, (5, 7, 6, 4)).astype(np.int16)
    w = RNG.integers(-8, 8, (3, 2, 4 // groups, 6))
    got = kernels.conv2d_nhwc(x, w, (2, 1), pads, groups, pad_value)
    assert got.dtype == np.int16  # 24 * 128 * 8 fits
    assert np.array_equal(got, ref_conv(x, w, (2, 1), pads, pad_value))


def test_integer_grouped_conv_equals_reference():
    x = RNG.integers(0, 4, (3, 5, 5, 6))
    w = RNG.integers(-1, 2, (3, 3, 2, 9))
    got = kernels.conv2d_nhwc(x, w, (1, 1), (1, 1, 1, 1), groups=3)
    want = np.concatenate(
        [ref_conv(x[..., 2 * g : 2 * g + 2], w[..., 3 * g : 3 * g + 3], (1, 1), (1, 1, 1, 1))
         for g in range(3)],
        axis=-1,
    )  # fmt: skip
    assert np.array_equal(got, want)


@pytest.mark.parametrize(
    "kernel,stride,pads", [((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (2, 1), (1, 0, 1, 1))]
)
def test_max_pool_equals_window_max_in_any_layout(kernel, stride, pads):
    x = RNG.integers(-100, 100, (2, 7, 8, 5)).astype(np.int8)
    t, left, b, r = pads
    xp = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=-128)
    win = sliding_window_view(xp, kernel, axis=(1, 2))[:, :: stride[0], :: stride[1]]
    want = win.max(axis=(4, 5))
    channel_major = np.ascontiguousarray(np.moveaxis(x, 3, 0)).transpose(1, 2, 3, 0)
    for v in (x, channel_major):
        assert np.array_equal(kernels.pool2d_nhwc(v, kernel, stride, pads, "max"), want)


@pytest.mark.parametrize("bipolar_out", [True, False])
def test_multithreshold_any_layout_and_threshold_range(bipolar_out):
    """Channel-major int16 input; thresholds inside int16 (compared as int16) and outside."""
    x = RNG.integers(-500, 500, (3, 4, 4, 6)).astype(np.int16)
    levels = 1 if bipolar_out else 3
    thresholds = np.sort(RNG.integers(-400, 400, (6, levels)), axis=1)
    thresholds[5, -1] = 1 << 20
    thresholds[4, 0] = -(1 << 20)
    out_dtype = DataType("BIPOLAR") if bipolar_out else DataType("INT4")
    attrs = {"thresholds": thresholds, "out_dtype": out_dtype, "out_base": -2}
    count = (x[..., None] >= thresholds).sum(-1)
    want = 2 * count - 1 if bipolar_out else count - 2
    channel_major = np.ascontiguousarray(np.moveaxis(x, 3, 0)).transpose(1, 2, 3, 0)
    for v in (x, channel_major):
        assert np.array_equal(multithreshold(v, attrs), want)


@pytest.mark.parametrize("levels", [1, 3, 15, 63])
@pytest.mark.parametrize("bipolar_out", [True, False])
def test_multithreshold_on_row_major_int16(levels, bipolar_out, small_steps):
    """The layout the compiled threshold kernel takes: values on, below and above each
    threshold, thresholds at the ends of the int16 range."""
    thresholds = np.sort(RNG.integers(-300, 300, (5, levels)), axis=1)
    thresholds[0, 0], thresholds[1, -1] = -(1 << 15), (1 << 15) - 1
    x = RNG.integers(-400, 400, (4, 3, 7, 5)).astype(np.int16)
    x[0, 0, :, :] = thresholds[:, 0] + np.arange(-3, 4)[:, None]  # around the first level
    x[1, 0, 0] = (1 << 15) - 1
    out_dtype = DataType("BIPOLAR") if bipolar_out else DataType("INT8")
    attrs = {"thresholds": thresholds, "out_dtype": out_dtype, "out_base": -5}
    count = (x[..., None].astype(np.int64) >= thresholds).sum(-1)
    want = 2 * count - 1 if bipolar_out else count - 5
    assert np.array_equal(multithreshold(x, attrs), want)


# -- building the compiled kernels -----------------------------------------------------------
def test_without_a_working_compiler_the_numpy_kernels_serve(monkeypatch, tmp_path, capsys):
    """A compiler that fails is reported once on stderr, and the executor stays exact."""
    monkeypatch.setenv("QLOOM_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    native.lib.cache_clear()
    try:
        assert native.lib() is None
        assert "compiled XNOR kernels unavailable" in capsys.readouterr().err
        x, w = bipolar((300, 100)), bipolar((100, 5), np.int64)
        assert np.array_equal(kernels.xnor_matmul(x, w), ref_xnor_matmul(x, w))
        monkeypatch.setenv("CC", "")
        monkeypatch.setenv("QLOOM_NATIVE", "0")
        native.lib.cache_clear()
        assert native.lib() is None and capsys.readouterr().err == ""
    finally:
        native.lib.cache_clear()
    assert not list(tmp_path.rglob("*.so"))  # nothing half-built left in the cache


@pytest.mark.parametrize("stride,pads", [((1, 1), (0, 0, 0, 0)), ((2, 1), (1, 0, 2, 1))])
def test_integer_conv_at_the_int16_limit(stride, pads, small_steps):
    """Sums up to the 16-bit limit stay exact (the compiled conv adds in int16 lanes); one step
    over it takes the float path and an int32 result."""
    cin = 14  # 3 x 3 x 14 x 255 x 1 = 32,130 < 2**15
    x = np.full((3, 6, 5, cin), 255, np.int16)
    x[1] = -255
    x[2] = RNG.integers(-255, 256, x[2].shape)
    w = RNG.choice(np.int64([-1, 1]), (3, 3, cin, 33))
    w[..., 0] = 1
    got = kernels.conv2d_nhwc(x, w, stride, pads, 1, 0)
    assert got.dtype == np.int16 and np.array_equal(got, ref_conv(x, w, stride, pads))
    assert got[0].max() == 32130 or any(pads)
    over = np.concatenate([x, x[..., :1]], axis=-1)  # cin 15: 34,425
    w2 = RNG.choice(np.int64([-1, 1]), (3, 3, cin + 1, 5))
    got = kernels.conv2d_nhwc(over, w2, stride, pads, 1, 0)
    assert got.dtype == np.int32 and np.array_equal(got, ref_conv(over, w2, stride, pads))


def test_prepared_constants_are_made_once_and_frozen():
    """A weight's packing is made once per purpose; the array becomes read-only, so an in-place
    change raises instead of meeting the stale packed words."""
    w = bipolar((130, 7), np.int64)
    calls = []
    first = kernels.prepared(w, "test", lambda: calls.append(1) or w.sum())
    assert kernels.prepared(w, "test", lambda: calls.append(1) or -1) == first and calls == [1]
    assert not w.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0] = 1
    x = bipolar((300, 130))
    assert np.array_equal(kernels.xnor_matmul(x, w), ref_xnor_matmul(x, w))
    assert np.array_equal(kernels.xnor_matmul(x, w), ref_xnor_matmul(x, w))  # cached words


@pytest.mark.parametrize("n_threads", [1, 2])
def test_map_batches_keeps_order_and_runs_kernels_serially_inside(monkeypatch, n_threads):
    monkeypatch.setenv("QLOOM_THREADS", str(n_threads))
    seen = []

    def fn(lo, hi):
        seen.append(kernels.threads())
        return list(range(lo, hi))

    parts = kernels.map_batches(fn, 23, 5)
    assert [v for p in parts for v in p] == list(range(23))
    assert set(seen) == {1}
    assert kernels.threads() == n_threads
