"""The `qloom` command line. Every user error prints one message and exits non-zero."""

from __future__ import annotations

import argparse
import os
import sys
import time

from rich.console import Console
from rich.table import Table

from qloom.errors import QloomError

console = Console()
err_console = Console(stderr=True)


def _inspect(args: argparse.Namespace) -> int:
    from qloom.flow import compile_model
    from qloom.report.layers import layer_rows

    compiled = compile_model(args.model)
    rows = layer_rows(compiled.integer)
    table = Table(title=f"{args.model}: integer graph ({len(rows)} nodes)")
    for col in (
        "layer",
        "op",
        "in",
        "out",
        "act in",
        "weights",
        "act out",
        "MACs",
        "param bits",
        "hardware",
    ):
        table.add_column(col, justify="right" if col in ("MACs", "param bits") else "left")
    for r in rows:
        table.add_row(
            r.name,
            r.op,
            "x".join(map(str, r.in_shape)),
            "x".join(map(str, r.out_shape)),
            r.in_dtype,
            r.weight_dtype,
            r.out_dtype,
            f"{r.macs:,}" if r.macs else "",
            f"{r.param_bits:,}" if r.param_bits else "",
            r.hardware,
        )
    console.print(table)
    macs = sum(r.macs for r in rows)
    bits = sum(r.param_bits for r in rows)
    console.print(
        f"total: {macs:,} MACs per frame, {bits:,} parameter bits ({bits / 8 / 1024:.1f} KiB)"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from qloom.data import load_dataset, parse_dataset_spec
    from qloom.flow import compile_model, predictions, run_integer

    name, split = parse_dataset_spec(args.data)
    images, labels = load_dataset(name, split, data_dir=args.data_dir)
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    compiled = compile_model(args.model)
    t0 = time.perf_counter()
    pred = predictions(compiled.integer, run_integer(compiled.integer, images))
    dt = time.perf_counter() - t0
    acc = float(np.mean(pred == labels))
    console.print(
        f"{args.model}: top-1 accuracy {100 * acc:.2f} % on {len(labels)} "
        f"{name} {split} images (integer executor, {len(labels) / dt:,.0f} images/s)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qloom", description=__doc__)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("inspect", help="print the layers of a QONNX model and their hardware")
    s.add_argument("model")
    s.set_defaults(fn=_inspect)

    s = sub.add_parser("run", help="accuracy of the integer model on a dataset")
    s.add_argument("model")
    s.add_argument("--data", default="mnist-test", help="dataset[-split], e.g. mnist-test")
    s.add_argument("--data-dir", default=None)
    s.add_argument("--limit", type=int, default=0, help="only the first N images")
    s.set_defaults(fn=_run)

    try:
        from qloom.train.cli import add_parser as add_train
        from qloom.train.cli import run as run_train
    except ImportError:  # training needs torch + brevitas (the `train` extra)
        pass
    else:
        add_train(sub).set_defaults(fn=run_train)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quiet:
        os.environ["QLOOM_QUIET"] = "1"
    try:
        return args.fn(args)
    except QloomError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
