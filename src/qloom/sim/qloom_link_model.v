// qloom_link_model: simulation model of a serial link between two FPGAs (not meant for
// synthesis: 64-bit counters, a configuration read with $readmemh). Used by qloom.sim.chain
// to join the segment tops of a multi-device build.
//
// A beat entering the link joins a transmit queue; the serialiser sends the queued beats one
// after another at RATE_NUM / RATE_DEN payload bits per cycle: a credit counter gains
// RATE_NUM per cycle while a beat is waiting and a beat costs COST = WIDTH x RATE_DEN, so
// back-to-back beats keep the exact average rate (an idle serialiser banks nothing). A sent
// beat reaches the far side max(1, LATENCY) cycles later. A beat entering an idle link thus
// leaves ceil(WIDTH / rate) + max(1, LATENCY) cycles later, and a stream of B beats per frame
// needs B x WIDTH / rate cycles per frame (qloom.fold.partition.LinkModel.cycles_per_frame:
// its ceiling, and at least B).
//
// Up to DEPTH beats are queued or in flight; a full link holds off the sender (flow control,
// as Aurora's), and a receiver that stalls holds beats in the link.
//
// CONFIG names a $readmemh file of three 64-bit hex words: RATE_NUM, COST, LATENCY. Keeping
// them out of the parameters lets one Verilator build serve every link rate and latency.
`default_nettype none

module qloom_link_model #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 64,  // a power of two >= 2
    parameter CONFIG = ""
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

  reg [63:0] cfg[0:2];
  initial $readmemh(CONFIG, cfg);
  wire [63:0] rate_num = cfg[0];
  wire [63:0] cost = cfg[1];
  wire [63:0] latency = (cfg[2] == 64'd0) ? 64'd1 : cfg[2];

  reg  [63:0] credit;
  reg  [63:0] now;
  reg  [WIDTH-1:0] data[0:DEPTH-1];
  reg  [63:0] due[0:DEPTH-1];
  // rd .. tx: sent, on the way; tx .. wr: queued for the serialiser
  reg  [AW-1:0] rd, tx, wr;
  reg  [31:0] count, queued;

  assign s_axis_tready = (count < DEPTH);
  assign m_axis_tvalid = (count != queued) && (due[rd] <= now);
  assign m_axis_tdata = data[rd];
  wire take = s_axis_tvalid && s_axis_tready;
  wire give = m_axis_tvalid && m_axis_tready;
  wire [63:0] gained = credit + rate_num;
  wire send = (queued != 0) && (gained >= cost);
  wire [63:0] left = gained - cost;

  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      credit <= 64'd0;
      now <= 64'd0;
      rd <= {AW{1'b0}};
      tx <= {AW{1'b0}};
      wr <= {AW{1'b0}};
      count <= 32'd0;
      queued <= 32'd0;
    end else begin
      now <= now + 64'd1;
      if (queued == 0) credit <= 64'd0;  // nothing to send: the serialiser idles
      else if (send) credit <= (left > cost) ? cost : left;
      else credit <= gained;
      if (send) begin
        due[tx] <= now + latency;
        tx <= tx + 1'b1;  // DEPTH is a power of two: the pointers wrap
      end
      if (take) begin
        data[wr] <= s_axis_tdata;
        wr <= wr + 1'b1;
      end
      if (give) rd <= rd + 1'b1;
      count <= count + (take ? 32'd1 : 32'd0) - (give ? 32'd1 : 32'd0);
      queued <= queued + (take ? 32'd1 : 32'd0) - (send ? 32'd1 : 32'd0);
    end
  end
endmodule

`default_nettype wire
