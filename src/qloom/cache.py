"""Content-addressed caches (Verilator simulators, Yosys and nextpnr results) that check
themselves: each entry carries a manifest of its files' SHA-256; an entry whose files no longer
match (truncated, emptied, edited) is evicted with one warning and rebuilt by the caller."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

MANIFEST = "manifest.json"


def default_cache_dir(kind: str) -> Path:
    """``$QLOOM_CACHE/<kind>`` or ``~/.cache/qloom/<kind>``."""
    env = os.environ.get("QLOOM_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "qloom"
    return base / kind


_warned: set[str] = set()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(entry: Path, names: Iterable[str]) -> None:
    """Record the digests of `names` (files inside `entry`); written before the entry is
    renamed into place, so a complete entry always has one."""
    digests = {n: file_digest(entry / n) for n in names}
    (entry / MANIFEST).write_text(json.dumps(digests, indent=1, sort_keys=True))


def verify(entry: Path, names: Iterable[str]) -> bool | None:
    """True: every named file matches the manifest; False: one is missing or differs;
    None: the entry has no manifest (written by an older qloom)."""
    path = entry / MANIFEST
    if not path.is_file():
        return None
    try:
        digests = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    for n in names:
        f = entry / n
        if n not in digests or not f.is_file() or file_digest(f) != digests[n]:
            return False
    return True


def evict(entry: Path, why: str) -> None:
    """Remove a damaged entry, saying so once per entry."""
    if str(entry) not in _warned:
        _warned.add(str(entry))
        print(f"qloom: cache entry {entry} {why}; rebuilding it", file=sys.stderr)
    shutil.rmtree(entry, ignore_errors=True)
