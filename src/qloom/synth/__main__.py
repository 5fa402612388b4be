"""``python -m qloom.synth``: list devices, synthesize, place and route, write a Vivado script.

Examples::

    python -m qloom.synth devices
    python -m qloom.synth synth -t qloom_fifo -d pynq-z2 -P WIDTH=8 -P DEPTH=512 lib/qloom_fifo.v
    python -m qloom.synth pnr -t qloom_fifo -d ulx3s --freq 100 -w build/pnr lib/qloom_fifo.v
    python -m qloom.synth vivado -t qloom_fifo -d zcu104 -w build/vivado lib/qloom_fifo.v

A source that is a file of the RTL library (src/qloom/rtl/lib) brings the library files it
needs (its submodules, e.g. qloom_threshold_lanes.v for qloom_mvau.v).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qloom.errors import QloomError


def _params(items: list[str]) -> dict:
    out: dict = {}
    for it in items:
        if "=" not in it:
            raise QloomError(f"parameter {it!r}: use NAME=VALUE")
        k, v = it.split("=", 1)
        try:
            out[k] = int(v, 0)
        except ValueError:
            p = Path(v)
            out[k] = p.resolve() if p.is_file() else v
    return out


def _with_submodules(sources: list[Path]) -> list[Path]:
    """`sources`, and after each RTL library file the library files it instantiates."""
    from qloom.rtl.library import LIB, library_files

    out: dict[Path, Path] = {}  # resolved -> as given
    for s in sources:
        in_lib = s.suffix == ".v" and s.resolve().parent == LIB
        for f in library_files(s.stem) if in_lib else [s]:
            out.setdefault(f.resolve(), f)
    return list(out.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qloom.synth", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("devices", help="list the device database")
    for name, helptext in (
        ("synth", "Yosys out-of-context synthesis (cell counts)"),
        ("pnr", "ECP5 / iCE40 place and route, Fmax, bitstream"),
        ("vivado", "write a Vivado out-of-context synthesis TCL script"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("sources", nargs="+", type=Path)
        p.add_argument("-t", "--top", required=True)
        p.add_argument("-d", "--device", required=True, help="part or board name")
        p.add_argument("-P", "--param", action="append", default=[], help="NAME=VALUE")
        p.add_argument("-m", "--memory", action="append", default=[], type=Path)
        p.add_argument("-w", "--workdir", type=Path)
        p.add_argument("--freq", type=float, default=100.0, help="clock target in MHz")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    try:
        from qloom.synth import (
            DEVICES,
            place_and_route,
            synthesize,
            write_vivado_project,
        )

        if args.cmd == "devices":
            for d in DEVICES:
                print(d.describe())
            return 0
        params = _params(args.param)
        args.sources = _with_submodules(args.sources)
        if args.cmd == "synth":
            r = synthesize(args.sources, args.top, params, args.device, args.workdir, args.memory)
            print(json.dumps(r.to_dict(), indent=1) if args.json else r.summary())
        elif args.cmd == "pnr":
            r = place_and_route(
                args.sources, args.top, params, args.device, args.workdir, args.memory, args.freq
            )
            print(json.dumps(r.to_dict(), indent=1) if args.json else r.summary())
            if r.bitstream and not args.json:
                print(f"bitstream: {r.bitstream}")
        else:
            wd = args.workdir or Path("vivado")
            tcl = write_vivado_project(
                wd, args.sources, args.top, args.device, params, args.memory, freq_mhz=args.freq
            )
            print(f"wrote {tcl}; run: cd {wd} && vivado -mode batch -source {tcl.name}")
    except QloomError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
