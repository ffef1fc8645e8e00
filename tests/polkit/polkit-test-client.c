/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A test-only bus client for the polkit suite: becomes the given user, makes
 * one call on the system bus (DBUS_SYSTEM_BUS_ADDRESS) and prints "OK" or
 * "ERROR <name>: <message>"; or sends the call and leaves the bus while it is
 * pending, printing "LEFT".
 *
 *   polkit-test-client [--user NAME] [--interactive] [--leave-after-ms N] \
 *           authorize ACTION DEVICE HOST EXPORT     (the test service, callback)
 *   polkit-test-client ... authorize-registry ACTION DEVICE HOST EXPORT
 *                                                    (the same, re-dispatched)
 *   polkit-test-client ... attach DEVICE HOST EXPORT (nbdlinkd's Attach)
 *   polkit-test-client ... list HOST                 (nbdlinkd's ListExports)
 */
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

#include "util/macro.h"

static int become_user(const char *name) {
        struct passwd *pw = getpwnam(name);

        if (!pw) {
                fprintf(stderr, "polkit-test-client: no user %s\n", name);
                return -ESRCH;
        }
        /* Groups first: once the uid is dropped there is no way back to
         * change them. */
        if (setgroups(0, NULL) < 0 ||
            setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
            setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
                fprintf(stderr, "polkit-test-client: failed to become %s: %m\n", name);
                return negative_errno();
        }
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *user = NULL;
        bool interactive = false;
        long leave_after_ms = -1;
        int c, r;

        static const struct option options[] = {
                { "user",           required_argument, NULL, 'u' },
                { "interactive",    no_argument,       NULL, 'i' },
                { "leave-after-ms", required_argument, NULL, 'l' },
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
                default:
                        return 2;
                }

        if (user && become_user(user) < 0)
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
