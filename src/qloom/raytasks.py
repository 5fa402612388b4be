"""Ray for qloom's parallel work (sweeps, per-stage synthesis): an embedded local instance by
default (`ray.init(address="local")`, so that a cluster started on this machine is not joined by
surprise), or the cluster at `--ray-address` (token authentication needs RAY_AUTH_MODE=token
here too). Ray is imported only when asked for."""

from __future__ import annotations

import os
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
