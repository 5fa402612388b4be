// qloom_thresholding: multi-threshold activation on an AXI-Stream (FINN's Thresholding).
//
// Parameters
//   CH           channels; the stream is channels-last, CH/PE beats per pixel
//   PE           elements per beat (PE | CH)
//   IBITS, ISIGNED  input element format
//   NT           thresholds per channel (>= 1)
//   TBITS        threshold width (two's complement)
//   OBITS        output element width
//   OUT_BASE     integer added to the count; out = OUT_BASE + #{k : x >= T[c][k]}  (mod 2^OBITS)
//   THRESH_FILE  $readmemh file: CH/PE words of PE*NT*TBITS bits; word f, lane (p, k) at bits
//                [(p*NT+k)*TBITS +: TBITS] = T[f*PE+p][k] (ascending in k)
//   RAM_STYLE    "auto" | "block" | "distributed" for the threshold memory
// Element p of beat j has channel ((j mod (CH/PE))*PE + p). One beat per cycle, 2 cycles latency;
// outputs registered, s_axis_tready = !m_axis_tvalid || m_axis_tready.
module qloom_thresholding #(
    parameter integer CH = 4,
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
    input  wire                ap_clk,
    input  wire                ap_rst_n,
    input  wire [PE*IBITS-1:0] s_axis_tdata,
    input  wire                s_axis_tvalid,
    output wire                s_axis_tready,
    output wire [PE*OBITS-1:0] m_axis_tdata,
    output wire                m_axis_tvalid,
    input  wire                m_axis_tready
);
  localparam integer NF = CH / PE;
  localparam integer FW = (NF > 1) ? $clog2(NF) : 1;
  localparam integer NFL = NF - 1;
  localparam [FW-1:0] FLAST = NFL[FW-1:0];
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

  wire en = !m_axis_tvalid || m_axis_tready;
  wire fire = en && s_axis_tvalid;
  assign s_axis_tready = en;

  reg [FW-1:0] nf;
  reg v1, ov;
  reg [PE*IBITS-1:0] x1;
  reg [TW-1:0] t1;
  reg [PE*OBITS-1:0] od;
  assign m_axis_tvalid = ov;
  assign m_axis_tdata  = od;

  generate
    if ((CH % PE != 0) || (NT < 1) || (OBITS > 32)) begin : g_bad
      qloom_thresholding_error_bad_parameters u_err ();
    end
    if (STYLE_BLOCK) begin : g_tmem_block
      (* rom_style = "block", ram_style = "block" *) reg [TW-1:0] tmem[0:NF-1];
      initial if (HAVE_FILE) $readmemh(THRESH_FILE, tmem);
      always @(posedge ap_clk) if (en) t1 <= tmem[nf];
    end else if (STYLE_DIST) begin : g_tmem_dist
      (* rom_style = "distributed", ram_style = "distributed" *) reg [TW-1:0] tmem[0:NF-1];
      initial if (HAVE_FILE) $readmemh(THRESH_FILE, tmem);
      always @(posedge ap_clk) if (en) t1 <= tmem[nf];
    end else begin : g_tmem_auto
      reg [TW-1:0] tmem[0:NF-1];
      initial if (HAVE_FILE) $readmemh(THRESH_FILE, tmem);
      always @(posedge ap_clk) if (en) t1 <= tmem[nf];
    end
  endgenerate

  wire [PE*OBITS-1:0] res;
  genvar p, k, b;
  generate
    for (p = 0; p < PE; p = p + 1) begin : g_pe
      wire [IBITS-1:0] xr = x1[p*IBITS+:IBITS];
      wire x_neg = (ISIGNED != 0) && xr[IBITS-1];
      wire signed [CW-1:0] xv = {{(CW - IBITS) {x_neg}}, xr};
      wire [NT-1:0] ge;
      for (k = 0; k < NT; k = k + 1) begin : g_t
        wire [TBITS-1:0] tr = t1[(p*NT+k)*TBITS+:TBITS];
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
        assign res[p*OBITS+:OBITS] = OB + {{(OBITS - NW) {1'b0}}, cnt};
      end else begin : g_narrow
        assign res[p*OBITS+:OBITS] = OB + cnt[OBITS-1:0];
      end
    end
  endgenerate

  always @(posedge ap_clk) begin
    if (en) x1 <= s_axis_tdata;
    if (en) od <= res;
    if (!ap_rst_n) begin
      nf <= {FW{1'b0}};
      v1 <= 1'b0;
      ov <= 1'b0;
    end else if (en) begin
      v1 <= s_axis_tvalid;
      ov <= v1;
      if (fire) nf <= (nf == FLAST) ? {FW{1'b0}} : nf + 1'b1;
    end
  end
endmodule
