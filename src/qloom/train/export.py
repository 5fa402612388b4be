"""Export zoo models to QONNX (Brevitas) and run the export with qonnx's reference executor.

The exported graph takes float input of shape (1, C, H, W) holding pixel / 255 in [0, 1]
(the model maps it to [-1, 1] itself), the same contract as the QONNX model zoo's TFC models.

Brevitas 0.13.4 has two QONNX exporters. The TorchScript one (``dynamo=False``, our default)
produces the patterns of the QONNX zoo files (Transpose + MatMul, Shape/Gather/Concat/Reshape);
the torch.export one (``dynamo=True``, Brevitas' default on torch >= 2.9) also works and gives
Gemm and a constant Reshape, at a newer opset. Both execute identically under qonnx.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress prints and warnings (they are noise in a CLI)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def _default_in_shape(model: nn.Module) -> tuple[int, ...]:
    shape = getattr(model, "in_shape", None)
    return (1, *shape) if shape is not None else (1, 1, 28, 28)


def export_qonnx(
    model: nn.Module,
    path: str | Path,
    in_shape: tuple[int, ...] | None = None,
    dynamo: bool = False,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Export MODEL (in eval mode, on CPU) as QONNX to PATH and return the path.

    IN_SHAPE defaults to (1, *model.in_shape) for zoo models, else (1, 1, 28, 28).
    METADATA is stored as ONNX metadata_props (e.g. the zoo name and dataset), so a build can
    report where its model came from.
    """
    from brevitas.export import export_qonnx as _brevitas_export

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = tuple(in_shape) if in_shape is not None else _default_in_shape(model)
    was_training = model.training
    model.eval()
    try:
        dummy = torch.rand(*shape)
        # Write to a temporary name first so a failed export never leaves a half file behind.
        tmp = path.with_name(path.name + ".tmp")
        with _quiet(), torch.no_grad():
            _brevitas_export(model, dummy, export_path=str(tmp), dynamo=dynamo)
        proto = onnx.load(str(tmp))
        meta = {"qloom.input": "float pixel/255 in [0,1], shape " + "x".join(map(str, shape))}
        spec = getattr(model, "spec", None)
        if spec is not None:
            meta["qloom.model"] = spec.name
        meta.update(metadata or {})
        for k, v in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, str(v)
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
        data = Path(str(tmp) + ".data")  # dynamo may write external data next to the file
        if data.exists():
            data.unlink()
    finally:
        model.train(was_training)
    return path


def load_qonnx(path: str | Path):
    """Load an export with qonnx and run its cleanup (shape inference, constant folding)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    return cleanup_model(ModelWrapper(str(path)))


def qonnx_logits(model_or_path, images: np.ndarray) -> np.ndarray:
    """Run qonnx's reference executor on float images (N, C, H, W) in [0, 1], one at a time.

    Why one at a time: the export has batch size 1 and the reference is what every faster
    executor is compared with (about 20-40 ms per image).
    """
    from qonnx.core.onnx_exec import execute_onnx

    mw = load_qonnx(model_or_path) if isinstance(model_or_path, str | Path) else model_or_path
    iname = mw.graph.input[0].name
    oname = mw.graph.output[0].name
    outs = []
    for img in np.asarray(images, dtype=np.float32):
        res = execute_onnx(mw, {iname: img[None]})
        outs.append(np.asarray(res[oname]).reshape(-1))
    return np.stack(outs)


def torch_logits(model: nn.Module, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Eval-mode logits of a torch model on float images (N, C, H, W) in [0, 1]."""
    was_training = model.training
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(np.asarray(images[i : i + batch_size], dtype=np.float32))
            outs.append(model(x).numpy())
    model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def export_untrained(
    name: str,
    path: str | Path,
    in_channels: int = 3,
    in_size: int = 32,
    num_classes: int = 10,
    seed: int = 0,
) -> Path:
    """Zoo model NAME, untrained (weights from the seed, batch-norm statistics from one random
    batch of inputs in [0, 1]), exported to QONNX at PATH."""
    import torch

    from qloom.train import logicnets
    from qloom.train.zoo import build_model

    if logicnets.is_logicnets(name):  # a fixed shape: the image arguments do not apply
        return logicnets.export_untrained(name, path, seed)
    torch.manual_seed(seed)
    model = build_model(name, in_channels, in_size, num_classes)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.rand(64, in_channels, in_size, in_size))
    model.eval()
    return export_qonnx(model, path, (1, in_channels, in_size, in_size))
