// qloom_uart_bridge: a serial port in front of a qloom accelerator's AXI-Stream ports.
//
// Parameters
//   IN_WIDTH       width of the accelerator's input beat (its s_axis_tdata)
//   OUT_WIDTH      width of the accelerator's output beat (its m_axis_tdata)
//   CLKS_PER_BIT   clock cycles per UART bit: round(f_clk / baud)
//   RX_FIFO_DEPTH  bytes the receive FIFO holds (>= 2; > 64 uses block RAM, see qloom_fifo)
//
// Byte layout (the host driver's, qloom.deploy.driver): an input beat is NB_IN =
// ceil(IN_WIDTH/8) bytes, little-endian (first byte = bits [7:0]), the padding bits of the last
// byte are ignored; an output beat goes out as NB_OUT = ceil(OUT_WIDTH/8) bytes, little-endian,
// zero-padded. UART: 8N1 both ways (qloom_uart_rx, qloom_uart_tx).
//
// Flow control. Towards the accelerator everything waits: an assembled input beat is held
// until the accelerator takes it (and the FIFO is not read meanwhile), an output beat is taken
// only when the previous one has been sent, so the accelerator stalls the bridge and nothing
// is lost inside. The serial line itself has no flow control: a received byte goes into the
// FIFO in the cycle it arrives. The host must therefore never have more unconsumed bytes in
// flight than the FIFO holds: with RX_FIFO_DEPTH >= W * (bytes per input frame), a host that
// sends at most W frames ahead of the results it has received (qloom.deploy.client, window=W)
// can never overflow it, however long the accelerator stalls. A byte that finds the FIFO full
// is dropped and sets the sticky rx_overflow flag; a stop bit read as 0 sets rx_frame_error.
// Both clear only on reset. rx_count is the FIFO's fill level (for monitoring).
module qloom_uart_bridge #(
    parameter integer IN_WIDTH = 8,
    parameter integer OUT_WIDTH = 8,
    parameter integer CLKS_PER_BIT = 434,
    parameter integer RX_FIFO_DEPTH = 1024
) (
    input  wire                               ap_clk,
    input  wire                               ap_rst_n,
    input  wire                               uart_rx,
    output wire                               uart_tx,
    // to the accelerator's input (s_axis of its top)
    output wire [IN_WIDTH-1:0]                m_axis_tdata,
    output wire                               m_axis_tvalid,
    input  wire                               m_axis_tready,
    // from the accelerator's output (m_axis of its top)
    input  wire [OUT_WIDTH-1:0]               s_axis_tdata,
    input  wire                               s_axis_tvalid,
    output wire                               s_axis_tready,
    output reg                                rx_overflow,
    output reg                                rx_frame_error,
    output wire [$clog2(RX_FIFO_DEPTH+1)-1:0] rx_count
);
  localparam integer NB_IN = (IN_WIDTH + 7) / 8;
  localparam integer NB_OUT = (OUT_WIDTH + 7) / 8;
  localparam integer ICW = (NB_IN > 1) ? $clog2(NB_IN) : 1;
  localparam integer OCW = (NB_OUT > 1) ? $clog2(NB_OUT) : 1;
  localparam integer ILASTI = NB_IN - 1;
  localparam integer OLASTI = NB_OUT - 1;
  localparam [ICW-1:0] ILAST = ILASTI[ICW-1:0];
  localparam [OCW-1:0] OLAST = OLASTI[OCW-1:0];

  generate
    if (IN_WIDTH < 1 || OUT_WIDTH < 1) begin : g_bad_width
      qloom_uart_bridge_error_widths_must_be_at_least_1 u_err ();
    end
    if (RX_FIFO_DEPTH < 2) begin : g_bad_depth
      qloom_uart_bridge_error_RX_FIFO_DEPTH_must_be_at_least_2 u_err ();
    end
  endgenerate

  // ---- receive: UART -> FIFO -> little-endian beat assembly -------------------------------
  wire [7:0] rx_byte;
  wire       rx_valid;
  wire       rx_ferr;
  qloom_uart_rx #(
      .CLKS_PER_BIT(CLKS_PER_BIT)
  ) u_rx (
      .ap_clk       (ap_clk),
      .ap_rst_n     (ap_rst_n),
      .rx           (uart_rx),
      .m_axis_tdata (rx_byte),
      .m_axis_tvalid(rx_valid),
      .frame_error  (rx_ferr)
  );

  wire       fifo_in_ready;
  wire [7:0] fifo_byte;
  wire       fifo_valid;
  wire       fifo_ready;
  qloom_fifo #(
      .WIDTH(8),
      .DEPTH(RX_FIFO_DEPTH)
  ) u_fifo (
      .ap_clk       (ap_clk),
      .ap_rst_n     (ap_rst_n),
      .s_axis_tdata (rx_byte),
      .s_axis_tvalid(rx_valid),
      .s_axis_tready(fifo_in_ready),
      .m_axis_tdata (fifo_byte),
      .m_axis_tvalid(fifo_valid),
      .m_axis_tready(fifo_ready),
      .count        (rx_count)
  );

  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      rx_overflow    <= 1'b0;
      rx_frame_error <= 1'b0;
    end else begin
      if (rx_valid && !fifo_in_ready) rx_overflow <= 1'b1;
      if (rx_ferr) rx_frame_error <= 1'b1;
    end
  end

  reg [NB_IN*8-1:0] ibuf;
  reg [ICW-1:0] icnt;
  reg ivalid;
  wire [NB_IN*8-1:0] ibuf_next;
  assign fifo_ready = !ivalid;
  generate
    if (NB_IN == 1) begin : g_in1
      assign ibuf_next = fifo_byte;
    end else begin : g_inn
      assign ibuf_next = {fifo_byte, ibuf[NB_IN*8-1:8]};  // first byte ends in the LSBs
    end
  endgenerate
  /* verilator lint_off UNUSEDSIGNAL */
  wire [NB_IN*8-1:0] ibuf_all = ibuf;  // padding bits of the last byte are not used
  /* verilator lint_on UNUSEDSIGNAL */
  assign m_axis_tdata  = ibuf_all[IN_WIDTH-1:0];
  assign m_axis_tvalid = ivalid;

  always @(posedge ap_clk) begin
    if (fifo_valid && !ivalid) ibuf <= ibuf_next;
    if (!ap_rst_n) begin
      ivalid <= 1'b0;
      icnt   <= {ICW{1'b0}};
    end else begin
      if (ivalid && m_axis_tready) ivalid <= 1'b0;
      if (fifo_valid && !ivalid) begin
        if (icnt == ILAST) begin
          icnt   <= {ICW{1'b0}};
          ivalid <= 1'b1;
        end else begin
          icnt <= icnt + 1'b1;
        end
      end
    end
  end

  // ---- transmit: output beat -> little-endian bytes -> UART --------------------------------
  reg [NB_OUT*8-1:0] obuf;
  reg [OCW-1:0] ocnt;
  reg obusy;
  wire tx_ready;
  wire [NB_OUT*8-1:0] beat_ext;
  generate
    if (NB_OUT * 8 == OUT_WIDTH) begin : g_out_full
      assign beat_ext = s_axis_tdata;
    end else begin : g_out_pad
      assign beat_ext = {{(NB_OUT * 8 - OUT_WIDTH) {1'b0}}, s_axis_tdata};
    end
  endgenerate
  assign s_axis_tready = !obusy;

  qloom_uart_tx #(
      .CLKS_PER_BIT(CLKS_PER_BIT)
  ) u_tx (
      .ap_clk       (ap_clk),
      .ap_rst_n     (ap_rst_n),
      .s_axis_tdata (obuf[7:0]),
      .s_axis_tvalid(obusy),
      .s_axis_tready(tx_ready),
      .tx           (uart_tx)
  );

  always @(posedge ap_clk) begin
    if (!obusy && s_axis_tvalid) obuf <= beat_ext;
    else if (obusy && tx_ready) obuf <= obuf >> 8;
    if (!ap_rst_n) begin
      obusy <= 1'b0;
      ocnt  <= {OCW{1'b0}};
    end else if (!obusy) begin
      if (s_axis_tvalid) begin
        obusy <= 1'b1;
        ocnt  <= {OCW{1'b0}};
      end
    end else if (tx_ready) begin
      if (ocnt == OLAST) obusy <= 1'b0;
      else ocnt <= ocnt + 1'b1;
    end
  end
endmodule
