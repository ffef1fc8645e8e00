/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A test-only bus client for the polkit suite: becomes the given user, makes
 * one call on the system bus (DBUS_SYSTEM_BUS_ADDRESS) and prints "OK" or
 * "ERROR <name>: <message>"; or sends the call and leaves the bus while it is
 * pending, printing "LEFT"; or, with --agent, plays the user's polkit
 * authentication agent that never answers (see run_with_agent()).
 *
 *   polkit-test-client [--user NAME] [--interactive] [--leave-after-ms N | --agent] \
 *           authorize ACTION DEVICE HOST EXPORT     (the test service, callback)
 *   polkit-test-client ... authorize-registry ACTION DEVICE HOST EXPORT
 *                                                    (the same, re-dispatched)
 *   polkit-test-client ... attach DEVICE HOST EXPORT (nbdlinkd's Attach)
 *   polkit-test-client ... detach DEVICE             (nbdlinkd's Detach)
 *   polkit-test-client ... device-detach OBJECT      (Detach on a device object)
 *   polkit-test-client ... list HOST                 (nbdlinkd's ListExports)
 *   polkit-test-client ... probe HOST EXPORT         (nbdlinkd's Probe)
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "caller-identity.h"
#include "util/macro.h"

#define AGENT_PATH      "/org/nbdlink/PolkitTestAgent"
#define AGENT_INTERFACE "org.freedesktop.PolicyKit1.AuthenticationAgent"

typedef struct Agent {
        sd_event *event;
        sd_bus *caller;                 /* the connection that made the call */
        sd_bus_message *begin;          /* BeginAuthentication, never answered */
        sd_event_source *give_up;
} Agent;

static int on_begin_authentication(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Agent *a = userdata;
        const char *action, *message;
        int r;

        r = sd_bus_message_read(m, "ss", &action, &message);
        if (r < 0)
                return r;
        /* Keep the call and never answer it: a person who never types the
         * password. */
        sd_bus_message_unref(a->begin);
        a->begin = sd_bus_message_ref(m);
        printf("ASKED %s: %s\n", action, message);
        fflush(stdout);
        return 1;
}

static int on_cancel_authentication(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Agent *a = userdata;

        printf("WITHDRAWN\n");
        fflush(stdout);
        (void) sd_event_exit(a->event, 0);
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable agent_vtable[] = {
        SD_BUS_VTABLE_START(0),
        /* polkitd calls as its own user, not as ours. */
        SD_BUS_METHOD("BeginAuthentication", "sssa{ss}sa(sa{sv})", "", on_begin_authentication,
                      SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("CancelAuthentication", "s", "", on_cancel_authentication, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* The call was answered before the agent was asked, or instead of it. */
static int on_call_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Agent *a = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        if (e)
                printf("ERROR %s: %s\n", strna(e->name), strna(e->message));
        else
                printf("OK\n");
        fflush(stdout);
        (void) sd_event_exit(a->event, 0);
        return 0;
}

static int on_give_up(sd_event_source *s, uint64_t usec, void *userdata) {
        Agent *a = userdata;

        printf("NOT WITHDRAWN\n");
        fflush(stdout);
        return sd_event_exit(a->event, 0);
}

/* A line (or end of file) on stdin: leave the bus with the call pending, and
 * wait a while for polkit to withdraw the question from the agent. */
static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Agent *a = userdata;
        char buf[64];

        (void) read(fd, buf, sizeof(buf));
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        a->caller = sd_bus_flush_close_unref(a->caller);
        return sd_event_add_time_relative(a->event, &a->give_up, CLOCK_MONOTONIC, 5 * 1000 * 1000, 0,
                                          on_give_up, a);
}

/* Registers this process's own authentication agent on a second connection,
 * sends the call on the first one, prints "ASKED <action>: <message>" once
 * polkit asks the agent, leaves the bus with the call still pending when a
 * line arrives on stdin, and prints "WITHDRAWN" if polkit then cancels the
 * question (it does when the subject leaves, and when the service withdraws
 * its check), or "NOT WITHDRAWN" after five seconds. An answer to the call is
 * printed as usual. */
static int run_with_agent(sd_bus *caller, sd_bus_message *call) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *agent_bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Agent a = {};
        uint64_t start_time;
        int r;

        r = caller_process_start_time(&start_time);
        if (r >= 0)
                r = sd_event_default(&event);
        if (r >= 0)
                r = sd_bus_open_system(&agent_bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(agent_bus, NULL, AGENT_PATH, AGENT_INTERFACE, agent_vtable, &a);
        if (r >= 0)
                r = sd_bus_attach_event(agent_bus, event, 0);
        if (r >= 0)
                r = sd_bus_attach_event(caller, event, 0);
        if (r < 0) {
                fprintf(stderr, "polkit-test-client: failed to set up the agent: %s\n", strerror(-r));
                return 2;
        }
        a.event = event;
        a.caller = sd_bus_ref(caller);

        r = sd_bus_call_method(agent_bus, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                               "org.freedesktop.PolicyKit1.Authority", "RegisterAuthenticationAgent",
                               &error, NULL, "(sa{sv})ss",
                               "unix-process", 3,
                               "pid", "u", (uint32_t) getpid(),
                               "start-time", "t", start_time,
                               "uid", "i", (int32_t) getuid(),
                               "C", AGENT_PATH);
        if (r < 0) {
                fprintf(stderr, "polkit-test-client: failed to register the agent: %s\n",
                        error.message ?: strerror(-r));
                return 2;
        }

        r = sd_bus_call_async(caller, NULL, call, on_call_reply, &a, 30 * 1000 * 1000);
        if (r >= 0)
                r = sd_event_add_io(event, NULL, STDIN_FILENO, EPOLLIN, on_stdin, &a);
        if (r >= 0)
                r = sd_event_loop(event);
        if (r < 0) {
                fprintf(stderr, "polkit-test-client: %s\n", strerror(-r));
                return 2;
        }
        sd_bus_message_unref(a.begin);
        sd_event_source_unref(a.give_up);
        sd_bus_flush_close_unref(a.caller);
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *user = NULL;
        bool interactive = false, agent = false;
        long leave_after_ms = -1;
        int c, r;

        static const struct option options[] = {
                { "user",           required_argument, NULL, 'u' },
                { "interactive",    no_argument,       NULL, 'i' },
                { "leave-after-ms", required_argument, NULL, 'l' },
                { "agent",          no_argument,       NULL, 'a' },
                {}
        };
        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case 'u':
                        user = optarg;
                        break;
                case 'i':
                        interactive = true;
                        break;
                case 'l':
                        leave_after_ms = strtol(optarg, NULL, 10);
                        break;
                case 'a':
                        agent = true;
                        break;
                default:
                        return 2;
                }

        if (user && caller_become_user("polkit-test-client", user) < 0)
                return 2;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "polkit-test-client: failed to connect to the bus: %s\n", strerror(-r));
                return 2;
        }

        if (argc - optind == 5 && (strcmp(argv[optind], "authorize") == 0 ||
                                   strcmp(argv[optind], "authorize-registry") == 0)) {
                r = sd_bus_message_new_method_call(bus, &call, "org.nbdlink.PolkitTest1", "/org/nbdlink/PolkitTest1",
                                                   "org.nbdlink.PolkitTest1",
                                                   strcmp(argv[optind], "authorize") == 0 ? "Authorize" : "AuthorizeRegistry");
                if (r >= 0)
                        r = sd_bus_message_append(call, "ssss", argv[optind + 1], argv[optind + 2],
                                                  argv[optind + 3], argv[optind + 4]);
        } else if (argc - optind == 4 && strcmp(argv[optind], "attach") == 0) {
                r = sd_bus_message_new_method_call(bus, &call, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                   "org.nbdlink.NBD1.Manager", "Attach");
                if (r >= 0)
                        r = sd_bus_message_append(call, "sssb", argv[optind + 1], argv[optind + 2],
                                                  argv[optind + 3], 0);
        } else if (argc - optind == 2 && strcmp(argv[optind], "detach") == 0) {
                r = sd_bus_message_new_method_call(bus, &call, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                   "org.nbdlink.NBD1.Manager", "Detach");
                if (r >= 0)
                        r = sd_bus_message_append(call, "s", argv[optind + 1]);
        } else if (argc - optind == 2 && strcmp(argv[optind], "device-detach") == 0) {
                r = sd_bus_message_new_method_call(bus, &call, "org.nbdlink.NBD1", argv[optind + 1],
                                                   "org.nbdlink.NBD1.Device", "Detach");
        } else if (argc - optind == 3 && strcmp(argv[optind], "probe") == 0) {
                r = sd_bus_message_new_method_call(bus, &call, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                   "org.nbdlink.NBD1.Manager", "Probe");
                if (r >= 0)
                        r = sd_bus_message_append(call, "ssa{sv}", argv[optind + 1], argv[optind + 2], 0);
        } else if (argc - optind == 2 && strcmp(argv[optind], "list") == 0) {
                r = sd_bus_message_new_method_call(bus, &call, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                   "org.nbdlink.NBD1.Manager", "ListExports");
                if (r >= 0)
                        r = sd_bus_message_append(call, "sa{sv}", argv[optind + 1], 0);
        } else {
                fprintf(stderr, "polkit-test-client: bad arguments\n");
                return 2;
        }
        if (r >= 0)
                r = sd_bus_message_set_allow_interactive_authorization(call, interactive);
        if (r < 0) {
                fprintf(stderr, "polkit-test-client: failed to build the call: %s\n", strerror(-r));
                return 2;
        }

        if (agent)
                return run_with_agent(bus, call);

        if (leave_after_ms >= 0) {
                r = sd_bus_send(bus, call, NULL);
                if (r >= 0)
                        r = sd_bus_flush(bus);
                if (r < 0) {
                        fprintf(stderr, "polkit-test-client: failed to send: %s\n", strerror(-r));
                        return 2;
                }
                (void) usleep((useconds_t) leave_after_ms * 1000);
                printf("LEFT\n");
                return 0;
        }

        r = sd_bus_call(bus, call, 30 * 1000 * 1000, &error, &reply);
        if (r < 0)
                printf("ERROR %s: %s\n", strna(error.name), strna(error.message));
        else
                printf("OK\n");
        return 0;
}
