/* The fused kernels' C source, written once and compiled four times: a template header that _fused.c
 * includes once per build (double; float; float again for AVX2 + FMA and for AVX-512), each time with
 * these macros defined first:
 *   T        the element type: double or float
 *   SFX      the suffix of the functions' names: f64, f32, f32_avx2 or f32_avx512 (NAME(lstm_forward)
 *            below is lstm_forward_f32 when SFX is f32)
 *   SIGMOID  the element-wise logistic function of T: sigmoid_f64 or sigmoid_f32
 *   TANH     the element-wise tanh of T: tanh_f64 or tanh_f32
 *   REDUCE8  REDUCE8(acc, out): the lane sums of the eight vectors acc[0..7] into out[0..7] (REDUCE8_SCALAR,
 *            REDUCE8_F32)
 *   GRAD_FLOOR  an expression of T: backward kernels write pre-activation gradients smaller than it in
 *            magnitude as zero (0 for double, gradient_floor_f32 for float; see _fused.c)
 *   GEMM_VEC, GEMM_ROWS  the packed recurrent product's vector width in bytes and rows per tile: its tile,
 *            GEMM_ROWS × 2 vectors of accumulators, must fit the target's vector registers
 *   MATVEC_VEC  the few-row product's (matvec's) widest vector in bytes: VEC_BYTES, or twice it
 * It also uses what _fused.c defines before including it: Python.h's Py_ssize_t, <string.h>'s memcpy,
 * VEC_BYTES, the CELL_* codes, cell_gates/cell_saved and gradient_floor_f32. It undefines its macros (the
 * nine above and NAME) at its end, so that the next include starts clean; it has no include guard on
 * purpose.
 *
 * Why a template header and not one macro per dtype: this is ordinary C, so compiler diagnostics, debugger
 * breakpoints, stepping and profiler lines land on the real line of this file (a macro's body is one
 * logical line at its invocation), and the four builds still come from one source, the same code but for T
 * and the target options around the include.
 */

#if !defined(T) || !defined(SFX) || !defined(SIGMOID) || !defined(TANH) || !defined(REDUCE8) || \
    !defined(GRAD_FLOOR) || !defined(GEMM_VEC) || !defined(GEMM_ROWS) || !defined(MATVEC_VEC)
#error "_fused_kernels.h: define T, SFX, SIGMOID, TANH, REDUCE8, GRAD_FLOOR, GEMM_VEC, GEMM_ROWS, MATVEC_VEC (see _fused.c)"
#endif

/* A pre-activation gradient of magnitude below floor_ (GRAD_FLOOR, read once per call) is written as zero
   (see gradient_floor_f32 in _fused.c). */
#define FLOORED(v) ((v) < floor_ && (v) > -floor_ ? (T)0 : (v))

/* NAME(lstm_forward) is lstm_forward_ followed by SFX (SFX expanded first). */
#define FUSED_PASTE_(name, sfx) name##_##sfx
#define FUSED_PASTE(name, sfx) FUSED_PASTE_(name, sfx)
#define NAME(name) FUSED_PASTE(name, SFX)

/* out[j] = W[j] · x for the rows of W (rows, H): eight rows at a time, each with its partial sums in one
   vector (a fixed summation order) and x loaded once for the eight; REDUCE8 turns the eight vectors into
   the eight sums. With MATVEC_VEC = 64 (AVX-512) the sums run in 16-float vectors while 16 values of k are
   left, each then folded to 8 floats (its two halves added) for the rest of k and REDUCE8: half the loads
   and FMAs of 8-float vectors, for one extra add a row (at B = 1 the product streams W_hh from L2, and
   the wider loads take ~25 % less time at H = 128). */
static void NAME(matvec)(Py_ssize_t rows, Py_ssize_t H, const T *restrict W, const T *restrict x,
                         T *restrict out) {
    typedef T vec __attribute__((vector_size(VEC_BYTES)));
    enum { L = VEC_BYTES / sizeof(T), R = 8 };
    Py_ssize_t j = 0;
    for (; j + R <= rows; j += R) {
        vec acc[R] = {{0}}, xv, wv;
        Py_ssize_t k = 0;
#if MATVEC_VEC == 2 * VEC_BYTES
        typedef T wide __attribute__((vector_size(MATVEC_VEC)));
        enum { LW = MATVEC_VEC / sizeof(T) };
        wide accw[R] = {{0}}, xw_, ww;
        for (; k + LW <= H; k += LW) {
            memcpy(&xw_, x + k, sizeof xw_);
            for (int r = 0; r < R; r++) {
                memcpy(&ww, W + (j + r) * H + k, sizeof ww);
                accw[r] += ww * xw_;
            }
        }
        _Static_assert(sizeof(T) == 4, "MATVEC_VEC = 2 VEC_BYTES: 16 floats folded to 8");
        for (int r = 0; r < R; r++) /* in registers (a memcpy of each half went through the stack) */
            acc[r] = __builtin_shufflevector(accw[r], accw[r], 0, 1, 2, 3, 4, 5, 6, 7) +
                     __builtin_shufflevector(accw[r], accw[r], 8, 9, 10, 11, 12, 13, 14, 15);
#elif MATVEC_VEC != VEC_BYTES
#error "_fused_kernels.h: MATVEC_VEC must be VEC_BYTES or twice it"
#endif
        for (; k + L <= H; k += L) {
            memcpy(&xv, x + k, sizeof xv);
            for (int r = 0; r < R; r++) {
                memcpy(&wv, W + (j + r) * H + k, sizeof wv);
                acc[r] += wv * xv;
            }
        }
        REDUCE8(acc, out + j);
        for (int r = 0; r < R; r++)
            for (Py_ssize_t kk = k; kk < H; kk++) out[j + r] += W[(j + r) * H + kk] * x[kk];
    }
    for (; j < rows; j++) {
        T sum = 0;
        for (Py_ssize_t k = 0; k < H; k++) sum += W[j * H + k] * x[k];
        out[j] = sum;
    }
}

/* Pack B(k, m) = src[k·sk + m·sm] (K × M) into panels of P columns: dst[p][k][c] = B(k, p·P + c), zero past
   column M (the packed product's panels of W_hh, the input projection's of x; inlined, so P is each call's
   constant). */
static inline __attribute__((always_inline)) void NAME(pack_columns)(Py_ssize_t K, Py_ssize_t M,
                                                                      const T *restrict src, Py_ssize_t sk,
                                                                      Py_ssize_t sm, Py_ssize_t P,
                                                                      T *restrict dst) {
    for (Py_ssize_t m0 = 0; m0 < M; m0 += P)
        for (Py_ssize_t k = 0; k < K; k++)
            for (Py_ssize_t c = 0; c < P; c++) *dst++ = m0 + c < M ? src[k * sk + (m0 + c) * sm] : (T)0;
}

/* ---- the input projection of a few rows -------------------------------------------------------------

   out (M, G) = x (M, D) Wᵀ + b for W (G, D): every step's input projection at once, for the few-row loops
   (B = 1 inference: M = T rows). A BLAS call for a 16 × 128 by 128 × 512 product runs at a third of the
   machine's peak; here x is packed into panels of L = GEMM_VEC / sizeof(T) rows (xp[p][k][l] = x[p·L + l][k],
   zero past row M) and each tile of 2·GEMM_ROWS outputs j by L rows sums over k in order, W[j][k] broadcast
   times one vector of the panel: no horizontal sums, one W value read per multiply-add, and the sum of each
   output one running sum from zero, so it does not depend on M or on which panel the row is in. b is added
   after the sum (as x Wᵀ, then + b, in NumPy). */

enum { NAME(proj_lanes) = GEMM_VEC / sizeof(T), NAME(proj_rows) = 2 * GEMM_ROWS };

/* Scratch items project_rows needs for M rows of D values. */
static inline Py_ssize_t NAME(project_scratch)(Py_ssize_t M, Py_ssize_t D) {
    const Py_ssize_t L = NAME(proj_lanes);
    return (M + L - 1) / L * L * D;
}

/* rows (a constant once inlined) outputs j0.. of one panel, the panel's first `valid` rows written. */
static inline __attribute__((always_inline)) void NAME(project_tile)(const int rows, Py_ssize_t D, Py_ssize_t G,
                                                                      const T *restrict panel, const T *restrict W,
                                                                      const T *restrict b, Py_ssize_t j0,
                                                                      Py_ssize_t valid, T *restrict out) {
    typedef T vec __attribute__((vector_size(GEMM_VEC)));
    enum { L = NAME(proj_lanes), R_MAX = NAME(proj_rows) };
    vec acc[R_MAX];
    for (int r = 0; r < rows; r++) acc[r] = (vec){0};
    for (Py_ssize_t k = 0; k < D; k++) {
        vec xv;
        memcpy(&xv, panel + k * L, sizeof xv);
        for (int r = 0; r < rows; r++) acc[r] += W[(j0 + r) * D + k] * xv;
    }
    T tile[R_MAX][L];
    for (int r = 0; r < rows; r++) memcpy(tile[r], &acc[r], sizeof(vec));
    for (Py_ssize_t l = 0; l < valid; l++)
        for (int r = 0; r < rows; r++) out[l * G + j0 + r] = tile[r][l] + b[j0 + r];
}

static void NAME(project_rows)(Py_ssize_t M, Py_ssize_t D, Py_ssize_t G, const T *restrict x, const T *restrict W,
                               const T *restrict b, T *restrict out, T *restrict scratch) {
    const Py_ssize_t L = NAME(proj_lanes), R = NAME(proj_rows);
    NAME(pack_columns)(D, M, x, 1, D, L, scratch); /* xᵀ: scratch[p][k][l] = x[p·L + l][k] */
    for (Py_ssize_t m0 = 0; m0 < M; m0 += L) {
        const T *panel = scratch + m0 * D;
        const Py_ssize_t valid = M - m0 < L ? M - m0 : L;
        T *o = out + m0 * G;
        Py_ssize_t j = 0;
        for (; j + R <= G; j += R) NAME(project_tile)(R, D, G, panel, W, b, j, valid, o);
        for (; j < G; j++) NAME(project_tile)(1, D, G, panel, W, b, j, valid, o);
    }
}

/* ---- the recurrent product on packed weights ------------------------------------------------------------

   out (N, M) = A (N, K) B for the K × M matrix B = W_hhᵀ (forward: K = H, M = G·H) or B = W_hh (backward's
   dh = da W_hh: K = G·H, M = H). B is packed once per sequence into panels of PANEL = two vectors of
   columns, each panel K rows of PANEL consecutive values (zero past column M), so that the product of a
   step reads it in the order it is stored and every step finds it in cache (W_hh of a 128-unit LSTM is
   256 KB); a BLAS call per step re-packs it each time. Each output tile (ROWS rows × PANEL columns) sums
   over k in order in its own registers: the result does not depend on the batch size or the row. */

enum { NAME(panel) = 2 * GEMM_VEC / sizeof(T) };

/* Values of a packed K × M matrix (its panels rounded up to whole panels). */
static inline Py_ssize_t NAME(packed_size)(Py_ssize_t K, Py_ssize_t M) {
    const Py_ssize_t P = NAME(panel);
    return K * ((M + P - 1) / P) * P;
}

/* Pack B(k, m) = src[k·sk + m·sm] (K × M) into panels of PANEL columns (pack_columns). */
static void NAME(pack_panels)(Py_ssize_t K, Py_ssize_t M, const T *restrict src, Py_ssize_t sk, Py_ssize_t sm,
                              T *restrict dst) {
    NAME(pack_columns)(K, M, src, sk, sm, NAME(panel), dst);
}

/* One tile: rows (a constant once inlined) rows of A (row stride lda) times K rows of one panel, into the
   first width columns of out; with accumulate, the sums continue from what out holds (the same running sums
   as one pass). */
static inline __attribute__((always_inline)) void NAME(gemm_tile)(const int rows, Py_ssize_t K,
                                                                   const T *restrict A, Py_ssize_t lda,
                                                                   const T *restrict panel, Py_ssize_t width,
                                                                   int accumulate, T *restrict out,
                                                                   Py_ssize_t ldo) {
    typedef T vec __attribute__((vector_size(GEMM_VEC)));
    enum { L = GEMM_VEC / sizeof(T) };
    vec acc[GEMM_ROWS][2];
    T tile[2 * L];
    for (int r = 0; r < rows; r++) {
        if (!accumulate) {
            acc[r][0] = acc[r][1] = (vec){0};
        } else if (width == 2 * L) {
            memcpy(&acc[r][0], out + r * ldo, sizeof(vec));
            memcpy(&acc[r][1], out + r * ldo + L, sizeof(vec));
        } else {
            memset(tile, 0, sizeof tile);
            memcpy(tile, out + r * ldo, (size_t)width * sizeof(T));
            memcpy(&acc[r][0], tile, sizeof(vec));
            memcpy(&acc[r][1], tile + L, sizeof(vec));
        }
    }
    for (Py_ssize_t k = 0; k < K; k++) {
        vec w0, w1;
        memcpy(&w0, panel + k * 2 * L, sizeof w0);
        memcpy(&w1, panel + k * 2 * L + L, sizeof w1);
        for (int r = 0; r < rows; r++) {
            const T a = A[r * lda + k];
            acc[r][0] += a * w0;
            acc[r][1] += a * w1;
        }
    }
    for (int r = 0; r < rows; r++) {
        if (width == 2 * L) {
            memcpy(out + r * ldo, &acc[r][0], sizeof(vec));
            memcpy(out + r * ldo + L, &acc[r][1], sizeof(vec));
        } else {
            memcpy(tile, &acc[r][0], sizeof(vec));
            memcpy(tile + L, &acc[r][1], sizeof(vec));
            memcpy(out + r * ldo, tile, (size_t)width * sizeof(T));
        }
    }
}

/* One row times q (a constant once inlined) consecutive panels: out[0..width) of each panel's columns =
   a (K) · panel, each output one running sum over k, in order, from zero: the values gemm_tile gives the row.
   Its own kernel because a tile of one row has two accumulators, one chain of dependent FMAs each, which
   leaves the FMA units idle for their latency; q panels at once keep 2q chains going. */
static inline __attribute__((always_inline)) void NAME(gemv_panels)(const int q, Py_ssize_t K, const T *restrict a,
                                                                     const T *restrict panels, Py_ssize_t M,
                                                                     Py_ssize_t m0, T *restrict out) {
    typedef T vec __attribute__((vector_size(GEMM_VEC)));
    enum { L = GEMM_VEC / sizeof(T), Q_MAX = 4 };
    const Py_ssize_t P = NAME(panel);
    vec acc[Q_MAX][2];
    for (int j = 0; j < q; j++) acc[j][0] = acc[j][1] = (vec){0};
    for (Py_ssize_t k = 0; k < K; k++) {
        const T ak = a[k];
        for (int j = 0; j < q; j++) {
            vec w0, w1;
            memcpy(&w0, panels + j * K * P + k * P, sizeof w0);
            memcpy(&w1, panels + j * K * P + k * P + L, sizeof w1);
            acc[j][0] += ak * w0;
            acc[j][1] += ak * w1;
        }
    }
    for (int j = 0; j < q; j++) {
        const Py_ssize_t start = m0 + j * P, width = M - start < P ? M - start : P;
        T tile[2 * L];
        memcpy(tile, &acc[j][0], sizeof(vec));
        memcpy(tile + L, &acc[j][1], sizeof(vec));
        memcpy(out + start, tile, (size_t)width * sizeof(T));
    }
}

/* out (M) = a (K) times the packed Bp: four panels at a time (the same values as gemm_packed's for the row). */
static void NAME(gemv_packed)(Py_ssize_t K, Py_ssize_t M, const T *restrict a, const T *restrict Bp,
                              T *restrict out) {
    const Py_ssize_t P = NAME(panel), panels = (M + P - 1) / P;
    Py_ssize_t p = 0;
    for (; p + 4 <= panels; p += 4) NAME(gemv_panels)(4, K, a, Bp + p * K * P, M, p * P, out);
    for (; p < panels; p++) NAME(gemv_panels)(1, K, a, Bp + p * K * P, M, p * P, out);
}

/* out (N, M) (row stride ldo) = A (N, K) (row stride lda) times the packed Bp. Panel by panel, and within a
   panel KC rows of it at a time (16 KB), so that the block stays in L1 while every row block passes over it;
   a later block continues the sums the earlier ones left in out, so each output is one running sum over k,
   in order. The rows past the last whole tile (all of them when N < GEMM_ROWS) are one smaller tile, or,
   for a single row, gemv_packed; their sums are the same. */
/* A tile of 2 to GEMM_ROWS - 1 rows (the batch's last rows), each count compiled as its own constant. */
static inline void NAME(gemm_tile_rest)(int rows, Py_ssize_t K, const T *restrict A, Py_ssize_t lda,
                                        const T *restrict panel, Py_ssize_t width, int accumulate,
                                        T *restrict out, Py_ssize_t ldo) {
#define REST_CASE(r)                                                                                         \
    case r:                                                                                                  \
        if (r < GEMM_ROWS) NAME(gemm_tile)(r, K, A, lda, panel, width, accumulate, out, ldo);               \
        break;
    switch (rows) { REST_CASE(2) REST_CASE(3) REST_CASE(4) REST_CASE(5) REST_CASE(6) REST_CASE(7) }
#undef REST_CASE
}

static void NAME(gemm_packed)(Py_ssize_t N, Py_ssize_t K, Py_ssize_t M, const T *restrict A, Py_ssize_t lda,
                              const T *restrict Bp, T *restrict out, Py_ssize_t ldo) {
    const Py_ssize_t P = NAME(panel), KC = 16384 / (P * (Py_ssize_t)sizeof(T));
    const Py_ssize_t rest = N % GEMM_ROWS, tiled = N - rest;
    if (rest == 1) NAME(gemv_packed)(K, M, A + tiled * lda, Bp, out + tiled * ldo);
    for (Py_ssize_t m0 = 0; m0 < M; m0 += P) {
        const T *panel = Bp + (m0 / P) * K * P;
        const Py_ssize_t width = M - m0 < P ? M - m0 : P;
        for (Py_ssize_t k0 = 0; k0 < K; k0 += KC) {
            const Py_ssize_t kc = K - k0 < KC ? K - k0 : KC;
            const T *block = panel + k0 * P;
            for (Py_ssize_t n = 0; n < tiled; n += GEMM_ROWS)
                NAME(gemm_tile)(GEMM_ROWS, kc, A + n * lda + k0, lda, block, width, k0 > 0, out + n * ldo + m0, ldo);
            if (rest > 1)
                NAME(gemm_tile_rest)(rest, kc, A + tiled * lda + k0, lda, block, width, k0 > 0, out + tiled * ldo + m0,
                                     ldo);
        }
    }
}

/* ---- the element-wise step kernels ---------------------------------------------------------------------- */

/* N rows of H units; SS is the distance between the components of saved (N·H for a whole batch; the batch's
   N·H when the rows are a part of it, as in the threaded time loops). */

static void NAME(rnn_forward)(Py_ssize_t N, Py_ssize_t H, const T *restrict hw, const T *restrict xw,
                              const T *restrict b, int relu, T *restrict h) {
    for (Py_ssize_t n = 0; n < N; n++)
        for (Py_ssize_t j = 0; j < H; j++) {
            const Py_ssize_t k = n * H + j;
            T a = (hw[k] + xw[k]) + b[j];
            h[k] = relu ? (a > 0 ? a : 0) : TANH(a);
        }
}

static void NAME(rnn_backward)(Py_ssize_t N, Py_ssize_t H, const T *restrict dh, const T *restrict h,
                               int relu, T *restrict da) {
    const T floor_ = GRAD_FLOOR;
    for (Py_ssize_t k = 0; k < N * H; k++)
    {
        T v = relu ? (h[k] > 0 ? dh[k] : 0) : (1 - h[k] * h[k]) * dh[k];
        da[k] = FLOORED(v);
    }
}

static void NAME(lstm_forward)(Py_ssize_t N, Py_ssize_t H, Py_ssize_t SS, const T *restrict hw,
                               const T *restrict xw, const T *restrict b, const T *restrict c_prev, T *restrict saved,
                               T *restrict c, T *restrict h) {
    T *restrict si = saved, *restrict sf = saved + SS, *restrict sg = saved + 2 * SS;
    T *restrict so = saved + 3 * SS, *restrict stc = saved + 4 * SS;
    for (Py_ssize_t n = 0; n < N; n++) {
        const T *hn_ = hw + n * 4 * H, *xn = xw + n * 4 * H;
        const Py_ssize_t o = n * H;
        for (Py_ssize_t j = 0; j < H; j++) {
            T i_ = SIGMOID((hn_[j] + xn[j]) + b[j]);
            T f_ = SIGMOID((hn_[H + j] + xn[H + j]) + b[H + j]);
            T g_ = TANH((hn_[2 * H + j] + xn[2 * H + j]) + b[2 * H + j]);
            T o_ = SIGMOID((hn_[3 * H + j] + xn[3 * H + j]) + b[3 * H + j]);
            T c_ = f_ * c_prev[o + j] + i_ * g_;
            T tc = TANH(c_);
            si[o + j] = i_; sf[o + j] = f_; sg[o + j] = g_; so[o + j] = o_; stc[o + j] = tc;
            c[o + j] = c_;
            h[o + j] = o_ * tc;
        }
    }
}

static void NAME(lstm_backward)(Py_ssize_t N, Py_ssize_t H, Py_ssize_t SS, const T *dh, const T *dc,
                                const T *restrict saved, const T *c_prev, T *restrict da, T *dc_prev) {
    const T *si = saved, *sf = saved + SS, *sg = saved + 2 * SS, *so = saved + 3 * SS;
    const T *stc = saved + 4 * SS;
    const T floor_ = GRAD_FLOOR;
    for (Py_ssize_t n = 0; n < N; n++) {
        T *dan = da + n * 4 * H;
        const Py_ssize_t o = n * H;
        for (Py_ssize_t j = 0; j < H; j++) {
            const Py_ssize_t k = o + j;
            T i_ = si[k], f_ = sf[k], g_ = sg[k], o_ = so[k], tc = stc[k], dh_ = dh[k];
            T dct = dh_ * o_ * (1 - tc * tc) + dc[k]; /* through h = o tanh(c), plus the carried dc */
            T da_i = dct * g_ * (i_ * (1 - i_)), da_f = dct * c_prev[k] * (f_ * (1 - f_));
            T da_g = dct * i_ * (1 - g_ * g_), da_o = dh_ * tc * (o_ * (1 - o_));
            dan[j] = FLOORED(da_i);
            dan[H + j] = FLOORED(da_f);
            dan[2 * H + j] = FLOORED(da_g);
            dan[3 * H + j] = FLOORED(da_o);
            dc_prev[k] = dct * f_;
        }
    }
}

static void NAME(gru_forward)(Py_ssize_t N, Py_ssize_t H, Py_ssize_t SS, const T *restrict xw,
                              const T *restrict hw, const T *restrict b, const T *restrict h_prev, T *restrict saved,
                              T *restrict h) {
    T *restrict sr = saved, *restrict sz = saved + SS, *restrict sn = saved + 2 * SS;
    T *restrict shn = saved + 3 * SS;
    for (Py_ssize_t n = 0; n < N; n++) {
        const T *xn = xw + n * 3 * H, *hn_ = hw + n * 3 * H;
        const Py_ssize_t o = n * H;
        for (Py_ssize_t j = 0; j < H; j++) {
            T r_ = SIGMOID(xn[j] + (hn_[j] + b[j]));
            T z_ = SIGMOID(xn[H + j] + (hn_[H + j] + b[H + j]));
            T hnj = hn_[2 * H + j] + b[2 * H + j];
            T n_ = TANH(r_ * hnj + xn[2 * H + j]);
            sr[o + j] = r_; sz[o + j] = z_; sn[o + j] = n_; shn[o + j] = hnj;
            h[o + j] = n_ + z_ * (h_prev[o + j] - n_); /* (1 - z) n + z h_prev */
        }
    }
}

static void NAME(gru_backward)(Py_ssize_t N, Py_ssize_t H, Py_ssize_t SS, const T *restrict dh,
                               const T *restrict saved, const T *restrict h_prev, T *restrict dxw, T *restrict dhw,
                               T *restrict dhz) {
    const T *sr = saved, *sz = saved + SS, *sn = saved + 2 * SS, *shn = saved + 3 * SS;
    const T floor_ = GRAD_FLOOR;
    for (Py_ssize_t n = 0; n < N; n++) {
        T *dx = dxw + n * 3 * H, *dhh = dhw + n * 3 * H;
        const Py_ssize_t o = n * H;
        for (Py_ssize_t j = 0; j < H; j++) {
            const Py_ssize_t k = o + j;
            T r_ = sr[k], z_ = sz[k], n_ = sn[k], dh_ = dh[k];
            T da_z = dh_ * (h_prev[k] - n_) * (z_ * (1 - z_));
            T da_n = dh_ * (1 - z_) * (1 - n_ * n_);
            T da_r = da_n * shn[k] * (r_ * (1 - r_)), da_hn = da_n * r_; /* n's h block is scaled by r */
            da_z = FLOORED(da_z);
            da_n = FLOORED(da_n);
            da_r = FLOORED(da_r);
            da_hn = FLOORED(da_hn);
            dx[j] = da_r; dx[H + j] = da_z; dx[2 * H + j] = da_n;
            dhh[j] = da_r; dhh[H + j] = da_z; dhh[2 * H + j] = da_hn;
            dhz[k] = dh_ * z_;
        }
    }
}

/* The whole forward time loop, the recurrent product included, then the step kernels above: the same
   outputs as time_loop.sequence_forward's loop, for N rows of a batch of ld rows (each per-step array is
   (T, ld, ·) and its pointer points at the first of the N rows: the rows of a batch are independent, so
   parts of it can run on separate threads). The product h_prev W_hhᵀ is dot products row by row when Wp
   is NULL (a few rows: B = 1 inference) and the packed product when Wp holds W_hhᵀ packed (pack_panels).
   mask (T, ld) bytes or NULL; hw is scratch of N·G·H. */
static void NAME(sequence)(int cell, Py_ssize_t T_, Py_ssize_t N, Py_ssize_t H, Py_ssize_t ld,
                           const T *restrict xw, const T *restrict W, const T *restrict Wp,
                           const T *restrict b, const T *restrict h0, const T *restrict c0,
                           const unsigned char *restrict mask, T *restrict hs, T *restrict cs,
                           T *restrict saved, T *restrict hw) {
    const Py_ssize_t GH = cell_gates(cell) * H, LH = ld * H, S = cell_saved(cell);
    for (Py_ssize_t t = 0; t < T_; t++) {
        const T *hp = t ? hs + (t - 1) * LH : h0, *x = xw + t * ld * GH;
        const T *cp = cell == CELL_LSTM ? (t ? cs + (t - 1) * LH : c0) : NULL;
        T *h = hs + t * LH;
        if (Wp)
            NAME(gemm_packed)(N, H, GH, hp, H, Wp, hw, GH);
        else
            for (Py_ssize_t n = 0; n < N; n++) NAME(matvec)(GH, H, W, hp + n * H, hw + n * GH);
        if (cell == CELL_GRU) {
            NAME(gru_forward)(N, H, LH, x, hw, b, hp, saved + t * S * LH, h);
        } else if (cell == CELL_LSTM) {
            NAME(lstm_forward)(N, H, LH, hw, x, b, cp, saved + t * S * LH, cs + t * LH, h);
        } else {
            for (Py_ssize_t n = 0; n < N; n++) {
                const T *hn_ = hw + n * H, *xn = x + n * H;
                T *hrow = h + n * H;
                if (cell == CELL_RNN_TANH)
                    for (Py_ssize_t j = 0; j < H; j++) hrow[j] = TANH((hn_[j] + xn[j]) + b[j]);
                else
                    for (Py_ssize_t j = 0; j < H; j++) {
                        T a = (hn_[j] + xn[j]) + b[j];
                        hrow[j] = a > 0 ? a : 0;
                    }
            }
        }
        if (mask)
            for (Py_ssize_t n = 0; n < N; n++)
                if (!mask[t * ld + n]) { /* padding keeps the state */
                    memcpy(h + n * H, hp + n * H, H * sizeof(T));
                    if (cell == CELL_LSTM) memcpy(cs + t * LH + n * H, cp + n * H, H * sizeof(T));
                }
    }
}

/* BPTT's time loop (time_loop.sequence_backward's, for a batch without padding), for N rows of a batch of
   ld rows as in sequence above: at each step from the last, the carried gradient (dh, and dc for the LSTM)
   goes through the step kernel into the pre-activation gradients dxw[t] (and GRU's dhw[t]), then the packed
   product with W_hh (Wp: W_hh packed as the K = G·H by M = H matrix) gives dh_prev. dout (T, ld, H) or NULL
   is added to dh before each step. Every flush_every steps (t % flush_every == 0), carried values below the
   smallest normal number are set to zero, as the Python loop does. dh, dc (N, H) are read as the final
   state's gradient and left as the initial state's; scratch holds 2·N·H. */
static void NAME(sequence_backward)(int cell, Py_ssize_t T_, Py_ssize_t N, Py_ssize_t H, Py_ssize_t ld,
                                    const T *dout, const T *hs, const T *cs, const T *h0, const T *c0,
                                    const T *saved, const T *restrict Wp, Py_ssize_t flush_every, T *dxw,
                                    T *dhw, T *dh, T *dc, T *scratch) {
    const Py_ssize_t GH = cell_gates(cell) * H, NH = N * H, S = cell_saved(cell), LH = ld * H;
    const T tiny = sizeof(T) == sizeof(float) ? (T)FLT_MIN : (T)DBL_MIN;
    T *other = scratch, *dhz = scratch + NH; /* LSTM: the new dc; GRU: dh ⊙ z */
    T *dc_now = dc;
    for (Py_ssize_t t = T_ - 1; t >= 0; t--) {
        T *dx_t = dxw + t * ld * GH;
        if (dout)
            for (Py_ssize_t k = 0; k < NH; k++) dh[k] += dout[t * LH + k];
        if (cell == CELL_LSTM) {
            const T *cp = t ? cs + (t - 1) * LH : c0;
            NAME(lstm_backward)(N, H, LH, dh, dc_now, saved + t * S * LH, cp, dx_t, other);
            T *swap = dc_now;
            dc_now = other;
            other = swap;
            NAME(gemm_packed)(N, GH, H, dx_t, GH, Wp, dh, H);
        } else if (cell == CELL_GRU) {
            const T *hp = t ? hs + (t - 1) * LH : h0;
            T *dh_t = dhw + t * ld * GH;
            NAME(gru_backward)(N, H, LH, dh, saved + t * S * LH, hp, dx_t, dh_t, dhz);
            NAME(gemm_packed)(N, GH, H, dh_t, GH, Wp, dh, H);
            for (Py_ssize_t k = 0; k < NH; k++) dh[k] += dhz[k];
        } else {
            NAME(rnn_backward)(N, H, dh, hs + t * LH, cell == CELL_RNN_RELU, dx_t);
            NAME(gemm_packed)(N, H, H, dx_t, H, Wp, dh, H);
        }
        if (t % flush_every == 0) {
            for (Py_ssize_t k = 0; k < NH; k++) dh[k] = dh[k] < tiny && dh[k] > -tiny ? (T)0 : dh[k];
            if (cell == CELL_LSTM)
                for (Py_ssize_t k = 0; k < NH; k++)
                    dc_now[k] = dc_now[k] < tiny && dc_now[k] > -tiny ? (T)0 : dc_now[k];
        }
    }
    if (cell == CELL_LSTM && dc_now != dc) memcpy(dc, dc_now, (size_t)NH * sizeof(T));
}

/* The embedding's gradient: out[r] = the sum, in order, of rows[order[i]] for i in run r (run r is
   order[starts[r] .. starts[r + 1]), the positions of one id; R runs over M positions). Each sum adds its
   rows one after another, as embedding._sum_runs does, without gathering the rows first. */
static void NAME(sum_runs)(Py_ssize_t M, Py_ssize_t R, Py_ssize_t E, const T *restrict rows,
                           const int64_t *restrict order, const int64_t *restrict starts, T *restrict out) {
    for (Py_ssize_t r = 0; r < R; r++) {
        const Py_ssize_t end = r + 1 < R ? starts[r + 1] : M;
        T *o = out + r * E;
        memcpy(o, rows + order[starts[r]] * E, (size_t)E * sizeof(T));
        for (Py_ssize_t i = starts[r] + 1; i < end; i++) {
            const T *src = rows + order[i] * E;
            for (Py_ssize_t e = 0; e < E; e++) o[e] += src[e];
        }
    }
}

/* Sparse Adam's update of the rows idx (R,) of p, m, v (each (V, E)) with the gradient dw (R, E), one pass
   per row: the same operations as optim.Adam._adam_rows (torch.optim.SparseAdam's sequence), in its order,
   with its float32 (or float64) constants. No multiply-add is fused (fp-contract=off, in every build:
   square root and division are correctly rounded at any vector width), so the results are the NumPy code's
   bit for bit. decay: 0 none, 1 decoupled (w *= wd_scale), 2 L2 (g = dw + wd_scale·w). */
#if defined(__GNUC__) && !defined(__clang__)
#define ADAM_NO_CONTRACT __attribute__((optimize("fp-contract=off"))) /* never fused, whatever CFLAGS say */
#else
#define ADAM_NO_CONTRACT
#endif

/* One row, decay a constant once inlined (so that the loop has no branch and vectorises). */
static inline __attribute__((always_inline)) ADAM_NO_CONTRACT void NAME(adam_row)(
    const int decay, Py_ssize_t E, T *restrict pr, T *restrict mr, T *restrict vr, const T *restrict gr,
    T wd_scale, T one_minus_b1, T one_minus_b2, T eps, T neg_step) {
    for (Py_ssize_t e = 0; e < E; e++) {
        T w = pr[e], g = gr[e], m_old = mr[e], v_old = vr[e];
        if (decay == 1) w *= wd_scale;
        if (decay == 2) g = g + wd_scale * w;
        T numer = g - m_old;
        numer *= one_minus_b1;
        numer += m_old;
        mr[e] = numer;
        T denom = g * g;
        denom -= v_old;
        denom *= one_minus_b2;
        denom += v_old;
        vr[e] = denom;
        denom = sizeof(T) == sizeof(float) ? (T)sqrtf((float)denom) : (T)sqrt((double)denom);
        denom += eps;
        numer = numer / denom;
        numer *= neg_step;
        w += numer;
        pr[e] = w;
    }
}

ADAM_NO_CONTRACT
static void NAME(adam_rows)(Py_ssize_t R, Py_ssize_t E, T *restrict p, T *restrict m, T *restrict v,
                            const int64_t *restrict idx, const T *restrict dw, int decay, T wd_scale,
                            T one_minus_b1, T one_minus_b2, T eps, T neg_step) {
    for (Py_ssize_t r = 0; r < R; r++) {
        T *pr = p + idx[r] * E, *mr = m + idx[r] * E, *vr = v + idx[r] * E;
        const T *gr = dw + r * E;
        if (decay == 0)
            NAME(adam_row)(0, E, pr, mr, vr, gr, wd_scale, one_minus_b1, one_minus_b2, eps, neg_step);
        else if (decay == 1)
            NAME(adam_row)(1, E, pr, mr, vr, gr, wd_scale, one_minus_b1, one_minus_b2, eps, neg_step);
        else
            NAME(adam_row)(2, E, pr, mr, vr, gr, wd_scale, one_minus_b1, one_minus_b2, eps, neg_step);
    }
}
#undef ADAM_NO_CONTRACT

#undef NAME
#undef FUSED_PASTE
#undef FUSED_PASTE_
#undef T
#undef SFX
#undef SIGMOID
#undef TANH
#undef REDUCE8
#undef GRAD_FLOOR
#undef GEMM_VEC
#undef GEMM_ROWS
#undef MATVEC_VEC
#undef FLOORED
