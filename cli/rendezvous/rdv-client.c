/*
 * Peer side of a rendezvous server (see rdv-client.h), on libevent's evhttp client.
 */
#include "rdv-client.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 8000
#define PUBLISH_TIMEOUT_S 2
#define STREAM_IDLE_S 60 /* the server pings every 25 s */

struct rdv_client {
  struct event_base *base;
  char *host;
  int port;
  char *self_id;
  rdv_client_msg_fn fn;
  void *ud;
  struct evhttp_connection *pub_conn;
  bool pub_busy;
  struct evhttp_connection *sse_conn;
  struct evhttp_request *sse_req;
  struct event *retry;
  unsigned backoff_ms;
  struct rdv_sse sse;
};

static void schedule_retry(struct rdv_client *c);

int rdv_sse_init(struct rdv_sse *p, rdv_sse_line_fn fn, void *ud) {
  memset(p, 0, sizeof(*p));
  p->line = malloc(RDV_SSE_LINE_MAX);
  p->fn = fn;
  p->ud = ud;
  return p->line ? 0 : -1;
}

void rdv_sse_reset(struct rdv_sse *p) {
  p->len = 0;
  p->overflow = false;
}

void rdv_sse_free(struct rdv_sse *p) {
  free(p->line);
  p->line = NULL;
}

static void sse_line(struct rdv_sse *p, const char *line, size_t n) {
  if (n && line[n - 1] == '\r')
    n--;
  if (n == 0)
    return;
  if (line[0] == ':') {
    p->fn(true, line, n, p->ud);
    return;
  }
  if (n < 5 || memcmp(line, "data:", 5) != 0)
    return;
  const char *d = line + 5;
  size_t len = n - 5;
  while (len && (*d == ' ' || *d == '\t')) {
    d++;
    len--;
  }
  while (len && (d[len - 1] == ' ' || d[len - 1] == '\t'))
    len--;
  p->fn(false, d, len, p->ud);
}

void rdv_sse_feed(struct rdv_sse *p, const char *data, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char ch = data[i];
    if (ch == '\n') {
      if (!p->overflow)
        sse_line(p, p->line, p->len);
      rdv_sse_reset(p);
    } else if (p->len >= RDV_SSE_LINE_MAX) {
      p->overflow = true;
    } else {
      p->line[p->len++] = ch;
    }
  }
}

static void on_line(bool comment, const char *data, size_t len, void *ud) {
  struct rdv_client *c = ud;
  if (comment) {
    if (len >= 4 && memcmp(data, ": ok", 4) == 0)
      c->backoff_ms = BACKOFF_MIN_MS; /* a healthy stream */
    return;
  }
  struct goop_presence_msg m;
  memset(&m, 0, sizeof(m));
  if (goop_presence_msg_parse(data, len, &m) != 0) {
    goop_presence_msg_clear(&m);
    return;
  }
  if (m.peer_id && m.peer_id[0] && strcmp(m.peer_id, c->self_id) != 0 && m.type != GOOP_PRESENCE_UNKNOWN)
    c->fn(&m, c->ud);
  goop_presence_msg_clear(&m);
}

static void on_chunk(struct evhttp_request *req, void *arg) {
  struct rdv_client *c = arg;
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  char tmp[4096];
  int n;
  while ((n = evbuffer_remove(in, tmp, sizeof(tmp))) > 0)
    rdv_sse_feed(&c->sse, tmp, (size_t)n);
}

static void on_stream_done(struct evhttp_request *req, void *arg) {
  (void)req;
  struct rdv_client *c = arg;
  c->sse_req = NULL;
  schedule_retry(c);
}

static void subscribe(struct rdv_client *c) {
  if (!c->sse_conn) {
    c->sse_conn = evhttp_connection_base_new(c->base, NULL, c->host, (unsigned short)c->port);
    if (!c->sse_conn) {
      schedule_retry(c);
      return;
    }
    evhttp_connection_set_timeout(c->sse_conn, STREAM_IDLE_S);
  }
  rdv_sse_reset(&c->sse);
  struct evhttp_request *req = evhttp_request_new(on_stream_done, c);
  if (!req) {
    schedule_retry(c);
    return;
  }
  evhttp_request_set_chunked_cb(req, on_chunk);
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "Host", c->host);
  evhttp_add_header(h, "Accept", "text/event-stream");
  if (evhttp_make_request(c->sse_conn, req, EVHTTP_REQ_GET, "/events") != 0) {
    schedule_retry(c); /* |req| was freed by evhttp */
    return;
  }
  c->sse_req = req;
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  subscribe(arg);
}

static void schedule_retry(struct rdv_client *c) {
  if (!c->retry) /* being freed */
    return;
  unsigned b = c->backoff_ms;
  /* Jitter: somewhere in [b/2, b]. */
  unsigned delay = b / 2 + (unsigned)(rand() % (int)(b / 2 + 1));
  if (c->backoff_ms < BACKOFF_MAX_MS)
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
  struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (long)(delay % 1000) * 1000};
  evtimer_add(c->retry, &tv);
}

int rdv_client_new(struct event_base *base, const char *url, const char *self_id, rdv_client_msg_fn fn,
                   void *ud, struct rdv_client **ret, char *err, size_t errlen) {
  *ret = NULL;
  struct evhttp_uri *u = evhttp_uri_parse(url);
  if (!u) {
    snprintf(err, errlen, "bad rendezvous URL %s", url);
    return -1;
  }
  const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
  if (!scheme || strcmp(scheme, "http") != 0 || !host || !host[0]) {
    snprintf(err, errlen, "%s: only http:// rendezvous URLs are supported so far", url);
    evhttp_uri_free(u);
    return -1;
  }
  struct rdv_client *c = calloc(1, sizeof(*c));
  if (!c) {
    evhttp_uri_free(u);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  c->base = base;
  c->host = strdup(host);
  c->port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
  evhttp_uri_free(u);
  c->self_id = strdup(self_id);
  c->fn = fn;
  c->ud = ud;
  c->backoff_ms = BACKOFF_MIN_MS;
  int sse_rc = rdv_sse_init(&c->sse, on_line, c);
  c->retry = evtimer_new(base, on_retry, c);
  if (!c->host || !c->self_id || sse_rc != 0 || !c->retry) {
    rdv_client_free(c);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  srand((unsigned)time(NULL) ^ (unsigned)(uintptr_t)c);
  subscribe(c);
  *ret = c;
  return 0;
}

static void on_published(struct evhttp_request *req, void *arg) {
  (void)req;
  struct rdv_client *c = arg;
  c->pub_busy = false;
}

void rdv_client_publish(struct rdv_client *c, const struct goop_presence_msg *m) {
  if (!c || (c->pub_busy && m->type != GOOP_PRESENCE_OFFLINE)) /* offline queues behind a pending one */
    return;
  char *json = NULL;
  size_t len = 0;
  if (goop_presence_msg_encode(m, &json, &len) != 0)
    return;
  if (!c->pub_conn) {
    c->pub_conn = evhttp_connection_base_new(c->base, NULL, c->host, (unsigned short)c->port);
    if (!c->pub_conn) {
      free(json);
      return;
    }
    evhttp_connection_set_timeout(c->pub_conn, PUBLISH_TIMEOUT_S);
  }
  struct evhttp_request *req = evhttp_request_new(on_published, c);
  if (!req) {
    free(json);
    return;
  }
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "Host", c->host);
  evhttp_add_header(h, "Content-Type", "application/json");
  evbuffer_add(evhttp_request_get_output_buffer(req), json, len);
  free(json);
  if (evhttp_make_request(c->pub_conn, req, EVHTTP_REQ_POST, "/publish") == 0)
    c->pub_busy = true;
}

void rdv_client_free(struct rdv_client *c) {
  if (!c)
    return;
  if (c->retry)
    event_free(c->retry);
  c->retry = NULL;
  /* Freeing a connection cancels its requests without calling their callbacks. */
  if (c->sse_conn)
    evhttp_connection_free(c->sse_conn);
  if (c->pub_conn)
    evhttp_connection_free(c->pub_conn);
  free(c->host);
  free(c->self_id);
  rdv_sse_free(&c->sse);
  free(c);
}
