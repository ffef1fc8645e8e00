/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tells when a caller (a unique bus name) leaves the bus, without ever
 * waiting on the bus. sd_bus_track asks the bus driver synchronously
 * whether a name it adds still exists, and while sd-bus waits for that
 * answer it reads every call that arrives into its queue, descriptors and
 * all: a flood of calls would be held in full. Main thread only. */
#pragma once

#include <systemd/sd-bus.h>

#include "util/macro.h"

typedef struct CallerWatch CallerWatch;

/* Called once, when `name` has left the bus (or was gone already). The
 * watch may be freed inside. */
typedef void (*CallerGoneCallback)(void *userdata);

/* Watches `name` on `bus`: a match on its NameOwnerChanged, then (once the
 * match is in place, so that no departure falls between the two) a
 * GetNameOwner, both asynchronous. A watch that cannot be set up, or
 * whose match the bus refuses, counts as the caller gone. */
int caller_watch_new(sd_bus *bus, const char *name, CallerGoneCallback callback, void *userdata,
                     CallerWatch **ret);
/* Stops watching; the callback is not called any more. Accepts NULL. */
CallerWatch *caller_watch_free(CallerWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(CallerWatch *, caller_watch_free);
