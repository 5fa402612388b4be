// qloom_threshold_lanes: the multi-threshold activation of PE lanes and its threshold memory,
// shared by qloom_thresholding and qloom_mvau (NT > 0). No handshake: the parent's stall
// enable `en` clocks the memory read.
//
// Parameters
//   N            threshold memory depth (words); addr has max(1, $clog2(N)) bits
//   PE           lanes
//   IBITS, ISIGNED  input element format (ISIGNED = 0: zero-extended)
//   NT           thresholds per lane (>= 1)
//   TBITS        threshold width (two's complement)
//   OBITS        output element width (<= 32)
//   OUT_BASE     y = OUT_BASE + #{k : x >= T[k]}  (mod 2^OBITS)
//   THRESH_FILE  $readmemh file: N words of PE*NT*TBITS bits; lane (p, k) at
//                [(p*NT+k)*TBITS +: TBITS], ascending in k
//   RAM_STYLE    "auto" | "block" | "distributed" for the threshold memory
// Timing: at a clock edge with en = 1 the memory word at addr is registered; y is the
// combinational activation of x against that registered word (drive x from a register loaded
// at the same edge, so x and its thresholds line up).
module qloom_threshold_lanes #(
    parameter integer N = 1,
    parameter integer PE = 1,
    parameter integer IBITS = 8,
    parameter integer ISIGNED = 1,
    parameter integer NT = 1,
    parameter integer TBITS = 8,
    parameter integer OBITS = 1,
    parameter integer OUT_BASE = 0,
    parameter THRESH_FILE = "",
    parameter RAM_STYLE = "auto"
) (
    input  wire                                 ap_clk,
    input  wire                                 en,
    input  wire [((N > 1) ? $clog2(N) : 1)-1:0] addr,
    input  wire [                 PE*IBITS-1:0] x,
    output wire [                 PE*OBITS-1:0] y
);
  localparam integer TW = PE * NT * TBITS;
  // comparison width: holds every input value and every threshold, signed
  localparam integer CW = ((IBITS + 1 > TBITS) ? IBITS + 1 : TBITS) + 1;
  localparam integer NW = $clog2(NT + 1);
  localparam [OBITS-1:0] OB = OUT_BASE[OBITS-1:0];
  /* verilator lint_off WIDTHEXPAND */
  localparam STYLE_BLOCK = (RAM_STYLE == "block");
  localparam STYLE_DIST = (RAM_STYLE == "distributed");
  localparam HAVE_FILE = (THRESH_FILE != "");
  /* verilator lint_on WIDTHEXPAND */

  reg [TW-1:0] t;
  generate
    if ((N < 1) || (NT < 1) || (OBITS > 32)) begin : g_bad
      qloom_threshold_lanes_error_bad_parameters u_err ();
    end
    if (STYLE_BLOCK) begin : g_tmem_block
      (* rom_style = "block", ram_style = "block" *) reg [TW-1:0] tmem[0:N-1];
      initial if (HAVE_FILE) $readmemh(THRESH_FILE, tmem);
      always @(posedge ap_clk) if (en) t <= tmem[addr];
    end else if (STYLE_DIST) begin : g_tmem_dist
      (* rom_style = "distributed", ram_style = "distributed" *) reg [TW-1:0] tmem[0:N-1];
      initial if (HAVE_FILE) $readmemh(THRESH_FILE, tmem);
      always @(posedge ap_clk) if (en) t <= tmem[addr];
    end else begin : g_tmem_auto
      reg [TW-1:0] tmem[0:N-1];
      initial if (HAVE_FILE) $readmemh(THRESH_FILE, tmem);
      always @(posedge ap_clk) if (en) t <= tmem[addr];
    end
  endgenerate

  genvar p, k, b;
  generate
    for (p = 0; p < PE; p = p + 1) begin : g_pe
      wire [IBITS-1:0] xr = x[p*IBITS+:IBITS];
      wire x_neg = (ISIGNED != 0) && xr[IBITS-1];
      wire signed [CW-1:0] xv = {{(CW - IBITS) {x_neg}}, xr};
      wire [NT-1:0] ge;
      for (k = 0; k < NT; k = k + 1) begin : g_t
        wire [TBITS-1:0] tr = t[(p*NT+k)*TBITS+:TBITS];
        wire signed [CW-1:0] tv = {{(CW - TBITS) {tr[TBITS-1]}}, tr};
        assign ge[k] = (xv >= tv);
      end
      // ge is a thermometer code (the thresholds ascend): the count is the position of its
      // last 1 plus one, so an OR tree per count bit over the one-hot "last 1" replaces the
      // adder tree of $countones (much shallower for 2^n - 1 thresholds)
      wire [NW-1:0] cnt;
      if (NT == 1) begin : g_one
        assign cnt = ge;
      end else begin : g_thermo
        wire [NT-1:0] last = ge & ~{1'b0, ge[NT-1:1]};
        for (b = 0; b < NW; b = b + 1) begin : g_bit
          wire [NT-1:0] sel;
          for (k = 0; k < NT; k = k + 1) begin : g_sel
            assign sel[k] = last[k] && (((k + 1) >> b) % 2 == 1);
          end
          assign cnt[b] = |sel;
        end
      end
      if (OBITS > NW) begin : g_wide
        assign y[p*OBITS+:OBITS] = OB + {{(OBITS - NW) {1'b0}}, cnt};
      end else begin : g_narrow
        assign y[p*OBITS+:OBITS] = OB + cnt[OBITS-1:0];
      end
    end
  endgenerate
endmodule
