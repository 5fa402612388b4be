// qloom_windowpool: max (or sum) over each window of a sliding-window stream, the pooling that
// a plain non-overlapping pool cannot do: overlapping windows (stride < kernel) and padding.
// A qloom_swu in front produces, per output pixel, its K2 = K_H*K_W window positions in
// order, CH/PE beats of PE channels each; this module reduces over the positions.
//
// Parameters
//   CH, PE         channels and elements per beat (PE | CH): CH/PE beats per position
//   K2             window positions per output pixel (K_H * K_W)
//   BITS, SIGNED   input element format (1-bit binary/bipolar data: BITS=1, SIGNED=0)
//   SUM, OBITS     SUM=1: the window's sum (OBITS wide) instead of its maximum (OBITS = BITS)
// One input beat per cycle; a memory of CH/PE words holds the running result of each channel
// group; the output beat of a group leaves (registered) with the group's last position.
// The per-lane max / sum is qloom_pool_lanes (shared with qloom_maxpool).
module qloom_windowpool #(
    parameter integer CH = 1,
    parameter integer PE = 1,
    parameter integer K2 = 4,
    parameter integer BITS = 1,
    parameter integer SIGNED = 0,
    parameter integer SUM = 0,
    parameter integer OBITS = BITS
) (
    input  wire                ap_clk,
    input  wire                ap_rst_n,
    input  wire [ PE*BITS-1:0] s_axis_tdata,
    input  wire                s_axis_tvalid,
    output wire                s_axis_tready,
    output wire [PE*OBITS-1:0] m_axis_tdata,
    output wire                m_axis_tvalid,
    input  wire                m_axis_tready
);
  localparam integer CF = CH / PE;
  localparam integer AW = (CF > 1) ? $clog2(CF) : 1;
  localparam integer KB = (K2 > 1) ? $clog2(K2) : 1;
  localparam integer CFL = CF - 1, K2L = K2 - 1;
  localparam [AW-1:0] CF_LAST = CFL[AW-1:0];
  localparam [KB-1:0] K_LAST = K2L[KB-1:0];

  reg  [AW-1:0] cg;  // channel group of the current beat
  reg  [KB-1:0] kp;  // window position of the current beat
  wire          first = (kp == {KB{1'b0}});
  wire          final_ = (kp == K_LAST);

  reg  [PE*OBITS-1:0] od;
  reg                 ov;
  wire                out_free = !ov || m_axis_tready;
  assign s_axis_tready = !final_ || out_free;
  assign m_axis_tvalid = ov;
  assign m_axis_tdata  = od;
  wire fire = s_axis_tvalid && s_axis_tready;

  reg  [PE*OBITS-1:0] acc[0:CF-1];
  wire [PE*OBITS-1:0] old = acc[cg];
  wire [PE*OBITS-1:0] nxt;
  generate
    if ((CH % PE != 0) || (K2 < 1) || (OBITS < BITS) || (SUM == 0 && OBITS != BITS)) begin : g_bad
      qloom_windowpool_error_bad_parameters u_err ();
    end
  endgenerate
  qloom_pool_lanes #(
      .PE(PE),
      .BITS(BITS),
      .SIGNED(SIGNED),
      .SUM(SUM),
      .OBITS(OBITS)
  ) u_lanes (
      .first(first),
      .a(old),
      .x(s_axis_tdata),
      .y(nxt)
  );

  always @(posedge ap_clk) begin
    if (fire && !final_) acc[cg] <= nxt;
    if (fire && final_) od <= nxt;
  end

  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      ov <= 1'b0;
      cg <= {AW{1'b0}};
      kp <= {KB{1'b0}};
    end else begin
      if (fire && final_) ov <= 1'b1;
      else if (m_axis_tready) ov <= 1'b0;
      if (fire) begin
        if (cg != CF_LAST) cg <= cg + 1'b1;
        else begin
          cg <= {AW{1'b0}};
          kp <= final_ ? {KB{1'b0}} : kp + 1'b1;
        end
      end
    end
  end
endmodule
