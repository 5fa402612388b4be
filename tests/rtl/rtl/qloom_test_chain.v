// Test wrapper: two qloom_fifo instances in series (one inside a generate block), for the
// harness's monitor test.
module qloom_test_chain (
    input  wire        ap_clk,
    input  wire        ap_rst_n,
    input  wire [99:0] s_axis_tdata,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    output wire [99:0] m_axis_tdata,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready
);
  wire [99:0] d;
  wire v, r;
  genvar i;
  generate
    for (i = 0; i < 1; i = i + 1) begin : g_stage
      qloom_fifo #(.WIDTH(100), .DEPTH(3)) fifo_a (
          .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
          .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
          .m_axis_tdata(d), .m_axis_tvalid(v), .m_axis_tready(r), .count());
    end
  endgenerate
  qloom_fifo #(.WIDTH(100), .DEPTH(200)) fifo_b (
      .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
      .s_axis_tdata(d), .s_axis_tvalid(v), .s_axis_tready(r),
      .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready),
      .count());
endmodule
