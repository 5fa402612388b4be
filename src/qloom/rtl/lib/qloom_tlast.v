// qloom_tlast: AXI-Stream pass-through that adds TLAST for an AXI DMA.
//
// The generated top streams frames back to back without TLAST; an AXI DMA (S2MM) needs it to
// end a transfer. Every frame of the stream has BEATS beats, so a beat counter is enough:
// m_axis_tlast is high on beat BEATS-1, 2*BEATS-1, ... No register on the data path (tdata,
// tvalid and tready pass through combinationally), so latency and throughput are unchanged.
//
// Parameters
//   WIDTH  stream width in bits
//   BEATS  beats per frame (>= 1)
`default_nettype none
module qloom_tlast #(
    parameter integer WIDTH = 8,
    parameter integer BEATS = 1
) (
    input  wire             ap_clk,
    input  wire             ap_rst_n,
    input  wire [WIDTH-1:0] s_axis_tdata,
    input  wire             s_axis_tvalid,
    output wire             s_axis_tready,
    output wire [WIDTH-1:0] m_axis_tdata,
    output wire             m_axis_tvalid,
    input  wire             m_axis_tready,
    output wire             m_axis_tlast
);
  generate
    if ((WIDTH < 1) || (BEATS < 1)) begin : g_bad
      qloom_tlast_error_bad_parameters u_err ();
    end else if (BEATS == 1) begin : g_one
      assign m_axis_tlast = 1'b1;  // every beat ends a frame: no counter, no clock
      /* verilator lint_off UNUSEDSIGNAL */
      wire unused_clk_rst = ap_clk ^ ap_rst_n;
      /* verilator lint_on UNUSEDSIGNAL */
    end else begin : g_count
      localparam integer CW = $clog2(BEATS);
      localparam integer LASTI = BEATS - 1;
      localparam [CW-1:0] LAST = LASTI[CW-1:0];
      reg [CW-1:0] n;  // beats of the current frame already sent
      assign m_axis_tlast = (n == LAST);
      always @(posedge ap_clk) begin
        if (!ap_rst_n) n <= {CW{1'b0}};
        else if (s_axis_tvalid && m_axis_tready) n <= (n == LAST) ? {CW{1'b0}} : n + 1'b1;
      end
    end
  endgenerate
  assign m_axis_tdata  = s_axis_tdata;
  assign m_axis_tvalid = s_axis_tvalid;
  assign s_axis_tready = m_axis_tready;
endmodule

`default_nettype wire
