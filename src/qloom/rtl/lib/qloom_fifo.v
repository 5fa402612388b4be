// qloom_fifo: AXI-Stream FIFO with registered (or memory-direct) outputs.
//
// Parameters
//   WIDTH      data width in bits (>= 1)
//   DEPTH      capacity in beats (>= 1)
//   RAM_STYLE  "auto" | "distributed" | "block" | "registers"
//              auto: DEPTH <= 64 -> "distributed", else "block"
//
// Implementations
//   DEPTH == 1        one register slice; s_axis_tready = !full || m_axis_tready
//                     (the only variant whose ready depends combinationally on m_axis_tready).
//   distributed/registers
//                     circular buffer with asynchronous read (LUTRAM / flip-flops);
//                     m_axis_tdata comes straight from the memory at the read pointer;
//                     when empty, the input beat falls through (m_axis_tvalid = s_axis_tvalid,
//                     m_axis_tdata = s_axis_tdata): latency 0. s_axis_tready is registered
//                     (count != DEPTH), so the FIFO still cuts the ready path between stages,
//                     which is what a glue FIFO is for; the valid/data path gains one mux.
//   block             synchronous-read RAM (BRAM) + 2-entry output buffer;
//                     all outputs registered; latency 3 cycles.
// All variants move one beat per cycle when both sides are ready.
// count = number of beats held (0..DEPTH), $clog2(DEPTH+1) bits.
module qloom_fifo #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 2,
    parameter RAM_STYLE = "auto"
) (
    input  wire                       ap_clk,
    input  wire                       ap_rst_n,
    input  wire [WIDTH-1:0]           s_axis_tdata,
    input  wire                       s_axis_tvalid,
    output wire                       s_axis_tready,
    output wire [WIDTH-1:0]           m_axis_tdata,
    output wire                       m_axis_tvalid,
    input  wire                       m_axis_tready,
    output wire [$clog2(DEPTH+1)-1:0] count
);
  localparam integer CW = $clog2(DEPTH + 1);
  localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam integer LASTI = DEPTH - 1;
  localparam [CW-1:0] FULL = DEPTH[CW-1:0];
  localparam [AW-1:0] LAST = LASTI[AW-1:0];
  /* verilator lint_off WIDTHEXPAND */
  localparam USE_BLOCK = (RAM_STYLE == "block") || ((RAM_STYLE == "auto") && (DEPTH > 64));
  localparam USE_REGS = (RAM_STYLE == "registers");
  /* verilator lint_on WIDTHEXPAND */

  generate
    if (DEPTH < 1) begin : g_bad
      qloom_fifo_error_DEPTH_must_be_at_least_1 u_err ();
    end else if (DEPTH == 1) begin : g_slice
      reg             v;
      reg [WIDTH-1:0] d;
      assign s_axis_tready = !v || m_axis_tready;
      assign m_axis_tvalid = v;
      assign m_axis_tdata  = d;
      assign count         = v;
      always @(posedge ap_clk) begin
        if (s_axis_tready && s_axis_tvalid) d <= s_axis_tdata;
        if (!ap_rst_n) v <= 1'b0;
        else if (s_axis_tready) v <= s_axis_tvalid;
      end
    end else if (!USE_BLOCK) begin : g_lut
      reg [AW-1:0] wp, rp;
      reg [CW-1:0] cnt;
      wire push = s_axis_tvalid && s_axis_tready;
      wire pop  = m_axis_tvalid && m_axis_tready;
      wire empty = (cnt == {CW{1'b0}});
      wire [WIDTH-1:0] head;
      assign s_axis_tready = (cnt != FULL);
      assign m_axis_tvalid = !empty || s_axis_tvalid;
      assign m_axis_tdata  = empty ? s_axis_tdata : head;
      assign count         = cnt;
      // a beat that falls through is still written and both pointers advance past it
      if (USE_REGS) begin : g_reg
        (* ram_style = "registers" *) reg [WIDTH-1:0] mem[0:DEPTH-1];
        always @(posedge ap_clk) if (push) mem[wp] <= s_axis_tdata;
        assign head = mem[rp];
      end else begin : g_dist
        (* ram_style = "distributed" *) reg [WIDTH-1:0] mem[0:DEPTH-1];
        always @(posedge ap_clk) if (push) mem[wp] <= s_axis_tdata;
        assign head = mem[rp];
      end
      always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
          wp  <= {AW{1'b0}};
          rp  <= {AW{1'b0}};
          cnt <= {CW{1'b0}};
        end else begin
          if (push) wp <= (wp == LAST) ? {AW{1'b0}} : wp + 1'b1;
          if (pop) rp <= (rp == LAST) ? {AW{1'b0}} : rp + 1'b1;
          if (push && !pop) cnt <= cnt + 1'b1;
          else if (pop && !push) cnt <= cnt - 1'b1;
        end
      end
    end else begin : g_bram
      (* ram_style = "block" *) reg [WIDTH-1:0] mem[0:DEPTH-1];
      reg [AW-1:0] wp, rp;
      reg [CW-1:0] cnt;      // total occupancy
      reg [CW-1:0] ram_cnt;  // beats in the RAM
      reg             rd_v;  // a read is in flight (data in rd_d next cycle)
      reg [WIDTH-1:0] rd_d;
      reg [WIDTH-1:0] ob0, ob1;  // output buffer, ob0 is the head
      reg [1:0]       ob_n;
      wire push = s_axis_tvalid && s_axis_tready;
      wire pop  = m_axis_tvalid && m_axis_tready;
      wire [1:0] ob_left = ob_n - {1'b0, pop};
      wire rd_issue = (ram_cnt != {CW{1'b0}}) && ((ob_left + {1'b0, rd_v}) <= 2'd1);
      assign s_axis_tready = (cnt != FULL);
      assign m_axis_tvalid = (ob_n != 2'd0);
      assign m_axis_tdata  = ob0;
      assign count         = cnt;
      always @(posedge ap_clk) begin
        if (push) mem[wp] <= s_axis_tdata;
        if (rd_issue) rd_d <= mem[rp];
        if (pop) ob0 <= ob1;
        if (rd_v) begin
          if (ob_left == 2'd0) ob0 <= rd_d;
          else ob1 <= rd_d;
        end
      end
      always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
          wp      <= {AW{1'b0}};
          rp      <= {AW{1'b0}};
          cnt     <= {CW{1'b0}};
          ram_cnt <= {CW{1'b0}};
          rd_v    <= 1'b0;
          ob_n    <= 2'd0;
        end else begin
          if (push) wp <= (wp == LAST) ? {AW{1'b0}} : wp + 1'b1;
          if (rd_issue) rp <= (rp == LAST) ? {AW{1'b0}} : rp + 1'b1;
          if (push && !pop) cnt <= cnt + 1'b1;
          else if (pop && !push) cnt <= cnt - 1'b1;
          if (push && !rd_issue) ram_cnt <= ram_cnt + 1'b1;
          else if (rd_issue && !push) ram_cnt <= ram_cnt - 1'b1;
          rd_v <= rd_issue;
          ob_n <= ob_left + {1'b0, rd_v};
        end
      end
    end
  endgenerate
endmodule
