/*
 * AvahiPoll on libevent. Watches and timeouts freed while one of our
 * callbacks runs (dispatching > 0) are only disabled and marked dead; they
 * are released once the outermost callback returns.
 */
#include "avahi-libevent.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/time.h>

struct goop__avahi_poll {
  AvahiPoll api;
  struct event_base *base;
  int dispatching;
  AvahiWatch *watches;
  AvahiTimeout *timeouts;
};

struct AvahiWatch {
  struct goop__avahi_poll *p;
  struct event *ev;
  int fd;
  AvahiWatchEvent events;
  AvahiWatchEvent revents;
  AvahiWatchCallback cb;
  void *ud;
  bool dead;
  AvahiWatch *next;
};

struct AvahiTimeout {
  struct goop__avahi_poll *p;
  struct event *ev;
  AvahiTimeoutCallback cb;
  void *ud;
  bool dead;
  AvahiTimeout *next;
};

static void sweep(struct goop__avahi_poll *p) {
  for (AvahiWatch **w = &p->watches; *w;) {
    if ((*w)->dead) {
      AvahiWatch *d = *w;
      *w = d->next;
      event_free(d->ev);
      free(d);
    } else {
      w = &(*w)->next;
    }
  }
  for (AvahiTimeout **t = &p->timeouts; *t;) {
    if ((*t)->dead) {
      AvahiTimeout *d = *t;
      *t = d->next;
      event_free(d->ev);
      free(d);
    } else {
      t = &(*t)->next;
    }
  }
}

static short to_libevent(AvahiWatchEvent e) {
  short f = 0;
  if (e & AVAHI_WATCH_IN)
    f |= EV_READ;
  if (e & AVAHI_WATCH_OUT)
    f |= EV_WRITE;
  return f;
}

static void watch_fire(evutil_socket_t fd, short what, void *arg) {
  AvahiWatch *w = arg;
  struct goop__avahi_poll *p = w->p;
  if (w->dead)
    return;
  AvahiWatchEvent e = 0;
  if (what & EV_READ)
    e |= AVAHI_WATCH_IN;
  if (what & EV_WRITE)
    e |= AVAHI_WATCH_OUT;
  w->revents = e;
  p->dispatching++;
  w->cb(w, (int)fd, e, w->ud);
  p->dispatching--;
  if (!w->dead)
    w->revents = 0;
  if (p->dispatching == 0)
    sweep(p);
}

static int watch_arm(AvahiWatch *w) {
  short f = to_libevent(w->events);
  event_del(w->ev);
  if (event_assign(w->ev, w->p->base, w->fd, (short)(f | EV_PERSIST), watch_fire, w) != 0)
    return -1;
  if (f && event_add(w->ev, NULL) != 0)
    return -1;
  return 0;
}

static AvahiWatch *watch_new(const AvahiPoll *api, int fd, AvahiWatchEvent event, AvahiWatchCallback cb,
                             void *ud) {
  struct goop__avahi_poll *p = api->userdata;
  AvahiWatch *w = calloc(1, sizeof(*w));
  if (!w)
    return NULL;
  w->p = p;
  w->fd = fd;
  w->events = event;
  w->cb = cb;
  w->ud = ud;
  w->ev = event_new(p->base, fd, EV_PERSIST, watch_fire, w);
  if (!w->ev || watch_arm(w) != 0) {
    if (w->ev)
      event_free(w->ev);
    free(w);
    return NULL;
  }
  w->next = p->watches;
  p->watches = w;
  return w;
}

static void watch_update(AvahiWatch *w, AvahiWatchEvent event) {
  if (w->dead)
    return;
  w->events = event;
  (void)watch_arm(w);
}

static AvahiWatchEvent watch_get_events(AvahiWatch *w) {
  return w->revents;
}

static void watch_free(AvahiWatch *w) {
  struct goop__avahi_poll *p = w->p;
  w->dead = true;
  event_del(w->ev);
  if (p->dispatching == 0)
    sweep(p);
}

static void timeout_fire(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  AvahiTimeout *t = arg;
  struct goop__avahi_poll *p = t->p;
  if (t->dead)
    return;
  p->dispatching++;
  t->cb(t, t->ud);
  p->dispatching--;
  if (p->dispatching == 0)
    sweep(p);
}

/* Arm |t| for the absolute wall-clock time |tv| (NULL = disarm). */
static void timeout_arm(AvahiTimeout *t, const struct timeval *tv) {
  event_del(t->ev);
  if (!tv)
    return;
  struct timeval now, rel = {0, 0};
  gettimeofday(&now, NULL);
  if (timercmp(tv, &now, >))
    timersub(tv, &now, &rel);
  (void)event_add(t->ev, &rel);
}

static AvahiTimeout *timeout_new(const AvahiPoll *api, const struct timeval *tv, AvahiTimeoutCallback cb,
                                 void *ud) {
  struct goop__avahi_poll *p = api->userdata;
  AvahiTimeout *t = calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->p = p;
  t->cb = cb;
  t->ud = ud;
  t->ev = evtimer_new(p->base, timeout_fire, t);
  if (!t->ev) {
    free(t);
    return NULL;
  }
  t->next = p->timeouts;
  p->timeouts = t;
  timeout_arm(t, tv);
  return t;
}

static void timeout_update(AvahiTimeout *t, const struct timeval *tv) {
  if (!t->dead)
    timeout_arm(t, tv);
}

static void timeout_free(AvahiTimeout *t) {
  struct goop__avahi_poll *p = t->p;
  t->dead = true;
  event_del(t->ev);
  if (p->dispatching == 0)
    sweep(p);
}

struct goop__avahi_poll *goop__avahi_poll_new(struct event_base *base) {
  if (!base)
    return NULL;
  struct goop__avahi_poll *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->base = base;
  p->api.userdata = p;
  p->api.watch_new = watch_new;
  p->api.watch_update = watch_update;
  p->api.watch_get_events = watch_get_events;
  p->api.watch_free = watch_free;
  p->api.timeout_new = timeout_new;
  p->api.timeout_update = timeout_update;
  p->api.timeout_free = timeout_free;
  return p;
}

const AvahiPoll *goop__avahi_poll_get(struct goop__avahi_poll *p) {
  return &p->api;
}

void goop__avahi_poll_free(struct goop__avahi_poll *p) {
  if (!p)
    return;
  for (AvahiWatch *w = p->watches; w; w = w->next)
    w->dead = true;
  for (AvahiTimeout *t = p->timeouts; t; t = t->next)
    t->dead = true;
  p->dispatching = 0;
  sweep(p);
  free(p);
}
