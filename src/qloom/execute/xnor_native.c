/* Compiled kernels for qloom's integer executor: XNOR-popcount GEMM and conv, sign packing, a
 * one-pass MultiThreshold on int16, a 16-bit integer conv (qloom/execute/native.py builds this
 * file with the system C compiler on first use and falls back to numpy without one).
 *
 * XNOR operands are +-1 values packed 64 to a uint64 word (bit 1 = +1), padding bits 0 on both
 * sides, so popcount(xnor) over K values = K - popcount(x ^ w) summed over the words. One
 * pass per word (xor, popcount, add in registers) instead of numpy's three passes over
 * memory; the compiler vectorizes the word loop (vpopcntq where the CPU has it). */
#include <stdint.h>
#if defined(__AVX512BW__)
#include <immintrin.h>
#endif

/* out (rows, words) = the signs of x (rows, k) int8, packed: bit j of word i is 1 where
 * x[i * 64 + j] > 0 (the +-1 convention above), padding bits 0. One pass over x, 64 values per
 * instruction where the CPU has AVX-512BW (numpy: a compare, packbits and a padding copy). */
void pack_i8(const int8_t *x, int64_t rows, int64_t k, uint64_t *out)
{
    int64_t words = (k + 63) / 64;
    for (int64_t r = 0; r < rows; r++) {
        const int8_t *xr = x + r * k;
        uint64_t *o = out + r * words;
        for (int64_t i = 0; i < words; i++) {
            const int8_t *src = xr + i * 64;
            int64_t n = k - i * 64 < 64 ? k - i * 64 : 64;
            uint64_t v = 0;
#if defined(__AVX512BW__)
            if (n == 64) {
                o[i] = _mm512_cmpgt_epi8_mask(_mm512_loadu_si512(src), _mm512_setzero_si512());
                continue;
            }
#endif
            for (int64_t j = 0; j < n; j++)
                v |= (uint64_t)(src[j] > 0) << j;
            o[i] = v;
        }
    }
}

/* Register blocking: BP rows (pixels) x BC output channels of accumulators stay in vector
 * registers while the reduction runs, and each weight vector loaded serves BP rows. A variable
 * length accumulator array lived in memory instead: one load and one store per word and
 * channel (measured 1.6-2.5x slower on CNV's layers). */
enum { BP = 4, BC = 32, BC16 = 32 };  /* BC: 64-bit accumulators, BC16: 16-bit */

/* Rows [0, np) (np <= BP) of x (BP rows of `words`; rows past np are read, not written) against
 * channels [c0, c0 + BC) of w (words, n): out[r * n + c] = k - popcount(x ^ w). */
static void xnor_block(const uint64_t *x, int64_t np, const uint64_t *w, int64_t n,
                       int64_t words, int64_t c0, int64_t k, int16_t *out)
{
    uint64_t acc[BP][BC] = {{0}};
    for (int64_t j = 0; j < words; j++) {
        const uint64_t *wj = w + j * n + c0;
        for (int p = 0; p < BP; p++) {
            const uint64_t xj = x[p * words + j];
            for (int c = 0; c < BC; c++)
                acc[p][c] += (uint64_t)__builtin_popcountll(xj ^ wj[c]);
        }
    }
    for (int64_t p = 0; p < np; p++)
        for (int c = 0; c < BC; c++)
            out[p * n + c0 + c] = (int16_t)(k - (int64_t)acc[p][c]);
}

/* out (np, n) for the np <= BP rows of x (BP rows of `words`, as xnor_block): channel blocks of
 * BC, then the remaining channels one by one. */
static void xnor_rows(const uint64_t *x, int64_t np, const uint64_t *w, int64_t n,
                      int64_t words, int64_t k, int16_t *out)
{
    int64_t c0 = 0;
    for (; c0 + BC <= n; c0 += BC)
        xnor_block(x, np, w, n, words, c0, k, out);
    for (int64_t p = 0; p < np; p++)
        for (int64_t c = c0; c < n; c++) {
            uint64_t acc = 0;
            for (int64_t j = 0; j < words; j++)
                acc += (uint64_t)__builtin_popcountll(x[p * words + j] ^ w[j * n + c]);
            out[p * n + c] = (int16_t)(k - (int64_t)acc);
        }
}

/* out (rows, n) = matches of x (rows, words) against w (words, n), word-major. */
void xnor_gemm(const uint64_t *x, const uint64_t *w, int64_t rows, int64_t n, int64_t words,
               int64_t k, int16_t *out)
{
    uint64_t tail[BP * words];
    for (int64_t r = 0; r < rows; r += BP) {
        int64_t np = rows - r < BP ? rows - r : BP;
        const uint64_t *xr = x + r * words;
        if (np < BP) {  /* the last rows: copied, so that the block never reads past x */
            for (int64_t j = 0; j < BP * words; j++)
                tail[j] = j < np * words ? xr[j] : 0;
            xr = tail;
        }
        xnor_rows(xr, np, w, n, words, k, out + r * n);
    }
}

/* Unpadded conv of images [n0, n1) of x (N, H, WD, wpp words per pixel, channels packed per
 * pixel) with w (KH * KW * wpp, cout), words in (ky, kx, word) order; out (N, OH, OW,
 * cout). The windows of BP neighbouring output pixels are gathered into `win` (each ky row is
 * KW * wpp contiguous words of x) and matched against every output channel together. */
void xnor_conv(const uint64_t *x, int64_t n0, int64_t n1, int64_t h, int64_t wd, int64_t wpp,
               const uint64_t *w, int64_t cout, int64_t kh, int64_t kw, int64_t sh,
               int64_t sw, int64_t k, int16_t *out)
{
    int64_t oh = (h - kh) / sh + 1, ow = (wd - kw) / sw + 1;
    int64_t row_words = kw * wpp, words = kh * row_words;
    uint64_t win[BP * words];
    for (int64_t j = 0; j < BP * words; j++)
        win[j] = 0;
    for (int64_t i = n0; i < n1; i++) {
        for (int64_t oy = 0; oy < oh; oy++) {
            for (int64_t ox = 0; ox < ow; ox += BP) {
                int64_t np = ow - ox < BP ? ow - ox : BP;
                for (int64_t p = 0; p < np; p++)
                    for (int64_t ky = 0; ky < kh; ky++) {
                        const uint64_t *src =
                            x + (((i * h) + oy * sh + ky) * wd + (ox + p) * sw) * wpp;
                        for (int64_t j = 0; j < row_words; j++)
                            win[p * words + ky * row_words + j] = src[j];
                    }
                xnor_rows(win, np, w, cout, words, k, out + ((i * oh + oy) * ow + ox) * cout);
            }
        }
    }
}

/* out (rows, c) = number of thresholds t[j][c] <= x for j < k, or 2 * that - 1 (bipolar):
 * a MultiThreshold on the int16 popcounts and accumulators in one pass (numpy makes one pass
 * per level and two more for the bipolar map). t is level-major (k, c), sorted per channel. */
void threshold_i16(const int16_t *x, int64_t rows, int64_t c, const int16_t *t, int64_t k,
                   int64_t bipolar, int8_t *out)
{
    for (int64_t r = 0; r < rows; r++) {
        const int16_t *xr = x + r * c;
        int8_t *o = out + r * c;
        for (int64_t ch = 0; ch < c; ch++)
            o[ch] = 0;
        for (int64_t j = 0; j < k; j++) {
            const int16_t *tj = t + j * c;
            for (int64_t ch = 0; ch < c; ch++)
                o[ch] += (int8_t)(xr[ch] >= tj[ch]);
        }
        if (bipolar)
            for (int64_t ch = 0; ch < c; ch++)
                o[ch] = (int8_t)(2 * o[ch] - 1);
    }
}

/* Unpadded integer conv of images [n0, n1) of x (N, H, WD, cin) int16 with w (KH * KW * cin,
 * cout) int16 in (ky, kx, ci) order; out (N, OH, OW, cout) int16. The caller guarantees that
 * every partial sum fits int16 (|x| * |w| * KH * KW * cin < 2**15), so the sums are exact in
 * 16-bit lanes: 32 per AVX-512 register, against 16 float32 lanes for BLAS after an im2col
 * copy (measured on CNV's first layer: 27-long reductions, where BLAS is least efficient). */
void conv_i16(const int16_t *x, int64_t n0, int64_t n1, int64_t h, int64_t wd, int64_t cin,
              const int16_t *w, int64_t cout, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
              int16_t *out)
{
    int64_t oh = (h - kh) / sh + 1, ow = (wd - kw) / sw + 1, row = kw * cin, taps = kh * row;
    int16_t win[BP * taps];
    for (int64_t j = 0; j < BP * taps; j++)
        win[j] = 0;
    for (int64_t i = n0; i < n1; i++) {
        for (int64_t oy = 0; oy < oh; oy++) {
            for (int64_t ox = 0; ox < ow; ox += BP) {
                int64_t np = ow - ox < BP ? ow - ox : BP;
                for (int64_t p = 0; p < np; p++)  /* a window row: KW * cin contiguous */
                    for (int64_t ky = 0; ky < kh; ky++) {
                        const int16_t *src =
                            x + ((i * h + oy * sh + ky) * wd + (ox + p) * sw) * cin;
                        for (int64_t j = 0; j < row; j++)
                            win[p * taps + ky * row + j] = src[j];
                    }
                int16_t *o = out + ((i * oh + oy) * ow + ox) * cout;
                int64_t c0 = 0;
                for (; c0 + BC16 <= cout; c0 += BC16) {  /* as xnor_block: registers */
                    int16_t acc[BP][BC16] = {{0}};
                    for (int64_t j = 0; j < taps; j++) {
                        const int16_t *wc = w + j * cout + c0;
                        for (int p = 0; p < BP; p++) {
                            const int16_t xv = win[p * taps + j];
                            for (int c = 0; c < BC16; c++)
                                acc[p][c] = (int16_t)(acc[p][c] + xv * wc[c]);
                        }
                    }
                    for (int64_t p = 0; p < np; p++)
                        for (int c = 0; c < BC16; c++)
                            o[p * cout + c0 + c] = acc[p][c];
                }
                for (int64_t p = 0; p < np; p++)
                    for (int64_t c = c0; c < cout; c++) {
                        int16_t acc = 0;
                        for (int64_t j = 0; j < taps; j++)
                            acc = (int16_t)(acc + win[p * taps + j] * w[j * cout + c]);
                        o[p * cout + c] = acc;
                    }
            }
        }
    }
}
