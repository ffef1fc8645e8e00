/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A test-only bus service that exercises daemon/bus/polkit.c the way nbdlinkd
 * does: Authorize() asks polkit for its caller and counts what happened, so
 * that the polkit suite can tell "performed" from "refused" and "cancelled".
 * Prints "ready" on stdout once it owns its name. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "polkit.h"
#include "util/macro.h"

#define SERVICE_NAME      "org.nbdlink.PolkitTest1"
#define SERVICE_PATH      "/org/nbdlink/PolkitTest1"
#define SERVICE_INTERFACE "org.nbdlink.PolkitTest1"

#define MAX_PENDING 64

typedef struct Service {
        sd_bus *bus;
        PolkitRegistry *registry;
        uint32_t performed, refused, cancelled;
        PolkitQuery *pending[MAX_PENDING];
        char *actions[MAX_PENDING];
} Service;

static void service_forget(Service *s, PolkitQuery *q) {
        for (size_t i = 0; i < MAX_PENDING; i++)
                if (s->pending[i] == q) {
                        s->pending[i] = polkit_query_free(q);
                        free(s->actions[i]);
                        s->actions[i] = NULL;
                }
}

static const char *service_action(Service *s, PolkitQuery *q) {
        for (size_t i = 0; i < MAX_PENDING; i++)
                if (s->pending[i] == q)
                        return s->actions[i];
        return NULL;
}

/* The "action": here only a counter, which the suite reads back. */
static int perform(Service *s, sd_bus_message *call) {
        s->performed++;
        return sd_bus_reply_method_return(call, NULL);
}

static void on_authorized(PolkitQuery *q, int r, const char *reason, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Service *s = userdata;
        sd_bus_message *call = polkit_query_get_message(q);

        if (r == 0)
                (void) perform(s, call);
        else if (r == POLKIT_CANCELLED) {
                /* The caller is gone: nobody to answer. */
                s->cancelled++;
                fprintf(stderr, "polkit-test-service: cancelled: %s\n", strna(reason));
        } else {
                s->refused++;
                fprintf(stderr, "polkit-test-service: refused: %s\n", strna(reason));
                if (polkit_set_bus_error(&error, r, service_action(s, q), polkit_query_get_uid(q), reason) == 0)
                        sd_bus_error_set_errno(&error, r);
                (void) sd_bus_reply_method_error(call, &error);
        }
        service_forget(s, q);
}

static int method_authorize(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Service *s = userdata;
        const char *action, *device, *host, *export;
        PolkitQuery *q = NULL;
        size_t slot;
        int r;

        r = sd_bus_message_read(m, "ssss", &action, &device, &host, &export);
        if (r < 0)
                return r;

        for (slot = 0; slot < MAX_PENDING; slot++)
                if (!s->pending[slot])
                        break;
        if (slot == MAX_PENDING)
                return sd_bus_error_set(error, SD_BUS_ERROR_LIMITS_EXCEEDED, "Too many pending checks.");

        const char *details[] = { "device", device, "host", host, "export", export, NULL };
        uid_t uid;
        r = bus_sender_uid(NULL, m, &uid);
        if (r == -ENOMEM)
                return r;
        if (r >= 0)
                r = polkit_authorize_async(sd_bus_message_get_bus(m), m, uid, action, details, on_authorized, s, &q);
        else
                r = POLKIT_NOT_AUTHORIZED;      /* who is calling cannot be known */
        if (r < 0) {
                s->refused++;
                if (polkit_set_bus_error(error, r, action, POLKIT_UID_UNKNOWN, NULL) < 0)
                        return r;
                return sd_bus_error_set_errno(error, r);
        }
        if (r > 0)
                return perform(s, m);

        s->actions[slot] = strdup(action);
        if (!s->actions[slot]) {
                polkit_query_free(q);
                return -ENOMEM;
        }
        s->pending[slot] = q;
        return 1;
}

/* The shape nbdlinkd's handlers have: parse, authorize through the registry,
 * act; run again from the start when polkit has answered. */
static int method_authorize_registry(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Service *s = userdata;
        const char *action, *device, *host, *export;
        int r;

        r = sd_bus_message_read(m, "ssss", &action, &device, &host, &export);
        if (r < 0)
                return r;

        const char *details[] = { "device", device, "host", host, "export", export, NULL };
        uid_t uid;
        r = bus_sender_uid(NULL, m, &uid);
        if (r < 0)
                return sd_bus_error_set_errno(error, r);
        r = polkit_registry_check(s->registry, m, uid, action, details, error);
        if (r < 0) {
                s->refused++;
                fprintf(stderr, "polkit-test-service: registry refused: %s\n", strna(error->name));
                return r;
        }
        if (r == 0)
                return 1;
        return perform(s, m);
}

static int method_stats(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Service *s = userdata;
        uint32_t pending = 0;

        for (size_t i = 0; i < MAX_PENDING; i++)
                pending += !!s->pending[i];
        return sd_bus_reply_method_return(m, "uuuu", s->performed, s->refused, s->cancelled, pending);
}

static const sd_bus_vtable service_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Authorize",
                                SD_BUS_ARGS("s", action, "s", device, "s", host, "s", export),
                                SD_BUS_NO_RESULT,
                                method_authorize, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AuthorizeRegistry",
                                SD_BUS_ARGS("s", action, "s", device, "s", host, "s", export),
                                SD_BUS_NO_RESULT,
                                method_authorize_registry, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Stats",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("u", performed, "u", refused, "u", cancelled, "u", pending),
                                method_stats, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

int main(void) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(polkit_registry_freep) PolkitRegistry *registry = NULL;
        Service s = {};
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = polkit_registry_new(&registry);
        if (r >= 0)
                r = sd_event_default(&event);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r >= 0)
                r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, SERVICE_PATH, SERVICE_INTERFACE, service_vtable, &s);
        if (r >= 0)
                r = sd_bus_request_name(bus, SERVICE_NAME, 0);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(bus, true);
        if (r < 0) {
                fprintf(stderr, "polkit-test-service: failed to set up: %s\n", strerror(-r));
                return 1;
        }
        s.bus = bus;
        s.registry = registry;

        printf("ready\n");
        fflush(stdout);

        r = sd_event_loop(event);
        for (size_t i = 0; i < MAX_PENDING; i++)
                service_forget(&s, s.pending[i]);
        return r < 0 ? 1 : 0;
}
