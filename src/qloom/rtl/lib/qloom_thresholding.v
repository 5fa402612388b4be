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
// outputs registered, s_axis_tready = !m_axis_tvalid || m_axis_tready. The comparisons and the
// threshold memory are qloom_threshold_lanes (shared with qloom_mvau).
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

  wire en = !m_axis_tvalid || m_axis_tready;
  wire fire = en && s_axis_tvalid;
  assign s_axis_tready = en;

  reg [FW-1:0] nf;
  reg v1, ov;
  reg [PE*IBITS-1:0] x1;
  reg [PE*OBITS-1:0] od;
  assign m_axis_tvalid = ov;
  assign m_axis_tdata  = od;

  generate
    if ((CH % PE != 0) || (NT < 1) || (OBITS > 32)) begin : g_bad
      qloom_thresholding_error_bad_parameters u_err ();
    end
  endgenerate

  // the thresholds of channel group nf are read beside x1 <= s_axis_tdata
  wire [PE*OBITS-1:0] res;
  qloom_threshold_lanes #(
      .N(NF),
      .PE(PE),
      .IBITS(IBITS),
      .ISIGNED(ISIGNED),
      .NT(NT),
      .TBITS(TBITS),
      .OBITS(OBITS),
      .OUT_BASE(OUT_BASE),
      .THRESH_FILE(THRESH_FILE),
      .RAM_STYLE(RAM_STYLE)
  ) u_thr (
      .ap_clk(ap_clk),
      .en(en),
      .addr(nf),
      .x(x1),
      .y(res)
  );

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
