/* TCP byte pipe on a libevent bufferevent, and address conversions. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "core/multiaddr.h"
#include "core/varint.h"
#include "transport-internal.h"

/*
 * Output blocks: encrypted data is written straight into pooled blocks that
 * the bufferevent references (no copy, no fresh pages per write). The pool
 * outlives the pipe while libevent still holds blocks.
 */
#define POOL_KEEP 8

struct block_pool {
  int refs; /* the pipe + every block handed to libevent */
  bool pipe_gone;
  int nfree;
  uint8_t *free[POOL_KEEP];
};

static void pool_unref(struct block_pool *pool) {
  if (--pool->refs > 0)
    return;
  for (int i = 0; i < pool->nfree; i++)
    free(pool->free[i]);
  free(pool);
}

static void block_release(const void *data, size_t len, void *extra) {
  (void)len;
  struct block_pool *pool = extra;
  if (!pool->pipe_gone && pool->nfree < POOL_KEEP)
    pool->free[pool->nfree++] = (uint8_t *)data;
  else
    free((void *)data);
  pool_unref(pool);
}

struct tcp_pipe {
  goop__pipe base;
  struct bufferevent *bev;
  char remote[160];
  bool shutting_down;
  struct block_pool *pool;
};

static void tcp_read_cb(struct bufferevent *bev, void *arg) {
  struct tcp_pipe *p = arg;
  if (p->base.conn && !p->shutting_down)
    goop__conn_pipe_input(p->base.conn, bufferevent_get_input(bev));
}

static void tcp_write_cb(struct bufferevent *bev, void *arg) {
  struct tcp_pipe *p = arg;
  if (p->shutting_down) {
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && p->base.conn)
      goop__conn_pipe_closed(p->base.conn, 0);
    return;
  }
  if (p->base.conn)
    goop__conn_pipe_drained(p->base.conn);
}

static void tcp_event_cb(struct bufferevent *bev, short what, void *arg) {
  struct tcp_pipe *p = arg;
  (void)bev;
  if (!p->base.conn)
    return;
  int err = 0;
  if (what & BEV_EVENT_ERROR) {
    int e = EVUTIL_SOCKET_ERROR();
    err = e ? goop__from_errno(e) : GOOP_ECONNRESET;
  } else if (what & BEV_EVENT_EOF) {
    err = GOOP_ECLOSED;
  }
  if (what & BEV_EVENT_TIMEOUT)
    err = GOOP_ETIMEDOUT;
  if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT))
    goop__conn_pipe_closed(p->base.conn, err);
}

static int tcp_write(goop__pipe *base, const uint8_t *data, size_t len) {
  struct tcp_pipe *p = (struct tcp_pipe *)base;
  if (p->shutting_down)
    return GOOP_ECLOSED;
  if (bufferevent_write(p->bev, data, len) != 0)
    return GOOP_ENOMEM;
  return 0;
}

static size_t tcp_out_pending(const goop__pipe *base) {
  const struct tcp_pipe *p = (const struct tcp_pipe *)base;
  return evbuffer_get_length(bufferevent_get_output(p->bev));
}

static void tcp_shutdown(goop__pipe *base) {
  struct tcp_pipe *p = (struct tcp_pipe *)base;
  if (p->shutting_down)
    return;
  p->shutting_down = true;
  bufferevent_disable(p->bev, EV_READ);
  bufferevent_setwatermark(p->bev, EV_WRITE, 0, 0);
  /* A peer that stops reading cannot keep the socket forever. */
  struct timeval tv = {5, 0};
  bufferevent_set_timeouts(p->bev, NULL, &tv);
}

static void tcp_free(goop__pipe *base) {
  struct tcp_pipe *p = (struct tcp_pipe *)base;
  if (!p)
    return;
  p->pool->pipe_gone = true;
  bufferevent_free(p->bev); /* releases referenced blocks (now or when libevent lets go) */
  pool_unref(p->pool);
  free(p);
}

static uint8_t *tcp_reserve(goop__pipe *base) {
  struct tcp_pipe *p = (struct tcp_pipe *)base;
  if (p->pool->nfree > 0)
    return p->pool->free[--p->pool->nfree];
  return malloc(GOOP_PIPE_BLOCK);
}

static int tcp_commit(goop__pipe *base, uint8_t *block, size_t len) {
  struct tcp_pipe *p = (struct tcp_pipe *)base;
  if (len == 0 || p->shutting_down) {
    p->pool->refs++;
    block_release(block, 0, p->pool);
    return p->shutting_down ? GOOP_ECLOSED : 0;
  }
  p->pool->refs++;
  if (evbuffer_add_reference(bufferevent_get_output(p->bev), block, len, block_release, p->pool) != 0) {
    block_release(block, 0, p->pool);
    return GOOP_ENOMEM;
  }
  return 0;
}

static int tcp_remote_addr(const goop__pipe *base, char *buf, size_t len) {
  const struct tcp_pipe *p = (const struct tcp_pipe *)base;
  size_t n = strlen(p->remote);
  if (n + 1 > len)
    return GOOP_EINVAL;
  memcpy(buf, p->remote, n + 1);
  return (int)n;
}

static const struct goop__pipe_ops tcp_ops = {
    .write = tcp_write,
    .out_pending = tcp_out_pending,
    .shutdown = tcp_shutdown,
    .free = tcp_free,
    .remote_addr = tcp_remote_addr,
    .reserve = tcp_reserve,
    .commit = tcp_commit,
};

int goop__tcp_pipe_new(struct bufferevent *bev, const struct sockaddr *remote, socklen_t remote_len,
                       goop__pipe **ret) {
  (void)remote_len;
  struct tcp_pipe *p = calloc(1, sizeof(*p));
  if (!p)
    return GOOP_ENOMEM;
  p->pool = calloc(1, sizeof(*p->pool));
  if (!p->pool) {
    free(p);
    return GOOP_ENOMEM;
  }
  p->pool->refs = 1;
  p->base.ops = &tcp_ops;
  p->bev = bev;
  if (remote)
    (void)goop__sockaddr_to_ma(remote, p->remote, sizeof(p->remote));
  evutil_socket_t fd = bufferevent_getfd(bev);
  if (fd >= 0) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  /* Write callback fires when output drops to the low-water mark. */
  bufferevent_setwatermark(bev, EV_WRITE, GOOP_PIPE_LOW_WATER, 0);
  /* Large reads and writes: a 16 KiB default would mean a system call per 16 KiB. */
  (void)bufferevent_set_max_single_read(bev, 1u << 20);
  (void)bufferevent_set_max_single_write(bev, 1u << 20);
  /* Bound what we read ahead of processing. */
  bufferevent_setwatermark(bev, EV_READ, 0, 4u << 20);
  bufferevent_setcb(bev, tcp_read_cb, tcp_write_cb, tcp_event_cb, p);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
  *ret = &p->base;
  return 0;
}

int goop__sockaddr_to_ma(const struct sockaddr *sa, char *buf, size_t len) {
  char ip[INET6_ADDRSTRLEN];
  int n;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
    n = snprintf(buf, len, "/ip4/%s/tcp/%u", ip, ntohs(s4->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, sizeof(ip));
      n = snprintf(buf, len, "/ip4/%s/tcp/%u", ip, ntohs(s6->sin6_port));
    } else {
      inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
      n = snprintf(buf, len, "/ip6/%s/tcp/%u", ip, ntohs(s6->sin6_port));
    }
  } else {
    return GOOP_EINVAL;
  }
  if (n < 0 || (size_t)n >= len)
    return GOOP_EINVAL;
  return n;
}

int goop__ma_to_sockaddr(const uint8_t *ma, size_t ma_len, struct sockaddr_storage *ret, socklen_t *ret_len,
                         goop_peer_id *ret_peer, bool *ret_has_peer) {
  size_t off = 0;
  goop_ma_component c;
  int idx = 0, rc;
  bool have_ip = false, have_tcp = false;
  memset(ret, 0, sizeof(*ret));
  if (ret_has_peer)
    *ret_has_peer = false;
  while ((rc = goop_ma_next(ma, ma_len, &off, &c)) == 1) {
    if (idx == 0 && c.code == GOOP_MA_IP4 && c.value_len == 4) {
      struct sockaddr_in *s4 = (struct sockaddr_in *)ret;
      s4->sin_family = AF_INET;
      memcpy(&s4->sin_addr, c.value, 4);
      *ret_len = sizeof(*s4);
      have_ip = true;
    } else if (idx == 0 && c.code == GOOP_MA_IP6 && c.value_len == 16) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ret;
      s6->sin6_family = AF_INET6;
      memcpy(&s6->sin6_addr, c.value, 16);
      *ret_len = sizeof(*s6);
      have_ip = true;
    } else if (idx == 1 && have_ip && c.code == GOOP_MA_TCP && c.value_len == 2) {
      uint16_t port = (uint16_t)(c.value[0] << 8 | c.value[1]);
      if (ret->ss_family == AF_INET)
        ((struct sockaddr_in *)ret)->sin_port = htons(port);
      else
        ((struct sockaddr_in6 *)ret)->sin6_port = htons(port);
      have_tcp = true;
    } else if (idx == 2 && have_tcp && c.code == GOOP_MA_P2P) {
      goop_peer_id pid;
      if (goop_peer_id_from_bytes(c.value, c.value_len, &pid) != 0)
        return GOOP_EPARSE;
      if (ret_peer)
        *ret_peer = pid;
      if (ret_has_peer)
        *ret_has_peer = true;
    } else {
      return GOOP_ENOTSUP;
    }
    idx++;
  }
  if (rc < 0)
    return rc;
  if (!have_ip || !have_tcp)
    return GOOP_ENOTSUP;
  return 0;
}
