/*
 * CRC32C (Castagnoli: reflected polynomial 0x82f63b78, initial value and
 * final XOR 0xffffffff) for Spindle, against Node-API only, so one binary
 * loads in every Node and Electron of the same platform.
 *
 * Why this exists: the engine checks one CRC per 4 KiB block on every read.
 * One crc32 instruction chain is bound by the instruction's latency (3
 * cycles for 8 bytes) while the CPU can start one per cycle, and one call
 * from JavaScript per block adds its own cost. So:
 *
 *  - crc32cBlocks takes a whole span and writes one CRC per block, three
 *    blocks at a time on three independent chains (the blocks are separate
 *    messages, so nothing has to be combined);
 *  - crc32c of one long buffer runs three chains over three consecutive
 *    lanes and joins them: the CRC register is linear, so the register after
 *    lane A then lane B is shift(A, |B|) ^ B, where B started from 0 and
 *    shift(c, n) = c * x^(8n) mod P, a linear map of c applied with four
 *    table look-ups (one per byte of c) from tables made at load time.
 *
 * Without SSE4.2 (or off x86-64) everything runs a portable slice-by-8
 * table, and crc32cPortable / crc32cBlocksPortable run it on any CPU so
 * tests can compare both paths.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include <node_api.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC_X86 1
#include <nmmintrin.h>
#define HW __attribute__((target("sse4.2")))
#endif

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#endif

#define POLY 0x82f63b78u

/* ------------------------------------------------------------------ tables */

/* slice[0]: one byte; slice[k]: a byte followed by k zero bytes. */
static uint32_t slice[8][256];

/* Lane lengths of the three-chain single-buffer CRC, and the shifts that join them. */
#define LANE_BIG 4096
#define LANE_SMALL 256
static uint32_t shift_big1[4][256], shift_big2[4][256];
static uint32_t shift_small1[4][256], shift_small2[4][256];

static int use_hardware;

/*
 * a * b mod P, polynomials over GF(2) in the reflected form the CRC register
 * uses: bit 31 is the coefficient of x^0, bit 0 that of x^31.
 */
static uint32_t gf_mul(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; i++) {
    if (a & (0x80000000u >> i)) product ^= b;
    b = (b & 1) ? (b >> 1) ^ POLY : b >> 1; /* b *= x */
  }
  return product;
}

/* x^(8n) mod P: what n zero bytes multiply the register by. */
static uint32_t x_pow_8n(size_t n) {
  uint32_t result = 0x80000000u; /* x^0 */
  uint32_t square = 0x00800000u; /* x^8 */
  for (; n > 0; n >>= 1) {
    if (n & 1) result = gf_mul(result, square);
    square = gf_mul(square, square);
  }
  return result;
}

/* t[k][v]: the register (v << 8k) moved past `bytes` zero bytes. */
static void make_shift(uint32_t t[4][256], size_t bytes) {
  uint32_t factor = x_pow_8n(bytes);
  for (int k = 0; k < 4; k++) {
    for (uint32_t v = 0; v < 256; v++) t[k][v] = gf_mul(v << (8 * k), factor);
  }
}

static inline uint32_t shift(const uint32_t t[4][256], uint32_t reg) {
  return t[0][reg & 0xff] ^ t[1][(reg >> 8) & 0xff] ^ t[2][(reg >> 16) & 0xff] ^ t[3][reg >> 24];
}

static void init_tables(void) {
  for (uint32_t v = 0; v < 256; v++) {
    uint32_t c = v;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
    slice[0][v] = c;
  }
  for (int k = 1; k < 8; k++) {
    for (int v = 0; v < 256; v++) slice[k][v] = (slice[k - 1][v] >> 8) ^ slice[0][slice[k - 1][v] & 0xff];
  }
  make_shift(shift_big1, LANE_BIG);
  make_shift(shift_big2, 2 * LANE_BIG);
  make_shift(shift_small1, LANE_SMALL);
  make_shift(shift_small2, 2 * LANE_SMALL);
#ifdef CRC_X86
  __builtin_cpu_init();
  use_hardware = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

#ifdef _WIN32
static INIT_ONCE init_once = INIT_ONCE_STATIC_INIT;
static BOOL CALLBACK init_once_cb(PINIT_ONCE once, PVOID param, PVOID *context) {
  (void)once;
  (void)param;
  (void)context;
  init_tables();
  return TRUE;
}
static void ensure_tables(void) { InitOnceExecuteOnce(&init_once, init_once_cb, NULL, NULL); }
#else
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void ensure_tables(void) { pthread_once(&init_once, init_tables); }
#endif

/* ---------------------------------------------------------------- portable */

/* The raw register (no inversions) moved over p[0, n): slice-by-8. */
static uint32_t portable_update(uint32_t reg, const uint8_t *p, size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    uint32_t lo = reg ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    reg = slice[7][lo & 0xff] ^ slice[6][(lo >> 8) & 0xff] ^ slice[5][(lo >> 16) & 0xff] ^ slice[4][lo >> 24] ^
          slice[3][p[4]] ^ slice[2][p[5]] ^ slice[1][p[6]] ^ slice[0][p[7]];
  }
  for (; n > 0; n--) reg = slice[0][(reg ^ *p++) & 0xff] ^ (reg >> 8);
  return reg;
}

static void portable_blocks(const uint8_t *data, size_t block, size_t count, uint32_t *out) {
  for (size_t b = 0; b < count; b++) out[b] = ~portable_update(0xffffffffu, data + b * block, block);
}

/* ---------------------------------------------------------------- SSE4.2 */

#ifdef CRC_X86
static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* One chain: the raw register moved over p[0, n). */
HW static uint32_t hw_update(uint32_t reg, const uint8_t *p, size_t n) {
  uint64_t c = reg;
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, load64(p));
  uint32_t r = (uint32_t)c;
  for (; n > 0; n--) r = _mm_crc32_u8(r, *p++);
  return r;
}

/* Three independent chains over a, b and c, n bytes each, from the registers in reg[]. */
HW static inline void hw_update3(const uint8_t *a, const uint8_t *b, const uint8_t *c, size_t n, uint32_t reg[3]) {
  uint64_t x = reg[0], y = reg[1], z = reg[2];
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    x = _mm_crc32_u64(x, load64(a + i));
    y = _mm_crc32_u64(y, load64(b + i));
    z = _mm_crc32_u64(z, load64(c + i));
  }
  uint32_t x32 = (uint32_t)x, y32 = (uint32_t)y, z32 = (uint32_t)z;
  for (; i < n; i++) {
    x32 = _mm_crc32_u8(x32, a[i]);
    y32 = _mm_crc32_u8(y32, b[i]);
    z32 = _mm_crc32_u8(z32, c[i]);
  }
  reg[0] = x32;
  reg[1] = y32;
  reg[2] = z32;
}

/*
 * Moves the register over *p in steps of three lanes of `lane` bytes on three
 * chains, joined by the shifts past one lane (t1) and two (t2), while a whole
 * step is left; advances *p and *n.
 */
HW static inline uint32_t hw_lanes(uint32_t reg, const uint8_t **p, size_t *n, size_t lane, const uint32_t t1[4][256], const uint32_t t2[4][256]) {
  while (*n >= 3 * lane) {
    uint32_t r[3] = {reg, 0, 0};
    hw_update3(*p, *p + lane, *p + 2 * lane, lane, r);
    reg = shift(t2, r[0]) ^ shift(t1, r[1]) ^ r[2];
    *p += 3 * lane;
    *n -= 3 * lane;
  }
  return reg;
}

/* One buffer on three chains: lanes of LANE_BIG, then LANE_SMALL; the rest on one chain. */
HW static uint32_t hw_update_long(uint32_t reg, const uint8_t *p, size_t n) {
  reg = hw_lanes(reg, &p, &n, LANE_BIG, shift_big1, shift_big2);
  reg = hw_lanes(reg, &p, &n, LANE_SMALL, shift_small1, shift_small2);
  return hw_update(reg, p, n);
}

/* Blocks three at a time on three chains; a last one or two alone (each on three lanes when long enough). */
HW static void hw_blocks(const uint8_t *data, size_t block, size_t count, uint32_t *out) {
  size_t b = 0;
  for (; b + 3 <= count; b += 3) {
    const uint8_t *p = data + b * block;
    uint32_t r[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
    hw_update3(p, p + block, p + 2 * block, block, r);
    out[b] = ~r[0];
    out[b + 1] = ~r[1];
    out[b + 2] = ~r[2];
  }
  for (; b < count; b++) out[b] = ~hw_update_long(0xffffffffu, data + b * block, block);
}
#endif

/* The CRC of p[0, n) continued from `seed`, a previous result (0 to start). */
static uint32_t crc32c_any(uint32_t seed, const uint8_t *p, size_t n, int portable) {
#ifdef CRC_X86
  if (use_hardware && !portable) return ~hw_update_long(~seed, p, n);
#endif
  (void)portable;
  return ~portable_update(~seed, p, n);
}

static void blocks_any(const uint8_t *data, size_t block, size_t count, uint32_t *out, int portable) {
#ifdef CRC_X86
  if (use_hardware && !portable) {
    hw_blocks(data, block, count, out);
    return;
  }
#endif
  (void)portable;
  portable_blocks(data, block, count, out);
}

/* ---------------------------------------------------------------- Node-API */

#define CHECK(call)                                 \
  do {                                              \
    if ((call) != napi_ok) return throw_last(env);  \
  } while (0)

/* Turns a failed Node-API call into a JS exception (if none is pending) and returns NULL. */
static napi_value throw_last(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "spindle-crc32c: Node-API call failed");
  }
  return NULL;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static napi_value throw_range(napi_env env, const char *message) {
  napi_throw_range_error(env, NULL, message);
  return NULL;
}

/* The bytes of a Uint8Array (a Buffer is one); 0 when `value` is something else. */
static int typed_array(napi_env env, napi_value value, napi_typedarray_type want, void **data, size_t *length) {
  bool is = false;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) != napi_ok || type != want) return 0;
  return 1;
}

static int is_undefined(napi_env env, napi_value value) {
  napi_valuetype type;
  return napi_typeof(env, value, &type) == napi_ok && type == napi_undefined;
}

static int is_number(napi_env env, napi_value value) {
  napi_valuetype type;
  return napi_typeof(env, value, &type) == napi_ok && type == napi_number;
}

/* crc32c(data: Uint8Array, seed?: number): number. */
static napi_value crc32c_call(napi_env env, napi_callback_info info, int portable) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  size_t length = 0;
  if (argc < 1 || !typed_array(env, argv[0], napi_uint8_array, &data, &length)) {
    return throw_type(env, "crc32c: data must be a Uint8Array (or a Buffer)");
  }
  uint32_t seed = 0;
  if (argc >= 2 && !is_undefined(env, argv[1])) {
    if (!is_number(env, argv[1])) return throw_type(env, "crc32c: seed must be a number (a previous crc32c result) or undefined");
    CHECK(napi_get_value_uint32(env, argv[1], &seed)); /* ToUint32: taken modulo 2^32 */
  }
  uint32_t crc = length == 0 ? seed : crc32c_any(seed, (const uint8_t *)data, length, portable);
  napi_value result;
  CHECK(napi_create_uint32(env, crc, &result));
  return result;
}

/* crc32cBlocks(data: Uint8Array, blockBytes: number, out: Uint32Array): undefined. */
static napi_value crc32c_blocks_call(napi_env env, napi_callback_info info, int portable) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char message[160];
  void *data = NULL;
  size_t length = 0;
  if (argc < 1 || !typed_array(env, argv[0], napi_uint8_array, &data, &length)) {
    return throw_type(env, "crc32cBlocks: data must be a Uint8Array (or a Buffer)");
  }
  double block_number = 0;
  if (argc < 2 || !is_number(env, argv[1])) return throw_type(env, "crc32cBlocks: blockBytes must be a number");
  CHECK(napi_get_value_double(env, argv[1], &block_number));
  if (!(block_number >= 1 && block_number <= 9007199254740991.0) || floor(block_number) != block_number) {
    snprintf(message, sizeof message, "crc32cBlocks: blockBytes must be a positive integer, not %g", block_number);
    return throw_range(env, message);
  }
  void *out = NULL;
  size_t out_length = 0;
  if (argc < 3 || !typed_array(env, argv[2], napi_uint32_array, &out, &out_length)) {
    return throw_type(env, "crc32cBlocks: out must be a Uint32Array");
  }
  if (block_number > (double)SIZE_MAX || length % (size_t)block_number != 0) {
    snprintf(message, sizeof message, "crc32cBlocks: length %zu is not a multiple of %.0f", length, block_number);
    return throw_range(env, message);
  }
  size_t block = (size_t)block_number;
  size_t count = length / block;
  if (out_length < count) {
    snprintf(message, sizeof message, "crc32cBlocks: out holds %zu CRCs, %zu needed", out_length, count);
    return throw_range(env, message);
  }
  if (count > 0) blocks_any((const uint8_t *)data, block, count, (uint32_t *)out, portable);
  return NULL; /* undefined */
}

#ifndef _WIN32
/*
 * preadBlocks(fd, target, position, blockBytes, out): Promise<number>.
 *
 * Why: a scrub or a rebuild reads a slab from an image file and checks a
 * CRC per block. With fs.read the thread pool copies the bytes out of the
 * page cache into a buffer much larger than the core's cache, and the main
 * thread then reads them all again from memory for the CRC, alone on one
 * core. Here the pool thread that reads also checksums, PIECE bytes at a
 * time while they are still in its cache, and both cores share the work.
 *
 * Reads target.length bytes at `position` (looping over short reads and
 * EINTR), writes the CRC32C of each whole block read into out[0…], and
 * resolves with the bytes read: less than asked only at end of file. A
 * failed pread rejects with an Error whose `code` is the errno's name (as
 * fs errors have) and `errno` its number. The caller must leave `target`
 * alone until the promise settles, as with fs.read.
 *
 * On an O_DIRECT descriptor (a job reading around the page cache) the reads
 * go through the thread's aligned scratch; position and length must then
 * be multiples of ALIGN, or the kernel refuses with EINVAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define PIECE (128 * 1024)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref target_ref;
  napi_ref out_ref;
  int fd;
  uint8_t *data;
  size_t length;
  int64_t position;
  size_t block;
  uint32_t *out;
  size_t done;
  int error;
  /* A pwriteAligned job (pwrite_execute), not a read. */
  int writes;
} pread_job;

/* What O_DIRECT wants of buffers, offsets and lengths (the largest logical block of common devices). */
#define ALIGN 4096
/* Bytes per pread or pwrite on an O_DIRECT descriptor: each is a device round trip, so larger than PIECE. */
#define DIRECT_PIECE (1024 * 1024)

/*
 * Each pool thread's scratch, DIRECT_PIECE bytes, ALIGN-aligned: for
 * O_DIRECT reads and writes, and (its first PIECE bytes, small enough to
 * stay in cache) for reads whose bytes nobody keeps (checksumFileBlocks).
 */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void make_scratch_key(void) { pthread_key_create(&scratch_key, free); }
static uint8_t *thread_scratch(void) {
  pthread_once(&scratch_once, make_scratch_key);
  void *scratch = pthread_getspecific(scratch_key);
  if (scratch == NULL) {
    if (posix_memalign(&scratch, ALIGN, DIRECT_PIECE) != 0) return NULL;
    pthread_setspecific(scratch_key, scratch);
  }
  return scratch;
}

static void pread_execute(napi_env env, void *arg) {
  (void)env;
  pread_job *job = arg;
  /*
   * An O_DIRECT descriptor (a job reading around the page cache) takes only
   * aligned buffers: its reads go through the thread's aligned scratch,
   * DIRECT_PIECE at a time, and are copied out after their CRCs.
   */
#ifdef O_DIRECT
  int flags = fcntl(job->fd, F_GETFL);
  const int direct = flags != -1 && (flags & O_DIRECT) != 0;
#else
  const int direct = 0;
#endif
  uint8_t *scratch = direct || job->data == NULL ? thread_scratch() : NULL;
  const size_t piece_bytes = direct ? DIRECT_PIECE : PIECE;
  if ((direct || job->data == NULL) && scratch == NULL) {
    job->error = ENOMEM;
    return;
  }
  /* Pieces end on block boundaries, so each is checksummed whole right after its read. */
  const size_t piece = piece_bytes - piece_bytes % job->block;
  size_t checked = 0; /* bytes whose blocks have their CRC */
  size_t start = 0;   /* where the piece being read began */
  while (job->done < job->length) {
    if (job->done == start + piece || job->done == checked) start = job->done;
    size_t want = start + piece - job->done;
    if (want > job->length - job->done) want = job->length - job->done;
    uint8_t *into = scratch != NULL ? scratch + (job->done - start) : job->data + job->done;
    ssize_t n = pread(job->fd, into, want, (off_t)(job->position + (int64_t)job->done));
    if (n < 0) {
      if (errno == EINTR) continue;
      job->error = errno;
      return;
    }
    if (n == 0) break; /* end of file */
    if (scratch != NULL && job->data != NULL) memcpy(job->data + job->done, into, (size_t)n);
    job->done += (size_t)n;
    size_t whole = job->done - job->done % job->block;
    if (whole > checked) {
      const uint8_t *from = scratch != NULL ? scratch + (checked - start) : job->data + checked;
      blocks_any(from, job->block, (whole - checked) / job->block, job->out + checked / job->block, 0);
      checked = whole;
    }
  }
}

static const char *errno_name(int e) {
  switch (e) {
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case ENOMEM: return "ENOMEM";
    case EISDIR: return "EISDIR";
    case ENXIO: return "ENXIO";
    case EOVERFLOW: return "EOVERFLOW";
    case EAGAIN: return "EAGAIN";
    default: return "EIO";
  }
}

static void pread_complete(napi_env env, napi_status status, void *arg) {
  pread_job *job = arg;
  napi_value value = NULL;
  if (status != napi_ok) {
    napi_value message;
    napi_create_string_utf8(env, job->writes ? "pwriteAligned: the write was cancelled" : "preadBlocks: the read was cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &value);
    napi_reject_deferred(env, job->deferred, value);
  } else if (job->error != 0) {
    char text[160];
    snprintf(text, sizeof text, "%s: %s, %s %zu bytes at %lld", errno_name(job->error), strerror(job->error), job->writes ? "pwrite" : "pread", job->length,
             (long long)job->position);
    napi_value message, code, number;
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &value);
    napi_create_string_utf8(env, errno_name(job->error), NAPI_AUTO_LENGTH, &code);
    napi_create_int32(env, -job->error, &number);
    napi_set_named_property(env, value, "code", code);
    napi_set_named_property(env, value, "errno", number);
    napi_reject_deferred(env, job->deferred, value);
  } else {
    napi_create_double(env, (double)job->done, &value);
    napi_resolve_deferred(env, job->deferred, value);
  }
  if (job->target_ref != NULL) napi_delete_reference(env, job->target_ref);
  if (job->out_ref != NULL) napi_delete_reference(env, job->out_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* Reads a non-negative integer argument (a safe integer) into *value; 0 after throwing. */
static int integer_arg(napi_env env, napi_value value, const char *what, double max, double *result) {
  char message[160];
  if (!is_number(env, value)) {
    snprintf(message, sizeof message, "%s must be a number", what);
    throw_type(env, message);
    return 0;
  }
  if (napi_get_value_double(env, value, result) != napi_ok) {
    throw_last(env);
    return 0;
  }
  if (!(*result >= 0 && *result <= max) || floor(*result) != *result) {
    snprintf(message, sizeof message, "%s must be an integer from 0 to %.0f, not %g", what, max, *result);
    throw_range(env, message);
    return 0;
  }
  return 1;
}

/*
 * The two reads' common part: argv is (fd, [target,] position, [length,]
 * blockBytes, out); target NULL means length comes from argv and the bytes
 * go to the thread's scratch.
 */
static napi_value queue_read(napi_env env, const char *fn, int fd, napi_value target, double position, double length_number,
                             double block_number, napi_value out_value) {
  char message[200];
  void *data = NULL;
  size_t length = (size_t)length_number;
  if (target != NULL && !typed_array(env, target, napi_uint8_array, &data, &length)) {
    snprintf(message, sizeof message, "%s: target must be a Uint8Array (or a Buffer)", fn);
    return throw_type(env, message);
  }
  if (block_number < 1) {
    snprintf(message, sizeof message, "%s: blockBytes must be from 1 to %d, not 0", fn, PIECE);
    return throw_range(env, message);
  }
  void *out = NULL;
  size_t out_length = 0;
  if (!typed_array(env, out_value, napi_uint32_array, &out, &out_length)) {
    snprintf(message, sizeof message, "%s: out must be a Uint32Array", fn);
    return throw_type(env, message);
  }
  size_t block = (size_t)block_number;
  if (length % block != 0) {
    snprintf(message, sizeof message, "%s: length %zu is not a multiple of %zu", fn, length, block);
    return throw_range(env, message);
  }
  if (out_length < length / block) {
    snprintf(message, sizeof message, "%s: out holds %zu CRCs, %zu needed", fn, out_length, length / block);
    return throw_range(env, message);
  }
  pread_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  job->fd = fd;
  job->data = data;
  job->length = length;
  job->position = (int64_t)position;
  job->block = block;
  job->out = out;
  napi_value promise, name;
  /* References keep the arrays alive (and their memory in place) until the read completes. */
  if ((target != NULL && napi_create_reference(env, target, 1, &job->target_ref) != napi_ok) ||
      napi_create_reference(env, out_value, 1, &job->out_ref) != napi_ok || napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, fn, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, pread_execute, pread_complete, job, &job->work) != napi_ok || napi_queue_async_work(env, job->work) != napi_ok) {
    if (job->target_ref != NULL) napi_delete_reference(env, job->target_ref);
    if (job->out_ref != NULL) napi_delete_reference(env, job->out_ref);
    if (job->work != NULL) napi_delete_async_work(env, job->work);
    free(job);
    return throw_last(env);
  }
  return promise;
}

/* The call's first five arguments, undefined where it gave fewer. */
static int five_args(napi_env env, napi_callback_info info, napi_value argv[5]) {
  size_t argc = 5;
  napi_value undefined;
  if (napi_get_undefined(env, &undefined) != napi_ok) return 0;
  for (size_t i = 0; i < 5; i++) argv[i] = undefined;
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok;
}

/* preadBlocks(fd, target, position, blockBytes, out): Promise<number>. */
static napi_value js_pread_blocks(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!five_args(env, info, argv)) return throw_last(env);
  double fd, position, block;
  if (!integer_arg(env, argv[0], "preadBlocks: fd", 2147483647.0, &fd) || !integer_arg(env, argv[2], "preadBlocks: position", 9007199254740991.0, &position) ||
      !integer_arg(env, argv[3], "preadBlocks: blockBytes", PIECE, &block)) {
    return NULL;
  }
  return queue_read(env, "preadBlocks", (int)fd, argv[1], position, 0, block, argv[4]);
}

/* checksumFileBlocks(fd, position, length, blockBytes, out): Promise<number>. */
static napi_value js_checksum_file_blocks(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!five_args(env, info, argv)) return throw_last(env);
  double fd, position, length, block;
  if (!integer_arg(env, argv[0], "checksumFileBlocks: fd", 2147483647.0, &fd) ||
      !integer_arg(env, argv[1], "checksumFileBlocks: position", 9007199254740991.0, &position) ||
      !integer_arg(env, argv[2], "checksumFileBlocks: length", 9007199254740991.0, &length) ||
      !integer_arg(env, argv[3], "checksumFileBlocks: blockBytes", PIECE, &block)) {
    return NULL;
  }
  return queue_read(env, "checksumFileBlocks", (int)fd, NULL, position, length, block, argv[4]);
}

/*
 * pwriteAligned(fd, data, position): Promise<number>.
 *
 * Why: a job's bulk copy (a rebuild onto a spare) writes data that nobody
 * will read soon. Through the page cache it piles up as dirty pages that
 * the first flush writes back in one burst: the copy runs at memory speed
 * until then and at the disk's afterwards, so its rate (and ETA) lies at
 * first, and the burst stalls foreground reads. An O_DIRECT descriptor
 * writes around the cache, as md and btrfs rebuilds do, but takes only
 * buffers, offsets and lengths aligned to the device's logical block, and
 * JavaScript cannot place a buffer. So the pool thread copies the data
 * through its own ALIGN-aligned scratch, DIRECT_PIECE bytes per pwrite
 * (the copy costs far less than the write).
 *
 * position and data.length must be multiples of ALIGN (RangeError
 * otherwise). Resolves with the bytes written (all of them); a failed
 * pwrite rejects as preadBlocks' reads do (EINVAL: the descriptor's device
 * wants a larger alignment). Works on any descriptor, O_DIRECT or not.
 */
static void pwrite_execute(napi_env env, void *arg) {
  (void)env;
  pread_job *job = arg;
  uint8_t *scratch = thread_scratch();
  if (scratch == NULL) {
    job->error = ENOMEM;
    return;
  }
  while (job->done < job->length) {
    size_t piece = job->length - job->done;
    if (piece > DIRECT_PIECE) piece = DIRECT_PIECE;
    memcpy(scratch, job->data + job->done, piece);
    size_t written = 0;
    while (written < piece) {
      ssize_t n = pwrite(job->fd, scratch + written, piece - written, (off_t)(job->position + (int64_t)(job->done + written)));
      if (n < 0) {
        if (errno == EINTR) continue;
        job->error = errno;
        return;
      }
      if (n == 0) {
        job->error = EIO; /* a regular file or device that takes nothing: never loop forever */
        return;
      }
      written += (size_t)n;
    }
    job->done += piece;
  }
}

static napi_value js_pwrite_aligned(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!five_args(env, info, argv)) return throw_last(env);
  double fd, position;
  if (!integer_arg(env, argv[0], "pwriteAligned: fd", 2147483647.0, &fd) ||
      !integer_arg(env, argv[2], "pwriteAligned: position", 9007199254740991.0, &position)) {
    return NULL;
  }
  void *data = NULL;
  size_t length = 0;
  if (!typed_array(env, argv[1], napi_uint8_array, &data, &length)) return throw_type(env, "pwriteAligned: data must be a Uint8Array (or a Buffer)");
  char message[160];
  if (length % ALIGN != 0 || fmod(position, ALIGN) != 0) {
    snprintf(message, sizeof message, "pwriteAligned: position %.0f and length %zu must be multiples of %d", position, length, ALIGN);
    return throw_range(env, message);
  }
  pread_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  job->fd = (int)fd;
  job->data = data;
  job->length = length;
  job->position = (int64_t)position;
  job->writes = 1;
  napi_value promise, name;
  /* The reference keeps the data alive (and in place) until the write completes. */
  if (napi_create_reference(env, argv[1], 1, &job->target_ref) != napi_ok || napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "pwriteAligned", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, pwrite_execute, pread_complete, job, &job->work) != napi_ok || napi_queue_async_work(env, job->work) != napi_ok) {
    if (job->target_ref != NULL) napi_delete_reference(env, job->target_ref);
    if (job->work != NULL) napi_delete_async_work(env, job->work);
    free(job);
    return throw_last(env);
  }
  return promise;
}
#endif

/*
 * One C function per JS function: V8's CPU profiles name native code by the
 * C callback, so variants sharing one would all show under one name.
 */
static napi_value js_crc32c(napi_env env, napi_callback_info info) { return crc32c_call(env, info, 0); }
static napi_value js_crc32c_portable(napi_env env, napi_callback_info info) { return crc32c_call(env, info, 1); }
static napi_value js_crc32c_blocks(napi_env env, napi_callback_info info) { return crc32c_blocks_call(env, info, 0); }
static napi_value js_crc32c_blocks_portable(napi_env env, napi_callback_info info) { return crc32c_blocks_call(env, info, 1); }

static napi_status add_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_status status = napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  if (status != napi_ok) return status;
  return napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT() {
  ensure_tables();
  CHECK(add_function(env, exports, "crc32c", js_crc32c));
  CHECK(add_function(env, exports, "crc32cBlocks", js_crc32c_blocks));
  CHECK(add_function(env, exports, "crc32cPortable", js_crc32c_portable));
  CHECK(add_function(env, exports, "crc32cBlocksPortable", js_crc32c_blocks_portable));
#ifndef _WIN32
  CHECK(add_function(env, exports, "preadBlocks", js_pread_blocks));
  CHECK(add_function(env, exports, "checksumFileBlocks", js_checksum_file_blocks));
  CHECK(add_function(env, exports, "pwriteAligned", js_pwrite_aligned));
#endif
  napi_value hardware, implementation;
  CHECK(napi_get_boolean(env, use_hardware != 0, &hardware));
  const char *name = use_hardware ? "sse4.2, 3 interleaved chains" : "portable slice-by-8";
  CHECK(napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &implementation));
  CHECK(napi_set_named_property(env, exports, "hardware", hardware));
  CHECK(napi_set_named_property(env, exports, "implementation", implementation));
  return exports;
}
