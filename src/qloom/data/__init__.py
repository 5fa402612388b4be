"""Datasets for training and checking accelerators: MNIST, Fashion-MNIST, CIFAR-10.

qloom never downloads data. It reads the standard files (IDX for MNIST-style sets, the
python pickle batches for CIFAR-10) from a few well-known places, so that the same call works
on a developer machine, in CI with Debian's `dataset-fashion-mnist` package, and with the
shared folder next to the repository. Every loader returns raw uint8 images (N, C, H, W) and
int64 labels (N,): the accelerator consumes raw pixels, so nothing is normalized here.
"""

from __future__ import annotations

from qloom.data.idx import read_idx, write_idx
from qloom.data.loaders import (
    DATASETS,
    DatasetInfo,
    candidate_dirs,
    dataset_info,
    load_dataset,
    parse_dataset_spec,
)

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "candidate_dirs",
    "dataset_info",
    "load_dataset",
    "parse_dataset_spec",
    "read_idx",
    "write_idx",
]
