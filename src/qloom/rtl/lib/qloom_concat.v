// qloom_concat: channel concatenation of two channels-last streams (FINN's StreamingConcat):
// per pixel, the CH0/PE beats of input 0 and then the CH1/PE beats of input 1.
//
// Parameters
//   CH0, CH1          channels of the two inputs (PE divides both)
//   PE                elements per beat on all three streams
//   BITS0, SIGNED0    input 0 element format (1-bit bipolar data: BITS0 = 1, SIGNED0 = 0)
//   BITS1, SIGNED1    input 1 element format
//   OBITS             output element width (>= both; inputs are sign- or zero-extended)
// One beat per cycle; the output is registered. s0_axis_tready = (input 0's turn) &&
// (!m_axis_tvalid || m_axis_tready), and likewise for input 1: only the input whose turn it is
// can move, so the other waits (the producer side needs FIFO room for it).
module qloom_concat #(
    parameter integer CH0 = 2,
    parameter integer CH1 = 2,
    parameter integer PE = 1,
    parameter integer BITS0 = 4,
    parameter integer SIGNED0 = 0,
    parameter integer BITS1 = 4,
    parameter integer SIGNED1 = 0,
    parameter integer OBITS = 4
) (
    input  wire                ap_clk,
    input  wire                ap_rst_n,
    input  wire [ PE*BITS0-1:0] s0_axis_tdata,
    input  wire                s0_axis_tvalid,
    output wire                s0_axis_tready,
    input  wire [ PE*BITS1-1:0] s1_axis_tdata,
    input  wire                s1_axis_tvalid,
    output wire                s1_axis_tready,
    output wire [PE*OBITS-1:0] m_axis_tdata,
    output wire                m_axis_tvalid,
    input  wire                m_axis_tready
);
  localparam integer NB = (CH0 + CH1) / PE;  // beats per pixel
  localparam integer BW = (NB > 1) ? $clog2(NB) : 1;
  localparam integer NBL = NB - 1, B0 = CH0 / PE;
  localparam [BW-1:0] B_LAST = NBL[BW-1:0];
  localparam [BW-1:0] B0_END = B0[BW-1:0];

  reg  [BW-1:0] beat;  // beat of the current pixel
  wire          turn1 = (beat >= B0_END);
  reg           ov;
  reg  [PE*OBITS-1:0] od;
  wire          en = !ov || m_axis_tready;
  assign s0_axis_tready = en && !turn1;
  assign s1_axis_tready = en && turn1;
  assign m_axis_tvalid = ov;
  assign m_axis_tdata = od;
  wire fire = en && (turn1 ? s1_axis_tvalid : s0_axis_tvalid);

  wire [PE*OBITS-1:0] x0, x1;
  genvar p;
  generate
    if ((CH0 % PE != 0) || (CH1 % PE != 0) || (OBITS < BITS0) || (OBITS < BITS1)) begin : g_bad
      qloom_concat_error_bad_parameters u_err ();
    end
    for (p = 0; p < PE; p = p + 1) begin : g_pe
      wire [BITS0-1:0] a = s0_axis_tdata[p*BITS0+:BITS0];
      wire [BITS1-1:0] b = s1_axis_tdata[p*BITS1+:BITS1];
      if (OBITS > BITS0) begin : g_ext0
        assign x0[p*OBITS+:OBITS] = {{(OBITS - BITS0) {(SIGNED0 != 0) && a[BITS0-1]}}, a};
      end else begin : g_same0
        assign x0[p*OBITS+:OBITS] = a;
      end
      if (OBITS > BITS1) begin : g_ext1
        assign x1[p*OBITS+:OBITS] = {{(OBITS - BITS1) {(SIGNED1 != 0) && b[BITS1-1]}}, b};
      end else begin : g_same1
        assign x1[p*OBITS+:OBITS] = b;
      end
    end
  endgenerate

  always @(posedge ap_clk) begin
    if (fire) od <= turn1 ? x1 : x0;
    if (!ap_rst_n) begin
      ov <= 1'b0;
      beat <= {BW{1'b0}};
    end else begin
      if (fire) ov <= 1'b1;
      else if (m_axis_tready) ov <= 1'b0;
      if (fire) beat <= (beat == B_LAST) ? {BW{1'b0}} : beat + 1'b1;
    end
  end
endmodule
