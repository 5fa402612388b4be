"""A zoo of Brevitas models in the shape of FINN's BNN-PYNQ networks (TFC, SFC, LFC, CNV).

Why these: they are the networks FINN's results are published for, so a qloom build can be
compared with FINN on the same topology. Every layer is something a FINN-like flow compiles:
convolutions and linear layers without bias, BatchNorm, a quantized activation between every
pair of layers, max-pooling only after an activation, and a float (scaled) last layer.

Model names are ``<topology>-w<X>a<Y>[-i<Z>]``, X, Y, Z in 1..8 (weight, activation and input
bits), e.g. ``tfc-w1a1``, ``sfc-w2a2``, ``cnv-w1a1``, ``cnv-pad-w2a2``, ``tfc-w4a4``,
``tfc-w1a1-i8``. The input defaults to FINN's choice (activation bits for the FC nets, 8 for
CNV); Fashion-MNIST binarized at 0.5 caps even a float MLP at ~85 %, hence ``-i8``.
1-bit quantizers are bipolar ({-1,+1} times a constant scale; Brevitas exports them as
BipolarQuant); multi-bit ones are narrow-range signed integers with a constant scale of 1
(values k / (2**(b-1) - 1)), as in FINN's brevitas_examples/bnn_pynq.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

with warnings.catch_warnings():
    # Brevitas announces an optional CUDA kernel package on import; irrelevant here.
    warnings.filterwarnings("ignore", message="fast_hadamard_transform", category=UserWarning)
    from brevitas.core.restrict_val import RestrictValueType
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
    from brevitas.quant.base import IntQuant, NarrowIntQuant, PerTensorConstScaling2bit
    from brevitas.quant.binary import (
        SignedBinaryActPerTensorConst,
        SignedBinaryWeightPerTensorConst,
    )
    from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver

# --------------------------------------------------------------------------------------------
# Quantizers (Brevitas injectors). Constant scales keep the exported graph free of learned
# scale parameters: BN absorbs the scaling, and the streamliner folds everything into
# integer thresholds.


class BinaryWeightQuant(SignedBinaryWeightPerTensorConst):
    """Bipolar weights {-1,+1}; FINN's scale 1.0 (Brevitas' default is 0.1)."""

    scaling_const = 1.0


class BinaryActQuant(SignedBinaryActPerTensorConst):
    """Bipolar activations {-1,+1} (sign), exported as BipolarQuant."""

    min_val = -1.0
    max_val = 1.0


class IntWeightQuant(NarrowIntQuant, PerTensorConstScaling2bit, WeightQuantSolver):
    """Narrow signed b-bit weights in [-1, 1] (step 1/(2**(b-1)-1)); set bit_width on the layer."""

    scaling_const = 1.0


class IntActQuant(NarrowIntQuant, PerTensorConstScaling2bit, ActQuantSolver):
    """Narrow signed b-bit activations in [-1, 1] (a quantized hardtanh), as in FINN's CNV/TFC."""

    min_val = -1.0
    max_val = 1.0


class Input8bitQuant(IntQuant, PerTensorConstScaling2bit, ActQuantSolver):
    """FINN's CNV input quantizer: Q1.7 fixed point, 8 bits, scale 2**-7."""

    bit_width = 8
    min_val = -1.0
    max_val = 1.0 - 2.0**-7
    restrict_scaling_type = RestrictValueType.POWER_OF_TWO


def weight_quant_kwargs(bits: int) -> dict:
    """Keyword arguments for a QuantLinear/QuantConv2d with BITS-bit weights."""
    if bits == 1:
        return {"weight_quant": BinaryWeightQuant}
    return {"weight_quant": IntWeightQuant, "weight_bit_width": bits}


def act_quant(bits: int) -> QuantIdentity:
    """A quantized activation with BITS bits (1 = sign)."""
    if bits == 1:
        return QuantIdentity(act_quant=BinaryActQuant, return_quant_tensor=False)
    return QuantIdentity(act_quant=IntActQuant, bit_width=bits, return_quant_tensor=False)


class TensorNorm(nn.Module):
    """A single learned affine (x - mean) / std * w + b over the whole tensor (FINN's TensorNorm).

    Why not BatchNorm1d: per-class affines would change the argmax, a per-tensor one with
    w > 0 does not, so the accelerator can drop it and output the integer accumulators.
    The forward is FINN's, so the export has the same Sub/Pow/Div/Mul/Add pattern as the
    QONNX model zoo's TFC models.
    """

    def __init__(self, eps: float = 1e-4, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("running_mean", torch.zeros(1))
        self.register_buffer("running_var", torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean()
            unbias_var = x.var(unbiased=True)
            biased_var = x.var(unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * unbias_var)
            inv_std = 1 / (biased_var + self.eps).pow(0.5)
            return (x - mean) * inv_std * self.weight + self.bias
        return ((x - self.running_mean) / (self.running_var + self.eps).pow(0.5)) * self.weight + (
            self.bias
        )


# --------------------------------------------------------------------------------------------
# Topologies


@dataclass(frozen=True)
class Topology:
    """A network shape; bit widths come from the model name."""

    kind: str  # "fc", "cnv", "resnet" or "alexnet"
    description: str
    hidden: tuple[int, ...] = ()  # FC: hidden layer widths
    conv: tuple[tuple[int, bool], ...] = ()  # CNV: (out channels, max-pool after) per conv
    fc: tuple[int, ...] = ()  # CNV: widths of the FC layers before the classifier
    padding: int = 0
    blocks: tuple[tuple[int, int], ...] = ()  # ResNet: (out channels, stride) per basic block
    stem: int = 0  # ResNet: channels of the first conv
    stem_kernel: int = 3  # ResNet: the first conv's kernel (padding kernel // 2) ...
    stem_stride: int = 1  # ... and stride
    stem_pool: bool = False  # ResNet: a 3x3 stride-2 max pool (padding 1) after the stem
    # AlexNet: (out channels, kernel, stride, padding, 3x3 stride-2 max pool after) per conv;
    # `fc` gives the hidden FC widths
    convs: tuple[tuple[int, int, int, int, bool], ...] = ()
    in_size: int = 32  # `qloom export`'s default input size (square images) ...
    classes: int = 10  # ... and number of classes
    dropout: float = 0.0
    defaults: dict = field(default_factory=dict)  # training defaults (epochs, lr, batch)


_CNV = ((64, False), (64, True), (128, False), (128, True), (256, False), (256, False))
_CNV_SMALL = ((16, False), (16, True), (32, False), (32, True), (64, False), (64, False))


def _alexnet_convs(c1: int, c2: int, c3: int, c4: int, c5: int) -> tuple:
    """AlexNet's five convolutions (11x11/4 pad 2, 5x5 pad 2, three 3x3 pad 1) with the
    overlapping 3x3 stride-2 max pools after the first, second and fifth."""
    return (
        (c1, 11, 4, 2, True),
        (c2, 5, 1, 2, True),
        (c3, 3, 1, 1, False),
        (c4, 3, 1, 1, False),
        (c5, 3, 1, 1, True),
    )


TOPOLOGIES: dict[str, Topology] = {
    "tfc": Topology("fc", "FINN TFC: 3 x 64 neurons", hidden=(64, 64, 64)),
    "sfc": Topology("fc", "FINN SFC: 3 x 256 neurons", hidden=(256, 256, 256), dropout=0.2),
    "lfc": Topology("fc", "FINN LFC: 3 x 1024 neurons", hidden=(1024, 1024, 1024), dropout=0.2),
    "jet-mlp": Topology(
        "fc",
        "the hls4ml jet-tagging MLP (Duarte et al., Hawks et al.'s QAP study): 64, 32, 32 neurons",
        hidden=(64, 32, 32),
    ),
    "cnv": Topology(
        "cnv",
        "FINN CNV: 6 conv 3x3 (64,64,128,128,256,256), no padding, 32x32 inputs; FC 512,512",
        conv=_CNV,
        fc=(512, 512),
    ),
    "cnv-pad": Topology(
        "cnv",
        "CNV with padding=1 (fits 28x28 inputs)",
        conv=_CNV,
        fc=(512, 512),
        padding=1,
    ),
    "cnv-small": Topology(
        "cnv",
        "CNV at quarter width (16,16,32,32,64,64; FC 128,128), no padding",
        conv=_CNV_SMALL,
        fc=(128, 128),
    ),
    "cnv-small-pad": Topology(
        "cnv",
        "CNV at quarter width with padding=1 (fits 28x28; trains on a CPU in minutes)",
        conv=_CNV_SMALL,
        fc=(128, 128),
        padding=1,
    ),
    "resnet8": Topology(
        "resnet",
        "ResNet-8 (CIFAR-style): conv 16, basic blocks 16, 32/2, 64/2, global average pool",
        stem=16,
        blocks=((16, 1), (32, 2), (64, 2)),
    ),
    "resnet8-small": Topology(
        "resnet",
        "ResNet-8 at quarter width (4; blocks 4, 8/2, 16/2): a residual net small enough to "
        "simulate in seconds",
        stem=4,
        blocks=((4, 1), (8, 2), (16, 2)),
    ),
    "resnet20": Topology(
        "resnet",
        "ResNet-20 (CIFAR-style, He et al.): conv 16, 3 basic blocks each of 16, 32/2, 64/2, "
        "global average pool",
        stem=16,
        blocks=((16, 1),) * 3 + ((32, 2),) + ((32, 1),) * 2 + ((64, 2),) + ((64, 1),) * 2,
    ),
    "resnet18": Topology(
        "resnet",
        "ResNet-18 (ImageNet-style, 224x224, 1000 classes): conv 7x7/2 64, max pool 3x3/2, "
        "2 basic blocks each of 64, 128/2, 256/2, 512/2, global average pool",
        stem=64,
        stem_kernel=7,
        stem_stride=2,
        stem_pool=True,
        blocks=((64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)),
        in_size=224,
        classes=1000,
    ),
    "alexnet": Topology(
        "alexnet",
        "AlexNet (Krizhevsky et al.; the one-tower shape of Hubara et al.'s QNN and Baskin et "
        "al.'s streaming AlexNet): conv 11x11/4 96, pool, 5x5 256, pool, 3x3 384, 384, 256, "
        "pool (3x3/2 max pools), FC 4096, 4096, 1000; 224x224 (inputs from 63x63 build)",
        convs=_alexnet_convs(96, 256, 384, 384, 256),
        fc=(4096, 4096),
        in_size=224,
        classes=1000,
        dropout=0.5,
    ),
    "alexnet-small": Topology(
        "alexnet",
        "AlexNet at quarter width (conv 24, 64, 96, 96, 64; FC 1024, 1024): the same layer "
        "shapes for quick checks",
        convs=_alexnet_convs(24, 64, 96, 96, 64),
        fc=(1024, 1024),
        in_size=224,
        classes=1000,
        dropout=0.5,
    ),
}

_PRECISIONS = ("w1a1", "w1a2", "w2a2")
_NAME_RE = re.compile(r"^(?P<topo>[a-z][a-z0-9-]*?)-w(?P<w>[1-8])a(?P<a>[1-8])(?:-i(?P<i>[1-8]))?$")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed zoo name."""

    name: str
    topology: str
    weight_bits: int
    act_bits: int
    in_bits: int | None = None  # explicit input bits (name suffix -i<Z>)

    @property
    def input_bits(self) -> int:
        """FINN's choice unless the name says otherwise: CNV reads 8-bit pixels, the FC nets
        quantize the input like activations (binarized for a1, which caps Fashion-MNIST)."""
        if self.in_bits is not None:
            return self.in_bits
        return 8 if TOPOLOGIES[self.topology].kind != "fc" else self.act_bits


def parse_model_name(name: str) -> ModelSpec:
    """'tfc-w1a1' -> ModelSpec('tfc-w1a1', 'tfc', 1, 1); ValueError naming what works.

    An optional suffix -i<Z> sets the input quantizer's bits (tfc-w1a1-i8: 8-bit input).
    """
    m = _NAME_RE.match(name.strip().lower())
    if not m or m["topo"] not in TOPOLOGIES:
        raise ValueError(
            f"unknown model {name!r}; use <topology>-w<X>a<Y>[-i<Z>] with topology in "
            f"{', '.join(TOPOLOGIES)} and X, Y, Z in 1..8 bits for weights, activations and "
            "input (e.g. tfc-w1a1, cnv-pad-w2a2, tfc-w1a1-i8)"
        )
    in_bits = int(m["i"]) if m["i"] else None
    return ModelSpec(m.group(0), m["topo"], int(m["w"]), int(m["a"]), in_bits)


def logicnets_models() -> list[str]:
    """The LogicNets zoo (qloom.train.logicnets): jsc-s/m/l and nid-s/m/l (published shapes)
    and img28-tt (28x28 images)."""
    from qloom.train.logicnets import LOGICNETS

    return list(LOGICNETS)


def list_models() -> list[str]:
    """The named zoo: every topology at w1a1, w1a2 and w2a2 (any wXaY also builds)."""
    return [f"{t}-{p}" for t in TOPOLOGIES for p in _PRECISIONS]


def _init_weights(module: nn.Module) -> None:
    # FINN initializes uniformly in the clipping range [-1, 1].
    for m in module.modules():
        if isinstance(m, QuantConv2d | QuantLinear):
            nn.init.uniform_(m.weight.data, -1, 1)


class _ClipMixin:
    def _zoo_fields(self, spec: ModelSpec, in_channels: int, in_size: int) -> Topology:
        """What every zoo net records (its name's spec, its input shape); its topology."""
        self.spec = spec
        self.in_shape = (in_channels, in_size, in_size)
        return TOPOLOGIES[spec.topology]

    def clip_weights(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        """Keep latent weights in the quantizer's range (called after each optimizer step)."""
        for m in self.modules():  # type: ignore[attr-defined]
            if isinstance(m, QuantConv2d | QuantLinear):
                m.weight.data.clamp_(min_val, max_val)


class QuantFC(_ClipMixin, nn.Module):
    """FINN's FC net: input quant, (Linear -> BN -> act) per hidden layer, Linear, TensorNorm."""

    def __init__(
        self,
        spec: ModelSpec,
        in_channels: int = 1,
        in_size: int = 28,
        num_classes: int = 10,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        topo = self._zoo_fields(spec, in_channels, in_size)
        p = topo.dropout if dropout is None else dropout
        self.features = nn.ModuleList()
        self.features.append(input_quant(spec.input_bits))
        if p > 0:
            self.features.append(nn.Dropout(p))
        n_in = in_channels * in_size * in_size
        for n_out in topo.hidden:
            self.features.append(
                QuantLinear(n_in, n_out, bias=False, **weight_quant_kwargs(spec.weight_bits))
            )
            self.features.append(nn.BatchNorm1d(n_out))
            self.features.append(act_quant(spec.act_bits))
            if p > 0:
                self.features.append(nn.Dropout(p))
            n_in = n_out
        self.features.append(
            QuantLinear(n_in, num_classes, bias=False, **weight_quant_kwargs(spec.weight_bits))
        )
        self.features.append(TensorNorm())
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.shape[0], -1)
        x = 2.0 * x - torch.tensor([1.0], device=x.device)
        for mod in self.features:
            x = mod(x)
        return x


def cnv_output_size(topo: Topology, in_size: int) -> int:
    """Spatial size after the conv/pool stack (ValueError when the input is too small)."""
    size = in_size
    for _, pool in topo.conv:
        size = size + 2 * topo.padding - 2
        if size <= 0:
            break
        if pool:
            size //= 2
    if size <= 0:
        raise ValueError(
            f"input {in_size}x{in_size} is too small for this CNV without padding (needs 32x32);"
            " use the -pad variant (e.g. cnv-pad-w1a1) for 28x28 inputs"
        )
    return size


class QuantCNV(_ClipMixin, nn.Module):
    """FINN's CNV: input quant, conv3x3 -> BN -> act (-> pool), FC -> BN -> act, FC, TensorNorm."""

    def __init__(
        self,
        spec: ModelSpec,
        in_channels: int = 3,
        in_size: int = 32,
        num_classes: int = 10,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        topo = self._zoo_fields(spec, in_channels, in_size)
        out_size = cnv_output_size(topo, in_size)
        self.conv_features = nn.ModuleList([input_quant(spec.input_bits)])
        ch = in_channels
        for out_ch, pool in topo.conv:
            self.conv_features.append(
                QuantConv2d(
                    ch,
                    out_ch,
                    kernel_size=3,
                    padding=topo.padding,
                    bias=False,
                    **weight_quant_kwargs(spec.weight_bits),
                )
            )
            self.conv_features.append(nn.BatchNorm2d(out_ch, eps=1e-4))
            self.conv_features.append(act_quant(spec.act_bits))
            if pool:
                self.conv_features.append(nn.MaxPool2d(kernel_size=2))
            ch = out_ch
        self.linear_features = nn.ModuleList()
        n_in = ch * out_size * out_size
        p = topo.dropout if dropout is None else dropout
        for n_out in topo.fc:
            self.linear_features.append(
                QuantLinear(n_in, n_out, bias=False, **weight_quant_kwargs(spec.weight_bits))
            )
            self.linear_features.append(nn.BatchNorm1d(n_out, eps=1e-4))
            self.linear_features.append(act_quant(spec.act_bits))
            if p > 0:
                self.linear_features.append(nn.Dropout(p))
            n_in = n_out
        self.linear_features.append(
            QuantLinear(n_in, num_classes, bias=False, **weight_quant_kwargs(spec.weight_bits))
        )
        self.linear_features.append(TensorNorm())
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = 2.0 * x - torch.tensor([1.0], device=x.device)
        for mod in self.conv_features:
            x = mod(x)
        x = x.view(x.shape[0], -1)
        for mod in self.linear_features:
            x = mod(x)
        return x


def alexnet_output_size(topo: Topology, in_size: int) -> int:
    """Spatial size after AlexNet's conv/pool stack (ValueError when the input is too small)."""
    size = in_size
    for _, k, stride, pad, pool in topo.convs:
        size = (size + 2 * pad - k) // stride + 1
        if pool and size >= 3:
            size = (size - 3) // 2 + 1
        elif pool or size < 1:
            size = 0
            break
    if size < 1:
        raise ValueError(
            f"input {in_size}x{in_size} is too small for AlexNet (its 11x11 stride-4 stem and "
            "three 3x3 stride-2 pools need at least 63x63; 224x224 is the default)"
        )
    return size


class QuantAlexNet(_ClipMixin, nn.Module):
    """AlexNet in FINN's layer order: input quant, (conv -> BN -> act (-> 3x3/2 max pool)) x 5,
    (FC -> BN -> act -> dropout) x 2, FC, TensorNorm. No biases and no local response
    normalisation (BN takes their place, as in Hubara et al.'s quantized AlexNet); the pools
    follow the activation, so the max is taken over quantized values (one of them).

    The layers carry Caffe's names (conv1 .. conv5, pool1/2/5, fc6 .. fc8) as direct
    attributes: the exported tensor names, and the RTL wires named after them, stay short."""

    def __init__(
        self,
        spec: ModelSpec,
        in_channels: int = 3,
        in_size: int = 224,
        num_classes: int = 1000,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        topo = self._zoo_fields(spec, in_channels, in_size)
        out_size = alexnet_output_size(topo, in_size)
        w = weight_quant_kwargs(spec.weight_bits)
        self.order: list[str] = []  # forward order of the layers below

        def add(name: str, module: nn.Module) -> None:
            self.add_module(name, module)
            self.order.append(name)

        add("inp", input_quant(spec.input_bits))
        ch = in_channels
        for i, (out_ch, k, stride, pad, pool) in enumerate(topo.convs, 1):
            add(f"conv{i}", QuantConv2d(ch, out_ch, k, stride, padding=pad, bias=False, **w))
            add(f"bn{i}", nn.BatchNorm2d(out_ch, eps=1e-4))
            add(f"act{i}", act_quant(spec.act_bits))
            if pool:
                add(f"pool{i}", nn.MaxPool2d(kernel_size=3, stride=2))
            ch = out_ch
        add("flat", nn.Flatten())
        p = topo.dropout if dropout is None else dropout
        n_in = ch * out_size * out_size
        first_fc = len(topo.convs) + 1
        for i, n_out in enumerate(topo.fc, first_fc):
            add(f"fc{i}", QuantLinear(n_in, n_out, bias=False, **w))
            add(f"bn{i}", nn.BatchNorm1d(n_out, eps=1e-4))
            add(f"act{i}", act_quant(spec.act_bits))
            if p > 0:
                add(f"drop{i}", nn.Dropout(p))
            n_in = n_out
        add(f"fc{first_fc + len(topo.fc)}", QuantLinear(n_in, num_classes, bias=False, **w))
        add("norm", TensorNorm())
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = 2.0 * x - torch.tensor([1.0], device=x.device)
        for name in self.order:
            x = getattr(self, name)(x)
        return x


class _BasicBlock(nn.Module):
    """conv3x3(stride) -> BN -> act -> conv3x3 -> BN, plus the shortcut (the input, or a 1x1
    stride-s conv -> BN where the shape changes); both branches are quantized by quantizers of
    one scale before the Add (so the hardware adds integers), then the block's activation."""

    def __init__(self, cin: int, cout: int, stride: int, spec: ModelSpec) -> None:
        super().__init__()
        w = weight_quant_kwargs(spec.weight_bits)
        self.conv1 = QuantConv2d(cin, cout, 3, stride=stride, padding=1, bias=False, **w)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-4)
        self.act1 = act_quant(spec.act_bits)
        self.conv2 = QuantConv2d(cout, cout, 3, padding=1, bias=False, **w)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-4)
        self.q_main = act_quant(spec.act_bits)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                QuantConv2d(cin, cout, 1, stride=stride, bias=False, **w),
                nn.BatchNorm2d(cout, eps=1e-4),
                act_quant(spec.act_bits),
            )
        self.act_out = act_quant(spec.act_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.q_main(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        shortcut = x if self.down is None else self.down(x)
        return self.act_out(y + shortcut)


class QuantResNet(_ClipMixin, nn.Module):
    """A ResNet: input quant, the stem conv -> BN -> act (CIFAR-style: 3x3 stride 1;
    ImageNet-style: 7x7 stride 2, then a 3x3 stride-2 max pool with padding 1), basic blocks,
    global average pool, a quantized pooled vector, the classifier and TensorNorm."""

    def __init__(
        self,
        spec: ModelSpec,
        in_channels: int = 3,
        in_size: int = 32,
        num_classes: int = 10,
        dropout: float | None = None,
    ) -> None:
        super().__init__()
        topo = self._zoo_fields(spec, in_channels, in_size)
        w = weight_quant_kwargs(spec.weight_bits)
        self.inp = input_quant(spec.input_bits)
        k, stride = topo.stem_kernel, topo.stem_stride
        stem = [
            QuantConv2d(in_channels, topo.stem, k, stride, padding=k // 2, bias=False, **w),
            nn.BatchNorm2d(topo.stem, eps=1e-4),
            act_quant(spec.act_bits),
        ]
        if topo.stem_pool:  # on quantized values: the max of quantized values is one of them
            stem.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem)
        blocks, ch = [], topo.stem
        for cout, stride in topo.blocks:
            blocks.append(_BasicBlock(ch, cout, stride, spec))
            ch = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.q_pool = act_quant(max(spec.act_bits, 2))
        self.fc = QuantLinear(ch, num_classes, bias=False, **w)
        self.norm = TensorNorm()
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(2.0 * x - torch.tensor([1.0], device=x.device))
        x = self.q_pool(self.pool(self.blocks(self.stem(x))))
        return self.norm(self.fc(torch.flatten(x, 1)))


def input_quant(bits: int) -> QuantIdentity:
    """The input quantizer: 8 bits is FINN CNV's Q1.7 fixed point (every pixel/255*2-1 to
    within 2**-7), fewer bits quantize like an activation of that width."""
    if bits == 8:
        return QuantIdentity(act_quant=Input8bitQuant, return_quant_tensor=False)
    return act_quant(bits)


def build_model(
    name: str,
    in_channels: int = 1,
    in_size: int = 28,
    num_classes: int = 10,
    dropout: float | None = None,
) -> nn.Module:
    """Build zoo model NAME for (in_channels, in_size, in_size) inputs in [0, 1].

    The model maps its input to [-1, 1] itself (x * 2 - 1), as FINN's do, so it is trained,
    exported and run on pixel / 255.
    """
    from qloom.train.logicnets import build_logicnets, is_logicnets

    if is_logicnets(name):  # LogicNets' fixed shapes: the image arguments do not apply
        return build_logicnets(name)
    spec = parse_model_name(name)
    topo = TOPOLOGIES[spec.topology]
    kinds = {"fc": QuantFC, "cnv": QuantCNV, "resnet": QuantResNet, "alexnet": QuantAlexNet}
    cls = kinds[topo.kind]
    return cls(spec, in_channels, in_size, num_classes, dropout)


def count_parameters(model: nn.Module) -> int:
    """Number of weights in the model (for reports)."""
    return sum(math.prod(p.shape) for p in model.parameters())
