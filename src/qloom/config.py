"""Build configuration files in FINN's `DataflowBuildConfig` names.

A FINN user's JSON (`{"output_dir": "build/tfc", "target_fps": 10000, "synth_clk_period_ns":
10.0, "board": "Pynq-Z2", "folding_config_file": "folding.json"}`) is read into qloom's
`BuildOptions`; `config_json(opts)` writes one back, so that a config round-trips. qloom's own
options (`max_utilization`, `sim_frames`, `data`, `synth`, `pnr_part`, `input_type`, ...) sit in
the same file under their qloom names. FINN keys that do not apply to qloom's flow are accepted
and listed as ignored; a key that is neither is an error that suggests the closest name.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import fields
from pathlib import Path

from qloom.build import BuildOptions
from qloom.errors import QloomError
from qloom.frontend.domain import InputSpec, parse_dtype, parse_scale

#: FINN DataflowBuildConfig keys that qloom's flow has no use for (accepted, reported)
FINN_IGNORED = {
    "steps", "generate_outputs", "verbose", "save_intermediate_models", "shell_flow_type",
    "vitis_platform", "vitis_floorplan_file", "vitis_opt_strategy", "standalone_thresholds",
    "minimize_bit_width", "rtlsim_batch_size", "rtlsim_use_vivado_comps", "verify_steps",
    "verify_input_npy", "verify_expected_output_npy", "verify_save_full_context",
    "verify_save_rtlsim_waveforms", "stitched_ip_gen_dcp", "split_large_fifos", "mvau_wwidth_max",
    "large_fifo_mem_style", "fifosim_n_inferences", "fifosim_save_waveform",
    "folding_two_pass_relaxation", "enable_build_pdb_debug", "specialize_layers_config_file",
    "default_swg_exception", "force_python_rtlsim", "hls_clk_period_ns", "start_step",
    "stop_step", "max_multithreshold_bit_width", "enable_hw_debug", "signature",
    "auto_fifo_strategy", "force_rtl_conv_inp_gen", "floorplan_file", "board_file",
}  # fmt: skip
#: qloom options that a config file may set, with their expected JSON type
QLOOM_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "part": str,
    "clock_mhz": (int, float),
    "max_fps": bool,
    "max_utilization": (int, float),
    "latency_slack": (int, float),
    "runtime_weights": bool,
    "data": str,
    "sim_frames": int,
    "sim_shards": int,
    "synth": bool,
    "pnr_part": str,
    "pnr_seeds": int,
    "ray_address": str,
    "input_type": str,
    "input_scale": (str, int, float),
    "devices": str,  # scale-out: --devices (e.g. "4xxczu7ev")
    "links": str,  # --link
    "board_top": str,  # --board ulx3s|orangecrab (FINN's "board" names the part)
    "baud": int,
}
FINN_KEYS: dict[str, type | tuple[type, ...]] = {
    "output_dir": str,
    "target_fps": (int, float),
    "synth_clk_period_ns": (int, float),
    "board": str,
    "fpga_part": str,
    "folding_config_file": str,
    "auto_fifo_depths": bool,
}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _check_type(where: str, key: str, value, want) -> None:
    kinds = want if isinstance(want, tuple) else (want,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if isinstance(value, float) and not math.isfinite(value):
        ok = False
    if not ok:
        expected = " or ".join(_TYPE_NAMES[k] for k in kinds if k in _TYPE_NAMES)
        raise QloomError(f"{where}: {key} must be {expected}, got {json.dumps(value)}")


def read_config(path: str | Path) -> dict:
    """The JSON object in `path`, or QloomError naming the file."""
    try:
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise QloomError(f"config file {path}: not a readable JSON file ({e})") from None
    if not isinstance(cfg, dict):
        raise QloomError(f"config file {path}: expected a JSON object such as "
                         '{"output_dir": "build/net", "target_fps": 10000}')  # fmt: skip
    return cfg


def options_from_config(
    cfg: dict, model: str | Path, where: str = "config"
) -> tuple[BuildOptions, list[str]]:
    """BuildOptions for `model` from a config dict, and notes on what was ignored."""
    notes: list[str] = []
    known = {**FINN_KEYS, **QLOOM_KEYS}
    for key, value in cfg.items():
        if key in FINN_IGNORED:
            continue
        if key not in known:
            close = difflib.get_close_matches(key, [*known, *FINN_IGNORED], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise QloomError(
                f"{where}: unknown key {key!r}{hint}; qloom reads FINN's "
                f"{', '.join(FINN_KEYS)} and its own {', '.join(QLOOM_KEYS)}"
            )
        _check_type(where, key, value, known[key])
    ignored = sorted(k for k in cfg if k in FINN_IGNORED)
    if ignored:
        notes.append(f"{where}: FINN keys without a meaning in qloom's flow: {', '.join(ignored)}")

    kw: dict = {"model": Path(model)}
    if "output_dir" in cfg:
        out = Path(cfg["output_dir"])
        kw["out_dir"], kw["name"] = out.parent, out.name
    if "name" in cfg:
        kw["name"] = cfg["name"]
    parts = {k: cfg[k] for k in ("part", "fpga_part", "board") if k in cfg}
    if parts:
        from qloom.synth import get_device

        devices = {k: get_device(v) for k, v in parts.items()}
        if len({d.name for d in devices.values()}) > 1:
            said = ", ".join(f"{k}={v!r} ({devices[k].name})" for k, v in parts.items())
            raise QloomError(f"{where}: the part and the board disagree: {said}")
        kw["part"] = next(iter(parts.values()))
    if "synth_clk_period_ns" in cfg:
        if "clock_mhz" in cfg:
            raise QloomError(f"{where}: give synth_clk_period_ns or clock_mhz, not both")
        if cfg["synth_clk_period_ns"] <= 0:
            raise QloomError(f"{where}: synth_clk_period_ns must be > 0")
        kw["clock_mhz"] = 1000.0 / cfg["synth_clk_period_ns"]
    if "folding_config_file" in cfg:
        kw["folding"] = Path(cfg["folding_config_file"])
    if cfg.get("auto_fifo_depths") is False:
        notes.append(
            f"{where}: auto_fifo_depths is false, but qloom sizes its glue FIFOs by simulation "
            "(FINN's FIFO depths do not apply to qloom's stages)"
        )
    if "input_type" in cfg:
        scale = parse_scale(str(cfg.get("input_scale", "1")))
        kw["input_spec"] = InputSpec(parse_dtype(cfg["input_type"]), scale)
    elif "input_scale" in cfg:
        raise QloomError(f'{where}: input_scale needs input_type (e.g. "UINT8")')
    if "board_top" in cfg:
        kw["board"] = cfg["board_top"]
    direct = {f.name for f in fields(BuildOptions)}
    for key in ("target_fps", *QLOOM_KEYS):
        if key in cfg and key in direct and key != "name":
            kw[key] = cfg[key]
    return BuildOptions(**kw), notes


def config_json(opts: BuildOptions) -> dict:
    """The config file that gives `opts` again (FINN's names where they exist)."""
    out = Path(opts.out_dir) / (opts.name or Path(opts.model).stem)
    cfg: dict = {
        "output_dir": out.as_posix(),
        "fpga_part": opts.part,
        "synth_clk_period_ns": 1000.0 / opts.clock_mhz,
    }
    if opts.target_fps is not None:
        cfg["target_fps"] = opts.target_fps
    if opts.folding is not None:
        cfg["folding_config_file"] = str(opts.folding)
    defaults = BuildOptions(model=opts.model)
    for key in ("max_fps", "max_utilization", "latency_slack", "runtime_weights", "data",
                "sim_frames", "sim_shards", "synth", "pnr_part", "pnr_seeds", "ray_address",
                "devices", "links", "baud"):  # fmt: skip
        if getattr(opts, key) != getattr(defaults, key):
            cfg[key] = getattr(opts, key)
    if opts.board is not None:
        cfg["board_top"] = opts.board
    if opts.input_spec is not None:
        cfg["input_type"] = str(opts.input_spec.dtype)
        cfg["input_scale"] = str(opts.input_spec.scale)  # a Fraction: "1/255" stays exact
    return cfg
