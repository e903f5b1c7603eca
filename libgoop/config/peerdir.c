/*
 * Peer directory: goop.json, identity key and site root, created on first use.
 */
#include "internal.h"

#include <dirent.h>
#include <goop/config.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char default_index_html[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "  <meta charset=\"utf-8\">\n"
    "  <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "  <title>Hello from Goop\xc2\xb2</title>\n"
    "  <link rel=\"stylesheet\" href=\"style.css\">\n"
    "</head>\n"
    "<body>\n"
    "  <main>\n"
    "    <h1>Hello from Goop\xc2\xb2</h1>\n"
    "    <p>This is the start page of a new peer. Edit <code>site/index.html</code> in the peer\n"
    "    directory to make it yours.</p>\n"
    "  </main>\n"
    "</body>\n"
    "</html>\n";

static const char default_style_css[] = "body {\n"
                                        "  font-family: system-ui, sans-serif;\n"
                                        "  margin: 0;\n"
                                        "  background: #f6f6f4;\n"
                                        "  color: #222;\n"
                                        "}\n"
                                        "\n"
                                        "main {\n"
                                        "  max-width: 40rem;\n"
                                        "  margin: 4rem auto;\n"
                                        "  padding: 0 1rem;\n"
                                        "  line-height: 1.5;\n"
                                        "}\n"
                                        "\n"
                                        "h1 {\n"
                                        "  font-weight: 600;\n"
                                        "}\n";

/* |dir| made absolute and cleaned. Malloc'd or NULL. */
static char *absolute_path(const char *dir) {
  if (dir[0] == '/')
    return goop__path_clean(dir);
  char *cwd = getcwd(NULL, 0);
  if (!cwd)
    return NULL;
  char *out = goop__path_join(cwd, dir);
  free(cwd);
  return out;
}

/* 1 if |path| is a directory without entries, 0 if it has some, <0 on error. */
static int dir_is_empty(const char *path) {
  DIR *d = opendir(path);
  if (!d)
    return goop__from_errno(errno);
  int empty = 1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      empty = 0;
      break;
    }
  }
  closedir(d);
  return empty;
}

/* Make sure the parent directory of |path| exists; create it with |mode| if not. */
static int ensure_parent(const char *path, unsigned mode) {
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path)
    return 0;
  char *parent = strndup(path, (size_t)(slash - path));
  if (!parent)
    return GOOP_ENOMEM;
  struct stat st;
  int rc = 0;
  if (stat(parent, &st) != 0)
    rc = goop__mkdir_p(parent, mode);
  free(parent);
  return rc;
}

static int write_site(const char *root, char *errbuf, size_t errbuf_len) {
  char *index = goop__path_join(root, "index.html");
  char *css = goop__path_join(root, "style.css");
  int rc = GOOP_ENOMEM;
  if (!index || !css) {
    rc = goop__errbuf(errbuf, errbuf_len, rc, "out of memory");
    goto out;
  }
  rc = goop__write_file_atomic(index, default_index_html, sizeof(default_index_html) - 1, 0644);
  if (rc < 0) {
    rc = goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot write: %s", index, goop_strerror(rc));
    goto out;
  }
  rc = goop__write_file_atomic(css, default_style_css, sizeof(default_style_css) - 1, 0644);
  if (rc < 0)
    rc = goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot write: %s", css, goop_strerror(rc));
out:
  free(index);
  free(css);
  return rc;
}

/* Create the site root with a start page if it is missing or empty. */
static int ensure_site(const char *root, bool *ret_created, char *errbuf, size_t errbuf_len) {
  struct stat st;
  *ret_created = false;
  if (stat(root, &st) != 0) {
    if (errno != ENOENT) {
      int rc = goop__from_errno(errno);
      return goop__errbuf(errbuf, errbuf_len, rc, "%s: %s", root, goop_strerror(rc));
    }
    int rc = goop__mkdir_p(root, 0755);
    if (rc < 0)
      return goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot create the site directory: %s", root,
                          goop_strerror(rc));
  } else if (!S_ISDIR(st.st_mode)) {
    return goop__errbuf(errbuf, errbuf_len, GOOP_ENOTDIR,
                        "%s: the site root (paths.site_root) exists but is not a directory", root);
  } else {
    int empty = dir_is_empty(root);
    if (empty < 0)
      return goop__errbuf(errbuf, errbuf_len, empty, "%s: %s", root, goop_strerror(empty));
    if (!empty)
      return 0;
  }
  int rc = write_site(root, errbuf, errbuf_len);
  if (rc < 0)
    return rc;
  *ret_created = true;
  return 0;
}

int goop_peer_dir_open(const char *dir, goop_config **ret_cfg, goop_identity **ret_id, unsigned *ret_created,
                       char *errbuf, size_t errbuf_len) {
  goop_return_val_if_fail(*dir != '\0', GOOP_EINVAL);
  unsigned created = 0;
  goop_config *cfg = NULL;
  goop_identity *id = NULL;
  char *cfg_path = NULL, *key_path = NULL, *site = NULL;
  char msg[GOOP_ERRBUF_SIZE] = "";
  int rc;

  char *abs = absolute_path(dir);
  if (!abs)
    return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "%s: cannot resolve the peer directory", dir);

  struct stat st;
  if (stat(abs, &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      rc = goop__errbuf(errbuf, errbuf_len, GOOP_ENOTDIR, "%s: the peer directory is not a directory", abs);
      goto fail;
    }
  } else if (errno == ENOENT) {
    rc = goop__mkdir_p(abs, 0755);
    if (rc < 0) {
      rc = goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot create the peer directory: %s", abs,
                        goop_strerror(rc));
      goto fail;
    }
    created |= GOOP_PEER_DIR_CREATED_DIR;
  } else {
    rc = goop__from_errno(errno);
    rc = goop__errbuf(errbuf, errbuf_len, rc, "%s: %s", abs, goop_strerror(rc));
    goto fail;
  }

  cfg_path = goop__path_join(abs, "goop.json");
  if (!cfg_path) {
    rc = goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
    goto fail;
  }
  bool cfg_created = false;
  rc = goop_config_ensure(cfg_path, &cfg, &cfg_created, msg, sizeof(msg));
  if (rc < 0) {
    if (rc == GOOP_EPARSE || rc == GOOP_ECONFIG)
      rc = goop__errbuf(errbuf, errbuf_len, rc, "%s (fix goop.json; it is never overwritten)", msg);
    else
      rc = goop__errbuf(errbuf, errbuf_len, rc, "%s", msg);
    goto fail;
  }
  if (cfg_created)
    created |= GOOP_PEER_DIR_CREATED_CONFIG;

  key_path = goop_config_resolve_path(cfg, "identity.key_file");
  if (!key_path) {
    rc = goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
    goto fail;
  }
  rc = ensure_parent(key_path, 0700);
  if (rc < 0) {
    rc = goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot create the key directory: %s", key_path,
                      goop_strerror(rc));
    goto fail;
  }
  bool id_created = false;
  rc = goop_identity_load_or_create(key_path, &id, &id_created, msg, sizeof(msg));
  if (rc < 0) {
    if (rc == GOOP_EPARSE || rc == GOOP_EKEYTYPE)
      rc = goop__errbuf(errbuf, errbuf_len, rc,
                        "%s (the key file is never replaced: restore it from a backup, or move it away "
                        "to create a new identity)",
                        msg[0] ? msg : key_path);
    else
      rc = goop__errbuf(errbuf, errbuf_len, rc, "%s", msg[0] ? msg : key_path);
    goto fail;
  }
  if (id_created)
    created |= GOOP_PEER_DIR_CREATED_IDENTITY;

  site = goop_config_resolve_path(cfg, "paths.site_root");
  if (!site) {
    rc = goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "out of memory");
    goto fail;
  }
  bool site_created = false;
  rc = ensure_site(site, &site_created, errbuf, errbuf_len);
  if (rc < 0)
    goto fail;
  if (site_created)
    created |= GOOP_PEER_DIR_CREATED_SITE;

  free(abs);
  free(cfg_path);
  free(key_path);
  free(site);
  if (ret_cfg)
    *ret_cfg = cfg;
  else
    goop_config_free(cfg);
  if (ret_id)
    *ret_id = id;
  else
    goop_identity_free(id);
  if (ret_created)
    *ret_created = created;
  return 0;

fail:
  goop_identity_free(id);
  goop_config_free(cfg);
  free(abs);
  free(cfg_path);
  free(key_path);
  free(site);
  return rc;
}
