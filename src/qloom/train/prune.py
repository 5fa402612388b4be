"""Quantization-aware pruning (QAP, Hawks et al. 2021) and the BOPs metric.

Why prune during quantization-aware training: a fully parallel FINN-style MVAU holds its
weights as constants, so every weight that is exactly zero removes a product from the logic,
and a folded MVAU whose SIMD-wide block of a row is all zero has nothing to compute in that
cycle. Pruning the latent float weights by magnitude while the network trains at its final
bit widths lets the remaining weights adapt to both the quantizer and the missing ones
(Hawks et al., "Ps and Qs: Quantization-aware pruning for efficient low latency neural
network inference", 2021); pruning a trained model once at the end ("after") is the baseline
it is compared with.

How: one boolean mask per QuantLinear / QuantConv2d weight, kept here (not with
torch.nn.utils.prune, whose weight_orig / weight_mask parameters would change the state_dict
of the zoo models and so their checkpoints). The trainer asks `Pruner.step(step)` before each
optimizer step (the masks grow when the schedule says so) and `Pruner.apply()` after it (the
pruned latent weights are set back to exactly 0.0). Masks only grow: a pruned weight never
returns. A latent 0.0 quantizes to exactly 0 under every multi-bit Brevitas quantizer of the
zoo (narrow-range signed, zero point 0), which `quantized_weights` checks on the exported
QONNX's Quant nodes; 1-bit (bipolar) weights have no zero and are refused.

Schedules (`parse_schedule`), over a window of epochs A..B (1-based, inclusive):
  gradual[:A-B]       Zhu & Gupta's cubic ramp s_t = s (1 - (1 - x)^3), x the fraction of the
                      window done, the masks recomputed 20 times per epoch;
  iterative[:K[:A-B]] K pruning steps evenly spaced in the window, step k at the end of the
                      k-th K-th of it, each removing the same fraction of the remaining weights
                      (sparsity 1 - (1 - s)^(k/K)), the network training in between;
  after               train dense for all --epochs, prune once at the end (then
                      --finetune-epochs N with the final masks, if any).
The default window leaves the first epoch dense (a magnitude ranking of the initial
weights says nothing) and at least the last quarter for training with the final masks:
A = 2 for three or more epochs (else 1), B = E - max(1, E // 4) (at least A; B = 1 for E <= 2).

BOPs (`layer_bops`): per MatMul / Conv of qloom's integer graph, MACs x weight bits x input
activation bits x density (the fraction of nonzero quantized weights), summed. This is the
multiplication term of Hawks et al.'s BOPs (after Baskin et al.); their accumulation term
mn (b_a + b_w + log2 n) does not shrink with pruning and is not counted. Bits are those of the
integer graph's types (what the hardware holds), a binary XNOR layer counts 1 x 1. This part
needs no torch (torch is imported where the pruner uses it), so `qloom inspect` can use it.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qloom.errors import QloomError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from qloom.ir import Graph

SCHEDULES = ("gradual", "iterative", "after")
SCOPES = ("global", "layer")
STRUCTURES = ("none", "block")
DEFAULT_BLOCK = 8
DEFAULT_ITERATIVE_STEPS = 3
#: mask updates per epoch of the gradual schedule (Zhu & Gupta's pruning frequency)
UPDATES_PER_EPOCH = 20
#: fine-tuning after the last epoch restarts the cosine schedule at this fraction of --lr
FINETUNE_LR_FACTOR = 0.1


# --------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class PruneConfig:
    """What `qloom train --sparsity ...` asked for (validated by `check_config`)."""

    sparsity: float
    schedule: str = "gradual"
    scope: str = "global"
    structure: str = "none"
    block: int = DEFAULT_BLOCK
    finetune_epochs: int = 0


@dataclass(frozen=True)
class Schedule:
    """When the masks reach which sparsity; steps are optimizer steps counted from 0."""

    kind: str
    sparsity: float
    first_epoch: int  # 1-based, inclusive
    last_epoch: int
    steps: int  # iterative: number of pruning steps (after: 1)
    steps_per_epoch: int

    @property
    def start_step(self) -> int:
        return (self.first_epoch - 1) * self.steps_per_epoch

    @property
    def end_step(self) -> int:
        """The step at which the final sparsity is reached (the end of the window)."""
        return self.last_epoch * self.steps_per_epoch

    def target(self, step: int) -> float:
        """The sparsity the masks must have before optimizer step STEP runs (STEP may be the
        total number of steps: the state after training)."""
        t0, t1, s = self.start_step, self.end_step, self.sparsity
        if step < t0 or s == 0.0:
            return 0.0
        if step >= t1:
            return s
        if self.kind == "gradual":
            every = max(1, self.steps_per_epoch // UPDATES_PER_EPOCH)
            x = ((step - t0) // every * every) / (t1 - t0)
            return s * (1.0 - (1.0 - x) ** 3)
        # iterative: step k of K happens at t0 + k (t1 - t0) / K
        k = (step - t0) * self.steps // (t1 - t0)
        return 1.0 - (1.0 - s) ** (k / self.steps) if k else 0.0

    def describe(self) -> str:
        window = f"epochs {self.first_epoch}-{self.last_epoch}"
        if self.kind == "gradual":
            return f"gradual (cubic) over {window}"
        if self.kind == "iterative":
            return f"iterative, {self.steps} steps over {window}"
        return f"once after epoch {self.last_epoch}"


def default_window(epochs: int) -> tuple[int, int]:
    """Dense first epoch, at least the last quarter with the final masks (module docstring)."""
    first = 2 if epochs >= 3 else 1
    last = max(first, epochs - max(1, epochs // 4)) if epochs >= 2 else 1
    return first, last


_SCHEDULE_RE = re.compile(r"^(?P<kind>[a-z]+)(?::(?P<k>\d+)(?=$|:))?(?::(?P<a>\d+)-(?P<b>\d+))?$")


def parse_schedule(text: str, sparsity: float, epochs: int, steps_per_epoch: int) -> Schedule:
    """'gradual', 'gradual:2-4', 'iterative', 'iterative:3', 'iterative:3:2-4' or 'after'
    -> Schedule; QloomError naming what works otherwise."""
    usage = (
        "use gradual[:A-B], iterative[:K[:A-B]] or after (A-B: the epochs, 1-based, "
        f"within 1-{epochs}; K: the number of pruning steps)"
    )
    m = _SCHEDULE_RE.match(text.strip().lower())
    if not m or m["kind"] not in SCHEDULES:
        raise QloomError(f"--prune-schedule {text!r}: {usage}")
    kind = m["kind"]
    if kind == "after":
        if m["k"] or m["a"]:
            raise QloomError(f"--prune-schedule {text!r}: 'after' takes no arguments; {usage}")
        return Schedule(kind, sparsity, epochs, epochs, 1, steps_per_epoch)
    if kind == "gradual" and m["k"]:
        raise QloomError(f"--prune-schedule {text!r}: gradual takes a window only; {usage}")
    first, last = (int(m["a"]), int(m["b"])) if m["a"] else default_window(epochs)
    if not 1 <= first <= last <= epochs:
        raise QloomError(
            f"--prune-schedule {text!r}: the window {first}-{last} must lie within the "
            f"{epochs} training epochs (1 <= A <= B <= {epochs})"
        )
    steps = int(m["k"]) if m["k"] else (DEFAULT_ITERATIVE_STEPS if kind == "iterative" else 1)
    window_steps = (last - first + 1) * steps_per_epoch
    if kind == "iterative" and not 1 <= steps <= window_steps:
        raise QloomError(
            f"--prune-schedule {text!r}: {steps} pruning steps do not fit a window of "
            f"{window_steps} optimizer steps (K must be 1..{window_steps})"
        )
    return Schedule(kind, sparsity, first, last, steps, steps_per_epoch)


def check_config(cfg: PruneConfig) -> None:
    """QloomError for options that describe no pruning (before any data is loaded)."""
    if not (isinstance(cfg.sparsity, float | int) and 0.0 <= cfg.sparsity < 1.0):
        raise QloomError(
            f"--sparsity must be in [0, 1) (the final fraction of zero weights), got {cfg.sparsity}"
        )
    if cfg.scope not in SCOPES:
        raise QloomError(f"--prune-scope {cfg.scope!r}: use one of {', '.join(SCOPES)}")
    if cfg.structure not in STRUCTURES:
        raise QloomError(f"--prune-structure {cfg.structure!r}: use one of {', '.join(STRUCTURES)}")
    if cfg.block < 1:
        raise QloomError(f"--prune-block must be at least 1, got {cfg.block}")
    if cfg.finetune_epochs < 0:
        raise QloomError(f"--finetune-epochs must be at least 0, got {cfg.finetune_epochs}")


# --------------------------------------------------------------------------------------------
# Masks


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every QuantLinear / QuantConv (1-D or 2-D) in MODEL, in order."""
    from brevitas.nn import QuantConv1d, QuantConv2d, QuantLinear

    kinds = (QuantLinear, QuantConv1d, QuantConv2d)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]


def _to_rows(w: torch.Tensor) -> torch.Tensor:
    """Weight (out, in[, k...]) -> (out, row) in the MVAU's order: a row is one output
    channel's weights with the input channel innermost (qloom's SWU emits each kernel
    position's channels together), so SIMD consecutive entries are one folded block."""
    if w.dim() == 2:
        return w
    return w.movedim(1, -1).reshape(w.shape[0], -1)


def _from_rows(rows: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if len(shape) == 2:
        return rows
    moved = (shape[0], *shape[2:], shape[1])
    return rows.reshape(moved).movedim(-1, 1)


def _weight_bits(module: nn.Module) -> float:
    return float(module.quant_weight().bit_width)


class Pruner:
    """Magnitude pruning masks for the QuantLinear / QuantConv weights of a model.

    scope "global" ranks all layers' weights (or blocks) together, which leaves the large
    first layer of an MLP sparser than the small last one; "layer" prunes each layer to the
    target. structure "block" ranks SIMD-wide groups of a row (`block` consecutive weights of
    one output neuron, input channel innermost) by their mean |w| and prunes whole groups.
    """

    def __init__(self, model: nn.Module, config: PruneConfig, schedule: Schedule) -> None:
        import torch

        check_config(config)
        self.config = config
        self.schedule = schedule
        self.layers = prunable_layers(model)
        if not self.layers:
            raise QloomError("--sparsity: the model has no QuantLinear / QuantConv layer")
        binary = [n for n, m in self.layers if _weight_bits(m) < 2]
        if binary:
            raise QloomError(
                f"--sparsity needs weights of 2 or more bits: {', '.join(binary)} "
                "quantize to bipolar +-1, which has no zero (use e.g. a w2 model)"
            )
        if config.structure == "block":
            bad = [
                f"{n} ({_to_rows(m.weight).shape[1]})"
                for n, m in self.layers
                if _to_rows(m.weight).shape[1] % config.block
            ]
            if bad:
                lengths = [_to_rows(m.weight).shape[1] for _, m in self.layers]
                g = math.gcd(*lengths)
                fits = [d for d in range(1, g + 1) if g % d == 0]
                raise QloomError(
                    f"--prune-block {config.block} does not divide the row length (inputs x "
                    f"kernel) of {', '.join(bad)}; block sizes that divide every layer's "
                    f"rows: {', '.join(map(str, fits))}"
                )
        self.masks = {n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in self.layers}
        self.sparsity = 0.0  # the target the masks were last computed for

    @property
    def unit(self) -> int:
        return self.config.block if self.config.structure == "block" else 1

    def _scores(self, module: nn.Module, mask: torch.Tensor) -> torch.Tensor:
        """Per unit (weight or block) magnitude, -1 where already pruned (ranked first)."""
        import torch

        rows = _to_rows(module.weight.detach().abs())
        keep = _to_rows(mask)
        u = self.unit
        score = rows.reshape(rows.shape[0], -1, u).mean(-1)
        alive = keep.reshape(keep.shape[0], -1, u).any(-1)
        return torch.where(alive, score, torch.full_like(score, -1.0)).flatten()

    def _mask_from_units(self, pruned: torch.Tensor, module: nn.Module) -> torch.Tensor:
        rows = _to_rows(module.weight)
        units = (~pruned).reshape(rows.shape[0], -1, 1).expand(-1, -1, self.unit)
        return _from_rows(units.reshape(rows.shape).contiguous(), module.weight.shape)

    def update(self, sparsity: float) -> None:
        """Grow the masks to SPARSITY (a fraction of weights, rounded to whole units)."""
        import torch

        scores = [self._scores(m, self.masks[n]) for n, m in self.layers]
        if self.config.scope == "global":
            flat = torch.cat(scores)
            k = round(sparsity * flat.numel())
            pruned = torch.zeros(flat.numel(), dtype=torch.bool)
            pruned[torch.argsort(flat, stable=True)[:k]] = True
            parts = torch.split(pruned, [s.numel() for s in scores])
        else:
            parts = []
            for s in scores:
                p = torch.zeros(s.numel(), dtype=torch.bool)
                p[torch.argsort(s, stable=True)[: round(sparsity * s.numel())]] = True
                parts.append(p)
        for (n, m), p in zip(self.layers, parts, strict=True):
            self.masks[n] = self._mask_from_units(p, m) & self.masks[n]
        self.sparsity = sparsity
        self.apply()

    def step(self, step: int) -> bool:
        """Before optimizer step STEP: grow the masks if the schedule asks; True if it did."""
        target = self.schedule.target(step)
        if target > self.sparsity:
            self.update(target)
            return True
        return False

    def apply(self) -> None:
        """Set the pruned latent weights to exactly 0.0 (after every optimizer step)."""
        import torch

        with torch.no_grad():
            for n, m in self.layers:
                m.weight.mul_(self.masks[n])

    def mask_sparsity(self) -> float:
        total = sum(int(v.numel()) for v in self.masks.values())
        return sum(int((~v).sum()) for v in self.masks.values()) / max(total, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"sparsity": self.sparsity, "masks": dict(self.masks)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Masks from a checkpoint (same layers); the weights are re-masked at once."""
        masks = state["masks"]
        if set(masks) != set(self.masks):
            raise QloomError("the checkpoint's pruning masks are for other layers")
        self.masks = {n: masks[n].to(dtype=self.masks[n].dtype) for n in self.masks}
        self.sparsity = float(state["sparsity"])
        self.apply()

    def layer_report(self) -> list[dict[str, Any]]:
        """Per layer: weights, pruned by the mask, zero after quantization (torch side)."""
        import torch

        rows = []
        with torch.no_grad():
            for n, m in self.layers:
                q = m.quant_weight().value
                rows.append(
                    {
                        "layer": n,
                        "weights": int(m.weight.numel()),
                        "pruned": int((~self.masks[n]).sum()),
                        "zero_quantized": int((q == 0).sum()),
                        "pruned_but_nonzero": int(((q != 0) & ~self.masks[n]).sum()),
                    }
                )
        return rows

    def config_record(self) -> dict[str, Any]:
        rec = asdict(self.config)
        rec["schedule"] = self.schedule.describe()
        rec["schedule_kind"] = self.schedule.kind
        rec["window_epochs"] = [self.schedule.first_epoch, self.schedule.last_epoch]
        if self.config.structure != "block":
            rec.pop("block")
        return rec


# --------------------------------------------------------------------------------------------
# The exported model


def quantized_weights(onnx_path: str | Path) -> dict[str, np.ndarray]:
    """The outputs of the exported QONNX's weight Quant nodes, keyed by the weight's
    initializer name (Brevitas names it after the torch parameter, e.g. 'features.1.weight').

    Why qonnx's executor: it is the reference semantics of the file, so the zeros counted
    here are those any QONNX consumer sees, not the torch model's idea of them.
    """
    import onnx
    from onnx import helper, numpy_helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    proto = onnx.load(str(onnx_path))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    quants = [
        n
        for n in proto.graph.node
        if n.op_type in ("Quant", "BipolarQuant") and n.input and n.input[0] in inits
    ]
    # A graph of just these nodes: its inputs are initializers, so no image is needed.
    outputs = [helper.make_tensor_value_info(n.output[0], onnx.TensorProto.FLOAT, None)
               for n in quants]  # fmt: skip
    graph = helper.make_graph(list(quants), "weights", [], outputs, list(proto.graph.initializer))
    model = helper.make_model(graph, opset_imports=list(proto.opset_import))
    model.ir_version = proto.ir_version
    res = execute_onnx(ModelWrapper(model), {})
    return {n.input[0]: np.asarray(res[n.output[0]]) for n in quants}


# --------------------------------------------------------------------------------------------
# BOPs


@dataclass(frozen=True)
class LayerBops:
    """One MatMul / Conv of the integer graph and its bit operations per frame."""

    name: str
    macs: int
    weight_bits: int
    act_bits: int
    weights: int
    nonzero: int

    @property
    def density(self) -> float:
        return self.nonzero / self.weights if self.weights else 1.0

    @property
    def bops(self) -> int:
        """MACs x b_w x b_a x density; exact, as MACs x density = pixels x nonzero weights."""
        return self.macs // max(self.weights, 1) * self.nonzero * self.weight_bits * self.act_bits


def layer_bops(graph: Graph) -> list[LayerBops]:
    """BOPs of every weighted layer of qloom's integer graph (see the module docstring)."""
    from qloom.datatype import DataType
    from qloom.report.layers import layer_rows

    rows = {r.name: r for r in layer_rows(graph)}
    out = []
    for n in graph.nodes:
        if "weights" not in n.attrs:
            continue
        w = np.asarray(n.attrs["weights"])
        xnor = n.op.startswith("Xnor")
        info = graph.tensors.get(n.inputs[0])
        a_bits = 1 if xnor or info is None else info.dtype.bits
        w_bits = 1 if xnor else DataType.for_range(int(w.min()), int(w.max())).bits
        nonzero = w.size if xnor else int(np.count_nonzero(w))
        out.append(LayerBops(n.name, rows[n.name].macs, w_bits, a_bits, int(w.size), nonzero))
    return out


def bops_record(layers: list[LayerBops]) -> dict[str, Any]:
    """BOPs for the training record: the total, the dense total (density 1) and per layer."""
    dense = sum(lb.macs * lb.weight_bits * lb.act_bits for lb in layers)
    return {
        "bops": sum(lb.bops for lb in layers),
        "bops_dense": dense,
        "layers": [{**asdict(lb), "density": lb.density, "bops": lb.bops} for lb in layers],
    }
