"""The public entry points that chain the passes: file -> imported graph -> integer graph.

Two kinds of input travel through qloom, and the names keep them apart:
- model inputs `x`: floats in the model's own input domain, shaped like the ONNX input without
  its batch axis, exactly what one would feed qonnx or onnxruntime;
- hardware inputs `q`: the integers the accelerator receives (`Compiled.hardware_input(x)`, the
  host-side input quantizer of the model's InputDomain), in the imported layout of the tensor
  they stand for; `integer_input` puts them channels-last for the integer graph.
The host-side float tail (FloatTail and what follows it, e.g. Softmax) is part of the integer
graph, so `run_integer` returns outputs with the original model's names, shapes and layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qloom.execute import execute
from qloom.execute.kernels import map_batches
from qloom.frontend import load
from qloom.frontend.domain import RAW_PIXELS, InputDomain, InputSpec, derive_input_domain
from qloom.ir import Graph
from qloom.streamline import streamline

if TYPE_CHECKING:
    from qloom.faults import FaultModel


@dataclass(frozen=True)
class Compiled:
    imported: Graph
    integer: Graph
    domain: InputDomain

    def hardware_input(self, x: np.ndarray) -> np.ndarray:
        """Model inputs (float, the model's domain) -> the integers the hardware receives."""
        return self.domain.quantize(self.imported, x)

    def run(self, x: np.ndarray, batch: int = 2000) -> dict[str, np.ndarray]:
        """The integer model (plus the host's float tail) on model inputs."""
        return run_integer(self.integer, self.hardware_input(x), batch)

    def reference(self, x: np.ndarray, batch: int = 2000) -> dict[str, np.ndarray]:
        """qloom's reference executor (qonnx semantics) of the imported graph on model inputs."""
        return run_imported(self.imported, self.domain_check(x), batch)

    def domain_check(self, x: np.ndarray) -> np.ndarray:
        from qloom.frontend.domain import check_inputs

        return check_inputs(x, self.domain.input_shape, self.domain.input_name)

    def random_inputs(self, n: int, seed: int = 0) -> np.ndarray:
        return self.domain.random_inputs(self.imported, n, seed)


def compile_model(path: str | Path, input_spec: InputSpec | None = None) -> Compiled:
    """Load and streamline a model. Its input domain comes from the model (annotation or first
    quantizer) unless `input_spec` states it."""
    imported = load(path)
    domain = derive_input_domain(imported, input_spec)
    return Compiled(imported, streamline(imported, domain), domain)


def integer_input(graph: Graph, q: np.ndarray) -> np.ndarray:
    """Hardware integers (imported layout) -> the integer graph's input (channels-last)."""
    info = graph.tensors[graph.inputs[0]]
    x = np.asarray(q)
    if not np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.int64)
    if info.layout == "NHWC" and x.ndim == 4 and x.shape[1] > 1:
        x = x.transpose(0, 2, 3, 1)  # a single channel needs no transpose
    elif info.layout == "NHWC" and x.ndim == 3 and x.shape[1] > 1:
        x = x.transpose(0, 2, 1)  # a 1-D signal (N, C, L): channels-last
    return x.reshape((x.shape[0],) + info.shape)


def predictions(graph: Graph, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Top-1 class per sample: a label op's index output, else the argmax of the output."""
    producer = graph.producer(graph.outputs[-1])
    out = outputs[graph.outputs[-1]]
    if producer is not None and producer.op in ("TopK", "ArgMax"):
        return out.reshape(out.shape[0], -1)[:, 0]
    return out.reshape(out.shape[0], -1).argmax(1)


#: values of a batch's largest tensor that `batch_size` aims at (tens of MB: the allocator
#: reuses them instead of page-faulting fresh ones per batch; measured best at 128-256 on CNV)
BATCH_VALUES = 1 << 24


def batch_size(graph: Graph) -> int:
    """Frames per batch: BATCH_VALUES over the largest tensor's values per frame, 16..2000
    (CNV: 291; MLPs: 2000, where per-batch Python overhead matters more)."""
    per_frame = max((int(np.prod(t.shape)) for t in graph.tensors.values() if t.shape), default=1)
    return int(np.clip(BATCH_VALUES // max(1, per_frame), 16, 2000))


def run_integer(
    graph: Graph, q: np.ndarray, batch: int | None = None, *, faults: FaultModel | None = None
) -> dict[str, np.ndarray]:
    """The integer graph on hardware integers `q` (see Compiled.hardware_input), in batches
    (`batch_size` by default) spread over the worker threads; with `faults`
    (qloom.faults.FaultModel) bit flips in its activations or stuck-at bits in its weights,
    frame i of `q` being fault frame i."""
    batch = batch or batch_size(graph)
    if faults is not None:
        from qloom.faults import activation_hook, faulty_graph

        g = faulty_graph(graph, faults)
        parts = [
            execute(g, integer_input(g, q[i : i + batch]), hook=activation_hook(g, faults, i))
            for i in range(0, len(q), batch)
        ]
        return {k: np.concatenate([p[k] for p in parts]) for k in graph.outputs}
    parts = map_batches(
        lambda lo, hi: execute(graph, integer_input(graph, q[lo:hi])), len(q), batch
    )
    return {k: np.concatenate([p[k] for p in parts]) for k in graph.outputs}


def run_imported(graph: Graph, x: np.ndarray, batch: int = 2000) -> dict[str, np.ndarray]:
    """The imported graph (reference semantics) on model inputs `x`."""
    shape = graph.tensors[graph.inputs[0]].shape
    x = np.asarray(x, np.float32).reshape((len(x),) + shape)
    parts = [execute(graph, x[i : i + batch]) for i in range(0, len(x), batch)]
    return {k: np.concatenate([p[k] for p in parts]) for k in graph.outputs}


def predict_integer(onnx_path: str | Path, images: np.ndarray) -> np.ndarray:
    """Predictions of the integer graph on raw uint8 images (N, C, H, W) of a model trained on
    pixels / 255 (the hardware receives the raw pixels)."""
    c = compile_model(onnx_path, RAW_PIXELS)
    return predictions(c.integer, run_integer(c.integer, images))
