// qloom_truthtable: a layer of LogicNets neurons, each a truth table of its few inputs; one
// frame per cycle (the whole input vector in one beat, the whole output vector in one beat).
//
// Parameters
//   NI, IBITS         input elements per frame (= per beat) and their width in bits
//   NO, OBITS         neurons (output elements per beat) and the output width in bits
//   FANIN             inputs per neuron; a neuron's table has 2^(FANIN*IBITS) entries
//   CONN_FILE         $readmemh, NO*FANIN words of IDXW = max(1, $clog2(NI)) bits: word
//                     n*FANIN + f = the input element that is input f of neuron n
//   TABLE_FILE        $readmemh, NO * 2^(FANIN*IBITS) words of OBITS bits: word
//                     n*2^(FANIN*IBITS) + a = output of neuron n for the address
//                     a = {x[f=FANIN-1], ..., x[f=0]} (input f's raw bits at [f*IBITS +: IBITS])
// The tables are read combinationally (a ROM built from logic, `rom_style = "logic"`: Yosys
// and ABC minimise each neuron's function into LUTs); the outputs are registered.
// Backpressure: s_axis_tready = !m_axis_tvalid || m_axis_tready; latency 1 cycle.
module qloom_truthtable #(
    parameter integer NI         = 4,
    parameter integer IBITS      = 2,
    parameter integer NO         = 4,
    parameter integer OBITS      = 2,
    parameter integer FANIN      = 2,
    parameter         CONN_FILE  = "",
    parameter         TABLE_FILE = ""
) (
    input  wire                ap_clk,
    input  wire                ap_rst_n,
    input  wire [NI*IBITS-1:0] s_axis_tdata,
    input  wire                s_axis_tvalid,
    output wire                s_axis_tready,
    output wire [NO*OBITS-1:0] m_axis_tdata,
    output wire                m_axis_tvalid,
    input  wire                m_axis_tready
);
  localparam integer K = FANIN * IBITS;  // address bits of one table
  localparam integer DEPTH = 1 << K;
  localparam integer IDXW = NI > 1 ? $clog2(NI) : 1;

  reg [IDXW-1:0] conn[0:NO*FANIN-1];
  reg [DEPTH*OBITS-1:0] tab[0:NO-1];
  localparam HAVE_FILES = (CONN_FILE != "") && (TABLE_FILE != "");
  initial begin
    if (HAVE_FILES) $readmemh(CONN_FILE, conn);
    if (HAVE_FILES) $readmemh(TABLE_FILE, tab);
  end

  reg [NO*OBITS-1:0] od;
  reg ov;
  wire fire = s_axis_tvalid && (!ov || m_axis_tready);
  assign s_axis_tready = !ov || m_axis_tready;
  assign m_axis_tvalid = ov;
  assign m_axis_tdata  = od;

  wire [NO*OBITS-1:0] y;
  genvar n, f;
  generate
    if (K > 20 || NI < 1 || NO < 1 || FANIN < 1 || IBITS < 1 || OBITS < 1) begin : g_bad
      qloom_truthtable_error_bad_parameters u_err ();
    end
    for (n = 0; n < NO; n = n + 1) begin : g_neuron
      wire [K-1:0] addr;
      for (f = 0; f < FANIN; f = f + 1) begin : g_in
        wire [IDXW-1:0] idx = conn[n*FANIN+f];
        assign addr[f*IBITS+:IBITS] = s_axis_tdata[idx*IBITS+:IBITS];
      end
      wire [DEPTH*OBITS-1:0] t = tab[n];
      assign y[n*OBITS+:OBITS] = t[addr*OBITS+:OBITS];
    end
  endgenerate

  always @(posedge ap_clk) begin
    if (fire) od <= y;
    if (!ap_rst_n) ov <= 1'b0;
    else if (fire) ov <= 1'b1;
    else if (m_axis_tready) ov <= 1'b0;
  end
endmodule
