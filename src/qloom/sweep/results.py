"""Sweep results: results.csv (one row per point x part x FPS target), results.json, Pareto
plots (accuracy vs estimated LUTs per FPS target, accuracy vs BOPs) and report.html.

A row is on the LUT Pareto front of its (part, FPS target) when it fits and no other fitting
row there has at least its accuracy with fewer LUTs (or more accuracy with as few); the BOPs
front is over the points (BOPs do not depend on the target).
"""

from __future__ import annotations

import base64
import csv
import html
import json
import time
from pathlib import Path
from typing import Any

from qloom.sweep.spec import SweepSpec

COLUMNS = [
    "point", "model", "width", "precision", "weight_bits", "act_bits", "input_bits",
    "sparsity", "part", "target_fps", "status", "accuracy", "torch_accuracy", "bops",
    "bops_dense", "lut", "ff", "bram", "dsp", "lut_pct", "cycles_per_frame", "fps",
    "bottleneck", "synth_lut", "synth_ff", "synth_bram", "synth_dsp", "pareto_lut",
    "pareto_bops", "train_seconds", "point_seconds", "message",
]  # fmt: skip


def pareto(items: list[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, accuracy) pairs no other pair dominates (cost <=, accuracy >=,
    one strictly)."""
    front = []
    for i, (c, a) in enumerate(items):
        if not any(
            (c2 <= c and a2 >= a) and (c2 < c or a2 > a)
            for j, (c2, a2) in enumerate(items)
            if j != i
        ):
            front.append(i)
    return front


def flat_rows(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per CSV row; a point that failed is one row with status 'error'."""
    rows = []
    for p in points:
        base = {
            "point": p["key"],
            "model": p["model"],
            "width": p.get("width"),
            "precision": p["precision"],
            "weight_bits": p["weight_bits"],
            "act_bits": p["act_bits"],
            "input_bits": p["input_bits"],
            "sparsity": p["sparsity"],
            "accuracy": p.get("accuracy"),
            "torch_accuracy": p.get("torch_accuracy"),
            "bops": p.get("bops"),
            "bops_dense": p.get("bops_dense"),
            "train_seconds": p.get("train_seconds"),
            "point_seconds": p.get("seconds"),
        }
        if p.get("status") != "ok":
            rows.append({**base, "status": "error", "message": p.get("error", "")})
            continue
        for r in p["rows"]:
            synth = r.get("synth") or {}
            rows.append(
                {
                    **base,
                    **{
                        k: r.get(k)
                        for k in (
                            "part",
                            "target_fps",
                            "status",
                            "lut",
                            "ff",
                            "bram",
                            "dsp",
                            "cycles_per_frame",
                            "fps",
                            "bottleneck",
                            "message",
                        )
                    },  # fmt: skip
                    "lut_pct": (r.get("utilization") or {}).get("LUT"),
                    **{f"synth_{k}": synth.get(k) for k in ("lut", "ff", "bram", "dsp")},
                }
            )
    # Pareto flags
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        r["pareto_lut"] = False
        r["pareto_bops"] = False
        if r["status"] == "ok":
            groups.setdefault((r["part"], r["target_fps"]), []).append(r)
    for g in groups.values():
        for i in pareto([(r["lut"], r["accuracy"]) for r in g]):
            g[i]["pareto_lut"] = True
    pts = [p for p in points if p.get("status") == "ok"]
    front = {pts[i]["key"] for i in pareto([(p["bops"], p["accuracy"]) for p in pts])}
    for r in rows:
        r["pareto_bops"] = r["point"] in front and r["status"] != "error"
    return rows


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def write_results(out: Path, spec: SweepSpec, points: list[dict[str, Any]]) -> list[Path]:
    """Write results.csv, results.json, the plots and report.html into OUT; their paths."""
    rows = flat_rows(points)
    csv_path = out / "results.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in COLUMNS})
    json_path = out / "results.json"
    json_path.write_text(
        json.dumps(
            {
                "spec": spec.to_json(),
                "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "rows": rows,
                "points": points,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    plots = write_plots(out, spec, rows)
    report = write_report(out, spec, rows, plots)
    return [csv_path, json_path, *plots, report]


def _label(r: dict[str, Any]) -> str:
    return r["point"]


def write_plots(out: Path, spec: SweepSpec, rows: list[dict[str, Any]]) -> list[Path]:
    """accuracy_vs_lut.png (one panel per part x FPS target) and accuracy_vs_bops.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    precisions = list(spec.precisions)
    cmap = plt.get_cmap("viridis", max(len(precisions), 2))
    color = {p: cmap(i) for i, p in enumerate(precisions)}
    markers = dict(zip(spec.models, "osD^v<>ph", strict=False))
    paths = []

    panels = [(part, fps) for part in spec.parts for fps in spec.targets_fps]
    cols = min(len(panels), 3)
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 4.2 * nrows), squeeze=False)
    from qloom.synth.devices import get_device

    for ax, (part, fps) in zip(axes.flat, panels, strict=False):
        name = get_device(part).name
        here = [r for r in rows if r.get("part") == name and r.get("target_fps") == fps]
        for r in here:
            if r["lut"] is None or r["accuracy"] is None:
                continue
            fits = r["status"] == "ok"
            ax.scatter(
                r["lut"],
                r["accuracy"],
                marker=markers.get(r["model"], "o") if fits else "x",
                color=color.get(r["precision"], "grey") if fits else "grey",
                s=40,
                zorder=3,
            )
            ax.annotate(_label(r), (r["lut"], r["accuracy"]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
        front = sorted((r for r in here if r["pareto_lut"]), key=lambda r: r["lut"])
        if front:
            ax.step([r["lut"] for r in front], [r["accuracy"] for r in front], where="post",
                    color="tab:red", lw=1, zorder=2, label="Pareto front")  # fmt: skip
        missed = sum(r["status"] == "unreachable" for r in here)
        title = f"{name}, {fps:,.0f} FPS"
        if missed:
            title += f" ({missed} unreachable)"
        ax.set_title(title, fontsize=9)
        if not any(r["lut"] is not None for r in here):
            ax.text(0.5, 0.5, "no design meets this target", ha="center", transform=ax.transAxes)
        _log_x(ax)
        ax.set_xlabel("LUTs (estimate)")
        ax.set_ylabel("top-1 accuracy, integer model (%)")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    _legend(fig, plt, color, markers)
    fig.suptitle(f"{spec.name}: accuracy vs LUTs per FPS target ({spec.dataset}, "
                 f"{spec.epochs} epochs; x: does not fit)", fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    p = out / "accuracy_vs_lut.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)

    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    seen = {}
    for r in rows:
        if r["bops"] is not None and r["accuracy"] is not None:
            seen.setdefault(r["point"], r)
    for r in seen.values():
        ax.scatter(r["bops"], r["accuracy"], marker=markers.get(r["model"], "o"),
                   color=color.get(r["precision"], "grey"), s=40, zorder=3)  # fmt: skip
        ax.annotate(_label(r), (r["bops"], r["accuracy"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    front = sorted((r for r in seen.values() if r["pareto_bops"]), key=lambda r: r["bops"])
    if front:
        ax.step([r["bops"] for r in front], [r["accuracy"] for r in front], where="post",
                color="tab:red", lw=1, zorder=2)  # fmt: skip
    _log_x(ax)
    ax.set_xlabel("BOPs per frame")
    ax.set_ylabel("top-1 accuracy, integer model (%)")
    ax.set_title(f"{spec.name}: accuracy vs BOPs ({spec.dataset})", fontsize=10)
    ax.grid(True, alpha=0.3)
    _legend(fig, plt, color, markers)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    p = out / "accuracy_vs_bops.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


def _log_x(ax) -> None:
    """Log x axis with plain numbers (1,000 not 10^3) on major and minor ticks."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    ax.xaxis.set_major_formatter(fmt)
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.tick_params(axis="x", labelsize=7)


def _legend(fig, plt, color, markers) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=c, label=p) for p, c in color.items()]
    handles += [Line2D([], [], ls="", marker=m, color="black", label=n)
                for n, m in markers.items()]  # fmt: skip
    handles.append(Line2D([], [], color="tab:red", label="Pareto front"))
    fig.legend(handles=handles, loc="lower center", fontsize=7, ncol=min(len(handles), 8))


def write_report(out: Path, spec: SweepSpec, rows: list[dict[str, Any]], plots: list[Path]):
    """report.html: the plots (inlined) and the table."""
    cols = ["point", "part", "target_fps", "status", "accuracy", "bops", "lut", "ff", "bram",
            "dsp", "lut_pct", "cycles_per_frame", "fps", "pareto_lut", "message"]  # fmt: skip
    imgs = "\n".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{html.escape(p.name)}'
        "</figcaption></figure>"
        for p in plots
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    text = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(spec.name)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} img{{max-width:100%}}
table{{border-collapse:collapse;font-size:12px}} td,th{{border:1px solid #ccc;padding:2px 6px}}
td{{text-align:right}}
td:first-child,td:nth-child(2),td:nth-child(4),td:last-child{{text-align:left}}
</style></head><body>
<h1>{html.escape(spec.name)}</h1>
<p>{html.escape(spec.dataset)}, {spec.epochs} epochs, seed {spec.seed}; accuracy: qloom's
integer model on {"the first " + str(spec.test_limit) if spec.test_limit else "all"} test
images; resources: qloom's estimate for each FPS target at {spec.clock_mhz:g} MHz (a design
fits when every resource is within {spec.max_utilization:.0%} of the part).
Written {time.strftime("%Y-%m-%d %H:%M")}.</p>
{imgs}
<h2>All rows</h2>
<table><tr>{head}</tr>
{body}
</table>
<h2>Spec</h2><pre>{html.escape(json.dumps(spec.to_json(), indent=2))}</pre>
</body></html>
"""
    p = out / "report.html"
    p.write_text(text)
    return p
