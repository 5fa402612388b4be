// qloom_dot: one PE lane's dot product of SIMD elements, as qloom_mvau computes it: the
// products (or, in XNOR mode, the match counts of 3-lane groups of input XNOR weight) summed by
// an adder tree with one register level. No handshake: the parent's stall enable `en` clocks
// the register level.
//
// Parameters
//   SIMD          elements per dot product
//   IBITS, ISIGNED, IBIPOLAR   input element format (qloom_mul)
//   WBITS, WSIGNED, WBIPOLAR   weight element format (qloom_mul)
//   ONES_COMP     1 (WBIPOLAR only): a -1 weight contributes ~x = -x - 1 (an inverter in the
//                 adder's input LUT) instead of -x (a negation carry chain on the critical
//                 path): ps is the exact sum minus the number of -1 weights
//   CUT_REG       1: level CUT of the tree is registered (one cycle of latency); 0: the whole
//                 tree is combinational (small trees, where the register does not serve Fmax)
//   BINARY        1: XNOR-popcount (IBITS = WBITS = 1): ps = #{i : x[i] == w[i]}
//   PSW           output width: $clog2(SIMD + 1) when BINARY, else PW + $clog2(SIMD) + 1 with
//                 PW the product width of qloom_mul (the exact sum always fits)
// Timing: the tree's NL leaves (SIMD products, or ceil(SIMD / 3) full-adder counts) are padded
// to L2 = 2^LEVELS leaves and stored heap-ordered (node i has children 2i and 2i+1, leaves at
// L2..2*L2-1; the root is level 0). The nodes of level CUT = ceil(LEVELS / 2) are registers
// loaded when en = 1: ps is the sum of the registers' values, combinational (one cycle of
// latency from x and w).
//
// Written as generate blocks (one qloom_mul and one adder per tree node), a fully parallel
// layer (PE x SIMD = 50k products for MNIST's 784 x 64) became ~130 MB of C++ that took 12-21
// minutes to verilate and compile; as loops here it is ~0.02 MB per PE. Synthesis flattens the
// module: the same cells as the generate tree.
module qloom_dot #(
    parameter integer SIMD = 4,
    parameter integer IBITS = 2,
    parameter integer ISIGNED = 1,
    parameter integer IBIPOLAR = 0,
    parameter integer WBITS = 2,
    parameter integer WSIGNED = 1,
    parameter integer WBIPOLAR = 0,
    parameter integer BINARY = 0,
    parameter integer ONES_COMP = 0,
    parameter integer CUT_REG = 1,
    parameter integer PSW = (BINARY != 0) ? $clog2(SIMD + 1) :
        ((IBIPOLAR != 0) ? 2 : IBITS + 1) + ((WBIPOLAR != 0) ? 2 : WBITS + 1) + $clog2(SIMD) + 1
) (
    input  wire                  ap_clk,
    input  wire                  en,
    input  wire [SIMD*IBITS-1:0] x,
    input  wire [SIMD*WBITS-1:0] w,
    output wire [       PSW-1:0] ps
);
  localparam integer XW = (IBIPOLAR != 0) ? 2 : IBITS + 1;
  localparam integer YW = (WBIPOLAR != 0) ? 2 : WBITS + 1;
  localparam integer PW = XW + YW;  // product
  localparam integer PSW_OK = (BINARY != 0) ? $clog2(SIMD + 1) : PW + $clog2(SIMD) + 1;
  localparam integer CB = 3;  // XNOR lanes per leaf (a full adder)
  localparam integer NL = (BINARY != 0) ? (SIMD + CB - 1) / CB : SIMD;
  localparam integer L2 = (NL > 1) ? (1 << $clog2(NL)) : 1;
  localparam integer LEVELS = $clog2(L2);
  localparam integer CUT = (LEVELS + 1) / 2;

  generate
    if ((PSW != PSW_OK) || (SIMD < 1) ||
        ((BINARY != 0) && ((IBITS != 1) || (WBITS != 1))) ||
        ((ONES_COMP != 0) && (WBIPOLAR == 0))) begin : g_bad
      qloom_dot_error_bad_parameters u_err ();
    end
  endgenerate

  // Leaves and tree are loops over arrays: Verilator keeps them as loops (unroll_disable:
  // compact C++, which it still writes once per instance), synthesis unrolls them into the
  // adders a generate tree describes (every index constant; mem2reg turns the arrays into
  // wires and registers). Verilator cannot see that a loop assigns every element: LATCH is
  // off for the loops.
  localparam integer C2 = 1 << CUT;  // the CUT level: nodes C2 .. 2*C2-1
  (* mem2reg *) reg [PSW-1:0] lo[1:2*L2-1];  // levels CUT..LEVELS: leaves (zero beyond NL),
  // the sums below the registers (one always block writes all of it)
  (* mem2reg *) reg [PSW-1:0] cut[C2:2*C2-1];  // the registers
  (* mem2reg *) reg [PSW-1:0] hi[1:2*C2-1];  // levels 0..CUT: the registers, the sums above
  integer jr, jh;

  /* verilator lint_off LATCH */
  generate
    if (BINARY != 0) begin : g_xnor
      // leaves: the matches of 3 lanes counted by one full adder (sum = parity, carry =
      // majority of the 3 XNORs: each a 6-input function, one LUT6), so the XNORs cost no LUTs
      // of their own and the tree starts from 2-bit leaves; the last leaf's missing lanes are 0.
      // (16-lane $countones chunks cost 2.06 LUT per lane on a 64 x 8 popcount, these 1.50.)
      wire [NL*CB-1:0] eq = {{(NL * CB - SIMD) {1'b0}}, ~(x ^ w)};
      reg [CB-1:0] e;
      /* verilator lint_off UNUSEDSIGNAL */
      reg [PSW+1:0] fa;  // the full adder's 2 bits, widened (PSW is 1 when SIMD = 1)
      /* verilator lint_on UNUSEDSIGNAL */
      integer j;
      always @* begin
        /* verilator unroll_disable */
        for (j = 0; j < L2; j = j + 1) begin
          if (j < NL) begin
            e = eq[j*CB+:CB];
            fa = {{PSW{1'b0}}, (e[0] & e[1]) | (e[0] & e[2]) | (e[1] & e[2]), e[0] ^ e[1] ^ e[2]};
            lo[L2+j] = fa[PSW-1:0];
          end else begin
            lo[L2+j] = {PSW{1'b0}};
          end
        end
        /* verilator unroll_disable */
        for (j = L2 - 1; j >= C2; j = j - 1) lo[j] = lo[2*j] + lo[2*j+1];
      end
    end else begin : g_mac
      // the products of qloom_mul (a bipolar operand only selects the other one's sign),
      // sign-extended to PSW bits
      reg [IBITS-1:0] xr;
      reg [WBITS-1:0] wr;
      reg signed [XW-1:0] xv;
      reg signed [YW-1:0] yv;
      reg signed [PW-1:0] pr;
      integer j;
      always @* begin
        /* verilator unroll_disable */
        for (j = 0; j < L2; j = j + 1) begin
          if (j < SIMD) begin
            xr = x[j*IBITS+:IBITS];
            wr = w[j*WBITS+:WBITS];
            xv = {(ISIGNED != 0) && xr[IBITS-1], xr};
            yv = {(WSIGNED != 0) && wr[WBITS-1], wr};
            if (WBIPOLAR != 0 && ONES_COMP != 0) pr = {{(PW - XW) {xv[XW-1]}}, xv} ^
                                                      {PW{~wr[0]}};
            else if (WBIPOLAR != 0) pr = wr[0] ? {{(PW - XW) {xv[XW-1]}}, xv} :
                                                   -{{(PW - XW) {xv[XW-1]}}, xv};
            else if (IBIPOLAR != 0) pr = xr[0] ? {{(PW - YW) {yv[YW-1]}}, yv} :
                                                   -{{(PW - YW) {yv[YW-1]}}, yv};
            else pr = xv * yv;
            lo[L2+j] = {{(PSW - PW) {pr[PW-1]}}, pr};
          end else begin
            lo[L2+j] = {PSW{1'b0}};
          end
        end
        /* verilator unroll_disable */
        for (j = L2 - 1; j >= C2; j = j - 1) lo[j] = lo[2*j] + lo[2*j+1];
      end
    end
  endgenerate

  generate
    if (CUT_REG != 0) begin : g_cut
      always @(posedge ap_clk)
        if (en) begin
          /* verilator unroll_disable */
          for (jr = C2; jr < 2 * C2; jr = jr + 1) cut[jr] <= lo[jr];
        end
    end else begin : g_nocut
      /* verilator lint_off UNUSEDSIGNAL */
      wire unused_clk_en = &{1'b0, ap_clk, en};
      /* verilator lint_on UNUSEDSIGNAL */
      always @* begin
        /* verilator unroll_disable */
        for (jr = C2; jr < 2 * C2; jr = jr + 1) cut[jr] = lo[jr];
      end
    end
  endgenerate
  always @* begin
    /* verilator unroll_disable */
    for (jh = C2; jh < 2 * C2; jh = jh + 1) hi[jh] = cut[jh];
    /* verilator unroll_disable */
    for (jh = C2 - 1; jh >= 1; jh = jh - 1) hi[jh] = hi[2*jh] + hi[2*jh+1];
  end
  /* verilator lint_on LATCH */
  assign ps = hi[1];  // the root
endmodule
