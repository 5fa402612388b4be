// qloom_vvau: vector-vector unit (FINN's VVAU), the multiply-accumulate of a depthwise
// convolution: every channel has its own K2-tap filter and sees only its own input channel.
// A qloom_swu in front produces, per output pixel, its K2 = K_H*K_W window positions in
// order, CH/PE beats of PE channels each (element (kp, c)); for each channel c this module
// computes acc[c] = sum_kp W[c][kp] * x[kp][c] and emits the accumulators (a Thresholding
// stage after it applies the activation).
// With SIMD > 1 (SIMD | K2), the SWU runs in its depthwise order (KSIMD = SIMD): per pixel, the
// CF = CH/PE channel groups in turn, each as K2/SIMD beats of SIMD positions x PE channels
// (element j*PE + p of beat t of group g: position t*SIMD + j, channel g*PE + p), so a beat
// holds PE*SIMD products and each group's sum is complete after K2/SIMD consecutive beats.
//
// Parameters
//   CH, PE           channels and channels per beat (PE | CH): CH/PE beats per position
//   K2               filter taps per channel (window positions per output pixel)
//   SIMD             taps per beat (SIMD | K2); 1: (position, channel) order as above
//   IBITS, ISIGNED   input element format; IBIPOLAR = 1 reads a 1-bit element as +-1
//   WBITS, WSIGNED   weight format (two's complement); WBIPOLAR = 1: 1-bit weights as +-1
//   ACC_BITS         accumulator width (two's complement, wraps modulo 2^ACC_BITS)
//   WEIGHT_FILE      $readmemh file, K2*CH/(PE*SIMD) words of SIMD*PE*WBITS bits in the input
//                    beats' order. SIMD = 1: word kp*(CH/PE) + g, lane p at [p*WBITS +: WBITS] =
//                    W[g*PE + p][kp]; SIMD > 1: word g*(K2/SIMD) + t, lane j*PE + p =
//                    W[g*PE + p][t*SIMD + j]
//   RAM_STYLE        weight memory: "auto" | "block" | "distributed"
// The input beats arrive in the weight memory's address order, so one counter addresses it.
// One beat per cycle; pipeline: weight read (with the input registered beside it), then the
// products (summed over the SIMD taps of each lane) added to the running sums of the beat's
// channel group (SIMD = 1: a CH/PE-word memory read asynchronously; SIMD > 1: one word, the
// group's beats being consecutive) or, at the group's last beat, to the output register. All stages stall
// together while the output register is full and not accepted.
module qloom_vvau #(
    parameter integer CH = 4,
    parameter integer PE = 1,
    parameter integer K2 = 9,
    parameter integer SIMD = 1,
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
    input  wire [SIMD*PE*IBITS-1:0] s_axis_tdata,
    input  wire                   s_axis_tvalid,
    output wire                   s_axis_tready,
    output wire [PE*ACC_BITS-1:0] m_axis_tdata,
    output wire                   m_axis_tvalid,
    input  wire                   m_axis_tready
);
  localparam integer CF = CH / PE;
  localparam integer KB = K2 / SIMD;  // beats per channel group and pixel
  localparam integer WD = KB * CF;  // weight memory depth = input beats per pixel
  localparam integer WAW = (WD > 1) ? $clog2(WD) : 1;
  localparam integer SD = (SIMD == 1) ? CF : 1;  // running sums (words)
  localparam integer AW = (SD > 1) ? $clog2(SD) : 1;
  // beat counters: inner (fastest) and outer; SIMD = 1: group inner, position outer;
  // SIMD > 1: beat of the group inner, group outer
  localparam integer NI = (SIMD == 1) ? CF : KB, NO = (SIMD == 1) ? K2 : CF;
  localparam integer IW = (NI > 1) ? $clog2(NI) : 1, OW = (NO > 1) ? $clog2(NO) : 1;
  localparam integer WDL = WD - 1, NIL = NI - 1, NOL = NO - 1;
  localparam [WAW-1:0] WA_LAST = WDL[WAW-1:0];
  localparam [IW-1:0] NI_LAST = NIL[IW-1:0];
  localparam [OW-1:0] NO_LAST = NOL[OW-1:0];
  localparam integer XW = (IBIPOLAR != 0) ? 2 : IBITS + 1;
  localparam integer YW = (WBIPOLAR != 0) ? 2 : WBITS + 1;
  localparam integer PW = XW + YW;
  localparam integer WWORD = SIMD * PE * WBITS;
  localparam integer XWORD = SIMD * PE * IBITS;
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
  reg [ IW-1:0] ci;
  reg [ OW-1:0] co;
  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      wa <= {WAW{1'b0}};
      ci <= {IW{1'b0}};
      co <= {OW{1'b0}};
    end else if (fire) begin
      wa <= (wa == WA_LAST) ? {WAW{1'b0}} : wa + 1'b1;
      ci <= (ci == NI_LAST) ? {IW{1'b0}} : ci + 1'b1;
      if (ci == NI_LAST) co <= (co == NO_LAST) ? {OW{1'b0}} : co + 1'b1;
    end
  end
  // the beat's running-sum word, and whether it is its group's first / last beat
  wire [AW-1:0] cg;
  wire first, last;
  generate
    if (SIMD == 1) begin : g_pos_major
      assign first = (co == {OW{1'b0}});
      assign last = (co == NO_LAST);
      if (SD > 1) begin : g_cg
        assign cg = ci[AW-1:0];
      end else begin : g_cg0
        assign cg = 1'b0;
      end
    end else begin : g_group_major
      assign first = (ci == {IW{1'b0}});
      assign last = (ci == NI_LAST);
      assign cg = 1'b0;
    end
  endgenerate

  // ---------------------------------------------------------------- stage 1: operands
  reg v1, f1, l1;
  reg [AW-1:0] g1;
  reg [XWORD-1:0] x1;
  reg [WWORD-1:0] w1;
  always @(posedge ap_clk) begin
    if (en) begin
      x1 <= s_axis_tdata;
      f1 <= first;
      l1 <= last;
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
  reg  [PE*ACC_BITS-1:0] sums[0:SD-1];
  wire [PE*ACC_BITS-1:0] old = sums[g1];
  wire [PE*ACC_BITS-1:0] nxt;
  genvar p, j;
  generate
    if ((CH % PE != 0) || (K2 < 1) || (SIMD < 1) || (K2 % SIMD != 0) ||
        ((IBIPOLAR != 0) && (IBITS != 1)) || ((WBIPOLAR != 0) && (WBITS != 1))) begin : g_bad
      qloom_vvau_error_bad_parameters u_err ();
    end
    for (p = 0; p < PE; p = p + 1) begin : g_pe
      // chain[j] = the sum of the lane's first j products, modulo 2^ACC_BITS (the sums wrap
      // likewise; their range fits ACC_BITS)
      wire [(SIMD+1)*ACC_BITS-1:0] chain;
      assign chain[ACC_BITS-1:0] = {ACC_BITS{1'b0}};
      for (j = 0; j < SIMD; j = j + 1) begin : g_tap
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
            .x(x1[(j*PE+p)*IBITS+:IBITS]),
            .w(w1[(j*PE+p)*WBITS+:WBITS]),
            .p(prod)
        );
        wire [ACC_BITS-1:0] ext;
        if (ACC_BITS > PW) begin : g_ext
          assign ext = {{(ACC_BITS - PW) {prod[PW-1]}}, prod};
        end else begin : g_cut
          assign ext = prod[ACC_BITS-1:0];
        end
        assign chain[(j+1)*ACC_BITS+:ACC_BITS] = chain[j*ACC_BITS+:ACC_BITS] + ext;
      end
      wire [ACC_BITS-1:0] ext = chain[SIMD*ACC_BITS+:ACC_BITS];
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
