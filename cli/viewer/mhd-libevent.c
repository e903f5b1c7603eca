/*
 * libmicrohttpd on a libevent loop (see mhd-libevent.h).
 */
#include "mhd-libevent.h"

#include <stdlib.h>

struct mhd_ev {
  struct MHD_Daemon *d;
  struct event *rd;    /* persistent EV_READ on MHD's epoll fd */
  struct event *timer; /* MHD_get_timeout() deadline */
  struct event *kick;  /* one-shot "run now" */
};

static void rearm(struct mhd_ev *m) {
  MHD_UNSIGNED_LONG_LONG ms = 0;
  if (MHD_get_timeout(m->d, &ms) == MHD_YES) {
    struct timeval tv = {.tv_sec = (long)(ms / 1000), .tv_usec = (long)(ms % 1000) * 1000};
    evtimer_add(m->timer, &tv);
  } else {
    evtimer_del(m->timer);
  }
}

static unsigned num_conns(struct MHD_Daemon *d) {
  const union MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
  return i ? i->num_connections : 0;
}

static void run_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  struct mhd_ev *m = arg;
  unsigned before = num_conns(m->d);
  MHD_run(m->d);
  /* MHD takes its listening socket out of its epoll set at the connection
   * limit and puts it back at the start of the next run after connections
   * closed; without another event that run never comes, so run again. */
  if (num_conns(m->d) < before)
    mhd_ev_kick(m);
  rearm(m);
}

struct mhd_ev *mhd_ev_new(struct event_base *base, struct MHD_Daemon *d) {
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
  if (!info || info->epoll_fd < 0)
    return NULL;
  struct mhd_ev *m = calloc(1, sizeof(*m));
  if (!m)
    return NULL;
  m->d = d;
  m->rd = event_new(base, info->epoll_fd, EV_READ | EV_PERSIST, run_cb, m);
  m->timer = evtimer_new(base, run_cb, m);
  m->kick = evtimer_new(base, run_cb, m);
  if (!m->rd || !m->timer || !m->kick || event_add(m->rd, NULL) != 0) {
    mhd_ev_free(m);
    return NULL;
  }
  rearm(m);
  return m;
}

void mhd_ev_kick(struct mhd_ev *m) {
  if (m && !evtimer_pending(m->kick, NULL))
    event_active(m->kick, EV_TIMEOUT, 0);
}

void mhd_ev_free(struct mhd_ev *m) {
  if (!m)
    return;
  if (m->rd)
    event_free(m->rd);
  if (m->timer)
    event_free(m->timer);
  if (m->kick)
    event_free(m->kick);
  free(m);
}
