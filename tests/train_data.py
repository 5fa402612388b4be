"""A small synthetic MNIST-format dataset for the training tests: they run without any installed
dataset and take seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qloom.data import write_idx


def synthetic_images(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Class k lights up horizontal band k (rows 2k..2k+4) over a noisy background."""
    x = rng.integers(0, 60, (len(labels), 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        x[i, 2 * k + 2 : 2 * k + 6, 4:24] = rng.integers(180, 256, (4, 20))
    return x


def write_synthetic_mnist(root: Path, n_train: int, n_test: int = 100) -> Path:
    """`n_train` / `n_test` images (labels cycling 0..9) in IDX format under <root>/mnist;
    returns root, the data directory to pass as --data-dir."""
    d = root / "mnist"
    d.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = (np.arange(n) % 10).astype(np.uint8)
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", synthetic_images(rng, y))
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", y)
    return root


def train_cli(data_dir: Path, out: Path, *extra: str) -> dict:
    """`qloom train` of tfc-w2a2 on the synthetic set (batch 64, one thread) with `extra`
    options; returns the training record (<out>.json)."""
    from qloom import cli

    argv = ["--quiet", "train", "--model", "tfc-w2a2", "--dataset", "mnist", "--out", str(out)]
    argv += ["--data-dir", str(data_dir), "--batch-size", "64", "--threads", "1", *extra]
    assert cli.main(argv) == 0
    return json.loads(out.with_suffix(".json").read_text())
