"""qonnx's node-by-node executor on the original model: the reference every representation
is compared with.

The shared models have a fixed batch of 1, which costs ~40 ms per image. `batch` > 1 applies
qonnx's own ChangeBatchSize transformation (the one its cleanup uses for override_inpsize)
so that the same node semantics run on many images per call; tests check that both agree.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qloom.frontend.load import cleaned_model


def qonnx_executor(path: str | Path, batch: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping a float input of `batch` samples to the model's first output."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    model = ModelWrapper(cleaned_model(path))
    if batch != 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = model.transform(ChangeBatchSize(batch)).transform(InferShapes())
    iname, oname = model.graph.input[0].name, model.graph.output[0].name

    def run(x: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return execute_onnx(model, {iname: x})[oname]

    return run


def qonnx_outputs(path: str | Path, x: np.ndarray, batch: int = 1) -> np.ndarray:
    """Reference outputs for float inputs (N, ...): execute_onnx on `batch` samples per call."""
    run = qonnx_executor(path, batch)
    outs = []
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        n = len(chunk)
        if n < batch:  # pad the last call to the model's fixed batch
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
        outs.append(run(chunk)[:n])
    return np.concatenate(outs)
