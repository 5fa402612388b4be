"""qloom: quantized neural networks to streaming dataflow accelerators for FPGAs."""

from qloom.datatype import DataType
from qloom.errors import QloomError, UnsupportedModelError

__all__ = ["DataType", "QloomError", "UnsupportedModelError"]
__version__ = "0.1.0"
