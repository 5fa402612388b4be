"""The `qloom faults` subcommand: accuracy of the integer model against the fault rate.

    qloom faults MODEL --data fashion-mnist-test --rates 0,1e-4,1e-3,1e-2,5e-2 \\
        [--kind flip|stuck0|stuck1] [--layers conv_features.3,...] [--seed S] [--plot out.png]

Wired into the main CLI with ``add_parser(subparsers)``; the fault model is qloom.faults.
"""

from __future__ import annotations

import argparse

from qloom.faults import DEFAULT_RATES, KINDS

EPILOG = """\
kinds: flip = each bit of the chosen activations' integer codes flips with probability RATE,
       independently per (frame, element, bit); stuck0 / stuck1 = each bit of the chosen
       layers' integer weights is stuck at 0 / 1 with probability RATE (the same for all frames).
layers: short Brevitas module names (conv_features.3, linear_features.2: what `qloom train
       --fault-layers` takes), node or tensor names of the integer graph (qloom inspect);
       default: every activation quantizer but the input's (flip), every weighted layer (stuck).
example: qloom faults cnv.onnx --data fashion-mnist-test --rates 0,1e-3,1e-2 --plot acc.png
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from qloom.options import add_data_options, add_domain_options

    s = subparsers.add_parser(
        "faults",
        help="accuracy of the integer model under bit flips / stuck-at faults, per fault rate",
        description="Inject hardware faults into the integer model (qloom.faults) at several "
        "rates and print the accuracy (and agreement with the fault-free predictions) per rate.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("model")
    add_data_options(s, 0, "only the first N inputs (random: N inputs, default 1000)")
    add_domain_options(s)
    s.add_argument(
        "--rates",
        default=",".join(f"{r:g}" for r in DEFAULT_RATES),
        help="comma-separated fault rates per bit, each in [0, 1] (default: %(default)s)",
    )
    s.add_argument("--kind", default="flip", help=f"{', '.join(KINDS)} (default: %(default)s)")
    s.add_argument(
        "--layers",
        default=None,
        help="comma-separated layers to inject into (default: see below)",
    )
    s.add_argument("--seed", type=int, default=0, help="fault positions (default: %(default)s)")
    s.add_argument("--plot", default=None, metavar="PNG", help="write accuracy vs rate as a PNG")
    s.add_argument(
        "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress output"
    )
    s.set_defaults(fn=run)
    return s


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from qloom.data.inputs import load_inputs
    from qloom.errors import QloomError
    from qloom.faults import (
        FaultModel,
        check_kind,
        check_seed,
        describe_targets,
        parse_rates,
        plot_sweep,
        resolve_targets,
        sweep,
    )
    from qloom.flow import compile_model
    from qloom.options import input_spec

    quiet = bool(getattr(args, "quiet", False))
    console = Console(highlight=False, soft_wrap=True)
    progress = Console(stderr=True, highlight=False, quiet=quiet)
    # every option is checked before the model and the data are read
    rates = parse_rates(args.rates)
    kind = check_kind(args.kind)
    seed = check_seed(args.seed)
    layers = [x.strip() for x in args.layers.split(",") if x.strip()] if args.layers else None
    plot = Path(args.plot) if args.plot else None
    if plot is not None and not plot.parent.is_dir():
        raise QloomError(f"--plot {plot}: directory {plot.parent} does not exist")

    compiled = compile_model(args.model, input_spec(args))
    graph = compiled.integer
    targets = resolve_targets(graph, kind, layers)
    inputs = load_inputs(
        args.data, compiled.domain, compiled.imported, args.limit, args.data_dir, seed
    )
    q = compiled.hardware_input(inputs.x)
    where = describe_targets(graph, FaultModel(0.0, seed, kind, targets))
    progress.print(f"{args.model}: {inputs.source}; {kind} faults on {where} (seed {seed})")

    def tell(i: int, n: int, rate: float) -> None:
        progress.print(f"rate {i + 1} of {n}: {rate:g}")

    points = sweep(graph, q, inputs.labels, rates, kind=kind, layers=targets, seed=seed,
                   progress=tell)  # fmt: skip
    what = "bits flipped" if kind == "flip" else "weight bits stuck"
    table = Table(title=f"{Path(args.model).name}: {kind} faults, {len(q):,} inputs")
    table.add_column("fault rate", justify="right")
    if inputs.labels is not None:
        table.add_column("top-1 accuracy", justify="right")
    table.add_column("same top-1 as fault-free", justify="right")
    table.add_column(what, justify="right")
    for p in points:
        row = [f"{p.rate:g}"]
        if p.accuracy is not None:
            row.append(f"{p.accuracy:.2f} %")
        row += [f"{p.agree:.2f} %", f"{p.faults:,}"]
        table.add_row(*row)
    console.print(table)
    if plot is not None:
        ylabel = "top-1 accuracy (%)" if inputs.labels is not None else "same top-1 (%)"
        plot_sweep(plot, {Path(args.model).stem: points},
                   f"{Path(args.model).name}: {kind} faults on {len(targets)} layer(s)",
                   ylabel)  # fmt: skip
        console.print(f"plot written to {plot}")
    return 0
