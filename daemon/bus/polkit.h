/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Asks polkit, asynchronously and over the daemon's own bus connection,
 * whether the sender of a method call may perform an action. Root is allowed
 * without asking; a caller that leaves the bus before the answer is never
 * authorized; anything that goes wrong on the way is a refusal. */
#pragma once

#include "bus-error.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#define POLKIT_ACTION_ATTACH       "org.nbdlink.NBD1.attach"
#define POLKIT_ACTION_DETACH       "org.nbdlink.NBD1.detach"
#define POLKIT_ACTION_DETACH_OTHER "org.nbdlink.NBD1.detach-other"
#define POLKIT_ACTION_LIST         "org.nbdlink.NBD1.list"

/* The outcomes, as negative errno values so that they travel like every other
 * failure until the one function that picks the bus error:
 *
 *   0                                  authorized: act now
 *   POLKIT_NOT_AUTHORIZED   (-EACCES)  polkit said no, or could not be asked
 *                                      (not running, answered an error or
 *                                      nonsense, timed out)
 *                                      → org.nbdlink.NBD1.Error.NotAuthorized
 *   POLKIT_INTERACTIVE_REQUIRED        polkit would ask for a password, but the
 *                                      call did not carry the
 *                                      ALLOW_INTERACTIVE_AUTHORIZATION flag
 *                                      → org.freedesktop.DBus.Error.InteractiveAuthorizationRequired
 *                                      (no errno means that: a failure code
 *                                      of bus-error.h)
 *   POLKIT_CANCELLED     (-ECANCELED)  the caller left the bus before the
 *                                      answer: do nothing, reply to no one */
#define POLKIT_NOT_AUTHORIZED       (-EACCES)
#define POLKIT_INTERACTIVE_REQUIRED NBDLINK_ERR_INTERACTIVE_REQUIRED
#define POLKIT_CANCELLED            (-ECANCELED)

#define POLKIT_UID_UNKNOWN ((uid_t) -1)

typedef struct PolkitQuery PolkitQuery;

/* Called once, on the thread that runs the bus (sd-event), with one of the
 * outcomes above and, for a refusal, a short text saying why (for the log;
 * NULL when there is nothing to add). The query has let go of the bus by
 * then and may be freed inside the callback. */
typedef void (*PolkitCallback)(PolkitQuery *q, int r, const char *reason, void *userdata);

/* Starts the authorization of the sender of `call` for `action`.
 *
 * `details` is NULL or a NULL-terminated list of key, value, key, value, ...
 * handed to polkit as the check's details: an authentication agent shows
 * them through the action's message ($(device), $(host), $(export)) and rules
 * read them with action.lookup(). Values must be valid UTF-8.
 *
 * Interaction (a password dialog) is asked for iff the call carries the
 * ALLOW_INTERACTIVE_AUTHORIZATION flag.
 *
 * `uid` is the sender's, from bus_sender_uid() (the caller has it already;
 * asking the bus again would cost another synchronous round trip).
 *
 * Returns:
 *   1   `uid` is 0: authorized at once, no query, no callback;
 *   0   a query is under way: *ret_query is set and `callback` will be
 *       called exactly once, unless polkit_query_free() comes first;
 *   <0  no query, no callback: POLKIT_NOT_AUTHORIZED when polkit cannot even
 *       be asked, -ENOMEM, or
 *       -EINVAL for a call without a sender.
 *
 * While the query is pending the caller's unique name is watched; when it
 * leaves the bus the query ends at once with POLKIT_CANCELLED (and an
 * interactive check is withdrawn from polkit). After polkit says yes, the
 * daemon asks the bus once more whether the caller is still connected before
 * reporting 0, so that no action is done for a caller that is gone by the
 * time the answer arrives (the class of bug of CVE-2021-3560). */
int polkit_authorize_async(
                sd_bus *bus,
                sd_bus_message *call,
                uid_t uid,
                const char *action,
                const char *const *details,
                PolkitCallback callback,
                void *userdata,
                PolkitQuery **ret_query);

/* Forgets a query. One still pending is abandoned: its callback is never
 * called, and an interactive check is withdrawn from polkit (which closes the
 * caller's password dialog). Accepts NULL; returns NULL. */
PolkitQuery *polkit_query_free(PolkitQuery *q);

static inline void polkit_query_freep(PolkitQuery **q) {
        polkit_query_free(*q);
}

/* The method call the query is about (borrowed). */
sd_bus_message *polkit_query_get_message(PolkitQuery *q);
/* The caller's uid as the bus reported it. */
uid_t polkit_query_get_uid(PolkitQuery *q);

/* The shape of systemd's bus_verify_polkit_async(), for method handlers that
 * run "parse → validate → authorize → act" and are simply run again once
 * polkit has answered. The registry remembers the queries in flight and the
 * answers not yet picked up, per method call; free it only after the bus is
 * gone or flushed, since freeing withdraws every pending check. */
typedef struct PolkitRegistry PolkitRegistry;

/* Checks pending at once are limited per uid and in all (LIMIT_POLKIT_* of
 * contract.h); more are refused with org.nbdlink.NBD1.Error.LimitExceeded,
 * so that one user's unanswered dialogs cannot keep everyone else's checks
 * from reaching polkitd. */

int polkit_registry_new(PolkitRegistry **ret);
PolkitRegistry *polkit_registry_free(PolkitRegistry *reg);

static inline void polkit_registry_freep(PolkitRegistry **reg) {
        polkit_registry_free(*reg);
}

/* Called by a method handler with its message and its sender's uid (from
 * bus_sender_uid()):
 *   1   authorized (root at once): go on and act;
 *   0   a check is under way: the handler returns 1 without replying; when
 *       polkit answers, the same message is put back on the bus's read queue
 *       (sd_bus_enqueue_for_read) and the handler runs again, reaching this
 *       call once more, which then gives the answer. If the caller leaves in
 *       between, the message is dropped and the handler never runs again;
 *   <0  refused: `error` is set (NotAuthorized, InteractiveAuthorizationRequired,
 *       LimitExceeded, or the errno's own error) and the handler returns
 *       the value.
 * An answer is tied to the action it was asked for: a second run that asks
 * for another action (Detach of a device whose owner changed meanwhile)
 * starts a new check. An answer nobody picks up (the handler's object went
 * away before it ran again) is dropped after a minute. */
int polkit_registry_check(
                PolkitRegistry *reg,
                sd_bus_message *call,
                uid_t uid,
                const char *action,
                const char *const *details,
                sd_bus_error *error);

/* Whether `call` has a check pending or an answer waiting: the handler is
 * running again for it. A handler that refuses early (a limit) must not do
 * so then, or the answer would hold the call until it goes stale: checks
 * made before asking polkit are for the first run only. */
bool polkit_registry_knows(PolkitRegistry *reg, sd_bus_message *call);

/* For r = POLKIT_NOT_AUTHORIZED or POLKIT_INTERACTIVE_REQUIRED: fills `error`
 * with the bus error the caller gets ("uid 1000 is not allowed to attach
 * network block devices (polkit action org.nbdlink.NBD1.attach): polkit said
 * no"), and returns r. `uid` may be POLKIT_UID_UNKNOWN and `reason` (the
 * callback's) NULL. For any other r returns 0 and leaves `error` alone, so
 * that the caller's own error mapping takes over. */
int polkit_set_bus_error(sd_bus_error *error, int r, const char *action, uid_t uid, const char *reason);

/* The caller's effective uid, as the bus itself vouches for it (never read
 * from /proc, where a recycled pid could name another process). The same
 * source everywhere: the uid that decides "root needs no polkit", the one
 * polkit is asked about and the one recorded as a device's OwnerUID must
 * never differ.
 *
 * The question goes to the bus driver synchronously. Asked over the
 * connection the call came on, sd-bus would read every call that arrives
 * meanwhile, each with its descriptors, into its queue: a flood of calls
 * would be held all at once. So `driver` is a connection of its own that
 * carries nothing else (NULL: the call's own connection, for tools). */
int bus_sender_uid(sd_bus *driver, sd_bus_message *m, uid_t *ret);
