"""Deployment: what a build directory carries to a board. `write_driver` puts the host driver
(`driver.py`, numpy only) and the stream description it reads (`io.json`) into `driver/`."""

from __future__ import annotations

import shutil
from pathlib import Path

from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.stage import StreamSpec

DRIVER = Path(__file__).with_name("driver.py")


def _stream(spec: StreamSpec) -> dict:
    t = spec.dtype
    return {
        "dtype": str(t),
        "bits": t.bits,
        "signed": bool(t.signed),
        "bipolar": bool(t.is_bipolar),
        "elems": spec.elems,
        "beats": spec.beats,
        "width": spec.width,
        "bytes": (spec.width + 7) // 8,
    }


def io_description(design: DataflowDesign) -> dict:
    """The streams the driver packs and unpacks, and the input layout change (NCHW images go
    channels-last into the hardware)."""
    info = design.source.tensors[design.source.inputs[0]]
    outputs = []
    for tensor, stream in design.output_streams.items():
        outputs.append(
            {
                "tensor": tensor,
                "shape": list(design.output_shapes[tensor]),
                **_stream(design.streams[stream]),
            }  # fmt: skip
        )
    return {
        "design": design.name,
        "input": {"channels_last": info.layout == "NHWC", **_stream(design.input_spec)},
        "outputs": outputs,
    }


def write_driver(design: DataflowDesign, out_dir: str | Path) -> Path:
    """driver/driver.py + driver/io.json for `design` under `out_dir`."""
    import json

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(DRIVER, d / "driver.py")
    (d / "io.json").write_text(json.dumps(io_description(design), indent=2) + "\n")
    return d
