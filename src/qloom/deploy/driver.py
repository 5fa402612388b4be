"""Host driver of a qloom accelerator: packs integer inputs into the bytes an AXI DMA sends,
unpacks the bytes it receives. This file is copied as it is into every build directory
(`driver/driver.py`, beside `driver/io.json`), so it needs numpy only; on a PYNQ board,
`Accelerator` runs frames through the overlay's AXI DMA.

    import numpy as np, driver
    buf = driver.pack_input(q)              # q: the hardware integers (N, ...), NCHW as given
    y = driver.unpack_output(out_buf, n)    # (N, ...) integers of the accelerator's output

Byte layout (as FINN's driver): one beat per row, element i of a beat at bits
[i*bits, (i+1)*bits) little-endian, the beat padded with zero bits to whole bytes; signed values
in two's complement, BIPOLAR as one bit (1 = +1, 0 = -1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

IO_FILE = Path(__file__).with_name("io.json")


def load_io(path: str | Path = IO_FILE) -> dict:
    return json.loads(Path(path).read_text())


def _to_bits(v: np.ndarray, t: dict) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    if t["bipolar"]:
        return (v > 0).astype(np.int64)
    return v & ((1 << t["bits"]) - 1)


def _from_bits(b: np.ndarray, t: dict) -> np.ndarray:
    if t["bipolar"]:
        return 2 * b - 1
    if t["signed"]:
        return np.where(b >= 1 << (t["bits"] - 1), b - (1 << t["bits"]), b)
    return b


def _pack(values: np.ndarray, t: dict) -> np.ndarray:
    """(beats, elems) values -> (beats, bytes) uint8."""
    bits = _to_bits(values, t)
    n, elems = bits.shape
    bitarr = ((bits[:, :, None] >> np.arange(t["bits"])) & 1).astype(np.uint8).reshape(n, -1)
    pad = t["bytes"] * 8 - bitarr.shape[1]
    bitarr = np.pad(bitarr, ((0, 0), (0, pad)))
    return np.packbits(bitarr, axis=1, bitorder="little")


def _unpack(buf: np.ndarray, t: dict) -> np.ndarray:
    """(beats, bytes) uint8 -> (beats, elems) values."""
    bitarr = np.unpackbits(np.asarray(buf, dtype=np.uint8), axis=1, bitorder="little")
    bitarr = bitarr[:, : t["elems"] * t["bits"]].reshape(len(buf), t["elems"], t["bits"])
    bits = (bitarr.astype(np.int64) << np.arange(t["bits"])).sum(axis=2)
    return _from_bits(bits, t)


def pack_input(q: np.ndarray, io: dict | None = None) -> np.ndarray:
    """Hardware integers (N, ...) in the model's layout -> DMA buffer (N * beats, bytes)."""
    io = io or load_io()
    t = io["input"]
    x = np.asarray(q)
    if t["channels_last"] and x.ndim in (3, 4) and x.shape[1] > 1:  # (N, C, H, W) / (N, C, L)
        x = x.transpose((0, 2, 3, 1) if x.ndim == 4 else (0, 2, 1))
    x = x.reshape(len(x), t["beats"], t["elems"])
    return _pack(x.reshape(-1, t["elems"]), t)


def unpack_output(buf: np.ndarray, frames: int, io: dict | None = None, index: int = 0):
    """DMA buffer of output `index` -> (frames, *shape) integers (channels-last shape)."""
    io = io or load_io()
    t = io["outputs"][index]
    values = _unpack(np.asarray(buf).reshape(frames * t["beats"], t["bytes"]), t)
    return values.reshape((frames, *t["shape"]))


class Accelerator:
    """The accelerator on a PYNQ board: one AXI DMA (MM2S into the input stream, S2MM from
    the first output stream). Needs the `pynq` package on the board."""

    def __init__(self, bitfile: str, dma: str = "axi_dma_0", io: dict | None = None):
        from pynq import Overlay  # only on the board

        self.io = io or load_io()
        self.overlay = Overlay(bitfile)
        self.dma = getattr(self.overlay, dma)

    def execute(self, q: np.ndarray) -> np.ndarray:
        from pynq import allocate

        frames = len(q)
        src = pack_input(q, self.io)
        t = self.io["outputs"][0]
        ibuf = allocate(shape=src.shape, dtype=np.uint8)
        obuf = allocate(shape=(frames * t["beats"], t["bytes"]), dtype=np.uint8)
        ibuf[:] = src
        self.dma.recvchannel.transfer(obuf)
        self.dma.sendchannel.transfer(ibuf)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        return unpack_output(np.array(obuf), frames, self.io)
