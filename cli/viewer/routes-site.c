/*
 * Viewer routes of the peer sites (see routes-site.h):
 *
 *   /p/<peer-id>/<path>   the own site from disk (fd responses: sendfile,
 *                         no buffering), a remote site over /goop/site/1.0.0
 *                         streamed through a bounded buffer with
 *                         backpressure; ETag/If-None-Match (own), Range and
 *                         HEAD (both); 404/403 from the site, 502 when the
 *                         peer cannot answer; CSP and nosniff on everything.
 *   /api/site/files       owner: [{"Path","IsDir","Depth"}] of the site root
 *   /api/site/upload      owner + CSRF: multipart path + file, atomic write
 *   /api/site/delete      owner + CSRF: {"path"}
 */
#include "routes-site.h"
#include "site-parse.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILES_MAX 10000        /* entries listed by /api/site/files */
#define FILES_DEPTH_MAX 32     /* directory levels listed */
#define READ_BLOCK (64u << 10) /* block size of streamed responses */

/* ---- small helpers ---- */

static void add_site_headers(struct MHD_Response *resp) {
  MHD_add_response_header(resp, "Content-Security-Policy", VIEWER_SITE_CSP);
}

/* An HTML error page (escaped message) with the site headers. */
static enum MHD_Result site_error(struct viewer_req *r, unsigned status, const char *title, const char *msg) {
  struct vbuf b = {0};
  int bad = vbuf_adds(&b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>");
  bad |= vbuf_add_html(&b, title);
  bad |= vbuf_adds(&b, "</title></head>\n<body><h1>");
  bad |= vbuf_add_html(&b, title);
  bad |= vbuf_adds(&b, "</h1>\n<p>");
  bad |= vbuf_add_html(&b, msg ? msg : "");
  bad |= vbuf_adds(&b, "</p>\n<p><a href=\"/peers\">Back to the peer list</a></p></body></html>\n");
  if (bad) {
    vbuf_free(&b);
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  }
  struct MHD_Response *resp = MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_COPY);
  vbuf_free(&b);
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
  add_site_headers(resp);
  enum MHD_Result ret = viewer_req_queue(r, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* Content type by file name, as the proxy gives it. */
static const char *type_for_path(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(slash ? slash + 1 : path, '.');
  if (dot && (strcasecmp(dot, ".js") == 0 || strcasecmp(dot, ".mjs") == 0))
    return "application/javascript; charset=utf-8";
  return goop_site_mime_type(path);
}

/* The remote's MIME unless it says nothing useful. */
static bool mime_useful(const char *m) {
  return m && *m && strncasecmp(m, "text/plain", 10) != 0 &&
         strncasecmp(m, "application/octet-stream", 24) != 0;
}

static void hex(const unsigned char *in, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[in[i] >> 4];
    out[2 * i + 1] = hx[in[i] & 15];
  }
  out[2 * n] = 0;
}

/* ---- own site ---- */

static enum MHD_Result serve_own(struct viewer_req *r, goop_site *site, const char *rel) {
  if (!site)
    return site_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "No site", "this peer has no site open");
  char *path = NULL;
  int rc = goop_site_resolve_path(site, rel, &path);
  if (rc == GOOP_EFORBIDDEN)
    return site_error(r, MHD_HTTP_FORBIDDEN, "Forbidden", "this path is not served");
  if (rc != 0)
    return site_error(r, MHD_HTTP_NOT_FOUND, "Not found", "no such file on this site");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0)
      close(fd);
    free(path);
    return site_error(r, MHD_HTTP_NOT_FOUND, "Not found", "no such file on this site");
  }
  uint64_t size = (uint64_t)st.st_size;
  char etag[96];
  snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%llx.%09ld\"", size, (unsigned long long)st.st_mtim.tv_sec,
           (long)st.st_mtim.tv_nsec);
  const char *type = type_for_path(path);
  free(path);

  if (site_etag_matches(viewer_req_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
    close(fd);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
      return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    add_site_headers(resp);
    enum MHD_Result ret = viewer_req_queue(r, MHD_HTTP_NOT_MODIFIED, resp);
    MHD_destroy_response(resp);
    return ret;
  }

  uint64_t start = 0, len = size;
  int rg = site_parse_range(viewer_req_header(r, MHD_HTTP_HEADER_RANGE), size, &start, &len);
  if (rg < 0) {
    close(fd);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp)
      return MHD_NO;
    char cr[64];
    snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    add_site_headers(resp);
    enum MHD_Result ret = viewer_req_queue(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
    MHD_destroy_response(resp);
    return ret;
  }
  struct MHD_Response *resp;
  if (len == 0) {
    close(fd);
    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  } else {
    resp = MHD_create_response_from_fd_at_offset64(len, fd, start); /* streamed (sendfile), closes fd */
    if (!resp)
      close(fd);
  }
  if (!resp)
    return MHD_NO;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
  if (rg > 0) {
    char cr[96];
    snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, start + len - 1, size);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
  }
  add_site_headers(resp);
  enum MHD_Result ret = viewer_req_queue(r, rg > 0 ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* ---- remote sites ---- */

/*
 * One download from a remote site. References: the request (until it ends),
 * the fetch (until on_done) and the MHD response (until MHD frees it).
 */
struct rstream {
  int refs;
  struct viewer_req *r; /* NULL once the request ended */
  goop_site_fetch *f;   /* NULL once the fetch ended */
  char *path;           /* the site path, for the content type */
  bool answered;        /* a response is queued */
  bool waiting;         /* the content reader suspended the connection */
  bool paused;          /* the fetch is paused (buffer full) */
  bool done;            /* on_done ran */
  bool complete;        /* every byte to send arrived */
  bool ranged;
  uint64_t skip;   /* bytes of the file still to drop (range start) */
  uint64_t remain; /* bytes still to buffer */
  struct vbuf q;
  size_t off;
};

static void rs_unref(struct rstream *rs) {
  if (--rs->refs > 0)
    return;
  vbuf_free(&rs->q);
  free(rs->path);
  free(rs);
}

static void rs_wake(struct rstream *rs) {
  if (rs->waiting && rs->r) {
    rs->waiting = false;
    viewer_req_resume(rs->r);
  }
}

static ssize_t rs_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  struct rstream *rs = cls;
  size_t have = rs->q.len - rs->off;
  if (have) {
    size_t n = have < max ? have : max;
    memcpy(buf, rs->q.p + rs->off, n);
    rs->off += n;
    if (rs->off == rs->q.len) {
      rs->off = rs->q.len = 0;
    } else if (rs->off > VIEWER_REMOTE_BUFFER) { /* compact */
      memmove(rs->q.p, rs->q.p + rs->off, rs->q.len - rs->off);
      rs->q.len -= rs->off;
      rs->off = 0;
    }
    if (rs->paused && rs->f && rs->q.len - rs->off < VIEWER_REMOTE_BUFFER / 2) {
      rs->paused = false;
      goop_site_fetch_pause(rs->f, false);
    }
    return (ssize_t)n;
  }
  if (rs->complete)
    return MHD_CONTENT_READER_END_OF_STREAM;
  if (rs->done || !rs->r || viewer_req_is_gone(rs->r))
    return MHD_CONTENT_READER_END_WITH_ERROR;
  if (rs->paused && rs->f) {
    rs->paused = false;
    goop_site_fetch_pause(rs->f, false);
  }
  rs->waiting = true;
  viewer_req_suspend(rs->r);
  return 0;
}

static void rs_resp_free(void *cls) {
  rs_unref(cls);
}

static int rs_header(goop_site_fetch *f, const char *mime, uint64_t size, void *ud) {
  (void)f;
  struct rstream *rs = ud;
  struct viewer_req *r = rs->r;
  if (!r)
    return -1;
  uint64_t start = 0, len = size;
  int rg = site_parse_range(viewer_req_header(r, MHD_HTTP_HEADER_RANGE), size, &start, &len);
  struct MHD_Response *resp;
  if (rg < 0) {
    rs->answered = true;
    resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp) {
      char cr[64];
      snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
      MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
      add_site_headers(resp);
      (void)viewer_req_queue(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
      MHD_destroy_response(resp);
    }
    viewer_req_resume(r);
    return -1;
  }
  rs->ranged = rg > 0;
  rs->skip = start;
  rs->remain = len;
  rs->complete = len == 0;
  /* MHD allocates one block per response: small files get a small one. */
  size_t block = len >= READ_BLOCK ? READ_BLOCK : (size_t)(len ? len : 1);
  resp = MHD_create_response_from_callback(len, block, rs_read, rs, rs_resp_free);
  if (!resp) {
    rs->answered = true;
    (void)viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    viewer_req_resume(r);
    return -1;
  }
  rs->refs++;
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                          mime_useful(mime) ? mime : type_for_path(rs->path));
  MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
  if (rg > 0) {
    char cr[96];
    snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, start + len - 1, size);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
  }
  add_site_headers(resp);
  rs->answered = true;
  (void)viewer_req_queue(r, rg > 0 ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  viewer_req_resume(r);
  if (viewer_req_is_head(r) || rs->complete)
    return -1; /* headers only: the body is not needed */
  return 0;
}

static int rs_chunk(goop_site_fetch *f, const uint8_t *data, size_t len, void *ud) {
  struct rstream *rs = ud;
  if (!rs->r)
    return -1;
  if (rs->skip) {
    if (rs->skip >= len) {
      rs->skip -= len;
      return 0;
    }
    data += rs->skip;
    len -= (size_t)rs->skip;
    rs->skip = 0;
  }
  if (len > rs->remain)
    len = (size_t)rs->remain;
  if (len && vbuf_add(&rs->q, data, len) != 0)
    return -1;
  rs->remain -= len;
  if (rs->remain == 0)
    rs->complete = true;
  if (!rs->paused && rs->q.len - rs->off >= VIEWER_REMOTE_BUFFER) {
    rs->paused = true;
    goop_site_fetch_pause(f, true);
  }
  rs_wake(rs);
  return rs->complete && rs->ranged ? -1 : 0; /* a range ends early; a whole file ends by itself */
}

static void rs_done(goop_site_fetch *f, int status, const char *message, void *ud) {
  (void)f;
  struct rstream *rs = ud;
  rs->f = NULL;
  rs->done = true;
  if (rs->r && !rs->answered) {
    rs->answered = true;
    char msg[512];
    if (status == GOOP_ENOENT) {
      (void)site_error(rs->r, MHD_HTTP_NOT_FOUND, "Not found", "the peer has no such file");
    } else if (status == GOOP_EFORBIDDEN) {
      (void)site_error(rs->r, MHD_HTTP_FORBIDDEN, "Forbidden", "the peer refuses to serve this path");
    } else {
      snprintf(msg, sizeof(msg), "The peer could not be reached or did not answer: %s",
               message && *message ? message : goop_strerror(status));
      (void)site_error(rs->r, MHD_HTTP_BAD_GATEWAY, "Peer unreachable", msg);
    }
    viewer_req_resume(rs->r);
  } else {
    rs_wake(rs);
  }
  rs_unref(rs);
}

static void rs_req_done(struct viewer_req *r, void *ud) {
  (void)r;
  struct rstream *rs = ud;
  rs->r = NULL;
  if (rs->f)
    goop_site_fetch_cancel(rs->f);
  rs_unref(rs);
}

static enum MHD_Result serve_remote(struct viewer_req *r, const goop_peer_id *pid, const char *rel) {
  goop_host *host = viewer_host(viewer_req_viewer(r));
  if (!host)
    return site_error(r, MHD_HTTP_BAD_GATEWAY, "Peer unreachable", "this viewer has no network host");
  if (!*rel)
    rel = "index.html";
  struct rstream *rs = calloc(1, sizeof(*rs));
  size_t pl = strlen(rel) + 2;
  if (!rs || !(rs->path = malloc(pl))) {
    free(rs);
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  }
  snprintf(rs->path, pl, "/%s", rel);
  rs->r = r;
  rs->refs = 2; /* request + fetch */
  static const struct goop_site_fetch_callbacks cb = {
      .version = GOOP_SITE_FETCH_CALLBACKS_V1,
      .on_header = rs_header,
      .on_chunk = rs_chunk,
      .on_done = rs_done,
  };
  int rc = goop_site_fetch_start(host, pid, rs->path, VIEWER_REMOTE_MAX_FILE, VIEWER_REMOTE_TIMEOUT_MS, &cb,
                                 rs, &rs->f);
  if (rc != 0) {
    free(rs->path);
    free(rs);
    char msg[256];
    snprintf(msg, sizeof(msg), "The peer could not be reached: %s", goop_strerror(rc));
    return site_error(r, MHD_HTTP_BAD_GATEWAY, "Peer unreachable", msg);
  }
  viewer_req_on_done(r, rs_req_done, rs);
  viewer_req_suspend(r);
  return MHD_YES;
}

static enum MHD_Result on_p(struct viewer_req *r, void *ud) {
  goop_site *site = ud;
  const char *sub = viewer_req_subpath(r);
  const char *slash = strchr(sub, '/');
  size_t idlen = slash ? (size_t)(slash - sub) : strlen(sub);
  char id[GOOP_PEER_ID_STR_MAX];
  goop_peer_id pid;
  if (idlen == 0 || idlen >= sizeof(id))
    return site_error(r, MHD_HTTP_BAD_REQUEST, "Bad request", "invalid peer id");
  memcpy(id, sub, idlen);
  id[idlen] = 0;
  if (goop_peer_id_from_string(id, &pid) != 0)
    return site_error(r, MHD_HTTP_BAD_REQUEST, "Bad request", "invalid peer id");
  if (!slash) { /* relative links need the trailing slash */
    char loc[GOOP_PEER_ID_STR_MAX + 8];
    snprintf(loc, sizeof(loc), "/p/%s/", id);
    return viewer_reply_redirect(r, MHD_HTTP_MOVED_PERMANENTLY, loc);
  }
  const char *rel = slash + 1;
  if (strlen(rel) > SITE_PATH_MAX)
    return site_error(r, MHD_HTTP_BAD_REQUEST, "Bad request", "path too long");
  if (site_path_tricky(rel))
    return site_error(r, MHD_HTTP_FORBIDDEN, "Forbidden", "this path is not served");
  if (strcmp(id, viewer_self_id(viewer_req_viewer(r))) == 0)
    return serve_own(r, site, rel);
  return serve_remote(r, &pid, rel);
}

/* ---- site files API ---- */

static char *site_root(struct viewer_req *r) {
  const goop_config *cfg = viewer_config(viewer_req_viewer(r));
  if (!cfg)
    return NULL;
  char *root = goop_config_resolve_path(cfg, "paths.site_root");
  if (!root)
    return NULL;
  char real[PATH_MAX];
  if (realpath(root, real)) {
    free(root);
    return strdup(real);
  }
  return root;
}

struct lister {
  json_t *arr;
  size_t n;
  bool oom;
};

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_dir(struct lister *l, int dfd, const char *prefix, int depth) {
  DIR *d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    return;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
      continue;
    if (strncmp(e->d_name, ".goop-", 6) == 0)
      continue; /* temporary files of atomic writes */
    if (depth == 0 && strcmp(e->d_name, "lua") == 0)
      continue;
    if (n == cap) {
      size_t nc = cap ? cap * 2 : 32;
      char **nn = realloc(names, nc * sizeof(*nn));
      if (!nn) {
        l->oom = true;
        break;
      }
      names = nn;
      cap = nc;
    }
    if (!(names[n] = strdup(e->d_name))) {
      l->oom = true;
      break;
    }
    n++;
  }
  if (n)
    qsort(names, n, sizeof(*names), cmp_names);
  for (size_t i = 0; i < n && !l->oom && l->n < FILES_MAX; i++) {
    struct stat st;
    if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    bool is_dir = S_ISDIR(st.st_mode);
    if (!is_dir && !S_ISREG(st.st_mode))
      continue;
    size_t pl = strlen(prefix) + strlen(names[i]) + 2;
    char *p = malloc(pl);
    if (!p) {
      l->oom = true;
      break;
    }
    snprintf(p, pl, "%s%s%s", prefix, *prefix ? "/" : "", names[i]);
    json_t *o = json_pack("{s:s,s:b,s:i}", "Path", p, "IsDir", is_dir, "Depth", depth);
    if (!o || json_array_append_new(l->arr, o) != 0)
      l->oom = true;
    l->n++;
    if (is_dir && depth + 1 < FILES_DEPTH_MAX && !l->oom) {
      int sub = openat(dirfd(d), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0)
        list_dir(l, sub, p, depth + 1);
    }
    free(p);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  closedir(d);
}

static enum MHD_Result on_files(struct viewer_req *r, void *ud) {
  (void)ud;
  char *root = site_root(r);
  struct lister l = {.arr = json_array()};
  if (!l.arr) {
    free(root);
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  }
  int dfd = root ? open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  free(root);
  if (dfd >= 0)
    list_dir(&l, dfd, "", 0);
  if (l.oom) {
    json_decref(l.arr);
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  }
  return viewer_reply_json(r, MHD_HTTP_OK, l.arr);
}

/* Open the directory of |rel| under |root| (created with create), refusing symlinks; -1 on error. */
static int open_parent(const char *root, const char *rel, bool create, const char **ret_base) {
  int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 && create && errno == ENOENT && mkdir(root, 0755) == 0)
    dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -1;
  const char *p = rel;
  const char *slash;
  while ((slash = strchr(p, '/')) != NULL) {
    char seg[256];
    size_t n = (size_t)(slash - p);
    if (n >= sizeof(seg)) {
      close(dfd);
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(seg, p, n);
    seg[n] = 0;
    if (create && mkdirat(dfd, seg, 0755) != 0 && errno != EEXIST) {
      close(dfd);
      return -1;
    }
    int nd = openat(dfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(dfd);
    if (nd < 0)
      return -1;
    dfd = nd;
    p = slash + 1;
  }
  if (strlen(p) >= 256) {
    close(dfd);
    errno = ENAMETOOLONG;
    return -1;
  }
  *ret_base = p;
  return dfd;
}

/* Write |data| to |rel| atomically (temporary file, fsync, rename). 0 or an errno value. */
static int write_atomic(const char *root, const char *rel, const uint8_t *data, size_t len) {
  const char *base;
  int dfd = open_parent(root, rel, true, &base);
  if (dfd < 0)
    return errno ? errno : EIO;
  struct stat st;
  if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
    close(dfd);
    return EISDIR;
  }
  uint8_t rnd[8];
  char tmp[40];
  if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
    close(dfd);
    return EIO;
  }
  memcpy(tmp, ".goop-", 6);
  hex(rnd, sizeof(rnd), tmp + 6);
  int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    close(dfd);
    return e;
  }
  int err = 0;
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      err = errno;
      break;
    }
    off += (size_t)n;
  }
  if (!err && fsync(fd) != 0)
    err = errno;
  if (close(fd) != 0 && !err)
    err = errno;
  if (!err && renameat(dfd, tmp, dfd, base) != 0)
    err = errno;
  if (err)
    (void)unlinkat(dfd, tmp, 0);
  else
    (void)fsync(dfd);
  close(dfd);
  return err;
}

static enum MHD_Result on_upload(struct viewer_req *r, void *ud) {
  (void)ud;
  size_t len;
  const uint8_t *body = viewer_req_body(r, &len);
  struct site_part path = {0}, file = {0};
  if (site_multipart_fields(viewer_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), body, len, &path, &file) != 0)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "malformed multipart form");
  if (!path.found || !file.found)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "fields path and file are required");
  if (file.len > (32u << 20))
    return viewer_reply_text(r, MHD_HTTP_CONTENT_TOO_LARGE, "file too large (32 MiB at most)");
  char pbuf[SITE_PATH_MAX + 2];
  if (path.len == 0 || path.len > SITE_PATH_MAX || memchr(path.data, 0, path.len))
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "invalid path");
  memcpy(pbuf, path.data, path.len);
  pbuf[path.len] = 0;
  const char *rel = site_rel_path_ok(pbuf);
  if (!rel)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "path outside root");
  if (site_is_image(rel) && strncmp(rel, "images/", 7) != 0)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "image files must be placed in the images/ folder");
  char *root = site_root(r);
  if (!root)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "no site root");
  int err = write_atomic(root, rel, file.data, file.len);
  free(root);
  if (err) {
    char msg[300];
    snprintf(msg, sizeof(msg), "cannot write %s: %s", rel,
             err == ELOOP || err == ENOTDIR ? "path outside root" : strerror(err));
    return viewer_reply_text(r,
                             err == EISDIR || err == ELOOP || err == ENOTDIR ? MHD_HTTP_BAD_REQUEST
                                                                             : MHD_HTTP_INTERNAL_SERVER_ERROR,
                             msg);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char etag[8 + 2 * EVP_MAX_MD_SIZE + 1] = "sha256:";
  if (EVP_Digest(file.data, file.len, md, &mdlen, EVP_sha256(), NULL) == 1)
    hex(md, mdlen, etag + 7);
  return viewer_reply_json(r, MHD_HTTP_OK,
                           json_pack("{s:s,s:s,s:s}", "status", "uploaded", "path", rel, "etag", etag));
}

static enum MHD_Result on_delete(struct viewer_req *r, void *ud) {
  (void)ud;
  json_t *j = viewer_req_json(r);
  const char *p = json_is_object(j) ? json_string_value(json_object_get(j, "path")) : NULL;
  if (!p)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "path required");
  const char *rel = site_rel_path_ok(p);
  if (!rel)
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, "path outside root");
  char *root = site_root(r);
  if (!root)
    return viewer_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "no site root");
  const char *base;
  int dfd = open_parent(root, rel, false, &base);
  free(root);
  if (dfd < 0)
    return viewer_reply_text(r, errno == ENOENT ? MHD_HTTP_NOT_FOUND : MHD_HTTP_BAD_REQUEST,
                             errno == ENOENT ? "not found" : "path outside root");
  struct stat st;
  int rc = -1;
  if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0)
    rc = unlinkat(dfd, base, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
  int e = errno;
  close(dfd);
  if (rc != 0) {
    if (e == ENOENT)
      return viewer_reply_text(r, MHD_HTTP_NOT_FOUND, "not found");
    return viewer_reply_text(r, MHD_HTTP_BAD_REQUEST, e == ENOTEMPTY ? "directory not empty" : strerror(e));
  }
  return viewer_reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "deleted"));
}

/* ---- registration ---- */

int viewer_routes_site(struct viewer *v, goop_site *site) {
  const struct viewer_route routes[] = {
      {.pattern = "/p/", .methods = VIEWER_ANY, .flags = VIEWER_ROUTE_PREFIX, .fn = on_p, .ud = site},
      {.pattern = "/api/site/files",
       .methods = VIEWER_GET,
       .flags = VIEWER_ROUTE_OWNER,
       .fn = on_files,
       .ud = site},
      {.pattern = "/api/site/upload",
       .methods = VIEWER_POST,
       .flags = VIEWER_ROUTE_OWNER | VIEWER_ROUTE_CSRF | VIEWER_ROUTE_BODY,
       .fn = on_upload,
       .ud = site,
       .max_body = VIEWER_UPLOAD_MAX},
      {.pattern = "/api/site/delete",
       .methods = VIEWER_POST,
       .flags = VIEWER_ROUTE_OWNER | VIEWER_ROUTE_CSRF | VIEWER_ROUTE_BODY,
       .fn = on_delete,
       .ud = site,
       .max_body = 64u << 10},
  };
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
    if (viewer_add_route(v, &routes[i]) != 0)
      return -1;
  return 0;
}
