// qloom_fault: AXI-Stream pass-through that injects bit faults (simulation only).
//
// Beat i that leaves the stage is s_axis_tdata XOR mask[i mod DEPTH], the mask words read
// from MASK_FILE ($readmemh, one word per beat, word 0 first). qloom.faults.stream_masks
// writes the masks of its fault model (bit flips on the integer codes of a chosen stream), and
// qloom.rtl.top.generate_top(fault_masks=...) puts one of these on the named stream only when
// asked: never in a normal build. No register on the data path (tdata, tvalid and tready pass
// through combinationally, the mask word is read asynchronously), so latency, throughput and
// the handshake are those of the stream without it; the word pointer advances on every beat
// that moves (tvalid && tready), so any pattern of stalls and backpressure sees the same
// faulty beats.
//
// Parameters
//   WIDTH      stream width in bits
//   DEPTH      mask words (>= 1); after DEPTH beats the masks start again at word 0
//   MASK_FILE  $readmemh file of DEPTH words of WIDTH bits ("": every mask 0)
`default_nettype none
module qloom_fault #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 1,
    parameter MASK_FILE = ""
) (
    input  wire             ap_clk,
    input  wire             ap_rst_n,
    input  wire [WIDTH-1:0] s_axis_tdata,
    input  wire             s_axis_tvalid,
    output wire             s_axis_tready,
    output wire [WIDTH-1:0] m_axis_tdata,
    output wire             m_axis_tvalid,
    input  wire             m_axis_tready
);
  localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam integer LASTI = DEPTH - 1;
  localparam [AW-1:0] LAST = LASTI[AW-1:0];
  generate
    if ((WIDTH < 1) || (DEPTH < 1)) begin : g_bad
      qloom_fault_error_bad_parameters u_err ();
    end
  endgenerate

  /* verilator lint_off WIDTHEXPAND */
  localparam HAVE_FILE = (MASK_FILE != "");  // no file: all masks 0 (nothing injected)
  /* verilator lint_on WIDTHEXPAND */
  reg [WIDTH-1:0] mask[0:DEPTH-1];
  integer i;
  initial begin
    for (i = 0; i < DEPTH; i = i + 1) mask[i] = {WIDTH{1'b0}};
    if (HAVE_FILE) $readmemh(MASK_FILE, mask);
  end

  reg [AW-1:0] addr;  // the mask word of the next beat
  always @(posedge ap_clk) begin
    if (!ap_rst_n) addr <= {AW{1'b0}};
    else if (s_axis_tvalid && m_axis_tready) addr <= (addr == LAST) ? {AW{1'b0}} : addr + 1'b1;
  end

  assign m_axis_tdata  = s_axis_tdata ^ mask[addr];
  assign m_axis_tvalid = s_axis_tvalid;
  assign s_axis_tready = m_axis_tready;
endmodule

`default_nettype wire
