/*
 * tdr-native: conv2d (forward, backprop filter, backprop input) and matmul on NHWC float32 buffers
 * through OpenBLAS sgemm, for tdr's wasm backend (the buffers are views of the wasm heap; nothing is
 * copied in or out). im2col per image into a grow-only thread-local scratch buffer; one OpenBLAS
 * thread per call (tdr's data-parallel workers use the other cores).
 *
 * sgemm calls are serialised by one process-wide lock: concurrent cblas_sgemm from two Node worker
 * threads gave wrong results with Debian's OpenBLAS 0.3.21 (pthread build) — the demo T2I's gradient
 * norm went from 0.6 to 1e6 with two workers, and was right with the lock or with one worker —
 * although the same concurrent calls from plain pthreads in C were right. im2col/col2im and every
 * non-GEMM op still run in parallel.
 */
#include <node_api.h>
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
static pthread_mutex_t gemm_lock = PTHREAD_MUTEX_INITIALIZER;
/* see the header: one sgemm at a time per process */
#define SGEMM(...) do { pthread_mutex_lock(&gemm_lock); cblas_sgemm(__VA_ARGS__); pthread_mutex_unlock(&gemm_lock); } while (0)

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

/* args: x, n,h,w,ci, filter, fh,fw,co, sy,sx, pt,pl, ho,wo, out  (16) */
static napi_value conv_args(napi_env env, napi_callback_info info, napi_value *argv, size_t want) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != want) {
    napi_throw_error(env, NULL, "tdr-native: wrong number of arguments");
    return NULL;
  }
  return argv[0];
}

static int conv_dims(napi_env env, napi_value *a, int *d) {
  /* d: n,h,w,ci at a[1..4]; fh,fw,co at a[6..8]; sy,sx,pt,pl,ho,wo at a[9..14] */
  const int idx[] = {1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  for (int i = 0; i < 13; i++)
    if (!get_i(env, a[idx[i]], &d[i])) return 0;
  return 1;
}

/* conv2dForward(x, n,h,w,ci, filter[fh,fw,ci,co], fh,fw,co, sy,sx, pt,pl, ho,wo, out[n,ho,wo,co]) */
static napi_value Conv2dForward(napi_env env, napi_callback_info info) {
  napi_value a[16];
  if (!conv_args(env, info, a, 16)) return NULL;
  int d[13];
  CHECK(env, conv_dims(env, a, d), "tdr-native conv2dForward: integer arguments expected");
  const int n = d[0], h = d[1], w = d[2], ci = d[3], fh = d[4], fw = d[5], co = d[6], sy = d[7], sx = d[8], pt = d[9], pl = d[10], ho = d[11], wo = d[12];
  float *x, *f, *out;
  size_t lx, lf, lo;
  CHECK(env, get_f32(env, a[0], &x, &lx) && get_f32(env, a[5], &f, &lf) && get_f32(env, a[15], &out, &lo), "tdr-native conv2dForward: Float32Array buffers expected");
  const int k = fh * fw * ci;
  CHECK(env, lx >= (size_t)n * h * w * ci && lf >= (size_t)k * co && lo >= (size_t)n * ho * wo * co, "tdr-native conv2dForward: a buffer is too small");
  const int m = ho * wo;
  const int direct = fh == 1 && fw == 1 && sy == 1 && sx == 1 && pt == 0 && pl == 0 && ho == h && wo == w;
  if (direct) {
    SGEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n * m, co, ci, 1.0f, x, ci, f, co, 0.0f, out, co);
    return NULL;
  }
  float *col = need_scratch((size_t)m * k);
  CHECK(env, col, "tdr-native: out of memory");
  for (int i = 0; i < n; i++) {
    im2col(x + (size_t)i * h * w * ci, h, w, ci, fh, fw, sy, sx, pt, pl, ho, wo, col);
    SGEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, co, k, 1.0f, col, k, f, co, 0.0f, out + (size_t)i * m * co, co);
  }
  return NULL;
}

/* conv2dBackpropFilter(x, n,h,w,ci, dy[n,ho,wo,co], fh,fw,co, sy,sx, pt,pl, ho,wo, dw[fh,fw,ci,co]) */
static napi_value Conv2dBackpropFilter(napi_env env, napi_callback_info info) {
  napi_value a[16];
  if (!conv_args(env, info, a, 16)) return NULL;
  int d[13];
  CHECK(env, conv_dims(env, a, d), "tdr-native conv2dBackpropFilter: integer arguments expected");
  const int n = d[0], h = d[1], w = d[2], ci = d[3], fh = d[4], fw = d[5], co = d[6], sy = d[7], sx = d[8], pt = d[9], pl = d[10], ho = d[11], wo = d[12];
  float *x, *dy, *dw;
  size_t lx, ldy, ldw;
  CHECK(env, get_f32(env, a[0], &x, &lx) && get_f32(env, a[5], &dy, &ldy) && get_f32(env, a[15], &dw, &ldw), "tdr-native conv2dBackpropFilter: Float32Array buffers expected");
  const int k = fh * fw * ci;
  const int m = ho * wo;
  CHECK(env, lx >= (size_t)n * h * w * ci && ldy >= (size_t)n * m * co && ldw >= (size_t)k * co, "tdr-native conv2dBackpropFilter: a buffer is too small");
  const int direct = fh == 1 && fw == 1 && sy == 1 && sx == 1 && pt == 0 && pl == 0 && ho == h && wo == w;
  if (direct) {
    SGEMM(CblasRowMajor, CblasTrans, CblasNoTrans, ci, co, n * m, 1.0f, x, ci, dy, co, 0.0f, dw, co);
    return NULL;
  }
  float *col = need_scratch((size_t)m * k);
  CHECK(env, col, "tdr-native: out of memory");
  for (int i = 0; i < n; i++) {
    im2col(x + (size_t)i * h * w * ci, h, w, ci, fh, fw, sy, sx, pt, pl, ho, wo, col);
    SGEMM(CblasRowMajor, CblasTrans, CblasNoTrans, k, co, m, 1.0f, col, k, dy + (size_t)i * m * co, co, i == 0 ? 0.0f : 1.0f, dw, co);
  }
  return NULL;
}

/* conv2dBackpropInput(dy, n,h,w,ci, filter[fh,fw,ci,co], fh,fw,co, sy,sx, pt,pl, ho,wo, dx[n,h,w,ci]) */
static napi_value Conv2dBackpropInput(napi_env env, napi_callback_info info) {
  napi_value a[16];
  if (!conv_args(env, info, a, 16)) return NULL;
  int d[13];
  CHECK(env, conv_dims(env, a, d), "tdr-native conv2dBackpropInput: integer arguments expected");
  const int n = d[0], h = d[1], w = d[2], ci = d[3], fh = d[4], fw = d[5], co = d[6], sy = d[7], sx = d[8], pt = d[9], pl = d[10], ho = d[11], wo = d[12];
  float *dy, *f, *dx;
  size_t ldy, lf, ldx;
  CHECK(env, get_f32(env, a[0], &dy, &ldy) && get_f32(env, a[5], &f, &lf) && get_f32(env, a[15], &dx, &ldx), "tdr-native conv2dBackpropInput: Float32Array buffers expected");
  const int k = fh * fw * ci;
  const int m = ho * wo;
  CHECK(env, ldy >= (size_t)n * m * co && lf >= (size_t)k * co && ldx >= (size_t)n * h * w * ci, "tdr-native conv2dBackpropInput: a buffer is too small");
  const int direct = fh == 1 && fw == 1 && sy == 1 && sx == 1 && pt == 0 && pl == 0 && ho == h && wo == w;
  if (direct) {
    SGEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n * m, ci, co, 1.0f, dy, co, f, co, 0.0f, dx, ci);
    return NULL;
  }
  float *col = need_scratch((size_t)m * k);
  CHECK(env, col, "tdr-native: out of memory");
  memset(dx, 0, (size_t)n * h * w * ci * sizeof(float));
  for (int i = 0; i < n; i++) {
    SGEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, co, 1.0f, dy + (size_t)i * m * co, co, f, co, 0.0f, col, k);
    col2im(col, h, w, ci, fh, fw, sy, sx, pt, pl, ho, wo, dx + (size_t)i * h * w * ci);
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
 * args: x|dy, n,h,w,c, filter|dy|x, fh,fw,mult, sy,sx, pt,pl, ho,wo, out
 */
static int dw_args(napi_env env, napi_callback_info info, napi_value *a, int *d, float **p0, size_t *l0, float **p1, size_t *l1, float **p2, size_t *l2) {
  size_t argc = 16;
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc != 16) return 0;
  if (!conv_dims(env, a, d)) return 0;
  return get_f32(env, a[0], p0, l0) && get_f32(env, a[5], p1, l1) && get_f32(env, a[15], p2, l2);
}

/* depthwiseForward(x, n,h,w,c, filter, fh,fw,M, sy,sx, pt,pl, ho,wo, out[n,ho,wo,c·M]) */
static napi_value DepthwiseForward(napi_env env, napi_callback_info info) {
  napi_value a[16];
  int d[13];
  float *x, *f, *out;
  size_t lx, lf, lo;
  CHECK(env, dw_args(env, info, a, d, &x, &lx, &f, &lf, &out, &lo), "tdr-native depthwiseForward: bad arguments");
  const int n = d[0], h = d[1], w = d[2], c = d[3], fh = d[4], fw = d[5], M = d[6], sy = d[7], sx = d[8], pt = d[9], pl = d[10], ho = d[11], wo = d[12];
  const int cm = c * M;
  CHECK(env, lx >= (size_t)n * h * w * c && lf >= (size_t)fh * fw * cm && lo >= (size_t)n * ho * wo * cm, "tdr-native depthwiseForward: a buffer is too small");
  memset(out, 0, (size_t)n * ho * wo * cm * sizeof(float));
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < ho; oy++)
      for (int ox = 0; ox < wo; ox++) {
        float *o = out + (((size_t)b * ho + oy) * wo + ox) * cm;
        for (int ky = 0; ky < fh; ky++) {
          const int iy = sy * oy + ky - pt;
          if (iy < 0 || iy >= h) continue;
          for (int kx = 0; kx < fw; kx++) {
            const int ix = sx * ox + kx - pl;
            if (ix < 0 || ix >= w) continue;
            const float *xi = x + (((size_t)b * h + iy) * w + ix) * c;
            const float *fk = f + ((size_t)ky * fw + kx) * cm;
            if (M == 1) for (int k = 0; k < c; k++) o[k] += xi[k] * fk[k];
            else for (int k = 0; k < c; k++) for (int m = 0; m < M; m++) o[k * M + m] += xi[k] * fk[k * M + m];
          }
        }
      }
  return NULL;
}

/* depthwiseBackpropFilter(x, n,h,w,c, dy, fh,fw,M, sy,sx, pt,pl, ho,wo, dw[fh,fw,c,M]) */
static napi_value DepthwiseBackpropFilter(napi_env env, napi_callback_info info) {
  napi_value a[16];
  int d[13];
  float *x, *dy, *dw;
  size_t lx, ldy, ldw;
  CHECK(env, dw_args(env, info, a, d, &x, &lx, &dy, &ldy, &dw, &ldw), "tdr-native depthwiseBackpropFilter: bad arguments");
  const int n = d[0], h = d[1], w = d[2], c = d[3], fh = d[4], fw = d[5], M = d[6], sy = d[7], sx = d[8], pt = d[9], pl = d[10], ho = d[11], wo = d[12];
  const int cm = c * M;
  CHECK(env, lx >= (size_t)n * h * w * c && ldy >= (size_t)n * ho * wo * cm && ldw >= (size_t)fh * fw * cm, "tdr-native depthwiseBackpropFilter: a buffer is too small");
  memset(dw, 0, (size_t)fh * fw * cm * sizeof(float));
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < ho; oy++)
      for (int ox = 0; ox < wo; ox++) {
        const float *g = dy + (((size_t)b * ho + oy) * wo + ox) * cm;
        for (int ky = 0; ky < fh; ky++) {
          const int iy = sy * oy + ky - pt;
          if (iy < 0 || iy >= h) continue;
          for (int kx = 0; kx < fw; kx++) {
            const int ix = sx * ox + kx - pl;
            if (ix < 0 || ix >= w) continue;
            const float *xi = x + (((size_t)b * h + iy) * w + ix) * c;
            float *dk = dw + ((size_t)ky * fw + kx) * cm;
            if (M == 1) for (int k = 0; k < c; k++) dk[k] += xi[k] * g[k];
            else for (int k = 0; k < c; k++) for (int m = 0; m < M; m++) dk[k * M + m] += xi[k] * g[k * M + m];
          }
        }
      }
  return NULL;
}

/* depthwiseBackpropInput(dy, n,h,w,c, filter, fh,fw,M, sy,sx, pt,pl, ho,wo, dx[n,h,w,c]) */
static napi_value DepthwiseBackpropInput(napi_env env, napi_callback_info info) {
  napi_value a[16];
  int d[13];
  float *dy, *f, *dx;
  size_t ldy, lf, ldx;
  CHECK(env, dw_args(env, info, a, d, &dy, &ldy, &f, &lf, &dx, &ldx), "tdr-native depthwiseBackpropInput: bad arguments");
  const int n = d[0], h = d[1], w = d[2], c = d[3], fh = d[4], fw = d[5], M = d[6], sy = d[7], sx = d[8], pt = d[9], pl = d[10], ho = d[11], wo = d[12];
  const int cm = c * M;
  CHECK(env, ldy >= (size_t)n * ho * wo * cm && lf >= (size_t)fh * fw * cm && ldx >= (size_t)n * h * w * c, "tdr-native depthwiseBackpropInput: a buffer is too small");
  memset(dx, 0, (size_t)n * h * w * c * sizeof(float));
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < ho; oy++)
      for (int ox = 0; ox < wo; ox++) {
        const float *g = dy + (((size_t)b * ho + oy) * wo + ox) * cm;
        for (int ky = 0; ky < fh; ky++) {
          const int iy = sy * oy + ky - pt;
          if (iy < 0 || iy >= h) continue;
          for (int kx = 0; kx < fw; kx++) {
            const int ix = sx * ox + kx - pl;
            if (ix < 0 || ix >= w) continue;
            float *xi = dx + (((size_t)b * h + iy) * w + ix) * c;
            const float *fk = f + ((size_t)ky * fw + kx) * cm;
            if (M == 1) for (int k = 0; k < c; k++) xi[k] += g[k] * fk[k];
            else for (int k = 0; k < c; k++) for (int m = 0; m < M; m++) xi[k] += g[k * M + m] * fk[k * M + m];
          }
        }
      }
  return NULL;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  int t = 1;
  if (argc == 1) get_i(env, a[0], &t);
  openblas_set_num_threads(t < 1 ? 1 : t);
  return NULL;
}

static napi_value Config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &s);
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
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  openblas_set_num_threads(1);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
