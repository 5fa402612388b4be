// qloom_mvau: matrix-vector-activation unit (FINN's MVAU / StreamingFCLayer), with constant
// weights ($readmemh(WEIGHT_FILE), WLOAD = 0) or weights loaded after reset (WLOAD = 1).
//
// For every input vector x (MW elements) computes acc[n] = sum_i W[n][i] * x[i] for the MH
// output neurons n and emits either thresholded activations or the raw accumulators.
//
// Parameters
//   MW, MH        matrix columns (input vector length) and rows (output neurons)
//   PE, SIMD      neurons and input elements processed per cycle (PE | MH, SIMD | MW)
//   IBITS, ISIGNED  input element format
//   WBITS, WSIGNED  weight element format
//   BINARY        1: XNOR-popcount mode. IBITS = WBITS = 1, both bipolar (1 = +1, 0 = -1);
//                 acc = number of positions where input bit == weight bit (unsigned, 0..MW).
//   IBIPOLAR, WBIPOLAR  (BINARY = 0 only; the element must be 1 bit) read a 1-bit input /
//                 weight as bipolar (1 = +1, 0 = -1) in the multi-bit datapath, e.g. bipolar
//                 weights with 2-bit activations. Default 0.
//   ONES_COMP     1 (WBIPOLAR = 1, NT > 0 only): a -1 weight adds ~x = -x - 1 instead of -x
//                 (qloom_dot: no negation carry chain before the tree); the accumulator then
//                 holds acc - C[n], C[n] = the number of -1 weights of neuron n, so THRESH_FILE
//                 must hold T[n][k] - C[n] and ACC_BITS / TBITS the shifted ranges. Default 0.
//   ACC_BITS      accumulator width; the accumulator wraps modulo 2^ACC_BITS and is read as
//                 signed (BINARY = 0) or unsigned (BINARY = 1)
//   NT            thresholds per neuron; 0 = no activation, output the accumulator
//   TBITS         threshold width (two's complement)
//   OBITS         output element width when NT > 0 (<= 32); with NT = 0 outputs are ACC_BITS
//   OUT_BASE      out = OUT_BASE + #{k : acc >= T[n][k]}  (mod 2^OBITS)
//   MEM_REG       1: a second register after the weight read (block RAM's slow clock-to-out);
//                 0 for weights in LUTs or constant: one cycle less latency. Default 1.
//   DOT_CUT       1: the dot product's adder tree has a register level (qloom_dot CUT_REG);
//                 0 for small trees: one cycle less latency. Default 1.
//   WEIGHT_FILE   $readmemh file, NF*SF words (NF = MH/PE, SF = MW/SIMD) of PE*SIMD*WBITS bits;
//                 word nf*SF+sf, lane (p, s) at [(p*SIMD+s)*WBITS +: WBITS] = W[nf*PE+p][sf*SIMD+s]
//   THRESH_FILE   $readmemh file, NF words of PE*NT*TBITS bits; (p, k) at [(p*NT+k)*TBITS +:
//                 TBITS] = T[nf*PE+p][k], ascending in k
//   RAM_STYLE     weight memory: "auto" | "block" | "distributed", and with WLOAD = 1 also
//                 "ultra" (UltraRAM, which has no initial contents: constant weights cannot
//                 live there)
//   WLOAD         0: constant weights ($readmemh(WEIGHT_FILE)); the w_axis / wo_axis / loaded
//                 ports may be left unconnected (w_axis_tready = 0, wo_axis idle, loaded = 1):
//                 generated tops do so, and lint them with -Wno-PINMISSING.
//                 1: no $readmemh: a qloom_wload fills the weight memory from w_axis (32-bit
//                 host words, ceil(PE*SIMD*WBITS / 32) per memory word, little-endian, words
//                 0 .. NF*SF-1 in order) and then forwards every further host word on wo_axis
//                 (the next runtime MVAU's w_axis). s_axis_tready stays 0 until loaded = 1,
//                 so the unit never computes with unloaded weights.
//   TRAM_STYLE    threshold memory: "auto" | "block" | "distributed"
//
// Streams: s_axis carries SIMD elements per beat (SF beats per vector); m_axis carries PE
// outputs per beat (NF beats per vector), element p at [p*OW +: OW], OW = NT>0 ? OBITS : ACC_BITS.
// w_axis / wo_axis (32 bits, WLOAD = 1): the run-time weight words in / the later ones out.
//
// Schedule (FINN's): during neuron fold nf = 0 the input beats are used directly and stored in
// an SF-deep input buffer; folds nf = 1..NF-1 replay the buffer. One (nf, sf) step per cycle:
// NF*SF cycles per vector back to back, plus a 4 + MEM_REG + DOT_CUT cycle pipeline latency
// (issue / weight read, [memory output register], dot product [to the tree's CUT level, rest of
// the tree], accumulate, activation). All stages stall together when the output register is
// full and not accepted (s_axis_tready = that enable && nf == 0 && loaded); outputs are
// registered.
// Submodules: qloom_dot (one per PE: the dot product and its adder tree), qloom_threshold_lanes
// (NT > 0: the activation and the threshold memory, shared with qloom_thresholding),
// qloom_wload (WLOAD = 1: the weight loader).
module qloom_mvau #(
    parameter integer MW = 4,
    parameter integer MH = 4,
    parameter integer PE = 1,
    parameter integer SIMD = 1,
    parameter integer IBITS = 1,
    parameter integer ISIGNED = 0,
    parameter integer WBITS = 1,
    parameter integer WSIGNED = 0,
    parameter integer BINARY = 1,
    parameter integer IBIPOLAR = 0,
    parameter integer WBIPOLAR = 0,
    parameter integer ONES_COMP = 0,
    parameter integer MEM_REG = 1,
    parameter integer DOT_CUT = 1,
    parameter integer ACC_BITS = 16,
    parameter integer NT = 0,
    parameter integer TBITS = 16,
    parameter integer OBITS = 16,
    parameter integer OUT_BASE = 0,
    parameter WEIGHT_FILE = "",
    parameter THRESH_FILE = "",
    parameter RAM_STYLE = "auto",
    parameter TRAM_STYLE = "auto",
    parameter integer WLOAD = 0
) (
    input  wire                                         ap_clk,
    input  wire                                         ap_rst_n,
    input  wire [                        SIMD*IBITS-1:0] s_axis_tdata,
    input  wire                                         s_axis_tvalid,
    output wire                                         s_axis_tready,
    output wire [PE*((NT > 0) ? OBITS : ACC_BITS) - 1:0] m_axis_tdata,
    output wire                                         m_axis_tvalid,
    input  wire                                         m_axis_tready,
    input  wire [                                 31:0] w_axis_tdata,
    input  wire                                         w_axis_tvalid,
    output wire                                         w_axis_tready,
    output wire [                                 31:0] wo_axis_tdata,
    output wire                                         wo_axis_tvalid,
    input  wire                                         wo_axis_tready,
    output wire                                         loaded
);
  localparam integer SF = MW / SIMD;
  localparam integer NF = MH / PE;
  localparam integer OW = (NT > 0) ? OBITS : ACC_BITS;
  localparam integer SFW = (SF > 1) ? $clog2(SF) : 1;
  localparam integer NFW = (NF > 1) ? $clog2(NF) : 1;
  localparam integer WD = NF * SF;  // weight memory depth
  localparam integer WAW = (WD > 1) ? $clog2(WD) : 1;
  localparam integer WWORD = PE * SIMD * WBITS;
  localparam integer SFL = SF - 1, NFL = NF - 1, WDL = WD - 1;
  localparam [SFW-1:0] SF_LAST = SFL[SFW-1:0];
  localparam [NFW-1:0] NF_LAST = NFL[NFW-1:0];
  localparam [WAW-1:0] WA_LAST = WDL[WAW-1:0];
  // multi-bit datapath widths: every element as a signed value
  localparam integer XW = (IBIPOLAR != 0) ? 2 : IBITS + 1;
  localparam integer YW = (WBIPOLAR != 0) ? 2 : WBITS + 1;
  localparam integer PW = XW + YW;  // product
  // per-PE partial sum of one SIMD fold
  localparam integer PSW = (BINARY != 0) ? $clog2(SIMD + 1) : PW + $clog2(SIMD) + 1;
  localparam integer AXW = (PSW > ACC_BITS) ? PSW : ACC_BITS;
  /* verilator lint_off WIDTHEXPAND */
  localparam W_BLOCK = (RAM_STYLE == "block");
  localparam W_DIST = (RAM_STYLE == "distributed");
  localparam W_ULTRA = (RAM_STYLE == "ultra");
  localparam HAVE_WFILE = (WEIGHT_FILE != "");
  /* verilator lint_on WIDTHEXPAND */

  // ---------------------------------------------------------------- stage 0: issue
  reg [SFW-1:0] sf;
  reg [NFW-1:0] nf;
  reg [WAW-1:0] waddr;
  reg ov;
  wire en = !ov || m_axis_tready;
  wire need_in = (nf == {NFW{1'b0}});
  wire issue = need_in ? s_axis_tvalid && loaded : 1'b1;
  wire fire = en && issue;
  assign s_axis_tready = en && need_in && loaded;

  wire [SIMD*IBITS-1:0] x_sel;
  generate
    if (NF > 1) begin : g_ibuf
      reg [SIMD*IBITS-1:0] ibuf[0:SF-1];
      always @(posedge ap_clk) if (fire && need_in) ibuf[sf] <= s_axis_tdata;
      assign x_sel = need_in ? s_axis_tdata : ibuf[sf];
    end else begin : g_noibuf
      assign x_sel = s_axis_tdata;
    end
  endgenerate

  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      sf <= {SFW{1'b0}};
      nf <= {NFW{1'b0}};
      waddr <= {WAW{1'b0}};
    end else if (fire) begin
      waddr <= (waddr == WA_LAST) ? {WAW{1'b0}} : waddr + 1'b1;
      if (sf != SF_LAST) sf <= sf + 1'b1;
      else begin
        sf <= {SFW{1'b0}};
        nf <= (nf == NF_LAST) ? {NFW{1'b0}} : nf + 1'b1;
      end
    end
  end

  // ---------------------------------------------------------------- stage 1: operands
  reg v1, f1, l1;
  reg [NFW-1:0] n1;
  reg [SIMD*IBITS-1:0] x1;
  reg [WWORD-1:0] w1;
  always @(posedge ap_clk) begin
    if (en) begin
      x1 <= x_sel;
      f1 <= (sf == {SFW{1'b0}});
      l1 <= (sf == SF_LAST);
      n1 <= nf;
    end
    if (!ap_rst_n) v1 <= 1'b0;
    else if (en) v1 <= fire;
  end
  // weight memory write port (WLOAD = 1): the loader's
  wire wl_we;
  wire [WAW-1:0] wl_addr;
  wire [WWORD-1:0] wl_data;
  generate
    if (WLOAD != 0) begin : g_wload
      qloom_wload #(
          .WIDTH(WWORD),
          .DEPTH(WD)
      ) u_wload (
          .ap_clk(ap_clk),
          .ap_rst_n(ap_rst_n),
          .s_axis_tdata(w_axis_tdata),
          .s_axis_tvalid(w_axis_tvalid),
          .s_axis_tready(w_axis_tready),
          .m_axis_tdata(wo_axis_tdata),
          .m_axis_tvalid(wo_axis_tvalid),
          .m_axis_tready(wo_axis_tready),
          .we(wl_we),
          .addr(wl_addr),
          .data(wl_data),
          .loaded(loaded)
      );
    end else begin : g_const
      assign {wl_we, wl_addr, wl_data} = {(1 + WAW + WWORD) {1'b0}};
      assign w_axis_tready = 1'b0;
      assign wo_axis_tdata = 32'd0;
      assign wo_axis_tvalid = 1'b0;
      assign loaded = 1'b1;
      /* verilator lint_off UNUSEDSIGNAL */
      wire unused_w = &{1'b0, w_axis_tdata, w_axis_tvalid, wo_axis_tready, wl_we, wl_addr,
                        wl_data};
      /* verilator lint_on UNUSEDSIGNAL */
    end
  endgenerate
  generate
    if (WLOAD != 0 && W_ULTRA) begin : g_wram_ultra
      (* ram_style = "ultra" *) reg [WWORD-1:0] wmem[0:WD-1];
      always @(posedge ap_clk) if (wl_we) wmem[wl_addr] <= wl_data;
      always @(posedge ap_clk) if (en) w1 <= wmem[waddr];
    end else if (WLOAD != 0 && W_BLOCK) begin : g_wram_block
      (* ram_style = "block" *) reg [WWORD-1:0] wmem[0:WD-1];
      always @(posedge ap_clk) if (wl_we) wmem[wl_addr] <= wl_data;
      always @(posedge ap_clk) if (en) w1 <= wmem[waddr];
    end else if (WLOAD != 0 && W_DIST) begin : g_wram_dist
      (* ram_style = "distributed" *) reg [WWORD-1:0] wmem[0:WD-1];
      always @(posedge ap_clk) if (wl_we) wmem[wl_addr] <= wl_data;
      always @(posedge ap_clk) if (en) w1 <= wmem[waddr];
    end else if (WLOAD != 0) begin : g_wram_auto
      reg [WWORD-1:0] wmem[0:WD-1];
      always @(posedge ap_clk) if (wl_we) wmem[wl_addr] <= wl_data;
      always @(posedge ap_clk) if (en) w1 <= wmem[waddr];
    end else if (W_BLOCK) begin : g_wmem_block
      (* rom_style = "block", ram_style = "block" *) reg [WWORD-1:0] wmem[0:WD-1];
      initial if (HAVE_WFILE) $readmemh(WEIGHT_FILE, wmem);
      always @(posedge ap_clk) if (en) w1 <= wmem[waddr];
    end else if (W_DIST) begin : g_wmem_dist
      (* rom_style = "distributed", ram_style = "distributed" *) reg [WWORD-1:0] wmem[0:WD-1];
      initial if (HAVE_WFILE) $readmemh(WEIGHT_FILE, wmem);
      always @(posedge ap_clk) if (en) w1 <= wmem[waddr];
    end else begin : g_wmem_auto
      reg [WWORD-1:0] wmem[0:WD-1];
      initial if (HAVE_WFILE) $readmemh(WEIGHT_FILE, wmem);
      always @(posedge ap_clk) if (en) w1 <= wmem[waddr];
    end
  endgenerate

  // ---------------------------------------------------------------- stage 1b: memory output
  // A second register after the weight read: a block RAM's clock-to-output is slow (5.6 ns on
  // ECP5 without its output register) and used to start the critical path into the dot
  // product. Constant weights (NF*SF = 1) make it constant, which synthesis removes.
  // MEM_REG = 0 (weights in LUTs or constant): no such register, stage 1 feeds stage 2.
  wire vb, fb, lb;
  wire [NFW-1:0] nb;
  wire [SIMD*IBITS-1:0] xb;
  wire [WWORD-1:0] wb;
  generate
    if (MEM_REG != 0) begin : g_memreg
      reg vr, fr, lr;
      reg [NFW-1:0] nr;
      reg [SIMD*IBITS-1:0] xr;
      reg [WWORD-1:0] wr;
      always @(posedge ap_clk) begin
        if (en) begin
          xr <= x1;
          wr <= w1;
          fr <= f1;
          lr <= l1;
          nr <= n1;
        end
        if (!ap_rst_n) vr <= 1'b0;
        else if (en) vr <= v1;
      end
      assign {vb, fb, lb, nb, xb, wb} = {vr, fr, lr, nr, xr, wr};
    end else begin : g_nomemreg
      assign {vb, fb, lb, nb, xb, wb} = {v1, f1, l1, n1, x1, w1};
    end
  endgenerate

  // ---------------------------------------------------------------- stage 2: dot products
  // One qloom_dot per PE: an adder tree over the SIMD products (or the match counts of 3-lane
  // groups in XNOR mode) whose middle level (CUT) is registered: stage 2a ends there, stage 2b
  // (the rest of the tree) ends in ps2.
  wire [PE*PSW-1:0] ps;
  genvar p;
  generate
    if ((MW % SIMD != 0) || (MH % PE != 0) ||
        ((BINARY != 0) && ((IBITS != 1) || (WBITS != 1))) ||
        ((IBIPOLAR != 0) && (IBITS != 1)) || ((WBIPOLAR != 0) && (WBITS != 1)) ||
        ((NT > 0) && (OBITS > 32)) || ((ONES_COMP != 0) && ((WBIPOLAR == 0) || (NT == 0))) ||
        ((WLOAD == 0) && W_ULTRA))
    begin : g_bad
      qloom_mvau_error_bad_parameters u_err ();
    end
    for (p = 0; p < PE; p = p + 1) begin : g_dot
      qloom_dot #(
          .SIMD(SIMD),
          .IBITS(IBITS),
          .ISIGNED(ISIGNED),
          .IBIPOLAR(IBIPOLAR),
          .WBITS(WBITS),
          .WSIGNED(WSIGNED),
          .WBIPOLAR(WBIPOLAR),
          .BINARY(BINARY),
          .ONES_COMP(ONES_COMP),
          .CUT_REG(DOT_CUT),
          .PSW(PSW)
      ) u_dot (
          .ap_clk(ap_clk),
          .en(en),
          .x(xb),
          .w(wb[p*SIMD*WBITS+:SIMD*WBITS]),
          .ps(ps[p*PSW+:PSW])
      );
    end
  endgenerate

  // the flags beside the CUT registers (none when DOT_CUT = 0)
  wire vc, fc, lc;
  wire [NFW-1:0] nc;
  generate
    if (DOT_CUT != 0) begin : g_cutflags
      reg vr, fr, lr;
      reg [NFW-1:0] nr;
      always @(posedge ap_clk) begin
        if (en) begin
          fr <= fb;
          lr <= lb;
          nr <= nb;
        end
        if (!ap_rst_n) vr <= 1'b0;
        else if (en) vr <= vb;
      end
      assign {vc, fc, lc, nc} = {vr, fr, lr, nr};
    end else begin : g_nocutflags
      assign {vc, fc, lc, nc} = {vb, fb, lb, nb};
    end
  endgenerate

  reg v2, f2, l2;
  reg [NFW-1:0] n2;
  reg [PE*PSW-1:0] ps2;
  always @(posedge ap_clk) begin
    if (en) begin
      ps2 <= ps;
      f2 <= fc;
      l2 <= lc;
      n2 <= nc;
    end
    if (!ap_rst_n) v2 <= 1'b0;
    else if (en) v2 <= vc;
  end

  // ---------------------------------------------------------------- stage 3: accumulate
  reg v3;
  reg [PE*ACC_BITS-1:0] acc;
  generate
    for (p = 0; p < PE; p = p + 1) begin : g_acc
      wire [PSW-1:0] pv = ps2[p*PSW+:PSW];
      /* verilator lint_off UNUSEDSIGNAL */
      wire [AXW-1:0] pext;
      /* verilator lint_on UNUSEDSIGNAL */
      if (AXW > PSW) begin : g_ext
        wire pneg = (BINARY == 0) && pv[PSW-1];
        assign pext = {{(AXW - PSW) {pneg}}, pv};
      end else begin : g_same
        assign pext = pv;
      end
      wire [ACC_BITS-1:0] base = f2 ? {ACC_BITS{1'b0}} : acc[p*ACC_BITS+:ACC_BITS];
      always @(posedge ap_clk)
        if (en && v2) acc[p*ACC_BITS+:ACC_BITS] <= base + pext[ACC_BITS-1:0];
    end
  endgenerate
  always @(posedge ap_clk) begin
    if (!ap_rst_n) v3 <= 1'b0;
    else if (en) v3 <= v2 && l2;
  end

  // ---------------------------------------------------------------- stage 4: activation
  // the thresholds of fold n2 are read beside the accumulate (signed unless BINARY)
  wire [PE*OW-1:0] res;
  generate
    if (NT > 0) begin : g_thr
      qloom_threshold_lanes #(
          .N(NF),
          .PE(PE),
          .IBITS(ACC_BITS),
          .ISIGNED((BINARY == 0) ? 1 : 0),
          .NT(NT),
          .TBITS(TBITS),
          .OBITS(OBITS),
          .OUT_BASE(OUT_BASE),
          .THRESH_FILE(THRESH_FILE),
          .RAM_STYLE(TRAM_STYLE)
      ) u_thr (
          .ap_clk(ap_clk),
          .en(en),
          .addr(n2),
          .x(acc),
          .y(res)
      );
    end else begin : g_raw
      assign res = acc;
      /* verilator lint_off UNUSEDSIGNAL */
      wire unused_n = &{1'b0, n2};
      /* verilator lint_on UNUSEDSIGNAL */
    end
  endgenerate

  reg [PE*OW-1:0] od;
  assign m_axis_tvalid = ov;
  assign m_axis_tdata  = od;
  always @(posedge ap_clk) begin
    if (en) od <= res;
    if (!ap_rst_n) ov <= 1'b0;
    else if (en) ov <= v3;
  end
endmodule
