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
 * It also uses what _fused.c defines before including it: Python.h's Py_ssize_t, <string.h>'s memcpy,
 * VEC_BYTES, the CELL_* codes and gradient_floor_f32. It undefines its macros (the six above and NAME) at its end, so that the
 * next include starts clean; it has no include guard on purpose.
 *
 * Why a template header and not one macro per dtype: this is ordinary C, so compiler diagnostics, debugger
 * breakpoints, stepping and profiler lines land on the real line of this file (a macro's body is one
 * logical line at its invocation), and the four builds still come from one source, the same code but for T
 * and the target options around the include.
 */

#if !defined(T) || !defined(SFX) || !defined(SIGMOID) || !defined(TANH) || !defined(REDUCE8) || !defined(GRAD_FLOOR)
#error "_fused_kernels.h: define T, SFX, SIGMOID, TANH, REDUCE8 and GRAD_FLOOR before including it (see _fused.c)"
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
   the eight sums. */
static void NAME(matvec)(Py_ssize_t rows, Py_ssize_t H, const T *restrict W, const T *restrict x,
                         T *restrict out) {
    typedef T vec __attribute__((vector_size(VEC_BYTES)));
    enum { L = VEC_BYTES / sizeof(T), R = 8 };
    Py_ssize_t j = 0;
    for (; j + R <= rows; j += R) {
        vec acc[R] = {{0}}, xv, wv;
        Py_ssize_t k = 0;
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

/* ---- the element-wise step kernels ---------------------------------------------------------------------- */

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

static void NAME(lstm_forward)(Py_ssize_t N, Py_ssize_t H, const T *restrict hw, const T *restrict xw,
                               const T *restrict b, const T *restrict c_prev, T *restrict saved,
                               T *restrict c, T *restrict h) {
    const Py_ssize_t NH = N * H;
    T *restrict si = saved, *restrict sf = saved + NH, *restrict sg = saved + 2 * NH;
    T *restrict so = saved + 3 * NH, *restrict stc = saved + 4 * NH;
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

static void NAME(lstm_backward)(Py_ssize_t N, Py_ssize_t H, const T *dh, const T *dc,
                                const T *restrict saved, const T *c_prev, T *restrict da, T *dc_prev) {
    const Py_ssize_t NH = N * H;
    const T *si = saved, *sf = saved + NH, *sg = saved + 2 * NH, *so = saved + 3 * NH;
    const T *stc = saved + 4 * NH;
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

static void NAME(gru_forward)(Py_ssize_t N, Py_ssize_t H, const T *restrict xw, const T *restrict hw,
                              const T *restrict b, const T *restrict h_prev, T *restrict saved,
                              T *restrict h) {
    const Py_ssize_t NH = N * H;
    T *restrict sr = saved, *restrict sz = saved + NH, *restrict sn = saved + 2 * NH;
    T *restrict shn = saved + 3 * NH;
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

static void NAME(gru_backward)(Py_ssize_t N, Py_ssize_t H, const T *restrict dh, const T *restrict saved,
                               const T *restrict h_prev, T *restrict dxw, T *restrict dhw,
                               T *restrict dhz) {
    const Py_ssize_t NH = N * H;
    const T *sr = saved, *sz = saved + NH, *sn = saved + 2 * NH, *shn = saved + 3 * NH;
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

/* The whole forward time loop for a small batch, the recurrent product included (h_prev W_hhᵀ as
   dot products, row by row, then the step kernels above): for N of a few rows, a call into BLAS per
   step costs more than the arithmetic. Same outputs as time_loop.sequence_forward's loop; hw is
   scratch of N·G·H. */
static void NAME(sequence)(int cell, Py_ssize_t T_, Py_ssize_t N, Py_ssize_t H, const T *restrict xw,
                           const T *restrict W, const T *restrict b, const T *restrict h0,
                           const T *restrict c0, const unsigned char *restrict mask, T *restrict hs,
                           T *restrict cs, T *restrict saved, T *restrict hw) {
    const Py_ssize_t G = cell == CELL_GRU ? 3 : (cell == CELL_LSTM ? 4 : 1), GH = G * H, NH = N * H;
    const Py_ssize_t S = cell == CELL_GRU ? 4 : (cell == CELL_LSTM ? 5 : 0);
    for (Py_ssize_t t = 0; t < T_; t++) {
        const T *hp = t ? hs + (t - 1) * NH : h0, *x = xw + t * N * GH;
        const T *cp = cell == CELL_LSTM ? (t ? cs + (t - 1) * NH : c0) : NULL;
        T *h = hs + t * NH;
        for (Py_ssize_t n = 0; n < N; n++) NAME(matvec)(GH, H, W, hp + n * H, hw + n * GH);
        if (cell == CELL_GRU) {
            NAME(gru_forward)(N, H, x, hw, b, hp, saved + t * S * NH, h);
        } else if (cell == CELL_LSTM) {
            NAME(lstm_forward)(N, H, hw, x, b, cp, saved + t * S * NH, cs + t * NH, h);
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
                if (!mask[t * N + n]) { /* padding keeps the state */
                    memcpy(h + n * H, hp + n * H, H * sizeof(T));
                    if (cell == CELL_LSTM) memcpy(cs + t * NH + n * H, cp + n * H, H * sizeof(T));
                }
    }
}

#undef NAME
#undef FUSED_PASTE
#undef FUSED_PASTE_
#undef T
#undef SFX
#undef SIGMOID
#undef TANH
#undef REDUCE8
#undef GRAD_FLOOR
#undef FLOORED
