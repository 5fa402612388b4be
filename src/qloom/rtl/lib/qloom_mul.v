// qloom_mul: the product of one input element and one weight, as qloom_mvau and qloom_vvau
// compute it (shared by both). Combinational, no handshake.
//
// Parameters
//   IBITS, ISIGNED, IBIPOLAR   input element format (BIPOLAR: one bit, 1 -> +1, 0 -> -1)
//   WBITS, WSIGNED, WBIPOLAR   weight format, likewise
//   PW                         product width: must be XW + YW with XW = IBIPOLAR ? 2 : IBITS + 1
//                              and YW = WBIPOLAR ? 2 : WBITS + 1 (the exact product always fits)
// A bipolar operand only selects the sign of the other one: no multiplier (and no DSP) for it.
module qloom_mul #(
    parameter integer IBITS = 2,
    parameter integer ISIGNED = 1,
    parameter integer IBIPOLAR = 0,
    parameter integer WBITS = 2,
    parameter integer WSIGNED = 1,
    parameter integer WBIPOLAR = 0,
    parameter integer PW = ((IBIPOLAR != 0) ? 2 : IBITS + 1) + ((WBIPOLAR != 0) ? 2 : WBITS + 1)
) (
    input  wire        [IBITS-1:0] x,
    input  wire        [WBITS-1:0] w,
    output wire signed [   PW-1:0] p
);
  localparam integer XW = (IBIPOLAR != 0) ? 2 : IBITS + 1;
  localparam integer YW = (WBIPOLAR != 0) ? 2 : WBITS + 1;
  /* verilator lint_off UNUSEDSIGNAL */  // a bipolar side only gives the sign
  wire signed [XW-1:0] xv;
  wire signed [YW-1:0] yv;
  /* verilator lint_on UNUSEDSIGNAL */
  generate
    if ((PW != XW + YW) || ((IBIPOLAR != 0) && (IBITS != 1)) ||
        ((WBIPOLAR != 0) && (WBITS != 1))) begin : g_bad
      qloom_mul_error_bad_parameters u_err ();
    end
    if (IBIPOLAR != 0) begin : g_xb
      assign xv = x[0] ? 2'sb01 : 2'sb11;
    end else begin : g_xi
      assign xv = {(ISIGNED != 0) && x[IBITS-1], x};
    end
    if (WBIPOLAR != 0) begin : g_wb
      assign yv = w[0] ? 2'sb01 : 2'sb11;
    end else begin : g_wi
      assign yv = {(WSIGNED != 0) && w[WBITS-1], w};
    end
    if (WBIPOLAR != 0) begin : g_pw
      assign p = w[0] ? {{(PW - XW) {xv[XW-1]}}, xv} : -{{(PW - XW) {xv[XW-1]}}, xv};
    end else if (IBIPOLAR != 0) begin : g_px
      assign p = x[0] ? {{(PW - YW) {yv[YW-1]}}, yv} : -{{(PW - YW) {yv[YW-1]}}, yv};
    end else begin : g_pm
      assign p = xv * yv;
    end
  endgenerate
endmodule
