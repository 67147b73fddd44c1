/* Event-driven simulation of a liquid state machine (see snn/lsm/event_kernel.py for the Python side).
 *
 * Per sample b and step t (d = 1/tau):
 *   H = V*(1-d) + V_reset*d + gain * sum_{input events (i, c) at (t, b)} c * W_in[i, :] + R
 *   S = H >= V_th;  V = S ? V_reset : H;  r = r*trace_keep + S
 *   R(next step) = sum_{j : S_j} W_rec[j, :]
 * x is the dense input [T, B, n_in] (event counts); weights are CSR by presynaptic row, so a step costs
 * n_in compares + (input events + spikes) x fan-out, not N^2.
 * Bin k of the features accumulates S (counts) and r (traces) over its steps.
 *
 * Two code paths, the same arithmetic in the same order (so the same spikes):
 *  - AVX-512 (when the compiler targets it, -march=native): the input scan compares 16 inputs at once and
 *    walks the set bits of the mask; the neuron update runs 16 neurons per instruction and emits the fired
 *    list from the spike mask; a CSR row is added with gather / add / scatter, which is exact because the
 *    columns of one row are distinct (no two lanes write the same neuron).
 *  - portable scalar C (any compiler, or -DLSM_PORTABLE).
 * Fused multiply-add is disabled at build time (-ffp-contract=off) so both paths round like the torch engine.
 * Returns the number of non-finite input values seen (the caller raises), so the input needs no separate scan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) && !defined(LSM_PORTABLE)
#include <immintrin.h>
#define LSM_AVX512 1
#else
#define LSM_AVX512 0
#endif

int lsm_event_simd(void) { return LSM_AVX512; }

static inline int finite_f(float a) {
    uint32_t u;
    memcpy(&u, &a, 4);
    return (u & 0x7f800000u) != 0x7f800000u;
}

/* acc[col[k]] += c * val[k] for k in [lo, hi) (the columns are distinct) */
static inline void add_row(float *acc, const int32_t *col, const float *val, int64_t lo, int64_t hi, float c,
                           int scale) {
#if LSM_AVX512 && defined(LSM_GATHER_ROWS)
    int64_t k = lo;
    const __m512 cv = _mm512_set1_ps(c);
    for (; k + 16 <= hi; k += 16) {
        __m512i ix = _mm512_loadu_si512((const void *)(col + k));
        __m512 w = _mm512_loadu_ps(val + k);
        if (scale) w = _mm512_mul_ps(cv, w);
        __m512 a = _mm512_i32gather_ps(ix, acc, 4);
        _mm512_i32scatter_ps(acc, ix, _mm512_add_ps(a, w), 4);
    }
    if (k < hi) {
        __mmask16 m = (__mmask16)((1u << (hi - k)) - 1u);
        __m512i ix = _mm512_maskz_loadu_epi32(m, (const void *)(col + k));
        __m512 w = _mm512_maskz_loadu_ps(m, val + k);
        if (scale) w = _mm512_mul_ps(cv, w);
        __m512 a = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, ix, acc, 4);
        _mm512_mask_i32scatter_ps(acc, m, ix, _mm512_add_ps(a, w), 4);
    }
#else
    if (scale)
        for (int64_t k = lo; k < hi; ++k) acc[col[k]] += c * val[k];
    else
        for (int64_t k = lo; k < hi; ++k) acc[col[k]] += val[k];
#endif
}

int lsm_event_run(int T, int B, int N, int n_in,
                  const int64_t *in_ptr, const int32_t *in_col, const float *in_val,
                  const int64_t *rec_ptr, const int32_t *rec_col, const float *rec_val,
                  const float *x,
                  float keep, float v_reset_d, float v_th, float v_reset, float gain, float trace_keep,
                  const int32_t *bin_of_t, float *counts, float *traces, uint8_t *spikes, int n_threads)
{
    int bad = 0;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1) reduction(+ : bad)
    for (int b = 0; b < B; ++b) {
        float *v = (float *)malloc(sizeof(float) * N);
        float *r = (float *)calloc(N, sizeof(float));
        float *cur = (float *)calloc(N, sizeof(float));
        float *nxt = (float *)calloc(N, sizeof(float));
        int32_t *fired = (int32_t *)malloc(sizeof(int32_t) * N);
        float *acc_c = (float *)calloc(N, sizeof(float));  /* this bin's counts and trace sums, flushed */
        float *acc_r = (float *)calloc(N, sizeof(float));  /* to the outputs when the bin ends          */
        for (int n = 0; n < N; ++n) v[n] = v_reset;
        for (int t = 0; t < T; ++t) {
            const float *xt = x + ((int64_t)t * B + b) * n_in;
#ifndef LSM_NO_PREFETCH
            if (t + 1 < T)  /* the next step's input row is B rows away: fetch it while this step runs */
                for (int i = 0; i < n_in; i += 16) __builtin_prefetch(xt + (int64_t)B * n_in + i, 0, 0);
#endif
            /* input events: silent inputs cost a (vector) compare */
#if LSM_AVX512
            const __m512 zero = _mm512_setzero_ps();
            for (int i0 = 0; i0 < n_in; i0 += 16) {
                __mmask16 lim = n_in - i0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n_in - i0)) - 1u);
                __m512 xv = _mm512_maskz_loadu_ps(lim, xt + i0);
                unsigned m = _mm512_mask_cmp_ps_mask(lim, xv, zero, _CMP_NEQ_UQ);  /* NaN counts as an event */
                while (m) {
                    int i = i0 + __builtin_ctz(m);
                    m &= m - 1;
                    bad += !finite_f(xt[i]);
                    add_row(cur, in_col, in_val, in_ptr[i], in_ptr[i + 1], xt[i] * gain, 1);
                }
            }
#else
            for (int i = 0; i < n_in; ++i) {
                if (xt[i] == 0.0f) continue;
                bad += !finite_f(xt[i]);
                add_row(cur, in_col, in_val, in_ptr[i], in_ptr[i + 1], xt[i] * gain, 1);
            }
#endif
            uint8_t *sp = spikes ? spikes + ((int64_t)t * B + b) * N : NULL;
            int nf = 0;
#if LSM_AVX512
            {
                const __m512 kp = _mm512_set1_ps(keep), vrd = _mm512_set1_ps(v_reset_d);
                const __m512 th = _mm512_set1_ps(v_th), vr = _mm512_set1_ps(v_reset);
                const __m512 tk = _mm512_set1_ps(trace_keep), one = _mm512_set1_ps(1.0f);
                for (int n0 = 0; n0 < N; n0 += 16) {
                    __mmask16 lim = N - n0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (N - n0)) - 1u);
                    __m512 h = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(lim, v + n0), kp), vrd),
                                             _mm512_maskz_loadu_ps(lim, cur + n0));
                    _mm512_mask_storeu_ps(cur + n0, lim, _mm512_setzero_ps());
                    __mmask16 s = _mm512_mask_cmp_ps_mask(lim, h, th, _CMP_GE_OQ);
                    _mm512_mask_storeu_ps(v + n0, lim, _mm512_mask_blend_ps(s, h, vr));
                    __m512 sf = _mm512_maskz_mov_ps(s, one);
                    __m512 rv = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(lim, r + n0), tk), sf);
                    _mm512_mask_storeu_ps(r + n0, lim, rv);
                    _mm512_mask_storeu_ps(acc_c + n0, lim, _mm512_add_ps(_mm512_maskz_loadu_ps(lim, acc_c + n0), sf));
                    _mm512_mask_storeu_ps(acc_r + n0, lim, _mm512_add_ps(_mm512_maskz_loadu_ps(lim, acc_r + n0), rv));
                    if (sp) _mm_mask_storeu_epi8(sp + n0, lim, _mm_maskz_mov_epi8(s, _mm_set1_epi8(1)));
                    unsigned m = s;
                    while (m) {
                        fired[nf++] = n0 + __builtin_ctz(m);
                        m &= m - 1;
                    }
                }
            }
#else
            for (int n = 0; n < N; ++n) {
                float h = v[n] * keep + v_reset_d + cur[n];
                cur[n] = 0.0f;
                int s = h >= v_th;
                v[n] = s ? v_reset : h;
                r[n] = r[n] * trace_keep + (float)s;
                acc_c[n] += (float)s;
                acc_r[n] += r[n];
                if (sp) sp[n] = (uint8_t)s;
                fired[nf] = n;  /* the neurons that fired, branch-free */
                nf += s;
            }
#endif
            if (t == T - 1 || bin_of_t[t + 1] != bin_of_t[t]) {
                int64_t off = ((int64_t)bin_of_t[t] * B + b) * N;
                for (int n = 0; n < N; ++n) {
                    counts[off + n] += acc_c[n];
                    traces[off + n] += acc_r[n];
                    acc_c[n] = 0.0f;
                    acc_r[n] = 0.0f;
                }
            }
            for (int f = 0; f < nf; ++f) {
                int32_t j = fired[f];
                add_row(nxt, rec_col, rec_val, rec_ptr[j], rec_ptr[j + 1], 1.0f, 0);
            }
            float *tmp = cur; cur = nxt; nxt = tmp;  /* recurrent input of this step feeds the next */
        }
        free(v); free(r); free(cur); free(nxt); free(fired); free(acc_c); free(acc_r);
    }
    return bad;
}
