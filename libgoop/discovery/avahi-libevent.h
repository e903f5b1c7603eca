/* An AvahiPoll implemented on a libevent event_base. Internal. */
#ifndef GOOP_AVAHI_LIBEVENT_H
#define GOOP_AVAHI_LIBEVENT_H

#include <avahi-common/watch.h>

struct event_base;
struct goop__avahi_poll;

/* NULL on allocation failure. */
struct goop__avahi_poll *goop__avahi_poll_new(struct event_base *base);
/* The vtable to pass to avahi_client_new() (valid until the poll is freed). */
const AvahiPoll *goop__avahi_poll_get(struct goop__avahi_poll *p);
/* Free every remaining watch and timeout. Not from inside one of their callbacks. */
void goop__avahi_poll_free(struct goop__avahi_poll *p);

#endif
