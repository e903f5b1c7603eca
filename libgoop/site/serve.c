/* The servers of /goop/site, /goop/data, /goop/content and /goop/avatar on a
 * goop_host. Each inbound stream gets a small state object: a bounded request
 * buffer with a deadline, then a response written only as fast as the stream
 * accepts it (files are read in 64 KiB chunks, so memory stays constant). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "site-internal.h"

#define CHUNK (64u << 10)
#define DISCARD_MAX (256u << 10) /* input drained per callback while answering */

enum srv_kind { SRV_SITE, SRV_DATA, SRV_CONTENT, SRV_AVATAR };

struct srv {
  struct srv *next, *prev;
  goop_site *site;
  goop_stream *s;
  enum srv_kind kind;
  bool answering;
  goop_tstamp deadline_us;
  /* request */
  char *req;
  size_t req_len, req_cap, req_limit;
  /* response: |out| first, then |file_left| bytes of |fd| */
  char *out;
  size_t out_len, out_off;
  int fd;
  uint64_t file_left;
  uint8_t *chunk;
  size_t chunk_len, chunk_off;
};

struct serve_state {
  struct srv *list;
};

static struct serve_state *state_of(goop_site *site) {
  if (!site->serve_state)
    site->serve_state = calloc(1, sizeof(struct serve_state));
  return site->serve_state;
}

static void srv_free(struct srv *v) {
  struct serve_state *st = v->site->serve_state;
  if (v->prev)
    v->prev->next = v->next;
  else if (st)
    st->list = v->next;
  if (v->next)
    v->next->prev = v->prev;
  if (v->s) {
    goop_stream_set_callbacks(v->s, NULL, NULL);
    goop_stream_unref(v->s);
  }
  if (v->fd >= 0)
    close(v->fd);
  free(v->req);
  free(v->out);
  free(v->chunk);
  free(v);
}

/* Abort the stream (RST) and forget it. */
static void srv_fail(struct srv *v) {
  if (v->s)
    goop_stream_reset(v->s);
  srv_free(v);
}

/* Everything written: FIN after the queued data, then forget the stream (the
 * transport still delivers what is queued). */
static void srv_done(struct srv *v) {
  if (v->s)
    goop_stream_close_write(v->s);
  srv_free(v);
}

/* Write what the stream accepts; returns when it would block or is done. */
static void srv_pump(struct srv *v) {
  for (;;) {
    if (v->out_off < v->out_len) {
      ssize_t w = goop_stream_write(v->s, v->out + v->out_off, v->out_len - v->out_off);
      if (w == GOOP_EAGAIN)
        return;
      if (w < 0) {
        srv_fail(v);
        return;
      }
      v->out_off += (size_t)w;
      continue;
    }
    if (v->chunk_off < v->chunk_len) {
      ssize_t w = goop_stream_write(v->s, v->chunk + v->chunk_off, v->chunk_len - v->chunk_off);
      if (w == GOOP_EAGAIN)
        return;
      if (w < 0) {
        srv_fail(v);
        return;
      }
      v->chunk_off += (size_t)w;
      continue;
    }
    if (v->fd >= 0 && v->file_left > 0) {
      if (!v->chunk && !(v->chunk = malloc(CHUNK))) {
        srv_fail(v);
        return;
      }
      size_t want = v->file_left < CHUNK ? (size_t)v->file_left : CHUNK;
      ssize_t n;
      do
        n = read(v->fd, v->chunk, want);
      while (n < 0 && errno == EINTR);
      if (n <= 0) {
        /* The file shrank or failed under us: the client must not take a
         * short body for a complete one. */
        srv_fail(v);
        return;
      }
      v->chunk_len = (size_t)n;
      v->chunk_off = 0;
      v->file_left -= (uint64_t)n;
      continue;
    }
    srv_done(v);
    return;
  }
}

/* Start answering with |out| (taken) and optionally |fd| / |size| (taken). */
static void srv_answer(struct srv *v, char *out, size_t out_len, int fd, uint64_t size) {
  v->answering = true;
  free(v->req);
  v->req = NULL;
  v->req_len = v->req_cap = 0;
  v->out = out;
  v->out_len = out_len;
  v->out_off = 0;
  v->fd = fd;
  v->file_left = fd >= 0 ? size : 0;
  goop_stream_set_idle_timeout(v->s, (uint32_t)GOOP_MIN(v->site->idle_timeout_ms, UINT32_MAX));
  srv_pump(v);
}

static void srv_answer_text(struct srv *v, const char *text) {
  char *o = strdup(text);
  if (!o) {
    srv_fail(v);
    return;
  }
  srv_answer(v, o, strlen(o), -1, 0);
}

/* ---- /goop/site/1.0.0 ---------------------------------------------------------- */

static void site_request(struct srv *v, const char *line, size_t len) {
  char *file = NULL;
  const char *err = NULL;
  int rc = goop__site_answer_request(v->site, line, len, &file, &err);
  if (rc == GOOP_ENOMEM) {
    srv_fail(v);
    return;
  }
  if (rc) {
    srv_answer_text(v, err);
    return;
  }
  int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0)
      close(fd);
    free(file);
    srv_answer_text(v, "ERR not found\n");
    return;
  }
  const char *mime = goop_site_mime_type(file);
  free(file);
  size_t hl = strlen(mime) + 32;
  char *hdr = malloc(hl);
  if (!hdr) {
    close(fd);
    srv_fail(v);
    return;
  }
  int n = snprintf(hdr, hl, "OK %s %" PRIu64 "\n", mime, (uint64_t)st.st_size);
  srv_answer(v, hdr, (size_t)n, fd, (uint64_t)st.st_size);
}

/* ---- /goop/data/1.0.0 ------------------------------------------------------------ */

static void data_request(struct srv *v, const char *json, size_t len) {
  goop_site *site = v->site;
  goop_peer_id peer;
  goop_stream_remote_peer(v->s, &peer);
  char id[GOOP_PEER_ID_STR_MAX];
  if (goop_peer_id_to_string(&peer, id, sizeof(id)) < 0) {
    srv_fail(v);
    return;
  }
  struct goop_site_caller caller = {
      .id = id,
      .email = goop__site_peer_email(site, &peer),
      /* Our own peer ID only comes back to us from ourselves. */
      .is_owner = goop_peer_id_equal(&peer, &site->owner),
  };
  char *resp = NULL;
  int rc = goop_site_data_exec(site, &caller, json, len, &resp);
  if (rc || !resp) {
    free(resp);
    srv_answer_text(v, "{\"ok\":false,\"error\":\"internal error\"}\n");
    return;
  }
  size_t rl = strlen(resp);
  char *out = realloc(resp, rl + 2);
  if (!out) {
    free(resp);
    srv_fail(v);
    return;
  }
  out[rl] = '\n';
  out[rl + 1] = '\0';
  srv_answer(v, out, rl + 1, -1, 0);
}

/* ---- /goop/avatar/1.0.0 ------------------------------------------------------------ */

static void avatar_answer(struct srv *v) {
  int fd = open(v->site->avatar_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > GOOP_AVATAR_MAX) {
    if (fd >= 0)
      close(fd);
    srv_answer_text(v, "NONE\n");
    return;
  }
  char *hdr = malloc(32);
  if (!hdr) {
    close(fd);
    srv_fail(v);
    return;
  }
  int n = snprintf(hdr, 32, "OK %" PRIu64 "\n", (uint64_t)st.st_size);
  srv_answer(v, hdr, (size_t)n, fd, (uint64_t)st.st_size);
}

/* ---- reading requests ---------------------------------------------------------------- */

/* Read what the remote sends after we started answering and drop it. */
static void discard_input(struct srv *v) {
  uint8_t buf[4096];
  size_t total = 0;
  while (total < DISCARD_MAX) {
    ssize_t n = goop_stream_read(v->s, buf, sizeof(buf));
    if (n <= 0)
      return;
    total += (size_t)n;
  }
}

static void read_request(struct srv *v) {
  for (;;) {
    if (v->req_len == v->req_cap) {
      size_t cap = v->req_cap ? v->req_cap * 2 : 1024;
      if (cap > v->req_limit + 1)
        cap = v->req_limit + 1;
      char *nr = realloc(v->req, cap);
      if (!nr) {
        srv_fail(v);
        return;
      }
      v->req = nr;
      v->req_cap = cap;
    }
    ssize_t n = goop_stream_read(v->s, v->req + v->req_len, v->req_cap - v->req_len);
    if (n == GOOP_EAGAIN)
      break;
    if (n < 0) {
      if (v->kind == SRV_DATA)
        srv_answer_text(v, "{\"ok\":false,\"error\":\"read error\"}\n");
      else
        srv_fail(v);
      return;
    }
    if (n == 0) {
      /* End of stream before a newline. */
      if (v->kind == SRV_DATA) {
        char *json = v->req;
        size_t len = v->req_len;
        v->req = NULL;
        data_request(v, json ? json : "", len);
        free(json);
      } else {
        srv_done(v); /* as Goop² does: no line, no answer */
      }
      return;
    }
    char *nl = memchr(v->req + v->req_len, '\n', (size_t)n);
    v->req_len += (size_t)n;
    if (nl) {
      size_t len = (size_t)(nl - v->req);
      char *req = v->req;
      v->req = NULL; /* srv_answer frees v->req; keep the line alive */
      if (v->kind == SRV_SITE)
        site_request(v, req, len);
      else
        data_request(v, req, len);
      free(req);
      return;
    }
    if (v->req_len > v->req_limit) {
      srv_answer_text(v, v->kind == SRV_SITE ? "ERR bad request\n"
                                             : "{\"ok\":false,\"error\":\"request too large\"}\n");
      return;
    }
  }
  goop_tstamp now = goop__now_us();
  if (now >= v->deadline_us) {
    srv_fail(v); /* too slow: cut at the deadline */
    return;
  }
  uint64_t left_ms = (v->deadline_us - now + 999) / 1000;
  goop_stream_set_idle_timeout(v->s, (uint32_t)GOOP_MIN(left_ms, UINT32_MAX));
}

static void on_readable(goop_stream *s, void *ud) {
  (void)s;
  struct srv *v = ud;
  if (v->answering)
    discard_input(v);
  else
    read_request(v);
}

static void on_writable(goop_stream *s, void *ud) {
  (void)s;
  struct srv *v = ud;
  if (v->answering)
    srv_pump(v);
}

static void on_error(goop_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  srv_free(ud);
}

static const struct goop_stream_callbacks srv_cbs = {GOOP_STREAM_CALLBACKS_V1, on_readable, on_writable,
                                                     on_error};

static void handle(goop_site *site, goop_stream *s, enum srv_kind kind) {
  struct serve_state *st = state_of(site);
  struct srv *v = st ? calloc(1, sizeof(*v)) : NULL;
  if (!v) {
    goop_stream_reset(s);
    goop_stream_unref(s);
    return;
  }
  v->site = site;
  v->s = s;
  v->kind = kind;
  v->fd = -1;
  v->next = st->list;
  if (st->list)
    st->list->prev = v;
  st->list = v;
  goop_stream_set_callbacks(s, &srv_cbs, v);
  switch (kind) {
  case SRV_CONTENT: {
    size_t l = strlen(site->label);
    char *o = malloc(l + 2);
    if (!o) {
      srv_fail(v);
      return;
    }
    memcpy(o, site->label, l);
    o[l] = '\n';
    o[l + 1] = '\0';
    srv_answer(v, o, l + 1, -1, 0);
    return;
  }
  case SRV_AVATAR:
    avatar_answer(v);
    return;
  case SRV_SITE:
    v->req_limit = (size_t)GOOP_MIN(site->max_request, (uint64_t)GOOP__SITE_MAX_LINE);
    break;
  case SRV_DATA:
    v->req_limit = (size_t)GOOP_MIN(site->max_request, (uint64_t)SIZE_MAX / 2);
    break;
  }
  v->deadline_us = goop__now_us() + site->read_timeout_ms * 1000;
  goop_stream_set_idle_timeout(s, (uint32_t)GOOP_MIN(site->read_timeout_ms, UINT32_MAX));
}

static void site_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h;
  handle(ud, s, SRV_SITE);
}
static void data_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h;
  handle(ud, s, SRV_DATA);
}
static void content_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h;
  handle(ud, s, SRV_CONTENT);
}
static void avatar_handler(goop_host *h, goop_stream *s, void *ud) {
  (void)h;
  handle(ud, s, SRV_AVATAR);
}

static const struct {
  const char *proto;
  goop_stream_handler fn;
} handlers[] = {
    {GOOP_PROTO_SITE, site_handler},
    {GOOP_PROTO_DATA, data_handler},
    {GOOP_PROTO_CONTENT, content_handler},
    {GOOP_PROTO_AVATAR, avatar_handler},
};

int goop_site_serve(goop_site *site, goop_host *host) {
  goop_return_val_if_fail(site && host, GOOP_EINVAL);
  if (!state_of(site))
    return GOOP_ENOMEM;
  if (site->host && site->host != host)
    goop_site_unserve(site);
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(handlers); i++) {
    int rc = goop_host_set_stream_handler(host, handlers[i].proto, handlers[i].fn, site);
    if (rc) {
      for (size_t j = 0; j < i; j++)
        (void)goop_host_remove_stream_handler(host, handlers[j].proto);
      return rc;
    }
  }
  site->host = host;
  return 0;
}

void goop_site_unserve(goop_site *site) {
  if (!site || !site->host)
    return;
  for (size_t i = 0; i < GOOP_ARRAY_SIZE(handlers); i++)
    (void)goop_host_remove_stream_handler(site->host, handlers[i].proto);
  site->host = NULL;
}

void goop__site_serve_stop(goop_site *s) {
  if (!s)
    return;
  goop_site_unserve(s);
  struct serve_state *st = s->serve_state;
  if (!st)
    return;
  while (st->list)
    srv_fail(st->list);
  free(st);
  s->serve_state = NULL;
}
