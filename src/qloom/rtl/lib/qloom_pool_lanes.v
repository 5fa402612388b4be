// qloom_pool_lanes: one step of a running max (or sum) in PE lanes, shared by qloom_maxpool and
// qloom_windowpool. Combinational.
//
// Parameters
//   PE            lanes
//   BITS, SIGNED  input element format (1-bit binary/bipolar data: BITS=1, SIGNED=0, max == OR)
//   SUM, OBITS    SUM=1: add (OBITS wide, OBITS >= BITS) instead of max (OBITS = BITS)
// Each input element is sign- (SIGNED = 1) or zero-extended to OBITS, then
//   y = first ? x : (SUM ? a + x : max(a, x))   per lane (signed compare when SIGNED = 1),
// with a the lane's running result.
module qloom_pool_lanes #(
    parameter integer PE = 1,
    parameter integer BITS = 1,
    parameter integer SIGNED = 0,
    parameter integer SUM = 0,
    parameter integer OBITS = BITS
) (
    input  wire                first,
    input  wire [PE*OBITS-1:0] a,
    input  wire [ PE*BITS-1:0] x,
    output wire [PE*OBITS-1:0] y
);
  genvar p;
  generate
    if ((OBITS < BITS) || (SUM == 0 && OBITS != BITS)) begin : g_bad
      qloom_pool_lanes_error_bad_parameters u_err ();
    end
    for (p = 0; p < PE; p = p + 1) begin : g_pe
      wire [OBITS-1:0] ap = a[p*OBITS+:OBITS];
      wire [ BITS-1:0] bi = x[p*BITS+:BITS];
      wire [OBITS-1:0] b;  // the input element, sign- or zero-extended to OBITS
      if (OBITS > BITS) begin : g_ext
        wire fill = (SIGNED != 0) && bi[BITS-1];
        assign b = {{(OBITS - BITS) {fill}}, bi};
      end else begin : g_same
        assign b = bi;
      end
      if (SUM != 0) begin : g_sum
        assign y[p*OBITS+:OBITS] = first ? b : ap + b;
      end else begin : g_max
        wire b_gt = (SIGNED != 0) ? ($signed(b) > $signed(ap)) : (b > ap);
        assign y[p*OBITS+:OBITS] = (first || b_gt) ? b : ap;
      end
    end
  endgenerate
endmodule
