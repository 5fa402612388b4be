"""LogicNets models (Umuroglu et al., FPL 2020) in Brevitas, trained for truth-table hardware.

Why a separate family: a LogicNets layer is built so that every neuron becomes one small truth
table (qloom.dataflow.truthtable). Each output neuron reads exactly F randomly chosen inputs
(a fixed mask, drawn once per layer from the model's seed), so its table has F x (input bits)
address bits, and every layer ends in a low-bit quantizer (the table's output). The mask is
applied to the weights in every forward pass (in place, so the exported QONNX holds exact
zeros and every trained or untrained export has at most F nonzero weights per neuron).

Shapes are LogicNets' published configurations (Xilinx/logicnets, examples/jet_substructure
and examples/cybersecurity): ``jsc-s``, ``jsc-m``, ``jsc-l`` (16 jet features, 5 classes),
``nid-s``, ``nid-m``, ``nid-l`` (593 binarized UNSW-NB15 features, one output: attack if > 0).
A layer is (QuantLinear with a fixed fan-in mask, 8-bit per-tensor weights, no bias) ->
BatchNorm1d -> quantizer: unsigned (ReLU) in hidden layers, signed in the last, as in LogicNets.
The input is quantized to the input bits by a signed quantizer (bipolar at 1 bit). The model
reads features standardized on the training set (`Standardizer`); LogicNets' input BatchNorm is
that affine map, kept on the host so the hardware input is the quantizer's integer.

Training (``qloom train --model jsc-s --dataset wine``) reads a tabular set through
qloom.data.tabular (scikit-learn's bundled digits / breast-cancer / wine, or the jet and
UNSW-NB15 files with --data-dir FILE); the model's input and output widths follow the data set.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="fast_hadamard_transform", category=UserWarning)
    from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import (
        Int8ActPerTensorFloat,
        Int8WeightPerTensorFloat,
        Uint8ActPerTensorFloat,
    )

    from qloom.train.zoo import BinaryActQuant

WEIGHT_BITS = 8  # the tables absorb any weight precision; 8 bits keeps training close to float


@dataclass(frozen=True)
class LogicNetsSpec:
    """A LogicNets configuration: widths and (input, hidden, output) bits and fan-ins."""

    name: str
    in_features: int
    hidden: tuple[int, ...]
    out_features: int
    input_bits: int
    hidden_bits: int
    output_bits: int
    input_fanin: int
    hidden_fanin: int
    output_fanin: int
    description: str
    #: (C, H, W) for an image model: it reads pixel / 255 in [0, 1] (as the other zoo models,
    #: mapped to 2x - 1 before the input quantizer) from an image set; None: tabular features
    image: tuple[int, int, int] | None = None

    @property
    def default_dataset(self) -> str:
        return "fashion-mnist" if self.image is not None else "wine"

    def layer_fanins(self) -> list[int]:
        """Fan-in of each layer: the first reads the input, the last writes the output."""
        n = len(self.hidden) + 1
        return [self.input_fanin] + [self.hidden_fanin] * (n - 2) + [self.output_fanin]

    def layer_in_bits(self) -> list[int]:
        """Bits of each layer's input (its table address bits are fan-in x these)."""
        return [self.input_bits] + [self.hidden_bits] * len(self.hidden)

    def max_table_bits(self) -> int:
        """The widest table: the max_bits a truth_table folding entry needs."""
        return max(f * b for f, b in zip(self.layer_fanins(), self.layer_in_bits(), strict=True))


# Xilinx/logicnets examples/jet_substructure/train.py and examples/cybersecurity/train.py
# (configs "jsc-s", "jsc-m", "jsc-l", "nid-s", "nid-m", "nid-l").
LOGICNETS: dict[str, LogicNetsSpec] = {
    "jsc-s": LogicNetsSpec(
        "jsc-s", 16, (64, 32, 32, 32), 5, 2, 2, 2, 3, 3, 3, "LogicNets JSC-S (2 bit, fan-in 3)"
    ),
    "jsc-m": LogicNetsSpec(
        "jsc-m", 16, (64, 32, 32, 32), 5, 3, 3, 3, 4, 4, 4, "LogicNets JSC-M (3 bit, fan-in 4)"
    ),
    "jsc-l": LogicNetsSpec(
        "jsc-l",
        16,
        (32, 64, 192, 192, 16),
        5,
        4,
        3,
        7,
        3,
        4,
        5,
        "LogicNets JSC-L (4/3/7 bit, fan-in 3/4/5)",
    ),
    "nid-s": LogicNetsSpec(
        "nid-s", 593, (593, 100), 1, 1, 2, 2, 7, 7, 7, "LogicNets NID-S (1/2/2 bit, fan-in 7)"
    ),
    "nid-m": LogicNetsSpec(
        "nid-m",
        593,
        (593, 256, 128, 128),
        1,
        1,
        2,
        2,
        7,
        7,
        7,
        "LogicNets NID-M (1/2/2 bit, fan-in 7)",
    ),
    "nid-l": LogicNetsSpec(
        "nid-l",
        593,
        (593, 100, 100, 100),
        1,
        1,
        3,
        3,
        7,
        5,
        5,
        "LogicNets NID-L (1/3/3 bit, fan-in 7/5/5)",
    ),
    # Not a published LogicNets configuration: a LogicNets-style classifier of 28x28 images
    # (Fashion-MNIST, MNIST) for qloom's truth-table flow. Pixels quantized to 2 bits on the
    # host (signed, of 2x - 1), every neuron a 12-bit table (fan-in 6 x 2 bits), and an 8-bit
    # output layer: 2-bit outputs tie on the argmax (jsc-s on digits), 8 bits leave ~1 % ties.
    "img28-tt": LogicNetsSpec(
        "img28-tt",
        784,
        (256, 100),
        10,
        2,
        2,
        8,
        6,
        6,
        6,
        "LogicNets-style 28x28 image MLP 784-256-100-10 (2/2/8 bit, fan-in 6)",
        image=(1, 28, 28),
    ),
}


def is_logicnets(name: str) -> bool:
    """Whether NAME is a LogicNets zoo model (jsc-s, nid-m, ...)."""
    return name.strip().lower() in LOGICNETS


def random_fanin_mask(n_in: int, n_out: int, fanin: int, gen: torch.Generator) -> torch.Tensor:
    """(n_out, n_in) 0/1 mask whose every row has exactly min(fanin, n_in) ones at random
    columns (LogicNets' RandomFixedSparsityMask2D)."""
    k = min(fanin, n_in)
    mask = torch.zeros(n_out, n_in)
    for r in range(n_out):
        mask[r, torch.randperm(n_in, generator=gen)[:k]] = 1.0
    return mask


class SparseQuantLinear(QuantLinear):
    """A QuantLinear whose every output neuron reads exactly `fanin` inputs.

    Why in place: writing the masked weights back into the parameter before each forward keeps
    the forward masked (gradients reach only kept weights through the loss) and makes the
    parameter itself sparse, so Brevitas' export, qonnx and qloom all see exact zeros without a
    mask-aware exporter. The masked entries are rewritten only when an optimizer step moved
    them, so two forwards before one backward stay legal.
    """

    def __init__(self, n_in: int, n_out: int, fanin: int, gen: torch.Generator) -> None:
        super().__init__(
            n_in,
            n_out,
            bias=False,
            weight_quant=Int8WeightPerTensorFloat,
            weight_bit_width=WEIGHT_BITS,
        )
        self.fanin = min(fanin, n_in)
        self.register_buffer("mask", random_fanin_mask(n_in, n_out, fanin, gen))
        # Magnitudes away from 0: a kept weight must not quantize to 0 (exactly F nonzeros).
        bound = 1.0 / math.sqrt(self.fanin)
        mag = 0.3 + 0.7 * torch.rand(n_out, n_in, generator=gen)
        sign = torch.where(torch.rand(n_out, n_in, generator=gen) < 0.5, -1.0, 1.0)
        with torch.no_grad():
            self.weight.copy_(bound * mag * sign * self.mask)

    def apply_mask(self) -> None:
        """Zero the masked weights (a no-op when they already are)."""
        with torch.no_grad():
            if bool((self.weight[self.mask == 0] != 0).any()):
                self.weight.mul_(self.mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        self.apply_mask()
        return super().forward(x)


def _input_quant(bits: int) -> nn.Module:
    """Signed input quantizer; 1 bit is the sign (bipolar), as Brevitas exports 1-bit quants."""
    if bits == 1:
        return QuantIdentity(act_quant=BinaryActQuant, return_quant_tensor=False)
    return QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=bits, return_quant_tensor=False)


class LogicNetsModel(nn.Module):
    """Input quantizer, then per layer SparseQuantLinear -> BatchNorm1d -> quantizer
    (unsigned hidden, signed output). Every layer is a truth table in qloom."""

    def __init__(
        self,
        spec: LogicNetsSpec,
        in_features: int | None = None,
        out_features: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.spec = spec
        n_in = spec.in_features if in_features is None else in_features
        n_out = spec.out_features if out_features is None else out_features
        if spec.image is not None and in_features is None:
            self.in_shape: tuple[int, ...] = spec.image
            n_in = math.prod(spec.image)
        else:
            self.in_shape = (n_in,)
        self.image = spec.image is not None
        self.out_features = n_out
        gen = torch.Generator().manual_seed(seed)
        widths = [n_in, *spec.hidden, n_out]
        layers: list[nn.Module] = [_input_quant(spec.input_bits)]
        fanins = spec.layer_fanins()
        for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False)):
            layers.append(SparseQuantLinear(a, b, fanins[i], gen))
            layers.append(nn.BatchNorm1d(b))
            if i < len(widths) - 2:
                layers.append(
                    QuantReLU(
                        act_quant=Uint8ActPerTensorFloat,
                        bit_width=spec.hidden_bits,
                        return_quant_tensor=False,
                    )
                )
            else:
                layers.append(
                    QuantIdentity(
                        act_quant=Int8ActPerTensorFloat,
                        bit_width=spec.output_bits,
                        return_quant_tensor=False,
                    )
                )
        self.layers = nn.Sequential(*layers)

    def sparse_layers(self) -> list[SparseQuantLinear]:
        return [m for m in self.modules() if isinstance(m, SparseQuantLinear)]

    def clip_weights(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        """The zoo's training hook; LogicNets weights are float-scaled, so only the mask."""
        for m in self.sparse_layers():
            m.apply_mask()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        if self.image:  # pixel / 255 in [0, 1] to [-1, 1], as the zoo's FINN-style models
            x = 2.0 * x - torch.tensor([1.0], device=x.device)
        return self.layers(x)


def build_logicnets(
    name: str, in_features: int | None = None, out_features: int | None = None, seed: int = 0
) -> LogicNetsModel:
    """LogicNets model NAME (masks from SEED); widths default to the published ones."""
    key = name.strip().lower()
    if key not in LOGICNETS:
        raise ValueError(f"unknown LogicNets model {name!r}; use {', '.join(LOGICNETS)}")
    return LogicNetsModel(LOGICNETS[key], in_features, out_features, seed)


def _bn_from_batch(model: nn.Module, x: torch.Tensor) -> None:
    """Batch-norm statistics (and activation scales) from one batch, as the other zoo models'
    untrained exports do."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


def export_untrained(name: str, path: str | Path, seed: int = 0) -> Path:
    """LogicNets model NAME, untrained (random masks and weights from SEED, batch-norm
    statistics from 256 standard-normal inputs, i.e. standardized features, or for an image
    model 256 uniform images in [0, 1]), as QONNX."""
    from qloom.train.export import export_qonnx

    torch.manual_seed(seed)
    model = build_logicnets(name, seed=seed)
    batch = torch.rand if model.image else torch.randn
    _bn_from_batch(model, batch(256, *model.in_shape))
    return export_qonnx(model, path, (1, *model.in_shape), metadata={"qloom.model": name})


# -- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standardizer:
    """Per-feature (x - mean) / std from the training split (LogicNets' input BatchNorm, kept
    on the host: the exported model reads standardized features)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


def load_tabular_split(
    dataset: str, data_dir: str | Path | None = None, seed: int = 0, test_fraction: float = 0.25
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(x_train, y_train, x_test, y_test, classes), features standardized on the training split.

    digits, breast-cancer and wine come from scikit-learn's wheel; jets / unsw-nb15 read
    DATA_DIR (a file in the formats of qloom.data.tabular). Sets without a published split
    are split with a seeded, class-stratified TEST_FRACTION.
    """
    from qloom.data import tabular
    from qloom.errors import DatasetError

    key = dataset.strip().lower()
    if key in tabular.SKLEARN_SETS:
        table = tabular.load_sklearn(key)
    elif key in ("jets", "jsc"):
        if data_dir is None:
            raise DatasetError("jets: give the ARFF/CSV file with --data-dir FILE")
        table = tabular.load_jets(data_dir)
    elif key in ("unsw-nb15", "nid"):
        if data_dir is None:
            raise DatasetError("unsw-nb15: give the .npz or CSV file with --data-dir FILE")
        if str(data_dir).endswith(".npz"):
            tr = tabular.load_unsw_nb15(data_dir, "train")
            te = tabular.load_unsw_nb15(data_dir, "test")
            s = Standardizer.fit(tr.x)
            return s(tr.x), tr.y, s(te.x), te.y, tr.classes
        table = tabular.load_unsw_nb15(data_dir)
    else:
        names = ", ".join([*tabular.SKLEARN_SETS, "jets", "unsw-nb15"])
        raise DatasetError(
            f"unknown tabular data set {dataset!r} for a LogicNets model; use {names}"
        )
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(
        table.x, table.y, test_size=test_fraction, random_state=seed, stratify=table.y
    )
    s = Standardizer.fit(xtr)
    return s(xtr), ytr, s(xte), yte, table.classes


def load_image_split(
    dataset: str, data_dir: str | Path | None = None, limit: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """(x_train, y_train, x_test, y_test, classes) of an image set (qloom.data: fashion-mnist,
    mnist, ...) as float pixel / 255 in [0, 1], shape (N, C, H, W): an image model's input.
    LIMIT keeps a seeded random subset of that many training images."""
    from qloom.data import dataset_info, load_dataset, parse_dataset_spec

    key, _ = parse_dataset_spec(dataset)
    xtr, ytr = load_dataset(key, "train", data_dir)
    xte, yte = load_dataset(key, "test", data_dir)
    if limit is not None and limit < len(xtr):
        idx = np.sort(np.random.default_rng(seed).permutation(len(xtr))[:limit])
        xtr, ytr = xtr[idx], ytr[idx]
    classes = dataset_info(key).classes
    return xtr.astype(np.float32) / 255.0, ytr, xte.astype(np.float32) / 255.0, yte, classes


def is_image_dataset(dataset: str) -> bool:
    """Whether DATASET is one of qloom.data's image sets (not a tabular one)."""
    from qloom.data import DATASETS, parse_dataset_spec

    try:
        return parse_dataset_spec(dataset)[0] in DATASETS
    except Exception:  # noqa: BLE001 - an unparsable name is not an image set
        return False


# -- training --------------------------------------------------------------------------------


def _predict(logits: torch.Tensor) -> torch.Tensor:
    """Class of each row: argmax, or (one output, LogicNets NID) positive = class 1."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 2000) -> float:
    """Top-1 accuracy in % of MODEL (eval mode) on X (standardized features, or images)."""
    model.eval()
    with torch.no_grad():
        pred = np.concatenate(
            [_predict(model(torch.from_numpy(x[i : i + batch]))).numpy()
             for i in range(0, len(x), batch)]
        )  # fmt: skip
    return float((pred == y).mean() * 100.0)


def integer_accuracy(onnx: str | Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy in % of qloom's integer model of ONNX (its input domain from the
    model: the input quantizer's integers) on X in the model's float domain."""
    import qloom

    pred = _predict(torch.from_numpy(np.asarray(qloom.load(onnx).predict(x)))).numpy()
    return float((pred == y).mean() * 100.0)


def train_logicnets(
    name: str,
    dataset: str | None = None,
    epochs: int = 30,
    out: str | Path = "build/zoo/logicnets.onnx",
    seed: int = 0,
    batch_size: int | None = None,
    lr: float | None = None,
    weight_decay: float = 0.0,
    data_dir: str | Path | None = None,
    quiet: bool = False,
    threads: int | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Train LogicNets model NAME on DATASET, export QONNX to OUT, return the record.

    A tabular model (jsc, nid; default data set wine, batch 64, lr 0.02) reads a tabular set:
    its input width is the set's feature count and its output width the class count (1 output
    for a 2-class set only with a nid model, as LogicNets' NID). An image model (img28-tt;
    default fashion-mnist, batch 256, lr 0.01) reads an image set of its size (pixel / 255);
    LIMIT trains on a seeded subset of that many images. The hidden layers, bits and fan-ins
    are the spec's. Adam with a cosine learning rate; the final model is the last epoch's.
    Writes OUT and OUT with suffix .json (the record; for a tabular set with the
    standardizer's mean and std so the host can prepare inputs).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    from qloom.errors import DatasetError

    key = name.strip().lower()
    if key not in LOGICNETS:
        raise ValueError(f"unknown LogicNets model {name!r}; use {', '.join(LOGICNETS)}")
    spec = LOGICNETS[key]
    image = spec.image is not None
    dataset = spec.default_dataset if dataset is None else dataset
    batch_size = (256 if image else 64) if batch_size is None else batch_size
    lr = (0.01 if image else 0.02) if lr is None else lr
    if image != is_image_dataset(dataset):
        kind = "an image" if image else "a tabular"
        raise DatasetError(
            f"{name} is {kind} model; {dataset!r} is not {kind} data set (use e.g. "
            f"{spec.default_dataset})"
        )
    if image:
        xtr, ytr, xte, yte, classes = load_image_split(dataset, data_dir, limit, seed)
        if xtr.shape[1:] != spec.image:
            raise DatasetError(f"{name} reads {spec.image} images; {dataset} has {xtr.shape[1:]}")
    else:
        xtr, ytr, xte, yte, classes = load_tabular_split(dataset, data_dir, seed)
    n_classes = len(classes)
    binary_out = n_classes == 2 and spec.out_features == 1
    torch.manual_seed(seed)
    n_in = None if image else xtr.shape[1]
    model = build_logicnets(name, n_in, 1 if binary_out else n_classes, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn: nn.Module = nn.BCEWithLogitsLoss() if binary_out else nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    steps = math.ceil(len(xt) / batch_size)
    history = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        perm = torch.randperm(len(xt), generator=gen)
        model.train()
        loss_sum = 0.0
        for i in range(steps):
            step = epoch * steps + i
            for g in opt.param_groups:
                g["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / (epochs * steps)))
            idx = perm[i * batch_size : (i + 1) * batch_size]
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            logits = model(xt[idx])
            target = yt[idx].float()[:, None] if binary_out else yt[idx]
            loss = loss_fn(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.clip_weights()
            loss_sum += loss.item() * len(idx)
        acc = accuracy(model, xte, yte)
        history.append({"epoch": epoch + 1, "loss": loss_sum / len(xt), "val_accuracy": acc})
        if not quiet:
            print(
                f"epoch {epoch + 1:3d}/{epochs}  loss {loss_sum / len(xt):.4f}  test {acc:.2f}%"
                f"  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    from qloom.train.export import export_qonnx

    out = Path(out)
    export_qonnx(
        model,
        out,
        (1, *xtr.shape[1:]),
        metadata={"qloom.model": name, "qloom.dataset": dataset, "qloom.seed": str(seed)},
    )
    record: dict[str, Any] = {
        "model": name,
        "dataset": dataset,
        "classes": list(classes),
        "epochs": epochs,
        "seed": seed,
        "train_rows": len(xtr),
        "test_rows": len(xte),
        "validation": "test split",
        "history": history,
        "test_accuracy": history[-1]["val_accuracy"] if history else accuracy(model, xte, yte),
        "chance_accuracy": float(np.bincount(yte).max() / len(yte) * 100.0),
        "train_seconds": time.perf_counter() - t0,
        "max_table_bits": model.spec.max_table_bits(),
        "fanins": model.spec.layer_fanins(),
        "onnx": str(out),
        "input": "float pixel / 255 in [0, 1]"
        if image
        else "features standardized on the training split (x - mean) / std",
    }
    if image:  # qloom's integer model (what the hardware computes) on the whole test split
        record["integer_accuracy"] = integer_accuracy(out, xte, yte)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    if not quiet:
        print(
            f"test accuracy {record['test_accuracy']:.2f}% (chance "
            f"{record['chance_accuracy']:.2f}%, {len(xte)} rows); wrote {out}"
        )
        if "integer_accuracy" in record:
            print(f"integer model accuracy {record['integer_accuracy']:.2f}%")
    return record
