/*
 * libgoop config: the peer's goop.json and its directory.
 *
 * Keys are addressed by their dotted name ("p2p.listen_port"). Every key of
 * goop.json(5) exists with its default; unknown keys in a file are ignored.
 * A loaded configuration is always valid (goop_config_validate() passed).
 *
 * THREAD SAFETY: a goop_config may be used from one thread at a time.
 */
#ifndef GOOP_CONFIG_H
#define GOOP_CONFIG_H

#include <goop/common.h>
#include <goop/identity.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct goop_config goop_config;

/** Value types of configuration keys. */
enum goop_config_type {
  GOOP_CONFIG_STRING = 1,
  GOOP_CONFIG_INT = 2,
  GOOP_CONFIG_BOOL = 3,
  GOOP_CONFIG_STRV = 4, /* array of strings */
};

/** A configuration with every key at its default. Since: 0.1 */
GOOP_API int goop_config_new_default(goop_config **ret) GOOP_WARN_UNUSED_RESULT;

/**
 * Parse a JSON document (a leading UTF-8 BOM is skipped) on top of the
 * defaults, then validate. |base_dir| (may be NULL) is the directory relative
 * paths are resolved against. On error returns GOOP_ECONFIG (validation; the
 * exact goop.json(5) message in |errbuf|) or GOOP_EPARSE (bad JSON; message
 * with line and column). Since: 0.1
 */
GOOP_API int goop_config_parse(const char *json, size_t len, const char *base_dir, goop_config **ret,
                               char *errbuf, size_t errbuf_len) GOOP_WARN_UNUSED_RESULT;

/**
 * Load |path|. Errors as goop_config_parse(), plus GOOP_ENOENT/GOOP_EACCES/
 * GOOP_EIO for the file; |errbuf| names the file. The directory of |path| is
 * the base for relative paths. Since: 0.1
 */
GOOP_API int goop_config_load(const char *path, goop_config **ret, char *errbuf,
                              size_t errbuf_len) GOOP_WARN_UNUSED_RESULT;

/**
 * Load |path|, or if it does not exist write the defaults there (2-space
 * indented JSON, all keys) and return them. |*ret_created| may be NULL.
 * An existing invalid file is an error and is left untouched. Since: 0.1
 */
GOOP_API int goop_config_ensure(const char *path, goop_config **ret, bool *ret_created, char *errbuf,
                                size_t errbuf_len) GOOP_WARN_UNUSED_RESULT;

/** Validate and write |cfg| to |path| atomically (2-space JSON, all keys). Since: 0.1 */
GOOP_API int goop_config_save(const goop_config *cfg, const char *path, char *errbuf,
                              size_t errbuf_len) GOOP_WARN_UNUSED_RESULT;

/**
 * Check every rule of goop.json(5) in its documented order. Returns 0 or
 * GOOP_ECONFIG with the first message in |errbuf|. Since: 0.1
 */
GOOP_API int goop_config_validate(const goop_config *cfg, char *errbuf, size_t errbuf_len);

/** Free. NULL is a no-op. Since: 0.1 */
GOOP_API void goop_config_free(goop_config *cfg);

/** Serialize to a malloc'd NUL-terminated JSON string (free with free()). NULL on ENOMEM. Since: 0.1 */
GOOP_API char *goop_config_to_json(const goop_config *cfg);

/* ---- key access --------------------------------------------------------------- */

/** Type of key |key|, or 0 if it is not a known key. Since: 0.1 */
GOOP_API int goop_config_key_type(const char *key);
/** The |i|-th known key name (NULL past the end), in goop.json order. Since: 0.1 */
GOOP_API const char *goop_config_key_at(size_t i);

/** String value (never NULL for a string key; NULL for an unknown key). Borrowed. Since: 0.1 */
GOOP_API const char *goop_config_get_string(const goop_config *cfg, const char *key);
/** Integer value (0 for unknown keys). Since: 0.1 */
GOOP_API int64_t goop_config_get_int(const goop_config *cfg, const char *key);
/** Boolean value (false for unknown keys). Since: 0.1 */
GOOP_API bool goop_config_get_bool(const goop_config *cfg, const char *key);
/** Number of strings of a string-array key. Since: 0.1 */
GOOP_API size_t goop_config_get_strv_len(const goop_config *cfg, const char *key);
/** The |i|-th string of a string-array key (NULL past the end). Borrowed. Since: 0.1 */
GOOP_API const char *goop_config_get_strv(const goop_config *cfg, const char *key, size_t i);

/** Setters; they do not validate (call goop_config_validate()). GOOP_EINVAL on a wrong key/type. Since: 0.1
 */
GOOP_API int goop_config_set_string(goop_config *cfg, const char *key, const char *value);
GOOP_API int goop_config_set_int(goop_config *cfg, const char *key, int64_t value);
GOOP_API int goop_config_set_bool(goop_config *cfg, const char *key, bool value);
/** Replace a string array with |n| strings (copied). Since: 0.1 */
GOOP_API int goop_config_set_strv(goop_config *cfg, const char *key, const char *const *values, size_t n);

/**
 * Resolve the path-valued key |key| against the configuration's base
 * directory: absolute paths are returned cleaned, relative ones joined to the
 * base. Returns a malloc'd string (free with free()) or NULL. Since: 0.1
 */
GOOP_API char *goop_config_resolve_path(const goop_config *cfg, const char *key);

/** The base directory given at load time (may be NULL). Borrowed. Since: 0.1 */
GOOP_API const char *goop_config_base_dir(const goop_config *cfg);

/* ---- peer directory ------------------------------------------------------------- */

/** What goop_peer_dir_open() created (bit flags in |*ret_created|). */
enum goop_peer_dir_created {
  GOOP_PEER_DIR_CREATED_DIR = 1,
  GOOP_PEER_DIR_CREATED_CONFIG = 2,
  GOOP_PEER_DIR_CREATED_IDENTITY = 4,
  GOOP_PEER_DIR_CREATED_SITE = 8,
};

/**
 * Open a peer directory, creating what is missing: |dir| itself, goop.json
 * with defaults, the identity key (mode 0600 in a 0700 directory) and the site
 * root with a small index.html. Returns the loaded configuration and identity
 * (either out-pointer may be NULL). A corrupt goop.json or key file is an
 * error and is never replaced. |errbuf| says what to fix. Since: 0.1
 */
GOOP_API int goop_peer_dir_open(const char *dir, goop_config **ret_cfg, goop_identity **ret_id,
                                unsigned *ret_created, char *errbuf,
                                size_t errbuf_len) GOOP_WARN_UNUSED_RESULT GOOP_NONNULL(1);

#ifdef __cplusplus
}
#endif
#endif
