/*
 * The rendezvous server's template store (spec B §9.6, §11.2): every
 * subdirectory holding a manifest.json under the configured template
 * directories, validated and cached in memory at load time, each with its
 * StoreMeta JSON and its bundle (ustar in gzip with stored deflate blocks)
 * built once. Serves GET /api/templates, /api/templates/<dir>/manifest.json
 * and /api/templates/<dir>/bundle.
 *
 * A loaded set is immutable and reference counted: a reload builds a new set
 * and swaps it in, and a bundle still being sent keeps the old one alive.
 */
#ifndef GOOP_CLI_RDV_TEMPLATES_H
#define GOOP_CLI_RDV_TEMPLATES_H

#include "core/buf.h"

#include <goop/config.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RDV_TPL_MAX_FILES 256                 /* files per template */
#define RDV_TPL_MAX_BYTES (8u << 20)          /* file bytes per template */
#define RDV_TPL_MAX_TOTAL ((size_t)64u << 20) /* file bytes of all templates */
#define RDV_TPL_MAX_TEMPLATES 4096            /* templates in one set */
#define RDV_TPL_MAX_MANIFEST (64u << 10)      /* manifest.json size */
#define RDV_TPL_MAX_DIR_NAME 64               /* template directory name length */
#define RDV_TPL_MAX_DEPTH 16                  /* subdirectory nesting inside a template */

struct rdv_tpl_limits {
  size_t max_files;          /* 0 = RDV_TPL_MAX_FILES */
  size_t max_template_bytes; /* 0 = RDV_TPL_MAX_BYTES */
  size_t max_total_bytes;    /* 0 = RDV_TPL_MAX_TOTAL */
};

/* One log line (without a trailing newline). */
typedef void (*rdv_tpl_log_fn)(void *ud, const char *msg);

struct rdv_templates;

/* Scan |dirs| in order (NULL or "" entries are skipped; a later directory's
 * template replaces an earlier one of the same name), log and skip every
 * invalid or oversized template, and return the new set in |*ret| (possibly
 * empty: missing directories are not an error). |lim| NULL = defaults.
 * Returns 0, or -1 when out of memory (|*ret| NULL). */
int rdv_templates_load(const char *const *dirs, size_t n, const struct rdv_tpl_limits *lim,
                       rdv_tpl_log_fn log, void *ud, struct rdv_templates **ret);
/* Build a new set from |dirs| and swap it into |*cur| (the old one is
 * released). On failure |*cur| is kept. Returns 0 or -1. This is what the
 * server does on SIGHUP (rdv_server_reload()). */
int rdv_templates_reload(struct rdv_templates **cur, const char *const *dirs, size_t n,
                         const struct rdv_tpl_limits *lim, rdv_tpl_log_fn log, void *ud);
struct rdv_templates *rdv_templates_ref(struct rdv_templates *t);
/* NULL is a no-op. */
void rdv_templates_unref(struct rdv_templates *t);

/* Number of templates (NULL = 0). */
size_t rdv_templates_count(const struct rdv_templates *t);
/* The JSON array of StoreMeta sorted by dir, with a trailing newline. Borrowed. */
const char *rdv_templates_list_json(const struct rdv_templates *t, size_t *ret_len);
/* The landing page's store section (HTML: "<N> ready-made sites available"
 * and one item per template), "" without templates. Borrowed. */
const char *rdv_templates_html(const struct rdv_templates *t);
/* StoreMeta JSON (trailing newline) and bundle of template |dir|; -1 if unknown. Borrowed. */
int rdv_templates_get(const struct rdv_templates *t, const char *dir, const char **ret_meta,
                      size_t *ret_meta_len, const uint8_t **ret_bundle, size_t *ret_bundle_len);

/* The template directories of |cfg|: presence.templates_dir then every
 * presence.templates_dirs entry, relative ones joined to the configuration's
 * base directory, empty ones left out. Free with rdv_templates_dirs_free().
 * Returns 0 or -1 (out of memory). */
int rdv_templates_config_dirs(const goop_config *cfg, char ***ret, size_t *ret_n);
void rdv_templates_dirs_free(char **dirs, size_t n);

/* ---- HTTP ---- */

/* True if |url| belongs to the store API (/api/templates and below). */
bool rdv_templates_match(const char *url);

enum rdv_tpl_route {
  RDV_TPL_NOT_FOUND,  /* 404 */
  RDV_TPL_BAD_METHOD, /* 405 */
  RDV_TPL_LIST,
  RDV_TPL_MANIFEST,
  RDV_TPL_BUNDLE,
};

/* Resolve |url| (already percent-decoded) and |method| against |t|. For
 * RDV_TPL_MANIFEST and RDV_TPL_BUNDLE the template's name is copied into
 * |dir| (at least RDV_TPL_MAX_DIR_NAME + 1 bytes). */
enum rdv_tpl_route rdv_templates_route(const struct rdv_templates *t, const char *url, const char *method,
                                       char *dir);

/* The server's MHD_OPTION_UNESCAPE_CALLBACK: percent-decode |s| in place as
 * MHD does, except that %2F (either case) stays as it is, so an encoded slash
 * never acts as a path separator (/api/templates/a%2Fbundle is 404, not
 * a/bundle). Returns the new length. */
size_t rdv_templates_unescape(void *cls, struct MHD_Connection *c, char *s);

/* Answer a request for which rdv_templates_match() is true. */
enum MHD_Result rdv_templates_serve(struct rdv_templates *t, struct MHD_Connection *c, const char *url,
                                    const char *method);

/* ---- building blocks (exposed for tests and the fuzz target) ---- */

/* CRC-32 of RFC 1952 (reflected 0xEDB88320), continuing from |crc| (0 to start). */
uint32_t rdv_crc32(uint32_t crc, const void *data, size_t len);
/* Append |data| as a gzip member with deflate stored blocks (RFC 1951
 * BTYPE=00, at most 65535 bytes each) to |out|. Returns 0 or a goop_buf error. */
int rdv_gzip_stored(const void *data, size_t len, goop_buf *out);
/* Append one ustar regular-file entry (mode 0644) to |out|. Returns 0, -1 if
 * |name| does not fit a ustar header, or a goop_buf error. */
int rdv_tar_add(goop_buf *out, const char *name, const void *data, size_t len, int64_t mtime);
/* Append the end-of-archive marker (two zero blocks). */
int rdv_tar_end(goop_buf *out);

/* True if |name| is a valid template directory name ([A-Za-z0-9._-], no leading dot). */
bool rdv_template_name_ok(const char *name);
/* Validate the manifest |data| of template |dir| and return its StoreMeta
 * JSON (malloc'd, no trailing newline) in |*ret|. Returns 0, or -1 with the
 * reason in |err|. */
int rdv_template_meta(const char *data, size_t len, const char *dir, char **ret, char *err, size_t errlen);

#endif
