"""Hardware fault models, shared by evaluation (integer executor, RTL) and training.

After Zahid et al., "FAT: Training Neural Networks for Reliable Inference Under Hardware
Faults" (ITC 2020): a quantized network on an FPGA sees faults as wrong bits in the integer
codes it streams between layers (single-event upsets in the activation registers and FIFOs)
and in the weight memories (stuck-at cells). Both are defined here on the integer codes the
hardware holds, so that one fault model serves three places:

- `qloom faults` / `run_integer(..., faults=...)`: the integer executor with faults on chosen
  activation tensors (bit flips) or weight memories (stuck-at);
- the RTL simulation (`qloom.sim.design.simulate(..., fault_masks=...)`): `stream_masks`
  writes, for every beat of a chosen stream, the XOR mask that the `qloom_fault` stage applies,
  so the RTL's outputs equal the integer executor's faulty outputs on every frame;
- training (`qloom train --fault-rate P`, `qloom.train.faults`): the same kinds, drawn with
  torch's generator on the quantized activations / weights of the Brevitas model.

Kinds:
  flip    every bit of the chosen activation tensors' integer codes flips with probability
          RATE, independently per (frame, element, bit). The element order is channels-last
          (the integer graph's layout, which is also the order of the elements on the stream);
          a code's bits are its stream bit pattern (two's complement; BIPOLAR: bit 1 = +1, so a
          flip negates it). The positions are a function of (seed, tensor name, frame index)
          only: frame f of a run gets the same flips however the frames are batched.
  stuck0  every bit of the chosen layers' integer weights (the weight memory's WBITS-bit words,
  stuck1  two's complement; BIPOLAR 1 = +1) is stuck at 0 / 1 with probability RATE: a
          permanent defect, the same positions for every frame (a function of seed and layer).

Layers are named by the integer graph's tensor names, its node names, or the short name of
the Brevitas module that made them (`conv_features.3`, `linear_features.2`: the node name's
first path component), which is also the name `qloom train --fault-layers` takes. The default
for flips is every activation quantizer's output (MultiThreshold) except one reading the graph
input (the input quantizer), for stuck-at every weighted layer.

How positions are drawn (exactly independent Bernoulli(RATE) bits, cheap at low rates): per
frame a numpy generator seeded with (seed, crc32(tensor name), frame) draws the number of
flipped bits k ~ Binomial(n, RATE) and then k distinct positions uniformly; a count from the
binomial and a uniform subset of that size is the same distribution as n independent coins.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qloom.datatype import DataType
from qloom.errors import QloomError
from qloom.ir import Graph

KINDS = ("flip", "stuck0", "stuck1")
WEIGHT_OPS = ("MatMul", "Conv", "XnorMatMul", "XnorConv")
#: the --rates of `qloom faults` when none are given
DEFAULT_RATES = (0.0, 1e-4, 1e-3, 1e-2, 5e-2)
_WEIGHTS_STREAM = 0x5EED  # third seed word of the weight positions (frames use >= 0)


def check_rate(rate: float, option: str = "--rates") -> float:
    """RATE as a float in [0, 1]; QloomError naming OPTION otherwise."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise QloomError(f"{option}: {rate!r} is not a number (a fault rate in [0, 1])") from None
    if not (0.0 <= r <= 1.0) or math.isnan(r):
        raise QloomError(f"{option}: fault rate {rate} is outside [0, 1]")
    return r


def parse_rates(text: str) -> list[float]:
    """'0,1e-4,1e-3' -> [0.0, 0.0001, 0.001]; QloomError for an empty list or a bad rate."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise QloomError("--rates: give at least one fault rate, e.g. 0,1e-4,1e-3")
    return [check_rate(p) for p in parts]


def check_kind(kind: str, option: str = "--kind") -> str:
    if kind not in KINDS:
        raise QloomError(f"{option} {kind!r}: use one of {', '.join(KINDS)}")
    return kind


def check_seed(seed: int, option: str = "--seed") -> int:
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise QloomError(f"{option} must be a non-negative integer, got {seed}")
    return int(seed)


def short_name(node_name: str) -> str:
    """'/conv_features.3/act_quant/export_handler/Quant' -> 'conv_features.3'."""
    return node_name.strip("/").split("/")[0] or node_name


def tensor_key(name: str) -> int:
    return zlib.crc32(name.encode())


# --------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class FaultModel:
    """A fault kind at RATE with SEED on TARGETS: integer-graph tensor names (flip) or weighted
    node names (stuck0/stuck1), as `resolve_targets` gives them."""

    rate: float
    seed: int = 0
    kind: str = "flip"
    targets: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        check_rate(self.rate, "fault rate")
        check_kind(self.kind, "fault kind")
        check_seed(self.seed, "fault seed")

    @property
    def on_weights(self) -> bool:
        return self.kind != "flip"


def frame_positions(n_bits: int, rate: float, seed: int, key: int, frame: int) -> np.ndarray:
    """Sorted bit positions in [0, n_bits) hit in FRAME (module docstring: how)."""
    if rate <= 0.0 or n_bits == 0:
        return np.empty(0, np.int64)
    rng = np.random.default_rng((seed, key, frame))
    k = int(rng.binomial(n_bits, rate)) if rate < 1.0 else n_bits
    if k == 0:
        return np.empty(0, np.int64)
    if k == n_bits:
        return np.arange(n_bits, dtype=np.int64)
    return np.sort(rng.choice(n_bits, k, replace=False)).astype(np.int64)


def bit_masks(
    frames: int, elems: int, bits: int, rate: float, seed: int, key: int, first_frame: int = 0
) -> np.ndarray:
    """(frames, elems) XOR masks of the stream bit patterns: frame i is frame first_frame + i."""
    masks = np.zeros((frames, elems), dtype=np.int64)
    if rate <= 0.0:
        return masks
    for i in range(frames):
        pos = frame_positions(elems * bits, rate, seed, key, first_frame + i)
        if pos.size:
            np.bitwise_or.at(masks[i], pos // bits, np.left_shift(1, pos % bits))
    return masks


def flip_codes(
    x: np.ndarray, dtype: DataType, rate: float, seed: int, key: int, first_frame: int = 0
) -> np.ndarray:
    """X (frames, ...) of DTYPE codes, channels-last, with its bits flipped (module docstring)."""
    flat = np.asarray(x).reshape(len(x), -1)
    masks = bit_masks(len(flat), flat.shape[1], dtype.bits, rate, seed, key, first_frame)
    if not masks.any():
        return x
    y = dtype.from_bits(dtype.to_bits(flat) ^ masks)
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        y = y.astype(np.asarray(x).dtype)  # narrow containers hold every code of DTYPE
    return y.reshape(np.shape(x))


def weight_dtype(node) -> DataType:
    """The type of a layer's weight memory words: BIPOLAR for XNOR layers, else two's
    complement of at least 2 bits (qloom.dataflow.stage.signed_type, as the stages store them)."""
    from qloom.dataflow.stage import signed_type

    w = np.asarray(node.attrs["weights"])
    if node.op.startswith("Xnor"):
        return DataType("BIPOLAR")
    return signed_type(int(w.min()), int(w.max()))


def stuck_weights(w: np.ndarray, dtype: DataType, rate: float, seed: int, key: int, kind: str):
    """Weights W of DTYPE with bits stuck at 0 (stuck0) or 1 (stuck1) at RATE."""
    w = np.asarray(w)
    pos = frame_positions(w.size * dtype.bits, rate, seed, key, _WEIGHTS_STREAM)
    if not pos.size:
        return w
    mask = np.zeros(w.size, np.int64)
    np.bitwise_or.at(mask, pos // dtype.bits, np.left_shift(1, pos % dtype.bits))
    fields = dtype.to_bits(w.reshape(-1))
    fields = fields | mask if kind == "stuck1" else fields & ~mask
    return dtype.from_bits(fields).reshape(w.shape).astype(w.dtype)


# --------------------------------------------------------------------------------------------
# Names


def activation_targets(graph: Graph) -> dict[str, str]:
    """Integer-graph tensor -> node name of every activation quantizer (MultiThreshold)."""
    return {n.outputs[0]: n.name for n in graph.nodes if n.op == "MultiThreshold"}


def weight_targets(graph: Graph) -> dict[str, str]:
    """Weighted node name -> node name (MatMul, Conv and their XNOR forms)."""
    return {n.name: n.name for n in graph.nodes if n.op in WEIGHT_OPS and "weights" in n.attrs}


def default_targets(graph: Graph, kind: str) -> tuple[str, ...]:
    if kind != "flip":
        return tuple(weight_targets(graph))
    inputs = set(graph.inputs)
    return tuple(
        t
        for t, node in activation_targets(graph).items()
        if graph.producer(t) is not None and graph.producer(t).inputs[0] not in inputs
    )


def resolve_targets(graph: Graph, kind: str, names: Sequence[str] | None) -> tuple[str, ...]:
    """User layer names (tensor, node or short module names; None or [] or ['all']: the
    default) -> integer-graph tensor names (flip) or node names (stuck-at); QloomError listing
    the names that exist otherwise."""
    check_kind(kind)
    if not names or list(names) == ["all"]:
        out = default_targets(graph, kind)
        if not out:
            what = "activation quantizer" if kind == "flip" else "weighted layer"
            raise QloomError(f"the model has no {what} to inject {kind} faults into")
        return out
    table = activation_targets(graph) if kind == "flip" else weight_targets(graph)
    lookup: dict[str, set[str]] = {}
    for target, node in table.items():
        for alias in (target, node, short_name(node)):
            lookup.setdefault(alias, set()).add(target)
    out: list[str] = []
    for name in names:
        hits = lookup.get(name.strip())
        if not hits:
            shorts = ", ".join(dict.fromkeys(short_name(n) for n in table.values()))
            what = "activation quantizers" if kind == "flip" else "weighted layers"
            raise QloomError(
                f"--layers: no {what.rstrip('s')} named {name!r}; the model's {what}: {shorts}"
                " (or their node / tensor names)"
            )
        if len(hits) > 1:
            raise QloomError(
                f"--layers: {name!r} names several tensors ({', '.join(sorted(hits))}); give one"
            )
        (t,) = hits
        if t not in out:
            out.append(t)
    return tuple(out)


def describe_targets(graph: Graph, model: FaultModel) -> str:
    table = activation_targets(graph) if model.kind == "flip" else weight_targets(graph)
    return ", ".join(short_name(table[t]) for t in model.targets)


# --------------------------------------------------------------------------------------------
# The integer executor with faults


def faulty_graph(graph: Graph, model: FaultModel) -> Graph:
    """GRAPH with stuck-at weights (kind stuck0/stuck1); the graph itself for flips."""
    if not model.on_weights or model.rate == 0.0:
        return graph
    from dataclasses import replace

    targets = set(model.targets)
    nodes = []
    for n in graph.nodes:
        if n.name in targets:
            w = np.asarray(n.attrs["weights"])
            new = stuck_weights(w, weight_dtype(n), model.rate, model.seed,
                                tensor_key(n.name), model.kind)  # fmt: skip
            n = replace(n, attrs={**n.attrs, "weights": new})
        nodes.append(n)
    return replace(graph, nodes=tuple(nodes))


def activation_hook(
    graph: Graph, model: FaultModel, first_frame: int
) -> Callable[[str, np.ndarray], np.ndarray] | None:
    """The `qloom.execute.execute(hook=...)` that flips bits of MODEL's tensors."""
    if model.on_weights or model.rate == 0.0:
        return None
    targets = set(model.targets)

    def hook(name: str, value: np.ndarray) -> np.ndarray:
        if name not in targets:
            return value
        dtype = graph.tensors[name].dtype
        return flip_codes(value, dtype, model.rate, model.seed, tensor_key(name), first_frame)

    return hook


# --------------------------------------------------------------------------------------------
# RTL: masks for the qloom_fault stages


def stream_masks(
    design, model: FaultModel, frames: int, first_frame: int = 0
) -> dict[str, list[int]]:
    """Stream name -> the XOR mask words of its `qloom_fault` stage, one per beat of FRAMES
    frames (frame i is frame first_frame + i of the integer executor's run), for MODEL's flip
    targets: `simulate(design, images, fault_masks=...)` then equals
    `run_integer(graph, images, faults=MODEL)`. The stream carrying an integer-graph tensor is
    the one named after it (the producing stage's output, before any Duplicate or DWC)."""
    from qloom.dataflow.stage import pack_words

    if model.on_weights:
        raise QloomError(
            f"{model.kind} faults are in the weights: build the design from "
            "qloom.faults.faulty_graph(graph, model) instead of injecting on a stream"
        )
    out: dict[str, list[int]] = {}
    for t in model.targets:
        spec = design.streams.get(t)
        if spec is None:
            raise QloomError(
                f"tensor {t!r} is not a stream of design '{design.name}' (it is computed "
                "inside a stage); choose an activation that travels between stages"
            )
        info = design.source.tensors[t]
        if spec.dtype != info.dtype or spec.frame_elems != int(np.prod(info.shape)):
            raise QloomError(
                f"stream {t!r} carries {spec}, the integer graph's tensor is "
                f"{info.dtype} {info.shape}: the fault masks would not line up"
            )
        masks = bit_masks(frames, spec.frame_elems, spec.dtype.bits, model.rate, model.seed,
                          tensor_key(t), first_frame)  # fmt: skip
        out[t] = pack_words(masks.reshape(-1, spec.elems), spec.dtype.bits)
    return out


# --------------------------------------------------------------------------------------------
# Accuracy against fault rate


@dataclass(frozen=True)
class SweepPoint:
    rate: float
    accuracy: float | None  # % (None without labels)
    agree: float  # % of predictions equal to the fault-free ones
    faults: int  # bits flipped (flip) or weight bits stuck (stuck-at) in total


def count_faults(graph: Graph, model: FaultModel, frames: int) -> int:
    """How many bits MODEL touches over FRAMES frames (flip) or in the weights (stuck-at)."""
    if model.rate == 0.0:
        return 0
    if model.on_weights:
        table = {n.name: n for n in graph.nodes}
        return sum(
            len(
                frame_positions(
                    np.asarray(table[t].attrs["weights"]).size * weight_dtype(table[t]).bits,
                    model.rate,
                    model.seed,
                    tensor_key(t),
                    _WEIGHTS_STREAM,
                )
            )  # fmt: skip
            for t in model.targets
        )
    total = 0
    for t in model.targets:
        info = graph.tensors[t]
        n = int(np.prod(info.shape)) * info.dtype.bits
        key = tensor_key(t)
        total += sum(len(frame_positions(n, model.rate, model.seed, key, f)) for f in range(frames))
    return total


def sweep(
    graph: Graph,
    q: np.ndarray,
    labels: np.ndarray | None,
    rates: Sequence[float],
    *,
    kind: str = "flip",
    layers: Sequence[str] | None = None,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> list[SweepPoint]:
    """Accuracy of the integer model on hardware inputs Q at each fault rate."""
    from qloom.flow import predictions, run_integer

    targets = resolve_targets(graph, kind, layers)
    clean = predictions(graph, run_integer(graph, q))
    points = []
    for i, rate in enumerate(rates):
        if progress is not None:
            progress(i, len(rates), rate)
        model = FaultModel(check_rate(rate), seed, kind, targets)
        pred = clean if rate == 0.0 else predictions(graph, run_integer(graph, q, faults=model))
        acc = None if labels is None else 100.0 * float(np.mean(pred == labels))
        points.append(
            SweepPoint(
                rate, acc, 100.0 * float(np.mean(pred == clean)), count_faults(graph, model, len(q))
            )  # fmt: skip
        )
    return points


def plot_sweep(
    path, curves: dict[str, list[SweepPoint]], title: str, ylabel: str = "top-1 accuracy (%)"
) -> None:
    """Accuracy against fault rate, one line per curve, as a PNG (matplotlib, Agg)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise QloomError("--plot needs matplotlib (pip install matplotlib)") from None
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    nonzero = [p.rate for pts in curves.values() for p in pts if p.rate > 0]
    for label, pts in curves.items():
        ys = [p.accuracy if p.accuracy is not None else p.agree for p in pts]
        ax.plot([p.rate for p in pts], ys, marker="o", label=label)
    if nonzero:
        ax.set_xscale("symlog", linthresh=min(nonzero))
    ax.set_xlabel("fault rate (per bit)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
