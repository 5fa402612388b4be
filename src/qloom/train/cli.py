"""The `qloom train` subcommand: train a zoo model and export it to QONNX.

Wired into the main CLI with ``add_parser(subparsers)``; ``run(args)`` returns the exit code.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from qloom.train.prune import DEFAULT_BLOCK, SCOPES, STRUCTURES
from qloom.train.trainer import DEFAULT_BATCH_SIZE, DEFAULT_LR

if TYPE_CHECKING:
    from qloom.train.prune import PruneConfig

EPILOG = """\
models: <topology>-w<X>a<Y>[-i<Z>] with topology tfc, sfc, lfc, cnv (32x32), cnv-pad (28x28
        too), cnv-small, cnv-small-pad; X, Y, Z in 1..8 bits for weights, activations, input
        (e.g. tfc-w1a1, sfc-w2a2, cnv-pad-w1a1; tfc-w1a1-i8 reads 8-bit pixels instead of
        binarized ones, which Fashion-MNIST needs for more than ~81 %)
example: qloom train --model tfc-w1a1-i8 --epochs 10 --out build/zoo/tfc-w1a1-i8.onnx
LogicNets (fixed fan-in, truth-table layers): jsc-s, jsc-m, jsc-l, nid-s, nid-m, nid-l on a
        tabular set: digits, breast-cancer, wine (bundled; default wine), jets or unsw-nb15
        (--data-dir FILE); e.g. qloom train --model jsc-s --dataset wine --epochs 30 --out j.onnx
        img28-tt (784-256-100-10, 2-bit pixels, fan-in 6) on 28x28 images (default
        fashion-mnist): qloom train --model img28-tt --epochs 10 --out tt.onnx

pruning (quantization-aware, Hawks et al. 2021; weights of 2 or more bits):
  qloom train --model tfc-w2a2 --epochs 5 --sparsity 0.75 --out qap.onnx
      gradual (cubic, Zhu & Gupta) from epoch 2 to epoch E - max(1, E // 4), global magnitude
  --prune-schedule iterative:3:2-4   3 steps in epochs 2-4, each removing the same fraction
  --prune-schedule after --finetune-epochs 2   prune the trained model once, fine-tune 2 epochs
  --prune-structure block --prune-block 8      whole 8-wide blocks of a row (an MVAU's SIMD)

fault-aware training (Zahid et al. 2020; evaluate with qloom faults MODEL --rates ...):
  qloom train --model cnv-small-pad-w2a2 --epochs 3 --fault-rate 0.01 --out fat.onnx
      bit flips in the activation codes of every hidden QuantIdentity while training
  --fault-kind stuck0|stuck1 --fault-layers conv_features.1   stuck weight bits instead
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `train` subcommand to SUBPARSERS and return its parser."""
    p = subparsers.add_parser(
        "train",
        help="train a Brevitas zoo model (quantization-aware) and export it to QONNX",
        description="Train a FINN-style quantized model with Brevitas and export it to QONNX. "
        "Writes OUT, OUT's .json record and a resumable .pt checkpoint.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="zoo model name, e.g. tfc-w1a1")
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        help="mnist, fashion-mnist, cifar10 or digits (8x8, bundled with scikit-learn) "
        "(default: %(default)s)",
    )
    p.add_argument("--epochs", type=int, default=10, help="total epochs (default: %(default)s)")
    p.add_argument("--out", required=True, help="output QONNX file, e.g. build/zoo/tfc-w1a1.onnx")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="(default: %(default)s)"
    )
    p.add_argument(
        "--lr",
        type=float,
        default=DEFAULT_LR,
        help="Adam learning rate, cosine-decayed (default: %(default)s)",
    )
    p.add_argument("--checkpoint", default=None, help="checkpoint path (default: OUT with .pt)")
    p.add_argument("--resume", default=None, metavar="CKPT", help="continue from a checkpoint")
    p.add_argument("--data-dir", default=None, help="directory holding the dataset files")
    p.add_argument("--limit", type=int, default=None, help="train on N random training images")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    g = p.add_argument_group("pruning (qloom.train.prune)")
    g.add_argument(
        "--sparsity",
        type=float,
        default=None,
        help="final fraction of zero weights in [0, 1), pruned by magnitude (default: none)",
    )
    g.add_argument(
        "--prune-schedule",
        default="gradual",
        metavar="S",
        help="gradual[:A-B], iterative[:K[:A-B]] or after (default: %(default)s; see below)",
    )
    g.add_argument(
        "--prune-scope",
        default="global",
        choices=SCOPES,
        help="rank all layers together or prune each to the sparsity (default: %(default)s)",
    )
    g.add_argument(
        "--prune-structure",
        default="none",
        choices=STRUCTURES,
        help="single weights, or whole blocks of --prune-block weights of a row (default: "
        "%(default)s)",
    )
    g.add_argument(
        "--prune-block",
        type=int,
        default=DEFAULT_BLOCK,
        metavar="N",
        help="block size, e.g. the MVAUs' SIMD; must divide every layer's row (default: "
        "%(default)s)",
    )
    g.add_argument(
        "--finetune-epochs",
        type=int,
        default=0,
        metavar="N",
        help="epochs after --epochs with the final masks, at a tenth of the learning rate "
        "(default: %(default)s)",
    )
    f = p.add_argument_group("fault-aware training (qloom.train.faults; Zahid et al., FAT)")
    f.add_argument(
        "--fault-rate",
        type=float,
        default=None,
        metavar="P",
        help="inject faults while training: each bit flips (or is stuck) with probability P",
    )
    f.add_argument(
        "--fault-kind",
        default="flip",
        help="flip (activation codes), stuck0 or stuck1 (weight bits) (default: %(default)s)",
    )
    f.add_argument(
        "--fault-layers",
        default=None,
        metavar="A,B",
        help="module names, e.g. conv_features.3 (default: every activation quantizer but "
        "the input's / every weighted layer)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run `qloom train` with parsed ARGS; QloomError propagates to the main CLI."""
    from qloom.errors import QloomError
    from qloom.train.trainer import train
    from qloom.train.zoo import parse_model_name

    if args.epochs < 1:
        raise QloomError(f"--epochs must be at least 1, got {args.epochs}")
    from qloom.train import logicnets

    if logicnets.is_logicnets(args.model):
        if getattr(args, "fault_rate", None) is not None:
            raise QloomError(f"{args.model}: --fault-rate applies to the Brevitas zoo models")
        return run_logicnets(args)
    try:
        parse_model_name(args.model)
    except ValueError as e:  # an unknown model name is a user error, not a crash
        raise QloomError(str(e)) from e
    prune = prune_config(args)
    faults = fault_config(args)
    train(
        args.model,
        args.dataset,
        epochs=args.epochs,
        out=args.out,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        checkpoint=args.checkpoint,
        resume=args.resume,
        quiet=args.quiet,
        data_dir=args.data_dir,
        limit=args.limit,
        threads=args.threads,
        prune=prune,
        faults=faults,
    )
    return 0


def run_logicnets(args: argparse.Namespace) -> int:
    """`qloom train` for a LogicNets model (qloom.train.logicnets): a tabular data set for
    jsc/nid (--data-dir is the data file for jets / unsw-nb15), an image set for img28-tt.
    Pruning options do not apply (the fan-in masks are the sparsity)."""
    from qloom.errors import QloomError
    from qloom.train.logicnets import LOGICNETS, train_logicnets

    if args.sparsity is not None:
        raise QloomError(f"{args.model}: --sparsity does not apply (fixed fan-in masks)")
    spec = LOGICNETS[args.model.strip().lower()]
    # the option defaults are the image zoo's: a tabular model takes its own (wine, 64, 0.02)
    dataset = args.dataset
    if spec.image is None and args.dataset == "fashion-mnist":
        dataset = spec.default_dataset
    batch = None if args.batch_size == DEFAULT_BATCH_SIZE else args.batch_size
    lr = None if args.lr == DEFAULT_LR else args.lr
    if args.limit is not None and spec.image is None:
        raise QloomError(f"{args.model}: --limit applies to image models only")
    try:
        train_logicnets(
            args.model,
            dataset,
            epochs=args.epochs,
            out=args.out,
            seed=args.seed,
            batch_size=batch,
            lr=lr,
            data_dir=args.data_dir,
            quiet=args.quiet,
            threads=args.threads,
            limit=args.limit,
        )
    except ValueError as e:
        raise QloomError(str(e)) from e
    return 0


def fault_config(args: argparse.Namespace):
    """The FaultConfig of --fault-rate/--fault-kind/--fault-layers (None without a rate)."""
    from qloom.errors import QloomError
    from qloom.train.faults import FaultConfig, check_config

    rate = getattr(args, "fault_rate", None)
    if rate is None:
        if args.fault_kind != "flip" or args.fault_layers:
            raise QloomError("--fault-kind / --fault-layers without --fault-rate: give the rate")
        return None
    layers = tuple(x.strip() for x in (args.fault_layers or "").split(",") if x.strip())
    cfg = FaultConfig(rate=rate, kind=args.fault_kind, layers=layers, seed=args.seed)
    check_config(cfg)
    return cfg


def prune_config(args: argparse.Namespace) -> PruneConfig | None:
    """The PruneConfig the options describe (None without --sparsity); QloomError for pruning
    options given without --sparsity, which would otherwise be silently ignored."""
    from qloom.errors import QloomError
    from qloom.train.prune import PruneConfig, check_config

    if args.sparsity is None:
        given = [
            opt
            for opt, value, default in (
                ("--prune-schedule", args.prune_schedule, "gradual"),
                ("--prune-scope", args.prune_scope, "global"),
                ("--prune-structure", args.prune_structure, "none"),
                ("--prune-block", args.prune_block, DEFAULT_BLOCK),
                ("--finetune-epochs", args.finetune_epochs, 0),
            )
            if value != default
        ]
        if given:
            raise QloomError(f"{', '.join(given)} without --sparsity: give the sparsity")
        return None
    cfg = PruneConfig(
        sparsity=args.sparsity,
        schedule=args.prune_schedule,
        scope=args.prune_scope,
        structure=args.prune_structure,
        block=args.prune_block,
        finetune_epochs=args.finetune_epochs,
    )
    check_config(cfg)
    return cfg


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `export` subcommand: an untrained zoo model as QONNX (for users and benches)."""
    p = subparsers.add_parser(
        "export",
        help="write an untrained zoo model (batch-norm statistics from a random batch) as QONNX",
        epilog="models: as for `qloom train`, plus resnet8, resnet8-small and resnet20 (32x32, "
        "residual blocks with 1x1 stride-2 shortcuts), resnet18 (ImageNet-style: 224x224, 1000 "
        "classes by default), LogicNets jsc-s/m/l, nid-s/m/l (tabular), img28-tt (28x28 "
        "images); example: qloom export --model resnet8-w2a2 --out resnet8.onnx",
    )
    p.add_argument("--model", required=True, help="zoo model name, e.g. resnet8-w2a2")
    p.add_argument("--out", required=True, help="output QONNX file")
    p.add_argument("--in-channels", type=int, default=3, help="default: %(default)s")
    p.add_argument(
        "--in-size", type=int, help="default: the topology's (224 for resnet18, else 32)"
    )
    p.add_argument(
        "--classes", type=int, help="default: the topology's (1000 for resnet18, else 10)"
    )
    p.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    p.set_defaults(fn=run_export)
    return p


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qloom.errors import QloomError
    from qloom.train.export import export_untrained
    from qloom.train.zoo import TOPOLOGIES, parse_model_name

    topo = None
    try:
        topo = TOPOLOGIES[parse_model_name(args.model).topology]
    except ValueError:  # LogicNets, or an unknown name (export_untrained says which)
        pass
    if args.in_size is None:
        args.in_size = topo.in_size if topo is not None else 32
    if args.classes is None:
        args.classes = topo.classes if topo is not None else 10
    for name in ("in_channels", "in_size", "classes"):
        if getattr(args, name) < 1:
            raise QloomError(f"--{name.replace('_', '-')} must be at least 1")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise QloomError(f"--out {out}: directory {out.parent} does not exist")
    try:
        export_untrained(args.model, out, args.in_channels, args.in_size, args.classes, args.seed)
    except ValueError as e:  # unknown model name or a shape the topology cannot take
        raise QloomError(str(e)) from e
    print(f"wrote {out}")
    return 0
