// qloom_add: elementwise out = A_MUL*a + B_MUL*b + BIAS of two AXI-Streams in lockstep.
//
// Parameters
//   N                 elements per frame (documentation/consistency; must be a multiple of PE)
//   PE                elements per beat on all three streams
//   ABITS, ASIGNED    element format of s0_axis (a)
//   BBITS, BSIGNED    element format of s1_axis (b)
//   OBITS             output element width (two's complement, wraps modulo 2^OBITS), <= 64
//   A_MUL, B_MUL, BIAS  32-bit signed integer constants
// A beat is taken from both inputs in the same cycle; the output is registered.
// Arithmetic is exact in 66 bits before the wrap to OBITS.
module qloom_add #(
    parameter integer N       = 1,
    parameter integer PE      = 1,
    parameter integer ABITS   = 8,
    parameter integer ASIGNED = 1,
    parameter integer BBITS   = 8,
    parameter integer BSIGNED = 1,
    parameter integer OBITS   = 9,
    parameter integer A_MUL   = 1,
    parameter integer B_MUL   = 1,
    parameter integer BIAS    = 0
) (
    input  wire                ap_clk,
    input  wire                ap_rst_n,
    input  wire [PE*ABITS-1:0] s0_axis_tdata,
    input  wire                s0_axis_tvalid,
    output wire                s0_axis_tready,
    input  wire [PE*BBITS-1:0] s1_axis_tdata,
    input  wire                s1_axis_tvalid,
    output wire                s1_axis_tready,
    output wire [PE*OBITS-1:0] m_axis_tdata,
    output wire                m_axis_tvalid,
    input  wire                m_axis_tready
);
  localparam integer IW = 66;
  localparam signed [31:0] AM32 = A_MUL;
  localparam signed [31:0] BM32 = B_MUL;
  localparam signed [31:0] BI32 = BIAS;
  localparam signed [IW-1:0] AM = {{(IW - 32) {AM32[31]}}, AM32};
  localparam signed [IW-1:0] BM = {{(IW - 32) {BM32[31]}}, BM32};
  localparam signed [IW-1:0] BI = {{(IW - 32) {BI32[31]}}, BI32};

  reg [PE*OBITS-1:0] od;
  reg ov;
  wire out_free = !ov || m_axis_tready;
  wire fire = s0_axis_tvalid && s1_axis_tvalid && out_free;
  assign s0_axis_tready = s1_axis_tvalid && out_free;
  assign s1_axis_tready = s0_axis_tvalid && out_free;
  assign m_axis_tvalid  = ov;
  assign m_axis_tdata   = od;

  wire [PE*OBITS-1:0] res;
  genvar p;
  generate
    if ((N % PE != 0) || (OBITS > 64) || (ABITS > 32) || (BBITS > 32)) begin : g_bad
      qloom_add_error_bad_parameters u_err ();
    end
    for (p = 0; p < PE; p = p + 1) begin : g_pe
      wire [ABITS-1:0] ar = s0_axis_tdata[p*ABITS+:ABITS];
      wire [BBITS-1:0] br = s1_axis_tdata[p*BBITS+:BBITS];
      wire a_neg = (ASIGNED != 0) && ar[ABITS-1];
      wire b_neg = (BSIGNED != 0) && br[BBITS-1];
      wire signed [IW-1:0] ax = {{(IW - ABITS) {a_neg}}, ar};
      wire signed [IW-1:0] bx = {{(IW - BBITS) {b_neg}}, br};
      /* verilator lint_off UNUSEDSIGNAL */
      wire signed [IW-1:0] sum = ax * AM + bx * BM + BI;
      /* verilator lint_on UNUSEDSIGNAL */
      assign res[p*OBITS+:OBITS] = sum[OBITS-1:0];
    end
  endgenerate

  always @(posedge ap_clk) begin
    if (fire) od <= res;
    if (!ap_rst_n) ov <= 1'b0;
    else if (fire) ov <= 1'b1;
    else if (m_axis_tready) ov <= 1'b0;
  end
endmodule
