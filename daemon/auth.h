/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may do what. One function decides, with the shape of an asynchronous
 * polkit check: it may answer later, by re-dispatching the message. */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#define ACTION_ATTACH       "org.nbdlink.NBD1.attach"
#define ACTION_DETACH       "org.nbdlink.NBD1.detach"
#define ACTION_DETACH_OTHER "org.nbdlink.NBD1.detach-other"
#define ACTION_LIST         "org.nbdlink.NBD1.list"

/* The caller's uid, from the bus's view of the sender. */
int bus_sender_uid(sd_bus_message *m, uid_t *ret);

/* 1: allowed, go on. 0: the answer is pending and the message will be
 * dispatched again when it comes (the handler returns 1 and waits).
 * Negative: refused, with error set (NotAuthorized). Root is allowed
 * without asking; anyone else is refused until polkit is consulted. */
int auth_check(sd_bus_message *m, const char *action, sd_bus_error *error);
/* The same for a caller whose uid bus_sender_uid() gave already: each
 * query of the sender is a round trip to the bus. */
int auth_check_uid(sd_bus_message *m, uid_t uid, const char *action, sd_bus_error *error);
