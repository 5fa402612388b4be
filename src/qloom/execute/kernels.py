"""Batched numpy kernels shared by the reference and the integer executors (NHWC layout).

Integer callers pass int64 arrays and get exact int64 results: matrix products run in float64
BLAS, which is exact while |values| < 2**53 (far beyond any few-bit accumulator).

Binary (+-1 x +-1) layers instead run on bits packed 64 to a uint64 word: popcount(xnor) over
a reduction of K is K - popcount(x ^ w) summed over K/64 words, 64x less data than BLAS reads.
"""

from __future__ import annotations

import ctypes
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from typing import TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from qloom.execute import native

T = TypeVar("T")
_PREPARED: dict[int, tuple[weakref.ref, dict]] = {}


def prepared(w: np.ndarray, what: object, make: Callable[[], object]):
    """`make()` once per weight (or threshold) array and purpose `what`: a graph runs batch
    after batch on the same constants, whose packing, casts and bounds otherwise cost
    milliseconds per layer and batch (CNV's 256-channel convs). The array is made read-only
    on first use, so that an in-place change raises instead of meeting stale packed words."""
    key = id(w)
    entry = _PREPARED.get(key)
    if entry is None or entry[0]() is not w:

        def forget(ref: weakref.ref, key: int = key) -> None:
            if _PREPARED.get(key, (None,))[0] is ref:
                del _PREPARED[key]

        w.flags.writeable = False
        entry = _PREPARED[key] = (weakref.ref(w, forget), {})
    if what not in entry[1]:
        entry[1][what] = make()
    return entry[1][what]


def abs_max(w: np.ndarray) -> int:
    """max |w| of a constant (cached: see `prepared`)."""
    return prepared(w, "abs_max", lambda: int(np.abs(w).max(initial=0)))


def exact_float(bound: int) -> type:
    """The float type whose BLAS products and sums are exact for integers up to `bound`."""
    return np.float32 if bound < 1 << 24 else np.float64


def exact_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """x @ w; int64 inputs give an exact int64 result, float32 gives float32.

    The integer product runs in row steps on the worker threads, BLAS on one thread each: a
    multi-threaded BLAS call costs ~10 ms on the loaded 2-core machine (TFC: 20 us/image)."""
    if np.issubdtype(x.dtype, np.integer) and np.issubdtype(w.dtype, np.integer):
        x_max = max(-int(x.min(initial=0)), int(x.max(initial=0)))
        ftype = exact_float(x.shape[-1] * x_max * abs_max(w))
        xf, wf = x.astype(ftype), prepared(w, ftype, lambda: w.astype(ftype))
        if xf.ndim != 2 or wf.ndim != 2:
            return np.rint(xf @ wf).astype(np.int64)
        out = np.empty((len(xf), wf.shape[1]), np.int64)

        def run(lo: int, hi: int) -> None:
            out[lo:hi] = np.rint(xf[lo:hi] @ wf)

        in_chunks(run, len(xf), step_rows(len(xf), wf.shape[1]))
        return out
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

    Integer x and w give an exact result in the narrowest signed type that holds the
    accumulator bound (int16 for a first layer on 8-bit pixels). They are cast to the exact
    float type before the im2col copy, and the integer path runs step_rows output pixels at a
    time on the worker threads: the windows are 9x the input, and one cache-sized im2col per
    step instead of one for the whole batch halves a CNV first layer's time."""
    kh, kw, cin_g, cout = w.shape
    integer = np.issubdtype(x.dtype, np.integer) and np.issubdtype(w.dtype, np.integer)
    if not integer:
        return _conv_float(pad_nhwc(x, pads, pad_value), w, stride, groups)
    x_max = max(-int(x.min(initial=0)), int(x.max(initial=0)), abs(int(pad_value)))
    bound = kh * kw * cin_g * x_max * abs_max(w)
    # the compiled direct conv where every partial sum fits 16-bit lanes (the result type is
    # int16 then anyway), else im2col + BLAS in the exact float type
    in16 = groups == 1 and bound < 1 << 15 and _native()
    ftype = np.int16 if in16 else exact_float(bound)
    xp = pad_nhwc(x.astype(ftype, order="C"), pads, pad_value)  # both read NHWC rows
    wf = prepared(w, ftype, lambda: np.ascontiguousarray(w, ftype))
    oh = (xp.shape[1] - kh) // stride[0] + 1
    ow = (xp.shape[2] - kw) // stride[1] + 1
    out = np.empty((x.shape[0], oh, ow, cout), signed_type(bound))

    def run(lo: int, hi: int) -> None:
        if in16:
            native.conv_i16(xp, lo, hi, wf, stride, out)
        else:
            out[lo:hi] = _conv_float(xp[lo:hi], wf, stride, groups)  # exact sums: no rounding

    in_chunks(run, len(xp), max(1, step_rows(len(xp) * oh * ow, cout) // (oh * ow)))
    return out


def _conv_float(xp: np.ndarray, w: np.ndarray, stride: tuple[int, int], groups: int) -> np.ndarray:
    """Conv of an already padded input by im2col and BLAS."""
    kh, kw, cin_g, cout = w.shape
    win = windows_nhwc(xp, (kh, kw), stride)  # N, OH, OW, KH, KW, Cin
    n, oh, ow = win.shape[:3]
    cout_g = cout // groups
    outs = []
    for g in range(groups):
        cols = win[..., g * cin_g : (g + 1) * cin_g].reshape(n * oh * ow, kh * kw * cin_g)
        outs.append(cols @ w[..., g * cout_g : (g + 1) * cout_g].reshape(kh * kw * cin_g, cout_g))
    return (outs[0] if groups == 1 else np.concatenate(outs, axis=-1)).reshape(n, oh, ow, cout)


def signed_type(bound: int) -> type:
    """The narrowest signed integer type holding -bound..bound (less memory traffic)."""
    return np.int16 if bound < 1 << 15 else np.int32 if bound < 1 << 31 else np.int64


def pool2d_nhwc(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    mode: str,
) -> np.ndarray:
    """mode: 'max' or 'sum'. Max pads with the lowest value, sum with zeros.

    Max is an elementwise maximum over the KH*KW strided offsets (exact in any order, keeps
    the input's memory layout); sum reduces the windows in the order the reference uses."""
    if mode == "max":
        lowest = np.iinfo(x.dtype).min if np.issubdtype(x.dtype, np.integer) else -np.inf
        xp = pad_nhwc(x, pads, lowest)
        (kh, kw), (sh, sw) = kernel, stride
        oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
        out = None
        for i in range(kh):
            for j in range(kw):
                v = xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
                out = v.copy(order="K") if out is None else np.maximum(out, v, out=out)
        return out
    xp = pad_nhwc(x, pads, 0)
    acc = np.int64 if np.issubdtype(x.dtype, np.integer) else x.dtype
    return windows_nhwc(xp, kernel, stride).sum(axis=(3, 4), dtype=acc)


# -- worker threads --------------------------------------------------------------------------
CHUNK_ELEMS = 1 << 18  # outputs per step: 2 MiB xor buffer, measured best of 2^16..2^19
MIN_STEP = 512  # rows: below, handing a step to a thread costs more than it saves


def step_rows(total: int, width: int) -> int:
    """Output rows (pixels) per step: about CHUNK_ELEMS outputs of `width` channels, and one
    step per thread where that leaves MIN_STEP rows each (the late layers of a conv net)."""
    return min(max(MIN_STEP, CHUNK_ELEMS // width), max(MIN_STEP, -(-total // threads())))


_LOCAL = threading.local()  # .serial: this thread runs a whole batch (map_batches)


def threads() -> int:
    """Worker threads: QLOOM_THREADS, else the usable cores (2 threads measured 1.5x faster
    than 1 on CNV's binary convs, 2-core machine, light load); 1 inside `map_batches`."""
    if getattr(_LOCAL, "serial", False):
        return 1
    if os.environ.get("QLOOM_THREADS"):
        return max(1, int(os.environ["QLOOM_THREADS"]))
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


@cache
def _openblas_local() -> tuple[Callable[[int], int], ...]:
    """openblas_set_num_threads_local of each OpenBLAS in this process (none for other BLAS):
    it sets the calling thread's BLAS thread count and returns the previous one."""
    try:
        with open("/proc/self/maps") as maps:
            libs = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return ()
    setters = []
    for path in libs:
        try:
            setters.append(ctypes.CDLL(path).openblas_set_num_threads_local)
        except (OSError, AttributeError):  # not a library, or an OpenBLAS before 0.3.27
            pass
    return tuple(setters)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS calls in this thread run on this thread alone. The steps share the cores out
    already; OpenBLAS's own threads, woken on every call, cost ~10 ms a call on the loaded
    2-core machine (measured: 3 ms instead of 0.12 ms per image for CNV's first layer)."""
    old = [f(1) for f in _openblas_local()]
    try:
        yield
    finally:
        for f, n in zip(_openblas_local(), old, strict=True):
            f(n)


def _worker_init() -> None:
    for f in _openblas_local():
        f(1)


@cache
def _pool(n: int, pid: int) -> ThreadPoolExecutor:
    """One pool per size and process (a forked child has the pool but not its threads)."""
    return ThreadPoolExecutor(n, thread_name_prefix="qloom-kernel", initializer=_worker_init)


def in_chunks(fn: Callable[[int, int], None], total: int, step: int) -> None:
    """fn(lo, hi) over [0, total) in steps of `step`, on the worker threads when there are
    several steps (numpy's ufuncs and BLAS release the GIL), else here; BLAS on one thread."""
    bounds = [(lo, min(lo + step, total)) for lo in range(0, total, step)]
    n = min(threads(), len(bounds))
    if n <= 1:
        with _one_blas_thread():
            for lo, hi in bounds:
                fn(lo, hi)
        return
    for _ in _pool(n, os.getpid()).map(lambda b: fn(*b), bounds):
        pass


def map_batches(fn: Callable[[int, int], T], total: int, step: int) -> list[T]:
    """[fn(lo, hi)] over [0, total) in batches of `step`, whole batches on the worker threads,
    each running its kernels on its own thread. Small batches keep a batch's tensors in cache
    and let the allocator reuse their memory; kernels split across threads instead each
    page-fault fresh large arrays, in parallel (measured on CNV: twice the CPU time of one
    thread, and no faster)."""
    bounds = [(lo, min(lo + step, total)) for lo in range(0, total, step)]
    if min(threads(), len(bounds)) <= 1:
        return [fn(lo, hi) for lo, hi in bounds]

    def whole(b: tuple[int, int]) -> T:
        _LOCAL.serial = True
        try:
            return fn(*b)
        finally:
            _LOCAL.serial = False

    return list(_pool(min(threads(), len(bounds)), os.getpid()).map(whole, bounds))


# -- bit-packed XNOR-popcount ----------------------------------------------------------------
def pack_signs(x: np.ndarray) -> np.ndarray:
    """(..., K) +-1 values -> (..., ceil(K / 64)) uint64 words, bit j of word i set where value
    i * 64 + j is +1: by the compiled kernel for int8 (one pass), else `pack_bits(x > 0)`."""
    if x.dtype == np.int8 and x.shape[-1] and _native():
        return native.pack_i8(np.ascontiguousarray(x))
    return pack_bits(x > 0)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """(..., K) booleans -> (..., ceil(K / 64)) uint64 words, bit j of word i = value
    i * 64 + j (little-endian bit order, as `pack_signs`). The padding bits are 0 for x and w
    alike, so their xor never counts as a mismatch: no correction is needed."""
    k = bits.shape[-1]
    # strided input: 4x slower than a copy
    packed = np.packbits(np.ascontiguousarray(bits), axis=-1, bitorder="little")
    if k % 64:
        padded = np.zeros(bits.shape[:-1] + (-(-k // 64) * 8,), np.uint8)
        padded[..., : packed.shape[-1]] = packed
        packed = padded
    return np.ascontiguousarray(packed).view(np.uint64)


# numpy 2.4 runs broadcast ufuncs through 8,192-element buffers, ~4x slower per element
# (measured on the 2-core EPYC) unless the inner loop is longer than ~2,700; under a
# 1,024-element buffer they run at full speed for any length.
XOR_BUFSIZE = 1024


def xnor_popcount(xt: np.ndarray, wt: np.ndarray, k: int, out: np.ndarray) -> None:
    """out (N, M) = matches of packed rows, k - popcount(x ^ w): xt (words, M), wt (words, N).

    Word-major operands make each word's step a contiguous (N, M) xor and popcount; three
    words' counts (at most 192) add up in uint8 before one subtract from `out`, which saves
    a tenth of the time. Channel-major `out` is what that writes contiguously (callers return
    its transpose, a view: copying it row-major would cost a third of the kernel)."""
    buf = np.empty(out.shape, np.uint64)
    cnt = np.empty(out.shape, np.uint8)
    acc = np.empty(out.shape, np.uint8)
    out[...] = k
    with np.errstate():  # restores the buffer size on exit
        np.setbufsize(XOR_BUFSIZE)
        for j in range(xt.shape[0]):
            np.bitwise_xor(wt[j, :, None], xt[j], out=buf)
            if j % 3 == 0:
                np.bitwise_count(buf, out=acc)
            else:
                np.add(acc, np.bitwise_count(buf, out=cnt), out=acc)
            if j % 3 == 2 or j == len(xt) - 1:
                np.subtract(out, acc, out=out)


# Below this many rows (batch x output pixels) the float formula is faster: packing the
# weights and ~4 ufunc calls per word cost more than BLAS on a few rows (measured on CNV's and
# TFC's layer shapes: float 1.5-2x faster at 1-32 rows, about even at 64-512, packed up to
# 2.5x faster from a few thousand).
PACKED_MIN_ROWS = 256


def is_bipolar(x: np.ndarray) -> bool:
    """All values +-1. Three reductions without temporaries: ~20x cheaper than testing each
    value against 1 and -1 (measured on CNV's activations)."""
    return np.count_nonzero(x) == x.size and (x.size == 0 or (x.min() >= -1 and x.max() <= 1))


def bipolar_constant(w: np.ndarray) -> bool:
    """`is_bipolar` of a constant (cached: see `prepared`)."""
    return prepared(w, "bipolar", lambda: is_bipolar(w))


def _native(k: int = 0) -> bool:
    """The compiled kernels serve this reduction length (int16 results) on this machine."""
    return k < 1 << 15 and native.lib() is not None


def xnor_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """popcount(xnor(x, w)) = (x @ w + K) / 2 for +-1 x (M, K) and w (K, N), exact."""
    k, n = w.shape
    wt = prepared(w, "packed", lambda: np.ascontiguousarray(pack_signs(w.T).T))
    if _native(k):
        res = np.empty((len(x), n), np.int16)

        def run_native(lo: int, hi: int) -> None:
            native.xnor_gemm(pack_signs(x[lo:hi]), wt, k, res[lo:hi])

        in_chunks(run_native, len(x), step_rows(len(x), n))
        return res
    out = np.empty((n, len(x)), signed_type(k))

    def run(lo: int, hi: int) -> None:
        xt = np.ascontiguousarray(pack_signs(x[lo:hi]).T)
        xnor_popcount(xt, wt, k, out[:, lo:hi])

    in_chunks(run, len(x), step_rows(len(x), n))
    return out.T


def xnor_conv2d_nhwc(x: np.ndarray, w: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """Unpadded conv of +-1 x (N, H, W, Cin) and w (KH, KW, Cin, Cout) as popcount(xnor):
    (conv + K) / 2, exact (N, OH, OW, Cout), a channel-major view.

    Packing and im2col run per chunk of images on packed words. Each pixel's channels are
    packed on their own (a window is then KH*KW whole words, zero bits padding each pixel)
    unless that padding would add words; then the windows are copied as bits and packed."""
    kh, kw, cin, cout = w.shape
    k = kh * kw * cin
    per_pixel = kh * kw * -(-cin // 64) <= -(-k // 64) * 5 // 4

    def pack() -> np.ndarray:
        if per_pixel:
            return np.ascontiguousarray(pack_signs(np.moveaxis(w, 3, 0)).reshape(cout, -1).T)
        return np.ascontiguousarray(pack_signs(w.reshape(k, cout).T).T)

    wt = prepared(w, ("packed", per_pixel), pack)
    n = len(x)
    oh, ow = (x.shape[1] - kh) // stride[0] + 1, (x.shape[2] - kw) // stride[1] + 1
    if _native(k):
        res = np.empty((n, oh, ow, cout), np.int16)

        def run_native(lo: int, hi: int) -> None:
            if per_pixel:  # the C loop reads each window from the packed pixels
                native.xnor_conv(
                    pack_signs(x[lo:hi]), 0, hi - lo, wt, (kh, kw), stride, k, res[lo:hi]
                )
            else:
                bits = windows_nhwc(x[lo:hi] > 0, (kh, kw), stride).reshape(-1, k)
                native.xnor_gemm(pack_bits(bits), wt, k, res[lo:hi].reshape(-1, cout))

        in_chunks(run_native, n, max(1, step_rows(n * oh * ow, cout) // (oh * ow)))
        return res
    out = np.empty((cout, n * oh * ow), signed_type(k))

    def run(lo: int, hi: int) -> None:
        if per_pixel:
            win = windows_nhwc(pack_signs(x[lo:hi]), (kh, kw), stride)  # N,OH,OW,KH,KW,words
        else:
            bits = windows_nhwc(x[lo:hi] > 0, (kh, kw), stride).reshape(hi - lo, oh, ow, k)
            win = pack_bits(bits)[:, :, :, None, None]
        xt = np.moveaxis(win, (3, 4, 5), (0, 1, 2)).reshape(-1, (hi - lo) * oh * ow)  # im2col
        xnor_popcount(xt, wt, k, out[:, lo * oh * ow : hi * oh * ow])

    in_chunks(run, n, max(1, step_rows(n * oh * ow, cout) // (oh * ow)))
    return out.T.reshape(n, oh, ow, cout)


def native_threshold(x: np.ndarray, thresholds: np.ndarray, bipolar: bool) -> np.ndarray | None:
    """count(T[c, j] <= x) per channel as int8 (2 * count - 1 where bipolar) by the compiled
    kernel, for row-major int16 x (the packed kernels' and convs' outputs) and integer
    thresholds (C, K) in int16 range, K < 64; None where it does not apply."""
    c, k = thresholds.shape

    def level_major() -> np.ndarray | None:
        fits = -(1 << 15) <= thresholds.min() and thresholds.max() < 1 << 15
        return np.ascontiguousarray(thresholds.T, np.int16) if fits else None

    if not (
        x.dtype == np.int16
        and x.flags.c_contiguous
        and x.shape[-1] == c
        and 0 < k < 64
        and np.issubdtype(thresholds.dtype, np.integer)
        and _native()
    ):
        return None
    t = prepared(thresholds, "int16 level-major", level_major)
    if t is None:
        return None
    flat = x.reshape(-1, c)
    out = np.empty(flat.shape, np.int8)

    def run(lo: int, hi: int) -> None:
        native.threshold_i16(flat[lo:hi], t, bipolar, out[lo:hi])

    in_chunks(run, len(flat), step_rows(len(flat), c))
    return out.reshape(x.shape)


def onnx_pads(attrs, kernel: tuple[int, int]) -> tuple[int, int, int, int]:
    """ONNX pads [top, left, bottom, right] (auto_pad NOTSET/VALID only)."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "VALID"):
        raise ValueError(f"auto_pad={auto}")
    p = tuple(attrs.get("pads", (0, 0, 0, 0)))
    return (p[0], p[1], p[2], p[3])
