"""Model inputs for `qloom run / sim / build`: a user's file, random inputs, or a dataset.

Inputs are always floats in the model's own input domain (what qonnx or onnxruntime would be
fed). `--data` takes:
- `FILE.npy` (an array of inputs) or `FILE.npz` (arrays `inputs` and optional `labels`);
- `random`: inputs drawn from the model's input domain (its quantizer's whole range);
- a dataset name (`mnist-test`, `fashion-mnist-test`, `cifar10-test`): its uint8 images as the
  integers themselves when the model's input is annotated as integers, else scaled to [0, 1]
  (pixel / 255, torchvision's ToTensor), which is how image models are usually trained; the
  source string says which was done.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qloom.errors import QloomError
from qloom.frontend.domain import InputDomain, check_inputs
from qloom.ir import Graph

RANDOM = "random"


class DataFileError(QloomError):
    """A --data file that cannot be read or does not fit the model."""


@dataclass(frozen=True)
class ModelInputs:
    x: np.ndarray  # (N, *input shape) float32, the model's domain
    labels: np.ndarray | None
    source: str


def _read_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    if not path.exists():
        raise DataFileError(f"{path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataFileError(
            f"{path}: not a readable .npy/.npz file ({type(e).__name__}: {e})"
        ) from None
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        names = list(loaded.files)
        if "inputs" not in names:
            raise DataFileError(
                f"{path}: an .npz needs an array named 'inputs' (and optionally 'labels'); "
                f"it has {', '.join(names) or 'no arrays'}"
            )
        x = loaded["inputs"]
        labels = loaded["labels"] if "labels" in names else None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim > 1:
            labels = labels.reshape(len(labels), -1)
            labels = labels.argmax(1) if labels.shape[1] > 1 else labels[:, 0]
        if len(labels) != len(x) or not np.issubdtype(labels.dtype, np.integer):
            raise DataFileError(
                f"{path}: 'labels' must be {len(x)} integer class indices (one per input, or "
                f"one-hot rows); found shape {labels.shape}, type {labels.dtype}"
            )
    return x, labels


def load_inputs(
    spec: str,
    domain: InputDomain,
    imported: Graph,
    limit: int = 0,
    data_dir: str | None = None,
    seed: int = 0,
    default_count: int = 1000,
) -> ModelInputs:
    """The inputs named by `spec` (see the module docstring), at most `limit` (0: all)."""
    if limit < 0:
        raise QloomError(f"the number of inputs must be >= 0, got {limit}")
    if spec == RANDOM:
        n = limit or default_count
        x = domain.random_inputs(imported, n, seed)
        return ModelInputs(x, None, f"{n} random inputs ({domain.dtype} hardware range)")
    if spec.endswith((".npy", ".npz")) or Path(spec).is_file():
        path = Path(spec)
        x, labels = _read_file(path)
        try:
            x = check_inputs(x, domain.input_shape, domain.input_name)
        except QloomError as e:
            raise DataFileError(f"{path}: {e}") from None
        if limit:
            x = x[:limit]
            labels = labels[:limit] if labels is not None else None
        return ModelInputs(x, labels, f"{len(x)} inputs from {path.name}")
    from qloom.data.loaders import load_dataset, parse_dataset_spec

    name, split = parse_dataset_spec(spec)
    images, labels = load_dataset(name, split, data_dir=data_dir)
    if limit:
        images, labels = images[:limit], labels[:limit]
    if int(np.prod(images.shape[1:])) != int(np.prod(domain.input_shape)):
        raise QloomError(
            f"dataset {spec} has images of shape {images.shape[1:]}; the model's input "
            f"'{domain.input_name}' has shape {domain.input_shape}: give --data FILE.npy with "
            "inputs of that shape, or --data random"
        )
    raw = not domain.host_nodes and not domain.steps  # the input *is* the integers
    x = images.astype(np.float32) if raw else images.astype(np.float32) / np.float32(255)
    how = "raw pixel values" if raw else "pixels / 255"
    x = check_inputs(x, domain.input_shape, domain.input_name)
    return ModelInputs(x, labels, f"{len(x)} {name} {split} images ({how})")
