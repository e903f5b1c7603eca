/*
 * Drive a libmicrohttpd daemon from a libevent loop: MHD runs with
 * MHD_USE_EPOLL and no internal thread; its epoll descriptor is a persistent
 * EV_READ event that calls MHD_run(), and a timer re-armed from
 * MHD_get_timeout() after every run handles MHD's own deadlines.
 */
#ifndef GOOP_CLI_MHD_LIBEVENT_H
#define GOOP_CLI_MHD_LIBEVENT_H

#include <event2/event.h>
#include <microhttpd.h>

struct mhd_ev;

/* Attach |d| (started with MHD_USE_EPOLL, without MHD_USE_INTERNAL_POLLING_THREAD)
 * to |base|. Returns NULL on failure. The daemon stays owned by the caller. */
struct mhd_ev *mhd_ev_new(struct event_base *base, struct MHD_Daemon *d);

/* Run MHD soon from the loop (after a resume or a queued response from outside MHD callbacks). */
void mhd_ev_kick(struct mhd_ev *m);

/* Detach (does not stop the daemon). NULL is a no-op. */
void mhd_ev_free(struct mhd_ev *m);

#endif
