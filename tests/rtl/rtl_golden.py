"""Numpy golden models of the RTL library modules, and their stream/memory encodings (tests only).

Values on streams are raw bit patterns (unsigned ints); `decode` turns them into integers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qloom.dataflow.stage import pack_words
from qloom.sim import pack


def decode(raw, bits: int, signed: bool) -> np.ndarray:
    """Raw `bits`-bit patterns -> integers (two's complement when `signed`)."""
    a = np.asarray(raw, dtype=np.int64)
    if signed:
        a = np.where(a >= (1 << (bits - 1)), a - (1 << bits), a)
    return a


def rand_raw(rng: np.random.Generator, shape, bits: int) -> np.ndarray:
    return rng.integers(0, 1 << bits, size=shape, dtype=np.int64)


def beats(values, per_beat: int, bits: int) -> list[int]:
    """Values in flat stream order -> TDATA words of `per_beat` elements of `bits` bits."""
    return pack_words(np.asarray(values).reshape(-1, per_beat), bits)


def write_hex(path: Path, words: list[int], width: int) -> Path:
    ndig = (width + 3) // 4
    path.write_text("".join(f"{w:0{ndig}x}\n" for w in words))
    return path


# ---------------------------------------------------------------------------------- thresholds


def threshold_words(T: np.ndarray, pe: int, tbits: int) -> list[int]:
    """T[c][k] (ints) -> memory words: word f, lane (p, k) = T[f*pe+p][k]."""
    ch, nt = T.shape
    return [
        pack([int(T[f * pe + p, k]) for p in range(pe) for k in range(nt)], tbits)
        for f in range(ch // pe)
    ]


def multithreshold(acc: np.ndarray, T: np.ndarray, out_base: int, obits: int) -> np.ndarray:
    """acc[..., c] ints, T[c][k] -> raw OBITS patterns of out_base + #(acc >= T)."""
    cnt = (acc[..., None] >= T).sum(axis=-1)
    return (out_base + cnt) & ((1 << obits) - 1)


def random_thresholds(rng, ch: int, nt: int, lo: int, hi: int, tbits: int) -> np.ndarray:
    lo = max(lo, -(1 << (tbits - 1)))
    hi = min(hi, (1 << (tbits - 1)) - 1)
    return np.sort(rng.integers(lo, hi + 1, size=(ch, nt)), axis=1)


# ---------------------------------------------------------------------------------- MVAU


def mvau_weight_words(W_raw: np.ndarray, pe: int, simd: int, wbits: int) -> list[int]:
    """W_raw[n][i] raw weight patterns -> memory words: word nf*SF+sf, lane (p, s)."""
    mh, mw = W_raw.shape
    nf, sf = mh // pe, mw // simd
    words = []
    for f in range(nf):
        for s_ in range(sf):
            lanes = [int(W_raw[f * pe + p, s_ * simd + s]) for p in range(pe) for s in range(simd)]
            words.append(pack(lanes, wbits))
    return words


def mvau(
    x_raw: np.ndarray,
    W_raw: np.ndarray,
    *,
    ibits: int,
    isigned: bool,
    wbits: int,
    wsigned: bool,
    binary: bool,
    acc_bits: int,
    ibipolar: bool = False,
    wbipolar: bool = False,
    T: np.ndarray | None = None,
    out_base: int = 0,
    obits: int = 0,
) -> np.ndarray:
    """x_raw[v][i], W_raw[n][i] -> raw outputs [v][n] (OBITS, or ACC_BITS when T is None)."""
    if binary:
        acc = (x_raw[:, None, :] == W_raw[None, :, :]).sum(axis=-1).astype(np.int64)
        acc &= (1 << acc_bits) - 1  # unsigned wrap
    else:
        xv = 2 * x_raw - 1 if ibipolar else decode(x_raw, ibits, isigned)
        wv = 2 * W_raw - 1 if wbipolar else decode(W_raw, wbits, wsigned)
        acc = xv.astype(object) @ wv.T.astype(object)  # exact, then wrap
        acc = np.vectorize(lambda a: int(a) & ((1 << acc_bits) - 1), otypes=[object])(acc)
        acc = decode(acc.astype(np.int64), acc_bits, True)
    if T is None:
        return acc & ((1 << acc_bits) - 1)
    return multithreshold(acc, T, out_base, obits)


# ---------------------------------------------------------------------------------- SWU


def swu_dims(ifm_h, ifm_w, k_h, k_w, s_h, s_w, pad_t, pad_l, pad_b, pad_r):
    return (ifm_h + pad_t + pad_b - k_h) // s_h + 1, (ifm_w + pad_l + pad_r - k_w) // s_w + 1


def swu(img: np.ndarray, k_h, k_w, s_h, s_w, pad_t, pad_l, pad_b, pad_r, pad_value) -> np.ndarray:
    """img[F][H][W][C] raw -> windows [F][OH][OW][k_h][k_w][C] raw."""
    f, h, w, c = img.shape
    p = np.full((f, h + pad_t + pad_b, w + pad_l + pad_r, c), pad_value, dtype=np.int64)
    p[:, pad_t : pad_t + h, pad_l : pad_l + w, :] = img
    oh, ow = swu_dims(h, w, k_h, k_w, s_h, s_w, pad_t, pad_l, pad_b, pad_r)
    out = np.empty((f, oh, ow, k_h, k_w, c), dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            out[:, oy, ox] = p[:, oy * s_h : oy * s_h + k_h, ox * s_w : ox * s_w + k_w, :]
    return out


# ---------------------------------------------------------------------------------- others


def maxpool(
    img_raw: np.ndarray, k: int, bits: int, signed: bool, kw: int = 0, obits: int = 0
) -> np.ndarray:
    """img[F][H][W][C] raw -> [F][H//k][W//kw][C] raw (floor mode; kw = 0: square); with
    obits > 0 the window sums, obits wide (SUM = 1), instead of the maxima."""
    kw = kw or k
    f, h, w, c = img_raw.shape
    oh, ow = h // k, w // kw
    v = decode(img_raw, bits, signed)[:, : oh * k, : ow * kw, :]
    win = v.reshape(f, oh, k, ow, kw, c)
    if obits:
        return win.sum(axis=(2, 4)) & ((1 << obits) - 1)
    return win.max(axis=(2, 4)) & ((1 << bits) - 1)


def labelselect(vals_raw: np.ndarray, k: int, bits: int, signed: bool) -> np.ndarray:
    """vals[F][N] raw -> [F][k] indices of the k largest, ties to the lower index."""
    v = decode(vals_raw, bits, signed)
    out = []
    for row in v:
        order = np.lexsort((np.arange(len(row)), -row))
        out.append(order[:k])
    return np.array(out, dtype=np.int64)


def add(a_raw, b_raw, abits, asigned, bbits, bsigned, obits, a_mul, b_mul, bias) -> np.ndarray:
    a = decode(a_raw, abits, asigned)
    b = decode(b_raw, bbits, bsigned)
    return (a_mul * a + b_mul * b + bias) & ((1 << obits) - 1)


def dwc(words: list[int], in_width: int, out_width: int) -> list[int]:
    if in_width >= out_width:
        r = in_width // out_width
        m = (1 << out_width) - 1
        return [(w >> (i * out_width)) & m for w in words for i in range(r)]
    r = out_width // in_width
    return [pack(words[i : i + r], in_width) for i in range(0, len(words), r)]
