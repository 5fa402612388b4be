"""Quantization-aware training of FINN-style Brevitas models (the `train` extra: torch, brevitas).

The submodules import torch/brevitas; this package file does not, so `import qloom.train`
stays cheap and the error for a missing extra is raised where it is needed.
"""

from __future__ import annotations

__all__ = ["zoo", "trainer", "export", "cli"]
