"""The sweep driver: which points are left, Ray tasks for them, progress, stored results.

Ray: an embedded local cluster by default (`ray.init(address="local")`, so that a cluster
some other program started on this machine is never joined by accident; num_cpus from
os.cpu_count(), no dashboard, worker output not forwarded), or an existing cluster with
`--ray-address` (a cluster with token authentication needs RAY_AUTH_MODE=token here too).
When Ray is already initialized in this process (a Python caller, the tests) that connection
is used and left open.

Every point is one task with num_cpus=1. A worker that dies mid-point (killed, out of memory)
is a system failure, which Ray retries up to `max_retries` times (the spec's, default 3); the
retry reuses the point's trained model or resumes its training from the last epoch's
checkpoint. Exceptions are not retried (retry_exceptions=False): a point catches its own
errors and returns them as its record, since training and folding are deterministic and
would fail again. A point that still fails (retries used up) is reported and not stored, so
a rerun tries it again; so is a point whose record has status 'error'.

Results: DIR/points/<key>.json, written by the driver as each point finishes (atomically),
so an interrupted sweep keeps what it finished; DIR/results.* at the end (qloom.sweep.results).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qloom.errors import QloomError
from qloom.raytasks import ray_session
from qloom.sweep.point import CRASH_ENV, run_point
from qloom.sweep.spec import Point, SweepSpec, load_spec


@dataclass
class SweepResult:
    out_dir: Path
    points: list[dict[str, Any]]  # in spec order
    ran: int  # points run now
    reused: int  # points taken from DIR/points
    failed: int  # points without a usable record (error, or retries used up)
    files: list[Path]
    seconds: float


def _quiet(quiet: bool) -> bool:
    return quiet or bool(os.environ.get("QLOOM_QUIET"))


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def stored_point(points_dir: Path, spec: SweepSpec, p: Point) -> dict[str, Any] | None:
    """The stored record of P if it is finished and for these settings, else None."""
    path = points_dir / f"{p.key}.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("config_hash") != spec.point_hash(p) or rec.get("status") != "ok":
        return None
    return rec


def run_sweep(
    spec_path: str | Path | SweepSpec,
    out_dir: str | Path,
    ray_address: str | None = None,
    quiet: bool = False,
) -> SweepResult:
    """Run (or finish) the sweep SPEC_PATH into OUT_DIR; see the module docstring."""
    from qloom.sweep.results import write_results

    t0 = time.monotonic()
    quiet = _quiet(quiet)
    spec = spec_path if isinstance(spec_path, SweepSpec) else load_spec(spec_path)
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise QloomError(f"--out {out}: exists and is not a folder")
    points_dir = out / "points"
    points_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(spec.cache_dir) if spec.cache_dir else out / "models"
    _write_json(out / "spec.json", spec.to_json())

    def say(text: str) -> None:
        if not quiet:
            print(f"[{_clock(time.monotonic() - t0)}] {text}", flush=True)

    points = spec.points()
    records: dict[str, dict[str, Any]] = {}
    todo: list[Point] = []
    for p in points:
        rec = stored_point(points_dir, spec, p)
        if rec is None:
            todo.append(p)
        else:
            records[p.key] = rec
    n = len(points)
    rows_per_point = len(spec.parts) * len(spec.targets_fps)
    say(
        f"sweep '{spec.name}': {n} points x {rows_per_point} targets/parts on {spec.dataset}, "
        f"{spec.epochs} epochs; {len(records)} already done, {len(todo)} to run"
    )
    failed = 0
    if todo:
        failed = _run_points(spec, todo, cache, points_dir, records, ray_address, quiet, say, n)
    ordered = [records[p.key] for p in points if p.key in records]
    files = write_results(out, spec, ordered)
    ok_rows = [r for rec in ordered for r in rec.get("rows", ())]
    counts: dict[str, int] = {}
    for r in ok_rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    say(
        f"done: {len(ordered)}/{n} points ({len(todo)} run now, {n - len(todo)} reused, "
        f"{failed} failed); rows: {summary or 'none'}; wrote {out}/results.csv, results.json, "
        "report.html"
    )
    return SweepResult(out, ordered, len(todo), n - len(todo), failed, files,
                       time.monotonic() - t0)  # fmt: skip


def _run_points(spec, todo, cache, points_dir, records, address, quiet, say, n) -> int:
    """Run TODO as Ray tasks; store each record as it arrives; return how many failed."""
    crash = os.environ.get(CRASH_ENV) or None
    failed = 0
    with ray_session(address, quiet) as ray:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        say(f"Ray: {cpus} CPUs, {len(todo)} tasks (num_cpus=1 each)")
        task = ray.remote(num_cpus=1, max_retries=spec.max_retries, retry_exceptions=False)(
            run_point
        )
        pending = {task.remote(spec, p, str(cache), crash): p for p in todo}
        done = n - len(todo)
        t_start = time.monotonic()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                p = pending.pop(ref)
                done += 1
                try:
                    rec = ray.get(ref)
                except ray.exceptions.RayError as e:  # retries used up, or the task lost
                    failed += 1
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    say(f"{done}/{n} {p.key}: FAILED after retries ({type(e).__name__}: {first})")
                    continue
                rec["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
                records[p.key] = rec
                _write_json(points_dir / f"{p.key}.json", rec)
                if rec["status"] != "ok":
                    failed += 1
                    say(f"{done}/{n} {p.key}: error: {rec.get('error')}")
                    continue
                met = sum(r["status"] == "ok" for r in rec["rows"])
                train = "trained" if rec.get("trained_now") else "cached model"
                say(
                    f"{done}/{n} {p.key}: accuracy {rec['accuracy']:.2f} %, BOPs "
                    f"{rec['bops']:,}, {met}/{len(rec['rows'])} targets met and fit "
                    f"({train}, {rec['seconds']:.0f} s; elapsed "
                    f"{_clock(time.monotonic() - t_start)})"
                )
    return failed


def main_cli(args) -> int:
    """`qloom sweep` (wired in qloom.cli): exit 0 when every point has a record, 1 if not."""
    res = run_sweep(args.spec, args.out, args.ray_address, args.quiet)
    if res.failed:
        print(
            f"{res.failed} point(s) failed (see the log above and results.json); rerun the same "
            "command to retry them",
            file=sys.stderr,
        )
        return 1
    return 0
