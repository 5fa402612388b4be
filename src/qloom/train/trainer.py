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
from typing import Any

import numpy as np
import torch
from torch import nn

from qloom.data import dataset_info, load_dataset, parse_dataset_spec
from qloom.errors import QloomError
from qloom.train.export import export_qonnx, qonnx_logits, torch_logits
from qloom.train.zoo import build_model, parse_model_name

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
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(quiet=quiet, highlight=False, soft_wrap=True)
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
    steps_per_epoch = math.ceil(len(xt) / batch_size)
    total_steps = steps_per_epoch * epochs
    loss_fn = nn.CrossEntropyLoss()
    console.print(
        f"training {spec.name} on {ds_name}: {len(xt)} images, {epochs} epochs, "
        f"batch {batch_size}, lr {lr}, seed {seed}"
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
        for epoch in range(start_epoch, epochs):
            t_epoch = time.perf_counter()
            # Seed per epoch: a resumed run sees the same shuffles and dropout masks.
            gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
            torch.manual_seed(seed * 100_003 + epoch)
            perm = torch.randperm(len(xt), generator=gen)
            model.train()
            task = progress.add_task(f"epoch {epoch + 1}/{epochs}", total=steps_per_epoch, info="")
            loss_sum, correct, seen = 0.0, 0, 0
            for i in range(steps_per_epoch):
                step = epoch * steps_per_epoch + i
                for group in optimizer.param_groups:
                    group["lr"] = _cosine_lr(lr, step, total_steps)
                bidx = perm[i * batch_size : (i + 1) * batch_size]
                xb, yb = _to_float(xt[bidx]), yt[bidx]
                logits = model(xb)
                loss = loss_fn(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                model.clip_weights(-1.0, 1.0)
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
            history.append(rec)
            console.print(
                f"epoch {epoch + 1:3d}/{epochs}  loss {rec['loss']:.4f}  "
                f"train {rec['train_accuracy']:.2f}%  val {val_acc:.2f}%  "
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
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "history": history,
                    "seed": seed,
                },
                str(tmp),
            )
            os.replace(tmp, ckpt_path)

    train_seconds = time.perf_counter() - t_start
    test_acc, torch_pred = evaluate(model, x_test, y_test)
    export_qonnx(model, out, metadata={"qloom.dataset": ds_name, "qloom.seed": str(seed)})
    n_check = min(QONNX_CHECK_IMAGES, len(x_test))
    q_pred = qonnx_logits(out, x_test[:n_check].astype(np.float32) / 255.0).argmax(1)
    record: dict[str, Any] = {
        "model": spec.name,
        "dataset": ds_name,
        "epochs": epochs,
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
    json_path.write_text(json.dumps(record, indent=2) + "\n")
    console.print(
        f"test accuracy {test_acc:.2f}% ({len(x_test)} images); qonnx agrees with torch on "
        f"{record['qonnx_check']['agree_with_torch']}/{n_check}; wrote {out} and {json_path}"
    )

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
