/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which connection owns a well-known bus name, kept up to date, so that a
 * signal is believed only from the daemon. A match rule's
 * sender='org.nbdlink.NBD1' is no such check: dbus-daemon resolves a
 * well-known sender only to route broadcasts, a signal sent straight to
 * our unique name reaches us whoever sent it, and sd-bus does not compare
 * it either. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "util/macro.h"

typedef struct NameWatch NameWatch;

/* Called after the bus announced a change of owner; owner is the new one,
 * NULL when the name has none now. */
typedef void (*name_watch_handler_t)(const char *owner, void *userdata);

/* Starts following name on bus: subscribes to NameOwnerChanged (believed
 * only from the bus itself), then asks GetNameOwner, in that order so that
 * no change falls between the two. handler may be NULL. Returns 0, or a
 * negative errno when either call failed; a name without an owner is no
 * failure. */
int name_watch_new(NameWatch **ret, sd_bus *bus, const char *name, name_watch_handler_t handler,
                   void *userdata);
NameWatch *name_watch_free(NameWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(NameWatch *, name_watch_free);

/* The unique name that owns the name now, or NULL. */
const char *name_watch_owner(const NameWatch *w);

/* Whether m was sent by the owner of the name; never while it has none. */
bool name_watch_sent_by_owner(const NameWatch *w, sd_bus_message *m);
