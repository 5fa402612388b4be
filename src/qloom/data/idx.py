"""Reader and writer for the IDX format of MNIST and Fashion-MNIST (gzipped or not).

Why our own: it is 40 lines, and depending on torchvision just for this would pull a large
package into the core flow, which must work without torch.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

# IDX type code -> big-endian numpy dtype (the format stores multi-byte values big-endian).
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open_bytes(path: Path) -> bytes:
    """Read a file, transparently un-gzipping it (by magic number, not by name)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file into an array in native byte order.

    Raises ValueError with the file name when the header or the size is inconsistent, so a
    truncated download is reported as such instead of as a reshape error.
    """
    path = Path(path)
    data = _open_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: IDX size mismatch (header says {dims} x {dtype.itemsize} bytes, "
            f"file has {len(data) - header} bytes of data); is it truncated?"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write an array as IDX (gzipped when the name ends in .gz); used by tests and tools."""
    path = Path(path)
    arr = np.asarray(array)
    codes = [
        c
        for c, t in _IDX_DTYPES.items()
        if t.kind == arr.dtype.kind and t.itemsize == arr.dtype.itemsize
    ]
    if not codes:
        raise ValueError(f"dtype {arr.dtype} has no IDX type code")
    code = codes[0]
    dt = _IDX_DTYPES[code]
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    payload = header + arr.astype(dt, copy=False).tobytes()
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
    return path
