"""Parameter sets used by the lint and Yosys tests (memory files: see `memory_files`)."""

from __future__ import annotations

CASES: dict[str, list[dict]] = {
    "qloom_fifo": [
        {"WIDTH": 8, "DEPTH": 1},
        {"WIDTH": 8, "DEPTH": 2},
        {"WIDTH": 33, "DEPTH": 5},
        {"WIDTH": 70, "DEPTH": 100},
        {"WIDTH": 4, "DEPTH": 16, "RAM_STYLE": "block"},
        {"WIDTH": 4, "DEPTH": 4, "RAM_STYLE": "registers"},
    ],
    "qloom_dwc": [
        {"IN_WIDTH": 8, "OUT_WIDTH": 8},
        {"IN_WIDTH": 16, "OUT_WIDTH": 4},
        {"IN_WIDTH": 3, "OUT_WIDTH": 12},
        {"IN_WIDTH": 5, "OUT_WIDTH": 10},
    ],
    "qloom_duplicate": [{"WIDTH": 1}, {"WIDTH": 77}],
    # fault injection (simulation only): DEPTH mask words of WIDTH bits
    "qloom_fault": [
        {"WIDTH": 8, "DEPTH": 1, "MASK_FILE": "fault_1x8.hex"},
        {"WIDTH": 1, "DEPTH": 5, "MASK_FILE": "fault_5x1.hex"},
        {"WIDTH": 70, "DEPTH": 64, "MASK_FILE": "fault_64x70.hex"},
    ],
    "qloom_tlast": [{"WIDTH": 8, "BEATS": 1}, {"WIDTH": 24, "BEATS": 2}, {"WIDTH": 5, "BEATS": 49}],
    "qloom_add": [
        {},
        {
            "N": 6,
            "PE": 3,
            "ABITS": 1,
            "ASIGNED": 0,
            "BBITS": 4,
            "OBITS": 5,
            "A_MUL": -3,
            "BIAS": -7,
        },
    ],
    "qloom_emul": [
        {},
        {"N": 24, "C": 4, "PE": 2, "ABITS": 4, "ASIGNED": 0, "BBITS": 3, "OBITS": 7},
        {"N": 6, "C": 6, "PE": 3, "ABITS": 1, "ABIPOLAR": 1, "BBITS": 5, "OBITS": 6},
        {"N": 8, "C": 1, "ABITS": 1, "ABIPOLAR": 1, "BBITS": 1, "BBIPOLAR": 1, "OBITS": 2},
    ],
    "qloom_thresholding": [
        {"CH": 4, "PE": 1, "NT": 1, "THRESH_FILE": "thr_4x8.hex"},
        {
            "CH": 6,
            "PE": 3,
            "IBITS": 4,
            "ISIGNED": 0,
            "NT": 3,
            "TBITS": 6,
            "OBITS": 2,
            "OUT_BASE": -1,
            "THRESH_FILE": "thr_2x54.hex",
        },
        {
            "CH": 8,
            "PE": 8,
            "NT": 15,
            "OBITS": 4,
            "RAM_STYLE": "block",
            "THRESH_FILE": "thr_1x960.hex",
        },
    ],
    # submodule of qloom_thresholding and qloom_mvau
    "qloom_threshold_lanes": [
        {"THRESH_FILE": "thr_1x8.hex"},
        {
            "N": 4,
            "PE": 2,
            "IBITS": 5,
            "ISIGNED": 0,
            "NT": 3,
            "TBITS": 6,
            "OBITS": 2,
            "OUT_BASE": -1,
            "RAM_STYLE": "distributed",
            "THRESH_FILE": "thr_4x36.hex",
        },
        {
            "N": 2,
            "PE": 4,
            "IBITS": 9,
            "NT": 15,
            "TBITS": 12,
            "OBITS": 4,
            "RAM_STYLE": "block",
            "THRESH_FILE": "thr_2x720.hex",
        },
    ],
    "qloom_maxpool": [
        {},
        {"IFM_H": 5, "IFM_W": 7, "CH": 6, "PE": 3, "K": 3, "STRIDE": 3, "BITS": 4, "SIGNED": 1},
        {"K": 1, "STRIDE": 1, "CH": 2, "PE": 2},
        {"IFM_H": 4, "IFM_W": 2, "K": 2, "STRIDE": 2, "CH": 3},
        {"IFM_H": 9, "IFM_W": 1, "K": 3, "STRIDE": 3, "K_W": 1, "STRIDE_W": 1, "CH": 4, "PE": 2},
        {
            "IFM_H": 4,
            "IFM_W": 4,
            "K": 2,
            "STRIDE": 2,
            "CH": 4,
            "PE": 2,
            "BITS": 4,
            "SIGNED": 1,
            "SUM": 1,
            "OBITS": 6,
        },  # fmt: skip
    ],
    "qloom_windowpool": [
        {},
        {"CH": 6, "PE": 2, "K2": 9, "BITS": 4, "SIGNED": 1},
        {"CH": 4, "PE": 4, "K2": 1},
        {"CH": 4, "PE": 1, "K2": 9, "BITS": 3, "SUM": 1, "OBITS": 7},
    ],
    # submodule of qloom_mvau: one PE's dot product and adder tree
    "qloom_dot": [
        {},
        {"SIMD": 1, "IBITS": 4, "ISIGNED": 0, "WBITS": 3},
        {"SIMD": 5, "IBITS": 1, "IBIPOLAR": 1, "WBITS": 3},
        {"SIMD": 7, "IBITS": 2, "ISIGNED": 0, "WBITS": 1, "WBIPOLAR": 1},
        {"SIMD": 100, "IBITS": 2, "WBITS": 2},
        {"SIMD": 8, "IBITS": 1, "WBITS": 1, "BINARY": 1},
        {"SIMD": 70, "IBITS": 1, "WBITS": 1, "BINARY": 1},
    ],
    # submodule of qloom_mvau and qloom_vvau: one product
    "qloom_mul": [
        {},
        {"IBITS": 1, "IBIPOLAR": 1, "WBITS": 4},
        {"IBITS": 8, "ISIGNED": 0, "WBITS": 1, "WBIPOLAR": 1},
        {"IBITS": 1, "IBIPOLAR": 1, "WBITS": 1, "WBIPOLAR": 1},
        {"IBITS": 3, "ISIGNED": 0, "WBITS": 5, "WSIGNED": 1},
    ],
    # submodule of qloom_maxpool and qloom_windowpool
    "qloom_pool_lanes": [
        {},
        {"PE": 3, "BITS": 4, "SIGNED": 1},
        {"PE": 2, "BITS": 3, "SIGNED": 1, "SUM": 1, "OBITS": 7},
        {"PE": 4, "BITS": 2, "SUM": 1, "OBITS": 5},
    ],
    "qloom_concat": [
        {},
        {"CH0": 4, "CH1": 6, "PE": 2, "BITS0": 4, "SIGNED0": 1, "BITS1": 3, "OBITS": 5},
        {"CH0": 1, "CH1": 1, "PE": 1, "BITS0": 1, "BITS1": 1, "OBITS": 1},
    ],
    "qloom_vvau": [
        {"WEIGHT_FILE": "w_9x4.hex"},
        {
            "CH": 6,
            "PE": 3,
            "K2": 9,
            "IBITS": 2,
            "WBITS": 3,
            "ACC_BITS": 8,
            "RAM_STYLE": "block",
            "WEIGHT_FILE": "w_18x9.hex",
        },  # fmt: skip
        {
            "CH": 2,
            "PE": 2,
            "K2": 1,
            "IBITS": 1,
            "IBIPOLAR": 1,
            "WBITS": 1,
            "WSIGNED": 0,
            "WBIPOLAR": 1,
            "ACC_BITS": 2,
            "WEIGHT_FILE": "w_1x2.hex",
        },  # fmt: skip
        # SIMD taps per beat: 3 x 2 channels per beat, and the whole kernel of 4 channels
        {
            "CH": 4,
            "PE": 2,
            "K2": 9,
            "SIMD": 3,
            "IBITS": 4,
            "WBITS": 4,
            "ACC_BITS": 12,
            "WEIGHT_FILE": "w_6x24.hex",
        },  # fmt: skip
        {
            "CH": 4,
            "PE": 4,
            "K2": 9,
            "SIMD": 9,
            "IBITS": 2,
            "ISIGNED": 1,
            "WBITS": 3,
            "ACC_BITS": 9,
            "RAM_STYLE": "distributed",
            "WEIGHT_FILE": "w_1x108.hex",
        },  # fmt: skip
    ],
    "qloom_labelselect": [
        {},
        {"N": 10, "PE": 5, "K": 3, "BITS": 4, "SIGNED": 0},
        {"N": 4, "PE": 4, "K": 4},
        {"N": 1, "PE": 1, "K": 1},
    ],
    "qloom_mvau": [
        {"MW": 4, "MH": 4, "WEIGHT_FILE": "w_16x1.hex"},
        {
            "MW": 8,
            "MH": 4,
            "PE": 2,
            "SIMD": 4,
            "NT": 1,
            "OBITS": 1,
            "ACC_BITS": 4,
            "TBITS": 5,
            "WEIGHT_FILE": "w_4x8.hex",
            "THRESH_FILE": "thr_2x10.hex",
        },
        {  # no memory output register, no register in the dot's tree
            "MW": 8,
            "MH": 4,
            "PE": 2,
            "SIMD": 4,
            "MEM_REG": 0,
            "DOT_CUT": 0,
            "WEIGHT_FILE": "w_4x8.hex",
        },
        {
            "BINARY": 0,
            "IBITS": 4,
            "ISIGNED": 0,
            "WBITS": 3,
            "WSIGNED": 1,
            "MW": 6,
            "MH": 6,
            "SIMD": 3,
            "PE": 3,
            "NT": 3,
            "OBITS": 2,
            "OUT_BASE": -1,
            "ACC_BITS": 12,
            "TBITS": 12,
            "WEIGHT_FILE": "w_4x27.hex",
            "THRESH_FILE": "thr_2x108.hex",
            "RAM_STYLE": "distributed",
        },
        {
            "BINARY": 0,
            "IBITS": 2,
            "WBITS": 1,
            "WBIPOLAR": 1,
            "MW": 5,
            "MH": 3,
            "SIMD": 5,
            "PE": 3,
            "ACC_BITS": 8,
            "WEIGHT_FILE": "w_1x15.hex",
        },
        {
            "BINARY": 0,
            "IBITS": 8,
            "ISIGNED": 1,
            "WBITS": 8,
            "WSIGNED": 1,
            "ACC_BITS": 20,
            "RAM_STYLE": "block",
            "WEIGHT_FILE": "w_16x8.hex",
        },
        # run-time weights (WLOAD = 1): no weight file
        {"MW": 8, "MH": 4, "PE": 2, "SIMD": 4, "WLOAD": 1, "RAM_STYLE": "ultra"},
        {
            "BINARY": 0,
            "IBITS": 4,
            "WBITS": 3,
            "WSIGNED": 1,
            "MW": 24,
            "MH": 6,
            "SIMD": 4,
            "PE": 3,
            "NT": 3,
            "OBITS": 2,
            "ACC_BITS": 12,
            "TBITS": 12,
            "THRESH_FILE": "thr_2x108.hex",
            "WLOAD": 1,
            "RAM_STYLE": "block",
        },  # 36-bit memory words: two host words each
        {"MW": 4, "MH": 4, "WLOAD": 1, "RAM_STYLE": "distributed", "MEM_REG": 0},
        {"MW": 4, "MH": 4, "SIMD": 4, "PE": 4, "WLOAD": 1},  # one memory word
    ],
    "qloom_swu": [
        {},
        {
            "IFM_H": 5,
            "IFM_W": 6,
            "CH": 4,
            "SIMD": 2,
            "PAD_T": 1,
            "PAD_L": 1,
            "PAD_B": 1,
            "PAD_R": 1,
            "BITS": 3,
        },
        {"K_H": 1, "K_W": 1},
        # depthwise order (KSIMD positions per beat): part of a row, and whole rows
        {
            "IFM_H": 5,
            "IFM_W": 5,
            "CH": 4,
            "SIMD": 2,
            "PAD_T": 1,
            "PAD_L": 1,
            "PAD_B": 1,
            "PAD_R": 1,
            "BITS": 3,
            "KSIMD": 3,
        },  # fmt: skip
        {
            "IFM_H": 6,
            "IFM_W": 5,
            "K_H": 3,
            "K_W": 2,
            "CH": 2,
            "BITS": 2,
            "KSIMD": 6,
            "RAM_STYLE": "block",
        },  # fmt: skip
        {
            "IFM_H": 7,
            "IFM_W": 7,
            "K_H": 3,
            "K_W": 2,
            "STRIDE_H": 2,
            "STRIDE_W": 3,
            "CH": 3,
            "BITS": 8,
            "PAD_VALUE": 5,
            "RAM_STYLE": "block",
        },
        {
            "IFM_H": 2,
            "IFM_W": 2,
            "K_H": 3,
            "K_W": 3,
            "PAD_T": 1,
            "PAD_B": 1,
            "PAD_L": 1,
            "PAD_R": 1,
        },
    ],
    # tables: NO words of 2^(FANIN*IBITS)*OBITS bits; connections: NO*FANIN words
    # run-time weight loader (submodule of qloom_mvau)
    "qloom_wload": [{}, {"WIDTH": 1, "DEPTH": 1}, {"WIDTH": 70, "DEPTH": 5}, {"WIDTH": 64}],
    "qloom_truthtable": [
        {},
        {"CONN_FILE": "tt_conn_8x2.hex", "TABLE_FILE": "tt_4x32.hex"},
        {
            "NI": 16,
            "NO": 8,
            "OBITS": 1,
            "FANIN": 3,
            "CONN_FILE": "tt_conn_24x4.hex",
            "TABLE_FILE": "tt_8x64.hex",
        },
        {
            "NI": 1,
            "IBITS": 1,
            "NO": 3,
            "OBITS": 3,
            "FANIN": 1,
            "CONN_FILE": "tt_conn_3x1.hex",
            "TABLE_FILE": "tt_3x6.hex",
        },
        {
            "NI": 5,
            "IBITS": 3,
            "NO": 2,
            "FANIN": 4,
            "CONN_FILE": "tt_conn_8x3.hex",
            "TABLE_FILE": "tt_2x8192.hex",
        },
    ],
    # the board top's serial port (qloom.deploy.board): receiver, transmitter, the bridge
    "qloom_uart_rx": [{}, {"CLKS_PER_BIT": 2}, {"CLKS_PER_BIT": 3}, {"CLKS_PER_BIT": 868}],
    "qloom_uart_tx": [{}, {"CLKS_PER_BIT": 1}, {"CLKS_PER_BIT": 2}, {"CLKS_PER_BIT": 33}],
    "qloom_uart_bridge": [
        {},
        {"IN_WIDTH": 1, "OUT_WIDTH": 7, "CLKS_PER_BIT": 2, "RX_FIFO_DEPTH": 2},
        {"IN_WIDTH": 49, "OUT_WIDTH": 70, "CLKS_PER_BIT": 33, "RX_FIFO_DEPTH": 224},
        {"IN_WIDTH": 16, "OUT_WIDTH": 8, "CLKS_PER_BIT": 868, "RX_FIFO_DEPTH": 64},
    ],
}


def memory_files(params: dict) -> dict[str, str]:
    """Hex file name -> contents (all zero words) for the *_FILE parameters of a case.

    The file name encodes depth x width: "w_16x1.hex" is 16 words of 1 bit.
    """
    out = {}
    for k, v in params.items():
        if k.endswith("_FILE"):
            depth, width = v.split("_")[-1].removesuffix(".hex").split("x")
            ndig = (int(width) + 3) // 4
            out[v] = ("0" * ndig + "\n") * int(depth)
    return out
