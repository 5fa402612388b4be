"""The public entry points that chain the passes: file -> imported graph -> integer graph.

Inputs are raw integer images (N, C, H, W) as datasets give them; each representation gets
them in the layout it expects (the imported graph: real values in NCHW; the integer graph:
integers, channels-last).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qloom.execute import execute
from qloom.frontend import load
from qloom.ir import Graph
from qloom.streamline import DEFAULT_INPUT, InputSpec, streamline


@dataclass(frozen=True)
class Compiled:
    imported: Graph
    integer: Graph
    input_spec: InputSpec


def compile_model(path: str | Path, input_spec: InputSpec = DEFAULT_INPUT) -> Compiled:
    imported = load(path)
    return Compiled(imported, streamline(imported, input_spec), input_spec)


def real_input(graph: Graph, images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """What the imported graph (and qonnx) consumes: float32 images / divisor."""
    shape = (images.shape[0],) + graph.tensors[graph.inputs[0]].shape
    return (images.astype(np.float32) / np.float32(spec.divisor)).reshape(shape)


def integer_input(graph: Graph, images: np.ndarray) -> np.ndarray:
    """What the integer graph consumes: integers (dtype kept), channels-last for images."""
    info = graph.tensors[graph.inputs[0]]
    x = np.asarray(images)
    if not np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.int64)
    if info.layout == "NHWC" and x.ndim == 4 and x.shape[1] > 1:
        x = x.transpose(0, 2, 3, 1)  # a single channel needs no transpose
    return x.reshape((x.shape[0],) + info.shape)


def predictions(graph: Graph, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Top-1 class per sample: a label op's index output, else the argmax of the output."""
    producer = graph.producer(graph.outputs[-1])
    out = outputs[graph.outputs[-1]]
    if producer is not None and producer.op in ("TopK", "ArgMax"):
        return out.reshape(out.shape[0], -1)[:, 0]
    return out.reshape(out.shape[0], -1).argmax(1)


def run_integer(graph: Graph, images: np.ndarray, batch: int = 2000) -> dict[str, np.ndarray]:
    parts = [
        execute(graph, integer_input(graph, images[i : i + batch]))
        for i in range(0, len(images), batch)
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in graph.outputs}


def run_imported(
    graph: Graph, images: np.ndarray, spec: InputSpec = DEFAULT_INPUT, batch: int = 2000
) -> dict[str, np.ndarray]:
    parts = [
        execute(graph, real_input(graph, images[i : i + batch], spec))
        for i in range(0, len(images), batch)
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in graph.outputs}


def predict_integer(onnx_path: str | Path, images: np.ndarray) -> np.ndarray:
    """Predictions of the streamlined integer graph on raw uint8 images (N, C, H, W)."""
    c = compile_model(onnx_path)
    return predictions(c.integer, run_integer(c.integer, images))
