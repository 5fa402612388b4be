// qloom_duplicate: AXI-Stream broadcast to two consumers.
//
// Parameters
//   WIDTH  data width in bits
// Every input beat is delivered exactly once on m0_axis and once on m1_axis; the two outputs
// may accept it in different cycles (each has its own valid flag). A new input beat is taken
// when both outputs are free or being freed this cycle, so one beat per cycle flows when both
// consumers are ready. Outputs are registered.
module qloom_duplicate #(
    parameter integer WIDTH = 8
) (
    input  wire             ap_clk,
    input  wire             ap_rst_n,
    input  wire [WIDTH-1:0] s_axis_tdata,
    input  wire             s_axis_tvalid,
    output wire             s_axis_tready,
    output wire [WIDTH-1:0] m0_axis_tdata,
    output wire             m0_axis_tvalid,
    input  wire             m0_axis_tready,
    output wire [WIDTH-1:0] m1_axis_tdata,
    output wire             m1_axis_tvalid,
    input  wire             m1_axis_tready
);
  reg [WIDTH-1:0] d;
  reg v0, v1;
  assign s_axis_tready  = (!v0 || m0_axis_tready) && (!v1 || m1_axis_tready);
  assign m0_axis_tvalid = v0;
  assign m1_axis_tvalid = v1;
  assign m0_axis_tdata  = d;
  assign m1_axis_tdata  = d;
  wire fire = s_axis_tvalid && s_axis_tready;
  always @(posedge ap_clk) begin
    if (fire) d <= s_axis_tdata;
    if (!ap_rst_n) begin
      v0 <= 1'b0;
      v1 <= 1'b0;
    end else begin
      if (fire) v0 <= 1'b1;
      else if (m0_axis_tready) v0 <= 1'b0;
      if (fire) v1 <= 1'b1;
      else if (m1_axis_tready) v1 <= 1'b0;
    end
  end
endmodule
