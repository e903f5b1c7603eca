/*
 * The rendezvous HTTP server (see rdv-server.h).
 */
#include "rdv-server.h"
#include "../common/html.h"
#include "rdv-head.h"
#include "rdv-templates.h"

#include "internal.h"
#include "viewer/mhd-libevent.h"

#include <event2/event_struct.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <microhttpd.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINES 500
#define LOG_LINE_MAX 512
#define AUTH_FAIL_SLOTS 256
#define AUTH_FAIL_MAX 10 /* failed admin logins per IP per window */
#define AUTH_FAIL_WINDOW_MS 60000
#define HEADER_TIMEOUT_S 30 /* idle connection timeout (not SSE: those are suspended) */
#define MAX_CONNS 1000000   /* also bounded by RLIMIT_NOFILE, see conn_limit() */
/* A request (headers and body) must be in within this many seconds of the
 * connection opening or the previous reply ending: MHD's idle timeout alone
 * lets a client that sends one byte at a time (slowloris) stay forever. */
#define REQUEST_DEADLINE_S 10
/* Bytes of an oversize chunked /publish body read (and dropped) so the client
 * still gets its 413; beyond this the connection is closed. */
#define DISCARD_MAX (1u << 20)
/* MHD's per-connection memory (request head, headers, write buffer). Every
 * /events subscriber holds one for its lifetime and MHD touches about half of
 * it at once (the first read buffer is zeroed when shrunk), so it dominates a
 * subscriber's RSS: 64 KiB gave 43 KB per subscriber, 16 KiB gives 16 KB.
 * Request heads up to about 12 KiB still fit; larger ones get 431. */
#define CONN_POOL_BYTES (16u << 10)
/* The stream's own buffer: chunked replies (HTTP/1.1) are written straight into
 * the connection's pool, so this only serves HTTP/1.0 clients. */
#define STREAM_BLOCK 1024
/* Subscribers with new messages are woken together at most this often: one
 * write carries every message of the interval instead of one write (and one
 * MHD resume/suspend) per message and subscriber. */
#define FLUSH_MS 20
/* GET /events is served outside MHD (struct sse: a few hundred bytes a
 * subscriber instead of MHD's pool and connection): the server accepts every
 * connection itself and peeks at its first request; a plain GET /events whose
 * head fits in HEAD_PEEK_MAX is answered here, everything else (and every
 * later request on a kept-alive connection) is handed to MHD with its bytes
 * still in the socket. */
#define HEAD_PEEK_MAX 8192
/* Queued bytes an /events subscriber gets per write. */
#define SSE_WRITE_MAX 16384
#define ACCEPT_BATCH 256

struct auth_fail {
  char ip[64];
  unsigned count;
  uint64_t start_ms;
};

struct rdv_server {
  struct event_base *base;
  goop_rdv *core;
  struct MHD_Daemon *d;
  struct mhd_ev *ev;
  struct event *tick;
  int port;
  char bind[64];
  char *admin_password;
  char *external_url;
  char *logs[LOG_LINES];
  size_t log_head, log_n;
  struct auth_fail fails[AUTH_FAIL_SLOTS];
  struct rdv_templates *templates;
  struct stream *streams;
  struct conn_slot *wait_head, *wait_tail; /* connections owing a request, by deadline */
  struct event *sweep;
  struct event *flush; /* FLUSH_MS after the first message since the last flush */
  size_t stream_cap;   /* /events subscribers the connection limit leaves room for */
  struct goop_rdv_net *trusted;
  size_t n_trusted;
  char *relay_json; /* GET /relay body; NULL = 404 */
  void (*metrics_hook)(goop_buf *out, void *ud);
  void *metrics_ud;
  /* Our own accept (see HEAD_PEEK_MAX). */
  int listen_fd;
  struct event *listen_ev;
  struct event *accept_retry; /* after EMFILE and the like */
  bool accept_paused;
  unsigned conns;                     /* connections held at most: peeked + sse + MHD's */
  size_t n_pend, n_sse, n_mhd;        /* connections held now */
  struct pend *pend_head, *pend_tail; /* by deadline */
  struct sse *sses;
  struct sse *dirty;         /* subscribers with messages since the last flush */
  uint64_t handoff_deadline; /* for on_conn(): the deadline a handed-off connection keeps */
  char scratch[HEAD_PEEK_MAX > SSE_WRITE_MAX + 16 ? HEAD_PEEK_MAX : SSE_WRITE_MAX + 16];
};

/* A connection while it owes the server a complete request (see REQUEST_DEADLINE_S). */
struct conn_slot {
  struct conn_slot *prev, *next;
  uint64_t deadline_ms; /* monotonic */
  int fd;
  bool listed;
};

/* One request: the body of a POST, or an SSE stream. */
struct req {
  struct rdv_server *s;
  goop_buf body;
  bool too_big;
  size_t ignored; /* body bytes of a request that takes none */
};

struct stream {
  struct rdv_server *s;
  struct MHD_Connection *conn;
  goop_rdv_sub *sub;
  struct event *watch; /* while suspended: the client going away */
  bool suspended;
  bool closing;
  struct stream *prev, *next;
};

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *dup_or_empty(const char *s) {
  return strdup(s ? s : "");
}

void rdv_server_log(struct rdv_server *s, const char *fmt, ...) {
  char msg[LOG_LINE_MAX - 16];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  time_t t = time(NULL);
  struct tm tm;
  localtime_r(&t, &tm);
  char line[LOG_LINE_MAX];
  snprintf(line, sizeof(line), "[%02d:%02d:%02d] %s", tm.tm_hour, tm.tm_min, tm.tm_sec, msg);
  fprintf(stderr, "goop2-rendezvous: %s\n", msg);
  if (!s)
    return;
  char *copy = strdup(line);
  if (!copy)
    return;
  size_t at = (s->log_head + s->log_n) % LOG_LINES;
  if (s->log_n == LOG_LINES) {
    free(s->logs[s->log_head]);
    s->logs[s->log_head] = copy;
    s->log_head = (s->log_head + 1) % LOG_LINES;
  } else {
    s->logs[at] = copy;
    s->log_n++;
  }
}

char *rdv_html_escape(const char *in) {
  if (!in)
    in = "";
  size_t n = 1;
  for (const char *p = in; *p; p++) {
    const char *rep = html_entity(*p);
    n += rep ? strlen(rep) : 1;
  }
  char *out = malloc(n), *o = out;
  if (!out)
    return NULL;
  for (const char *p = in; *p; p++) {
    const char *rep = html_entity(*p);
    if (rep) {
      size_t l = strlen(rep);
      memcpy(o, rep, l);
      o += l;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return out;
}

/* ---- replies ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype, const void *data,
                             size_t len, const char *extra_hdr, const char *extra_val) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
  if (!r)
    return MHD_NO;
  if (ctype)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (extra_hdr)
    MHD_add_response_header(r, extra_hdr, extra_val);
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text) {
  char buf[GOOP_RDV_ERRBUF + 2];
  size_t n = (size_t)snprintf(buf, sizeof(buf), "%s\n", text);
  if (n >= sizeof(buf))
    n = sizeof(buf) - 1;
  return reply(c, status, "text/plain; charset=utf-8", buf, n, NULL, NULL);
}

static enum MHD_Result reply_rejected(struct rdv_server *s, struct MHD_Connection *c, unsigned status,
                                      const char *text) {
  goop__rdv_note_rejected(s->core);
  return reply_text(c, status, text);
}

/* ---- client address ---- */

static void client_ip(struct rdv_server *s, struct MHD_Connection *c, char *out, size_t outlen) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  char raw[INET6_ADDRSTRLEN] = "unknown";
  if (ci && ci->client_addr) {
    const struct sockaddr *sa = ci->client_addr;
    socklen_t sl = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (getnameinfo(sa, sl, raw, sizeof(raw), NULL, 0, NI_NUMERICHOST) != 0)
      snprintf(raw, sizeof(raw), "unknown");
  }
  /* X-Forwarded-For counts only when the socket address is a trusted proxy. */
  const char *xff = s->n_trusted ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For") : NULL;
  if (goop__rdv_client_ip(s->trusted, s->n_trusted, raw, xff, out, outlen) != 0)
    snprintf(out, outlen, "%s", raw);
}

/* ---- SSE streams ---- */

static void stream_wake(struct stream *st) {
  if (st->suspended) {
    st->suspended = false;
    MHD_resume_connection(st->conn);
    mhd_ev_kick(st->s->ev);
  }
}

static void on_sub_notify(goop_rdv_sub *sub, void *ud) {
  (void)sub;
  struct stream *st = ud;
  struct rdv_server *s = st->s;
  if (!s || !s->flush) {
    stream_wake(st);
  } else if (!evtimer_pending(s->flush, NULL)) {
    struct timeval tv = {0, FLUSH_MS * 1000};
    evtimer_add(s->flush, &tv);
  }
}

static void sse_flush(struct rdv_server *s);

static void on_flush(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct rdv_server *s = arg;
  for (struct stream *st = s->streams; st; st = st->next)
    if (st->suspended && st->sub && goop__rdv_sub_pending(st->sub) > 0)
      stream_wake(st);
  sse_flush(s);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  struct stream *st = cls;
  if (st->closing || !st->sub)
    return MHD_CONTENT_READER_END_OF_STREAM;
  size_t n = goop__rdv_sub_read(st->sub, buf, max);
  if (n > 0)
    return (ssize_t)n;
  st->suspended = true;
  MHD_suspend_connection(st->conn);
  return 0;
}

static void on_watch(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  struct stream *st = arg;
  char b;
  ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  /* End of stream, an error or bytes an event-stream client never sends. */
  st->closing = true;
  event_del(st->watch);
  stream_wake(st);
}

static void stream_free(void *cls) {
  struct stream *st = cls;
  struct rdv_server *s = st->s;
  if (st->sub && s)
    goop__rdv_sub_remove(s->core, st->sub);
  if (s) {
    if (st->prev)
      st->prev->next = st->next;
    else if (s->streams == st)
      s->streams = st->next;
    if (st->next)
      st->next->prev = st->prev;
  }
  if (st->watch)
    event_free(st->watch);
  free(st);
}

static enum MHD_Result h_events(struct rdv_server *s, struct MHD_Connection *c, const char *ip) {
  struct stream *st = calloc(1, sizeof(*st));
  if (!st)
    return MHD_NO;
  char err[GOOP_RDV_ERRBUF];
  int rc = goop__rdv_sub_add(s->core, ip, &st->sub, err, sizeof(err));
  if (rc != 0) {
    free(st);
    return reply_text(c, rc == 429 ? 429 : 500, rc == 429 ? err : "internal error");
  }
  st->s = s;
  st->conn = c;
  goop__rdv_sub_set_notify(st->sub, on_sub_notify, st);
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (ci)
    st->watch = event_new(s->base, ci->connect_fd, EV_READ | EV_PERSIST, on_watch, st);
  if (st->watch)
    event_add(st->watch, NULL); /* for the stream's lifetime: no add/del per message */
  struct MHD_Response *r =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, st, stream_free);
  if (!r) {
    stream_free(st);
    return MHD_NO;
  }
  st->next = s->streams;
  if (s->streams)
    s->streams->prev = st;
  s->streams = st;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "keep-alive");
  MHD_add_response_header(r, "X-Accel-Buffering", "no");
  enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ret;
}

/* ---- GET /events outside MHD (see HEAD_PEEK_MAX) ---- */

/* An accepted connection until its first request head shows where it goes. */
struct pend {
  struct rdv_server *s;
  struct event ev;
  struct pend *prev, *next; /* s->pend_head, by deadline */
  uint64_t deadline_ms;     /* monotonic; REQUEST_DEADLINE_S after the accept */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  int fd;
};

/* An /events subscriber served here. */
struct sse {
  struct rdv_server *s;
  goop_rdv_sub *sub;
  struct event ev;           /* EV_READ (the client going away), plus EV_WRITE while |rest| waits */
  struct sse *prev, *next;   /* s->sses */
  struct sse *dprev, *dnext; /* s->dirty */
  char *rest;                /* bytes the socket did not take yet */
  uint32_t rest_len, rest_off;
  int fd;
  bool chunked, dirty, writing;
};

static void accept_resume(struct rdv_server *s);

static size_t held(const struct rdv_server *s) {
  return s->n_pend + s->n_sse + s->n_mhd;
}

static void raw_ip(const struct sockaddr *sa, socklen_t sl, char *out, size_t outlen) {
  if (!sa || getnameinfo(sa, sl, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST) != 0)
    snprintf(out, outlen, "unknown");
}

/* The Date header value as MHD writes it (RFC 7231 IMF-fixdate). */
static void http_date(char *out, size_t outlen) {
  static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
           months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Write all of |len| bytes now or fail (replies that fit in any socket buffer). */
static int send_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static void pend_unlink(struct rdv_server *s, struct pend *p) {
  if (p->prev)
    p->prev->next = p->next;
  else
    s->pend_head = p->next;
  if (p->next)
    p->next->prev = p->prev;
  else
    s->pend_tail = p->prev;
  s->n_pend--;
}

/* Forget |p|; close its socket unless it was handed on. */
static void pend_free(struct pend *p, bool close_fd) {
  struct rdv_server *s = p->s;
  event_del(&p->ev);
  pend_unlink(s, p);
  if (close_fd)
    close(p->fd);
  free(p);
  accept_resume(s);
}

/* Hand |p|'s socket to MHD with its unread bytes; the request deadline goes on
 * from the accept (|keep_deadline|) or starts anew (the next request of a kept-alive connection). */
static void pend_handoff(struct pend *p, bool keep_deadline) {
  struct rdv_server *s = p->s;
  int fd = p->fd;
  struct sockaddr_storage addr = p->addr;
  socklen_t addrlen = p->addrlen;
  uint64_t deadline = p->deadline_ms;
  pend_free(p, false);
  s->handoff_deadline = keep_deadline ? deadline : 0;
  /* On failure MHD closes the socket. */
  (void)MHD_add_connection(s->d, fd, (const struct sockaddr *)&addr, addrlen);
  s->handoff_deadline = 0;
  mhd_ev_kick(s->ev);
}

static void sse_dirty_del(struct rdv_server *s, struct sse *x) {
  if (!x->dirty)
    return;
  if (x->dprev)
    x->dprev->dnext = x->dnext;
  else
    s->dirty = x->dnext;
  if (x->dnext)
    x->dnext->dprev = x->dprev;
  x->dprev = x->dnext = NULL;
  x->dirty = false;
}

static void sse_free(struct sse *x) {
  struct rdv_server *s = x->s;
  event_del(&x->ev);
  sse_dirty_del(s, x);
  if (x->prev)
    x->prev->next = x->next;
  else
    s->sses = x->next;
  if (x->next)
    x->next->prev = x->prev;
  s->n_sse--;
  goop__rdv_sub_remove(s->core, x->sub);
  close(x->fd);
  free(x->rest);
  free(x);
  accept_resume(s);
}

static void on_sse_event(evutil_socket_t fd, short what, void *arg);

/* Watch for writability too while |rest| waits, else only for the client going away. A
 * subscriber that takes no byte for HEADER_TIMEOUT_S is closed (as MHD does with its streams). */
static void sse_want_write(struct sse *x, bool on) {
  if (x->writing == on)
    return;
  event_del(&x->ev);
  event_assign(&x->ev, x->s->base, x->fd, EV_READ | EV_PERSIST | (on ? EV_WRITE : 0), on_sse_event, x);
  struct timeval tv = {HEADER_TIMEOUT_S, 0};
  event_add(&x->ev, on ? &tv : NULL);
  x->writing = on;
}

/* Write what the queue holds until it is empty or the socket is full. 0, or -1: |x| must go. */
static int sse_pump(struct sse *x) {
  struct rdv_server *s = x->s;
  for (;;) {
    if (x->rest) {
      ssize_t n = send(x->fd, x->rest + x->rest_off, x->rest_len - x->rest_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        sse_want_write(x, true);
        return 0;
      }
      if (n <= 0)
        return -1;
      x->rest_off += (uint32_t)n;
      if (x->rest_off < x->rest_len) {
        sse_want_write(x, true);
        return 0;
      }
      free(x->rest);
      x->rest = NULL;
      x->rest_len = x->rest_off = 0;
    }
    char *buf = s->scratch;
    size_t len;
    if (x->chunked) {
      /* "<hex>\r\n" in front (at most 8 bytes for SSE_WRITE_MAX), "\r\n" after. */
      size_t n = goop__rdv_sub_read(x->sub, buf + 8, SSE_WRITE_MAX);
      if (n == 0)
        break;
      char hex[9];
      int hl = snprintf(hex, sizeof(hex), "%zx\r\n", n);
      buf += 8 - hl;
      memcpy(buf, hex, (size_t)hl);
      memcpy(buf + hl + n, "\r\n", 2);
      len = (size_t)hl + n + 2;
    } else {
      len = goop__rdv_sub_read(x->sub, buf, SSE_WRITE_MAX);
      if (len == 0)
        break;
    }
    ssize_t n = send(x->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      n = 0;
    else if (n < 0)
      return -1;
    if ((size_t)n < len) {
      x->rest = malloc(len - (size_t)n);
      if (!x->rest)
        return -1;
      memcpy(x->rest, buf + n, len - (size_t)n);
      x->rest_len = (uint32_t)(len - (size_t)n);
      x->rest_off = 0;
      sse_want_write(x, true);
      return 0;
    }
  }
  sse_want_write(x, false);
  return 0;
}

static void on_sse_event(evutil_socket_t fd, short what, void *arg) {
  struct sse *x = arg;
  if (what & EV_TIMEOUT) {
    sse_free(x);
    return;
  }
  if (what & EV_READ) {
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) {
      /* End of stream, an error or bytes an event-stream client never sends. */
      sse_free(x);
      return;
    }
  }
  if ((what & EV_WRITE) && sse_pump(x) != 0)
    sse_free(x);
}

static void on_sse_notify(goop_rdv_sub *sub, void *ud) {
  (void)sub;
  struct sse *x = ud;
  struct rdv_server *s = x->s;
  if (x->dirty)
    return;
  x->dirty = true;
  x->dprev = NULL;
  x->dnext = s->dirty;
  if (s->dirty)
    s->dirty->dprev = x;
  s->dirty = x;
  if (!evtimer_pending(s->flush, NULL)) {
    struct timeval tv = {0, FLUSH_MS * 1000};
    evtimer_add(s->flush, &tv);
  }
}

static void sse_flush(struct rdv_server *s) {
  while (s->dirty) {
    struct sse *x = s->dirty;
    sse_dirty_del(s, x);
    if (!x->rest && sse_pump(x) != 0) /* with |rest| waiting EV_WRITE does it */
      sse_free(x);
  }
}

/* Start serving GET /events on |p|'s socket; the head (|hlen| bytes) is still unread. */
static void events_serve(struct pend *p, size_t hlen, const struct rdv_events_req *r) {
  struct rdv_server *s = p->s;
  char raw[INET6_ADDRSTRLEN], ip[64], xff[4097]; /* goop__rdv_client_ip() reads 4096 */
  raw_ip((const struct sockaddr *)&p->addr, p->addrlen, raw, sizeof(raw));
  const char *xffp = NULL;
  if (s->n_trusted && r->xff) {
    size_t n = r->xff_len < sizeof(xff) - 1 ? r->xff_len : sizeof(xff) - 1;
    memcpy(xff, r->xff, n);
    xff[n] = '\0';
    xffp = xff;
  }
  if (goop__rdv_client_ip(s->trusted, s->n_trusted, raw, xffp, ip, sizeof(ip)) != 0)
    snprintf(ip, sizeof(ip), "%s", raw);
  /* Consume the head: it is all the socket holds (see pend_try()). */
  if (recv(p->fd, s->scratch, hlen, 0) != (ssize_t)hlen) {
    pend_free(p, true);
    return;
  }
  char date[40];
  http_date(date, sizeof(date));
  char head[512];
  struct sse *x = calloc(1, sizeof(*x));
  char err[GOOP_RDV_ERRBUF];
  int rc = x ? goop__rdv_sub_add(s->core, ip, &x->sub, err, sizeof(err)) : 500;
  if (rc != 0) {
    free(x);
    if (rc != 429)
      snprintf(err, sizeof(err), "internal error");
    char body[GOOP_RDV_ERRBUF + 2];
    int bl = snprintf(body, sizeof(body), "%s\n", err);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nDate: %s\r\n%sContent-Type: text/plain; charset=utf-8\r\n"
                     "X-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n\r\n%s",
                     rc == 429 ? "429 Too Many Requests" : "500 Internal Server Error", date,
                     r->close ? "Connection: close\r\n" : "", bl, body);
    if (n < 0 || (size_t)n >= sizeof(head) || send_all(p->fd, head, (size_t)n) != 0 || r->close)
      pend_free(p, true);
    else
      pend_handoff(p, false); /* the next request on this connection */
    return;
  }
  x->s = s;
  x->fd = p->fd;
  x->chunked = !r->http10;
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 200 OK\r\nDate: %s\r\n%sContent-Type: text/event-stream\r\n"
                   "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n%s\r\n",
                   date, r->close ? "Connection: close\r\n" : "",
                   x->chunked ? "Transfer-Encoding: chunked\r\n" : "");
  /* The socket now belongs to |x|. */
  event_del(&p->ev);
  pend_unlink(s, p);
  free(p);
  x->next = s->sses;
  if (s->sses)
    s->sses->prev = x;
  s->sses = x;
  s->n_sse++;
  goop__rdv_sub_set_notify(x->sub, on_sse_notify, x);
  int one = 1;
  setsockopt(x->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  event_assign(&x->ev, s->base, x->fd, EV_READ | EV_PERSIST, on_sse_event, x);
  if (event_add(&x->ev, NULL) != 0 || send_all(x->fd, head, (size_t)n) != 0 || sse_pump(x) != 0)
    sse_free(x);
}

/* Look at what |p| has sent so far: wait for more, serve /events or hand it to MHD. */
static void pend_try(struct pend *p) {
  char *buf = p->s->scratch;
  ssize_t n = recv(p->fd, buf, HEAD_PEEK_MAX, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n <= 0) {
    pend_free(p, true);
    return;
  }
  size_t hlen;
  struct rdv_events_req r;
  switch (rdv_head_classify(buf, (size_t)n, HEAD_PEEK_MAX, &hlen, &r)) {
  case RDV_HEAD_WAIT:
    return;
  case RDV_HEAD_EVENTS:
    events_serve(p, hlen, &r);
    return;
  default:
    pend_handoff(p, true);
  }
}

static void on_pend_read(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  pend_try(arg);
}

static void accept_pause(struct rdv_server *s) {
  if (!s->accept_paused) {
    event_del(s->listen_ev);
    s->accept_paused = true;
  }
}

static void accept_resume(struct rdv_server *s) {
  if (s->accept_paused && s->listen_ev && held(s) < s->conns && !evtimer_pending(s->accept_retry, NULL)) {
    s->accept_paused = false;
    event_add(s->listen_ev, NULL);
  }
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  accept_resume(arg);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg) {
  (void)what;
  struct rdv_server *s = arg;
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    if (held(s) >= s->conns) {
      accept_pause(s); /* the connection waits in the backlog until one closes */
      return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
        continue;
      /* Out of descriptors or memory: try again shortly. */
      accept_pause(s);
      struct timeval tv = {0, 100 * 1000};
      evtimer_add(s->accept_retry, &tv);
      return;
    }
    struct pend *p = calloc(1, sizeof(*p));
    if (!p) {
      close(fd);
      continue;
    }
    p->s = s;
    p->fd = fd;
    p->addr = ss;
    p->addrlen = sl;
    p->deadline_ms = mono_ms() + REQUEST_DEADLINE_S * 1000u;
    p->prev = s->pend_tail;
    if (s->pend_tail)
      s->pend_tail->next = p;
    else
      s->pend_head = p;
    s->pend_tail = p;
    s->n_pend++;
    event_assign(&p->ev, s->base, fd, EV_READ | EV_PERSIST, on_pend_read, p);
    if (event_add(&p->ev, NULL) != 0) {
      pend_free(p, true);
      continue;
    }
    pend_try(p); /* the request often came with the connection */
  }
}

/* ---- admin auth ---- */

static struct auth_fail *fail_slot(struct rdv_server *s, const char *ip, uint64_t now, bool create) {
  struct auth_fail *free_slot = NULL, *oldest = &s->fails[0];
  for (size_t i = 0; i < AUTH_FAIL_SLOTS; i++) {
    struct auth_fail *f = &s->fails[i];
    if (f->ip[0] && now - f->start_ms >= AUTH_FAIL_WINDOW_MS)
      f->ip[0] = '\0';
    if (f->ip[0] && strcmp(f->ip, ip) == 0)
      return f;
    if (!f->ip[0] && !free_slot)
      free_slot = f;
    if (f->ip[0] && f->start_ms < oldest->start_ms)
      oldest = f;
  }
  if (!create)
    return NULL;
  struct auth_fail *f = free_slot ? free_slot : oldest;
  snprintf(f->ip, sizeof(f->ip), "%s", ip);
  f->count = 0;
  f->start_ms = now;
  return f;
}

/* 0 = authorised; otherwise the reply was queued into |*ret|. */
static int check_admin(struct rdv_server *s, struct MHD_Connection *c, const char *ip, enum MHD_Result *ret) {
  if (!s->admin_password || !s->admin_password[0]) {
    *ret = reply_rejected(s, c, MHD_HTTP_FORBIDDEN, "admin panel disabled");
    return -1;
  }
  uint64_t now = wall_ms();
  struct auth_fail *f = fail_slot(s, ip, now, false);
  if (f && f->count >= AUTH_FAIL_MAX) {
    *ret = reply_rejected(s, c, MHD_HTTP_TOO_MANY_REQUESTS, "too many failed logins");
    return -1;
  }
  bool ok = false;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (h && strncasecmp(h, "Basic ", 6) == 0) {
    const char *b64 = h + 6;
    while (*b64 == ' ')
      b64++;
    size_t bl = strlen(b64);
    if (bl > 0 && bl <= 1024 && bl % 4 == 0) {
      unsigned char dec[800];
      int dl = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)bl);
      if (dl >= 0) {
        size_t n = (size_t)dl;
        /* EVP_DecodeBlock counts the padding as zero bytes. */
        if (bl >= 1 && b64[bl - 1] == '=')
          n--;
        if (bl >= 2 && b64[bl - 2] == '=')
          n--;
        const size_t pl = strlen(s->admin_password);
        if (n >= 6 && memcmp(dec, "admin:", 6) == 0 && n - 6 == pl && pl < sizeof(dec))
          ok = CRYPTO_memcmp(dec + 6, s->admin_password, pl) == 0;
        goop__wipe(dec, sizeof(dec));
      }
    }
  }
  if (ok)
    return 0;
  f = fail_slot(s, ip, now, true);
  f->count++;
  rdv_server_log(s, "admin: failed login from %s", ip);
  goop__rdv_note_rejected(s->core);
  *ret = reply(c, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8", "unauthorized\n", 13,
               "WWW-Authenticate", "Basic realm=\"Goop2 Admin\"");
  return -1;
}

/* ---- pages ---- */

static int append_fmt(goop_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int append_fmt(goop_buf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0)
    return -1;
  return goop_buf_append(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static int append_esc(goop_buf *b, const char *s) {
  char *e = rdv_html_escape(s);
  if (!e)
    return -1;
  int rc = goop_buf_append_str(b, e);
  free(e);
  return rc;
}

static bool skip_iface(const char *name) {
  return strncmp(name, "docker", 6) == 0 || strncmp(name, "veth", 4) == 0 || strncmp(name, "br-", 3) == 0 ||
         strncmp(name, "virbr", 5) == 0;
}

/* The connect URLs of §9.7, as a JSON array of strings. */
static json_t *connect_urls(struct rdv_server *s) {
  json_t *a = json_array();
  if (!a)
    return NULL;
  if (s->external_url && s->external_url[0]) {
    json_array_append_new(a, json_string(s->external_url));
    return a;
  }
  struct ifaddrs *ifa = NULL;
  if (getifaddrs(&ifa) == 0) {
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
          (i->ifa_flags & IFF_LOOPBACK) || skip_iface(i->ifa_name))
        continue;
      char ip[INET_ADDRSTRLEN];
      if (!inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, ip, sizeof(ip)))
        continue;
      char url[96];
      snprintf(url, sizeof(url), "http://%s:%d", ip, s->port);
      json_array_append_new(a, json_string(url));
    }
    freeifaddrs(ifa);
  }
  return a;
}

static const char PAGE_HEAD[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>%s</title><style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem "
    "auto;padding:0 1rem}"
    "code{background:#eee;padding:.1rem .3rem}table{border-collapse:collapse;width:100%%}"
    "td,th{border-bottom:1px solid "
    "#ccc;padding:.3rem;text-align:left;font-size:.9rem}</style></head><body>\n";

static enum MHD_Result h_index(struct rdv_server *s, struct MHD_Connection *c) {
  goop_buf b;
  goop_buf_init(&b, 0);
  append_fmt(&b, PAGE_HEAD, "Goop&#178; Rendezvous");
  goop_buf_append_str(&b, "<header><h1>Goop&#178; Rendezvous</h1><nav>");
  if (s->admin_password && s->admin_password[0])
    goop_buf_append_str(&b, "<a href=\"/admin\">Admin</a>");
  goop_buf_append_str(&b,
                      "</nav></header>\n<p>This server introduces Goop&#178; peers to each other across the "
                      "internet. Peers publish their presence here and receive everybody else's.</p>\n"
                      "<section><h2>Connect to this server</h2><p>Put one of these URLs in "
                      "<code>presence.rendezvous_wan</code> of your peer's goop.json:</p><ul>\n");
  json_t *urls = connect_urls(s);
  size_t i;
  json_t *u;
  json_array_foreach(urls, i, u) {
    goop_buf_append_str(&b, "<li><code>");
    append_esc(&b, json_string_value(u));
    goop_buf_append_str(&b, "</code></li>\n");
  }
  goop_buf_append_str(&b, "</ul></section>\n");
  goop_buf_append_str(&b, rdv_templates_html(s->templates));
  goop_buf_append_str(&b, "<footer><p>");
  append_fmt(&b, "%zu peers online", goop__rdv_peer_count(s->core));
  if (json_array_size(urls) > 0) {
    goop_buf_append_str(&b, " &middot; <code>");
    append_esc(&b, json_string_value(json_array_get(urls, 0)));
    goop_buf_append_str(&b, "</code>");
  }
  goop_buf_append_str(&b, "</p></footer></body></html>\n");
  json_decref(urls);
  enum MHD_Result r = reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", b.data, b.len, NULL, NULL);
  goop_buf_free(&b);
  return r;
}

static enum MHD_Result h_admin(struct rdv_server *s, struct MHD_Connection *c) {
  goop_buf b, pj;
  goop_buf_init(&b, 0);
  goop_buf_init(&pj, 0);
  append_fmt(&b, PAGE_HEAD, "Goop&#178; Rendezvous &mdash; Admin");
  struct goop_rdv_stats st;
  goop__rdv_stats(s->core, &st);
  append_fmt(&b,
             "<h1>Rendezvous admin</h1><p>%zu peers, %zu subscribers, %llu publishes, %llu rejected, "
             "%llu dropped</p>\n<table><thead><tr><th>Peer</th><th>Type</th><th>Label</th><th>Email</th>"
             "<th>Last seen (ms)</th><th>Verified</th></tr></thead><tbody>\n",
             st.peers, st.subscribers, (unsigned long long)st.publishes, (unsigned long long)st.rejected,
             (unsigned long long)st.drops);
  json_t *rows = NULL;
  if (goop__rdv_peers_json(s->core, &pj) == 0)
    rows = json_loadb((const char *)pj.data, pj.len, 0, NULL);
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    goop_buf_append_str(&b, "<tr><td><code>");
    append_esc(&b, json_string_value(json_object_get(row, "peer_id")));
    goop_buf_append_str(&b, "</code></td><td>");
    append_esc(&b, json_string_value(json_object_get(row, "type")));
    goop_buf_append_str(&b, "</td><td>");
    append_esc(&b, json_string_value(json_object_get(row, "content")));
    goop_buf_append_str(&b, "</td><td>");
    append_esc(&b, json_string_value(json_object_get(row, "email")));
    append_fmt(&b, "</td><td>%lld</td><td>%s</td></tr>\n",
               (long long)json_integer_value(json_object_get(row, "last_seen")),
               json_is_true(json_object_get(row, "verified")) ? "yes" : "no");
  }
  json_decref(rows);
  goop_buf_append_str(&b, "</tbody></table>\n<h2>Log</h2><pre>");
  for (size_t k = 0; k < s->log_n; k++) {
    append_esc(&b, s->logs[(s->log_head + k) % LOG_LINES]);
    goop_buf_append_str(&b, "\n");
  }
  goop_buf_append_str(&b, "</pre></body></html>\n");
  enum MHD_Result r =
      reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", b.data, b.len, "Cache-Control", "no-store");
  goop_buf_free(&b);
  goop_buf_free(&pj);
  return r;
}

static enum MHD_Result h_peers_json(struct rdv_server *s, struct MHD_Connection *c) {
  goop_buf b;
  goop_buf_init(&b, 0);
  if (goop__rdv_peers_json(s->core, &b) != 0) {
    goop_buf_free(&b);
    return reply_text(c, 500, "internal error");
  }
  enum MHD_Result r =
      reply(c, MHD_HTTP_OK, "application/json; charset=utf-8", b.data, b.len, "Cache-Control", "no-store");
  goop_buf_free(&b);
  return r;
}

static enum MHD_Result h_logs_json(struct rdv_server *s, struct MHD_Connection *c) {
  json_t *a = json_array();
  for (size_t k = 0; a && k < s->log_n; k++)
    json_array_append_new(a, json_string(s->logs[(s->log_head + k) % LOG_LINES]));
  char *txt = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  if (!txt)
    return reply_text(c, 500, "internal error");
  enum MHD_Result r =
      reply(c, MHD_HTTP_OK, "application/json; charset=utf-8", txt, strlen(txt), "Cache-Control", "no-store");
  free(txt);
  return r;
}

static enum MHD_Result h_metrics(struct rdv_server *s, struct MHD_Connection *c) {
  goop_buf b;
  goop_buf_init(&b, 0);
  if (goop__rdv_metrics(s->core, &b) != 0) {
    goop_buf_free(&b);
    return reply_text(c, 500, "internal error");
  }
  if (s->metrics_hook)
    s->metrics_hook(&b, s->metrics_ud);
  enum MHD_Result r =
      reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL, NULL);
  goop_buf_free(&b);
  return r;
}

/* ---- request deadline ---- */

static void wait_del(struct rdv_server *s, struct conn_slot *k) {
  if (!k->listed)
    return;
  if (k->prev)
    k->prev->next = k->next;
  else
    s->wait_head = k->next;
  if (k->next)
    k->next->prev = k->prev;
  else
    s->wait_tail = k->prev;
  k->prev = k->next = NULL;
  k->listed = false;
}

/* (Re)start the deadline at |deadline_ms| (0 = now + REQUEST_DEADLINE_S). Most
 * deadlines are now + the same delay, so the place is found from the tail. */
static void wait_add_at(struct rdv_server *s, struct conn_slot *k, uint64_t deadline_ms) {
  wait_del(s, k);
  k->deadline_ms = deadline_ms ? deadline_ms : mono_ms() + REQUEST_DEADLINE_S * 1000u;
  struct conn_slot *after = s->wait_tail;
  while (after && after->deadline_ms > k->deadline_ms)
    after = after->prev;
  k->prev = after;
  k->next = after ? after->next : s->wait_head;
  if (k->next)
    k->next->prev = k;
  else
    s->wait_tail = k;
  if (after)
    after->next = k;
  else
    s->wait_head = k;
  k->listed = true;
}

static void wait_add(struct rdv_server *s, struct conn_slot *k) {
  wait_add_at(s, k, 0);
}

static struct conn_slot *conn_slot_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? ci->socket_context : NULL;
}

static void on_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                    enum MHD_ConnectionNotificationCode code) {
  struct rdv_server *s = cls;
  struct conn_slot *k = *socket_context;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    s->n_mhd++;
    k = calloc(1, sizeof(*k));
    *socket_context = k;
    if (!k)
      return; /* this connection then lives by MHD's idle timeout alone */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    k->fd = ci ? ci->connect_fd : -1;
    wait_add_at(s, k, s->handoff_deadline);
    return;
  }
  if (s->n_mhd)
    s->n_mhd--;
  if (k) {
    wait_del(s, k);
    free(k);
    *socket_context = NULL;
  }
  accept_resume(s);
}

/* Connections past their deadline: shut the socket down; MHD then reads EOF and closes it. */
static void on_sweep(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct rdv_server *s = arg;
  uint64_t now = mono_ms();
  bool any = false;
  while (s->pend_head && s->pend_head->deadline_ms <= now)
    pend_free(s->pend_head, true); /* a head that never completed */
  while (s->wait_head && s->wait_head->deadline_ms <= now) {
    struct conn_slot *k = s->wait_head;
    wait_del(s, k);
    if (k->fd >= 0)
      shutdown(k->fd, SHUT_RDWR);
    any = true;
  }
  if (any)
    mhd_ev_kick(s->ev);
}

static enum MHD_Result reply_too_large(struct rdv_server *s, struct MHD_Connection *c) {
  goop__rdv_note_rejected(s->core);
  static const char text[] = "request body too large\n";
  return reply(c, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain; charset=utf-8", text, sizeof(text) - 1,
               MHD_HTTP_HEADER_CONNECTION, "close");
}

/* ---- dispatch ---- */

static bool is_get(const char *m) {
  return strcmp(m, MHD_HTTP_METHOD_GET) == 0 || strcmp(m, MHD_HTTP_METHOD_HEAD) == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  (void)version;
  struct rdv_server *s = cls;
  char ip[64];
  if (*con_cls && *upload_data_size == 0) { /* the request is complete: its deadline is met */
    struct conn_slot *k = conn_slot_of(c);
    if (k)
      wait_del(s, k);
  }
  bool publish = strcmp(url, "/publish") == 0;
  if (publish && strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
    struct req *rq = *con_cls;
    if (!rq) {
      rq = calloc(1, sizeof(*rq));
      if (!rq)
        return MHD_NO;
      rq->s = s;
      goop_buf_init(&rq->body, GOOP_RDV_MAX_BODY + 1);
      *con_cls = rq;
      /* Too large by its Content-Length: answer before the body (MHD then closes the connection). */
      const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      if (cl && strtoull(cl, NULL, 10) > GOOP_RDV_MAX_BODY)
        return reply_too_large(s, c);
      return MHD_YES;
    }
    if (*upload_data_size > 0) {
      if (!rq->too_big && goop_buf_append(&rq->body, upload_data, *upload_data_size) != 0)
        rq->too_big = true;
      if (rq->too_big) {
        rq->ignored += *upload_data_size;
        if (rq->ignored > DISCARD_MAX)
          return MHD_NO; /* a chunked body without end */
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (rq->too_big || rq->body.len > GOOP_RDV_MAX_BODY)
      return reply_too_large(s, c);
    client_ip(s, c, ip, sizeof(ip));
    char err[GOOP_RDV_ERRBUF] = "";
    int rc = goop__rdv_publish(s->core, ip, rq->body.data ? (const char *)rq->body.data : "", rq->body.len,
                               wall_ms(), err, sizeof(err));
    if (rc == 204)
      return reply(c, MHD_HTTP_NO_CONTENT, NULL, "", 0, NULL, NULL);
    if (rc != 429)
      rdv_server_log(s, "publish from %s refused: %s", ip, err);
    return reply_text(c, (unsigned)rc, err);
  }
  /* Everything else ignores a body (up to the limit) and answers once the request is complete. */
  if (!*con_cls) {
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > GOOP_RDV_MAX_BODY)
      return reply_too_large(s, c);
    struct req *rq = calloc(1, sizeof(*rq));
    if (!rq)
      return MHD_NO;
    rq->s = s;
    *con_cls = rq;
    return MHD_YES;
  }
  if (*upload_data_size > 0) {
    struct req *rq = *con_cls;
    rq->ignored += *upload_data_size;
    *upload_data_size = 0;
    if (rq->ignored > GOOP_RDV_MAX_BODY)
      return MHD_NO;
    return MHD_YES;
  }
  if (strcmp(url, "/healthz") == 0)
    return reply(c, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok", 2, NULL, NULL);
  if (publish)
    return reply_rejected(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
  if (rdv_templates_match(url))
    return rdv_templates_serve(s->templates, c, url, method);
  bool known = strcmp(url, "/") == 0 || strcmp(url, "/events") == 0 || strcmp(url, "/relay") == 0 ||
               strcmp(url, "/admin") == 0 || strcmp(url, "/peers.json") == 0 ||
               strcmp(url, "/logs.json") == 0 || strcmp(url, "/metrics") == 0;
  if (!known)
    return reply_text(c, MHD_HTTP_NOT_FOUND, "404 page not found");
  if (!is_get(method))
    return reply_rejected(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
  client_ip(s, c, ip, sizeof(ip));
  if (strcmp(url, "/") == 0)
    return h_index(s, c);
  if (strcmp(url, "/events") == 0)
    return h_events(s, c, ip);
  if (strcmp(url, "/relay") == 0) {
    if (!s->relay_json)
      return reply_text(c, MHD_HTTP_NOT_FOUND, "404 page not found");
    return reply(c, MHD_HTTP_OK, "application/json", s->relay_json, strlen(s->relay_json), "Cache-Control",
                 "no-cache");
  }
  if (strcmp(url, "/metrics") == 0)
    return h_metrics(s, c);
  enum MHD_Result ret = MHD_NO;
  if (check_admin(s, c, ip, &ret) != 0)
    return ret;
  if (strcmp(url, "/admin") == 0)
    return h_admin(s, c);
  if (strcmp(url, "/peers.json") == 0)
    return h_peers_json(s, c);
  return h_logs_json(s, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode t) {
  struct rdv_server *s = cls;
  struct conn_slot *k = conn_slot_of(c);
  if (k && t == MHD_REQUEST_TERMINATED_COMPLETED_OK)
    wait_add(s, k); /* the next request on this connection has the same deadline */
  struct req *rq = *con_cls;
  if (rq) {
    goop_buf_free(&rq->body);
    free(rq);
    *con_cls = NULL;
  }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  (void)fmt;
  (void)ap;
}

static void templates_log(void *ud, const char *msg) {
  rdv_server_log(ud, "%s", msg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct rdv_server *s = arg;
  uint64_t now = wall_ms();
  size_t before = goop__rdv_peer_count(s->core);
  uint64_t next = goop__rdv_tick(s->core, now);
  size_t after = goop__rdv_peer_count(s->core);
  if (after < before)
    rdv_server_log(s, "evicted %zu stale peers", before - after);
  uint64_t wait = next > now ? next - now : 1;
  if (wait > 5000)
    wait = 5000;
  struct timeval tv = {.tv_sec = (long)(wait / 1000), .tv_usec = (long)(wait % 1000) * 1000};
  evtimer_add(s->tick, &tv);
  mhd_ev_kick(s->ev);
}

static int listen_socket(const char *bind_ip, int port, int *ret_port, char *err, size_t errlen) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t sl;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, bind_ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    sl = sizeof(*a4);
  } else if (inet_pton(AF_INET6, bind_ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    sl = sizeof(*a6);
  } else {
    snprintf(err, errlen, "rendezvous: bad bind address %s", bind_ip);
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    snprintf(err, errlen, "rendezvous: socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (ss.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 512) != 0) {
    snprintf(err, errlen, "rendezvous: cannot listen on %s:%d: %s", bind_ip, port, strerror(errno));
    close(fd);
    return -1;
  }
  sl = sizeof(ss);
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  *ret_port = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
  return fd;
}

/* Connections MHD may hold: the file descriptor limit (raised to the hard
 * limit) minus a reserve; a limit above it makes MHD close every connection
 * after one response. */
static unsigned conn_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 256;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
      rl.rlim_cur = rl.rlim_max;
  }
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > MAX_CONNS + 64)
    return MAX_CONNS;
  return rl.rlim_cur > 128 ? (unsigned)(rl.rlim_cur - 64) : 64;
}

/* /events streams stay open: at most the connection limit minus a reserve
 * (1/8, 16..1024) may be streams, so publishes, health checks and the admin
 * still get a connection when subscribers would fill every slot (they get 429). */
static size_t stream_cap(unsigned conns) {
  unsigned reserve = conns / 8;
  reserve = reserve < 16 ? 16 : reserve > 1024 ? 1024 : reserve;
  return conns > reserve ? conns - reserve : 1;
}

/* The configured limits (NULL = defaults), with the subscriber total capped by stream_cap. */
static void set_limits(struct rdv_server *s, const struct goop_rdv_limits *l) {
  struct goop_rdv_limits lim, def;
  goop__rdv_limits_default(&def);
  lim = l ? *l : def;
  if (!lim.sse_total)
    lim.sse_total = def.sse_total;
  if (lim.sse_total > s->stream_cap) {
    lim.sse_total = s->stream_cap;
    rdv_server_log(s, "at most %zu /events subscribers (file descriptor limit)", s->stream_cap);
  }
  goop__rdv_set_limits(s->core, &lim);
}

/* The /relay body: {"peer_id": ..., "addrs": [...]}, or NULL without a relay. */
static char *relay_json(const struct rdv_server_opts *o) {
  if (!o->relay_peer_id || !o->relay_peer_id[0])
    return NULL;
  json_t *addrs = json_array();
  for (size_t i = 0; addrs && i < o->n_relay_addrs; i++)
    json_array_append_new(addrs, json_string(o->relay_addrs[i]));
  json_t *obj = addrs ? json_pack("{s:s,s:o}", "peer_id", o->relay_peer_id, "addrs", addrs) : NULL;
  char *txt = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  return txt;
}

/* Settings shared by start and reload; 0 or -1 with |err| set. */
static int apply_opts(struct rdv_server *s, const struct rdv_server_opts *o, char *err, size_t errlen) {
  struct goop_rdv_net *nets = NULL;
  size_t n = 0;
  if (o->n_trusted_proxies &&
      goop__rdv_nets_parse(o->trusted_proxies, o->n_trusted_proxies, &nets, &n, err, errlen) != 0)
    return -1;
  char *rj = relay_json(o);
  if (o->relay_peer_id && o->relay_peer_id[0] && !rj) {
    free(nets);
    snprintf(err, errlen, "rendezvous: out of memory");
    return -1;
  }
  free(s->trusted);
  s->trusted = nets;
  s->n_trusted = n;
  free(s->relay_json);
  s->relay_json = rj;
  s->metrics_hook = o->metrics_hook;
  s->metrics_ud = o->metrics_ud;
  return 0;
}

int rdv_server_new(struct event_base *base, const struct rdv_server_opts *o, struct rdv_server **ret,
                   char *err, size_t errlen) {
  *ret = NULL;
  struct rdv_server *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(err, errlen, "rendezvous: out of memory");
    return -1;
  }
  s->base = base;
  s->listen_fd = -1;
  snprintf(s->bind, sizeof(s->bind), "%s", o->bind && o->bind[0] ? o->bind : "127.0.0.1");
  s->admin_password = dup_or_empty(o->admin_password);
  s->external_url = dup_or_empty(o->external_url);
  if (!s->admin_password || !s->external_url || goop__rdv_new(NULL, &s->core) != 0) {
    snprintf(err, errlen, "rendezvous: out of memory");
    goto fail;
  }
  unsigned conns = conn_limit();
  s->stream_cap = stream_cap(conns);
  set_limits(s, o->limits);
  if (apply_opts(s, o, err, errlen) != 0)
    goto fail;
  if (o->peer_db_path && o->peer_db_path[0]) {
    char dberr[256];
    if (goop__rdv_db_open(s->core, o->peer_db_path, wall_ms(), dberr, sizeof(dberr)) != 0)
      rdv_server_log(s, "warning: peers.db: %s (memory only)", dberr);
    else
      rdv_server_log(s, "peers.db %s: %zu peers loaded", o->peer_db_path, goop__rdv_peer_count(s->core));
  }
  (void)rdv_templates_load(o->templates_dirs, o->n_templates_dirs, NULL, templates_log, s, &s->templates);
  s->listen_fd = listen_socket(s->bind, o->port, &s->port, err, errlen);
  if (s->listen_fd < 0)
    goto fail;
  s->conns = conns;
  s->d = MHD_start_daemon(
      MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL,
      on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_CONNECTION_LIMIT, conns,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HEADER_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      (size_t)CONN_POOL_BYTES, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
      on_conn, s, MHD_OPTION_UNESCAPE_CALLBACK, rdv_templates_unescape, NULL, MHD_OPTION_END);
  if (!s->d) {
    snprintf(err, errlen, "rendezvous: cannot start the HTTP server");
    goto fail;
  }
  s->ev = mhd_ev_new(base, s->d);
  s->tick = evtimer_new(base, on_tick, s);
  s->sweep = event_new(base, -1, EV_PERSIST, on_sweep, s);
  s->flush = evtimer_new(base, on_flush, s);
  s->accept_retry = evtimer_new(base, on_accept_retry, s);
  s->listen_ev = event_new(base, s->listen_fd, EV_READ | EV_PERSIST, on_accept, s);
  struct timeval second = {1, 0};
  if (!s->ev || !s->tick || !s->sweep || !s->flush || !s->accept_retry || !s->listen_ev ||
      event_add(s->sweep, &second) != 0 || event_add(s->listen_ev, NULL) != 0) {
    snprintf(err, errlen, "rendezvous: cannot attach the HTTP server to the event loop");
    goto fail;
  }
  struct timeval tv = {0, 0};
  evtimer_add(s->tick, &tv);
  rdv_server_log(s, "listening on http://%s:%d", s->bind, s->port);
  *ret = s;
  return 0;
fail:
  rdv_server_free(s);
  return -1;
}

int rdv_server_port(const struct rdv_server *s) {
  return s->port;
}

void rdv_server_reload(struct rdv_server *s, const struct rdv_server_opts *o) {
  char *pw = dup_or_empty(o->admin_password), *url = dup_or_empty(o->external_url);
  if (pw && url) {
    if (s->admin_password)
      goop__wipe(s->admin_password, strlen(s->admin_password));
    free(s->admin_password);
    free(s->external_url);
    s->admin_password = pw;
    s->external_url = url;
  } else {
    free(pw);
    free(url);
  }
  char err[256];
  if (apply_opts(s, o, err, sizeof(err)) != 0)
    rdv_server_log(s, "reload: %s (trusted proxies and /relay unchanged)", err);
  set_limits(s, o->limits);
  (void)rdv_templates_reload(&s->templates, o->templates_dirs, o->n_templates_dirs, NULL, templates_log, s);
  rdv_server_log(s, "configuration reloaded");
}

void rdv_server_free(struct rdv_server *s) {
  if (!s)
    return;
  if (s->listen_ev)
    event_free(s->listen_ev);
  s->listen_ev = NULL;
  while (s->pend_head)
    pend_free(s->pend_head, true);
  while (s->sses)
    sse_free(s->sses);
  if (s->accept_retry)
    event_free(s->accept_retry);
  if (s->listen_fd >= 0)
    close(s->listen_fd);
  /* End the streams: MHD calls stream_free() for each when the daemon stops. */
  for (struct stream *st = s->streams; st; st = st->next) {
    st->closing = true;
    if (st->suspended) {
      st->suspended = false;
      MHD_resume_connection(st->conn);
    }
  }
  if (s->ev)
    mhd_ev_free(s->ev);
  if (s->d)
    MHD_stop_daemon(s->d);
  /* Streams that MHD did not release are detached. */
  for (struct stream *st = s->streams, *n; st; st = n) {
    n = st->next;
    st->s = NULL;
  }
  if (s->tick)
    event_free(s->tick);
  if (s->sweep)
    event_free(s->sweep);
  if (s->flush)
    event_free(s->flush);
  goop__rdv_free(s->core);
  rdv_templates_unref(s->templates);
  if (s->admin_password) {
    goop__wipe(s->admin_password, strlen(s->admin_password));
    free(s->admin_password);
  }
  free(s->external_url);
  free(s->trusted);
  free(s->relay_json);
  for (size_t k = 0; k < s->log_n; k++)
    free(s->logs[(s->log_head + k) % LOG_LINES]);
  free(s);
}
