"""What every hardware stage shares: stream descriptions, beat helpers, folding checks, hex files.

Stream convention (the RTL library follows it):
  * A stream carries one frame (one image) as a sequence of AXI-Stream beats; each beat holds
    `elems` elements of one DataType; element i of a beat sits at bits [i*BITS +: BITS].
  * BIPOLAR travels as one bit (1 = +1, 0 = -1); signed types as two's complement.
  * Tensors travel channels-last (NHWC, row-major), i.e. in the flat order of the integer graph.

Beat representation in the Python models: an int64 numpy array of shape (frames, beats, elems)
(or (beats, elems) for a single frame) holding the *values* of the elements (BIPOLAR as -1/+1).
`pack_beats` / `unpack_beats` convert to and from the bus words (Python ints) the RTL sees.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from math import lcm
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from qloom.datatype import DataType
from qloom.errors import FoldingError

if TYPE_CHECKING:
    from qloom.dataflow.resources import Resources
    from qloom.synth.devices import Device

RAM_STYLES = ("auto", "block", "distributed", "ultra")


@dataclass(frozen=True)
class StreamSpec:
    """One AXI-Stream: element type, elements per beat and beats per frame."""

    dtype: DataType
    elems: int
    beats: int

    @property
    def width(self) -> int:
        """TDATA width in bits (elements per beat x bits per element)."""
        return self.elems * self.dtype.bits

    @property
    def frame_elems(self) -> int:
        return self.elems * self.beats

    def __str__(self) -> str:
        return f"{self.beats}x{self.elems}x{self.dtype}({self.width}b)"


def identifier(name: str) -> str:
    """A Verilog/file-name-safe identifier for a stage or stream name ("/1/Conv" -> "_1_Conv")."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return out if out and not out[0].isdigit() else f"s_{out}"


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def legal_list(n: int) -> str:
    return ", ".join(str(d) for d in divisors(n))


def check_divides(kind: str, name: str, param: str, value, dim: str, n: int) -> None:
    """FoldingError "<KIND> '<name>': PE=3 does not divide MH=64; legal PE: 1, 2, ..." """
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise FoldingError(
            f"{kind} '{name}': {param}={value!r} is not a positive integer; "
            f"legal {param}: {legal_list(n)}"
        )
    if n % value:
        raise FoldingError(
            f"{kind} '{name}': {param}={value} does not divide {dim}={n}; "
            f"legal {param}: {legal_list(n)}"
        )


def check_ram_style(kind: str, name: str, style: str) -> None:
    if style not in RAM_STYLES:
        raise FoldingError(
            f"{kind} '{name}': ram_style={style!r} is not one of {', '.join(RAM_STYLES)}"
        )


def as_frames(beats) -> tuple[np.ndarray, bool]:
    """(frames, beats, elems) int64 array, and whether the input was a single frame."""
    a = np.asarray(beats, dtype=np.int64)
    if a.ndim == 2:
        return a[None], True
    if a.ndim != 3:
        raise ValueError(
            f"beats must have shape (beats, elems) or (frames, beats, elems): {a.shape}"
        )
    return a, False


def restore(a: np.ndarray, single: bool) -> np.ndarray:
    return a[0] if single else a


def check_stream(stage: Stage, beats: np.ndarray, spec: StreamSpec, port: int = 0) -> None:
    if beats.shape[1:] != (spec.beats, spec.elems):
        raise ValueError(
            f"{stage.kind} '{stage.name}': input {port} has {beats.shape[1]} beats of "
            f"{beats.shape[2]} elements; expected {spec.beats} beats of {spec.elems}"
        )


def to_beats(x: np.ndarray, elems: int) -> np.ndarray:
    """A batch of tensors (N, ...) in channels-last order -> (N, beats, elems)."""
    x = np.asarray(x, dtype=np.int64)
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[1] % elems:
        raise ValueError(f"{flat.shape[1]} elements per frame are not a multiple of {elems}")
    return flat.reshape(flat.shape[0], -1, elems)


def from_beats(beats: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(N, beats, elems) -> (N, *shape)."""
    return beats.reshape((beats.shape[0],) + tuple(shape))


def pack_words(fields: np.ndarray, bits: int) -> list[int]:
    """fields (words, lanes) of unsigned field values < 2**bits -> one int per word, lane i at
    bits [i*bits +: bits]."""
    fields = np.asarray(fields, dtype=np.int64)
    n, lanes = fields.shape
    bitarr = ((fields[:, :, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(n, -1)
    packed = np.packbits(bitarr, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack_words(words: list[int], lanes: int, bits: int) -> np.ndarray:
    """Inverse of pack_words: (words, lanes) unsigned field values."""
    mask = (1 << bits) - 1
    return np.array(
        [[(w >> (i * bits)) & mask for i in range(lanes)] for w in words], dtype=np.int64
    ).reshape(len(words), lanes)


def pack_beats(beats: np.ndarray, dtype: DataType) -> list[int]:
    """Beats of element values (beats, elems) -> TDATA words as the RTL sees them."""
    b = np.asarray(beats, dtype=np.int64)
    return pack_words(dtype.to_bits(b.reshape(b.shape[0], -1)), dtype.bits)


def unpack_beats(words: list[int], dtype: DataType, elems: int) -> np.ndarray:
    """TDATA words -> beats of element values (beats, elems)."""
    return dtype.from_bits(unpack_words(words, elems, dtype.bits))


def host_words(words: list[int], width: int) -> np.ndarray:
    """Memory words of `width` bits -> the uint32 words a host streams to load them (the RTL's
    qloom_wload): ceil(width / 32) per memory word, its lowest 32 bits first."""
    n = 4 * max(1, -(-width // 32))
    raw = b"".join(int(w).to_bytes(n, "little") for w in words)
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)


def write_hex(path: Path, words: list[int], width: int) -> Path:
    """$readmemh file: one word per line, ceil(width/4) hex digits, no address markers."""
    digits = max(1, (width + 3) // 4)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{w:0{digits}x}\n" for w in words))
    return path


def read_hex(path: Path) -> list[int]:
    out = []
    for line in Path(path).read_text().splitlines():
        line = line.split("//")[0].strip()
        if line:
            out.append(int(line, 16))
    return out


def signed_type(lo: int, hi: int) -> DataType:
    """The narrowest INTn (n >= 2) holding [lo, hi]: thresholds and multi-bit weights are
    always stored as two's complement."""
    return DataType.for_range(min(int(lo), -1), max(int(hi), 0))


def dwc_chain_elems(src: int, dst: int) -> list[int]:
    """Element counts per beat a stream passes through to go from src to dst elements per beat
    with converters whose widths divide each other: (src, [lcm,] dst). Going through the lcm
    (gather, then split) keeps one beat per cycle on the narrow side; lcm divides the frame
    whenever src and dst do."""
    if src == dst:
        return [src]
    if src % dst == 0 or dst % src == 0:
        return [src, dst]
    return [src, lcm(src, dst), dst]


#: stage kind name -> class, filled as the stage modules are imported (qloom.dataflow imports
#: every module of the package), so that generic code and the protocol test find every kind
STAGE_KINDS: dict[str, type[Stage]] = {}


@dataclass(frozen=True, eq=False)
class Stage:
    """Base of all hardware stages. Subclasses are frozen dataclasses holding shape and folding
    parameters; `__post_init__` checks folding and raises FoldingError naming the stage."""

    name: str
    # stream names on the design's wiring (filled in by qloom.dataflow.lower)
    inputs: tuple[str, ...] = field(default=(), kw_only=True)
    outputs: tuple[str, ...] = field(default=(), kw_only=True)

    kind: ClassVar[str] = "Stage"
    finn_op: ClassVar[str] = ""  # FINN's op type of the same hardware layer
    rtl_module: ClassVar[str] = ""
    #: folding parameters (FINN's folding.json keys) the solver chooses, in order
    fold_params: ClassVar[tuple[str, ...]] = ()
    #: memory styles the solver tries (None: the stage has no memory to place)
    memory_styles: ClassVar[tuple[str | None, ...]] = (None,)
    #: an elastic stage takes an input beat in every cycle its registered output is free
    #: (s_axis_tready = !m_axis_tvalid || m_axis_tready) and holds nothing else: between two
    #: of them a glue FIFO adds no throughput, only LUTs and a slower path, so the top joins
    #: them directly (`qloom.rtl.top.glue_streams`)
    elastic: ClassVar[bool] = False

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        if "kind" in cls.__dict__:  # a kind of its own, not a helper base class
            if cls.kind in STAGE_KINDS and STAGE_KINDS[cls.kind].__qualname__ != cls.__qualname__:
                raise AssertionError(f"two stage classes of kind {cls.kind}")
            STAGE_KINDS[cls.kind] = cls

    @classmethod
    def example(cls) -> Stage:
        """A small instance of the kind (the protocol test checks every kind through it)."""
        raise NotImplementedError(f"{cls.kind} has no example()")

    @property
    def ident(self) -> str:
        """The name as a Verilog/file-name identifier ([A-Za-z0-9_], not starting with a digit)."""
        return identifier(self.name)

    def in_streams(self) -> tuple[StreamSpec, ...]:
        raise NotImplementedError

    def out_streams(self) -> tuple[StreamSpec, ...]:
        raise NotImplementedError

    def cycles_per_frame(self) -> int:
        raise NotImplementedError

    def latency_cycles(self) -> int:
        """Rough cycles from a frame's first input beat to its last output beat."""
        return self.cycles_per_frame() + 2

    def first_out_cycles(self, spacing: float = 1.0) -> int:
        """Cycles from a frame's first input beat to its first output beat when the input
        beats come `spacing` cycles apart (default: the pipeline depth, latency less cycles
        per frame; `DataflowDesign.latency_estimate` chains these)."""
        return max(0, self.latency_cycles() - self.cycles_per_frame())

    def tail_cycles(self, spacing: float = 1.0) -> int:
        """Cycles from a frame's last input beat to its last output beat when the input beats
        come `spacing` cycles apart: the pipeline depth plus the cycles one input beat's work
        takes (cycles per frame / input beats)."""
        beats = max((s.beats for s in self.in_streams()), default=1)
        return self.first_out_cycles() + max(0, -(-self.cycles_per_frame() // beats) - 1)

    def memory_bits(self) -> int:
        """On-chip storage the stage needs (weights, thresholds, line/FIFO buffers), in bits."""
        return 0

    def folding(self) -> dict:
        """FINN folding.json entry (PE / SIMD / ram_style where they apply)."""
        return {}

    # -- folding protocol: the solver and the reports loop over these -----------------------------
    def legal_values(self) -> dict[str, list[int]]:
        """Legal values of each of `fold_params` (divisors of the folded dimension)."""
        return {}

    def refold(self, values: Mapping[str, int], ram_style: str | None = None) -> Stage:
        """This stage with other folding (FINN keys: PE, SIMD), as to_dataflow would build it."""
        kw: dict = {p.lower(): v for p, v in values.items()}
        if ram_style is not None:
            kw["ram_style"] = ram_style
        return dataclasses.replace(self, **kw)

    def lut4_factor(self) -> float | None:
        """LUT4 per LUT6 of this stage's logic on 4-input-LUT parts (ECP5, iCE40), where the
        stage knows it better than the estimator's generic factor (None: that one)."""
        return None

    def memory_styles_on(self, device: Device) -> tuple[str | None, ...]:
        """The memory styles the solver tries on `device` (default: `memory_styles`)."""
        return self.memory_styles

    def alternatives(self) -> list[Stage]:
        """Stages of other kinds that compute this layer bit for bit (e.g. an MVAU's LogicNets
        truth tables); each one's `folding()` names its kind with a "style" entry. The solver
        prices them beside this stage's own foldings and takes the cheapest that meets the
        budget. None by default."""
        return []

    def estimate(self, device: Device) -> Resources:
        """Estimated LUT / FF / BRAM / DSP on `device` (6-input LUTs; the driver in
        qloom.fold.estimate scales for LUT4 parts), built on qloom.dataflow.resources."""
        raise NotImplementedError(f"{self.kind} stage '{self.name}' has no resource model")

    # -- RTL protocol: the generated top and the stage checks use these ---------------------------
    def rtl_params(self) -> dict:
        """Verilog parameters of `rtl_module` (memory file parameters come from write_memories)."""
        raise NotImplementedError(f"{self.kind} stage '{self.name}' has no rtl_params")

    def memory_words(self) -> list[list[int]]:
        """The contents of the stage's memories (one word list per memory); empty: none."""
        return []

    @property
    def runtime_weights(self) -> bool:
        """Whether the stage's weights are loaded after reset over the top's weight stream
        (its RTL module's w_axis / wo_axis / loaded ports, as qloom_mvau's, are then connected)."""
        return False

    def weight_stream_words(self) -> np.ndarray:
        """The uint32 words of the weight stream that load this stage (none by default)."""
        return np.zeros(0, np.uint32)

    def write_memories(self, directory: str | Path) -> dict[str, Path]:
        """$readmemh files of the stage's memories: Verilog parameter -> path."""
        return {}

    def execute(self, *beats: np.ndarray):
        raise NotImplementedError

    def describe(self) -> str:
        ins = ", ".join(str(s) for s in self.in_streams())
        outs = ", ".join(str(s) for s in self.out_streams())
        fold = " ".join(f"{k}={v}" for k, v in self.folding().items())
        return (
            f"{self.kind:<12} {self.name:<24} {fold:<28} in {ins} -> out {outs}  "
            f"cycles {self.cycles_per_frame()}"
        )
