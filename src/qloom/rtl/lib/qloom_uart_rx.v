// qloom_uart_rx: UART receiver, 8 data bits, no parity, 1 stop bit (8N1), LSB first.
//
// Parameters
//   CLKS_PER_BIT  clock cycles per bit (>= 2): round(f_clk / baud)
//
// rx passes a two-flip-flop synchronizer (it is asynchronous to ap_clk). A falling edge starts
// a byte; the start bit is checked again half a bit later (a shorter low pulse is a glitch and
// is ignored), then every bit is sampled once, CLKS_PER_BIT cycles apart, in its middle. In
// the middle of the stop bit the byte is delivered: m_axis_tvalid is high for exactly one
// cycle with the byte in m_axis_tdata. There is no tready: a UART cannot make the sender wait,
// so whoever takes the byte must take it in that cycle (qloom_uart_bridge puts it into a FIFO).
// A stop bit read as 0 drops the byte and pulses frame_error instead. The receiver is idle
// again from the middle of the stop bit, so a sender up to ~5 % fast or slow is tolerated.
module qloom_uart_rx #(
    parameter integer CLKS_PER_BIT = 434
) (
    input  wire       ap_clk,
    input  wire       ap_rst_n,
    input  wire       rx,
    output reg  [7:0] m_axis_tdata,
    output reg        m_axis_tvalid,
    output reg        frame_error
);
  localparam integer CW = $clog2(CLKS_PER_BIT + 1);
  localparam integer LASTI = CLKS_PER_BIT - 1;
  localparam integer HALFI = CLKS_PER_BIT / 2 - 1;
  localparam [CW-1:0] LAST = LASTI[CW-1:0];
  localparam [CW-1:0] HALF = HALFI[CW-1:0];
  localparam [1:0] S_IDLE = 2'd0, S_START = 2'd1, S_DATA = 2'd2, S_STOP = 2'd3;

  generate
    if (CLKS_PER_BIT < 2) begin : g_bad
      qloom_uart_rx_error_CLKS_PER_BIT_must_be_at_least_2 u_err ();
    end
  endgenerate

  reg [1:0] sync;  // not reset: it holds the line's value again two cycles after any reset
  wire rx_s = sync[1];
  reg [1:0] state;
  reg [CW-1:0] cnt;
  reg [2:0] nbit;
  reg [7:0] shift;

  always @(posedge ap_clk) begin
    sync <= {sync[0], rx};
    m_axis_tvalid <= 1'b0;
    frame_error <= 1'b0;
    if (!ap_rst_n) begin
      state <= S_IDLE;
      cnt   <= {CW{1'b0}};
      nbit  <= 3'd0;
    end else begin
      case (state)
        S_IDLE: begin
          cnt <= {CW{1'b0}};
          if (!rx_s) state <= S_START;
        end
        S_START: begin
          if (cnt == HALF) begin
            cnt   <= {CW{1'b0}};
            nbit  <= 3'd0;
            state <= rx_s ? S_IDLE : S_DATA;
          end else begin
            cnt <= cnt + 1'b1;
          end
        end
        S_DATA: begin
          if (cnt == LAST) begin
            cnt   <= {CW{1'b0}};
            shift <= {rx_s, shift[7:1]};
            nbit  <= nbit + 1'b1;
            if (nbit == 3'd7) state <= S_STOP;
          end else begin
            cnt <= cnt + 1'b1;
          end
        end
        default: begin  // S_STOP
          if (cnt == LAST) begin
            cnt <= {CW{1'b0}};
            state <= S_IDLE;
            if (rx_s) begin
              m_axis_tdata  <= shift;
              m_axis_tvalid <= 1'b1;
            end else begin
              frame_error <= 1'b1;
            end
          end else begin
            cnt <= cnt + 1'b1;
          end
        end
      endcase
    end
  end
endmodule
