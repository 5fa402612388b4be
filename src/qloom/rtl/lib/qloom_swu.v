// qloom_swu: sliding-window unit / im2col (FINN's ConvolutionInputGenerator) with padding.
//
// Parameters
//   IFM_H, IFM_W        input image size
//   CH, SIMD            channels and elements per beat (SIMD | CH): CF = CH/SIMD beats per pixel
//   K_H, K_W            kernel size
//   STRIDE_H, STRIDE_W  strides
//   PAD_T, PAD_L, PAD_B, PAD_R  padding rows/columns (filled with PAD_VALUE)
//   PAD_VALUE           bit pattern of one padding element (BITS bits, e.g. 0 for bipolar -1)
//   BITS                element width
//   BUF_ROWS            line buffer rows R; 0 (default) = K_H + STRIDE_H. Clamped to
//                       [K_H, IFM_H]. One more row than the default lets the next frame's first
//                       window rows load during the current frame's last row (see below).
//   RAM_STYLE           line buffer memory: "auto" | "block" | "distributed"
//   KSIMD               kernel positions per beat (default 1). KSIMD > 1 selects the depthwise
//                       order that a VVAU with SIMD = KSIMD reads: per window, CF channel groups
//                       in turn, each as K_H*K_W/KSIMD beats of KSIMD positions x SIMD channels
//                       (element j*SIMD + s of a beat: position t*KSIMD + j, channel g*SIMD + s).
//                       KSIMD must divide K_W or be a multiple of K_W dividing K_H*K_W (a beat
//                       covers part of one kernel row or whole rows); the line buffer gets
//                       KSIMD read ports (one per position of a beat).
// Input: one frame, channels-last, pixels row-major, CF beats per pixel; frames back to back.
// Output: OFM_H x OFM_W windows, OFM_H = (IFM_H+PAD_T+PAD_B-K_H)/STRIDE_H + 1 (likewise W),
// row-major; each window is K_H*K_W*CF beats in (kh, kw, c) order, i.e. element
// (kh*K_W + kw)*CH + c of the window, SIMD elements per beat.
//
// Architecture: a circular line buffer of R input rows (BUF_ROWS; default K_H+STRIDE_H) (simple
// dual-port RAM, IFM_W*CF words per row). A writer stores input beats as long as the rows it would
// overwrite are no longer needed; a reader walks the windows and issues one read per cycle as soon
// as the window's last needed input pixel has been written. Writer and reader may be in different
// frames (by one at most), so the next frame's first rows load while the current frame's last
// windows are read. Output: one beat per cycle in steady state, 2 cycles latency, registered;
// s_axis_tready depends only on registers.
// Cycles per frame, streaming many frames at full rate:
//   ~ max(IN, OUT + STALL),  IN = IFM_H*IFM_W*CF,  OUT = OFM_H*OFM_W*K_H*K_W*CF,
//   STALL ~ max(0, K_H - PAD_T - (R - K_H) - 1) * IFM_W*CF + K_W*CF  (rows of the next frame's
//   first window that could not be loaded in advance; 0 rows with BUF_ROWS = K_H+STRIDE_H+1).
//   With KSIMD > 1, OUT = OFM_H*OFM_W*K_H*K_W*CF/KSIMD.
module qloom_swu #(
    parameter integer IFM_H = 4,
    parameter integer IFM_W = 4,
    parameter integer CH = 1,
    parameter integer K_H = 3,
    parameter integer K_W = 3,
    parameter integer STRIDE_H = 1,
    parameter integer STRIDE_W = 1,
    parameter integer PAD_T = 0,
    parameter integer PAD_L = 0,
    parameter integer PAD_B = 0,
    parameter integer PAD_R = 0,
    parameter integer PAD_VALUE = 0,
    parameter integer SIMD = 1,
    parameter integer BITS = 1,
    parameter integer BUF_ROWS = 0,
    parameter RAM_STYLE = "auto",
    parameter integer KSIMD = 1
) (
    input  wire                       ap_clk,
    input  wire                       ap_rst_n,
    input  wire [      SIMD*BITS-1:0] s_axis_tdata,
    input  wire                       s_axis_tvalid,
    output wire                       s_axis_tready,
    output wire [KSIMD*SIMD*BITS-1:0] m_axis_tdata,
    output wire                       m_axis_tvalid,
    input  wire                       m_axis_tready
);
  localparam integer CF = CH / SIMD;
  localparam integer OFM_H = (IFM_H + PAD_T + PAD_B - K_H) / STRIDE_H + 1;
  localparam integer OFM_W = (IFM_W + PAD_L + PAD_R - K_W) / STRIDE_W + 1;
  localparam integer R_REQ = (BUF_ROWS == 0) ? K_H + STRIDE_H : ((BUF_ROWS > K_H) ? BUF_ROWS : K_H);
  localparam integer R = (R_REQ < IFM_H) ? R_REQ : IFM_H;  // line buffer rows
  localparam integer ROWW = IFM_W * CF;
  localparam integer MEMD = R * ROWW;
  localparam integer DW = SIMD * BITS;
  localparam integer DWO = (KSIMD > 1) ? 1 : 0;  // depthwise order
  localparam integer KWS = (KSIMD < K_W) ? KSIMD : K_W;  // positions of a beat along a row
  localparam integer KHS = (KSIMD < K_W) ? 1 : KSIMD / K_W;  // kernel rows of a beat
  localparam integer ODW = KSIMD * DW;
  localparam integer AW = (MEMD > 1) ? $clog2(MEMD) : 1;  // memory address
  localparam integer AXW = AW + 1;  // sum of two addresses
  localparam integer NPIX = IFM_H * IFM_W;
  localparam integer PXW = $clog2(NPIX + 1);
  // counters
  localparam integer CFW = $clog2(CF + 1);
  localparam integer KHW = $clog2(K_H + 1);
  localparam integer KWW = $clog2(K_W + 1);
  localparam integer OXW = $clog2(OFM_W + 1);
  localparam integer OYW = $clog2(OFM_H + 1);
  localparam integer WXW = $clog2(IFM_W + 1);
  localparam integer WYW = $clog2(IFM_H + 1);
  // signed window coordinates and column address (ix*CF + c), with a sign bit
  localparam integer XSW = $clog2(IFM_W + PAD_L + PAD_R + K_W + STRIDE_W + 1) + 1;
  localparam integer YSW = $clog2(IFM_H + PAD_T + PAD_B + K_H + STRIDE_H + 1) + 1;
  localparam integer CSW = $clog2((IFM_W + PAD_L + PAD_R + K_W + STRIDE_W + 1) * CF + 1) + 1;
  localparam integer RMW = $clog2(2 * IFM_H + R + 1);  // row-credit comparison

  // integer constants -> sized vectors
  localparam integer CF_L = CF - 1, KH_L = K_H - 1, KW_L = K_W - 1, OX_L = OFM_W - 1;
  localparam integer OY_L = OFM_H - 1, WX_L = IFM_W - 1, WY_L = IFM_H - 1, MEM_L = MEMD - 1;
  localparam integer NPIX_L = NPIX - 1;
  localparam integer BX0_I = -PAD_L, BY0_I = -PAD_T, BXCF0_I = -PAD_L * CF;
  localparam integer SHM_I = (STRIDE_H % R) * ROWW;
  localparam integer IHM_I = (IFM_H % R) * ROWW;
  localparam integer PTM_I = (PAD_T % R) * ROWW;
  localparam integer BYB0_I = (PTM_I == 0) ? 0 : MEMD - PTM_I;
  localparam integer SWCF_I = STRIDE_W * CF;
  localparam integer KH1_I = K_H - 1, KW1_I = K_W - 1;
  localparam integer KWD_I = K_W - KWS, KHD_I = K_H - KHS;  // last beat start (depthwise)
  localparam integer KWSCF_I = KWS * CF, KHSM_I = (KHS % R) * ROWW;
  localparam [CFW-1:0] CF_LAST = CF_L[CFW-1:0];
  localparam [KHW-1:0] KH_LAST = KH_L[KHW-1:0];
  localparam [KWW-1:0] KW_LAST = KW_L[KWW-1:0];
  localparam [KHW-1:0] KHD_LAST = KHD_I[KHW-1:0];
  localparam [KWW-1:0] KWD_LAST = KWD_I[KWW-1:0];
  localparam [KHW-1:0] KHS_K = KHS[KHW-1:0];
  localparam [KWW-1:0] KWS_K = KWS[KWW-1:0];
  localparam [YSW-1:0] KHS_Y = KHS[YSW-1:0];
  localparam [XSW-1:0] KWS_X = KWS[XSW-1:0];
  localparam [CSW-1:0] KWSCF = KWSCF_I[CSW-1:0];
  localparam [AXW-1:0] KHSM_A = KHSM_I[AXW-1:0];
  localparam [OXW-1:0] OX_LAST = OX_L[OXW-1:0];
  localparam [OYW-1:0] OY_LAST = OY_L[OYW-1:0];
  localparam [WXW-1:0] WX_LAST = WX_L[WXW-1:0];
  localparam [WYW-1:0] WY_LAST = WY_L[WYW-1:0];
  localparam [AW-1:0] MEM_LAST = MEM_L[AW-1:0];
  localparam [PXW-1:0] NPIX_LAST = NPIX_L[PXW-1:0];
  localparam [XSW-1:0] BX0 = BX0_I[XSW-1:0];
  localparam [YSW-1:0] BY0 = BY0_I[YSW-1:0];
  localparam [CSW-1:0] BXCF0 = BXCF0_I[CSW-1:0];
  localparam [XSW-1:0] SW_X = STRIDE_W[XSW-1:0];
  localparam [YSW-1:0] SH_Y = STRIDE_H[YSW-1:0];
  localparam [CSW-1:0] SWCF = SWCF_I[CSW-1:0];
  localparam [YSW-1:0] KH1_Y = KH1_I[YSW-1:0];
  localparam [XSW-1:0] KW1_X = KW1_I[XSW-1:0];
  localparam [YSW-1:0] IFMH_Y = IFM_H[YSW-1:0];
  localparam [XSW-1:0] IFMW_X = IFM_W[XSW-1:0];
  localparam [YSW-1:0] WYL_Y = WY_L[YSW-1:0];
  localparam [XSW-1:0] WXL_X = WX_L[XSW-1:0];
  localparam [AXW-1:0] ROWW_A = ROWW[AXW-1:0];
  localparam [AXW-1:0] MEMD_A = MEMD[AXW-1:0];
  localparam [AXW-1:0] SHM_A = SHM_I[AXW-1:0];
  localparam [AXW-1:0] IHM_A = IHM_I[AXW-1:0];
  localparam [AXW-1:0] PTM_A = PTM_I[AXW-1:0];
  localparam [AW-1:0] BYB0 = BYB0_I[AW-1:0];
  localparam [RMW-1:0] R_RM = R[RMW-1:0];
  localparam [RMW-1:0] IFMH_RM = IFM_H[RMW-1:0];
  localparam [PXW-1:0] IFMW_P = IFM_W[PXW-1:0];
  localparam [BITS-1:0] PADE = PAD_VALUE[BITS-1:0];
  /* verilator lint_off WIDTHEXPAND */
  localparam STYLE_BLOCK = (RAM_STYLE == "block");
  localparam STYLE_DIST = (RAM_STYLE == "distributed");
  /* verilator lint_on WIDTHEXPAND */

  // (a + b) mod MEMD for a, b < MEMD
  function automatic [AW-1:0] addmod(input [AXW-1:0] a, input [AXW-1:0] b);
    reg [AXW-1:0] t;
    begin
      t = a + b;
      if (t >= MEMD_A) t = t - MEMD_A;
      addmod = t[AW-1:0];
    end
  endfunction

  // ------------------------------------------------------------------ frame bookkeeping
  // writer frame - reader frame: w_ahead (+1), r_ahead (-1), neither (0)
  reg w_ahead, r_ahead;
  wire w_frame_done, r_frame_done;

  // ------------------------------------------------------------------ reader state
  reg [CFW-1:0] rcf;
  reg [KWW-1:0] kw;
  reg [KHW-1:0] kh;
  reg [OXW-1:0] ox;
  reg [OYW-1:0] oy;
  reg [XSW-1:0] base_x, ix;  // signed
  reg [YSW-1:0] base_y, iy;  // signed
  reg [CSW-1:0] bxcf, caddr;  // signed: base_x*CF, ix*CF + rcf
  reg [AW-1:0] rf_base, by_base, kbase;  // addresses of frame row 0, row base_y, row iy

  // first row still needed (clamped to the image): the writer may fill R rows from here
  /* verilator lint_off UNUSEDSIGNAL */
  wire [YSW-1:0] rmin_y = base_y[YSW-1] ? {YSW{1'b0}} : ((base_y > WYL_Y) ? WYL_Y : base_y);
  // the last input pixel the current window needs (clamped)
  wire [YSW-1:0] yl = base_y + KH1_Y;
  wire [XSW-1:0] xl = base_x + KW1_X;
  wire [YSW-1:0] ymax = yl[YSW-1] ? {YSW{1'b0}} : ((yl > WYL_Y) ? WYL_Y : yl);
  wire [XSW-1:0] xmax = xl[XSW-1] ? {XSW{1'b0}} : ((xl > WXL_X) ? WXL_X : xl);
  /* verilator lint_on UNUSEDSIGNAL */
  wire [PXW-1:0] ymax_p, xmax_p;
  generate
    if (PXW >= YSW) begin : g_yp
      assign ymax_p = {{(PXW - YSW) {1'b0}}, ymax};
    end else begin : g_yt
      assign ymax_p = ymax[PXW-1:0];
    end
    if (PXW >= XSW) begin : g_xp
      assign xmax_p = {{(PXW - XSW) {1'b0}}, xmax};
    end else begin : g_xt
      assign xmax_p = xmax[PXW-1:0];
    end
  endgenerate
  wire [PXW-1:0] need_pix = ymax_p * IFMW_P + xmax_p;

  // ------------------------------------------------------------------ writer state
  reg [CFW-1:0] wcf;
  reg [WXW-1:0] wx;
  reg [WYW-1:0] wy;
  reg [AW-1:0] waddr;
  reg [PXW-1:0] wpix;  // complete pixels of the writer's frame

  wire [RMW-1:0] rmin_rm, wy_rm;
  generate
    if (RMW >= YSW) begin : g_rm
      assign rmin_rm = {{(RMW - YSW) {1'b0}}, rmin_y};
    end else begin : g_rmt
      assign rmin_rm = rmin_y[RMW-1:0];
    end
    if (RMW >= WYW) begin : g_wy
      assign wy_rm = {{(RMW - WYW) {1'b0}}, wy};
    end else begin : g_wyt
      assign wy_rm = wy[RMW-1:0];
    end
  endgenerate
  wire w_room = r_ahead || ((wy_rm + (w_ahead ? IFMH_RM : {RMW{1'b0}})) < (rmin_rm + R_RM));
  assign s_axis_tready = w_room;
  wire wfire = s_axis_tvalid && w_room;
  assign w_frame_done = wfire && (wcf == CF_LAST) && (wx == WX_LAST) && (wy == WY_LAST);

  // ------------------------------------------------------------------ line buffer
  reg ov, v1;
  wire en = !ov || m_axis_tready;
  wire r_ok = w_ahead || (!r_ahead && (wpix > need_pix));
  wire rfire = en && r_ok;
  // per position j of a beat (KSIMD > 1: depthwise order): kernel offset (j / KWS, j % KWS)
  // from the beat's first position (iy, ix), row address kbase + (j / KWS) rows (mod MEMD)
  wire [KSIMD-1:0] pad;
  wire [KSIMD*AW-1:0] raddr;
  reg [ODW-1:0] rdata;
  genvar j;
  generate
    if ((CH % SIMD != 0) || (STRIDE_H < 1) || (STRIDE_W < 1) || (OFM_H < 1) || (OFM_W < 1) ||
        (BITS > 32) || (KSIMD < 1) || ((K_H * K_W) % KSIMD != 0) ||
        ((K_W % KSIMD != 0) && (KSIMD % K_W != 0))) begin : g_bad
      qloom_swu_error_bad_parameters u_err ();
    end
    for (j = 0; j < KSIMD; j = j + 1) begin : g_lane
      localparam integer DH_I = j / KWS, DWX_I = j % KWS;
      localparam integer DWC_I = DWX_I * CF, DHM_I = (DH_I % R) * ROWW;
      localparam [YSW-1:0] DH_Y = DH_I[YSW-1:0];
      localparam [XSW-1:0] DW_X = DWX_I[XSW-1:0];
      localparam [CSW-1:0] DW_C = DWC_I[CSW-1:0];
      localparam [AXW-1:0] DHM_A = DHM_I[AXW-1:0];
      wire [YSW-1:0] jy = iy + DH_Y;
      wire [XSW-1:0] jx = ix + DW_X;
      /* verilator lint_off UNUSEDSIGNAL */  // the sign bit (padding positions only)
      wire [CSW-1:0] jc = caddr + DW_C;
      /* verilator lint_on UNUSEDSIGNAL */
      wire [AW-1:0] jc_a;
      if (CSW >= AW) begin : g_ca
        assign jc_a = jc[AW-1:0];
      end else begin : g_cz
        assign jc_a = {{(AW - CSW) {1'b0}}, jc};
      end
      wire [AW-1:0] jrow = (DH_I == 0) ? kbase : addmod({1'b0, kbase}, DHM_A);
      assign pad[j] = jy[YSW-1] || (jy >= IFMH_Y) || jx[XSW-1] || (jx >= IFMW_X);
      assign raddr[j*AW+:AW] = jrow + jc_a;
    end
    if (STYLE_BLOCK) begin : g_mem_block
      (* ram_style = "block" *) reg [DW-1:0] mem[0:MEMD-1];
      always @(posedge ap_clk) if (wfire) mem[waddr] <= s_axis_tdata;
      for (j = 0; j < KSIMD; j = j + 1) begin : g_rd
        always @(posedge ap_clk) if (en) rdata[j*DW+:DW] <= mem[raddr[j*AW+:AW]];
      end
    end else if (STYLE_DIST) begin : g_mem_dist
      (* ram_style = "distributed" *) reg [DW-1:0] mem[0:MEMD-1];
      always @(posedge ap_clk) if (wfire) mem[waddr] <= s_axis_tdata;
      for (j = 0; j < KSIMD; j = j + 1) begin : g_rd
        always @(posedge ap_clk) if (en) rdata[j*DW+:DW] <= mem[raddr[j*AW+:AW]];
      end
    end else begin : g_mem_auto
      reg [DW-1:0] mem[0:MEMD-1];
      always @(posedge ap_clk) if (wfire) mem[waddr] <= s_axis_tdata;
      for (j = 0; j < KSIMD; j = j + 1) begin : g_rd
        always @(posedge ap_clk) if (en) rdata[j*DW+:DW] <= mem[raddr[j*AW+:AW]];
      end
    end
  endgenerate

  // ------------------------------------------------------------------ writer counters
  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      wcf <= {CFW{1'b0}};
      wx <= {WXW{1'b0}};
      wy <= {WYW{1'b0}};
      waddr <= {AW{1'b0}};
      wpix <= {PXW{1'b0}};
    end else if (wfire) begin
      waddr <= (waddr == MEM_LAST) ? {AW{1'b0}} : waddr + 1'b1;
      if (wcf != CF_LAST) wcf <= wcf + 1'b1;
      else begin
        wcf  <= {CFW{1'b0}};
        wpix <= (wpix == NPIX_LAST) ? {PXW{1'b0}} : wpix + 1'b1;
        if (wx != WX_LAST) wx <= wx + 1'b1;
        else begin
          wx <= {WXW{1'b0}};
          wy <= (wy == WY_LAST) ? {WYW{1'b0}} : wy + 1'b1;
        end
      end
    end
  end

  // ------------------------------------------------------------------ reader counters
  // (kh, kw, c) order: c innermost; depthwise order (KSIMD > 1): KWS positions along a row,
  // then KHS rows, then the channel group; either way last_win ends the window
  wire last_c = (rcf == CF_LAST);
  wire last_kw = last_c && (kw == KW_LAST);
  wire last_kh = last_kw && (kh == KH_LAST);
  wire dlast_kw = (kw == KWD_LAST);
  wire dlast_kh = dlast_kw && (kh == KHD_LAST);
  wire last_win = (DWO != 0) ? dlast_kh && last_c : last_kh;
  wire last_ox = last_win && (ox == OX_LAST);
  wire last_oy = last_ox && (oy == OY_LAST);
  assign r_frame_done = rfire && last_oy;
  wire [AW-1:0] kbase_next = addmod({1'b0, kbase}, (DWO != 0) ? KHSM_A : ROWW_A);
  wire [CSW-1:0] rcf_c = {{(CSW - CFW) {1'b0}}, rcf};
  wire [AW-1:0] by_next = addmod({1'b0, by_base}, SHM_A);
  wire [AW-1:0] rf_next = addmod({1'b0, rf_base}, IHM_A);
  wire [AW-1:0] by_frame = addmod({1'b0, rf_next}, (PTM_A == {AXW{1'b0}}) ? {AXW{1'b0}} : MEMD_A - PTM_A);

  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      rcf <= {CFW{1'b0}};
      kw <= {KWW{1'b0}};
      kh <= {KHW{1'b0}};
      ox <= {OXW{1'b0}};
      oy <= {OYW{1'b0}};
      base_x <= BX0;
      ix <= BX0;
      base_y <= BY0;
      iy <= BY0;
      bxcf <= BXCF0;
      caddr <= BXCF0;
      rf_base <= {AW{1'b0}};
      by_base <= BYB0;
      kbase <= BYB0;
    end else if (rfire) begin
      if ((DWO != 0) && !dlast_kw) begin
        kw    <= kw + KWS_K;
        ix    <= ix + KWS_X;
        caddr <= caddr + KWSCF;
      end else if ((DWO != 0) && !dlast_kh) begin
        kw    <= {KWW{1'b0}};
        ix    <= base_x;
        caddr <= bxcf + rcf_c;
        kh    <= kh + KHS_K;
        iy    <= iy + KHS_Y;
        kbase <= kbase_next;
      end else if ((DWO != 0) && !last_c) begin
        rcf   <= rcf + 1'b1;
        kw    <= {KWW{1'b0}};
        kh    <= {KHW{1'b0}};
        ix    <= base_x;
        iy    <= base_y;
        caddr <= bxcf + rcf_c + 1'b1;
        kbase <= by_base;
      end else if ((DWO == 0) && !last_c) begin
        rcf   <= rcf + 1'b1;
        caddr <= caddr + 1'b1;
      end else if ((DWO == 0) && !last_kw) begin
        rcf   <= {CFW{1'b0}};
        kw    <= kw + 1'b1;
        ix    <= ix + 1'b1;
        caddr <= caddr + 1'b1;
      end else if ((DWO == 0) && !last_kh) begin
        rcf   <= {CFW{1'b0}};
        kw    <= {KWW{1'b0}};
        ix    <= base_x;
        caddr <= bxcf;
        kh    <= kh + 1'b1;
        iy    <= iy + 1'b1;
        kbase <= kbase_next;
      end else if (!last_ox) begin
        rcf    <= {CFW{1'b0}};
        kw     <= {KWW{1'b0}};
        kh     <= {KHW{1'b0}};
        ox     <= ox + 1'b1;
        base_x <= base_x + SW_X;
        ix     <= base_x + SW_X;
        bxcf   <= bxcf + SWCF;
        caddr  <= bxcf + SWCF;
        iy     <= base_y;
        kbase  <= by_base;
      end else if (!last_oy) begin
        rcf     <= {CFW{1'b0}};
        kw      <= {KWW{1'b0}};
        kh      <= {KHW{1'b0}};
        ox      <= {OXW{1'b0}};
        base_x  <= BX0;
        ix      <= BX0;
        bxcf    <= BXCF0;
        caddr   <= BXCF0;
        oy      <= oy + 1'b1;
        base_y  <= base_y + SH_Y;
        iy      <= base_y + SH_Y;
        by_base <= by_next;
        kbase   <= by_next;
      end else begin
        rcf     <= {CFW{1'b0}};
        kw      <= {KWW{1'b0}};
        kh      <= {KHW{1'b0}};
        ox      <= {OXW{1'b0}};
        base_x  <= BX0;
        ix      <= BX0;
        bxcf    <= BXCF0;
        caddr   <= BXCF0;
        oy      <= {OYW{1'b0}};
        base_y  <= BY0;
        iy      <= BY0;
        rf_base <= rf_next;
        by_base <= by_frame;
        kbase   <= by_frame;
      end
    end
  end

  // ------------------------------------------------------------------ frame difference
  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      w_ahead <= 1'b0;
      r_ahead <= 1'b0;
    end else if (w_frame_done && !r_frame_done) begin
      if (r_ahead) r_ahead <= 1'b0;
      else w_ahead <= 1'b1;
    end else if (r_frame_done && !w_frame_done) begin
      if (w_ahead) w_ahead <= 1'b0;
      else r_ahead <= 1'b1;
    end
  end

  // ------------------------------------------------------------------ output
  reg [ODW-1:0] od;
  reg [KSIMD-1:0] pad1;
  assign m_axis_tvalid = ov;
  assign m_axis_tdata  = od;
  always @(posedge ap_clk) begin
    if (en) pad1 <= pad;
  end
  generate
    for (j = 0; j < KSIMD; j = j + 1) begin : g_out
      always @(posedge ap_clk) if (en) od[j*DW+:DW] <= pad1[j] ? {SIMD{PADE}} : rdata[j*DW+:DW];
    end
  endgenerate
  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      v1 <= 1'b0;
      ov <= 1'b0;
    end else if (en) begin
      v1 <= rfire;
      ov <= v1;
    end
  end
endmodule
