/* Internal helpers shared by every libgoop module. Never installed. */
#ifndef GOOP_INTERNAL_H
#define GOOP_INTERNAL_H

#include <goop/common.h>
#include <stdarg.h>
#include <stdio.h>

#define GOOP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define GOOP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GOOP_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define goop_likely(x) __builtin_expect(!!(x), 1)
#define goop_unlikely(x) __builtin_expect(!!(x), 0)
#else
#define goop_likely(x) (x)
#define goop_unlikely(x) (x)
#endif

/* Soft argument check for public functions. */
#define goop_return_val_if_fail(expr, val)                                                                   \
  do {                                                                                                       \
    if (goop_unlikely(!(expr)))                                                                              \
      return (val);                                                                                          \
  } while (0)

struct goop_ctx {
  struct event_base *base;
  goop_log_fn log_fn;
  void *log_ud;
  enum goop_log_level log_max;
};

/* Log through |ctx| (may be NULL: silent). */
void goop__log(const goop_ctx *ctx, enum goop_log_level level, const char *fmt, ...) GOOP_PRINTF(3, 4);
#define goop__log_error(ctx, ...) goop__log((ctx), GOOP_LOG_ERROR, __VA_ARGS__)
#define goop__log_warn(ctx, ...) goop__log((ctx), GOOP_LOG_WARN, __VA_ARGS__)
#define goop__log_info(ctx, ...) goop__log((ctx), GOOP_LOG_INFO, __VA_ARGS__)
#define goop__log_debug(ctx, ...) goop__log((ctx), GOOP_LOG_DEBUG, __VA_ARGS__)

/* printf into an optional error buffer (|buf| may be NULL). Returns |err|. */
int goop__errbuf(char *buf, size_t len, int err, const char *fmt, ...) GOOP_PRINTF(4, 5);

/* Map an errno value to a GOOP_E* code (unknown → GOOP_EIO). */
int goop__from_errno(int e);

/* Monotonic time in microseconds. */
goop_tstamp goop__now_us(void);

/* Constant-time comparison: 0 if equal. */
int goop__memeq_ct(const void *a, const void *b, size_t len);

/* Wipe memory in a way the compiler cannot drop. */
void goop__wipe(void *p, size_t len);

/* ---- files ---- */

/* mkdir -p with |mode| for directories it creates. Returns 0 or GOOP_E*. */
int goop__mkdir_p(const char *path, unsigned mode);

/*
 * Write |len| bytes to |path| atomically: temporary file in the same
 * directory, fsync, rename, fsync of the directory. |mode| is the file mode.
 */
int goop__write_file_atomic(const char *path, const void *data, size_t len, unsigned mode);

/* Read a whole regular file of at most |max| bytes into a malloc'd buffer
 * (NUL-terminated for convenience; |*ret_len| excludes it). */
int goop__read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len);

/* Join |dir| and |rel| (rel absolute → just rel), cleaning "." and "..".
 * Returns malloc'd string or NULL. */
char *goop__path_join(const char *dir, const char *rel);

/* Lexically clean a path (like Go's filepath.Clean). Returns malloc'd or NULL. */
char *goop__path_clean(const char *path);

/* strdup that returns NULL for NULL. */
char *goop__strdup(const char *s);

#endif
