/* Clients of /goop/site, /goop/data, /goop/content and /goop/avatar: open a
 * stream, write the request, read one bounded line (the header or the whole
 * answer) and, for files and avatars, exactly the announced number of bytes.
 * Every user callback runs once, from the loop, never inside the start call. */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "site-internal.h"
#include <event2/event.h>

#define CHUNK (64u << 10)
#define DATA_MAX_LINE (16u << 20)
#define CONTENT_MAX_LINE (4u << 10)
#define AVATAR_MAX_HEADER 64u

enum cli_kind { CLI_SITE, CLI_DATA, CLI_CONTENT, CLI_AVATAR };

struct goop_site_fetch {
  enum cli_kind kind;
  goop_host *host;
  goop_stream *s;
  struct event *kick;
  bool open_pending; /* goop_host_new_stream() has not called back yet */
  bool finished;     /* the user callback ran (the object may wait for open_pending) */
  bool cancelled, paused, have_header, request_sent;
  uint32_t timeout_ms;
  goop_tstamp deadline_us; /* header (site, avatar) or whole answer (data, content) */
  /* request */
  char *out;
  size_t out_len, out_off;
  /* the first line */
  char *line;
  size_t line_len, line_cap, line_limit;
  /* body */
  uint64_t size, got, max;
  uint8_t *body; /* avatar only */
  uint8_t *chunk;
  struct goop_site_fetch_callbacks cb;
  goop_data_cb data_cb;
  goop_content_cb content_cb;
  goop_avatar_cb avatar_cb;
  void *ud;
};

static void cli_free(goop_site_fetch *f) {
  if (f->kick)
    event_free(f->kick);
  free(f->out);
  free(f->line);
  free(f->body);
  free(f->chunk);
  free(f);
}

/* End the operation: release the stream, call the user once, free. */
static void finish(goop_site_fetch *f, int status, const char *msg, const char *text, size_t text_len) {
  if (f->finished)
    return;
  f->finished = true;
  if (f->kick)
    event_del(f->kick);
  if (f->s) {
    goop_stream_set_callbacks(f->s, NULL, NULL);
    if (status)
      goop_stream_reset(f->s);
    else
      goop_stream_close_write(f->s);
    f->s = goop_stream_unref(f->s);
  }
  if (!msg)
    msg = status ? goop_strerror(status) : "";
  switch (f->kind) {
  case CLI_SITE:
    if (f->cb.on_done)
      f->cb.on_done(f, status, msg, f->ud);
    break;
  case CLI_DATA:
    f->data_cb(f->host, status, status ? NULL : text, status ? 0 : text_len, f->ud);
    break;
  case CLI_CONTENT:
    f->content_cb(f->host, status, status ? NULL : text, f->ud);
    break;
  case CLI_AVATAR:
    f->avatar_cb(f->host, status, status ? NULL : f->body, status ? 0 : (size_t)f->size, f->ud);
    break;
  }
  if (!f->open_pending)
    cli_free(f);
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Parse a decimal size (digits only, no sign). */
static bool parse_size(const char *p, size_t len, uint64_t *ret) {
  if (len == 0 || len > 20)
    return false;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (p[i] < '0' || p[i] > '9')
      return false;
    uint64_t d = (uint64_t)(p[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *ret = v;
  return true;
}

static const struct {
  const char *text;
  int code;
} site_errors[] = {
    {"not found", GOOP_ENOENT},
    {"forbidden", GOOP_EFORBIDDEN},
    {"bad request", GOOP_EINVAL},
    {"site disabled", GOOP_ENOTSUP},
};

/* The header line of a site fetch (|line| without newline, NUL-terminated).
 * Returns true to go on with the body; false if the fetch finished. */
static bool site_header(goop_site_fetch *f, char *line, size_t len) {
  while (len && is_space(line[len - 1]))
    line[--len] = '\0';
  if (len >= 4 && memcmp(line, "ERR ", 4) == 0) {
    const char *m = line + 4;
    while (is_space(*m))
      m++;
    int code = GOOP_EPROTO;
    for (size_t i = 0; i < GOOP_ARRAY_SIZE(site_errors); i++)
      if (strcmp(m, site_errors[i].text) == 0)
        code = site_errors[i].code;
    finish(f, code, m, NULL, 0);
    return false;
  }
  if (len < 3 || memcmp(line, "OK ", 3) != 0) {
    finish(f, GOOP_EPROTO, "malformed site header", NULL, 0);
    return false;
  }
  char *last = strrchr(line, ' ');
  uint64_t size;
  if (!parse_size(last + 1, strlen(last + 1), &size)) {
    finish(f, GOOP_EPROTO, "malformed size in site header", NULL, 0);
    return false;
  }
  if (size > f->max) {
    finish(f, GOOP_EMSGSIZE, "site file larger than the maximum", NULL, 0);
    return false;
  }
  /* MIME: between "OK " and the last space (may be empty or contain spaces). */
  *last = '\0';
  char *mime = line + 3;
  while (is_space(*mime))
    mime++;
  size_t ml = strlen(mime);
  while (ml && is_space(mime[ml - 1]))
    mime[--ml] = '\0';
  f->size = size;
  f->have_header = true;
  if (f->cb.on_header) {
    int rc = f->cb.on_header(f, mime, size, f->ud);
    if (rc < 0) {
      finish(f, rc, "aborted by on_header", NULL, 0);
      return false;
    }
  }
  return true;
}

static bool avatar_header(goop_site_fetch *f, char *line, size_t len) {
  while (len && is_space(line[len - 1]))
    line[--len] = '\0';
  if (strcmp(line, "NONE") == 0) {
    finish(f, GOOP_ENOENT, "no avatar", NULL, 0);
    return false;
  }
  uint64_t size;
  if (len < 3 || memcmp(line, "OK ", 3) != 0 || !parse_size(line + 3, len - 3, &size)) {
    finish(f, GOOP_EPROTO, "malformed avatar header", NULL, 0);
    return false;
  }
  if (size > f->max) {
    finish(f, GOOP_EMSGSIZE, "avatar larger than the maximum", NULL, 0);
    return false;
  }
  f->size = size;
  f->have_header = true;
  f->body = malloc(size ? size : 1);
  if (!f->body) {
    finish(f, GOOP_ENOMEM, NULL, NULL, 0);
    return false;
  }
  return true;
}

/* Body bytes. Returns false if the fetch finished or must stop reading. */
static bool body(goop_site_fetch *f, const uint8_t *data, size_t len) {
  if (!len)
    return true;
  if (len > f->size - f->got) {
    finish(f, GOOP_EPROTO, "more bytes than announced", NULL, 0);
    return false;
  }
  if (f->kind == CLI_AVATAR) {
    memcpy(f->body + f->got, data, len);
    f->got += len;
    return true;
  }
  f->got += len;
  if (f->cb.on_chunk) {
    int rc = f->cb.on_chunk(f, data, len, f->ud);
    if (rc < 0) {
      finish(f, rc, "aborted by on_chunk", NULL, 0);
      return false;
    }
  }
  return !f->cancelled && !f->paused;
}

static void end_of_stream(goop_site_fetch *f) {
  if (!f->have_header) {
    if ((f->kind == CLI_DATA || f->kind == CLI_CONTENT) && f->line_len > 0) {
      /* The answer without its newline: accept it. */
      f->line[f->line_len] = '\0';
      size_t l = f->line_len;
      if (f->kind == CLI_CONTENT) {
        char *p = f->line;
        while (is_space(*p))
          p++;
        while (l && is_space(f->line[l - 1]))
          f->line[--l] = '\0';
        finish(f, 0, NULL, p, strlen(p));
      } else {
        finish(f, 0, NULL, f->line, l);
      }
      return;
    }
    finish(f, GOOP_EPROTO, "stream closed before the answer", NULL, 0);
    return;
  }
  if (f->got != f->size) {
    finish(f, GOOP_EPROTO, "stream closed before all bytes arrived", NULL, 0);
    return;
  }
  finish(f, 0, NULL, NULL, 0);
}

/* A complete first line at f->line[0 .. nl); the bytes after it are still in
 * the buffer. Returns false if the fetch finished or must stop reading. */
static bool first_line(goop_site_fetch *f, size_t nl) {
  size_t rest = f->line_len - nl - 1;
  f->line[nl] = '\0';
  switch (f->kind) {
  case CLI_DATA: {
    size_t l = nl;
    if (l && f->line[l - 1] == '\r')
      f->line[--l] = '\0';
    finish(f, 0, NULL, f->line, l);
    return false;
  }
  case CLI_CONTENT: {
    char *p = f->line;
    size_t l = nl;
    while (is_space(*p))
      p++;
    while (l && is_space(f->line[l - 1]))
      f->line[--l] = '\0';
    finish(f, 0, NULL, p, strlen(p));
    return false;
  }
  case CLI_SITE:
    if (!site_header(f, f->line, nl))
      return false;
    break;
  case CLI_AVATAR:
    if (!avatar_header(f, f->line, nl))
      return false;
    break;
  }
  /* Switch from the header deadline to the idle timeout. */
  goop_stream_set_idle_timeout(f->s, f->paused ? 0 : f->timeout_ms);
  if (f->cancelled)
    return false;
  if (!body(f, (const uint8_t *)f->line + nl + 1, rest))
    return false;
  free(f->line);
  f->line = NULL;
  f->line_len = f->line_cap = 0;
  return true;
}

static void pump_read(goop_site_fetch *f) {
  while (!f->finished && !f->cancelled && !f->paused) {
    if (!f->have_header) {
      if (f->line_len == f->line_cap) {
        if (f->line_cap > f->line_limit) {
          finish(f, f->kind == CLI_DATA ? GOOP_EMSGSIZE : GOOP_EPROTO, "answer line too long", NULL, 0);
          return;
        }
        size_t cap = f->line_cap ? f->line_cap * 2 : 1024;
        if (cap > f->line_limit + 2)
          cap = f->line_limit + 2;
        char *nl = realloc(f->line, cap);
        if (!nl) {
          finish(f, GOOP_ENOMEM, NULL, NULL, 0);
          return;
        }
        f->line = nl;
        f->line_cap = cap;
      }
      /* Keep one byte for the terminating NUL. */
      size_t room = f->line_cap - f->line_len - 1;
      if (room == 0) {
        finish(f, f->kind == CLI_DATA ? GOOP_EMSGSIZE : GOOP_EPROTO, "answer line too long", NULL, 0);
        return;
      }
      ssize_t n = goop_stream_read(f->s, f->line + f->line_len, room);
      if (n == GOOP_EAGAIN)
        break;
      if (n < 0) {
        finish(f, (int)n, NULL, NULL, 0);
        return;
      }
      if (n == 0) {
        end_of_stream(f);
        return;
      }
      char *nl = memchr(f->line + f->line_len, '\n', (size_t)n);
      f->line_len += (size_t)n;
      if (nl) {
        if (!first_line(f, (size_t)(nl - f->line)))
          return;
        continue;
      }
      if (f->line_len > f->line_limit) {
        finish(f, f->kind == CLI_DATA ? GOOP_EMSGSIZE : GOOP_EPROTO, "answer line too long", NULL, 0);
        return;
      }
      continue;
    }
    if (!f->chunk && !(f->chunk = malloc(CHUNK))) {
      finish(f, GOOP_ENOMEM, NULL, NULL, 0);
      return;
    }
    ssize_t n = goop_stream_read(f->s, f->chunk, CHUNK);
    if (n == GOOP_EAGAIN)
      return;
    if (n < 0) {
      finish(f, (int)n, NULL, NULL, 0);
      return;
    }
    if (n == 0) {
      end_of_stream(f);
      return;
    }
    if (!body(f, f->chunk, (size_t)n))
      return;
  }
  if (f->finished || f->have_header)
    return;
  goop_tstamp now = goop__now_us();
  if (now >= f->deadline_us) {
    finish(f, GOOP_ETIMEDOUT, NULL, NULL, 0);
    return;
  }
  uint64_t left = (f->deadline_us - now + 999) / 1000;
  goop_stream_set_idle_timeout(f->s, (uint32_t)GOOP_MIN(left, UINT32_MAX));
}

static void pump_write(goop_site_fetch *f) {
  while (f->out_off < f->out_len) {
    ssize_t w = goop_stream_write(f->s, f->out + f->out_off, f->out_len - f->out_off);
    if (w == GOOP_EAGAIN)
      return;
    if (w < 0) {
      finish(f, (int)w, NULL, NULL, 0);
      return;
    }
    f->out_off += (size_t)w;
  }
  if (!f->request_sent) {
    f->request_sent = true;
    free(f->out);
    f->out = NULL;
    (void)goop_stream_close_write(f->s);
  }
}

static void on_readable(goop_stream *s, void *ud) {
  (void)s;
  pump_read(ud);
}
static void on_writable(goop_stream *s, void *ud) {
  (void)s;
  pump_write(ud);
}
static void on_error(goop_stream *s, int err, void *ud) {
  (void)s;
  finish(ud, err, NULL, NULL, 0);
}
static const struct goop_stream_callbacks cli_cbs = {GOOP_STREAM_CALLBACKS_V1, on_readable, on_writable,
                                                     on_error};

static void kick_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  goop_site_fetch *f = arg;
  if (f->finished)
    return;
  if (f->cancelled) {
    finish(f, GOOP_ECANCELED, NULL, NULL, 0);
    return;
  }
  if (f->s)
    pump_read(f);
}

static void open_cb(goop_host *h, int status, goop_stream *s, void *ud) {
  (void)h;
  goop_site_fetch *f = ud;
  f->open_pending = false;
  if (f->finished) {
    /* Cancelled (and reported) while opening. */
    if (s) {
      goop_stream_reset(s);
      goop_stream_unref(s);
    }
    cli_free(f);
    return;
  }
  if (status) {
    finish(f, status, NULL, NULL, 0);
    return;
  }
  f->s = s;
  if (f->cancelled) {
    finish(f, GOOP_ECANCELED, NULL, NULL, 0);
    return;
  }
  goop_stream_set_callbacks(s, &cli_cbs, f);
  goop_tstamp now = goop__now_us();
  uint64_t left = now < f->deadline_us ? (f->deadline_us - now + 999) / 1000 : 1;
  goop_stream_set_idle_timeout(s, (uint32_t)GOOP_MIN(left, UINT32_MAX));
  pump_write(f);
}

static int start(goop_host *host, const goop_peer_id *peer, enum cli_kind kind, const char *proto,
                 uint32_t timeout_ms, char *out, size_t out_len, goop_site_fetch *f) {
  f->kind = kind;
  f->host = host;
  f->timeout_ms = timeout_ms;
  f->out = out;
  f->out_len = out_len;
  f->deadline_us = goop__now_us() + (goop_tstamp)timeout_ms * 1000;
  f->kick = event_new(goop_ctx_get_base(goop_host_get_ctx(host)), -1, 0, kick_cb, f);
  if (!f->kick) {
    cli_free(f);
    return GOOP_ENOMEM;
  }
  const char *protos[] = {proto};
  f->open_pending = true;
  int rc = goop_host_new_stream(host, peer, protos, 1, timeout_ms, open_cb, f);
  if (rc) {
    cli_free(f);
    return rc;
  }
  return 0;
}

int goop_site_fetch_start(goop_host *host, const goop_peer_id *peer, const char *path, uint64_t max_size,
                          uint32_t timeout_ms, const struct goop_site_fetch_callbacks *cb, void *user_data,
                          goop_site_fetch **ret) {
  goop_return_val_if_fail(host && peer && path && cb && cb->version >= GOOP_SITE_FETCH_CALLBACKS_V1,
                          GOOP_EINVAL);
  if (!*path)
    path = "/index.html";
  size_t pl = strlen(path);
  if (pl + 5 > GOOP__SITE_MAX_LINE || strpbrk(path, "\r\n"))
    return GOOP_EINVAL;
  goop_site_fetch *f = calloc(1, sizeof(*f));
  char *out = malloc(pl + 6);
  if (!f || !out) {
    free(f);
    free(out);
    return GOOP_ENOMEM;
  }
  int n = snprintf(out, pl + 6, "GET %s\n", path);
  f->cb = *cb;
  f->ud = user_data;
  f->max = max_size ? max_size : GOOP_SITE_DEFAULT_MAX_FILE;
  f->line_limit = GOOP__SITE_MAX_LINE;
  goop_site_fetch *handle = f;
  int rc = start(host, peer, CLI_SITE, GOOP_PROTO_SITE, timeout_ms ? timeout_ms : 10000, out, (size_t)n, f);
  if (rc)
    return rc;
  if (ret)
    *ret = handle;
  return 0;
}

void goop_site_fetch_pause(goop_site_fetch *f, bool paused) {
  if (!f || f->finished || f->paused == paused)
    return;
  f->paused = paused;
  if (!f->s)
    return;
  if (paused) {
    if (f->have_header)
      goop_stream_set_idle_timeout(f->s, 0);
  } else {
    if (f->have_header)
      goop_stream_set_idle_timeout(f->s, f->timeout_ms);
    event_active(f->kick, 0, 0);
  }
}

void goop_site_fetch_cancel(goop_site_fetch *f) {
  if (!f || f->finished || f->cancelled)
    return;
  f->cancelled = true;
  if (f->s) {
    goop_stream_set_callbacks(f->s, NULL, NULL);
    goop_stream_reset(f->s);
    f->s = goop_stream_unref(f->s);
  }
  event_active(f->kick, 0, 0);
}

int goop_data_request(goop_host *host, const goop_peer_id *peer, const char *request, size_t len,
                      uint32_t timeout_ms, goop_data_cb cb, void *user_data) {
  goop_return_val_if_fail(host && peer && (request || len == 0) && cb, GOOP_EINVAL);
  if (len > DATA_MAX_LINE || memchr(request, '\n', len))
    return GOOP_EINVAL;
  goop_site_fetch *f = calloc(1, sizeof(*f));
  char *out = malloc(len + 1);
  if (!f || !out) {
    free(f);
    free(out);
    return GOOP_ENOMEM;
  }
  if (len)
    memcpy(out, request, len);
  out[len] = '\n';
  f->data_cb = cb;
  f->ud = user_data;
  f->line_limit = DATA_MAX_LINE;
  return start(host, peer, CLI_DATA, GOOP_PROTO_DATA, timeout_ms ? timeout_ms : 30000, out, len + 1, f);
}

int goop_content_fetch(goop_host *host, const goop_peer_id *peer, uint32_t timeout_ms, goop_content_cb cb,
                       void *user_data) {
  goop_return_val_if_fail(host && peer && cb, GOOP_EINVAL);
  goop_site_fetch *f = calloc(1, sizeof(*f));
  if (!f)
    return GOOP_ENOMEM;
  f->content_cb = cb;
  f->ud = user_data;
  f->line_limit = CONTENT_MAX_LINE;
  return start(host, peer, CLI_CONTENT, GOOP_PROTO_CONTENT, timeout_ms ? timeout_ms : 5000, NULL, 0, f);
}

int goop_avatar_fetch(goop_host *host, const goop_peer_id *peer, uint32_t timeout_ms, goop_avatar_cb cb,
                      void *user_data) {
  goop_return_val_if_fail(host && peer && cb, GOOP_EINVAL);
  goop_site_fetch *f = calloc(1, sizeof(*f));
  if (!f)
    return GOOP_ENOMEM;
  f->avatar_cb = cb;
  f->ud = user_data;
  f->max = GOOP_AVATAR_MAX;
  f->line_limit = AVATAR_MAX_HEADER;
  return start(host, peer, CLI_AVATAR, GOOP_PROTO_AVATAR, timeout_ms ? timeout_ms : 10000, NULL, 0, f);
}
