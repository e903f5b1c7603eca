/*
 * libgoop site: a peer's web site and its database, and the Goop² stream
 * protocols that serve them to other peers.
 *
 *   /goop/site/1.0.0     site files:    "GET <path>\n" -> "OK <mime> <size>\n" + bytes | "ERR <reason>\n"
 *   /goop/data/1.0.0     database ops:  one JSON line in, one JSON line out
 *   /goop/content/1.0.0  the label:     "<label>\n"
 *   /goop/avatar/1.0.0   avatar.png:    "NONE\n" | "OK <size>\n" + bytes
 *
 * The site lives in the peer directory: files under paths.site_root (never
 * lua/, never outside the root, symlinks included), the database in data.db
 * (SQLite, WAL), the avatar in avatar.png.
 *
 * Data operations follow the Goop² request format (op, table, data, id,
 * where, args, columns, limit, offset, ...) and answer {"ok":true,"data":...}
 * or {"ok":false,"error":"..."}. Who asks is never taken from the JSON: the
 * caller is the authenticated remote peer (or, for the owner's viewer, the
 * owner or a guest identity). Tables have insert policies owner, email, open
 * and public; a caller that is not the owner reads only the named table and
 * only the rows its policy allows, whatever it writes in where/columns.
 *
 * THREAD SAFETY: a goop_site belongs to the thread of its host's loop.
 */
#ifndef GOOP_SITE_H
#define GOOP_SITE_H

#include <goop/common.h>
#include <goop/config.h>
#include <goop/identity.h>
#include <goop/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GOOP_PROTO_SITE "/goop/site/1.0.0"
#define GOOP_PROTO_DATA "/goop/data/1.0.0"
#define GOOP_PROTO_CONTENT "/goop/content/1.0.0"
#define GOOP_PROTO_AVATAR "/goop/avatar/1.0.0"

/** Default largest site file a client accepts (50 MiB). */
#define GOOP_SITE_DEFAULT_MAX_FILE (50u << 20)
/** Largest avatar a client accepts (512 KiB). */
#define GOOP_AVATAR_MAX (512u << 10)

typedef struct goop_site goop_site;

/**
 * Open the site of the peer whose configuration is |cfg| (borrowed; only
 * read during the call): the site root (paths.site_root), data.db and
 * avatar.png in the peer directory (goop_config_base_dir()), the label and
 * email (profile.*). |owner| is the peer's own ID (copied). The database is
 * created if missing, with WAL, a busy timeout and foreign keys on.
 * Returns 0, GOOP_EDB (message in |errbuf|), GOOP_EINVAL or GOOP_ENOMEM.
 * Since: 0.1
 */
GOOP_API int goop_site_open(const goop_config *cfg, const goop_peer_id *owner, goop_site **ret, char *errbuf,
                            size_t errbuf_len) GOOP_WARN_UNUSED_RESULT;

/** Stop serving (if served) and close the database. NULL is a no-op. Since: 0.1 */
GOOP_API void goop_site_free(goop_site *site);

/** Tunables of goop_site_set_limit(). */
enum goop_site_limit {
  GOOP_SITE_MAX_REQUEST = 1,     /* bytes of one request line or JSON request (default 1 MiB) */
  GOOP_SITE_READ_TIMEOUT_MS = 2, /* a request must arrive within (default 10000) */
  GOOP_SITE_IDLE_TIMEOUT_MS = 3, /* a response stream that makes no progress (default 30000) */
  GOOP_SITE_MAX_ROWS = 4,        /* rows one query may return (default 10000) */
};
/** Set a limit. GOOP_EINVAL for an unknown limit or 0. Since: 0.1 */
GOOP_API int goop_site_set_limit(goop_site *site, enum goop_site_limit which, uint64_t value);

/** Change the label served on /goop/content/1.0.0 (copied). Since: 0.1 */
GOOP_API int goop_site_set_label(goop_site *site, const char *label);

/**
 * Record the email |peer| announced in its presence (copied; NULL or "" =
 * none). Used by the "email" insert policy. Since: 0.1
 */
GOOP_API int goop_site_set_peer_email(goop_site *site, const goop_peer_id *peer, const char *email);

/* ---- data operations ------------------------------------------------------ */

/** Who runs a data operation. */
struct goop_site_caller {
  /** The value stored as _owner and compared for "own rows": a Peer ID in
   *  text form, or a viewer guest identity. Required. */
  const char *id;
  /** The caller's email (stored as _owner_email; needed by policy "email"). May be NULL. */
  const char *email;
  /** true only for the site owner (own viewer from loopback): no policy
   *  applies and schema operations are allowed. */
  bool is_owner;
};

/**
 * Run one data operation. |request| is the JSON object (|len| bytes, no
 * newline needed). |*ret_response| receives a malloc'd NUL-terminated JSON
 * object {"ok":...} (free with free()), also for failed operations. Writes
 * run in a transaction and are durable when this returns. Returns 0, or
 * GOOP_ENOMEM / GOOP_EINVAL (then no response). Since: 0.1
 */
GOOP_API int goop_site_data_exec(goop_site *site, const struct goop_site_caller *caller, const char *request,
                                 size_t len, char **ret_response) GOOP_WARN_UNUSED_RESULT;

/**
 * Apply a template directory (manifest.json, schema.sql, files) to the site,
 * destructively as Goop² does: drop the registered tables, empty the site
 * root (lua/ kept, lua/functions/ emptied), copy the files, run schema.sql,
 * register its tables with the manifest's policies. Files that would land
 * outside the site root, symlinks and non-regular files refuse the whole
 * template before anything changes; schema.sql runs in one transaction
 * (before the files are copied) under an authorizer. Returns 0, GOOP_EINVAL,
 * GOOP_EFORBIDDEN, GOOP_EPARSE, GOOP_EDB, GOOP_ENOMEM or a file-system error
 * mapped from errno (GOOP_EIO, GOOP_EACCES, ...), with a message in |errbuf|.
 * Since: 0.1
 */
GOOP_API int goop_site_apply_template(goop_site *site, const char *template_dir, char *errbuf,
                                      size_t errbuf_len) GOOP_WARN_UNUSED_RESULT;

/* ---- files ------------------------------------------------------------------ */

/**
 * Map a request path to a file under the site root. The path is
 * percent-decoded once (a malformed escape is refused); "" and "/" mean
 * "/index.html". Rejected with GOOP_EFORBIDDEN: any ".." segment (also when
 * it was written %2e%2e), backslashes, NUL and control bytes, anything under
 * lua/, and paths whose real location (symlinks resolved) leaves the root.
 * GOOP_ENOENT if there is no regular file. |*ret_path| is malloc'd (free with
 * free()). Since: 0.1
 */
GOOP_API int goop_site_resolve_path(const goop_site *site, const char *request_path,
                                    char **ret_path) GOOP_WARN_UNUSED_RESULT;

/** The MIME type Goop² gives a file name (by extension; "application/octet-stream" if unknown). Since: 0.1 */
GOOP_API const char *goop_site_mime_type(const char *path);

/* ---- serving ------------------------------------------------------------------ */

/**
 * Serve the four protocols on |host| (borrowed; must outlive the site or
 * goop_site_unserve()). Requests are bounded in size and time; files are
 * streamed in chunks with constant memory. Returns 0 or a handler error.
 * Since: 0.1
 */
GOOP_API int goop_site_serve(goop_site *site, goop_host *host) GOOP_WARN_UNUSED_RESULT;
/** Stop serving (removes the handlers; running streams finish). Since: 0.1 */
GOOP_API void goop_site_unserve(goop_site *site);

/* ---- clients ------------------------------------------------------------------- */

typedef struct goop_site_fetch goop_site_fetch;

/** Callbacks of a site file fetch. */
struct goop_site_fetch_callbacks {
  uint32_t version; /* GOOP_SITE_FETCH_CALLBACKS_V1 */
  /** The header arrived: MIME type and size. Return < 0 to abort. May be NULL. */
  int (*on_header)(goop_site_fetch *f, const char *mime, uint64_t size, void *user_data);
  /** A chunk of the body (valid during the call). Return < 0 to abort. May be NULL. */
  int (*on_chunk)(goop_site_fetch *f, const uint8_t *data, size_t len, void *user_data);
  /**
   * The fetch ended: |status| 0 (all bytes arrived), GOOP_ENOENT ("ERR not
   * found"), GOOP_EFORBIDDEN ("ERR forbidden"), GOOP_EINVAL ("ERR bad
   * request"), GOOP_ENOTSUP ("ERR site disabled"), GOOP_EMSGSIZE (over the
   * maximum), GOOP_EPROTO (malformed answer), GOOP_ECANCELED, or a
   * connection error. |message| is the remote's ERR text or a description.
   * Called exactly once; the fetch object is freed after it returns.
   */
  void (*on_done)(goop_site_fetch *f, int status, const char *message, void *user_data);
};
#define GOOP_SITE_FETCH_CALLBACKS_V1 1

/**
 * Fetch |path| from |peer|'s site over /goop/site/1.0.0. Flow control:
 * chunks arrive as fast as on_chunk returns (call goop_site_fetch_pause()
 * to stop reading). |max_size| 0 = GOOP_SITE_DEFAULT_MAX_FILE; |timeout_ms|
 * bounds the time to the header (0 = 10 s). |*ret| (may be NULL) receives a
 * handle valid until on_done. Returns 0 or an immediate error (then no
 * callback). Since: 0.1
 */
GOOP_API int goop_site_fetch_start(goop_host *host, const goop_peer_id *peer, const char *path,
                                   uint64_t max_size, uint32_t timeout_ms,
                                   const struct goop_site_fetch_callbacks *cb, void *user_data,
                                   goop_site_fetch **ret);
/** Stop / resume delivering chunks (backpressure for slow consumers). Since: 0.1 */
GOOP_API void goop_site_fetch_pause(goop_site_fetch *f, bool paused);
/** Abort: on_done runs later with GOOP_ECANCELED. Since: 0.1 */
GOOP_API void goop_site_fetch_cancel(goop_site_fetch *f);

/** Result of goop_data_request(): |status| 0 with the response JSON line (without newline), or an error. */
typedef void (*goop_data_cb)(goop_host *host, int status, const char *response, size_t len, void *user_data);

/**
 * Send one data operation (|request|, a JSON object, copied) to |peer| over
 * /goop/data/1.0.0 and deliver its one-line JSON answer (at most 16 MiB).
 * |timeout_ms| 0 = 30 s. Returns 0 (callback later, exactly once) or an
 * immediate error. Since: 0.1
 */
GOOP_API int goop_data_request(goop_host *host, const goop_peer_id *peer, const char *request, size_t len,
                               uint32_t timeout_ms, goop_data_cb cb, void *user_data);

/** Result of goop_content_fetch(): the label (trimmed) or an error. */
typedef void (*goop_content_cb)(goop_host *host, int status, const char *label, void *user_data);
/** Fetch |peer|'s label over /goop/content/1.0.0 (at most 4 KiB; 0 = 5 s timeout). Since: 0.1 */
GOOP_API int goop_content_fetch(goop_host *host, const goop_peer_id *peer, uint32_t timeout_ms,
                                goop_content_cb cb, void *user_data);

/** Result of goop_avatar_fetch(): bytes, or GOOP_ENOENT for "NONE", or an error. */
typedef void (*goop_avatar_cb)(goop_host *host, int status, const uint8_t *data, size_t len, void *user_data);
/** Fetch |peer|'s avatar over /goop/avatar/1.0.0 (at most GOOP_AVATAR_MAX; 0 = 10 s). Since: 0.1 */
GOOP_API int goop_avatar_fetch(goop_host *host, const goop_peer_id *peer, uint32_t timeout_ms,
                               goop_avatar_cb cb, void *user_data);

#ifdef __cplusplus
}
#endif
#endif
