// qloom_emul: elementwise product out = a * b of two AXI-Streams (exact, no wrap-around when
// OBITS holds every product).
//
// Parameters
//   N                      elements of a (and of the output) per frame
//   C                      elements of b per frame: N (same shape: a and b in lockstep), or a
//                          divisor of N (broadcast: element i of a times element i mod C of b,
//                          e.g. a per-channel gate over a channels-last image)
//   PE                     elements per beat on all three streams (divides C)
//   ABITS, ASIGNED, ABIPOLAR  element format of s0_axis (a); BIPOLAR: one bit, 1 -> +1, 0 -> -1
//   BBITS, BSIGNED, BBIPOLAR  element format of s1_axis (b), likewise
//   OBITS                  output element width (two's complement), at most the exact product
//                          width PW = (ABIPOLAR ? 2 : ABITS + 1) + (BBIPOLAR ? 2 : BBITS + 1)
// Same shape (C == N): a beat is taken from both inputs in the same cycle, 1 beat/cycle,
// latency 1. Broadcast (C < N): b's C/PE beats of a frame are written into one of two banks
// (s1 ready while a bank is free), then a's N/PE beats stream past the full bank (s0 ready
// while the bank is full), so the next frame's b loads while a streams: N/PE cycles per frame
// in steady state. The output is registered.
module qloom_emul #(
    parameter integer N        = 1,
    parameter integer C        = 1,
    parameter integer PE       = 1,
    parameter integer ABITS    = 4,
    parameter integer ASIGNED  = 1,
    parameter integer ABIPOLAR = 0,
    parameter integer BBITS    = 4,
    parameter integer BSIGNED  = 1,
    parameter integer BBIPOLAR = 0,
    parameter integer OBITS    = 8
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
  localparam integer XW = (ABIPOLAR != 0) ? 2 : ABITS + 1;
  localparam integer YW = (BBIPOLAR != 0) ? 2 : BBITS + 1;
  localparam integer PW = XW + YW;
  localparam integer CF = (C / PE > 0) ? C / PE : 1;  // beats of b per frame
  localparam integer NB = (N / PE > 0) ? N / PE : 1;  // beats of a per frame
  localparam integer AW = $clog2(2 * CF);  // bank address (also the beat counter of b)
  localparam integer NW = (NB > 1) ? $clog2(NB) : 1;
  localparam integer CFL = CF - 1, NBL = NB - 1;
  localparam [AW-1:0] C_LAST = CFL[AW-1:0];
  localparam [AW-1:0] BANK1 = CF[AW-1:0];
  localparam [NW-1:0] N_LAST = NBL[NW-1:0];

  reg  [PE*OBITS-1:0] od;
  reg                 ov;
  wire                out_free = !ov || m_axis_tready;
  wire [PE*BBITS-1:0] bw;  // the b beat multiplied with the current a beat
  wire                fire;
  wire [PE*OBITS-1:0] res;

  genvar p;
  generate
    if ((C < 1) || (N % C != 0) || (C % PE != 0) || (OBITS > PW) || (OBITS < 1) ||
        ((ABIPOLAR != 0) && (ABITS != 1)) || ((BBIPOLAR != 0) && (BBITS != 1))) begin : g_bad
      qloom_emul_error_bad_parameters u_err ();
    end
    if (C == N) begin : g_same
      assign fire = s0_axis_tvalid && s1_axis_tvalid && out_free;
      assign s0_axis_tready = s1_axis_tvalid && out_free;
      assign s1_axis_tready = s0_axis_tvalid && out_free;
      assign bw = s1_axis_tdata;
    end else begin : g_bcast
      reg [PE*BBITS-1:0] gbuf[0:2*CF-1];
      reg [1:0] full;
      reg wb, rb;  // bank being written / read
      reg [AW-1:0] wi, ri;  // beat of b within the bank
      reg [NW-1:0] ai;  // beat of a within the frame
      wire wfire = s1_axis_tvalid && !full[wb];
      wire [AW-1:0] waddr = (wb ? BANK1 : {AW{1'b0}}) + wi;
      wire [AW-1:0] raddr = (rb ? BANK1 : {AW{1'b0}}) + ri;
      assign fire = s0_axis_tvalid && full[rb] && out_free;
      assign s0_axis_tready = full[rb] && out_free;
      assign s1_axis_tready = !full[wb];
      assign bw = gbuf[raddr];
      always @(posedge ap_clk) begin
        if (wfire) gbuf[waddr] <= s1_axis_tdata;
        if (!ap_rst_n) begin
          full <= 2'b00;
          wb <= 1'b0;
          rb <= 1'b0;
          wi <= {AW{1'b0}};
          ri <= {AW{1'b0}};
          ai <= {NW{1'b0}};
        end else begin
          if (wfire) begin
            if (wi == C_LAST) begin
              wi <= {AW{1'b0}};
              full[wb] <= 1'b1;
              wb <= !wb;
            end else begin
              wi <= wi + 1'b1;
            end
          end
          if (fire) begin
            ri <= (ri == C_LAST) ? {AW{1'b0}} : ri + 1'b1;
            if (ai == N_LAST) begin
              ai <= {NW{1'b0}};
              full[rb] <= 1'b0;
              rb <= !rb;
            end else begin
              ai <= ai + 1'b1;
            end
          end
        end
      end
    end

    for (p = 0; p < PE; p = p + 1) begin : g_pe
      /* verilator lint_off UNUSEDSIGNAL */  // the product's top bits beyond OBITS
      wire signed [PW-1:0] prod;
      /* verilator lint_on UNUSEDSIGNAL */
      qloom_mul #(
          .IBITS(ABITS),
          .ISIGNED(ASIGNED),
          .IBIPOLAR(ABIPOLAR),
          .WBITS(BBITS),
          .WSIGNED(BSIGNED),
          .WBIPOLAR(BBIPOLAR),
          .PW(PW)
      ) u_mul (
          .x(s0_axis_tdata[p*ABITS+:ABITS]),
          .w(bw[p*BBITS+:BBITS]),
          .p(prod)
      );
      assign res[p*OBITS+:OBITS] = prod[OBITS-1:0];
    end
  endgenerate

  always @(posedge ap_clk) begin
    if (fire) od <= res;
    if (!ap_rst_n) ov <= 1'b0;
    else if (fire) ov <= 1'b1;
    else if (m_axis_tready) ov <= 1'b0;
  end
  assign m_axis_tvalid = ov;
  assign m_axis_tdata  = od;
endmodule
