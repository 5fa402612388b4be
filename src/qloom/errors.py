"""Errors a user can act on. The CLI prints their message (no traceback) and exits non-zero."""

from __future__ import annotations


class QloomError(Exception):
    """Base class: an error caused by the input, with a message meant for the user."""

    exit_code = 2


class ModelLoadError(QloomError):
    """The file is not a loadable ONNX model (missing, truncated, malformed)."""


class UnsupportedModelError(QloomError):
    """The model is well-formed but uses something qloom cannot map.

    The message names the node, what was found and what would work.
    """

    def __init__(self, message: str, node: str | None = None, op: str | None = None):
        self.node = node
        self.op = op
        super().__init__(message)

    @classmethod
    def at(cls, node, why: str) -> UnsupportedModelError:
        """ "node '<name>' (<op>): <why>" for a qloom IR node."""
        return cls(f"node '{node.name}' ({node.op}): {why}", node.name, node.op)


class FoldingError(QloomError):
    """A folding request is impossible (divisibility, target, part)."""


class DatasetError(QloomError):
    """A dataset file that exists but cannot be used (malformed, wrong type or shape)."""


class DatasetNotFoundError(QloomError):
    """A dataset could not be found; the message lists where qloom looked."""
