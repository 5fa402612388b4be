"""Host side of a qloom accelerator behind a serial port (`qloom.deploy.board`).

The bytes are the host driver's (`qloom.deploy.driver.pack_input` / `unpack_output`): each
input beat is ceil(W_in/8) little-endian bytes, each output beat ceil(W_out/8), frame after
frame. A serial line has no flow control, and the board buffers what it receives in a FIFO of
``rx_fifo_bytes`` (``board.json``): `run_frames` therefore keeps at most `window` frames in
flight, sending frame k + window only after frame k's result has arrived, and a window of
``max_window`` = rx_fifo_bytes // frame_bytes (from ``board.json``) can never overflow it.
window = 1 (send one frame, wait for its result) is always safe.

    from qloom.deploy.client import SerialAccelerator
    with SerialAccelerator("/dev/ttyUSB0", "build/net/driver/io.json", baud=115200) as acc:
        y = acc.execute(q)      # q: the hardware integers (N, ...), as for driver.pack_input

`SerialAccelerator` needs pyserial (``pip install pyserial``; not a qloom dependency, imported
only when a port is opened). `run_frames` takes any object with ``write(bytes)`` and
``read(n) -> bytes`` (a pyserial ``Serial``, a socket wrapper, or the Verilator model of the
board, `qloom.deploy.board.BoardSim.open`, which is how the whole path is tested).

`BoardBuild` does what ``qloom board send BUILD_DIR`` does: inputs in the model's own float
domain in, the model's outputs (after the host's float tail) out, through the board.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from qloom.deploy.driver import load_io, pack_input, unpack_output
from qloom.errors import QloomError

if TYPE_CHECKING:
    from qloom.dataflow.design import DataflowDesign
    from qloom.flow import Compiled


class SerialPortError(QloomError):
    """The serial port cannot be used (pyserial missing, no such port, no answer)."""


class Link(Protocol):
    def write(self, data: bytes) -> int | None: ...

    def read(self, n: int) -> bytes: ...


def _io(io: dict | str | Path) -> dict:
    return io if isinstance(io, dict) else load_io(io)


def frame_bytes(io: dict | str | Path, index: int = 0) -> tuple[int, int]:
    """(input bytes per frame, output bytes per frame) of stream description `io`
    (``driver/io.json`` or `qloom.deploy.io_description`)."""
    io = _io(io)
    t_in, t_out = io["input"], io["outputs"][index]
    return t_in["beats"] * t_in["bytes"], t_out["beats"] * t_out["bytes"]


def encode_frames(q: np.ndarray, io: dict | str | Path) -> bytes:
    """Hardware integers (N, ...) -> the bytes to send, frame after frame."""
    return pack_input(np.asarray(q), _io(io)).tobytes()


def decode_frames(data: bytes, frames: int, io: dict | str | Path, index: int = 0) -> np.ndarray:
    """Received bytes -> (frames, *shape) integers of output `index`."""
    io = _io(io)
    t = io["outputs"][index]
    want = frames * t["beats"] * t["bytes"]
    if len(data) != want:
        raise ValueError(f"{len(data)} bytes received, {want} expected for {frames} frames")
    buf = np.frombuffer(bytes(data), dtype=np.uint8).reshape(frames * t["beats"], t["bytes"])
    return unpack_output(buf, frames, io, index)


def _read_exact(link: Link, n: int, frame: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = link.read(n - len(out))
        if not chunk:
            raise TimeoutError(
                f"frame {frame}: {len(out)} of {n} result bytes arrived before the read "
                "timed out (board not configured, wrong port or baud, or a lost byte: "
                "see the board's error LED)"
            )
        out += chunk
    return bytes(out)


def run_frames(link: Link, q: np.ndarray, io: dict | str | Path, window: int = 1) -> np.ndarray:
    """Send frames `q` over `link`, at most `window` in flight, and return the results of the
    (first) output stream as (N, *shape) integers."""
    io = _io(io)
    if window < 1:
        raise ValueError(f"window must be >= 1, not {window}")
    data = encode_frames(q, io)
    n_in, n_out = frame_bytes(io)
    frames = len(data) // n_in
    received = bytearray()
    sent = 0
    while sent < min(window, frames):
        link.write(data[sent * n_in : (sent + 1) * n_in])
        sent += 1
    for f in range(frames):
        received += _read_exact(link, n_out, f)
        if sent < frames:
            link.write(data[sent * n_in : (sent + 1) * n_in])
            sent += 1
    return decode_frames(bytes(received), frames, io)


def open_serial(port: str, baud: int = 115_200, timeout: float = 5.0):
    """A pyserial port, 8N1, no flow control, input buffer flushed."""
    try:
        import serial  # pyserial: optional, only on the host that talks to a board
    except ImportError:
        raise SerialPortError(
            "talking to a board needs pyserial, which is not installed: pip install pyserial"
        ) from None
    try:
        s = serial.Serial(
            port,
            baudrate=baud,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_ONE,
            timeout=timeout,
            rtscts=False,
            xonxoff=False,
        )
    except (serial.SerialException, ValueError) as e:
        raise SerialPortError(f"serial port {port}: {e}") from None
    s.reset_input_buffer()
    return s


class SerialAccelerator:
    """A board written by `qloom.deploy.board.write_board`, over a serial port.

    io: the stream description (``driver/io.json``, or a dict); board: its ``board.json``
    (gives the baud and the largest safe window) or None (then `baud`, and window 1 unless
    given)."""

    def __init__(
        self,
        port: str,
        io: dict | str | Path,
        baud: int | None = None,
        board: dict | str | Path | None = None,
        window: int | None = None,
        timeout: float = 5.0,
    ):
        self.io = _io(io)
        info = board if isinstance(board, dict) or board is None else json.loads(
            Path(board).read_text()
        )  # fmt: skip
        self.baud = baud or (info or {}).get("baud") or 115_200
        max_window = (info or {}).get("max_window") or 1
        self.window = window or max_window
        self.port = open_serial(port, self.baud, timeout)

    def execute(self, q: np.ndarray) -> np.ndarray:
        return run_frames(self.port, q, self.io, self.window)

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> SerialAccelerator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class BoardBuild:
    """A build directory written by ``qloom build --board``: the stream description
    (``driver/io.json``), the board's settings (``board/board.json``) and the compiled model
    with the build's folding and input domain, for the conversions around the byte stream."""

    directory: Path
    io: dict
    board: dict
    compiled: Compiled
    design: DataflowDesign

    @classmethod
    def load(cls, directory: str | Path) -> BoardBuild:
        from qloom.dataflow import to_dataflow
        from qloom.flow import compile_model
        from qloom.fold import read_folding
        from qloom.sim.cli import _from_build_dir

        d = Path(directory)
        info_file, io_file = d / "board" / "board.json", d / "driver" / "io.json"
        if not info_file.is_file() or not io_file.is_file():
            raise QloomError(
                f"{d}: no board/board.json and driver/io.json; build it with "
                "qloom build MODEL --board ulx3s (or orangecrab)"
            )
        model, folding, spec, _ = _from_build_dir(d)
        compiled = compile_model(model, spec)
        graph = compiled.integer
        design = to_dataflow(graph, read_folding(folding, graph) if folding else None)
        io = load_io(io_file)
        if len(io["outputs"]) != 1:
            raise QloomError(f"{d}: the board top carries one output stream, the design has "
                             f"{len(io['outputs'])}")  # fmt: skip
        return cls(d, io, json.loads(info_file.read_text()), compiled, design)

    def outputs(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        """The accelerator's output integers (N, *shape) -> the model's outputs by name (the
        host's float tail applied, as `qloom.api.Model.predict_all` gives them)."""
        from qloom.execute import execute

        out = {self.io["outputs"][0]["tensor"]: np.asarray(raw)}
        if self.design.host is not None:
            out.update(execute(self.design.host, {t: out[t] for t in self.design.host.inputs}))
        return {t: out[t] for t in self.compiled.integer.outputs if t in out}

    def run(self, link: Link, x: np.ndarray, window: int | None = None) -> dict[str, np.ndarray]:
        """Inputs `x` in the model's float domain through the board on `link`; the model's
        outputs. `window` defaults to the board's ``max_window`` (its receive FIFO's size)."""
        q = self.compiled.hardware_input(np.asarray(x))
        raw = run_frames(link, q, self.io, window or self.board.get("max_window") or 1)
        return self.outputs(raw)


# ---------------------------------------------------------------------------------------------
# qloom board send
# ---------------------------------------------------------------------------------------------


def send_command(args) -> int:
    """`qloom board send`: inputs in the model's own float domain (what ``qloom run --data``
    takes) through the board; prints frames/s, saves the model's first output (as
    ``qloom run --save-outputs`` does), and with --check compares with the integer model."""
    import time

    from rich.console import Console

    console = Console()
    build = BoardBuild.load(args.build_dir)
    try:
        x = np.load(args.data)
    except (OSError, ValueError) as e:
        raise QloomError(f"--data {args.data}: cannot read it as .npy ({e})") from None
    if args.window is not None and args.window < 1:
        raise QloomError(f"--window must be >= 1, got {args.window}")
    port = open_serial(args.port, args.baud or build.board["baud"], args.timeout)
    t0 = time.perf_counter()
    try:
        outputs = build.run(port, x, args.window)
    except TimeoutError as e:
        raise SerialPortError(f"{args.port}: {e}") from None
    finally:
        port.close()
    dt = time.perf_counter() - t0
    name = build.compiled.integer.outputs[0]
    got, n = outputs[name], len(x)
    line = f"{n} frames through {args.port} in {dt:.2f} s ({n / dt:,.1f} frames/s)"
    same = n
    if args.check:
        want = build.compiled.run(x)[name]
        same = int(np.sum(np.all(got.reshape(n, -1) == want.reshape(n, -1), axis=1)))
        line += f"; equal to the integer model on {same} / {n} frames"
    console.print(line, highlight=False, soft_wrap=True)
    if args.out:
        np.save(args.out, got)
        console.print(f"outputs written to {args.out}", highlight=False, soft_wrap=True)
    return 0 if same == n else 1
