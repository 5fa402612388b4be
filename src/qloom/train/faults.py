"""Fault-aware training (FAT, Zahid et al., ITC 2020): faults injected while the network trains.

The faults are those of `qloom.faults` (the model the integer executor and the RTL simulation
use for evaluation), applied to the Brevitas model's quantized values:

  flip    forward hooks on the chosen activation quantizers (QuantIdentity) flip each bit of
          the integer code (value / scale: two's complement of the quantizer's bit width;
          a 1-bit bipolar code is its sign, a flip negates it) with probability RATE, a fresh
          draw per batch from torch's generator (which the trainer seeds per epoch, so a
          resumed run sees the same faults); the default layers are every activation
          quantizer but the first (the input quantizer), as `qloom faults` injects them.
  stuck0  forward hooks on the chosen QuantLinear / QuantConv weight quantizers force each bit
  stuck1  of the quantized weights' integer codes to 0 / 1 with probability RATE, at positions
          drawn once from the seed (a permanent defect, as `qloom faults --kind stuck0|1`).

Gradients pass straight through (value + (faulty - value).detach()): the faults change what
the next layer sees, not the gradient of the quantizer. Only in training mode: evaluation,
export and the per-epoch validation see the fault-free network (the exported QONNX is a normal
model; `qloom faults` measures it under faults).

Layer names are the model's module names (conv_features.3, linear_features.2), which are also
the short names `qloom faults --layers` takes for the exported model's layers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from qloom.errors import QloomError
from qloom.faults import KINDS, check_kind, check_rate


@dataclass(frozen=True)
class FaultConfig:
    """What `qloom train --fault-rate P [--fault-kind K] [--fault-layers A,B]` asked for."""

    rate: float
    kind: str = "flip"
    layers: tuple[str, ...] = ()  # () = the default layers
    seed: int = 0

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "layers": list(self.layers)}


def check_config(cfg: FaultConfig) -> None:
    """QloomError for options that describe no faults (before any data is loaded)."""
    check_rate(cfg.rate, "--fault-rate")
    check_kind(cfg.kind, "--fault-kind")


def _act_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    from brevitas.nn import QuantIdentity

    return [(n, m) for n, m in model.named_modules() if isinstance(m, QuantIdentity)]


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    from qloom.train.prune import prunable_layers

    return prunable_layers(model)


def _to_fields(code: torch.Tensor, bits: int, bipolar: bool) -> torch.Tensor:
    if bipolar:
        return (code > 0).to(torch.int64)
    return torch.bitwise_and(code.to(torch.int64), (1 << bits) - 1)


def _from_fields(fields: torch.Tensor, bits: int, signed: bool, bipolar: bool) -> torch.Tensor:
    if bipolar:
        return 2 * fields - 1
    if signed:
        return torch.where(fields >= 1 << (bits - 1), fields - (1 << bits), fields)
    return fields


def _random_mask(shape: torch.Size, bits: int, rate: float, gen=None) -> torch.Tensor:
    """int64 masks: bit b of each element set with probability RATE."""
    hits = torch.rand((*shape, bits), generator=gen) < rate
    weights = torch.tensor([1 << b for b in range(bits)], dtype=torch.int64)
    return (hits.to(torch.int64) * weights).sum(-1)


class FaultInjector:
    """Hooks that inject CONFIG's faults into MODEL while it trains; `remove()` takes them out."""

    def __init__(self, model: nn.Module, config: FaultConfig) -> None:
        check_config(config)
        self.config = config
        self.handles: list[Any] = []
        self.stuck: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        table = dict(_act_layers(model) if config.kind == "flip" else _weight_layers(model))
        if config.layers:
            unknown = [n for n in config.layers if n not in table]
            if unknown:
                what = "activation quantizers" if config.kind == "flip" else "weighted layers"
                raise QloomError(
                    f"--fault-layers: {', '.join(unknown)} not in the model; its {what}: "
                    f"{', '.join(table)}"
                )
            names = list(config.layers)
        elif config.kind == "flip":
            names = list(table)[1:]  # every activation quantizer but the input's
        else:
            names = list(table)
        if not names:
            raise QloomError(f"--fault-rate: the model has no layer for {config.kind} faults")
        self.layers = names
        for n in names:
            m = table[n]
            if config.kind == "flip":
                self.handles.append(m.register_forward_hook(self._flip_hook))
            else:
                self.handles.append(m.weight_quant.register_forward_hook(self._stuck_hook(n)))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    # -- flips on activations --------------------------------------------------------------
    def _flip_hook(self, module: nn.Module, inputs, output):
        if not module.training or self.config.rate == 0.0:
            return None
        aq = module.act_quant
        value = output.value if hasattr(output, "value") else output
        with torch.no_grad():
            scale = aq.scale().detach()
            bits = int(aq.bit_width())
            signed = bool(aq.is_signed)
            bipolar = bits == 1 and signed
            code = torch.round(value.detach() / scale)
            fields = _to_fields(code, bits, bipolar)
            fields = fields ^ _random_mask(value.shape, bits, self.config.rate)
            faulty = _from_fields(fields, bits, signed, bipolar).to(value.dtype) * scale
        new = value + (faulty - value).detach()
        return output._replace(value=new) if hasattr(output, "_replace") else new

    # -- stuck-at on weights ---------------------------------------------------------------
    def _stuck_hook(self, name: str):
        def hook(module: nn.Module, inputs, output):
            if self.config.rate == 0.0 or not module.training:
                return None
            value = output.value
            with torch.no_grad():
                bits = int(output.bit_width)
                signed = bool(output.signed)
                bipolar = bits == 1 and signed
                scale = output.scale.detach()
                if name not in self.stuck:
                    seed = self.config.seed * 1_000_003 + self.layers.index(name)
                    gen = torch.Generator().manual_seed(seed)
                    self.stuck[name] = (
                        _random_mask(value.shape, bits, self.config.rate, gen),
                        torch.tensor(self.config.kind == "stuck1"),
                    )
                mask, one = self.stuck[name]
                fields = _to_fields(torch.round(value.detach() / scale), bits, bipolar)
                fields = fields | mask if bool(one) else fields & ~mask
                faulty = _from_fields(fields, bits, signed, bipolar).to(value.dtype) * scale
            return output._replace(value=value + (faulty - value).detach())

        return hook


__all__ = ["KINDS", "FaultConfig", "FaultInjector", "check_config"]
