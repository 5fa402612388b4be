// qloom_dwc: AXI-Stream data-width converter.
//
// Parameters
//   IN_WIDTH, OUT_WIDTH  one must divide the other
//     IN_WIDTH > OUT_WIDTH: each input word is split into IN_WIDTH/OUT_WIDTH output words,
//                           least significant part first.
//     IN_WIDTH < OUT_WIDTH: OUT_WIDTH/IN_WIDTH input words are gathered into one output word,
//                           the first input word in the least significant bits.
//     IN_WIDTH == OUT_WIDTH: a register slice.
// Outputs are registered; s_axis_tready depends combinationally on m_axis_tready (one level).
// Throughput: one output beat per cycle when splitting, one input beat per cycle otherwise.
module qloom_dwc #(
    parameter integer IN_WIDTH  = 8,
    parameter integer OUT_WIDTH = 8
) (
    input  wire                 ap_clk,
    input  wire                 ap_rst_n,
    input  wire [ IN_WIDTH-1:0] s_axis_tdata,
    input  wire                 s_axis_tvalid,
    output wire                 s_axis_tready,
    output wire [OUT_WIDTH-1:0] m_axis_tdata,
    output wire                 m_axis_tvalid,
    input  wire                 m_axis_tready
);
  generate
    if ((IN_WIDTH < 1) || (OUT_WIDTH < 1) ||
        ((IN_WIDTH >= OUT_WIDTH) && (IN_WIDTH % OUT_WIDTH != 0)) ||
        ((IN_WIDTH < OUT_WIDTH) && (OUT_WIDTH % IN_WIDTH != 0))) begin : g_bad
      qloom_dwc_error_widths_must_divide u_err ();
    end else if (IN_WIDTH == OUT_WIDTH) begin : g_slice
      reg                 v;
      reg [OUT_WIDTH-1:0] d;
      assign s_axis_tready = !v || m_axis_tready;
      assign m_axis_tvalid = v;
      assign m_axis_tdata  = d;
      always @(posedge ap_clk) begin
        if (s_axis_tready && s_axis_tvalid) d <= s_axis_tdata;
        if (!ap_rst_n) v <= 1'b0;
        else if (s_axis_tready) v <= s_axis_tvalid;
      end
    end else if (IN_WIDTH > OUT_WIDTH) begin : g_split
      localparam integer R = IN_WIDTH / OUT_WIDTH;
      localparam integer CW = $clog2(R + 1);
      localparam [CW-1:0] RC = R[CW-1:0];
      localparam integer ONEI = 1;
      localparam [CW-1:0] C_ONE = ONEI[CW-1:0];
      reg [IN_WIDTH-1:0] sh;
      reg [CW-1:0] left;  // output words still to send from sh
      wire pop = m_axis_tvalid && m_axis_tready;
      assign m_axis_tvalid = (left != {CW{1'b0}});
      assign m_axis_tdata  = sh[OUT_WIDTH-1:0];
      assign s_axis_tready = (left == {CW{1'b0}}) || ((left == C_ONE) && m_axis_tready);
      always @(posedge ap_clk) begin
        if (s_axis_tvalid && s_axis_tready) sh <= s_axis_tdata;
        else if (pop) sh <= {{OUT_WIDTH{1'b0}}, sh[IN_WIDTH-1:OUT_WIDTH]};
        if (!ap_rst_n) left <= {CW{1'b0}};
        else if (s_axis_tvalid && s_axis_tready) left <= RC;
        else if (pop) left <= left - 1'b1;
      end
    end else begin : g_gather
      localparam integer R = OUT_WIDTH / IN_WIDTH;
      localparam integer CW = $clog2(R);
      localparam integer LASTI = R - 1;
      localparam [CW-1:0] LAST = LASTI[CW-1:0];
      reg [OUT_WIDTH-IN_WIDTH-1:0] g;  // the words collected so far (first in the LSBs)
      reg [CW-1:0] n;
      reg [OUT_WIDTH-1:0] o;
      reg ov;
      wire out_free = !ov || m_axis_tready;
      wire fire = s_axis_tvalid && s_axis_tready;
      wire [OUT_WIDTH-1:0] g_next = {s_axis_tdata, g};
      assign s_axis_tready = (n != LAST) || out_free;
      assign m_axis_tvalid = ov;
      assign m_axis_tdata  = o;
      always @(posedge ap_clk) begin
        if (fire) g <= g_next[OUT_WIDTH-1:IN_WIDTH];
        if (fire && (n == LAST)) o <= g_next;
        if (!ap_rst_n) begin
          n  <= {CW{1'b0}};
          ov <= 1'b0;
        end else begin
          if (fire) n <= (n == LAST) ? {CW{1'b0}} : n + 1'b1;
          if (fire && (n == LAST)) ov <= 1'b1;
          else if (m_axis_tready) ov <= 1'b0;
        end
      end
    end
  endgenerate
endmodule
