// Test module that breaks the AXI-Stream rules on purpose: it passes beats through but drops
// tvalid after one cycle even when the consumer did not take the beat (the beat is lost).
module qloom_test_bad (
    input  wire       ap_clk,
    input  wire       ap_rst_n,
    input  wire [7:0] s_axis_tdata,
    input  wire       s_axis_tvalid,
    output wire       s_axis_tready,
    output reg  [7:0] m_axis_tdata,
    output reg        m_axis_tvalid,
    input  wire       m_axis_tready
);
  assign s_axis_tready = 1'b1;
  always @(posedge ap_clk) begin
    m_axis_tdata <= s_axis_tdata;
    if (!ap_rst_n) m_axis_tvalid <= 1'b0;
    else m_axis_tvalid <= s_axis_tvalid;
  end
  wire unused = m_axis_tready;
endmodule
