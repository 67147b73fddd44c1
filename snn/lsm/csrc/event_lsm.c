/* Event-driven simulation of a liquid state machine (see snn/lsm/event_kernel.py for the Python side).
 *
 * Per sample b and step t (d = 1/tau):
 *   H = V*(1-d) + V_reset*d + sum_{input events (i, c) at (t, b)} (c*gain) * W_in[i, :] + R
 *   S = H >= V_th;  V = S ? V_reset : H;  r = r*trace_keep + S
 *   R(next step) = sum_{j : S_j} W_rec[j, :]
 * x is the dense input [T, B, n_in] (event counts); weights are CSR by presynaptic row, so a step costs
 * n_in compares + (input events + spikes) x fan-out, not N^2. For one layout of W_in every path (lane blocks,
 * per sample, portable) accumulates a neuron's input in the same order, so they give the same spikes: CSR
 * input, (R + i_1) + i_2 + ... (R, the spikes' sum by ascending neuron, is already in the buffer); dense input,
 * R + (i_1 + i_2 + ...) (inputs by ascending index). The two layouts, and the torch engine, may differ on a rare
 * exact threshold tie. Bin k of the features accumulates S (counts) and r (traces), and
 * (when asked) keeps V at the bin's last step (volts).
 *
 * Dense input (in_dense != NULL; the caller picks it when most input synapses exist): the input current does
 * not depend on the reservoir's state, so it is computed ahead, TCHUNK steps of a sample (or lane block) at a
 * time: I_in[t, b, :] = sum_i (c_i*gain)*W_in[i, :] by ascending i, from 0, tile by tile of NTILE neurons. W_in
 * comes tile-major, [ceil(N/NTILE)][n_in][NTILE] (zero-padded), so one tile is a contiguous 590 KB (2,312 inputs)
 * that stays in L2 and in the TLB while every event of the chunk reads it; row-major rows of 1,000 floats put
 * each input on its own 4 KiB page, and the page walks made the same sums 2x slower. The step then adds
 * R + I_in. CSR input rows of a dense matrix would cost an index per synapse and, in the lane blocks, a
 * LANES-wide add for ~1 lane with an event.
 *
 * Recurrent input in the lane blocks, two ways with the same sums (by ascending presynaptic neuron; an off lane
 * adds +0 or nothing, and a sum of non-zero weights is never -0): scatter the rows of the neurons that fired in
 * any lane (work ~ spikes x fan-out), or, when at least half the neurons fired in some lane, gather: each
 * neuron sums the weights of its presynaptic neurons under their spike masks (work ~ synapses, no
 * read-modify-write of scattered targets; ~4 uops a synapse instead of ~8). The gather reads W_rec by
 * postsynaptic neuron in groups of GROUP neurons (ELL layout, padded to the group's largest fan-in) so that
 * GROUP independent sums hide the add latency.
 *
 * Paths:
 *  - lanes (AVX-512, when the compiler targets it: -march=native): LANES (16) samples of the batch at once,
 *    the state stored [N][LANES]. An input or neuron that is active in any of the LANES samples has its CSR row read
 *    once, and each synapse is one LANES-wide add of the weight in the lanes whose sample has the event or spike
 *    and of 0 in the others (x + 0 = x: the same sums; a masked store would be slow on AMD cores).
 *    A block needs LANES samples; the rest of the batch runs per sample. The next step's input rows (B rows on)
 *    are prefetched while this step's are scanned: without it 18 % of the time went to waiting for them.
 *  - per sample, AVX-512: the input scan compares 16 inputs at once, the neuron update runs 16 neurons at
 *    once and emits the fired list from the spike mask; CSR rows are added with scalar code.
 *  - per sample, portable C (any compiler, or -DLSM_PORTABLE).
 * Fused multiply-add is disabled at build time (-ffp-contract=off) so every path rounds like the torch engine.
 * Returns the number of non-finite input values seen (the caller raises), so x needs no separate scan, or -1
 * when a scratch buffer could not be allocated; steps (when not NULL) receives the lane-block steps whose
 * recurrent input was gathered and scattered.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && !defined(LSM_PORTABLE)
#include <immintrin.h>
#define LSM_AVX512 1
#else
#define LSM_AVX512 0
#endif
#ifndef LANES
#define LANES 16  /* samples per block (8 with 256-bit vectors kept the state in L1 for N = 1000, but with the
                     gather a 16-wide add serves twice the samples for the same uops: 1.3x faster overall) */
#endif
#if LSM_AVX512 && LANES == 16
typedef __m512 vec; typedef __mmask16 lmask;
#define V(op) _mm512_##op
#elif LSM_AVX512 && LANES == 8
typedef __m256 vec; typedef __mmask8 lmask;  /* 256-bit vectors with AVX-512VL masks */
#define V(op) _mm256_##op
#endif

int lsm_event_simd(void) { return LSM_AVX512; }

/* What one call shares between its threads (per call: two calls from two Python threads must not mix). */
typedef struct {
    int64_t gathered, scattered;  /* lane-block steps whose recurrent input was gathered / scattered (>= 1 spike) */
    int out_of_memory;            /* a scratch allocation failed: the call returns -1, its outputs are not valid */
} call_state;

static void fail_alloc(call_state *st) {
#pragma omp atomic write
    st->out_of_memory = 1;
}

static int failed(call_state *st) {
    int v;
#pragma omp atomic read
    v = st->out_of_memory;
    return v;
}

typedef struct {
    int T, B, N, n_in;
    const int64_t *in_ptr; const int32_t *in_col; const float *in_val;
    const float *in_dense;  /* tile-major [ceil(N/NTILE)][n_in][NTILE], or NULL (CSR input) */
    const int64_t *rec_ptr; const int32_t *rec_col; const float *rec_val;
    const float *x;
    float keep, v_reset_d, v_th, v_reset, gain, trace_keep;
    const int32_t *bin_of_t;
    float *counts, *traces, *volts;  /* volts may be NULL */
    uint8_t *spikes;
    const struct ell *by_post;  /* W_rec by postsynaptic neuron for the gather (lane blocks), or NULL */
    call_state *st;
} lsm_args;

#ifndef GROUP
#define GROUP 8  /* postsynaptic neurons summed together by the gather */
#endif

/* W_rec by postsynaptic neuron, GROUP neurons at a time: group g holds off[g+1]-off[g] rows of GROUP entries;
 * entry (k, q) is the k-th presynaptic neuron of neuron g*GROUP+q by ascending index and its weight, or the
 * padding (0, 0.0f) past that neuron's fan-in. */
typedef struct ell {
    int n_groups;
    int64_t *off;
    int32_t *pre;
    float *w;
} ell_t;

/* The ELL layout of the CSR W_rec (rows = presynaptic); NULL when out of memory. */
static ell_t *ell_from_csr(int N, const int64_t *ptr, const int32_t *col, const float *val) {
    ell_t *e = (ell_t *)calloc(1, sizeof(ell_t));
    int64_t *fill = (int64_t *)calloc((size_t)N + GROUP, sizeof(int64_t));  /* fan-in, then write cursor */
    if (!e || !fill) { free(e); free(fill); return NULL; }
    e->n_groups = (N + GROUP - 1) / GROUP;
    e->off = (int64_t *)malloc(sizeof(int64_t) * (e->n_groups + 1));
    if (!e->off) { free(e); free(fill); return NULL; }
    for (int64_t k = 0; k < ptr[N]; ++k) fill[col[k]]++;
    e->off[0] = 0;
    for (int g = 0; g < e->n_groups; ++g) {
        int64_t most = 0;
        for (int q = 0; q < GROUP; ++q) most = fill[g * GROUP + q] > most ? fill[g * GROUP + q] : most;
        e->off[g + 1] = e->off[g] + most;
    }
    const int64_t rows = e->off[e->n_groups];
    e->pre = (int32_t *)calloc((size_t)rows * GROUP + 1, sizeof(int32_t));
    e->w = (float *)calloc((size_t)rows * GROUP + 1, sizeof(float));
    if (!e->pre || !e->w) { free(e->off); free(e->pre); free(e->w); free(e); free(fill); return NULL; }
    for (int n = 0; n < N; ++n) fill[n] = e->off[n / GROUP] * GROUP + n % GROUP;  /* entry (0, q) of its group */
    for (int j = 0; j < N; ++j)  /* rows ascending: every neuron's list comes out by ascending presynaptic j */
        for (int64_t k = ptr[j]; k < ptr[j + 1]; ++k) {
            const int n = col[k];
            e->pre[fill[n]] = j;
            e->w[fill[n]] = val[k];
            fill[n] += GROUP;
        }
    free(fill);
    return e;
}

static void ell_free(ell_t *e) {
    if (e) { free(e->off); free(e->pre); free(e->w); free(e); }
}

static inline int finite_f(float a) {
    uint32_t u;
    memcpy(&u, &a, 4);
    return (u & 0x7f800000u) != 0x7f800000u;
}

static inline int bin_ends(const lsm_args *a, int t) { return t == a->T - 1 || a->bin_of_t[t + 1] != a->bin_of_t[t]; }

/* One input event (i, x[i]): cur += (x[i]·gain)·W_in[i, :]; returns 1 if x[i] is not finite. */
static inline int input_event(const int64_t *restrict in_ptr, const int32_t *restrict in_col,
                              const float *restrict in_val, float gain, const float *xt, int i, float *restrict cur) {
    const float c = xt[i] * gain;
    for (int64_t k = in_ptr[i]; k < in_ptr[i + 1]; ++k) cur[in_col[k]] += c * in_val[k];
    return !finite_f(xt[i]);
}

/* The event inputs i of one sample and step, ascending, as a bit scan (vector compares where there is AVX-512);
 * NaN counts as an event (!= 0 unordered), so it is seen and reported. Runs EVENT(i) for each. */
#if LSM_AVX512
#define FOR_EACH_EVENT(xt, n_in, i, EVENT)                                                                        \
    for (int i0_ = 0; i0_ < (n_in); i0_ += 16) {                                                                   \
        __mmask16 lim_ = (n_in) - i0_ >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << ((n_in) - i0_)) - 1u);        \
        __m512 xv_ = _mm512_maskz_loadu_ps(lim_, (xt) + i0_);                                                      \
        for (unsigned m_ = _mm512_mask_cmp_ps_mask(lim_, xv_, _mm512_setzero_ps(), _CMP_NEQ_UQ); m_; m_ &= m_ - 1) { \
            const int i = i0_ + __builtin_ctz(m_);                                                                 \
            EVENT;                                                                                                 \
        }                                                                                                          \
    }
#else
#define FOR_EACH_EVENT(xt, n_in, i, EVENT) \
    for (int i = 0; i < (n_in); ++i)      \
        if ((xt)[i] != 0.0f) { EVENT; }
#endif

#ifndef TCHUNK
#define TCHUNK 16  /* steps of dense input current computed ahead */
#endif
#ifndef NTILE
#define NTILE 64   /* neurons per tile of the dense input: a 2,312 x 64 slice of W_in is 590 KB (L2) */
#endif

/* Scratch of the dense-input path: the events of a chunk and their currents [TCHUNK][nl][N]. */
typedef struct {
    int32_t *idx;        /* events of slot s = (t - t0)*nl + l: idx[off[s] .. off[s+1]) */
    int64_t *off;
    float *c;            /* their x·gain */
    int64_t cap;         /* room in idx and c (grown on demand: the worst case is every input every step) */
    float *cur;          /* input currents [TCHUNK*nl][N] */
} dense_bufs;

/* Room for n more events after the first ne; 0 when it cannot be had (fail_alloc() was called). */
static int reserve_events(call_state *st, dense_bufs *d, int64_t ne, int n) {
    if (ne + n <= d->cap) return 1;
    const int64_t cap = 2 * (ne + n);
    int32_t *idx = (int32_t *)realloc(d->idx, sizeof(int32_t) * cap);
    if (idx) d->idx = idx;
    float *c = idx ? (float *)realloc(d->c, sizeof(float) * cap) : NULL;
    if (c) d->c = c;
    if (!idx || !c) { fail_alloc(st); return 0; }
    d->cap = cap;
    return 1;
}

/* The input events of nl samples b0.. at steps t0 .. t0+tc-1, by slot and ascending input; returns the number of
 * non-finite inputs. */
static int64_t gather_events(const lsm_args *a, int t0, int tc, int b0, int nl, dense_bufs *d) {
    int64_t bad = 0, ne = 0;
    for (int t = t0; t < t0 + tc; ++t)
        for (int l = 0; l < nl; ++l) {
            const float *xt = a->x + ((int64_t)t * a->B + b0 + l) * a->n_in;
            d->off[(t - t0) * nl + l] = ne;
            if (!reserve_events(a->st, d, ne, a->n_in)) {  /* the call fails: leave the rest of the chunk empty */
                for (int r = (t - t0) * nl + l; r <= tc * nl; ++r) d->off[r] = ne;
                return bad;
            }
            FOR_EACH_EVENT(xt, a->n_in, i, {
                d->idx[ne] = i;
                d->c[ne++] = xt[i] * a->gain;
                bad += !finite_f(xt[i]);
            })
        }
    d->off[tc * nl] = ne;
    return bad;
}

int lsm_event_ntile(void) { return NTILE; }

/* d->cur[s][n] = sum over the events e of slot s (ascending) of c_e·W_in[idx_e, n], for n_slots slots. */
static void dense_currents(const lsm_args *a, int n_slots, dense_bufs *d) {
    const int N = a->N;
    for (int n0 = 0; n0 < N; n0 += NTILE) {
        const int nt = N - n0 < NTILE ? N - n0 : NTILE;
        const float *restrict w = a->in_dense + (int64_t)(n0 / NTILE) * a->n_in * NTILE;  /* this tile */
        for (int s = 0; s < n_slots; ++s) {
            float *out = d->cur + (int64_t)s * N + n0;
            const int64_t e0 = d->off[s], e1 = d->off[s + 1];
#if LSM_AVX512 && NTILE == 64
            if (nt == NTILE) {  /* the tile's sums stay in four registers */
                __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
                for (int64_t e = e0; e < e1; ++e) {
                    const float *row = w + (int64_t)d->idx[e] * NTILE;
                    const __m512 c = _mm512_set1_ps(d->c[e]);
                    s0 = _mm512_add_ps(s0, _mm512_mul_ps(c, _mm512_loadu_ps(row)));
                    s1 = _mm512_add_ps(s1, _mm512_mul_ps(c, _mm512_loadu_ps(row + 16)));
                    s2 = _mm512_add_ps(s2, _mm512_mul_ps(c, _mm512_loadu_ps(row + 32)));
                    s3 = _mm512_add_ps(s3, _mm512_mul_ps(c, _mm512_loadu_ps(row + 48)));
                }
                _mm512_storeu_ps(out, s0);
                _mm512_storeu_ps(out + 16, s1);
                _mm512_storeu_ps(out + 32, s2);
                _mm512_storeu_ps(out + 48, s3);
                continue;
            }
#endif
            float acc[NTILE];
            memset(acc, 0, sizeof(float) * nt);
            for (int64_t e = e0; e < e1; ++e) {
                const float *row = w + (int64_t)d->idx[e] * NTILE;
                const float c = d->c[e];
                for (int j = 0; j < nt; ++j) acc[j] += c * row[j];
            }
            memcpy(out, acc, sizeof(float) * nt);
        }
    }
}

/* The input currents of the TCHUNK-step chunk that starts at t (when t starts one) into d->cur. */
static int64_t dense_chunk(const lsm_args *a, int t, int b0, int nl, dense_bufs *d) {
    if (t % TCHUNK) return 0;
    const int tc = a->T - t < TCHUNK ? a->T - t : TCHUNK;
    const int64_t bad = gather_events(a, t, tc, b0, nl, d);
    dense_currents(a, tc * nl, d);
    return bad;
}

/* All input events of one sample and step, by ascending input; silent inputs cost a (vector) compare. */
static inline int64_t add_inputs(const lsm_args *a, const float *xt, float *restrict cur) {
    const int64_t *restrict in_ptr = a->in_ptr;
    const int32_t *restrict in_col = a->in_col;
    const float *restrict in_val = a->in_val;
    const float gain = a->gain;
    const int n_in = a->n_in;
    int64_t bad = 0;
    FOR_EACH_EVENT(xt, n_in, i, bad += input_event(in_ptr, in_col, in_val, gain, xt, i, cur))
    return bad;
}

/* One sample: returns the number of non-finite inputs. */
static int64_t run_sample(const lsm_args *a, int b, float *buf, int32_t *fired, dense_bufs *dense) {
    const int N = a->N, n_in = a->n_in;
    float *v = buf, *r = buf + N, *cur = buf + 2 * N, *nxt = buf + 3 * N, *acc_c = buf + 4 * N, *acc_r = buf + 5 * N;
    /* local copies: the compiler then keeps them in registers whatever the caller (OpenMP or not) */
    const int64_t *restrict rec_ptr = a->rec_ptr;
    const int32_t *restrict rec_col = a->rec_col;
    const float *restrict rec_val = a->rec_val;
    int64_t bad = 0;
    memset(buf, 0, sizeof(float) * 6 * N);
    for (int n = 0; n < N; ++n) v[n] = a->v_reset;
    for (int t = 0; t < a->T; ++t) {
        const float *xt = a->x + ((int64_t)t * a->B + b) * n_in;
        if (a->in_dense) {
            bad += dense_chunk(a, t, b, 1, dense);
            const float *inb = dense->cur + (int64_t)(t % TCHUNK) * N;
            for (int n = 0; n < N; ++n) cur[n] += inb[n];
        } else {
            if (t + 1 < a->T)  /* the next step's input row is B rows away: fetch it while this step runs */
                for (int i = 0; i < n_in; i += 16) __builtin_prefetch(xt + (int64_t)a->B * n_in + i, 0, 0);
            bad += add_inputs(a, xt, cur);
        }
        uint8_t *sp = a->spikes ? a->spikes + ((int64_t)t * a->B + b) * N : NULL;
        int nf = 0;
#if LSM_AVX512
        const __m512 kp = _mm512_set1_ps(a->keep), vrd = _mm512_set1_ps(a->v_reset_d), th = _mm512_set1_ps(a->v_th);
        const __m512 vr = _mm512_set1_ps(a->v_reset), tk = _mm512_set1_ps(a->trace_keep), one = _mm512_set1_ps(1.0f);
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
            for (unsigned m = s; m; m &= m - 1) fired[nf++] = n0 + __builtin_ctz(m);
        }
#else
        for (int n = 0; n < N; ++n) {
            float h = v[n] * a->keep + a->v_reset_d + cur[n];
            cur[n] = 0.0f;
            int s = h >= a->v_th;
            v[n] = s ? a->v_reset : h;
            r[n] = r[n] * a->trace_keep + (float)s;
            acc_c[n] += (float)s;
            acc_r[n] += r[n];
            if (sp) sp[n] = (uint8_t)s;
            fired[nf] = n;  /* the neurons that fired, branch-free */
            nf += s;
        }
#endif
        if (bin_ends(a, t)) {
            int64_t off = ((int64_t)a->bin_of_t[t] * a->B + b) * N;
            for (int n = 0; n < N; ++n) {
                a->counts[off + n] += acc_c[n];
                a->traces[off + n] += acc_r[n];
                acc_c[n] = 0.0f;
                acc_r[n] = 0.0f;
            }
            if (a->volts) memcpy(a->volts + off, v, sizeof(float) * N);
        }
        for (int f = 0; f < nf; ++f) {
            int32_t j = fired[f];
            for (int64_t k = rec_ptr[j]; k < rec_ptr[j + 1]; ++k) nxt[rec_col[k]] += rec_val[k];
        }
        float *tmp = cur; cur = nxt; nxt = tmp;  /* recurrent input of this step feeds the next */
    }
    return bad;
}

#if LSM_AVX512
/* nxt[n][lanes] = sum over the presynaptic j of neuron n (ascending) of W[j, n] in the lanes where j fired
 * (smask[j]); nxt is overwritten. */
static void gather_recurrent(const ell_t *e, int N, const uint16_t *restrict smask, float *restrict nxt) {
    const int L = LANES;
    for (int g = 0; g < e->n_groups; ++g) {
        vec acc[GROUP];
        for (int q = 0; q < GROUP; ++q) acc[q] = V(setzero_ps)();
        const int32_t *restrict pre = e->pre + e->off[g] * GROUP;
        const float *restrict w = e->w + e->off[g] * GROUP;
        for (int64_t k = e->off[g]; k < e->off[g + 1]; ++k, pre += GROUP, w += GROUP) {
#pragma GCC unroll 16
            for (int q = 0; q < GROUP; ++q)
                acc[q] = V(mask_add_ps)(acc[q], (lmask)smask[pre[q]], acc[q], V(set1_ps)(w[q]));
        }
        const int nq = N - g * GROUP < GROUP ? N - g * GROUP : GROUP;
        for (int q = 0; q < nq; ++q) V(storeu_ps)(nxt + (int64_t)(g * GROUP + q) * L, acc[q]);
    }
}

/* cur [N][LANES] += step t's dense input currents of the block ([LANES][N], computed a chunk ahead). */
static inline int64_t dense_inputs_block(const lsm_args *a, int t, int b0, dense_bufs *dense, float *restrict cur) {
    const int N = a->N, L = LANES;
    const int64_t bad = dense_chunk(a, t, b0, L, dense);
    const float *inb = dense->cur + (int64_t)(t % TCHUNK) * L * N;
    for (int n = 0; n < N; ++n)
        for (int l = 0; l < L; ++l) cur[(int64_t)n * L + l] += inb[(int64_t)l * N + n];
    return bad;
}

/* cur [N][LANES] += step t's CSR input of the block: per input, which lanes have an event and with which
 * count, then the inputs in ascending order, every synapse one LANES-wide add. cval, lanemask, anyin: as in
 * run_block (left zeroed). Returns the number of non-finite inputs. */
static inline int64_t csr_inputs_block(const lsm_args *a, int t, int b0, float *restrict cval,
                                       uint16_t *restrict lanemask, uint64_t *restrict anyin, float *restrict cur) {
    const int n_in = a->n_in, L = LANES, T = a->T, B = a->B;
    const int64_t *restrict in_ptr = a->in_ptr;  /* local copies (see run_sample) */
    const int32_t *restrict in_col = a->in_col;
    const float *restrict in_val = a->in_val, *restrict x = a->x;
    const vec gain = V(set1_ps)(a->gain);
    int64_t bad = 0;
    /* gather the events of the LANES samples: per input, which lanes fire and with which count */
    for (int l = 0; l < L; ++l) {
        const float *xt = x + ((int64_t)t * B + b0 + l) * n_in;
        const int ahead = t + 1 < T;  /* fetch the next step's row (B rows on) while this one is scanned */
        for (int i0 = 0; i0 < n_in; i0 += 16) {
            if (ahead) __builtin_prefetch(xt + (int64_t)B * n_in + i0, 0, 1);
            __mmask16 lim = n_in - i0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n_in - i0)) - 1u);
            __m512 xv = _mm512_maskz_loadu_ps(lim, xt + i0);
            for (unsigned m = _mm512_mask_cmp_ps_mask(lim, xv, _mm512_setzero_ps(), _CMP_NEQ_UQ); m; m &= m - 1) {
                int i = i0 + __builtin_ctz(m);
                bad += !finite_f(xt[i]);
                cval[(int64_t)i * L + l] = xt[i];
                lanemask[i] |= (uint16_t)(1u << l);
                anyin[i >> 6] |= 1ull << (i & 63);
            }
        }
    }
    /* inputs in ascending order: every synapse is one LANES-wide add */
    for (int w = 0; w < (n_in + 63) / 64; ++w) {
        for (uint64_t bits = anyin[w]; bits; bits &= bits - 1) {
            int i = w * 64 + __builtin_ctzll(bits);
            vec c = V(maskz_mul_ps)((lmask)lanemask[i], V(loadu_ps)(cval + (int64_t)i * L), gain);  /* 0 off the lanes */
            for (int64_t k = in_ptr[i]; k < in_ptr[i + 1]; ++k) {
                float *p = cur + (int64_t)in_col[k] * L;
                V(storeu_ps)(p, V(add_ps)(V(loadu_ps)(p), V(mul_ps)(c, V(set1_ps)(in_val[k]))));
            }
            lanemask[i] = 0;
        }
        anyin[w] = 0;
    }
    return bad;
}

/* LANES samples b0 .. b0+LANES-1, state [N][LANES]. buf: 6*N*LANES floats; cval: n_in*LANES floats; lanemask: n_in
 * uint16; anyin: ceil(n_in/64) uint64 (zeroed); fired: N int32; fmask, smask: N uint16; dense: with a dense W_in. */
static int64_t run_block(const lsm_args *a, int b0, float *buf, float *cval, uint16_t *lanemask, uint64_t *anyin,
                     int32_t *fired, uint16_t *fmask, uint16_t *smask, dense_bufs *dense) {
    const int N = a->N, L = LANES;
    const int64_t NL = (int64_t)N * L;
    float *v = buf, *r = buf + NL, *cur = buf + 2 * NL, *nxt = buf + 3 * NL, *acc_c = buf + 4 * NL, *acc_r = buf + 5 * NL;
    const int64_t *restrict rec_ptr = a->rec_ptr;  /* local copies (see run_sample) */
    const int32_t *restrict rec_col = a->rec_col;
    const float *restrict rec_val = a->rec_val;
    const int T = a->T, B = a->B;
    int64_t bad = 0;
    memset(buf, 0, sizeof(float) * 6 * NL);
    for (int64_t n = 0; n < NL; ++n) v[n] = a->v_reset;
    const vec kp = V(set1_ps)(a->keep), vrd = V(set1_ps)(a->v_reset_d), th = V(set1_ps)(a->v_th);
    const vec vr = V(set1_ps)(a->v_reset), tk = V(set1_ps)(a->trace_keep), one = V(set1_ps)(1.0f);
    for (int t = 0; t < T; ++t) {
        bad += a->in_dense ? dense_inputs_block(a, t, b0, dense, cur)
                           : csr_inputs_block(a, t, b0, cval, lanemask, anyin, cur);
        /* neuron update, one vector = one neuron in the LANES samples */
        int nf = 0;
        const int flush = bin_ends(a, t);
        for (int n = 0; n < N; ++n) {
            float *pv = v + (int64_t)n * L, *pc = cur + (int64_t)n * L, *pr = r + (int64_t)n * L;
            float *pac = acc_c + (int64_t)n * L, *par = acc_r + (int64_t)n * L;
            vec h = V(add_ps)(V(add_ps)(V(mul_ps)(V(loadu_ps)(pv), kp), vrd), V(loadu_ps)(pc));
            V(storeu_ps)(pc, V(setzero_ps)());
            lmask s = V(cmp_ps_mask)(h, th, _CMP_GE_OQ);
            V(storeu_ps)(pv, V(mask_blend_ps)(s, h, vr));
            vec sf = V(maskz_mov_ps)(s, one);
            vec rv = V(add_ps)(V(mul_ps)(V(loadu_ps)(pr), tk), sf);
            V(storeu_ps)(pr, rv);
            V(storeu_ps)(pac, V(add_ps)(V(loadu_ps)(pac), sf));
            V(storeu_ps)(par, V(add_ps)(V(loadu_ps)(par), rv));
            fired[nf] = n;  /* branch-free append of the neurons that fired in any lane */
            fmask[nf] = s;
            smask[n] = s;
            nf += s != 0;
        }
        if (a->spikes)
            for (int f = 0; f < nf; ++f)
                for (unsigned m = fmask[f]; m; m &= m - 1)
                    a->spikes[((int64_t)t * B + b0 + __builtin_ctz(m)) * N + fired[f]] = 1;
        if (flush) {  /* transpose this bin's sums [N][LANES] into the outputs [bin][b][N] */
            for (int l = 0; l < L; ++l) {
                int64_t off = ((int64_t)a->bin_of_t[t] * B + b0 + l) * N;
                for (int n = 0; n < N; ++n) {
                    a->counts[off + n] += acc_c[(int64_t)n * L + l];
                    a->traces[off + n] += acc_r[(int64_t)n * L + l];
                }
                if (a->volts)
                    for (int n = 0; n < N; ++n) a->volts[off + n] = v[(int64_t)n * L + l];
            }
            memset(acc_c, 0, sizeof(float) * NL);
            memset(acc_r, 0, sizeof(float) * NL);
        }
        /* recurrent: gather when most neurons fired in some lane, else scatter the rows of the neurons that fired
         * in any lane, added to the lanes where they fired */
        if (a->by_post && 2 * nf >= N) {
            gather_recurrent(a->by_post, N, smask, nxt);
            nf = 0;
#pragma omp atomic
            a->st->gathered++;
        } else if (nf) {
#pragma omp atomic
            a->st->scattered++;
        }
        for (int f = 0; f < nf; ++f) {
            const int32_t j = fired[f];
            const lmask m = (lmask)fmask[f];
            const int64_t k1 = rec_ptr[j + 1];  /* read once: the stores to nxt cannot change it */
            for (int64_t k = rec_ptr[j]; k < k1; ++k) {
                float *p = nxt + (int64_t)rec_col[k] * L;
                V(storeu_ps)(p, V(add_ps)(V(loadu_ps)(p), V(maskz_mov_ps)(m, V(set1_ps)(rec_val[k]))));
            }
        }
        float *tmp = cur; cur = nxt; nxt = tmp;
    }
    return bad;
}
#endif

/* Per-thread scratch, allocated on first use. */
typedef struct {
    float *buf, *cval;
    uint16_t *lanemask, *fmask, *smask;
    uint64_t *anyin;
    int32_t *fired;
    dense_bufs dense;  /* sized for nl = LANES samples, so a lane block and a single sample can share it */
} work_bufs;

static void free_bufs(work_bufs *w) {
    free(w->buf); free(w->cval); free(w->lanemask); free(w->anyin); free(w->fired); free(w->fmask); free(w->smask);
    free(w->dense.idx); free(w->dense.off); free(w->dense.c); free(w->dense.cur);
}

static int alloc_dense(const lsm_args *a, dense_bufs *d) {
    const size_t slots = (size_t)TCHUNK * LANES, N = (size_t)a->N;
    d->off = (int64_t *)malloc(sizeof(int64_t) * (slots + 1));
    d->cur = (float *)malloc(sizeof(float) * slots * N);
    return d->off && d->cur;
}

/* Work item it: a LANES-sample block (it < n_blocks) or one of the remaining samples. */
static int64_t run_item(const lsm_args *a, int n_blocks, int it, work_bufs *w) {
    const int N = a->N;
    if (failed(a->st)) return 0;  /* the call fails anyway */
    if (!w->fired) w->fired = (int32_t *)malloc(sizeof(int32_t) * N);
    if (!w->fired || (a->in_dense && !w->dense.cur && !alloc_dense(a, &w->dense))) { fail_alloc(a->st); return 0; }
#if LSM_AVX512
    if (it < n_blocks) {
        if (!w->cval) {  /* buf may hold a single sample's 6*N floats (scratch, nothing to keep): replace it */
            const int n_in = a->n_in;
            free(w->buf);  /* 64-byte aligned: every [n][LANES] vector is then one cache line, not two halves */
            float *buf = w->buf = (float *)aligned_alloc(64, sizeof(float) * 6 * (size_t)N * LANES);
            w->cval = (float *)calloc((size_t)n_in * LANES, sizeof(float));
            w->lanemask = (uint16_t *)calloc(n_in, sizeof(uint16_t));
            w->anyin = (uint64_t *)calloc((n_in + 63) / 64, sizeof(uint64_t));
            w->fmask = (uint16_t *)malloc(sizeof(uint16_t) * N);
            w->smask = (uint16_t *)malloc(sizeof(uint16_t) * N);
            if (!buf || !w->cval || !w->lanemask || !w->anyin || !w->fmask || !w->smask) {
                fail_alloc(a->st);
                return 0;
            }
        }
        return run_block(a, it * LANES, w->buf, w->cval, w->lanemask, w->anyin, w->fired, w->fmask, w->smask, &w->dense);
    }
#endif
    if (!w->buf) w->buf = (float *)malloc(sizeof(float) * 6 * (size_t)N);
    if (!w->buf) { fail_alloc(a->st); return 0; }
    return run_sample(a, n_blocks * LANES + (it - n_blocks), w->buf, w->fired, &w->dense);
}

int64_t lsm_event_run(int T, int B, int N, int n_in,
                  const int64_t *in_ptr, const int32_t *in_col, const float *in_val, const float *in_dense,
                  const int64_t *rec_ptr, const int32_t *rec_col, const float *rec_val,
                  const float *x,
                  float keep, float v_reset_d, float v_th, float v_reset, float gain, float trace_keep,
                  const int32_t *bin_of_t, float *counts, float *traces, float *volts, uint8_t *spikes,
                  int n_threads, int64_t *steps)
{
    call_state st = {0, 0, 0};
    lsm_args a = {T, B, N, n_in, in_ptr, in_col, in_val, in_dense, rec_ptr, rec_col, rec_val, x,
                  keep, v_reset_d, v_th, v_reset, gain, trace_keep, bin_of_t, counts, traces, volts, spikes, NULL, &st};
#if LSM_AVX512 && !defined(LSM_NO_LANES)
    const int n_blocks = B / LANES;
#else
    const int n_blocks = 0;
#endif
    const int n_items = n_blocks + (B - n_blocks * LANES);  /* LANES-sample blocks, then single samples */
    ell_t *by_post = NULL;
#if !defined(LSM_NO_GATHER)
    if (n_blocks > 0) a.by_post = by_post = ell_from_csr(N, rec_ptr, rec_col, rec_val);  /* NULL: scatter only */
#endif
    int64_t bad = 0;
    if (n_threads <= 1) {  /* no parallel region: one thread ran ~20% slower inside one (GCC 12) */
        work_bufs w = {0};
        for (int it = 0; it < n_items; ++it) bad += run_item(&a, n_blocks, it, &w);
        free_bufs(&w);
    } else {
#pragma omp parallel num_threads(n_threads) reduction(+ : bad)
        {
            work_bufs w = {0};
#pragma omp for schedule(dynamic, 1)
            for (int it = 0; it < n_items; ++it) bad += run_item(&a, n_blocks, it, &w);
            free_bufs(&w);
        }
    }
    ell_free(by_post);
    if (steps) { steps[0] = st.gathered; steps[1] = st.scattered; }
    return st.out_of_memory ? -1 : bad;
}
