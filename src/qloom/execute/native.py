"""The compiled kernels (xnor_native.c: XNOR-popcount, thresholds, 16-bit integer conv), built
on first use and cached.

numpy needs three passes over memory per packed word (xor, popcount, add); one C loop does
all three in registers and reads each conv window straight from the packed activations (no
im2col copy). The library is built with the system C compiler for this CPU (-march=native,
so the word loop uses its widest popcount) and cached under ``$QLOOM_CACHE/native`` by the
source, the compiler and the CPU's flags. Without a compiler, or with QLOOM_NATIVE=0, `lib()`
is None and the executor keeps its numpy kernels: the same integers, only slower.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import numpy as np

from qloom.cache import default_cache_dir

SOURCE = Path(__file__).with_name("xnor_native.c")
_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor()


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


#: 512-bit vectors where the CPU has them: the register-blocked kernels keep their accumulators
#: in 16 registers of 8 words (measured 1.3-1.5x faster than the compiler's default 256 bits)
CFLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-shared", "-fPIC", "-std=c11"]


def _build(cc: str, out: Path) -> None:
    """Compile into a temporary name and rename: concurrent builders never see half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        done = subprocess.run([cc, *CFLAGS, "-o", tmp, str(SOURCE)], capture_output=True, text=True)
        if done.returncode:
            raise OSError(f"{cc} failed on {SOURCE.name}: {done.stderr.strip()[-2000:]}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@cache
def lib() -> ctypes.CDLL | None:
    """The loaded kernels, or None where they cannot be built (numpy fallback)."""
    if os.environ.get("QLOOM_NATIVE", "1") == "0":
        return None
    cc = _compiler()
    if cc is None:
        return None
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
        key = hashlib.sha256(
            SOURCE.read_bytes() + version.encode() + _cpu_flags().encode() + str(CFLAGS).encode()
        ).hexdigest()[:24]
        path = default_cache_dir("native") / f"xnor-{key}.so"
        if not path.is_file():
            _build(cc, path)
        so = ctypes.CDLL(str(path))  # ctypes releases the GIL: worker threads run in parallel
    except OSError as e:  # a compiler that cannot build it: say so once, keep numpy
        print(f"qloom: compiled XNOR kernels unavailable, using numpy ({e})", file=sys.stderr)
        return None
    so.xnor_gemm.argtypes = [_PTR, _PTR, _I64, _I64, _I64, _I64, _PTR]
    so.xnor_conv.argtypes = [_PTR, _I64, _I64, _I64, _I64, _I64, _PTR, _I64, _I64, _I64]
    so.xnor_conv.argtypes += [_I64, _I64, _I64, _PTR]
    so.threshold_i16.argtypes = [_PTR, _I64, _I64, _PTR, _I64, _I64, _PTR]
    so.conv_i16.argtypes = [_PTR, _I64, _I64, _I64, _I64, _I64, _PTR, *[_I64] * 5, _PTR]
    so.pack_i8.argtypes = [_PTR, _I64, _I64, _PTR]
    for f in (so.xnor_gemm, so.xnor_conv, so.threshold_i16, so.conv_i16, so.pack_i8):
        f.restype = None
    return so


def _ptr(a: np.ndarray) -> int:
    assert a.flags.c_contiguous
    return a.ctypes.data


def xnor_gemm(x: np.ndarray, wt: np.ndarray, k: int, out: np.ndarray) -> None:
    """out (rows, n) int16 = k - popcount(x ^ w): x (rows, words), wt (words, n) uint64."""
    lib().xnor_gemm(_ptr(x), _ptr(wt), len(x), wt.shape[1], x.shape[1], k, _ptr(out))


def xnor_conv(
    x: np.ndarray, lo: int, hi: int, wt: np.ndarray, kernel, stride, k: int, out: np.ndarray
) -> None:
    """Images [lo, hi) of packed x (N, H, W, words per pixel) against wt (KH*KW*words, cout)
    into out (N, OH, OW, cout) int16."""
    n, h, w, wpp = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    args = (_ptr(x), lo, hi, h, w, wpp, _ptr(wt), wt.shape[1], kh, kw, sh, sw, k, _ptr(out))
    lib().xnor_conv(*args)


def pack_i8(x: np.ndarray) -> np.ndarray:
    """(..., K) int8 -> (..., ceil(K / 64)) uint64: bit j of word i set where x[i * 64 + j] > 0."""
    k = x.shape[-1]
    out = np.empty(x.shape[:-1] + (-(-k // 64),), np.uint64)
    lib().pack_i8(_ptr(x), x.size // k if k else 0, k, _ptr(out))
    return out


def threshold_i16(x: np.ndarray, t: np.ndarray, bipolar: bool, out: np.ndarray) -> None:
    """out (rows, c) int8 = count of t[j, c] <= x (2 * count - 1 where bipolar): x (rows, c)
    int16, t (k, c) int16 level-major."""
    rows, c = x.shape
    lib().threshold_i16(_ptr(x), rows, c, _ptr(t), len(t), int(bipolar), _ptr(out))


def conv_i16(x: np.ndarray, lo: int, hi: int, w: np.ndarray, stride, out: np.ndarray) -> None:
    """Images [lo, hi) of padded int16 x (N, H, W, cin) conv w (KH, KW, cin, cout) int16 into
    out (N, OH, OW, cout) int16; every partial sum must fit int16 (the caller checks)."""
    n, h, wd, cin = x.shape
    kh, kw, _, cout = w.shape
    (sh, sw) = stride
    args = (_ptr(x), lo, hi, h, wd, cin, _ptr(w), cout, kh, kw, sh, sw, _ptr(out))
    lib().conv_i16(*args)
