/* Compiled kernels for qloom's integer executor: XNOR-popcount GEMM and conv, a one-pass
 * MultiThreshold on int16, a 16-bit integer conv (qloom/execute/native.py builds this file
 * with the system C compiler on first use and falls back to numpy without one).
 *
 * XNOR operands are +-1 values packed 64 to a uint64 word (bit 1 = +1), padding bits 0 on both
 * sides, so popcount(xnor) over K values = K - popcount(x ^ w) summed over the words. One
 * pass per word (xor, popcount, add in registers) instead of numpy's three passes over
 * memory; the compiler vectorizes the word loop (vpopcntq where the CPU has it). */
#include <stdint.h>

/* out (rows, n) = matches of x (rows, words) against w (words, n), word-major: for each
 * word of x, one xor-popcount-add over the n output channels, a loop the compiler turns into
 * vector instructions without any horizontal sum. */
void xnor_gemm(const uint64_t *x, const uint64_t *w, int64_t rows, int64_t n, int64_t words,
               int64_t k, int16_t *out)
{
    uint64_t acc[n];
    for (int64_t r = 0; r < rows; r++) {
        const uint64_t *xr = x + r * words;
        for (int64_t c = 0; c < n; c++)
            acc[c] = 0;
        for (int64_t j = 0; j < words; j++) {
            const uint64_t xj = xr[j], *wj = w + j * n;
            for (int64_t c = 0; c < n; c++)
                acc[c] += (uint64_t)__builtin_popcountll(xj ^ wj[c]);
        }
        int16_t *o = out + r * n;
        for (int64_t c = 0; c < n; c++)
            o[c] = (int16_t)(k - (int64_t)acc[c]);
    }
}

/* Unpadded conv of images [n0, n1) of x (N, H, WD, wpp words per pixel, channels packed per
 * pixel) with w (KH * KW * wpp, cout), words in (ky, kx, word) order; out (N, OH, OW,
 * cout). A window's words are gathered once into `win` (each ky row is KW * wpp contiguous
 * words of x) and matched against every output channel. */
void xnor_conv(const uint64_t *x, int64_t n0, int64_t n1, int64_t h, int64_t wd, int64_t wpp,
               const uint64_t *w, int64_t cout, int64_t kh, int64_t kw, int64_t sh,
               int64_t sw, int64_t k, int16_t *out)
{
    int64_t oh = (h - kh) / sh + 1, ow = (wd - kw) / sw + 1;
    int64_t row_words = kw * wpp, words = kh * row_words;
    uint64_t win[words];
    for (int64_t i = n0; i < n1; i++) {
        for (int64_t oy = 0; oy < oh; oy++) {
            for (int64_t ox = 0; ox < ow; ox++) {
                for (int64_t ky = 0; ky < kh; ky++) {
                    const uint64_t *src = x + (((i * h) + oy * sh + ky) * wd + ox * sw) * wpp;
                    for (int64_t j = 0; j < row_words; j++)
                        win[ky * row_words + j] = src[j];
                }
                xnor_gemm(win, w, 1, cout, words, k, out + ((i * oh + oy) * ow + ox) * cout);
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
    int64_t oh = (h - kh) / sh + 1, ow = (wd - kw) / sw + 1, row = kw * cin;
    int16_t acc[cout];
    for (int64_t i = n0; i < n1; i++) {
        for (int64_t oy = 0; oy < oh; oy++) {
            for (int64_t ox = 0; ox < ow; ox++) {
                for (int64_t c = 0; c < cout; c++)
                    acc[c] = 0;
                for (int64_t ky = 0; ky < kh; ky++) {  /* a window row: KW * cin contiguous */
                    const int16_t *src = x + ((i * h + oy * sh + ky) * wd + ox * sw) * cin;
                    const int16_t *wk = w + ky * row * cout;
                    for (int64_t j = 0; j < row; j++) {
                        const int16_t xv = src[j], *wc = wk + j * cout;
                        for (int64_t c = 0; c < cout; c++)
                            acc[c] = (int16_t)(acc[c] + xv * wc[c]);
                    }
                }
                int16_t *o = out + ((i * oh + oy) * ow + ox) * cout;
                for (int64_t c = 0; c < cout; c++)
                    o[c] = acc[c];
            }
        }
    }
}
