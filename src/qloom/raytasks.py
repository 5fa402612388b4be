"""Ray for qloom's parallel work (sweeps, per-stage synthesis): an embedded local instance by
default (`ray.init(address="local")`, so that a cluster started on this machine is not joined by
surprise), or the cluster at `--ray-address` (token authentication needs RAY_AUTH_MODE=token
here too). Ray is imported only when asked for."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from qloom.errors import QloomError


@contextmanager
def ray_session(address: str | None, quiet: bool):
    """Ray connected for the block: joined at ADDRESS, embedded, or as already initialized."""
    import logging

    try:
        import ray
    except ImportError as e:
        raise QloomError("Ray is not installed: pip install ray==2.60.0") from e

    if ray.is_initialized():
        yield ray
        return
    level = logging.ERROR if quiet else logging.WARNING
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=level)
        else:
            ray.init(
                address="local",
                num_cpus=os.cpu_count() or 1,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=level,
            )
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        hint = (
            " (is it running? a cluster with token authentication also needs RAY_AUTH_MODE=token)"
            if address
            else ""
        )
        raise QloomError(f"cannot start or join {where}: {e}{hint}") from e
    try:
        yield ray
    finally:
        ray.shutdown()


def parallel_map(
    fn: Callable,
    calls: Sequence[tuple],
    *,
    ray_address: str | None = None,
    workers: int | None = None,
    retries: int = 2,
    quiet: bool = True,
) -> list:
    """[fn(*args) for args in calls], in order, in parallel: threads on this machine
    (`workers`, default the core count; for work that leaves the GIL, such as yowasp's Yosys),
    or Ray tasks of one CPU each with `ray_address` ("local": an embedded instance, else a
    cluster's HOST:PORT)."""
    if ray_address is None:
        n = max(1, min(len(calls), workers or os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=n) as pool:
            return [f.result() for f in [pool.submit(fn, *args) for args in calls]]
    with ray_session(None if ray_address == "local" else ray_address, quiet) as ray:
        task = ray.remote(num_cpus=1, max_retries=retries)(fn)
        return ray.get([task.remote(*args) for args in calls])
