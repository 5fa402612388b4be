// qloom_maxpool: non-overlapping K x K_W max (or sum) pooling (stride = window) on a
// channels-last stream.
//
// Parameters
//   IFM_H, IFM_W   input image size; OFM = floor(IFM / window): remainder rows/columns dropped
//   CH, PE         channels and elements per beat (PE | CH): CH/PE beats per pixel in and out
//   K, STRIDE      window height and vertical stride (must be equal)
//   K_W, STRIDE_W  window width and horizontal stride (default K; must be equal): K x 1 pools
//                  a 1-D signal held as an L x 1 image
//   BITS, SIGNED   element format (1-bit binary/bipolar data: BITS=1, SIGNED=0, max == OR)
//   SUM, OBITS     SUM=1: the window's sum instead of its maximum (average pooling before a
//                  requantizing threshold stage), OBITS wide output (default: BITS, max)
// One input beat per cycle; a row buffer of OFM_W*CH/PE words (distributed RAM / registers)
// holds the running maxima. The output beat of a window is registered and leaves while the
// next input streams in.
// The per-lane max / sum is qloom_pool_lanes (shared with qloom_windowpool).
module qloom_maxpool #(
    parameter integer IFM_H = 4,
    parameter integer IFM_W = 4,
    parameter integer CH = 1,
    parameter integer K = 2,
    parameter integer STRIDE = 2,
    parameter integer K_W = K,
    parameter integer STRIDE_W = K_W,
    parameter integer PE = 1,
    parameter integer BITS = 1,
    parameter integer SIGNED = 0,
    parameter integer SUM = 0,
    parameter integer OBITS = BITS
) (
    input  wire               ap_clk,
    input  wire               ap_rst_n,
    input  wire [PE*BITS-1:0] s_axis_tdata,
    input  wire               s_axis_tvalid,
    output wire               s_axis_tready,
    output wire [PE*OBITS-1:0] m_axis_tdata,
    output wire               m_axis_tvalid,
    input  wire               m_axis_tready
);
  localparam integer CF = CH / PE;
  localparam integer OFM_H = IFM_H / K;
  localparam integer OFM_W = IFM_W / K_W;
  localparam integer DEPTH = OFM_W * CF;
  localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
  localparam integer KMAX = (K > K_W) ? K : K_W;
  localparam integer KB = (KMAX > 1) ? $clog2(KMAX) : 1;
  localparam integer XW = $clog2(IFM_W + 1);
  localparam integer YW = $clog2(IFM_H + 1);
  localparam integer CFL = CF - 1, KL = K - 1, KWL = K_W - 1, XL = IFM_W - 1, YL = IFM_H - 1;
  localparam integer XV = OFM_W * K_W, YV = OFM_H * K;
  localparam [AW-1:0] CF_LAST = CFL[AW-1:0];
  localparam [KB-1:0] K_LAST = KL[KB-1:0];
  localparam [KB-1:0] KW_LAST = KWL[KB-1:0];
  localparam [XW-1:0] X_LAST = XL[XW-1:0];
  localparam [YW-1:0] Y_LAST = YL[YW-1:0];
  localparam [XW-1:0] X_VALID = XV[XW-1:0];
  localparam [YW-1:0] Y_VALID = YV[YW-1:0];
  localparam [AW-1:0] CF_STEP = CF[AW-1:0];

  reg [AW-1:0] cf;  // channel fold (CF <= DEPTH, so AW bits suffice)
  reg [KB-1:0] kx, ky;
  reg [XW-1:0] x;
  reg [YW-1:0] y;
  reg [AW-1:0] obase;  // (x / K_W) * CF
  wire [AW-1:0] addr = obase + cf;
  wire in_win = (x < X_VALID) && (y < Y_VALID);
  wire first = (kx == {KB{1'b0}}) && (ky == {KB{1'b0}});
  wire final_ = (kx == KW_LAST) && (ky == K_LAST);

  reg [PE*OBITS-1:0] od;
  reg ov;
  wire out_free = !ov || m_axis_tready;
  assign s_axis_tready = !(in_win && final_) || out_free;
  assign m_axis_tvalid = ov;
  assign m_axis_tdata  = od;
  wire fire = s_axis_tvalid && s_axis_tready;

  reg [PE*OBITS-1:0] acc[0:DEPTH-1];
  wire [PE*OBITS-1:0] old = acc[addr];
  wire [PE*OBITS-1:0] mx;
  generate
    if ((K != STRIDE) || (K_W != STRIDE_W) || (CH % PE != 0) || (OFM_H < 1) || (OFM_W < 1) ||
        (OBITS < BITS) || (SUM == 0 && OBITS != BITS)) begin : g_bad
      qloom_maxpool_error_bad_parameters u_err ();
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
      .y(mx)
  );

  always @(posedge ap_clk) begin
    if (fire && in_win && !final_) acc[addr] <= mx;
    if (fire && in_win && final_) od <= mx;
  end

  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      ov <= 1'b0;
      cf <= {AW{1'b0}};
      kx <= {KB{1'b0}};
      ky <= {KB{1'b0}};
      x <= {XW{1'b0}};
      y <= {YW{1'b0}};
      obase <= {AW{1'b0}};
    end else begin
      if (fire && in_win && final_) ov <= 1'b1;
      else if (m_axis_tready) ov <= 1'b0;
      if (fire) begin
        if (cf != CF_LAST) cf <= cf + 1'b1;
        else begin
          cf <= {AW{1'b0}};
          if (x != X_LAST) begin
            x <= x + 1'b1;
            if (kx != KW_LAST) kx <= kx + 1'b1;
            else begin
              kx <= {KB{1'b0}};
              obase <= obase + CF_STEP;
            end
          end else begin
            x <= {XW{1'b0}};
            kx <= {KB{1'b0}};
            obase <= {AW{1'b0}};
            if (y != Y_LAST) begin
              y <= y + 1'b1;
              ky <= (ky != K_LAST) ? ky + 1'b1 : {KB{1'b0}};
            end else begin
              y  <= {YW{1'b0}};
              ky <= {KB{1'b0}};
            end
          end
        end
      end
    end
  end
endmodule
