/*
 * libgoop — common definitions: export macro, error codes, logging, context.
 *
 * THREAD SAFETY: every libgoop object belongs to one thread, the thread that
 * runs the caller's libevent loop. The only functions that may be called from
 * any thread are goop_strerror(), goop_err_name() and goop_version().
 */
#ifndef GOOP_COMMON_H
#define GOOP_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BUILDING_GOOP) && defined(__GNUC__)
#define GOOP_API __attribute__((visibility("default")))
#else
#define GOOP_API
#endif

#if defined(__GNUC__)
#define GOOP_WARN_UNUSED_RESULT __attribute__((warn_unused_result))
#define GOOP_NONNULL(...) __attribute__((nonnull(__VA_ARGS__)))
#define GOOP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GOOP_WARN_UNUSED_RESULT
#define GOOP_NONNULL(...)
#define GOOP_PRINTF(a, b)
#endif

/** Time in microseconds (monotonic unless a function says otherwise). */
typedef uint64_t goop_tstamp;

/*
 * Error codes. Functions return int: 0 (GOOP_OK) on success, a negative
 * GOOP_E* code on failure. System errors keep their errno value negated
 * (GOOP_ECONNREFUSED == -ECONNREFUSED); libgoop's own codes are <= -1000 and
 * are never renumbered. The table is append-only.
 */
#define GOOP_ERRNO_MAP(XX)                                                                                   \
  XX(EPERM, -EPERM, "operation not permitted")                                                               \
  XX(ENOENT, -ENOENT, "no such file or directory")                                                           \
  XX(EIO, -EIO, "i/o error")                                                                                 \
  XX(EAGAIN, -EAGAIN, "resource temporarily unavailable")                                                    \
  XX(ENOMEM, -ENOMEM, "out of memory")                                                                       \
  XX(EACCES, -EACCES, "permission denied")                                                                   \
  XX(EBUSY, -EBUSY, "resource busy")                                                                         \
  XX(EEXIST, -EEXIST, "already exists")                                                                      \
  XX(ENOTDIR, -ENOTDIR, "not a directory")                                                                   \
  XX(EISDIR, -EISDIR, "is a directory")                                                                      \
  XX(EINVAL, -EINVAL, "invalid argument")                                                                    \
  XX(ENOSPC, -ENOSPC, "no space left on device")                                                             \
  XX(EPIPE, -EPIPE, "broken pipe")                                                                           \
  XX(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                                                           \
  XX(ELOOP, -ELOOP, "too many symbolic links")                                                               \
  XX(EPROTO, -EPROTO, "protocol error")                                                                      \
  XX(EMSGSIZE, -EMSGSIZE, "message too long")                                                                \
  XX(EOVERFLOW, -EOVERFLOW, "value too large")                                                               \
  XX(ENOTSUP, -ENOTSUP, "operation not supported")                                                           \
  XX(EADDRINUSE, -EADDRINUSE, "address already in use")                                                      \
  XX(EADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")                                                 \
  XX(ENETUNREACH, -ENETUNREACH, "network is unreachable")                                                    \
  XX(ECONNABORTED, -ECONNABORTED, "connection aborted")                                                      \
  XX(ECONNRESET, -ECONNRESET, "connection reset by peer")                                                    \
  XX(ENOTCONN, -ENOTCONN, "not connected")                                                                   \
  XX(ETIMEDOUT, -ETIMEDOUT, "timed out")                                                                     \
  XX(ECONNREFUSED, -ECONNREFUSED, "connection refused")                                                      \
  XX(EHOSTUNREACH, -EHOSTUNREACH, "host is unreachable")                                                     \
  XX(EALREADY, -EALREADY, "operation already in progress")                                                   \
  XX(ECANCELED, -ECANCELED, "operation canceled")                                                            \
  XX(EPARSE, -1000, "malformed input")                                                                       \
  XX(EBADSIG, -1001, "signature verification failed")                                                        \
  XX(EPEERID, -1002, "peer ID mismatch")                                                                     \
  XX(EKEYTYPE, -1003, "unsupported key type")                                                                \
  XX(ECONFIG, -1004, "invalid configuration")                                                                \
  XX(ECALLBACK, -1005, "user callback failed")                                                               \
  XX(ECRYPTO, -1006, "cryptographic library failure")                                                        \
  XX(ELIMIT, -1007, "limit reached")                                                                         \
  XX(ENEGOTIATION, -1008, "protocol negotiation failed")                                                     \
  XX(ERESET, -1009, "stream reset")                                                                          \
  XX(ECLOSED, -1010, "closed")                                                                               \
  XX(EDB, -1011, "database error")                                                                           \
  XX(ETRUNCATED, -1012, "truncated input")                                                                   \
  XX(EFORBIDDEN, -1013, "forbidden")                                                                         \
  XX(ESTATE, -1014, "invalid state for this operation")                                                      \
  XX(ENOADDR, -1015, "no known address for peer")                                                            \
  XX(EGOAWAY, -1016, "connection is going away")

enum goop_status {
  GOOP_OK = 0,
#define GOOP__XX(name, val, msg) GOOP_##name = (val),
  GOOP_ERRNO_MAP(GOOP__XX)
#undef GOOP__XX
};

/** Static text for |err| ("unknown error" if not a GOOP_E* code). Never NULL. Since: 0.1 */
GOOP_API const char *goop_strerror(int err);
/** Symbolic name of |err|, e.g. "GOOP_EPROTO" ("GOOP_UNKNOWN" if none). Never NULL. Since: 0.1 */
GOOP_API const char *goop_err_name(int err);

/** Size of the error-message buffers that some functions fill (|errbuf|). */
#define GOOP_ERRBUF_SIZE 512

/* ---- logging ------------------------------------------------------------ */

enum goop_log_level {
  GOOP_LOG_ERROR = 0,
  GOOP_LOG_WARN = 1,
  GOOP_LOG_INFO = 2,
  GOOP_LOG_DEBUG = 3,
};

/** A log sink. |msg| is one line without a trailing newline, valid only during the call. */
typedef void (*goop_log_fn)(enum goop_log_level level, const char *msg, void *user_data);

/* ---- context -------------------------------------------------------------- */

struct event_base;

/**
 * A context ties libgoop objects to the caller's libevent loop and log sink.
 * The library never prints: without goop_ctx_set_log_fn() it is silent.
 */
typedef struct goop_ctx goop_ctx;

/**
 * Create a context on |base| (borrowed; must outlive the context; may be NULL
 * for code that needs no I/O). Returns 0 or GOOP_EINVAL / GOOP_ENOMEM.
 * |*ret| is untouched on failure. Since: 0.1
 */
GOOP_API int goop_ctx_new(struct event_base *base, goop_ctx **ret) GOOP_WARN_UNUSED_RESULT;
/** Free a context. NULL is a no-op. Objects created on it must be freed first. Since: 0.1 */
GOOP_API void goop_ctx_free(goop_ctx *ctx);
/** The event base given to goop_ctx_new(). Since: 0.1 */
GOOP_API struct event_base *goop_ctx_get_base(const goop_ctx *ctx);
/** Install a log sink (NULL = silent) and the most verbose level it receives. Since: 0.1 */
GOOP_API void goop_ctx_set_log_fn(goop_ctx *ctx, goop_log_fn fn, enum goop_log_level max_level,
                                  void *user_data);

/* ---- version -------------------------------------------------------------- */

typedef struct goop_version_info {
  uint32_t version_num; /* 0xMMmmpp */
  const char *version_str;
} goop_version_info;

/**
 * Runtime version. Returns NULL if the library is older than |least_version|
 * (0xMMmmpp; 0 accepts any). Since: 0.1
 */
GOOP_API const goop_version_info *goop_version(uint32_t least_version);

/** Optional features compiled into this build. */
enum goop_feature {
  GOOP_FEATURE_MDNS = 1,
  GOOP_FEATURE_RENDEZVOUS_SERVER = 2,
};
/** true if |f| is compiled in. Since: 0.1 */
GOOP_API bool goop_has_feature(enum goop_feature f);

#ifdef __cplusplus
}
#endif
#endif
