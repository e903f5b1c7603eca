/* Site module internals shared by site.c (object), store.c (data operations),
 * template.c, files.c (paths, MIME), serve.c (protocol servers) and client.c. */
#ifndef GOOP_SITE_INTERNAL_H
#define GOOP_SITE_INTERNAL_H

#include <goop/site.h>
#include <sqlite3.h>

#include "common/internal.h"

struct goop__peer_email {
  goop_peer_id peer;
  char *email;
};

struct goop_site {
  char *peer_dir;  /* absolute peer directory */
  char *site_root; /* absolute, symlinks resolved (realpath) if it exists */
  char *db_path;   /* <peer_dir>/data.db */
  char *avatar_path;
  char *lua_dir_rel; /* "lua" : never served */
  char *label;
  char *email; /* own profile.email */
  goop_peer_id owner;
  char owner_text[GOOP_PEER_ID_STR_MAX];
  sqlite3 *db;
  struct goop__peer_email *emails;
  size_t n_emails;
  uint64_t max_request;
  uint64_t read_timeout_ms;
  uint64_t idle_timeout_ms;
  uint64_t max_rows;
  goop_host *host;   /* while served */
  void *serve_state; /* serve.c */
};

/* The email |peer| announced, or NULL. */
const char *goop__site_peer_email(const goop_site *s, const goop_peer_id *peer);

/* store.c: create the internal tables (called by goop_site_open). */
int goop__store_init(goop_site *s, char *errbuf, size_t errbuf_len);

/* serve.c: stop serving (called by goop_site_free). */
void goop__site_serve_stop(goop_site *s);

/* files.c: the longest /goop/site/1.0.0 request line or header line (8 KiB). */
#define GOOP__SITE_MAX_LINE 8192

/* files.c: parse one /goop/site/1.0.0 request line ("GET <path>", surrounding
 * whitespace and the newline allowed). 0 and the path (malloc'd, not yet
 * decoded), GOOP_EINVAL (bad request), GOOP_EFORBIDDEN (NUL byte) or GOOP_ENOMEM. */
int goop__site_parse_request(const char *line, size_t len, char **ret_path);

/* files.c: the server's decision for one request line, without I/O: 0 and the
 * file to send (malloc'd), or an error with |*ret_err| set to the reply line
 * ("ERR ...\n"; static), or GOOP_ENOMEM (no reply). */
int goop__site_answer_request(const goop_site *site, const char *line, size_t len, char **ret_path,
                              const char **ret_err);

#endif
