/* libgoop umbrella header. */
#ifndef GOOP_GOOP_H
#define GOOP_GOOP_H
#include <goop/common.h>
#include <goop/config.h>
#include <goop/discovery.h>
#include <goop/features.h>
#include <goop/identity.h>
#include <goop/presence.h>
#include <goop/pubsub.h>
#include <goop/relay.h>
#include <goop/site.h>
#include <goop/transport.h>
#include <goop/version.h>
#endif
