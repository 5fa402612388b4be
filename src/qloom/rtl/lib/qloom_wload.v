// qloom_wload: fills a memory from a 32-bit AXI-Stream of host words, then passes the stream on.
//
// Run-time weights: a memory that is written after reset instead of initialised by $readmemh
// (UltraRAM has no initial contents; new weights need no rebuild). The loaders of all
// runtime-weight stages form one daisy chain: each takes the first DEPTH * NW host words
// for its own memory and forwards every later word on m_axis to the next loader.
//
// Parameters
//   WIDTH   memory word width in bits (any; NW = ceil(WIDTH / 32) host words per memory word)
//   DEPTH   memory words (>= 1), written at addresses 0 .. DEPTH-1 in order
//
// Word format (little-endian): memory word a is host words a*NW .. a*NW + NW-1, the first one
// in bits [31:0], the next in [63:32], ...; the bits above WIDTH of the last one are ignored.
//
// Ports
//   s_axis     host words in. Ready is 1 while loading (one word per cycle); afterwards it is
//              that of the output register slice (!m_axis_tvalid || m_axis_tready).
//   m_axis     the host words after this loader's own, through one register slice (latency 1)
//   we, addr, data  the memory's write port: one registered write per NW host words
//   loaded     1 from the cycle after the last write on (until reset): the parent must not
//              read the memory before. Only the control state (counters, flags) is reset.
module qloom_wload #(
    parameter integer WIDTH = 32,
    parameter integer DEPTH = 1
) (
    input  wire                                         ap_clk,
    input  wire                                         ap_rst_n,
    input  wire [                                 31:0] s_axis_tdata,
    input  wire                                         s_axis_tvalid,
    output wire                                         s_axis_tready,
    output wire [                                 31:0] m_axis_tdata,
    output wire                                         m_axis_tvalid,
    input  wire                                         m_axis_tready,
    output reg                                          we,
    output reg  [((DEPTH > 1) ? $clog2(DEPTH) : 1) - 1:0] addr,
    output wire [                            WIDTH-1:0] data,
    output reg                                          loaded
);
  localparam integer NW = (WIDTH + 31) / 32;
  localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam integer KW = (NW > 1) ? $clog2(NW) : 1;
  localparam integer NWL = NW - 1, DL = DEPTH - 1;
  localparam [KW-1:0] K_LAST = NWL[KW-1:0];
  localparam [AW-1:0] A_LAST = DL[AW-1:0];

  reg full;  // every memory word has been assembled (its write follows one cycle later)
  reg ov;  // output register slice (pass-through after loading)
  reg [31:0] od;
  reg [KW-1:0] k;  // host word within the memory word
  reg [AW-1:0] next_addr;
  wire take = s_axis_tvalid && s_axis_tready;
  wire take_own = take && !full;
  wire word_done = take_own && (k == K_LAST);
  assign s_axis_tready = !full || !ov || m_axis_tready;
  assign m_axis_tvalid = ov;
  assign m_axis_tdata = od;

  // the memory word, shifted in from the top: after NW host words the first is lowest
  /* verilator lint_off UNUSEDSIGNAL */
  reg [NW*32-1:0] sh;
  /* verilator lint_on UNUSEDSIGNAL */
  generate
    if (DEPTH < 1 || WIDTH < 1) begin : g_bad
      qloom_wload_error_bad_parameters u_err ();
    end
    if (NW > 1) begin : g_shift
      always @(posedge ap_clk) if (take_own) sh <= {s_axis_tdata, sh[NW*32-1:32]};
    end else begin : g_one
      always @(posedge ap_clk) if (take_own) sh <= s_axis_tdata;
    end
  endgenerate
  assign data = sh[WIDTH-1:0];

  always @(posedge ap_clk) begin
    if (word_done) addr <= next_addr;
    if (take && full) od <= s_axis_tdata;
    if (!ap_rst_n) begin
      k <= {KW{1'b0}};
      next_addr <= {AW{1'b0}};
      full <= 1'b0;
      we <= 1'b0;
      loaded <= 1'b0;
      ov <= 1'b0;
    end else begin
      we <= word_done;
      loaded <= full;  // full rose with the last word's write strobe: one cycle after it
      if (take_own) k <= (k == K_LAST) ? {KW{1'b0}} : k + 1'b1;
      if (word_done) begin
        if (next_addr == A_LAST) full <= 1'b1;
        else next_addr <= next_addr + 1'b1;
      end
      if (!ov || m_axis_tready) ov <= take && full;
    end
  end
endmodule
