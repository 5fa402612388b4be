"""Frontend: load QONNX / FINN-ONNX files into the qloom graph IR."""

from qloom.frontend.load import SUPPORTED_OPS, import_model, load

__all__ = ["SUPPORTED_OPS", "import_model", "load"]
