"""qonnx's node-by-node executor on the original model: the reference every representation
is compared with. One image per call (the models have a fixed batch of 1)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qloom.frontend.load import cleaned_model


def qonnx_executor(path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping one float input (1, ...) to the model's first output."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    model = ModelWrapper(cleaned_model(path))
    iname, oname = model.graph.input[0].name, model.graph.output[0].name

    def run(x: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return execute_onnx(model, {iname: x})[oname]

    return run


def qonnx_outputs(path: str | Path, x: np.ndarray) -> np.ndarray:
    """Reference outputs for a batch of float inputs (N, ...), one execute_onnx call each."""
    run = qonnx_executor(path)
    return np.concatenate([run(x[i : i + 1]) for i in range(len(x))])
