/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Asynchronous polkit checks for nbdlinkd: one CheckAuthorization per query
 * on the daemon's own bus connection, a watch on the caller's unique name
 * while it is pending, and a last "still there?" question to the bus before
 * a yes is reported. Runs on the bus thread only. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bus-error.h"
#include "contract.h"
#include "polkit.h"
#include "utf8.h"
#include "util/macro.h"
#include "util/time-util.h"

#define POLKIT_SERVICE   "org.freedesktop.PolicyKit1"
#define POLKIT_PATH      "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"

/* CheckAuthorization flag: polkit may ask the caller's agent for a password. */
#define POLKIT_CHECK_ALLOW_USER_INTERACTION 1u

/* A person typing a password needs longer than the bus's default 25 s; five
 * minutes bounds a query whose polkitd hangs. Non-interactive checks keep the
 * bus default (0). */
#define POLKIT_INTERACTIVE_TIMEOUT_USEC (5 * 60 * USEC_PER_SEC)

struct PolkitQuery {
        sd_bus *bus;
        sd_bus_message *call;
        const char *sender;             /* points into call */
        uid_t uid;                      /* the caller's, as the bus reports it */
        char cancellation_id[64];
        bool interactive;
        bool done;

        sd_bus_slot *watch_slot;        /* NameOwnerChanged of the caller */
        sd_bus_slot *check_slot;        /* CheckAuthorization in flight */
        sd_bus_slot *owner_slot;        /* GetNameOwner after a yes */

        PolkitCallback callback;
        void *userdata;
};

static void query_release(PolkitQuery *q) {
        /* An interactive check may have put a password dialog in front of
         * the user: withdraw it rather than leave it to time out. Nothing
         * waits for the answer. */
        if (q->check_slot && q->interactive)
                (void) sd_bus_call_method_async(q->bus, NULL, POLKIT_SERVICE, POLKIT_PATH, POLKIT_INTERFACE,
                                                "CancelCheckAuthorization", NULL, NULL,
                                                "s", q->cancellation_id);

        q->watch_slot = sd_bus_slot_unref(q->watch_slot);
        q->check_slot = sd_bus_slot_unref(q->check_slot);
        q->owner_slot = sd_bus_slot_unref(q->owner_slot);
}

/* Ends the query: lets go of the bus first, then calls back. Nothing touches
 * q after the callback, which may free it. */
static void query_finish(PolkitQuery *q, int r, const char *reason) {
        if (q->done)
                return;
        q->done = true;
        query_release(q);
        q->callback(q, r, reason, q->userdata);
}

static void query_finish_errorf(PolkitQuery *q, int r, const char *fmt, ...) _printf_(3, 4);
static void query_finish_errorf(PolkitQuery *q, int r, const char *fmt, ...) {
        char reason[256];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        query_finish(q, r, reason);
}

static int on_caller_gone(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (strcmp(name, q->sender) != 0 || new_owner[0] != '\0')
                return 0;

        query_finish(q, POLKIT_CANCELLED, "the caller left the bus");
        return 0;
}

static int on_watch_installed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        /* Without the watch a departed caller could still be authorized:
         * refuse rather than hope. */
        if (e)
                query_finish_errorf(q, POLKIT_NOT_AUTHORIZED,
                                    "cannot watch the caller on the bus: %s", strna(e->message));
        return 0;
}

static int on_owner_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const sd_bus_error *e;
        const char *owner;

        q->owner_slot = sd_bus_slot_unref(q->owner_slot);

        e = sd_bus_message_get_error(m);
        if (e) {
                if (sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.NameHasNoOwner"))
                        query_finish(q, POLKIT_CANCELLED, "the caller left the bus");
                else
                        query_finish_errorf(q, POLKIT_NOT_AUTHORIZED,
                                            "cannot check that the caller is still on the bus: %s",
                                            strna(e->message));
                return 0;
        }

        if (sd_bus_message_read(m, "s", &owner) < 0 || strcmp(owner, q->sender) != 0) {
                query_finish(q, POLKIT_CANCELLED, "the caller left the bus");
                return 0;
        }

        query_finish(q, 0, NULL);
        return 0;
}

static int on_check_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const sd_bus_error *e;
        int authorized, challenge, r;

        q->check_slot = sd_bus_slot_unref(q->check_slot);

        /* polkitd not running (ServiceUnknown), timed out (NoReply), or
         * refusing the question ("action not registered", subject gone):
         * never a yes. */
        e = sd_bus_message_get_error(m);
        if (e) {
                if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        query_finish(q, POLKIT_NOT_AUTHORIZED, "polkit is not running");
                else
                        query_finish_errorf(q, POLKIT_NOT_AUTHORIZED, "polkit failed: %s", strna(e->message));
                return 0;
        }

        r = sd_bus_message_enter_container(m, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(m, "bb", &authorized, &challenge);
        if (r < 0) {
                query_finish_errorf(q, POLKIT_NOT_AUTHORIZED,
                                    "polkit sent a malformed reply: %s", strerror(-r));
                return 0;
        }

        if (!authorized) {
                if (challenge && !q->interactive)
                        query_finish(q, POLKIT_INTERACTIVE_REQUIRED, "polkit would ask for authentication");
                else if (challenge)
                        /* Interaction was allowed and it is still a
                         * challenge: polkit found no agent to ask (a caller
                         * without a terminal, outside a desktop session).
                         * A refusal, but one that says what was missing. */
                        query_finish(q, POLKIT_NOT_AUTHORIZED,
                                     "polkit would ask for authentication, but no authentication agent is registered for the caller");
                else
                        query_finish(q, POLKIT_NOT_AUTHORIZED, "polkit said no");
                return 0;
        }

        /* polkit decided about the uid the name had when it asked. The bus
         * handles our messages in order, so a GetNameOwner sent now is
         * answered after any disconnect that happened before it: the last
         * cheap point at which a departed caller can still be turned away. */
        r = sd_bus_call_method_async(q->bus, &q->owner_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetNameOwner", on_owner_reply, q,
                                     "s", q->sender);
        if (r < 0)
                query_finish_errorf(q, POLKIT_NOT_AUTHORIZED,
                                    "cannot check that the caller is still on the bus: %s", strerror(-r));
        return 0;
}

static int append_details(sd_bus_message *m, const char *const *details) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{ss}");
        if (r < 0)
                return r;
        for (const char *const *d = details; d && d[0]; d += 2) {
                _cleanup_free_ char *escaped = NULL;

                if (!d[1])
                        return -EINVAL;
                /* An agent puts these into the message of its password
                 * dialog: an export name with a newline or a bidi
                 * override must not make the dialog say something else. */
                escaped = utf8_escape(d[1]);
                if (!escaped)
                        return -ENOMEM;
                r = sd_bus_message_append(m, "{ss}", d[0], escaped);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

int bus_sender_uid(sd_bus *driver, sd_bus_message *m, uid_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender = sd_bus_message_get_sender(m);
        int r;

        if (driver && sender)
                r = sd_bus_get_name_creds(driver, sender, SD_BUS_CREDS_EUID, &creds);
        else
                r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        /* Only what the bus vouches for counts: an augmented (from /proc)
         * uid could belong to a process that reused the caller's pid. */
        if (sd_bus_creds_get_augmented_mask(creds) & SD_BUS_CREDS_EUID)
                return -EPERM;
        return sd_bus_creds_get_euid(creds, ret);
}

int polkit_authorize_async(
                sd_bus *bus,
                sd_bus_message *call,
                uid_t uid,
                const char *action,
                const char *const *details,
                PolkitCallback callback,
                void *userdata,
                PolkitQuery **ret_query) {

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *check = NULL;
        _cleanup_(polkit_query_freep) PolkitQuery *q = NULL;
        char match[256];
        const char *sender;
        int r;

        if (!bus || !call || !action || !callback || !ret_query)
                return -EINVAL;

        /* Only a unique name can be both the polkit subject and the thing we
         * watch; a message without one did not come through a bus. */
        sender = sd_bus_message_get_sender(call);
        if (!sender || sender[0] != ':')
                return -EINVAL;

        if (uid == 0) {
                *ret_query = NULL;
                return 1;
        }

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->bus = sd_bus_ref(bus);
        q->call = sd_bus_message_ref(call);
        q->sender = sender;
        q->uid = uid;
        q->interactive = sd_bus_message_get_allow_interactive_authorization(call) > 0;
        q->callback = callback;
        q->userdata = userdata;
        /* polkit refuses an id that one of our checks it still knows uses;
         * the address alone could come back for a new query right after an
         * old one was withdrawn, the time with it cannot. */
        (void) snprintf(q->cancellation_id, sizeof(q->cancellation_id), "nbdlink-%" PRIxPTR "-%" PRIu64,
                        (uintptr_t) q, (uint64_t) now_usec(CLOCK_MONOTONIC));

        /* The watch goes out before the check: the bus handles our messages
         * in order, so either the caller is gone before polkit looks at it
         * (and polkit fails to resolve the name), or we hear that it left. */
        r = snprintf(match, sizeof(match),
                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'", sender);
        if (r < 0 || (size_t) r >= sizeof(match))
                return -EINVAL;
        r = sd_bus_add_match_async(bus, &q->watch_slot, match, on_caller_gone, on_watch_installed, q);
        if (r < 0)
                return r == -ENOMEM ? r : POLKIT_NOT_AUTHORIZED;

        r = sd_bus_message_new_method_call(bus, &check, POLKIT_SERVICE, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(check, "(sa{sv})s",
                                          "system-bus-name", 1, "name", "s", sender,
                                          action);
        if (r >= 0)
                r = append_details(check, details);
        if (r >= 0)
                r = sd_bus_message_append(check, "us",
                                          q->interactive ? POLKIT_CHECK_ALLOW_USER_INTERACTION : 0u,
                                          q->cancellation_id);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;

        r = sd_bus_call_async(bus, &q->check_slot, check, on_check_reply, q,
                              q->interactive ? POLKIT_INTERACTIVE_TIMEOUT_USEC : 0);
        if (r < 0)
                return r == -ENOMEM ? r : POLKIT_NOT_AUTHORIZED;

        *ret_query = TAKE_PTR(q);
        return 0;
}

PolkitQuery *polkit_query_free(PolkitQuery *q) {
        if (!q)
                return NULL;
        if (!q->done)
                query_release(q);
        sd_bus_message_unref(q->call);
        sd_bus_unref(q->bus);
        free(q);
        return NULL;
}

sd_bus_message *polkit_query_get_message(PolkitQuery *q) {
        return q ? q->call : NULL;
}

uid_t polkit_query_get_uid(PolkitQuery *q) {
        return q ? q->uid : POLKIT_UID_UNKNOWN;
}

/* Words for the error message; an unknown action is named as it is. */
static const char *action_to_words(const char *action) {
        if (!action)
                return "do this";
        if (strcmp(action, POLKIT_ACTION_ATTACH) == 0)
                return "attach network block devices";
        if (strcmp(action, POLKIT_ACTION_DETACH) == 0)
                return "detach this network block device";
        if (strcmp(action, POLKIT_ACTION_DETACH_OTHER) == 0)
                return "detach a network block device that another user attached";
        if (strcmp(action, POLKIT_ACTION_LIST) == 0)
                return "list or probe NBD exports";
        return action;
}

int polkit_set_bus_error(sd_bus_error *error, int r, const char *action, uid_t uid, const char *reason) {
        char who[32] = "the caller";

        if (uid != POLKIT_UID_UNKNOWN)
                (void) snprintf(who, sizeof(who), "uid %u", (unsigned) uid);

        switch (r) {
        case POLKIT_NOT_AUTHORIZED:
                return nbdlink_bus_error_setf(error, r, "%s is not allowed to %s (polkit action %s)%s%s",
                                              who, action_to_words(action), strna(action),
                                              reason ? ": " : "", strempty(reason));
        case POLKIT_INTERACTIVE_REQUIRED:
                return nbdlink_bus_error_setf(error, r, "%s must authenticate to %s (polkit action %s); "
                                              "call again allowing interactive authorization",
                                              who, action_to_words(action), strna(action));
        default:
                return 0;
        }
}

/* ---- re-dispatching registry ------------------------------------------ */

typedef struct RegistryEntry RegistryEntry;
struct RegistryEntry {
        PolkitRegistry *registry;
        RegistryEntry *next;
        sd_bus_message *call;
        char *action;
        PolkitQuery *query;     /* NULL once answered */
        usec_t answered;        /* CLOCK_MONOTONIC */
        int result;
        uid_t uid;
        char *reason;
};

struct PolkitRegistry {
        RegistryEntry *entries;
};

static RegistryEntry *registry_entry_free(RegistryEntry *e) {
        if (!e)
                return NULL;
        polkit_query_free(e->query);
        sd_bus_message_unref(e->call);
        free(e->action);
        free(e->reason);
        free(e);
        return NULL;
}

static void registry_remove(PolkitRegistry *reg, RegistryEntry *e) {
        for (RegistryEntry **p = &reg->entries; *p; p = &(*p)->next)
                if (*p == e) {
                        *p = e->next;
                        break;
                }
        registry_entry_free(e);
}

static RegistryEntry *registry_find(PolkitRegistry *reg, sd_bus_message *call) {
        for (RegistryEntry *e = reg->entries; e; e = e->next)
                if (e->call == call)
                        return e;
        return NULL;
}

bool polkit_registry_knows(PolkitRegistry *reg, sd_bus_message *call) {
        return reg && call && registry_find(reg, call);
}

/* An answer is picked up when the handler runs again, right after it came.
 * One that is still here a minute later belongs to a handler that will not
 * run again (its object went away meanwhile): let the call go. */
#define REGISTRY_STALE_USEC (60 * USEC_PER_SEC)

static void registry_purge_stale(PolkitRegistry *reg) {
        usec_t now = now_usec(CLOCK_MONOTONIC);

        for (RegistryEntry *e = reg->entries, *next; e; e = next) {
                next = e->next;
                if (!e->query && now - e->answered > REGISTRY_STALE_USEC)
                        registry_remove(reg, e);
        }
}

/* Checks still waiting for polkit: of `uid`, and of everyone. */
static void registry_count_pending(PolkitRegistry *reg, uid_t uid, unsigned *ret_uid, unsigned *ret_total) {
        unsigned n_uid = 0, n_total = 0;

        for (RegistryEntry *e = reg->entries; e; e = e->next)
                if (e->query) {
                        n_total++;
                        if (e->uid == uid)
                                n_uid++;
                }
        *ret_uid = n_uid;
        *ret_total = n_total;
}

int polkit_registry_new(PolkitRegistry **ret) {
        PolkitRegistry *reg;

        if (!ret)
                return -EINVAL;
        reg = calloc(1, sizeof(*reg));
        if (!reg)
                return -ENOMEM;
        *ret = reg;
        return 0;
}

PolkitRegistry *polkit_registry_free(PolkitRegistry *reg) {
        if (!reg)
                return NULL;
        while (reg->entries)
                registry_remove(reg, reg->entries);
        free(reg);
        return NULL;
}

static void on_registry_answer(PolkitQuery *q, int r, const char *reason, void *userdata) {
        RegistryEntry *e = userdata;
        sd_bus_message *call = e->call;
        int k;

        e->uid = polkit_query_get_uid(q);
        e->query = polkit_query_free(q);

        /* Nobody to answer and nothing to do: the handler never runs again,
         * so the action cannot happen for a caller that left. */
        if (r == POLKIT_CANCELLED) {
                registry_remove(e->registry, e);
                return;
        }

        e->result = r;
        e->answered = now_usec(CLOCK_MONOTONIC);
        if (reason) {
                e->reason = strdup(reason);
                if (!e->reason)
                        e->result = r = -ENOMEM;
        }
        k = sd_bus_enqueue_for_read(sd_bus_message_get_bus(call), call);
        if (k < 0) {
                /* The handler cannot run again: answer here, and never with
                 * a success. */
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                (void) polkit_set_bus_error(&error, POLKIT_NOT_AUTHORIZED, e->action, e->uid, "cannot answer");
                (void) sd_bus_reply_method_error(call, &error);
                registry_remove(e->registry, e);
        }
}

int polkit_registry_check(
                PolkitRegistry *reg,
                sd_bus_message *call,
                uid_t uid,
                const char *action,
                const char *const *details,
                sd_bus_error *error) {

        RegistryEntry *e;
        int r, k;

        if (!reg || !call || !action)
                return -EINVAL;
        if (uid == 0)
                return 1;

        registry_purge_stale(reg);
        e = registry_find(reg, call);
        if (e && strcmp(e->action, action) != 0) {
                registry_remove(reg, e);
                e = NULL;
        }
        if (e) {
                if (e->query)
                        return 0;       /* dispatched again before the answer: keep waiting */
                r = e->result;
                if (r == 0) {
                        registry_remove(reg, e);
                        return 1;
                }
                k = polkit_set_bus_error(error, r, action, e->uid, e->reason);
                registry_remove(reg, e);
                return k < 0 ? k : nbdlink_bus_error_set(error, r, NULL);
        }

        /* Every pending check is a pending call to polkitd on the daemon's
         * one connection, where the bus allows only so many: one user's
         * unanswered password dialogs must not use them up for everyone. */
        if (uid != 0) {
                unsigned n_uid, n_total;

                registry_count_pending(reg, uid, &n_uid, &n_total);
                if (n_uid >= LIMIT_POLKIT_PER_UID)
                        return nbdlink_bus_error_setf(error, NBDLINK_ERR_LIMIT_EXCEEDED,
                                                      "uid %u already has %u authorizations waiting for polkit (at most %u)",
                                                      (unsigned) uid, n_uid, LIMIT_POLKIT_PER_UID);
                if (n_total >= LIMIT_POLKIT_TOTAL)
                        return nbdlink_bus_error_setf(error, NBDLINK_ERR_LIMIT_EXCEEDED,
                                                      "%u authorizations are waiting for polkit, the most nbdlinkd allows",
                                                      n_total);
        }

        e = calloc(1, sizeof(*e));
        if (!e)
                return nbdlink_bus_error_set(error, -ENOMEM, NULL);
        e->registry = reg;
        e->uid = uid;
        e->call = sd_bus_message_ref(call);
        e->action = strdup(action);
        if (!e->action) {
                registry_entry_free(e);
                return nbdlink_bus_error_set(error, -ENOMEM, NULL);
        }

        r = polkit_authorize_async(sd_bus_message_get_bus(call), call, uid, action, details,
                                   on_registry_answer, e, &e->query);
        if (r != 0) {
                /* Not 1: root was answered above. */
                registry_entry_free(e);
                if (r == POLKIT_NOT_AUTHORIZED)
                        return polkit_set_bus_error(error, r, action, uid, "cannot ask polkit");
                return nbdlink_bus_error_set(error, r, NULL);
        }

        e->next = reg->entries;
        reg->entries = e;
        return 0;
}
