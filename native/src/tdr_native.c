/*
 * tdr-native: conv2d (forward, backprop filter, backprop input) and matmul on NHWC float32 buffers
 * through OpenBLAS sgemm, for tdr's wasm backend (the buffers are views of the wasm heap; nothing is
 * copied in or out). im2col per image into a grow-only thread-local scratch buffer; one OpenBLAS
 * thread per call (tdr's data-parallel workers use the other cores).
 *
 * Concurrent sgemm calls (two data-parallel Node worker threads) are safe only when OpenBLAS takes its
 * packing buffers under a lock. Its pthreads build does (blas_memory_alloc locks its buffer table); a
 * single-threaded build without USE_LOCKING does not: two calls at once can take the same buffer and
 * pack over each other's A and B. Linked against Debian's libopenblas0-serial 0.3.21 without a lock,
 * the demo T2I stage with two workers went from gradient norm 0.56 to 5192 at its second step (32 of
 * 97,280 sgemm calls wrong in 10 steps, caught by TDR_NATIVE_VERIFY=1); against Debian's
 * libopenblas0-pthread 0.3.21 the same run was right (0 of 1,410,560 calls wrong in 170 steps; the
 * losses and gradient norms of one worker within 1e-5). docs/experiments.md §1 has the commands.
 * So the lock is decided once per process at load (decide_gemm_lock): concurrent with a pthreads
 * build, or a single-threaded one whose openblas_get_config() says USE_LOCKING (OpenBLAS ≥ 0.3.28
 * prints it); one sgemm at a time with any other build (single-threaded without USE_LOCKING, OpenMP),
 * and whenever more than one OpenBLAS thread per call is set. Env TDR_NATIVE_GEMM_LOCK=1|0 forces it
 * (for diagnosis; 0 is wrong with a build that needs the lock). im2col/col2im and every non-GEMM op
 * always run in parallel.
 */
#include <node_api.h>
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <pthread.h>

/* ---------------------------------------------------------------------------------------------
 * When sgemm calls are serialised (see the header): decided once per process at the first load.
 */
static pthread_mutex_t gemm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t gemm_once = PTHREAD_ONCE_INIT;
static int gemm_serialise = 1;      /* the library's buffer allocation is not known to be thread-safe */
static const char *gemm_why = "";   /* one line, for gemmLock() */
static int blas_threads = 1;        /* the last openblas_set_num_threads (process-wide, like OpenBLAS's own) */

static void decide_gemm_lock(void) {
  const char *env = getenv("TDR_NATIVE_GEMM_LOCK");
  if (env && (strcmp(env, "0") == 0 || strcmp(env, "1") == 0)) {
    gemm_serialise = env[0] == '1';
    gemm_why = gemm_serialise ? "serialised (TDR_NATIVE_GEMM_LOCK=1)" : "concurrent (TDR_NATIVE_GEMM_LOCK=0: unsafe with a single-threaded OpenBLAS)";
    return;
  }
  const int parallel = openblas_get_parallel(); /* 0 single-threaded build, 1 pthreads, 2 OpenMP */
  if (parallel == 1) {
    gemm_serialise = 0;
    gemm_why = "concurrent (pthreads build of OpenBLAS: its GEMM buffers are taken under a lock)";
  } else if (parallel == 0 && strstr(openblas_get_config(), "USE_LOCKING") != NULL) {
    gemm_serialise = 0;
    gemm_why = "concurrent (single-threaded OpenBLAS built with USE_LOCKING)";
  } else if (parallel == 0) {
    gemm_why = "serialised (single-threaded OpenBLAS without USE_LOCKING: concurrent calls share GEMM buffers)";
  } else {
    gemm_why = "serialised (OpenMP build of OpenBLAS: concurrent calls from non-OpenMP threads not checked)";
  }
}

/* Diagnosis only (env TDR_NATIVE_VERIFY=1): after every sgemm, 32 sampled entries of C are recomputed
 * in double from A and B (and C's old value when beta != 0); a mismatch is printed (the first 20) and
 * counted, and the totals are printed at exit. This is how the shared-buffer race was seen. */
static int gemm_verify = 0;
static unsigned long gemm_calls = 0, gemm_bad = 0;
static _Thread_local unsigned int verify_seed = 12345;

static void verify_report(void) {
  fprintf(stderr, "tdr-native verify: %lu sgemm calls checked, %lu wrong; sgemm %s\n", gemm_calls, gemm_bad, gemm_why);
}

static void sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  enum { S = 32 };
  int ri[S], ci[S];
  float old[S];
  if (gemm_verify)
    for (int s = 0; s < S; s++) {
      verify_seed = verify_seed * 1664525u + 1013904223u;
      ri[s] = (int)((verify_seed >> 8) % (unsigned)M);
      verify_seed = verify_seed * 1664525u + 1013904223u;
      ci[s] = (int)((verify_seed >> 8) % (unsigned)N);
      old[s] = C[(size_t)ri[s] * ldc + ci[s]];
    }
  /* more than one OpenBLAS thread per call: serialised too (its threaded level-3 path had races between
   * concurrent callers fixed after 0.3.21; and the GEMM already uses the cores) */
  const int lock = gemm_serialise || __atomic_load_n(&blas_threads, __ATOMIC_RELAXED) > 1;
  if (lock) pthread_mutex_lock(&gemm_lock);
  cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (lock) pthread_mutex_unlock(&gemm_lock);
  if (!gemm_verify) return;
  const unsigned long call = __atomic_add_fetch(&gemm_calls, 1, __ATOMIC_RELAXED);
  for (int s = 0; s < S; s++) {
    const int i = ri[s], j = ci[s];
    double acc = 0, mag = 0;
    for (int k = 0; k < K; k++) {
      const double a = ta == CblasNoTrans ? A[(size_t)i * lda + k] : A[(size_t)k * lda + i];
      const double b = tb == CblasNoTrans ? B[(size_t)k * ldb + j] : B[(size_t)j * ldb + k];
      acc += a * b;
      mag += a * b < 0 ? -a * b : a * b;
    }
    const double want = alpha * acc + (beta != 0 ? beta * old[s] : 0);
    const double got = C[(size_t)i * ldc + j];
    const double tol = 1e-4 * (mag + (beta != 0 ? (old[s] < 0 ? -old[s] : old[s]) : 0)) + 1e-6;
    if (!(got - want <= tol && want - got <= tol)) {
      if (__atomic_add_fetch(&gemm_bad, 1, __ATOMIC_RELAXED) <= 20)
        fprintf(stderr, "tdr-native verify: wrong sgemm M=%d N=%d K=%d transA=%d transB=%d beta=%g at (%d,%d): %g, expected %g (call %lu)\n", M, N, K, ta == CblasTrans, tb == CblasTrans, beta, i, j, got, want, call);
      break;
    }
  }
}
/* every call site is row-major */
#define SGEMM(order, ...) sgemm(__VA_ARGS__)

static _Thread_local float *scratch = NULL;
static _Thread_local size_t scratch_len = 0;

static float *need_scratch(size_t n) {
  if (n > scratch_len) {
    free(scratch);
    scratch = (float *)malloc(n * sizeof(float));
    scratch_len = scratch ? n : 0;
  }
  return scratch;
}

#define CHECK(env, cond, msg)                     \
  do {                                            \
    if (!(cond)) {                                \
      napi_throw_error((env), NULL, (msg));       \
      return NULL;                                \
    }                                             \
  } while (0)

static int get_f32(napi_env env, napi_value v, float **data, size_t *len) {
  napi_typedarray_type type;
  size_t length;
  void *ptr;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, &ab, &off) != napi_ok) return 0;
  if (type != napi_float32_array) return 0;
  *data = (float *)ptr;
  *len = length;
  return 1;
}

static int get_i(napi_env env, napi_value v, int *out) {
  int32_t x;
  if (napi_get_value_int32(env, v, &x) != napi_ok) return 0;
  *out = x;
  return 1;
}

/* im2col of one NHWC image: col[(oy*wo+ox), (a*fw+b)*ci + c] = x[sy*oy+a-pt, sx*ox+b-pl, c] or 0 */
static void im2col(const float *x, int h, int w, int ci, int fh, int fw, int sy, int sx, int pt, int pl, int ho, int wo, float *col) {
  const int k = fh * fw * ci;
  for (int oy = 0; oy < ho; oy++)
    for (int ox = 0; ox < wo; ox++) {
      float *row = col + ((size_t)oy * wo + ox) * k;
      for (int a = 0; a < fh; a++) {
        const int iy = sy * oy + a - pt;
        for (int b = 0; b < fw; b++) {
          const int ix = sx * ox + b - pl;
          float *dst = row + (a * fw + b) * ci;
          if (iy < 0 || iy >= h || ix < 0 || ix >= w) memset(dst, 0, ci * sizeof(float));
          else memcpy(dst, x + ((size_t)iy * w + ix) * ci, ci * sizeof(float));
        }
      }
    }
}

/* col2im (accumulate): dx[iy, ix, c] += col[(oy*wo+ox), (a*fw+b)*ci + c] */
static void col2im(const float *col, int h, int w, int ci, int fh, int fw, int sy, int sx, int pt, int pl, int ho, int wo, float *dx) {
  const int k = fh * fw * ci;
  for (int oy = 0; oy < ho; oy++)
    for (int ox = 0; ox < wo; ox++) {
      const float *row = col + ((size_t)oy * wo + ox) * k;
      for (int a = 0; a < fh; a++) {
        const int iy = sy * oy + a - pt;
        if (iy < 0 || iy >= h) continue;
        for (int b = 0; b < fw; b++) {
          const int ix = sx * ox + b - pl;
          if (ix < 0 || ix >= w) continue;
          const float *src = row + (a * fw + b) * ci;
          float *dst = dx + ((size_t)iy * w + ix) * ci;
          for (int c = 0; c < ci; c++) dst[c] += src[c];
        }
      }
    }
}

/*
 * Every conv entry point takes 16 arguments:
 *   (buf0, n,h,w,ci, buf1, fh,fw,co, sy,sx, pt,pl, ho,wo, buf2)
 * and each buffer plays one of three roles, which fixes the size it must have:
 *   IN     [n,h,w,ci]        x or dx
 *   FILTER [fh,fw,ci,co]     the filter or its gradient (depthwise: co = channel multiplier M)
 *   OUT    [n,ho,wo,oc]      y or dy, oc = co (conv2d) or ci·co (depthwise)
 */
enum role { IN, FILTER, OUT };

typedef struct {
  float *p[3];
  int n, h, w, ci, fh, fw, co, sy, sx, pt, pl, ho, wo;
} conv_call;

static size_t role_size(const conv_call *c, enum role r, int depthwise) {
  switch (r) {
    case IN: return (size_t)c->n * c->h * c->w * c->ci;
    case FILTER: return (size_t)c->fh * c->fw * c->ci * c->co;
    default: return (size_t)c->n * c->ho * c->wo * (depthwise ? c->ci * c->co : c->co);
  }
}

/* Parse and check one call; on failure throws a JS error naming `fn` and returns 0. */
static int parse_conv(napi_env env, napi_callback_info info, const char *fn, const enum role roles[3], int depthwise, conv_call *c) {
  char msg[160];
  napi_value a[16];
  size_t argc = 16;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  const char *err = NULL;
  int *dims[13] = {&c->n, &c->h, &c->w, &c->ci, &c->fh, &c->fw, &c->co, &c->sy, &c->sx, &c->pt, &c->pl, &c->ho, &c->wo};
  const int at[13] = {1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  const int bufAt[3] = {0, 5, 15};
  if (argc != 16) err = "16 arguments expected";
  for (int i = 0; !err && i < 13; i++)
    if (!get_i(env, a[at[i]], dims[i])) err = "integer arguments expected";
  for (int i = 0; !err && i < 3; i++) {
    size_t len;
    if (!get_f32(env, a[bufAt[i]], &c->p[i], &len)) err = "Float32Array buffers expected";
    else if (len < role_size(c, roles[i], depthwise)) err = "a buffer is too small";
  }
  if (!err) return 1;
  snprintf(msg, sizeof msg, "tdr-native %s: %s", fn, err);
  napi_throw_error(env, NULL, msg);
  return 0;
}

/* a 1×1 stride-1 unpadded conv is one GEMM over all pixels, no im2col */
static int is_pointwise(const conv_call *c) {
  return c->fh == 1 && c->fw == 1 && c->sy == 1 && c->sx == 1 && c->pt == 0 && c->pl == 0 && c->ho == c->h && c->wo == c->w;
}

#define IM2COL(c, x, col) im2col((x), (c)->h, (c)->w, (c)->ci, (c)->fh, (c)->fw, (c)->sy, (c)->sx, (c)->pt, (c)->pl, (c)->ho, (c)->wo, (col))
#define COL2IM(c, col, dx) col2im((col), (c)->h, (c)->w, (c)->ci, (c)->fh, (c)->fw, (c)->sy, (c)->sx, (c)->pt, (c)->pl, (c)->ho, (c)->wo, (dx))

/* conv2dForward(x, n,h,w,ci, filter[fh,fw,ci,co], fh,fw,co, sy,sx, pt,pl, ho,wo, out[n,ho,wo,co]) */
static napi_value Conv2dForward(napi_env env, napi_callback_info info) {
  static const enum role roles[3] = {IN, FILTER, OUT};
  conv_call c;
  if (!parse_conv(env, info, "conv2dForward", roles, 0, &c)) return NULL;
  const float *x = c.p[0], *f = c.p[1];
  float *out = c.p[2];
  const int k = c.fh * c.fw * c.ci, m = c.ho * c.wo, co = c.co;
  if (is_pointwise(&c)) {
    SGEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, c.n * m, co, c.ci, 1.0f, x, c.ci, f, co, 0.0f, out, co);
    return NULL;
  }
  float *col = need_scratch((size_t)m * k);
  CHECK(env, col, "tdr-native: out of memory");
  for (int i = 0; i < c.n; i++) {
    IM2COL(&c, x + (size_t)i * c.h * c.w * c.ci, col);
    SGEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, co, k, 1.0f, col, k, f, co, 0.0f, out + (size_t)i * m * co, co);
  }
  return NULL;
}

/* conv2dBackpropFilter(x, n,h,w,ci, dy[n,ho,wo,co], fh,fw,co, sy,sx, pt,pl, ho,wo, dw[fh,fw,ci,co]) */
static napi_value Conv2dBackpropFilter(napi_env env, napi_callback_info info) {
  static const enum role roles[3] = {IN, OUT, FILTER};
  conv_call c;
  if (!parse_conv(env, info, "conv2dBackpropFilter", roles, 0, &c)) return NULL;
  const float *x = c.p[0], *dy = c.p[1];
  float *dw = c.p[2];
  const int k = c.fh * c.fw * c.ci, m = c.ho * c.wo, co = c.co;
  if (is_pointwise(&c)) {
    SGEMM(CblasRowMajor, CblasTrans, CblasNoTrans, c.ci, co, c.n * m, 1.0f, x, c.ci, dy, co, 0.0f, dw, co);
    return NULL;
  }
  float *col = need_scratch((size_t)m * k);
  CHECK(env, col, "tdr-native: out of memory");
  for (int i = 0; i < c.n; i++) {
    IM2COL(&c, x + (size_t)i * c.h * c.w * c.ci, col);
    SGEMM(CblasRowMajor, CblasTrans, CblasNoTrans, k, co, m, 1.0f, col, k, dy + (size_t)i * m * co, co, i == 0 ? 0.0f : 1.0f, dw, co);
  }
  return NULL;
}

/* conv2dBackpropInput(dy, n,h,w,ci, filter[fh,fw,ci,co], fh,fw,co, sy,sx, pt,pl, ho,wo, dx[n,h,w,ci]) */
static napi_value Conv2dBackpropInput(napi_env env, napi_callback_info info) {
  static const enum role roles[3] = {OUT, FILTER, IN};
  conv_call c;
  if (!parse_conv(env, info, "conv2dBackpropInput", roles, 0, &c)) return NULL;
  const float *dy = c.p[0], *f = c.p[1];
  float *dx = c.p[2];
  const int k = c.fh * c.fw * c.ci, m = c.ho * c.wo, co = c.co;
  if (is_pointwise(&c)) {
    SGEMM(CblasRowMajor, CblasNoTrans, CblasTrans, c.n * m, c.ci, co, 1.0f, dy, co, f, co, 0.0f, dx, c.ci);
    return NULL;
  }
  float *col = need_scratch((size_t)m * k);
  CHECK(env, col, "tdr-native: out of memory");
  memset(dx, 0, role_size(&c, IN, 0) * sizeof(float));
  for (int i = 0; i < c.n; i++) {
    SGEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, co, 1.0f, dy + (size_t)i * m * co, co, f, co, 0.0f, col, k);
    COL2IM(&c, col, dx + (size_t)i * c.h * c.w * c.ci);
  }
  return NULL;
}

/* matmul(a, b, out, batch, m, n, k, transA, transB): out[b] = op(a[b]) · op(b[b]); a/b batch 1 broadcasts */
static napi_value MatMul(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value a[11];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  CHECK(env, argc == 11, "tdr-native matmul: wrong number of arguments");
  float *A, *B, *C;
  size_t la, lb, lc;
  CHECK(env, get_f32(env, a[0], &A, &la) && get_f32(env, a[1], &B, &lb) && get_f32(env, a[2], &C, &lc), "tdr-native matmul: Float32Array buffers expected");
  int batch, m, n, k, ta, tb, ba, bb;
  bool bta, btb;
  CHECK(env, get_i(env, a[3], &batch) && get_i(env, a[4], &m) && get_i(env, a[5], &n) && get_i(env, a[6], &k) && get_i(env, a[9], &ba) && get_i(env, a[10], &bb), "tdr-native matmul: integer arguments expected");
  CHECK(env, napi_get_value_bool(env, a[7], &bta) == napi_ok && napi_get_value_bool(env, a[8], &btb) == napi_ok, "tdr-native matmul: boolean transpose flags expected");
  ta = bta;
  tb = btb;
  CHECK(env, la >= (size_t)ba * m * k && lb >= (size_t)bb * k * n && lc >= (size_t)batch * m * n, "tdr-native matmul: a buffer is too small");
  for (int i = 0; i < batch; i++) {
    const float *ai = A + (size_t)(ba == 1 ? 0 : i) * m * k;
    const float *bi = B + (size_t)(bb == 1 ? 0 : i) * k * n;
    SGEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, ai, ta ? m : k, bi, tb ? k : n, 0.0f, C + (size_t)i * m * n, n);
  }
  return NULL;
}


/* ---------------------------------------------------------------------------------------------
 * Depthwise convolution, NHWC, filter [fh,fw,C,M], output channel c·M+m; direct loops (no GEMM).
 * One walker over every (image, output pixel, filter tap inside the input) serves all three:
 *   forward          out[o] += x[i]  · f[t]     (accumulate per output channel)
 *   backprop filter  dw[t]  += x[i]  · dy[o]    (the same form)
 *   backprop input   dx[i]  += Σ_m dy[o] · f[t] (accumulate per input channel)
 * with o, i, t the output-pixel, input-pixel and tap offsets.
 */
enum dw_mode { DW_FORWARD, DW_FILTER, DW_INPUT };

static inline __attribute__((always_inline)) void dw_walk(const enum dw_mode mode, const conv_call *c) {
  /* everything in locals: node-gyp builds with -fno-strict-aliasing, so a float store would
   * otherwise force reloading every field of *c inside the loops */
  const int n = c->n, h = c->h, w = c->w, C = c->ci, M = c->co, fh = c->fh, fw = c->fw;
  const int sy = c->sy, sx = c->sx, pt = c->pt, pl = c->pl, ho = c->ho, wo = c->wo;
  const int cm = C * M;
  const float *p0 = c->p[0], *p1 = c->p[1];
  float *acc0 = c->p[2];
  memset(acc0, 0, role_size(c, mode == DW_FORWARD ? OUT : mode == DW_FILTER ? FILTER : IN, 1) * sizeof(float));
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < ho; oy++)
      for (int ox = 0; ox < wo; ox++) {
        const size_t o = (((size_t)b * ho + oy) * wo + ox) * cm;
        for (int ky = 0; ky < fh; ky++) {
          const int iy = sy * oy + ky - pt;
          if (iy < 0 || iy >= h) continue;
          for (int kx = 0; kx < fw; kx++) {
            const int ix = sx * ox + kx - pl;
            if (ix < 0 || ix >= w) continue;
            const size_t i = (((size_t)b * h + iy) * w + ix) * C;
            const size_t t = ((size_t)ky * fw + kx) * cm;
            if (mode == DW_INPUT) {
              /* p0 = dy, p1 = filter */
              float *restrict acc = acc0 + i;
              const float *restrict g = p0 + o, *restrict f = p1 + t;
              if (M == 1) for (int k = 0; k < C; k++) acc[k] += g[k] * f[k];
              else for (int k = 0; k < C; k++) for (int m = 0; m < M; m++) acc[k] += g[k * M + m] * f[k * M + m];
            } else {
              /* forward: p0 = x, p1 = filter → out[o]; filter: p0 = x, p1 = dy → dw[t] */
              float *restrict acc = acc0 + (mode == DW_FORWARD ? o : t);
              const float *restrict xi = p0 + i, *restrict v = p1 + (mode == DW_FORWARD ? t : o);
              if (M == 1) for (int k = 0; k < C; k++) acc[k] += xi[k] * v[k];
              else for (int k = 0; k < C; k++) for (int m = 0; m < M; m++) acc[k * M + m] += xi[k] * v[k * M + m];
            }
          }
        }
      }
}

/* depthwiseForward(x, n,h,w,c, filter, fh,fw,M, sy,sx, pt,pl, ho,wo, out[n,ho,wo,c·M]) */
static napi_value DepthwiseForward(napi_env env, napi_callback_info info) {
  static const enum role roles[3] = {IN, FILTER, OUT};
  conv_call c;
  if (parse_conv(env, info, "depthwiseForward", roles, 1, &c)) dw_walk(DW_FORWARD, &c);
  return NULL;
}

/* depthwiseBackpropFilter(x, n,h,w,c, dy, fh,fw,M, sy,sx, pt,pl, ho,wo, dw[fh,fw,c,M]) */
static napi_value DepthwiseBackpropFilter(napi_env env, napi_callback_info info) {
  static const enum role roles[3] = {IN, OUT, FILTER};
  conv_call c;
  if (parse_conv(env, info, "depthwiseBackpropFilter", roles, 1, &c)) dw_walk(DW_FILTER, &c);
  return NULL;
}

/* depthwiseBackpropInput(dy, n,h,w,c, filter, fh,fw,M, sy,sx, pt,pl, ho,wo, dx[n,h,w,c]) */
static napi_value DepthwiseBackpropInput(napi_env env, napi_callback_info info) {
  static const enum role roles[3] = {OUT, FILTER, IN};
  conv_call c;
  if (parse_conv(env, info, "depthwiseBackpropInput", roles, 1, &c)) dw_walk(DW_INPUT, &c);
  return NULL;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int t = 1;
  if (argc == 1) get_i(env, a[0], &t);
  t = t < 1 ? 1 : t;
  openblas_set_num_threads(t);
  __atomic_store_n(&blas_threads, t, __ATOMIC_RELAXED);
  return NULL;
}

static napi_value Config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &s);
  return s;
}

/* gemmLock(): whether this process serialises its sgemm calls, and why (one line) */
static napi_value GemmLock(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  napi_create_string_utf8(env, gemm_why, NAPI_AUTO_LENGTH, &s);
  return s;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"conv2dForward", NULL, Conv2dForward, NULL, NULL, NULL, napi_default, NULL},
      {"conv2dBackpropFilter", NULL, Conv2dBackpropFilter, NULL, NULL, NULL, napi_default, NULL},
      {"conv2dBackpropInput", NULL, Conv2dBackpropInput, NULL, NULL, NULL, napi_default, NULL},
      {"matmul", NULL, MatMul, NULL, NULL, NULL, napi_default, NULL},
      {"depthwiseForward", NULL, DepthwiseForward, NULL, NULL, NULL, napi_default, NULL},
      {"depthwiseBackpropFilter", NULL, DepthwiseBackpropFilter, NULL, NULL, NULL, napi_default, NULL},
      {"depthwiseBackpropInput", NULL, DepthwiseBackpropInput, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, Config, NULL, NULL, NULL, napi_default, NULL},
      {"gemmLock", NULL, GemmLock, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  pthread_once(&gemm_once, decide_gemm_lock);
  {
    static int verify_once = 0;
    const char *v = getenv("TDR_NATIVE_VERIFY");
    if (v && strcmp(v, "1") == 0 && !__atomic_exchange_n(&verify_once, 1, __ATOMIC_RELAXED)) {
      gemm_verify = 1;
      atexit(verify_report);
    }
  }
  openblas_set_num_threads(1);
  __atomic_store_n(&blas_threads, 1, __ATOMIC_RELAXED);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
