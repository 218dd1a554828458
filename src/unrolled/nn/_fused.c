/* Fused element-wise step kernels for the Elman RNN, GRU and LSTM cells (optional accelerator).
 *
 * The NumPy kernels in rnn.py, gru.py and lstm.py are the reference: readable, one array operation per
 * term. Each of those operations is a separate pass over (N, H) arrays with its own call overhead, and
 * together they cost about as much as the step's matrix product. The kernels in _fused_kernels.h (a template
 * this file includes once per build: f64, f32, and f32 again for AVX2 and AVX-512) do the same math in one pass
 * per step, element by element, and are checked against the NumPy kernels by tests/nn/test_fused.py.
 * The matrix products stay in NumPy (its BLAS); only the element-wise work between them is here.
 *
 * Layouts (C-contiguous; N batch, H hidden):
 *   LSTM  hw = h_prev W_hhᵀ, xw = x W_ihᵀ + b_ih (N, 4H) [i f g o], b_hh (4H,);
 *         saved (5, N, H) = i, f, g, o, tanh(c)
 *   GRU   hw = h_prev W_hhᵀ, xw = x W_ihᵀ + b_ih (N, 3H) [r z n], b_hh (3H,); saved (4, N, H) = r, z, n, hn
 *   RNN   hw, xw (N, H), b_hh (H,); h (N, H); backward da (N, H) from dh and h
 * Each sum is formed in the NumPy kernels' order: RNN and LSTM (hw + xw) + b_hh, GRU xw + (hw + b_hh).
 *
 * float32 uses a polynomial exp/tanh (Cephes' expf and tanhf, within a few ulp) that the compiler can
 * vectorise; float64 uses the C library's exp and tanh (gradient checks run in float64).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#ifndef _WIN32
#include <pthread.h> /* the time loops' threads; on Windows the parts run one after another */
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- memory aligned to a cache line ---------------------------------------------------------------------

   The kernels load whole vectors (64 bytes on AVX-512) of W_hh, its packed panels and their scratch rows; a
   load that straddles two cache lines costs about two, and malloc and NumPy align to 16 bytes only: a B = 1
   LSTM forward pass (H 128) took 86 µs with W_hh 16 bytes past a line, 54 µs on one. Where the kernels read
   memory they allocate, it starts on a line; a caller's W_hh that does not is copied to memory that does
   (the same values in the same order: the results do not depend on the address). */
enum { CACHE_LINE = 64 };

static void *aligned_malloc(size_t bytes) {
#ifdef _WIN32
    return _aligned_malloc(bytes ? bytes : 1, CACHE_LINE);
#else
    void *p = NULL;
    return posix_memalign(&p, CACHE_LINE, bytes ? bytes : 1) == 0 ? p : NULL;
#endif
}

static void aligned_free(void *p) {
#ifdef _WIN32
    _aligned_free(p);
#else
    free(p);
#endif
}

/* ---- float32 math, branch-free so that loops vectorise ---------------------------------------------- */

static inline float exp_f32(float x) {
    /* Cephes expf: x = n ln2 + r, |r| <= ln2 / 2, exp(r) by a degree-6 polynomial, 2^n by exponent bits.
       Clamped to [-87, 87] so that results (and the sigmoids built on them) stay normal numbers. */
    x = x < -87.0f ? -87.0f : x;
    x = x > 87.0f ? 87.0f : x;
    float n = x * 1.44269504088896341f + 12582912.0f; /* round to nearest: 1.5 * 2^23 */
    n -= 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { uint32_t i; float f; } scale;
    scale.i = (uint32_t)((int32_t)n + 127) << 23; /* n in [-126, 126] here; a NaN x stays NaN through p */
    return p * scale.f;
}

static inline float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

static inline float tanh_f32(float x) {
    /* Cephes tanhf: an odd polynomial for |x| < 0.625, else 1 - 2 / (exp(2|x|) + 1) with x's sign. */
    float ax = x < 0.0f ? -x : x;
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
                    + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (exp_f32(2.0f * ax) + 1.0f);
    big = x < 0.0f ? -big : big;
    return ax < 0.625f ? small : big;
}

static inline double sigmoid_f64(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double tanh_f64(double x) { return tanh(x); }

/* Vector width of the small-batch matrix-vector product (GCC vector extensions, lowered to what the target
   has): eight floats, the width its final sums (REDUCE8) work in; the AVX-512 build runs most of k in
   sixteen (MATVEC_VEC, see matvec). */
#define VEC_BYTES 32

enum { CELL_RNN_TANH = 0, CELL_RNN_RELU = 1, CELL_GRU = 2, CELL_LSTM = 3 };

/* A cell's G (gates: the blocks of W_hh's rows) and S (the activations a step saves for backward). */
static inline Py_ssize_t cell_gates(int cell) { return cell == CELL_GRU ? 3 : (cell == CELL_LSTM ? 4 : 1); }
static inline Py_ssize_t cell_saved(int cell) { return cell == CELL_GRU ? 4 : (cell == CELL_LSTM ? 5 : 0); }

/* The lane sums of eight vectors, one loop each (any vector width). */
#define REDUCE8_SCALAR(acc, out)                                                                             \
    for (int r_ = 0; r_ < 8; r_++) {                                                                         \
        (out)[r_] = 0;                                                                                       \
        for (int l_ = 0; l_ < (int)(sizeof(acc[0]) / sizeof((out)[0])); l_++) (out)[r_] += acc[r_][l_];      \
    }

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define HAVE_SHUFFLEVECTOR 1 /* __builtin_shufflevector: reduce8_f32 here, matvec's 16-to-8 fold (AVX-512) */
typedef float v8sf __attribute__((vector_size(32)));
/* The lane sums of eight 8-float vectors by a transposing tree of shuffles and adds (a horizontal sum per
   vector costs more than the dot product at H = 128). */
static inline void reduce8_f32(const v8sf *acc, float *out) {
#define PAIRS(a, b) (__builtin_shufflevector(a, b, 0, 8, 2, 10, 4, 12, 6, 14) + \
                     __builtin_shufflevector(a, b, 1, 9, 3, 11, 5, 13, 7, 15))
#define QUADS(a, b) (__builtin_shufflevector(a, b, 0, 1, 8, 9, 4, 5, 12, 13) + \
                     __builtin_shufflevector(a, b, 2, 3, 10, 11, 6, 7, 14, 15))
    v8sf p01 = PAIRS(acc[0], acc[1]), p23 = PAIRS(acc[2], acc[3]);
    v8sf p45 = PAIRS(acc[4], acc[5]), p67 = PAIRS(acc[6], acc[7]);
    v8sf q0 = QUADS(p01, p23), q1 = QUADS(p45, p67); /* rows 0-3 then 4-7, two halves each */
    v8sf sums = __builtin_shufflevector(q0, q1, 0, 1, 2, 3, 8, 9, 10, 11) +
                __builtin_shufflevector(q0, q1, 4, 5, 6, 7, 12, 13, 14, 15);
#undef PAIRS
#undef QUADS
    memcpy(out, &sums, sizeof sums);
}
#define REDUCE8_F32(acc, out) reduce8_f32(acc, out)
#else
#define REDUCE8_F32 REDUCE8_SCALAR
#endif

/* ---- the gradient floor ----------------------------------------------------------------------------------

   The float32 backward kernels write a pre-activation gradient (da, dxw, dhw) smaller than this in magnitude
   as zero. Why: after the time loop the weight gradients are GEMMs of these gradients with the inputs and
   states (dW_ih = dxwᵀ x, dW_hh = dhwᵀ h, dx = dxw W_ih), and BLAS runs them partly on its worker threads,
   which compute without flush-to-zero (only the calling thread has it, nn/fused.py). A gradient that has
   vanished over many steps to ~1e-38 (the smallest normal float) times an activation of ~0.1 is a subnormal
   product, and on Intel CPUs each one takes a microcode assist: a 32·256·128·128 LSTM backward pass took
   120 ms instead of 70 ms on 2 threads (each weight-gradient GEMM 3.5× slower). With gradients of at least
   2^-100, products with operands above 2^-26 stay normal. 2^-100 ≈ 7.9e-31: no float32 weight update can see
   such a gradient (SGD adds lr·g, far below the weight's last bit; Adam's ε = 1e-8 bounds its step by
   lr·g/ε ≈ 1e-25). float64 (gradient checks) has no floor. nn/fused.py sets it to 0 when subnormals are
   not flushed (UNROLLED_FLUSH_SUBNORMALS=0: IEEE arithmetic throughout). */
static float gradient_floor_f32 = 0x1p-100f;

/* ---- the kernels, once per build ------------------------------------------------------------------------ */

/* _fused_kernels.h holds the kernels' code once; each include below compiles it for one element type and
   function-name suffix (NAME(lstm_forward) there is lstm_forward_f64, lstm_forward_f32, ...). */
#define T double
#define SFX f64
#define SIGMOID sigmoid_f64
#define TANH tanh_f64
#define REDUCE8 REDUCE8_SCALAR
#define GRAD_FLOOR 0.0
#define GEMM_VEC 16
#define GEMM_ROWS 4
#define MATVEC_VEC VEC_BYTES
#include "_fused_kernels.h"

#define T float
#define SFX f32
#define SIGMOID sigmoid_f32
#define TANH tanh_f32
#define REDUCE8 REDUCE8_F32
#define GRAD_FLOOR gradient_floor_f32
#define GEMM_VEC 16
#define GEMM_ROWS 6
#define MATVEC_VEC VEC_BYTES
#include "_fused_kernels.h"

/* float32 is where the speed matters: on x86-64 the same kernels are compiled again for AVX2 + FMA and for
   AVX-512, and the module picks the widest the CPU has when it is imported (FMA contracts a*b + c, so
   results may differ from the baseline build in the last bit). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FUSED_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define T float
#define SFX f32_avx2
#define SIGMOID sigmoid_f32
#define TANH tanh_f32
#define REDUCE8 REDUCE8_F32
#define GRAD_FLOOR gradient_floor_f32
#define GEMM_VEC 32
#define GEMM_ROWS 6
#define MATVEC_VEC VEC_BYTES
#include "_fused_kernels.h"
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,prefer-vector-width=512")
#define T float
#define SFX f32_avx512
#define SIGMOID sigmoid_f32
#define TANH tanh_f32
#define REDUCE8 REDUCE8_F32
#define GRAD_FLOOR gradient_floor_f32
#define GEMM_VEC 64
#define GEMM_ROWS 8
#ifdef HAVE_SHUFFLEVECTOR /* it folds the 16-float sums */
#define MATVEC_VEC 64
#else
#define MATVEC_VEC VEC_BYTES
#endif
#include "_fused_kernels.h"
#pragma GCC pop_options
#endif

static void (*lstm_forward_f32_best)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *, const float *,
                                     const float *, const float *, float *, float *, float *) = lstm_forward_f32;
static void (*lstm_backward_f32_best)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *, const float *,
                                      const float *, const float *, float *, float *) = lstm_backward_f32;
static void (*gru_forward_f32_best)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *, const float *, const float *,
                                    const float *, float *, float *) = gru_forward_f32;
static void (*gru_backward_f32_best)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *, const float *,
                                     const float *, float *, float *, float *) = gru_backward_f32;
static void (*sequence_f32_best)(int, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *, const float *,
                                 const float *, const float *, const float *, const float *,
                                 const unsigned char *, float *, float *, float *, float *) = sequence_f32;
static void (*sequence_backward_f32_best)(int, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *,
                                          const float *, const float *, const float *, const float *,
                                          const float *, const float *, Py_ssize_t, float *, float *, float *,
                                          float *, float *) = sequence_backward_f32;
static Py_ssize_t (*packed_size_f32_best)(Py_ssize_t, Py_ssize_t) = packed_size_f32;
static void (*sum_runs_f32_best)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *, const int64_t *,
                                 const int64_t *, float *) = sum_runs_f32;
static void (*adam_rows_f32_best)(Py_ssize_t, Py_ssize_t, float *, float *, float *, const int64_t *,
                                  const float *, int, float, float, float, float, float) = adam_rows_f32;
static void (*gemm_packed_f32_best)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *, Py_ssize_t, const float *,
                                    float *, Py_ssize_t) = gemm_packed_f32;
static void (*pack_panels_f32_best)(Py_ssize_t, Py_ssize_t, const float *, Py_ssize_t, Py_ssize_t,
                                    float *) = pack_panels_f32;
static Py_ssize_t (*project_scratch_f32_best)(Py_ssize_t, Py_ssize_t) = project_scratch_f32;
static void (*project_rows_f32_best)(Py_ssize_t, Py_ssize_t, Py_ssize_t, const float *, const float *,
                                     const float *, float *, float *) = project_rows_f32;
static void (*rnn_forward_f32_best)(Py_ssize_t, Py_ssize_t, const float *, const float *, const float *, int,
                                    float *) = rnn_forward_f32;
static void (*rnn_backward_f32_best)(Py_ssize_t, Py_ssize_t, const float *, const float *, int,
                                     float *) = rnn_backward_f32;
static const char *instruction_set = "baseline";

/* Point every float32 kernel at the build SFX (f32_avx2, f32_avx512) of the same code. */
#define USE_KERNELS(SFX, NAME)                                                                               \
    do {                                                                                                     \
        lstm_forward_f32_best = lstm_forward_##SFX;                                                          \
        lstm_backward_f32_best = lstm_backward_##SFX;                                                        \
        gru_forward_f32_best = gru_forward_##SFX;                                                            \
        gru_backward_f32_best = gru_backward_##SFX;                                                          \
        sequence_f32_best = sequence_##SFX;                                                                  \
        sequence_backward_f32_best = sequence_backward_##SFX;                                                \
        packed_size_f32_best = packed_size_##SFX;                                                            \
        gemm_packed_f32_best = gemm_packed_##SFX;                                                            \
        adam_rows_f32_best = adam_rows_##SFX;                                                                \
        sum_runs_f32_best = sum_runs_##SFX;                                                                  \
        pack_panels_f32_best = pack_panels_##SFX;                                                            \
        project_scratch_f32_best = project_scratch_##SFX;                                                    \
        project_rows_f32_best = project_rows_##SFX;                                                          \
        rnn_forward_f32_best = rnn_forward_##SFX;                                                            \
        rnn_backward_f32_best = rnn_backward_##SFX;                                                          \
        instruction_set = NAME;                                                                              \
    } while (0)

/* ---- float16 -> float32: reading weights stored as float16 ------------------------------------------

   Exact for every value (float32 holds each float16). NumPy's astype converts one value at a time, ~3.5 ns
   each here (8 ms for the bundled sst2-best's 2.3M weights, a third of its load); F16C's vcvtph2ps converts
   eight per instruction. Without F16C (or in the baseline build), the portable loop below. */
static float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1fu) {
        bits = sign | 0x7f800000u | (mantissa << 13); /* infinity, NaN (payload kept) */
    } else if (exponent) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13); /* normal: exponent bias 15 -> 127 */
    } else {
        float magnitude = (float)mantissa * 0x1p-24f; /* zero or subnormal: mantissa * 2^-24, exact */
        memcpy(&bits, &magnitude, sizeof bits);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void halves_portable(Py_ssize_t n, const uint16_t *src, float *dst) {
    for (Py_ssize_t k = 0; k < n; k++) dst[k] = half_to_float(src[k]);
}

#ifdef FUSED_DISPATCH
#include <immintrin.h>
__attribute__((target("avx,f16c"))) static void halves_f16c(Py_ssize_t n, const uint16_t *src, float *dst) {
    Py_ssize_t k = 0;
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + k))));
    for (; k < n; k++) dst[k] = half_to_float(src[k]);
}
#endif

static void (*halves_best)(Py_ssize_t, const uint16_t *, float *) = halves_portable;

/* The widest build the CPU runs; UNROLLED_FUSED_ISA=baseline or avx2 caps it (the tests run every build). */
static void pick_kernels(void) {
#ifdef FUSED_DISPATCH
    const char *cap = getenv("UNROLLED_FUSED_ISA");
    int allow_avx512 = !cap || !*cap || strcmp(cap, "avx512") == 0;
    int allow_avx2 = allow_avx512 || strcmp(cap, "avx2") == 0;
    __builtin_cpu_init();
    if (allow_avx512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
        USE_KERNELS(f32_avx512, "avx512f+fma");
    else if (allow_avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        USE_KERNELS(f32_avx2, "avx2+fma");
    if (strcmp(instruction_set, "baseline") != 0 && __builtin_cpu_supports("f16c")) /* an AVX build was picked */
        halves_best = halves_f16c;
#endif
}

/* ---- Python bindings ------------------------------------------------------------------------------------ */

static void release_buffers(Py_buffer *views, int count) {
    for (int k = 0; k < count; k++) PyBuffer_Release(&views[k]);
}

/* Get C-contiguous buffers of the expected byte sizes; on failure release what was taken and raise. */
static int take_buffers(PyObject *const *objs, Py_buffer *views, const Py_ssize_t *items, int count,
                        int first_writable, Py_ssize_t itemsize, const char *func) {
    for (int k = 0; k < count; k++) {
        int flags = PyBUF_C_CONTIGUOUS | (k >= first_writable ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objs[k], &views[k], flags) < 0) {
            release_buffers(views, k);
            return -1;
        }
        if (views[k].len != items[k] * itemsize) {
            PyErr_Format(PyExc_ValueError, "%s: argument %d has %zd bytes, expected %zd", func, k,
                         views[k].len, items[k] * itemsize);
            release_buffers(views, k + 1);
            return -1;
        }
    }
    return 0;
}

/* Every function: (arrays..., N, H, is_double). Arrays first, read-only ones before writable ones. */
static int parse_sizes(PyObject *const *args, Py_ssize_t nargs, int narrays, Py_ssize_t *N, Py_ssize_t *H,
                       int *is_double, const char *func) {
    if (nargs != narrays + 3) {
        PyErr_Format(PyExc_TypeError, "%s: expected %d arguments, got %zd", func, narrays + 3, nargs);
        return -1;
    }
    *N = PyLong_AsSsize_t(args[narrays]);
    *H = PyLong_AsSsize_t(args[narrays + 1]);
    *is_double = PyObject_IsTrue(args[narrays + 2]);
    if (PyErr_Occurred() || *is_double < 0) return -1;
    if (*N < 0 || *H < 0) {
        PyErr_Format(PyExc_ValueError, "%s: N and H must be non-negative", func);
        return -1;
    }
    return 0;
}

#define BINDING(NAME, NARRAYS, FIRST_WRITABLE, ITEMS, CALL_F32, CALL_F64)                                    \
    static PyObject *py_##NAME(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {                   \
        Py_ssize_t N, H;                                                                                     \
        int is_double;                                                                                       \
        if (parse_sizes(args, nargs, NARRAYS, &N, &H, &is_double, #NAME) < 0) return NULL;                   \
        const Py_ssize_t NH = N * H;                                                                         \
        const Py_ssize_t items[NARRAYS] = ITEMS;                                                             \
        Py_buffer v[NARRAYS];                                                                                \
        if (take_buffers(args, v, items, NARRAYS, FIRST_WRITABLE, is_double ? 8 : 4, #NAME) < 0) return NULL; \
        Py_BEGIN_ALLOW_THREADS                                                                               \
        if (is_double) { CALL_F64; } else { CALL_F32; }                                                      \
        Py_END_ALLOW_THREADS                                                                                 \
        release_buffers(v, NARRAYS);                                                                         \
        Py_RETURN_NONE;                                                                                      \
    }

#define P(T, k) ((T *)v[k].buf)
#define ARGS(...) { __VA_ARGS__ }

/* lstm_forward(hw, xw, b_hh, c_prev, saved, c, h, N, H, is_double) */
BINDING(lstm_forward, 7, 4, ARGS(4 * NH, 4 * NH, 4 * H, NH, 5 * NH, NH, NH),
        lstm_forward_f32_best(N, H, NH, P(float, 0), P(float, 1), P(float, 2), P(float, 3), P(float, 4), P(float, 5),
                              P(float, 6)),
        lstm_forward_f64(N, H, NH, P(double, 0), P(double, 1), P(double, 2), P(double, 3), P(double, 4),
                         P(double, 5), P(double, 6)))

/* lstm_backward(dh, dc, saved, c_prev, da, dc_prev, N, H, is_double) */
BINDING(lstm_backward, 6, 4, ARGS(NH, NH, 5 * NH, NH, 4 * NH, NH),
        lstm_backward_f32_best(N, H, NH, P(float, 0), P(float, 1), P(float, 2), P(float, 3), P(float, 4), P(float, 5)),
        lstm_backward_f64(N, H, NH, P(double, 0), P(double, 1), P(double, 2), P(double, 3), P(double, 4),
                          P(double, 5)))

/* rnn_tanh_forward / rnn_relu_forward(hw, xw, b_hh, h, N, H, is_double) */
BINDING(rnn_tanh_forward, 4, 3, ARGS(NH, NH, H, NH),
        rnn_forward_f32_best(N, H, P(float, 0), P(float, 1), P(float, 2), 0, P(float, 3)),
        rnn_forward_f64(N, H, P(double, 0), P(double, 1), P(double, 2), 0, P(double, 3)))
BINDING(rnn_relu_forward, 4, 3, ARGS(NH, NH, H, NH),
        rnn_forward_f32_best(N, H, P(float, 0), P(float, 1), P(float, 2), 1, P(float, 3)),
        rnn_forward_f64(N, H, P(double, 0), P(double, 1), P(double, 2), 1, P(double, 3)))

/* rnn_tanh_backward / rnn_relu_backward(dh, h, da, N, H, is_double) */
BINDING(rnn_tanh_backward, 3, 2, ARGS(NH, NH, NH),
        rnn_backward_f32_best(N, H, P(float, 0), P(float, 1), 0, P(float, 2)),
        rnn_backward_f64(N, H, P(double, 0), P(double, 1), 0, P(double, 2)))
BINDING(rnn_relu_backward, 3, 2, ARGS(NH, NH, NH),
        rnn_backward_f32_best(N, H, P(float, 0), P(float, 1), 1, P(float, 2)),
        rnn_backward_f64(N, H, P(double, 0), P(double, 1), 1, P(double, 2)))

/* gru_forward(xw, hw, b_hh, h_prev, saved, h, N, H, is_double) */
BINDING(gru_forward, 6, 4, ARGS(3 * NH, 3 * NH, 3 * H, NH, 4 * NH, NH),
        gru_forward_f32_best(N, H, NH, P(float, 0), P(float, 1), P(float, 2), P(float, 3), P(float, 4), P(float, 5)),
        gru_forward_f64(N, H, NH, P(double, 0), P(double, 1), P(double, 2), P(double, 3), P(double, 4),
                        P(double, 5)))

/* gru_backward(dh, saved, h_prev, dxw, dhw, dhz, N, H, is_double) */
BINDING(gru_backward, 6, 3, ARGS(NH, 4 * NH, NH, 3 * NH, 3 * NH, NH),
        gru_backward_f32_best(N, H, NH, P(float, 0), P(float, 1), P(float, 2), P(float, 3), P(float, 4), P(float, 5)),
        gru_backward_f64(N, H, NH, P(double, 0), P(double, 1), P(double, 2), P(double, 3), P(double, 4),
                         P(double, 5)))

/* Take the buffers of count optional arguments (None allowed where items[k] is 0, required otherwise; an
   argument's expected size is items[k] elements of itemsize bytes, or bytes for is_bytes[k]); those from
   first_writable on are written. On failure, releases what it took, raises, returns -1. */
static int take_optional(PyObject *const *objs, int count, const Py_ssize_t *items, const int *is_bytes,
                         int first_writable, Py_ssize_t itemsize, Py_buffer *views, int *taken,
                         const char *func) {
    for (int k = 0; k < count; k++) taken[k] = 0;
    for (int k = 0; k < count; k++) {
        PyObject *obj = objs[k];
        if (obj == Py_None) {
            if (items[k] && !is_bytes[k]) {
                PyErr_Format(PyExc_ValueError, "%s: argument %d is required for this cell", func, k + 1);
                goto fail;
            }
            continue;
        }
        if (!items[k]) {
            PyErr_Format(PyExc_ValueError, "%s: argument %d must be None for this cell", func, k + 1);
            goto fail;
        }
        if (PyObject_GetBuffer(obj, &views[k], PyBUF_C_CONTIGUOUS | (k >= first_writable ? PyBUF_WRITABLE : 0)) < 0)
            goto fail;
        taken[k] = 1;
        const Py_ssize_t bytes = items[k] * (is_bytes[k] ? 1 : itemsize);
        if (views[k].len != bytes) {
            PyErr_Format(PyExc_ValueError, "%s: argument %d has %zd bytes, expected %zd", func, k + 1, views[k].len,
                         bytes);
            goto fail;
        }
    }
    return 0;
fail:
    for (int k = 0; k < count; k++)
        if (taken[k]) PyBuffer_Release(&views[k]);
    return -1;
}

static void release_taken(Py_buffer *views, const int *taken, int count) {
    for (int k = 0; k < count; k++)
        if (taken[k]) PyBuffer_Release(&views[k]);
}

/* Get count C-contiguous buffers with their shapes and item formats, writable where bit k of writable is
   set; on failure release what was taken, raise, return -1. */
static int take_arrays(PyObject *const *objs, Py_buffer *views, int count, unsigned writable) {
    for (int k = 0; k < count; k++) {
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | ((writable >> k) & 1u ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objs[k], &views[k], flags) < 0) {
            release_buffers(views, k);
            return -1;
        }
    }
    return 0;
}

/* Read the trailing size arguments: n of them from args[first], each >= 0, then is_double. */
static int parse_tail(PyObject *const *args, int first, int n, Py_ssize_t *sizes, int *is_double, const char *func) {
    for (int k = 0; k < n; k++) sizes[k] = PyLong_AsSsize_t(args[first + k]);
    *is_double = PyObject_IsTrue(args[first + n]);
    if (PyErr_Occurred() || *is_double < 0) return -1;
    for (int k = 0; k < n; k++)
        if (sizes[k] < 0) {
            PyErr_Format(PyExc_ValueError, "%s: sizes must be non-negative", func);
            return -1;
        }
    return 0;
}

static int cell_shape(PyObject *code, Py_ssize_t *G, Py_ssize_t *S, const char *func) {
    int cell = (int)PyLong_AsLong(code);
    if (PyErr_Occurred()) return -1;
    if (cell < 0 || cell > 3) {
        PyErr_Format(PyExc_ValueError, "%s: bad cell code %d", func, cell);
        return -1;
    }
    *G = cell_gates(cell);
    *S = cell_saved(cell);
    return cell;
}

/* W_hh (G·H, H) packed for the recurrent product: as W_hhᵀ (K = H, M = G·H) forward, as W_hh (K = G·H,
   M = H) backward. Returns aligned_malloc'd memory (NULL and MemoryError on failure). */
static void *pack_weight(const void *w, Py_ssize_t G, Py_ssize_t H, int backward, int is_double) {
    const Py_ssize_t K = backward ? G * H : H, M = backward ? H : G * H;
    const Py_ssize_t sk = backward ? H : 1, sm = backward ? 1 : H;
    const Py_ssize_t items = is_double ? packed_size_f64(K, M) : packed_size_f32_best(K, M);
    void *packed = aligned_malloc((size_t)(items + 1) * (is_double ? 8 : 4));
    if (!packed) {
        PyErr_NoMemory();
        return NULL;
    }
    if (is_double)
        pack_panels_f64(K, M, w, sk, sm, packed);
    else
        pack_panels_f32_best(K, M, w, sk, sm, packed);
    return packed;
}

/* ---- the time loops on threads ----------------------------------------------------------------------

   The rows of a batch are independent recurrences, so a batch splits into parts of rows that run the whole
   time loop each on its own thread, with no synchronisation between steps; every thread reads the same
   packed weights. A row's arithmetic is the same whatever part it is in (the packed product sums each
   output in order), so the results do not depend on the thread count. */

static unsigned int get_flush(void);
static void set_flush(unsigned int bits);

enum { MAX_THREADS = 64, ROWS_PER_THREAD = 8 }; /* a part has at least one full tile of rows */

typedef struct {
    int cell, is_double, backward;
    Py_ssize_t T_, N, H, ld, flush_every;
    const void *xw, *w, *wp, *b, *h0, *c0, *dout, *hs_in, *cs_in, *saved_in;
    const unsigned char *mask;
    void *hs, *cs, *saved, *dxw, *dhw, *dh, *dc, *scratch;
    unsigned int flush_bits; /* the caller's flush-to-zero mode, for the threads it starts */
} loop_part;

static void run_part(const loop_part *p) {
    if (p->backward) {
        if (p->is_double)
            sequence_backward_f64(p->cell, p->T_, p->N, p->H, p->ld, p->dout, p->hs_in, p->cs_in, p->h0, p->c0,
                                  p->saved_in, p->wp, p->flush_every, p->dxw, p->dhw, p->dh, p->dc, p->scratch);
        else
            sequence_backward_f32_best(p->cell, p->T_, p->N, p->H, p->ld, p->dout, p->hs_in, p->cs_in, p->h0,
                                       p->c0, p->saved_in, p->wp, p->flush_every, p->dxw, p->dhw, p->dh, p->dc,
                                       p->scratch);
    } else if (p->is_double) {
        sequence_f64(p->cell, p->T_, p->N, p->H, p->ld, p->xw, p->w, p->wp, p->b, p->h0, p->c0, p->mask, p->hs,
                     p->cs, p->saved, p->scratch);
    } else {
        sequence_f32_best(p->cell, p->T_, p->N, p->H, p->ld, p->xw, p->w, p->wp, p->b, p->h0, p->c0, p->mask,
                          p->hs, p->cs, p->saved, p->scratch);
    }
}

static void *part_thread(void *arg) {
    const loop_part *p = arg;
    set_flush(p->flush_bits);
    run_part(p);
    return NULL;
}

/* Offset a pointer by items elements of size bytes (NULL stays NULL). */
static const void *at(const void *base, Py_ssize_t items, Py_ssize_t size) {
    return base ? (const char *)base + items * size : NULL;
}
static void *at_w(void *base, Py_ssize_t items, Py_ssize_t size) {
    return base ? (char *)base + items * size : NULL;
}

/* Run the loop described by whole (rows 0..N-1 of a batch of N) on up to `threads` threads, the calling
   thread included, each part on rows [n0, n0 + n) with its own scratch of scratch_per_row·n items. Returns -1
   (MemoryError set) when the scratch cannot be allocated; a thread that cannot be started runs its part on
   the calling thread. Called without the GIL held only for the arithmetic. */
static int run_parts(const loop_part *whole, int threads, Py_ssize_t scratch_per_row) {
    const Py_ssize_t N = whole->N, H = whole->H, size = whole->is_double ? 8 : 4;
    const Py_ssize_t GH = cell_gates(whole->cell) * H;
    Py_ssize_t parts = N / ROWS_PER_THREAD;
    if (parts > threads) parts = threads;
    if (parts > MAX_THREADS) parts = MAX_THREADS;
    if (parts < 1) parts = 1;
    Py_ssize_t per = (N + parts - 1) / parts;
    per = (per + ROWS_PER_THREAD - 1) / ROWS_PER_THREAD * ROWS_PER_THREAD; /* whole tiles for all but the last */
    /* each part's scratch starts on a cache line: rounded up to whole lines a row */
    const Py_ssize_t per_line = CACHE_LINE / size;
    scratch_per_row = (scratch_per_row + per_line - 1) / per_line * per_line;
    void *scratch = aligned_malloc((size_t)(scratch_per_row * N + parts) * (size_t)size);
    if (!scratch) {
        PyErr_NoMemory();
        return -1;
    }
    loop_part part[MAX_THREADS];
#ifndef _WIN32
    pthread_t tid[MAX_THREADS];
#endif
    int started[MAX_THREADS] = {0};
    Py_ssize_t count = 0;
    for (Py_ssize_t n0 = 0; n0 < N || (N == 0 && count == 0); n0 += per) {
        const Py_ssize_t n = N - n0 < per ? N - n0 : per;
        loop_part *p = &part[count++];
        *p = *whole;
        p->N = n;
        p->xw = at(whole->xw, n0 * GH, size);
        p->h0 = at(whole->h0, n0 * H, size);
        p->c0 = at(whole->c0, n0 * H, size);
        p->mask = whole->mask ? whole->mask + n0 : NULL;
        p->dout = at(whole->dout, n0 * H, size);
        p->hs_in = at(whole->hs_in, n0 * H, size);
        p->cs_in = at(whole->cs_in, n0 * H, size);
        p->saved_in = at(whole->saved_in, n0 * H, size);
        p->hs = at_w(whole->hs, n0 * H, size);
        p->cs = at_w(whole->cs, n0 * H, size);
        p->saved = at_w(whole->saved, n0 * H, size);
        p->dxw = at_w(whole->dxw, n0 * GH, size);
        p->dhw = at_w(whole->dhw, n0 * GH, size);
        p->dh = at_w(whole->dh, n0 * H, size);
        p->dc = at_w(whole->dc, n0 * H, size);
        p->scratch = (char *)scratch + (n0 * scratch_per_row) * size;
        if (N == 0) break;
    }
    Py_BEGIN_ALLOW_THREADS
    const unsigned int flush_bits = get_flush();
#ifndef _WIN32
    for (Py_ssize_t k = 1; k < count; k++) {
        part[k].flush_bits = flush_bits;
        started[k] = pthread_create(&tid[k], NULL, part_thread, &part[k]) == 0;
    }
#endif
    run_part(&part[0]);
    for (Py_ssize_t k = 1; k < count; k++) {
#ifndef _WIN32
        if (started[k]) {
            pthread_join(tid[k], NULL);
            continue;
        }
#endif
        part[k].flush_bits = flush_bits;
        part_thread(&part[k]);
    }
    Py_END_ALLOW_THREADS
    aligned_free(scratch);
    return 0;
}

/* The two loop bindings' arguments before their buffers: the count, the cell code (its G and S), the n sizes
   from args[first] with is_double after them, and the thread count (the last argument, range-checked by the
   caller). Returns the cell, or -1 with an exception set. */
static int loop_arguments(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t expected, int first, int n,
                          Py_ssize_t *G, Py_ssize_t *S, Py_ssize_t *sizes, int *is_double, int *threads,
                          const char *func) {
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd arguments, got %zd", func, expected, nargs);
        return -1;
    }
    int cell = cell_shape(args[0], G, S, func);
    if (cell < 0 || parse_tail(args, first, n, sizes, is_double, func) < 0) return -1;
    *threads = (int)PyLong_AsLong(args[nargs - 1]);
    if (*threads == -1 && PyErr_Occurred()) return -1;
    return cell;
}

/* The two loop bindings' end: W_hh (whole->w) packed for the product when `pack` (forward as W_hhᵀ, backward
   as W_hh), the loop run on up to `threads` threads with scratch_per_row items of scratch a row, the argument
   buffers released. Returns None, or NULL with MemoryError set. */
static PyObject *run_loop(loop_part *whole, int pack, int threads, Py_ssize_t scratch_per_row, Py_buffer *views,
                          const int *taken, int count) {
    const int packs = pack && whole->T_;
    const Py_ssize_t w_bytes = cell_gates(whole->cell) * whole->H * whole->H * (whole->is_double ? 8 : 4);
    void *wp = NULL, *w_aligned = NULL;
    int status = -1;
    if (packs) {
        wp = pack_weight(whole->w, cell_gates(whole->cell), whole->H, whole->backward, whole->is_double);
        if (!wp) goto done;
    } else if (whole->T_ && (uintptr_t)whole->w % CACHE_LINE) { /* the few-row product reads W_hh as it is */
        w_aligned = aligned_malloc((size_t)w_bytes);
        if (!w_aligned) {
            PyErr_NoMemory();
            goto done;
        }
        memcpy(w_aligned, whole->w, (size_t)w_bytes);
        whole->w = w_aligned;
    }
    whole->wp = wp;
    status = run_parts(whole, threads, scratch_per_row);
done:
    aligned_free(wp);
    aligned_free(w_aligned);
    release_taken(views, taken, count);
    if (status < 0) return NULL;
    Py_RETURN_NONE;
}

/* sequence(cell, xw, w_hh, b_hh, h0, c0, mask, hs, cs, saved, T, N, H, is_double, packed, threads): the whole forward
   loop. cell 0 tanh RNN, 1 ReLU RNN, 2 GRU, 3 LSTM (the module's cell_codes, by kernel name); c0, cs (LSTM)
   and saved (GRU, LSTM) are None otherwise; mask is None or a (T, N) bool array (False: padding). packed:
   the recurrent product on packed weights (any batch) rather than row-by-row dot products (a few rows).
   threads: at most this many threads (see run_parts). */
static PyObject *py_sequence(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t G, S, sizes[3];
    int is_double, threads, cell = loop_arguments(args, nargs, 16, 10, 3, &G, &S, sizes, &is_double, &threads,
                                                  "sequence");
    if (cell < 0) return NULL;
    int packed = PyObject_IsTrue(args[14]);
    if (packed < 0) return NULL;
    if (threads < 1) {
        PyErr_SetString(PyExc_ValueError, "sequence: threads must be >= 1");
        return NULL;
    }
    const Py_ssize_t T_ = sizes[0], N = sizes[1], H = sizes[2];
    const Py_ssize_t size = is_double ? 8 : 4;
    /* expected items of arguments 1..9 (the mask counts bytes); 7..9 are written */
    const Py_ssize_t items[9] = {T_ * N * G * H, G * H * H, G * H, N * H, cell == CELL_LSTM ? N * H : 0,
                                 args[6] == Py_None ? 0 : T_ * N, T_ * N * H, cell == CELL_LSTM ? T_ * N * H : 0,
                                 S ? T_ * S * N * H : 0};
    const int is_bytes[9] = {0, 0, 0, 0, 0, 1, 0, 0, 0};
    Py_buffer v[9];
    int taken[9];
    if (take_optional(args + 1, 9, items, is_bytes, 6, size, v, taken, "sequence") < 0) return NULL;
#define BUF(k) (taken[k] ? v[k].buf : NULL)
    loop_part whole = {.cell = cell, .is_double = is_double, .T_ = T_, .N = N, .H = H, .ld = N, .xw = BUF(0),
                       .w = BUF(1), .b = BUF(2), .h0 = BUF(3), .c0 = BUF(4), .mask = BUF(5), .hs = BUF(6),
                       .cs = BUF(7), .saved = BUF(8)};
#undef BUF
    return run_loop(&whole, packed, threads, G * H, v, taken, 9); /* scratch: hw (rows, G·H) */
}

/* sequence_backward(cell, dout, hs, cs, h0, c0, saved, w_hh, dxw, dhw, dh, dc, T, N, H, flush_every,
   is_double, threads): BPTT's loop for a batch without padding (see the kernel). dout (T, N, H) or None; hs, cs
   (T, N, H) and h0, c0 (N, H) the states (cs, c0, dc: LSTM only); saved (T, S, N, H) (None for the Elman
   cells); w_hh (G·H, H). Written: dxw (T, N, G·H), dhw (GRU only), dh and dc (N, H): the final state's
   gradient in, the initial state's out. */
static PyObject *py_sequence_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t G, S, sizes[4];
    int is_double, threads, cell = loop_arguments(args, nargs, 18, 12, 4, &G, &S, sizes, &is_double, &threads,
                                                  "sequence_backward");
    if (cell < 0) return NULL;
    const Py_ssize_t T_ = sizes[0], N = sizes[1], H = sizes[2], flush_every = sizes[3];
    if (flush_every < 1 || threads < 1) {
        PyErr_SetString(PyExc_ValueError, "sequence_backward: flush_every and threads must be >= 1");
        return NULL;
    }
    const Py_ssize_t size = is_double ? 8 : 4, NH = N * H, lstm = cell == CELL_LSTM;
    /* arguments 1..11: dout, hs, cs, h0, c0, saved, w_hh (read); dxw, dhw, dh, dc (written) */
    const Py_ssize_t items[11] = {args[1] == Py_None ? 0 : T_ * NH, T_ * NH, lstm ? T_ * NH : 0, NH,
                                  lstm ? NH : 0, S ? T_ * S * NH : 0, G * H * H, T_ * N * G * H,
                                  cell == CELL_GRU ? T_ * N * G * H : 0, NH, lstm ? NH : 0};
    const int is_bytes[11] = {0};
    Py_buffer v[11];
    int taken[11];
    if (take_optional(args + 1, 11, items, is_bytes, 7, size, v, taken, "sequence_backward") < 0) return NULL;
#define BUF(k) (taken[k] ? v[k].buf : NULL)
    loop_part whole = {.cell = cell, .is_double = is_double, .backward = 1, .T_ = T_, .N = N, .H = H, .ld = N,
                       .flush_every = flush_every, .dout = BUF(0), .hs_in = BUF(1), .cs_in = BUF(2), .h0 = BUF(3),
                       .c0 = BUF(4), .saved_in = BUF(5), .w = BUF(6), .dxw = BUF(7), .dhw = BUF(8), .dh = BUF(9),
                       .dc = BUF(10)};
#undef BUF
    return run_loop(&whole, 1, threads, 2 * H, v, taken, 11); /* scratch: 2 (rows, H) */
}

/* recurrent_product(a, w_hh, out, backward, repeats, is_double): the time loops' recurrent product on its own,
   for the tests and benchmarks/recurrent_product.py. W_hh (G·H, H) is packed once, as the loops pack it, then
   out = a W_hhᵀ (forward: a (N, H), out (N, G·H)) or out = a W_hh (backward: a (N, G·H), out (N, H)) is
   computed `repeats` times (the loops' situation: one packing, a product per step). */
static PyObject *py_recurrent_product(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "recurrent_product: expected 6 arguments, got %zd", nargs);
        return NULL;
    }
    int backward = PyObject_IsTrue(args[3]), is_double = PyObject_IsTrue(args[5]);
    long repeats = PyLong_AsLong(args[4]);
    if (PyErr_Occurred() || backward < 0 || is_double < 0) return NULL;
    if (repeats < 1) {
        PyErr_SetString(PyExc_ValueError, "recurrent_product: repeats must be >= 1");
        return NULL;
    }
    Py_buffer v[3]; /* a, w_hh, out (written) */
    if (take_arrays(args, v, 3, 1u << 2) < 0) return NULL;
    PyObject *result = NULL;
    void *wp = NULL;
    const Py_ssize_t size = is_double ? 8 : 4;
    if (v[0].ndim != 2 || v[1].ndim != 2 || v[2].ndim != 2 || v[0].itemsize != size || v[1].itemsize != size ||
        v[2].itemsize != size) {
        PyErr_SetString(PyExc_ValueError, "recurrent_product: a, w_hh and out must be 2-d arrays of the dtype");
        goto done;
    }
    const Py_ssize_t N = v[0].shape[0], GH = v[1].shape[0], H = v[1].shape[1];
    const Py_ssize_t K = backward ? GH : H, M = backward ? H : GH;
    if (H == 0 || GH % H || v[0].shape[1] != K || v[2].shape[0] != N || v[2].shape[1] != M) {
        PyErr_SetString(PyExc_ValueError,
                        "recurrent_product: shapes do not match (a (N, K), w_hh (G·H, H), out (N, M))");
        goto done;
    }
    wp = pack_weight(v[1].buf, GH / H, H, backward, is_double);
    if (!wp) goto done;
    Py_BEGIN_ALLOW_THREADS
    for (long r = 0; r < repeats; r++) {
        if (is_double)
            gemm_packed_f64(N, K, M, v[0].buf, K, wp, v[2].buf, M);
        else
            gemm_packed_f32_best(N, K, M, v[0].buf, K, wp, v[2].buf, M);
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    aligned_free(wp);
    release_buffers(v, 3);
    return result;
}

/* project_rows(x, w, b, out, M, D, G, is_double): out (M, G) = x (M, D) wᵀ + b for w (G, D), b (G,): the
   input projection of a few rows (see the kernel). */
static PyObject *py_project_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t sizes[3];
    int is_double;
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "project_rows: expected 8 arguments, got %zd", nargs);
        return NULL;
    }
    if (parse_tail(args, 4, 3, sizes, &is_double, "project_rows") < 0) return NULL;
    const Py_ssize_t M = sizes[0], D = sizes[1], G = sizes[2], size = is_double ? 8 : 4;
    const Py_ssize_t items[4] = {M * D, G * D, G, M * G};
    Py_buffer v[4];
    if (take_buffers(args, v, items, 4, 3, size, "project_rows") < 0) return NULL;
    const Py_ssize_t scratch_items = is_double ? project_scratch_f64(M, D) : project_scratch_f32_best(M, D);
    void *scratch = aligned_malloc((size_t)(scratch_items + 1) * (size_t)size);
    if (!scratch) {
        release_buffers(v, 4);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        project_rows_f64(M, D, G, v[0].buf, v[1].buf, v[2].buf, v[3].buf, scratch);
    else
        project_rows_f32_best(M, D, G, v[0].buf, v[1].buf, v[2].buf, v[3].buf, scratch);
    Py_END_ALLOW_THREADS
    aligned_free(scratch);
    release_buffers(v, 4);
    Py_RETURN_NONE;
}

/* sum_runs(rows, order, starts, out, is_double): the embedding's gradient (see the kernel). rows (N, E),
   order (M,) int64 rows of it (the positions sorted by id, padding left out), starts (R,) int64 rising from
   0 below M, out (R, E) written. */
static PyObject *py_sum_runs(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "sum_runs: expected 5 arguments, got %zd", nargs);
        return NULL;
    }
    int is_double = PyObject_IsTrue(args[4]);
    if (is_double < 0) return NULL;
    const Py_ssize_t size = is_double ? 8 : 4;
    Py_buffer v[4]; /* rows, order, starts, out (written) */
    if (take_arrays(args, v, 4, 1u << 3) < 0) return NULL;
    PyObject *result = NULL;
    if (v[0].ndim != 2 || v[3].ndim != 2 || v[0].itemsize != size || v[3].itemsize != size ||
        v[1].itemsize != 8 || v[2].itemsize != 8 || v[3].shape[1] != v[0].shape[1] ||
        v[2].len / 8 != v[3].shape[0]) {
        PyErr_SetString(PyExc_ValueError, "sum_runs: expected rows (N, E), order (M,), starts (R,), out (R, E)");
        goto done;
    }
    const Py_ssize_t N = v[0].shape[0], M = v[1].len / 8, E = v[0].shape[1], R = v[3].shape[0];
    const int64_t *order = v[1].buf, *starts = v[2].buf;
    for (Py_ssize_t r = 0; r < R; r++)
        if (starts[r] < 0 || starts[r] >= M || (r ? starts[r] <= starts[r - 1] : starts[r] != 0)) {
            PyErr_SetString(PyExc_ValueError, "sum_runs: starts must rise from 0 and stay below len(order)");
            goto done;
        }
    for (Py_ssize_t i = 0; i < M; i++)
        if (order[i] < 0 || order[i] >= N) {
            PyErr_SetString(PyExc_IndexError, "sum_runs: order holds a row outside rows");
            goto done;
        }
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        sum_runs_f64(M, R, E, v[0].buf, order, starts, v[3].buf);
    else
        sum_runs_f32_best(M, R, E, v[0].buf, order, starts, v[3].buf);
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    release_buffers(v, 4);
    return result;
}

/* adam_rows(p, m, v, idx, dw, decay, wd_scale, one_minus_b1, one_minus_b2, eps, neg_step, is_double): sparse
   Adam's update of the rows idx (int64, unique) of p, m, v (each (V, E), written) with dw (R, E); see the
   kernel. The constants are those optim.Adam._adam_rows multiplies by, already in the arrays' dtype. */
static PyObject *py_adam_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 12) {
        PyErr_Format(PyExc_TypeError, "adam_rows: expected 12 arguments, got %zd", nargs);
        return NULL;
    }
    int decay = (int)PyLong_AsLong(args[5]);
    double consts[5];
    for (int k = 0; k < 5; k++) consts[k] = PyFloat_AsDouble(args[6 + k]);
    int is_double = PyObject_IsTrue(args[11]);
    if (PyErr_Occurred() || is_double < 0) return NULL;
    if (decay < 0 || decay > 2) {
        PyErr_SetString(PyExc_ValueError, "adam_rows: decay must be 0, 1 or 2");
        return NULL;
    }
    Py_buffer v[5]; /* p, m, v (written), idx, dw */
    if (take_arrays(args, v, 5, 7u) < 0) return NULL;
    PyObject *result = NULL;
    const Py_ssize_t size = is_double ? 8 : 4;
    if (v[0].ndim != 2 || v[1].len != v[0].len || v[2].len != v[0].len || v[0].itemsize != size ||
        v[3].itemsize != 8 || v[4].itemsize != size || v[4].ndim != 2 || v[4].shape[1] != v[0].shape[1] ||
        v[4].shape[0] * 8 != v[3].len) {
        PyErr_SetString(PyExc_ValueError, "adam_rows: expected p, m, v (V, E), idx (R,) int64, dw (R, E)");
        goto done;
    }
    const Py_ssize_t V = v[0].shape[0], E = v[0].shape[1], R = v[3].len / 8;
    const int64_t *idx = v[3].buf;
    for (Py_ssize_t r = 0; r < R; r++)
        if (idx[r] < 0 || idx[r] >= V) {
            PyErr_Format(PyExc_IndexError, "adam_rows: row %lld outside [0, %zd)", (long long)idx[r], V);
            goto done;
        }
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        adam_rows_f64(R, E, v[0].buf, v[1].buf, v[2].buf, idx, v[4].buf, decay, consts[0], consts[1], consts[2],
                      consts[3], consts[4]);
    else
        adam_rows_f32_best(R, E, v[0].buf, v[1].buf, v[2].buf, idx, v[4].buf, decay, (float)consts[0],
                      (float)consts[1], (float)consts[2], (float)consts[3], (float)consts[4]);
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    release_buffers(v, 5);
    return result;
}

/* The buffers of an element-wise binding's (src, out) arguments: src C-contiguous, out C-contiguous and
   writable, with src_item bytes of src to every out_item bytes of out. 0, or -1 with a TypeError of
   count_error (not two arguments) or a ValueError of size_error set. */
static int take_src_out(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t src_item, Py_ssize_t out_item,
                        Py_buffer *src, Py_buffer *out, const char *count_error, const char *size_error) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, count_error);
        return -1;
    }
    if (PyObject_GetBuffer(args[0], src, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (PyObject_GetBuffer(args[1], out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(src);
        return -1;
    }
    if (src->len % src_item || out->len != src->len / src_item * out_item) {
        PyBuffer_Release(src);
        PyBuffer_Release(out);
        PyErr_SetString(PyExc_ValueError, size_error);
        return -1;
    }
    return 0;
}

/* Element-wise float32 sigmoid and tanh over a whole buffer, for the accuracy tests: (x, out). */
static PyObject *py_math_f32(PyObject *const *args, Py_ssize_t nargs, int which) {
    Py_buffer x, out;
    if (take_src_out(args, nargs, 4, 4, &x, &out, "expected (x, out)",
                     "x and out: float32 buffers of one size expected") < 0)
        return NULL;
    const float *xs = x.buf;
    float *ys = out.buf;
    for (Py_ssize_t k = 0; k < x.len / 4; k++) ys[k] = which ? tanh_f32(xs[k]) : sigmoid_f32(xs[k]);
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* float16_to_float32(src, out): src a C-contiguous buffer of float16 (or uint16) items, out a float32 buffer
   of as many items; out[k] = src[k] exactly (a NaN stays a NaN; F16C sets its quiet bit). */
static PyObject *py_float16_to_float32(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer src, out;
    if (take_src_out(args, nargs, 2, 4, &src, &out, "float16_to_float32(src, out): two arguments",
                     "float16_to_float32: src of 2-byte items and out of as many float32") < 0)
        return NULL;
    halves_best(src.len / 2, src.buf, out.buf);
    PyBuffer_Release(&src);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* set_gradient_floor(value) -> the previous value: the float32 gradient floor (see above). */
static PyObject *py_set_gradient_floor(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "set_gradient_floor(value): one argument");
        return NULL;
    }
    double value = PyFloat_AsDouble(args[0]);
    if (value == -1.0 && PyErr_Occurred()) return NULL;
    if (!(value >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "set_gradient_floor: the floor must be a number >= 0");
        return NULL;
    }
    double previous = gradient_floor_f32;
    gradient_floor_f32 = (float)value;
    return PyFloat_FromDouble(previous);
}

static PyObject *py_sigmoid_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    return py_math_f32(args, nargs, 0);
}
static PyObject *py_tanh_f32(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    return py_math_f32(args, nargs, 1);
}

/* ---- flush-to-zero: subnormal floats as zero, in this thread's SSE control register ---------------- */

/* Both FTZ (results that would be subnormal become zero) and DAZ (subnormal inputs read as zero) bits of
   MXCSR; on Intel CPUs each operation on a subnormal otherwise takes a microcode assist (~100 cycles). */
#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define FLUSH_BITS 0x8040u /* FTZ (bit 15) | DAZ (bit 6) */
static int flush_supported = 1;
static unsigned int get_flush(void) { return _mm_getcsr() & FLUSH_BITS; }
static void set_flush(unsigned int bits) { _mm_setcsr((_mm_getcsr() & ~FLUSH_BITS) | (bits & FLUSH_BITS)); }
#else
#define FLUSH_BITS 0u
static int flush_supported = 0;
static unsigned int get_flush(void) { return 0; }
static void set_flush(unsigned int bits) { (void)bits; }
#endif

/* flush_subnormals(bits) -> the previous bits: sets the FTZ/DAZ bits of the calling thread's MXCSR to
   ``bits`` (flush_bits for both, 0 for none, or what an earlier call returned); no-op off x86-64. */
static PyObject *py_flush_subnormals(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "flush_subnormals(setting): one argument");
        return NULL;
    }
    long setting = PyLong_AsLong(args[0]);
    if (setting == -1 && PyErr_Occurred()) return NULL;
    unsigned int previous = get_flush();
    set_flush((unsigned int)setting);
    return PyLong_FromUnsignedLong(previous);
}

static PyMethodDef methods[] = {
    {"flush_subnormals", (PyCFunction)(void (*)(void))py_flush_subnormals, METH_FASTCALL, NULL},
    {"rnn_tanh_forward", (PyCFunction)(void (*)(void))py_rnn_tanh_forward, METH_FASTCALL, NULL},
    {"rnn_relu_forward", (PyCFunction)(void (*)(void))py_rnn_relu_forward, METH_FASTCALL, NULL},
    {"rnn_tanh_backward", (PyCFunction)(void (*)(void))py_rnn_tanh_backward, METH_FASTCALL, NULL},
    {"rnn_relu_backward", (PyCFunction)(void (*)(void))py_rnn_relu_backward, METH_FASTCALL, NULL},
    {"lstm_forward", (PyCFunction)(void (*)(void))py_lstm_forward, METH_FASTCALL, NULL},
    {"lstm_backward", (PyCFunction)(void (*)(void))py_lstm_backward, METH_FASTCALL, NULL},
    {"gru_forward", (PyCFunction)(void (*)(void))py_gru_forward, METH_FASTCALL, NULL},
    {"gru_backward", (PyCFunction)(void (*)(void))py_gru_backward, METH_FASTCALL, NULL},
    {"sequence", (PyCFunction)(void (*)(void))py_sequence, METH_FASTCALL, NULL},
    {"recurrent_product", (PyCFunction)(void (*)(void))py_recurrent_product, METH_FASTCALL, NULL},
    {"sum_runs", (PyCFunction)(void (*)(void))py_sum_runs, METH_FASTCALL, NULL},
    {"project_rows", (PyCFunction)(void (*)(void))py_project_rows, METH_FASTCALL, NULL},
    {"adam_rows", (PyCFunction)(void (*)(void))py_adam_rows, METH_FASTCALL, NULL},
    {"sequence_backward", (PyCFunction)(void (*)(void))py_sequence_backward, METH_FASTCALL, NULL},
    {"set_gradient_floor", (PyCFunction)(void (*)(void))py_set_gradient_floor, METH_FASTCALL, NULL},
    {"sigmoid_f32", (PyCFunction)(void (*)(void))py_sigmoid_f32, METH_FASTCALL, NULL},
    {"tanh_f32", (PyCFunction)(void (*)(void))py_tanh_f32, METH_FASTCALL, NULL},
    {"float16_to_float32", (PyCFunction)(void (*)(void))py_float16_to_float32, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused", "Fused element-wise GRU/LSTM step kernels.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__fused(void) {
    pick_kernels();
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    /* sequence's cell codes by kernel name, so that nn/fused.py need not repeat them */
    PyObject *codes = Py_BuildValue("{s:i,s:i,s:i,s:i}", "rnn_tanh", CELL_RNN_TANH, "rnn_relu", CELL_RNN_RELU,
                                    "gru", CELL_GRU, "lstm", CELL_LSTM);
    PyObject *floor = PyFloat_FromDouble(gradient_floor_f32); /* the initial value, 2^-100 */
    if (!codes || !floor || PyModule_AddObjectRef(m, "cell_codes", codes) < 0 ||
        PyModule_AddStringConstant(m, "instruction_set", instruction_set) < 0 ||
        PyModule_AddIntConstant(m, "flush_supported", flush_supported) < 0 ||
        PyModule_AddIntConstant(m, "flush_bits", FLUSH_BITS) < 0 ||
        PyModule_AddIntConstant(m, "rows_per_thread", ROWS_PER_THREAD) < 0 ||
        PyModule_AddObjectRef(m, "default_gradient_floor", floor) < 0) {
        Py_XDECREF(codes);
        Py_XDECREF(floor);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(codes);
    Py_DECREF(floor);
    return m;
}
