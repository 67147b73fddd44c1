/* Event-driven simulation of a liquid state machine (see snn/lsm/event_kernel.py for the Python side).
 *
 * Per sample b and step t (d = 1/tau):
 *   H = V*(1-d) + V_reset*d + gain * sum_{input events (i, c) at (t, b)} c * W_in[i, :] + R
 *   S = H >= V_th;  V = S ? V_reset : H;  r = r*trace_keep + S
 *   R(next step) = sum_{j : S_j} W_rec[j, :]
 * x is the dense input [T, B, n_in] (event counts); weights are CSR by presynaptic row, so a step costs
 * n_in compares + (input events + spikes) x fan-out, not N^2.
 * Bin k of the features accumulates S (counts) and r (traces) over its steps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void lsm_event_run(int T, int B, int N, int n_in,
                   const int64_t *in_ptr, const int32_t *in_col, const float *in_val,
                   const int64_t *rec_ptr, const int32_t *rec_col, const float *rec_val,
                   const float *x,
                   float keep, float v_reset_d, float v_th, float v_reset, float gain, float trace_keep,
                   const int32_t *bin_of_t, float *counts, float *traces, uint8_t *spikes, int n_threads)
{
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int b = 0; b < B; ++b) {
        float *v = (float *)malloc(sizeof(float) * N);
        float *r = (float *)calloc(N, sizeof(float));
        float *cur = (float *)calloc(N, sizeof(float));
        float *nxt = (float *)calloc(N, sizeof(float));
        int32_t *fired = (int32_t *)malloc(sizeof(int32_t) * N);
        uint8_t *sbuf = (uint8_t *)malloc(N);        float *acc_c = (float *)calloc(N, sizeof(float));  /* this bin's counts and trace sums, flushed */
        float *acc_r = (float *)calloc(N, sizeof(float));  /* to the outputs when the bin ends          */
        for (int n = 0; n < N; ++n) v[n] = v_reset;
        for (int t = 0; t < T; ++t) {
            const float *xt = x + ((int64_t)t * B + b) * n_in;
            for (int i = 0; i < n_in; ++i) {
                if (xt[i] == 0.0f) continue;  /* event-driven: silent inputs cost one compare */
                float c = xt[i] * gain;
                for (int64_t k = in_ptr[i]; k < in_ptr[i + 1]; ++k) cur[in_col[k]] += c * in_val[k];
            }
            uint8_t *sp = spikes ? spikes + ((int64_t)t * B + b) * N : sbuf;
            for (int n = 0; n < N; ++n) {  /* no loop-carried dependence: the compiler vectorises it */
                float h = v[n] * keep + v_reset_d + cur[n];
                cur[n] = 0.0f;
                uint8_t s = h >= v_th;
                v[n] = s ? v_reset : h;
                r[n] = r[n] * trace_keep + (float)s;
                acc_c[n] += (float)s;
                acc_r[n] += r[n];
                sp[n] = s;
            }
            int nf = 0;
            for (int n = 0; n < N; ++n) {  /* the neurons that fired, branch-free */
                fired[nf] = n;
                nf += sp[n];
            }
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
                for (int64_t k = rec_ptr[j]; k < rec_ptr[j + 1]; ++k) nxt[rec_col[k]] += rec_val[k];
            }
            float *tmp = cur; cur = nxt; nxt = tmp;  /* recurrent input of this step feeds the next */
        }
        free(v); free(r); free(cur); free(nxt); free(fired); free(acc_c); free(acc_r); free(sbuf);
    }
}
