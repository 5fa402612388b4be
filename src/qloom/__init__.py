"""qloom: quantized neural networks to streaming dataflow accelerators for FPGAs."""

from qloom.datatype import DataType
from qloom.errors import QloomError, UnsupportedModelError


def load(path, input_type=None, input_scale=None):
    """Load and compile a model: `qloom.api.load` (imported on first use, so that
    `import qloom` stays light)."""
    from qloom.api import load as _load

    return _load(path, input_type, input_scale)


__all__ = ["DataType", "QloomError", "UnsupportedModelError", "load"]
__version__ = "0.1.0"
