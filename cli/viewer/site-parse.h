/*
 * Small bounded parsers of the viewer's site routes (routes-site.c): HTTP
 * Range and If-None-Match values, request and upload paths, and the
 * multipart/form-data body of /api/site/upload. No I/O, no allocation;
 * fuzzed by fuzz/fuzz-site-http.c.
 */
#ifndef GOOP_CLI_SITE_PARSE_H
#define GOOP_CLI_SITE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SITE_PATH_MAX 1024 /* bytes of a site-relative path */

/*
 * A "Range" header (may be NULL) against a file of |size| bytes: 0 = none or
 * not used (other units, several ranges: the whole file is sent), 1 = one
 * satisfiable range in |*start|, |*len|, -1 = malformed or unsatisfiable (416).
 */
int site_parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *len);

/* Does If-None-Match |inm| (a list of entity tags, W/ ignored, or "*"; may be NULL) name |etag|? */
bool site_etag_matches(const char *inm, const char *etag);

/*
 * A request path (percent-decoded once by the HTTP server) that must not be
 * looked up: a backslash, a control byte, a "." or ".." segment, or an
 * escape that would decode to '.', '/', '\', '%' or a control byte.
 */
bool site_path_tricky(const char *p);

/*
 * A site-relative path for writing: leading '/' dropped, no empty, "." or
 * ".." segment, no backslash or control byte, not lua/ or under it, at most
 * SITE_PATH_MAX bytes, no trailing '/'. Returns the start inside |p| or NULL.
 */
const char *site_rel_path_ok(const char *p);

/* Image files (.png .jpg .jpeg .gif .webp .svg .ico .bmp), which uploads put under images/ only. */
bool site_is_image(const char *path);

/* One field of a multipart body (points into the body). */
struct site_part {
  const uint8_t *data;
  size_t len;
  bool found;
};

/*
 * Find the fields "path" and "file" (the first of each name) in a
 * multipart/form-data |body| whose Content-Type is |ctype| (boundary of at
 * most 79 bytes, at most 64 parts, part headers of at most 8 KiB).
 * Returns 0, or -1 when malformed.
 */
int site_multipart_fields(const char *ctype, const uint8_t *body, size_t len, struct site_part *path,
                          struct site_part *file);

#endif
