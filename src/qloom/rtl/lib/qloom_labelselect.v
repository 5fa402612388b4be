// qloom_labelselect: top-K label selection (FINN's LabelSelect).
//
// Parameters
//   N             values (classes) per frame
//   PE            values per input beat (PE | N): N/PE input beats per frame
//   BITS, SIGNED  value format
//   K             labels output per frame (1 <= K <= N)
// Output: K beats per frame, each the index (IW = max(1, $clog2(N)) bits) of one of the K
// largest values, largest first; equal values are ordered by lower index first.
// One input beat per cycle (PE insertions into a sorted K-entry list per cycle); the K indices
// of a frame are shifted out while the next frame streams in.
module qloom_labelselect #(
    parameter integer N = 10,
    parameter integer PE = 1,
    parameter integer BITS = 8,
    parameter integer SIGNED = 1,
    parameter integer K = 1
) (
    input  wire                                   ap_clk,
    input  wire                                   ap_rst_n,
    input  wire [                    PE*BITS-1:0] s_axis_tdata,
    input  wire                                   s_axis_tvalid,
    output wire                                   s_axis_tready,
    output wire [((N > 1) ? $clog2(N) : 1) - 1:0] m_axis_tdata,
    output wire                                   m_axis_tvalid,
    input  wire                                   m_axis_tready
);
  localparam integer IW = (N > 1) ? $clog2(N) : 1;
  localparam integer KB = $clog2(K + 1);
  localparam integer NLAST = N - PE;
  localparam [IW-1:0] IDX_LAST = NLAST[IW-1:0];
  localparam [IW-1:0] IDX_STEP = PE[IW-1:0];
  localparam [KB-1:0] KC = K[KB-1:0];
  localparam integer ONEI = 1;
  localparam [KB-1:0] K_ONE = ONEI[KB-1:0];

  // sorted list state (after the beats of the current frame seen so far)
  reg [K*BITS-1:0] lv;
  reg [K*IW-1:0] li;
  reg [K-1:0] lok;
  reg [IW-1:0] base;  // index of element 0 of the next beat
  wire first = (base == {IW{1'b0}});
  wire last = (base == IDX_LAST);

  // output buffer: indices of the finished frame, shifted out LSB first
  reg [K*IW-1:0] ob;
  reg [KB-1:0] on;
  wire pop = m_axis_tvalid && m_axis_tready;
  assign m_axis_tvalid = (on != {KB{1'b0}});
  assign m_axis_tdata = ob[IW-1:0];
  assign s_axis_tready = !last || (on == {KB{1'b0}}) || ((on == K_ONE) && m_axis_tready);
  wire fire = s_axis_tvalid && s_axis_tready;

  // insertion chain: stage p holds the list after inserting elements 0..p-1 of this beat
  wire [(PE+1)*K*BITS-1:0] cv;
  wire [(PE+1)*K*IW-1:0] ci;
  wire [(PE+1)*K-1:0] cok;
  assign cv[K*BITS-1:0] = lv;
  assign ci[K*IW-1:0] = li;
  assign cok[K-1:0] = first ? {K{1'b0}} : lok;
  genvar p, j;
  generate
    if ((N % PE != 0) || (K < 1) || (K > N)) begin : g_bad
      qloom_labelselect_error_bad_parameters u_err ();
    end
    for (p = 0; p < PE; p = p + 1) begin : g_ins
      wire [BITS-1:0] nv = s_axis_tdata[p*BITS+:BITS];
      wire [IW-1:0] ni = base + p[IW-1:0];
      wire [K-1:0] gt;  // new value goes before slot j
      for (j = 0; j < K; j = j + 1) begin : g_slot
        wire [BITS-1:0] sv = cv[(p*K+j)*BITS+:BITS];
        wire greater = (SIGNED != 0) ? ($signed(nv) > $signed(sv)) : (nv > sv);
        assign gt[j] = !cok[p*K+j] || greater;
        if (j == 0) begin : g_head
          assign cv[((p+1)*K+j)*BITS+:BITS] = gt[j] ? nv : sv;
          assign ci[((p+1)*K+j)*IW+:IW] = gt[j] ? ni : ci[(p*K+j)*IW+:IW];
          assign cok[(p+1)*K+j] = 1'b1;
        end else begin : g_rest
          wire ins = gt[j] && !gt[j-1];
          assign cv[((p+1)*K+j)*BITS+:BITS] =
              !gt[j] ? sv : (ins ? nv : cv[(p*K+j-1)*BITS+:BITS]);
          assign ci[((p+1)*K+j)*IW+:IW] =
              !gt[j] ? ci[(p*K+j)*IW+:IW] : (ins ? ni : ci[(p*K+j-1)*IW+:IW]);
          assign cok[(p+1)*K+j] = !gt[j] ? cok[p*K+j] : (ins ? 1'b1 : cok[p*K+j-1]);
        end
      end
    end
  endgenerate

  always @(posedge ap_clk) begin
    if (fire) begin
      lv <= cv[PE*K*BITS+:K*BITS];
      li <= ci[PE*K*IW+:K*IW];
    end
    if (fire && last) ob <= ci[PE*K*IW+:K*IW];
    else if (pop) ob <= ob >> IW;
  end

  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      lok <= {K{1'b0}};
      base <= {IW{1'b0}};
      on <= {KB{1'b0}};
    end else begin
      if (fire) begin
        lok  <= cok[PE*K+:K];
        base <= last ? {IW{1'b0}} : base + IDX_STEP;
      end
      if (fire && last) on <= KC;
      else if (pop) on <= on - 1'b1;
    end
  end
endmodule
