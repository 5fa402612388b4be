"""Command-line options shared by `qloom inspect / run / sim / build`: the input domain and the
input data. One definition, so that every command reads a model and its inputs the same way."""

from __future__ import annotations

import argparse

from qloom.frontend.domain import InputSpec, parse_dtype, parse_scale

DATA_HELP = (
    "inputs in the model's own float domain: FILE.npy, FILE.npz (arrays 'inputs' and optional "
    "'labels'), 'random' (drawn from the model's input domain), or a dataset such as "
    "mnist-test (pixels / 255 unless the model's input is annotated as integers)"
)


def add_domain_options(s: argparse.ArgumentParser) -> None:
    g = s.add_argument_group("input domain (default: from the model)")
    g.add_argument(
        "--input-type",
        default=None,
        metavar="TYPE",
        help="integer type the hardware receives (UINT8, INT8, BIPOLAR, ...); use with "
        "--input-scale when the model's input is a float that no quantizer defines",
    )
    g.add_argument(
        "--input-scale",
        default=None,
        metavar="S",
        help="model input = S * integer, e.g. 1/255 for raw 8-bit pixels (default 1)",
    )


def add_data_options(s: argparse.ArgumentParser, limit_default: int, limit_help: str) -> None:
    s.add_argument("--data", default="random", help=DATA_HELP)
    s.add_argument("--data-dir", default=None, help="where to look for dataset files")
    s.add_argument("--limit", type=int, default=limit_default, help=limit_help)


def input_spec(args: argparse.Namespace) -> InputSpec | None:
    """The user's statement of the input domain, or None (take it from the model)."""
    if args.input_type is None:
        if args.input_scale is not None:
            from qloom.errors import QloomError

            raise QloomError("--input-scale needs --input-type (e.g. --input-type UINT8)")
        return None
    scale = parse_scale(args.input_scale) if args.input_scale is not None else parse_scale("1")
    return InputSpec(parse_dtype(args.input_type), scale)
