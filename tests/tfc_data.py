"""Test data shared by the test modules: the shared TFC models (skipped cleanly when absent)
and cached qonnx reference outputs. Imported by name: tests/ is on sys.path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QLOOM_SHARED", ROOT.parent / "shared"))
MODELS = SHARED / "models" / "mnist-tfc"
CACHE = Path(os.environ.get("QLOOM_TEST_CACHE", ROOT / ".qloom-cache" / "reference"))
TFC_MODELS = ["TFC_1W1A", "TFC_1W2A", "TFC_2W2A"]
TFC_ACCURACY = {"TFC_1W1A": 0.9296, "TFC_1W2A": 0.9474, "TFC_2W2A": 0.9660}


def tfc_path(name: str) -> Path:
    path = MODELS / f"{name}.onnx"
    if not path.exists():
        pytest.skip(f"shared model {path} not present")
    return path


def qonnx_reference(path: Path, images: np.ndarray, batch: int = 500) -> np.ndarray:
    """qonnx execute_onnx outputs on images/255 (`batch` images per call, see
    qloom.frontend.reference), cached on disk by content."""
    from qloom.frontend.reference import qonnx_outputs

    key = hashlib.sha256(path.read_bytes() + images.tobytes() + str(batch).encode()).hexdigest()
    cached = CACHE / f"{path.stem}-{key[:16]}.npy"
    if cached.exists():
        return np.load(cached)
    out = qonnx_outputs(path, images.astype(np.float32) / np.float32(255), batch=batch)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(cached, out)
    return out
