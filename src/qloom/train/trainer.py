"""Quantization-aware training of zoo models, reproducible and resumable, ending in a QONNX file.

Why this shape: a compiled accelerator is only as good as the network fed to it, and a test of
the whole flow needs networks with known accuracy. Training is seeded per epoch (shuffle and
dropout), so an interrupted run resumed from its checkpoint ends with the same weights as an
uninterrupted one. The learning rate follows a cosine schedule computed from the step number,
which needs no scheduler state to resume.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from qloom.data import dataset_info, load_dataset, parse_dataset_spec
from qloom.errors import QloomError
from qloom.train.export import export_qonnx, qonnx_logits, torch_logits
from qloom.train.prune import (
    FINETUNE_LR_FACTOR,
    PruneConfig,
    Pruner,
    bops_record,
    check_config,
    layer_bops,
    parse_schedule,
    quantized_weights,
)
from qloom.train.zoo import build_model, parse_model_name

if TYPE_CHECKING:
    from qloom.train.faults import FaultConfig

DEFAULT_BATCH_SIZE = 100
DEFAULT_LR = 0.02
QONNX_CHECK_IMAGES = 16


def _show_progress(quiet: bool) -> bool:
    """A live progress bar only for a person at a terminal (not under CI or with quiet)."""
    return not quiet and sys.stdout.isatty() and not os.environ.get("CI")


def _to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(images)
    return x.to(torch.float32) / 255.0


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 500):
    """Top-1 accuracy (in %) and predictions of MODEL on uint8 images."""
    logits = torch_logits(model, images.astype(np.float32) / 255.0, batch_size)
    pred = logits.argmax(1)
    return float((pred == labels).mean() * 100.0), pred


def _cosine_lr(base: float, step: int, total: int) -> float:
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _default_paths(out: Path) -> tuple[Path, Path]:
    return out.with_suffix(".json"), out.with_suffix(".pt")


def _integer_predictor() -> Callable[[str, np.ndarray], np.ndarray] | None:
    # The integer executor lives in the core flow; it may not exist yet in a partial install.
    try:
        from qloom.flow import predict_integer
    except ImportError:
        return None
    return predict_integer


def _bops(onnx_path: Path) -> dict[str, Any]:
    """BOPs of the exported model, from qloom's integer graph (qloom.train.prune.layer_bops);
    an error (a model qloom cannot compile) is recorded, not raised: the training succeeded."""
    try:
        from qloom.flow import compile_model

        return bops_record(layer_bops(compile_model(onnx_path).integer))
    except (ImportError, QloomError) as e:
        return {"bops": None, "error": str(e)}


def _check_qonnx_zeros(pruner: Pruner, onnx_path: Path) -> dict[str, int]:
    """Count the exported Quant nodes' zeros where the masks pruned (all must be zero)."""
    q = quantized_weights(onnx_path)
    pruned = zero = pruned_nonzero = total = 0
    for name, _ in pruner.layers:
        w = q[f"{name}.weight"]
        mask = pruner.masks[name].numpy()
        total += w.size
        pruned += int((~mask).sum())
        zero += int((w == 0).sum())
        pruned_nonzero += int((w[~mask] != 0).sum())
    return {"weights": total, "pruned": pruned, "zero": zero, "pruned_nonzero": pruned_nonzero}


def train(
    model_name: str,
    dataset: str = "fashion-mnist",
    epochs: int = 10,
    out: str | Path = "build/zoo/model.onnx",
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    checkpoint: str | Path | None = None,
    resume: str | Path | None = None,
    quiet: bool = False,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    test_limit: int | None = None,
    threads: int | None = None,
    dropout: float | None = None,
    weight_decay: float = 0.0,
    integer_check: bool = True,
    prune: PruneConfig | None = None,
    faults: FaultConfig | None = None,
) -> dict[str, Any]:
    """Train MODEL_NAME on DATASET for EPOCHS, export QONNX to OUT, return the run record.

    Writes OUT (QONNX), OUT with suffix .json (the record: dataset, epochs, seed, per-epoch
    accuracy, final torch test accuracy, qonnx agreement, integer accuracy when
    qloom.flow.predict_integer exists) and a checkpoint (default OUT with suffix .pt, saved
    every epoch with model, optimizer and epoch). RESUME continues from such a checkpoint up
    to EPOCHS in total. LIMIT trains on a seeded random subset of that many images;
    TEST_LIMIT evaluates on the first that many test images. Per-epoch validation uses the
    test split, as FINN's bnn_pynq trainer does; the final model is the last epoch's (never
    picked by test accuracy).

    PRUNE (qloom.train.prune) prunes the Quant layers' weights by magnitude while training
    (or once after it); its finetune_epochs run after EPOCHS with the final masks and a fresh
    cosine schedule from FINETUNE_LR_FACTOR x LR. The record then holds the masks' and the
    exported Quant nodes' zeros per layer. BOPs (qloom.train.prune.layer_bops) are always
    recorded.

    FAULTS (qloom.train.faults, fault-aware training after Zahid et al.) injects bit flips
    into the quantized activations or stuck-at bits into the quantized weights while training
    (not in validation or export); the record and checkpoint hold the configuration.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(quiet=quiet, highlight=False, soft_wrap=True)
    if prune is not None:
        check_config(prune)  # bad options fail before the dataset is read
    if faults is not None:
        from qloom.train.faults import check_config as check_faults

        check_faults(faults)
    if threads is not None:
        torch.set_num_threads(threads)
    spec = parse_model_name(model_name)
    ds_name, _ = parse_dataset_spec(dataset)
    info = dataset_info(ds_name)
    out = Path(out)
    json_path, default_ckpt = _default_paths(out)
    ckpt_path = Path(checkpoint) if checkpoint is not None else default_ckpt

    x_train, y_train = load_dataset(ds_name, "train", data_dir)
    x_test, y_test = load_dataset(ds_name, "test", data_dir)
    if limit is not None and limit < len(x_train):
        idx = np.random.default_rng(seed).permutation(len(x_train))[:limit]
        x_train, y_train = x_train[np.sort(idx)], y_train[np.sort(idx)]
    if test_limit is not None:
        x_test, y_test = x_test[:test_limit], y_test[:test_limit]

    _seed_everything(seed)
    try:
        model = build_model(spec.name, info.channels, info.size, info.num_classes, dropout=dropout)
    except ValueError as e:
        raise QloomError(f"{spec.name} on {ds_name}: {e}") from e
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    pruner = None
    if prune is not None:
        schedule = parse_schedule(prune.schedule, prune.sparsity, epochs, steps_per_epoch)
        pruner = Pruner(model, prune, schedule)
    finetune = prune.finetune_epochs if prune is not None else 0
    injector = None
    if faults is not None:
        from qloom.train.faults import FaultInjector

        injector = FaultInjector(model, faults)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resume is not None:
        state = torch.load(str(resume), map_location="cpu", weights_only=False)
        if state.get("model_name") != spec.name:
            raise QloomError(
                f"checkpoint {resume} holds {state.get('model_name')!r}, not {spec.name!r}"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if pruner is not None and state.get("prune") is not None:
            pruner.load_state_dict(state["prune"])
        elif pruner is None and state.get("prune") is not None:
            console.print("note: the checkpoint was pruned; without --sparsity its zeros regrow")
        start_epoch = int(state["epoch"]) + 1
        history = list(state.get("history", []))
        console.print(f"resumed {resume} after epoch {start_epoch}")
        if state.get("epochs", epochs) != epochs:
            console.print(
                f"note: the checkpoint was for {state['epochs']} epochs, now {epochs}: the "
                "learning-rate schedule changes, so the result differs from a straight run"
            )

    xt = torch.from_numpy(x_train)
    yt = torch.from_numpy(y_train)
    total_steps = steps_per_epoch * epochs
    all_epochs = epochs + finetune
    loss_fn = nn.CrossEntropyLoss()

    def lr_at(step: int) -> float:
        if step < total_steps:
            return _cosine_lr(lr, step, total_steps)
        return _cosine_lr(lr * FINETUNE_LR_FACTOR, step - total_steps, steps_per_epoch * finetune)

    console.print(
        f"training {spec.name} on {ds_name}: {len(xt)} images, {epochs} epochs, "
        f"batch {batch_size}, lr {lr}, seed {seed}"
    )
    if injector is not None:
        console.print(
            f"fault-aware training: {faults.kind} faults at rate {faults.rate:g} on "
            f"{', '.join(injector.layers)}"
        )
    if pruner is not None:
        console.print(
            f"pruning to sparsity {prune.sparsity:g} ({prune.scope}, "
            f"{'blocks of ' + str(prune.block) if prune.structure == 'block' else 'weights'}), "
            f"{pruner.schedule.describe()}"
            + (f", then {finetune} fine-tuning epochs" if finetune else "")
        )
    t_start = time.perf_counter()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=not _show_progress(quiet),
        transient=True,
    )
    with progress:
        for epoch in range(start_epoch, all_epochs):
            t_epoch = time.perf_counter()
            # Seed per epoch: a resumed run sees the same shuffles and dropout masks.
            gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
            torch.manual_seed(seed * 100_003 + epoch)
            perm = torch.randperm(len(xt), generator=gen)
            model.train()
            task = progress.add_task(
                f"epoch {epoch + 1}/{all_epochs}", total=steps_per_epoch, info=""
            )
            loss_sum, correct, seen = 0.0, 0, 0
            for i in range(steps_per_epoch):
                step = epoch * steps_per_epoch + i
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
                if pruner is not None:
                    pruner.step(step)
                bidx = perm[i * batch_size : (i + 1) * batch_size]
                xb, yb = _to_float(xt[bidx]), yt[bidx]
                logits = model(xb)
                loss = loss_fn(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                model.clip_weights(-1.0, 1.0)
                if pruner is not None:
                    pruner.apply()
                loss_sum += loss.item() * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
                seen += len(yb)
                if i % 20 == 0:
                    progress.update(task, completed=i + 1, info=f"loss {loss_sum / seen:.4f}")
            progress.remove_task(task)
            val_acc, _ = evaluate(model, x_test, y_test)
            rec = {
                "epoch": epoch + 1,
                "loss": loss_sum / max(seen, 1),
                "train_accuracy": 100.0 * correct / max(seen, 1),
                "val_accuracy": val_acc,
                "seconds": time.perf_counter() - t_epoch,
            }
            if pruner is not None:
                rec["sparsity"] = pruner.mask_sparsity()
            history.append(rec)
            sparsity = f"  sparsity {rec['sparsity']:.3f}" if pruner is not None else ""
            console.print(
                f"epoch {epoch + 1:3d}/{all_epochs}  loss {rec['loss']:.4f}  "
                f"train {rec['train_accuracy']:.2f}%  val {val_acc:.2f}%{sparsity}  "
                f"({rec['seconds']:.1f} s)"
            )
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt_path.with_name(ckpt_path.name + ".tmp")
            torch.save(
                {
                    "model_name": spec.name,
                    "dataset": ds_name,
                    "epoch": epoch,
                    "epochs": epochs,
                    "finetune_epochs": finetune,
                    "prune": pruner.state_dict() if pruner is not None else None,
                    "faults": faults.record() if faults is not None else None,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "history": history,
                    "seed": seed,
                },
                str(tmp),
            )
            os.replace(tmp, ckpt_path)

    train_seconds = time.perf_counter() - t_start
    if pruner is not None and pruner.step(all_epochs * steps_per_epoch):
        # "after" without fine-tuning (or a window ending with the last epoch): the final
        # masks come now; the checkpoint keeps the last epoch's weights.
        console.print(f"pruned to sparsity {pruner.mask_sparsity():.3f} after the last epoch")
    if injector is not None:
        injector.remove()  # the exported model is the fault-free network
    test_acc, torch_pred = evaluate(model, x_test, y_test)
    export_qonnx(model, out, metadata={"qloom.dataset": ds_name, "qloom.seed": str(seed)})
    n_check = min(QONNX_CHECK_IMAGES, len(x_test))
    q_pred = qonnx_logits(out, x_test[:n_check].astype(np.float32) / 255.0).argmax(1)
    record: dict[str, Any] = {
        "model": spec.name,
        "dataset": ds_name,
        "epochs": epochs,
        "finetune_epochs": finetune,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "dropout": dropout,
        "train_images": len(xt),
        "test_images": len(x_test),
        "validation": "test split",
        "history": history,
        "epoch_accuracy": [h["val_accuracy"] for h in history],
        "test_accuracy": test_acc,
        "train_seconds": train_seconds,
        "threads": torch.get_num_threads(),
        "qonnx_check": {
            "images": n_check,
            "agree_with_torch": int((q_pred == torch_pred[:n_check]).sum()),
        },
        "onnx": str(out),
        "checkpoint": str(ckpt_path),
    }
    if pruner is not None:
        record["pruning"] = {
            **pruner.config_record(),
            "mask_sparsity": pruner.mask_sparsity(),
            "layers": pruner.layer_report(),
            "qonnx_quant_zeros": _check_qonnx_zeros(pruner, out),
        }
    if faults is not None:
        record["faults"] = {**faults.record(), "layers": list(injector.layers)}
    record["bops"] = _bops(out)
    json_path.write_text(json.dumps(record, indent=2) + "\n")
    console.print(
        f"test accuracy {test_acc:.2f}% ({len(x_test)} images); qonnx agrees with torch on "
        f"{record['qonnx_check']['agree_with_torch']}/{n_check}; wrote {out} and {json_path}"
    )
    _print_pruning(console, record)

    predict_integer = _integer_predictor() if integer_check else None
    if predict_integer is not None:
        int_pred = np.asarray(predict_integer(str(out), x_test))
        record["integer_accuracy"] = float((int_pred == y_test).mean() * 100.0)
        record["integer_agreement_with_torch"] = float((int_pred == torch_pred).mean() * 100.0)
        json_path.write_text(json.dumps(record, indent=2) + "\n")
        console.print(
            f"integer graph accuracy {record['integer_accuracy']:.2f}% "
            f"(agrees with torch on {record['integer_agreement_with_torch']:.2f}%)"
        )
    return record


def _print_pruning(console: Any, record: dict[str, Any]) -> None:
    """One line of zeros (masks and exported Quant nodes) and one of BOPs."""
    p = record.get("pruning")
    if p is not None:
        z = p["qonnx_quant_zeros"]
        console.print(
            f"sparsity: masks {p['mask_sparsity']:.4f}; exported Quant nodes: "
            f"{z['zero']:,} / {z['weights']:,} weights zero ({z['zero'] / z['weights']:.4f}), "
            f"{z['pruned_nonzero']} pruned weights nonzero"
        )
        if z["pruned_nonzero"]:
            console.print("[bold red]warning:[/] pruned weights quantize to nonzero values")
    b = record["bops"]
    if b.get("bops") is None:
        console.print(f"BOPs: not computed ({b.get('error')})")
    else:
        console.print(
            f"BOPs per frame: {b['bops']:,} ({b['bops'] / max(b['bops_dense'], 1):.1%} of "
            f"{b['bops_dense']:,} at density 1)"
        )
