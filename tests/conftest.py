"""Fixtures shared by the test modules (helpers live in tfc_data.py: a module named
conftest would clash with tests/rtl/conftest.py under pytest-xdist)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    from qloom.data import load_dataset
    from qloom.errors import DatasetNotFoundError

    try:
        return load_dataset("mnist", "test")
    except DatasetNotFoundError as e:
        pytest.skip(f"MNIST test set not available: {e}")
