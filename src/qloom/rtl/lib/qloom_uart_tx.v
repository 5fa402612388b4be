// qloom_uart_tx: UART transmitter, 8 data bits, no parity, 1 stop bit (8N1), LSB first.
//
// Parameters
//   CLKS_PER_BIT  clock cycles per bit (>= 1): round(f_clk / baud)
//
// An AXI-Stream byte input: s_axis_tready (registered) is high while the transmitter is idle;
// a beat starts a start bit in the next cycle, then the 8 data bits and a full stop bit, each
// CLKS_PER_BIT cycles long. The next byte is taken right after the stop bit, so back-to-back
// bytes go out at exactly 10 bit times each. tx idles high, also during reset; the flip-flop
// holds the inverted line (tx = ~tx_n), so a flip-flop that powers up at 0 (ECP5, iCE40 and
// Xilinx after configuration) drives an idle line before the first clock edge.
module qloom_uart_tx #(
    parameter integer CLKS_PER_BIT = 434
) (
    input  wire       ap_clk,
    input  wire       ap_rst_n,
    input  wire [7:0] s_axis_tdata,
    input  wire       s_axis_tvalid,
    output wire       s_axis_tready,
    output wire       tx
);
  localparam integer CW = $clog2(CLKS_PER_BIT + 1);
  localparam integer LASTI = CLKS_PER_BIT - 1;
  localparam [CW-1:0] LAST = LASTI[CW-1:0];

  generate
    if (CLKS_PER_BIT < 1) begin : g_bad
      qloom_uart_tx_error_CLKS_PER_BIT_must_be_at_least_1 u_err ();
    end
  endgenerate

  reg busy;
  reg tx_n;
  assign tx = ~tx_n;
  reg [CW-1:0] cnt;
  reg [3:0] left;  // bits still to send after the one on the line (8 data + stop)
  reg [8:0] shift;  // {stop, data[7:1..]}: the bits after the one on the line
  assign s_axis_tready = !busy;

  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      busy <= 1'b0;
      tx_n <= 1'b0;
      cnt  <= {CW{1'b0}};
      left <= 4'd0;
    end else if (!busy) begin
      if (s_axis_tvalid) begin
        busy  <= 1'b1;
        tx_n  <= 1'b1;  // start bit
        shift <= {1'b1, s_axis_tdata};
        left  <= 4'd9;
        cnt   <= {CW{1'b0}};
      end
    end else if (cnt == LAST) begin
      cnt <= {CW{1'b0}};
      if (left == 4'd0) begin
        busy <= 1'b0;  // the stop bit has been on the line for a full bit
      end else begin
        tx_n  <= ~shift[0];
        shift <= {1'b1, shift[8:1]};
        left  <= left - 1'b1;
      end
    end else begin
      cnt <= cnt + 1'b1;
    end
  end
endmodule
