"""The dataflow layer: hardware stages (one file per stage kind), the integer graph -> stages
lowering, and the executable DataflowDesign. See qloom.dataflow.stage for the stream and beat
conventions the RTL library follows.

Every module of this package is imported here, so a new stage file registers its kind
(`qloom.dataflow.stage.STAGE_KINDS`) and its lowering rule (`qloom.dataflow.rules.RULES`)
without being listed anywhere else."""

from __future__ import annotations

import importlib
import pkgutil

from qloom.dataflow.add import Add
from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.duplicate import Duplicate
from qloom.dataflow.dwc import DWC
from qloom.dataflow.fifo import FIFO
from qloom.dataflow.labelselect import LabelSelect
from qloom.dataflow.lower import to_dataflow
from qloom.dataflow.maxpool import MaxPool
from qloom.dataflow.mvau import MVAU
from qloom.dataflow.stage import (
    STAGE_KINDS,
    Stage,
    StreamSpec,
    pack_beats,
    read_hex,
    unpack_beats,
)
from qloom.dataflow.sumpool import SumPool
from qloom.dataflow.swu import SWU
from qloom.dataflow.thresholding import Thresholding
from qloom.dataflow.vvau import VVAU
from qloom.dataflow.windowpool import WindowPool

__all__ = [
    "DWC",
    "FIFO",
    "MVAU",
    "SWU",
    "VVAU",
    "Add",
    "DataflowDesign",
    "Duplicate",
    "LabelSelect",
    "MaxPool",
    "Stage",
    "StreamSpec",
    "SumPool",
    "Thresholding",
    "pack_beats",
    "read_hex",
    "to_dataflow",
    "unpack_beats",
    "WindowPool",
]

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
for _cls in STAGE_KINDS.values():  # a new kind is public without an edit here
    if _cls.__name__ not in __all__:
        globals()[_cls.__name__] = _cls
        __all__.append(_cls.__name__)
