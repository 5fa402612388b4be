// qloom_vvau: vector-vector unit (FINN's VVAU), the multiply-accumulate of a depthwise
// convolution: every channel has its own K2-tap filter and sees only its own input channel.
// A qloom_swu in front produces, per output pixel, its K2 = K_H*K_W window positions in
// order, CH/PE beats of PE channels each (element (kp, c)); for each channel c this module
// computes acc[c] = sum_kp W[c][kp] * x[kp][c] and emits the accumulators (a Thresholding
// stage after it applies the activation).
//
// Parameters
//   CH, PE           channels and channels per beat (PE | CH): CH/PE beats per position
//   K2               filter taps per channel (window positions per output pixel)
//   IBITS, ISIGNED   input element format; IBIPOLAR = 1 reads a 1-bit element as +-1
//   WBITS, WSIGNED   weight format (two's complement); WBIPOLAR = 1: 1-bit weights as +-1
//   ACC_BITS         accumulator width (two's complement, wraps modulo 2^ACC_BITS)
//   WEIGHT_FILE      $readmemh file, K2*CH/PE words of PE*WBITS bits; word kp*(CH/PE) + g,
//                    lane p at [p*WBITS +: WBITS] = W[g*PE + p][kp]
//   RAM_STYLE        weight memory: "auto" | "block" | "distributed"
// The input beats arrive in the weight memory's address order, so one counter addresses it.
// One beat per cycle; pipeline: weight read (with the input registered beside it), then the
// products added to the running sums of the beat's channel group (a CH/PE-word memory read
// asynchronously) or, at the last position, to the output register. All stages stall
// together while the output register is full and not accepted.
module qloom_vvau #(
    parameter integer CH = 4,
    parameter integer PE = 1,
    parameter integer K2 = 9,
    parameter integer IBITS = 4,
    parameter integer ISIGNED = 0,
    parameter integer IBIPOLAR = 0,
    parameter integer WBITS = 4,
    parameter integer WSIGNED = 1,
    parameter integer WBIPOLAR = 0,
    parameter integer ACC_BITS = 16,
    parameter WEIGHT_FILE = "",
    parameter RAM_STYLE = "auto"
) (
    input  wire                   ap_clk,
    input  wire                   ap_rst_n,
    input  wire [  PE*IBITS-1:0] s_axis_tdata,
    input  wire                   s_axis_tvalid,
    output wire                   s_axis_tready,
    output wire [PE*ACC_BITS-1:0] m_axis_tdata,
    output wire                   m_axis_tvalid,
    input  wire                   m_axis_tready
);
  localparam integer CF = CH / PE;
  localparam integer WD = K2 * CF;  // weight memory depth = input beats per pixel
  localparam integer WAW = (WD > 1) ? $clog2(WD) : 1;
  localparam integer AW = (CF > 1) ? $clog2(CF) : 1;
  localparam integer WDL = WD - 1, CFL = CF - 1, LASTP = (K2 - 1) * CF;
  localparam [WAW-1:0] WA_LAST = WDL[WAW-1:0];
  localparam [WAW-1:0] FIRST_END = CFL[WAW-1:0];  // address < CF: the first position
  localparam [WAW-1:0] LAST_START = LASTP[WAW-1:0];  // address >= (K2-1)*CF: the last
  localparam [AW-1:0] CF_LAST = CFL[AW-1:0];
  localparam integer XW = (IBIPOLAR != 0) ? 2 : IBITS + 1;
  localparam integer YW = (WBIPOLAR != 0) ? 2 : WBITS + 1;
  localparam integer PW = XW + YW;
  localparam integer WWORD = PE * WBITS;
  /* verilator lint_off WIDTHEXPAND */
  localparam W_BLOCK = (RAM_STYLE == "block");
  localparam W_DIST = (RAM_STYLE == "distributed");
  localparam HAVE_WFILE = (WEIGHT_FILE != "");
  /* verilator lint_on WIDTHEXPAND */

  reg ov;
  reg [PE*ACC_BITS-1:0] od;
  wire en = !ov || m_axis_tready;
  wire fire = en && s_axis_tvalid;
  assign s_axis_tready = en;
  assign m_axis_tvalid = ov;
  assign m_axis_tdata = od;

  // ---------------------------------------------------------------- stage 0: address
  reg [WAW-1:0] wa;
  reg [ AW-1:0] cg;
  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      wa <= {WAW{1'b0}};
      cg <= {AW{1'b0}};
    end else if (fire) begin
      wa <= (wa == WA_LAST) ? {WAW{1'b0}} : wa + 1'b1;
      cg <= (cg == CF_LAST) ? {AW{1'b0}} : cg + 1'b1;
    end
  end

  // ---------------------------------------------------------------- stage 1: operands
  reg v1, f1, l1;
  reg [AW-1:0] g1;
  reg [PE*IBITS-1:0] x1;
  reg [WWORD-1:0] w1;
  always @(posedge ap_clk) begin
    if (en) begin
      x1 <= s_axis_tdata;
      f1 <= (wa <= FIRST_END);
      /* verilator lint_off UNSIGNED */  // constant for K2 = 1: every beat is the last
      l1 <= (wa >= LAST_START);
      /* verilator lint_on UNSIGNED */
      g1 <= cg;
    end
    if (!ap_rst_n) v1 <= 1'b0;
    else if (en) v1 <= fire;
  end
  generate
    if (W_BLOCK) begin : g_wmem_block
      (* rom_style = "block", ram_style = "block" *) reg [WWORD-1:0] wmem[0:WD-1];
      initial if (HAVE_WFILE) $readmemh(WEIGHT_FILE, wmem);
      always @(posedge ap_clk) if (en) w1 <= wmem[wa];
    end else if (W_DIST) begin : g_wmem_dist
      (* rom_style = "distributed", ram_style = "distributed" *) reg [WWORD-1:0] wmem[0:WD-1];
      initial if (HAVE_WFILE) $readmemh(WEIGHT_FILE, wmem);
      always @(posedge ap_clk) if (en) w1 <= wmem[wa];
    end else begin : g_wmem_auto
      reg [WWORD-1:0] wmem[0:WD-1];
      initial if (HAVE_WFILE) $readmemh(WEIGHT_FILE, wmem);
      always @(posedge ap_clk) if (en) w1 <= wmem[wa];
    end
  endgenerate

  // ---------------------------------------------------------------- stage 2: accumulate
  reg  [PE*ACC_BITS-1:0] sums[0:CF-1];
  wire [PE*ACC_BITS-1:0] old = sums[g1];
  wire [PE*ACC_BITS-1:0] nxt;
  genvar p;
  generate
    if ((CH % PE != 0) || (K2 < 1) ||
        ((IBIPOLAR != 0) && (IBITS != 1)) || ((WBIPOLAR != 0) && (WBITS != 1))) begin : g_bad
      qloom_vvau_error_bad_parameters u_err ();
    end
    for (p = 0; p < PE; p = p + 1) begin : g_pe
      /* verilator lint_off UNUSEDSIGNAL */  // cut to ACC_BITS when the sums are narrower
      wire signed [PW-1:0] prod;
      /* verilator lint_on UNUSEDSIGNAL */
      qloom_mul #(
          .IBITS(IBITS),
          .ISIGNED(ISIGNED),
          .IBIPOLAR(IBIPOLAR),
          .WBITS(WBITS),
          .WSIGNED(WSIGNED),
          .WBIPOLAR(WBIPOLAR),
          .PW(PW)
      ) u_mul (
          .x(x1[p*IBITS+:IBITS]),
          .w(w1[p*WBITS+:WBITS]),
          .p(prod)
      );
      // the product modulo 2^ACC_BITS (the sums wrap likewise; their range fits ACC_BITS)
      wire [ACC_BITS-1:0] ext;
      if (ACC_BITS > PW) begin : g_ext
        assign ext = {{(ACC_BITS - PW) {prod[PW-1]}}, prod};
      end else begin : g_cut
        assign ext = prod[ACC_BITS-1:0];
      end
      wire [ACC_BITS-1:0] a = old[p*ACC_BITS+:ACC_BITS];
      assign nxt[p*ACC_BITS+:ACC_BITS] = f1 ? ext : a + ext;
    end
  endgenerate

  always @(posedge ap_clk) begin
    if (en && v1 && !l1) sums[g1] <= nxt;
    if (en && v1 && l1) od <= nxt;
    if (!ap_rst_n) ov <= 1'b0;
    else if (en) ov <= v1 && l1;
  end
endmodule
