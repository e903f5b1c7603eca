/* The site object: paths, database handle, label and announced emails. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "site-internal.h"

static char *join(const char *dir, const char *name) {
  return goop__path_join(dir, name);
}

int goop_site_open(const goop_config *cfg, const goop_peer_id *owner, goop_site **ret, char *errbuf,
                   size_t errbuf_len) {
  goop_return_val_if_fail(cfg && owner && ret, GOOP_EINVAL);
  const char *base = goop_config_base_dir(cfg);
  if (!base)
    return goop__errbuf(errbuf, errbuf_len, GOOP_EINVAL, "configuration has no peer directory");
  goop_site *s = calloc(1, sizeof(*s));
  if (!s)
    return GOOP_ENOMEM;
  int rc = GOOP_ENOMEM;
  s->peer_dir = strdup(base);
  char *root = goop_config_resolve_path(cfg, "paths.site_root");
  if (root) {
    char real[PATH_MAX];
    s->site_root = realpath(root, real) ? strdup(real) : strdup(root);
    free(root);
  }
  s->db_path = join(base, "data.db");
  s->avatar_path = join(base, "avatar.png");
  const char *label = goop_config_get_string(cfg, "profile.label");
  s->label = strdup(label && *label ? label : "hello");
  const char *email = goop_config_get_string(cfg, "profile.email");
  s->email = strdup(email ? email : "");
  s->owner = *owner;
  if (!s->peer_dir || !s->site_root || !s->db_path || !s->avatar_path || !s->label || !s->email)
    goto fail;
  if (goop_peer_id_to_string(owner, s->owner_text, sizeof(s->owner_text)) < 0) {
    rc = GOOP_EINVAL;
    goto fail;
  }
  s->max_request = 1u << 20;
  s->read_timeout_ms = 10000;
  s->idle_timeout_ms = 30000;
  s->max_rows = 10000;
  int src = sqlite3_open_v2(s->db_path, &s->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (src != SQLITE_OK) {
    rc = goop__errbuf(errbuf, errbuf_len, GOOP_EDB, "%s: %s", s->db_path,
                      s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
    goto fail;
  }
  rc = goop__store_init(s, errbuf, errbuf_len);
  if (rc)
    goto fail;
  *ret = s;
  return 0;
fail:
  goop_site_free(s);
  return rc;
}

void goop_site_free(goop_site *site) {
  if (!site)
    return;
  goop__site_serve_stop(site);
  if (site->db)
    sqlite3_close_v2(site->db);
  for (size_t i = 0; i < site->n_emails; i++)
    free(site->emails[i].email);
  free(site->emails);
  free(site->peer_dir);
  free(site->site_root);
  free(site->db_path);
  free(site->avatar_path);
  free(site->label);
  free(site->email);
  free(site);
}

int goop_site_set_limit(goop_site *site, enum goop_site_limit which, uint64_t value) {
  goop_return_val_if_fail(site && value > 0, GOOP_EINVAL);
  switch (which) {
  case GOOP_SITE_MAX_REQUEST:
    site->max_request = value;
    return 0;
  case GOOP_SITE_READ_TIMEOUT_MS:
    site->read_timeout_ms = value;
    return 0;
  case GOOP_SITE_IDLE_TIMEOUT_MS:
    site->idle_timeout_ms = value;
    return 0;
  case GOOP_SITE_MAX_ROWS:
    site->max_rows = value;
    return 0;
  }
  return GOOP_EINVAL;
}

int goop_site_set_label(goop_site *site, const char *label) {
  goop_return_val_if_fail(site && label, GOOP_EINVAL);
  char *l = strdup(*label ? label : "hello");
  if (!l)
    return GOOP_ENOMEM;
  free(site->label);
  site->label = l;
  return 0;
}

#define GOOP_SITE_MAX_EMAILS 100000

int goop_site_set_peer_email(goop_site *site, const goop_peer_id *peer, const char *email) {
  goop_return_val_if_fail(site && peer, GOOP_EINVAL);
  for (size_t i = 0; i < site->n_emails; i++) {
    if (goop_peer_id_equal(&site->emails[i].peer, peer)) {
      if (!email || !*email) {
        free(site->emails[i].email);
        site->emails[i] = site->emails[--site->n_emails];
        return 0;
      }
      char *e = strdup(email);
      if (!e)
        return GOOP_ENOMEM;
      free(site->emails[i].email);
      site->emails[i].email = e;
      return 0;
    }
  }
  if (!email || !*email)
    return 0;
  if (site->n_emails >= GOOP_SITE_MAX_EMAILS)
    return GOOP_ELIMIT;
  struct goop__peer_email *ne = realloc(site->emails, (site->n_emails + 1) * sizeof(*ne));
  if (!ne)
    return GOOP_ENOMEM;
  site->emails = ne;
  char *e = strdup(email);
  if (!e)
    return GOOP_ENOMEM;
  site->emails[site->n_emails++] = (struct goop__peer_email){*peer, e};
  return 0;
}

const char *goop__site_peer_email(const goop_site *s, const goop_peer_id *peer) {
  for (size_t i = 0; i < s->n_emails; i++)
    if (goop_peer_id_equal(&s->emails[i].peer, peer))
      return s->emails[i].email;
  return NULL;
}
