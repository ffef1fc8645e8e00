/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbdlink monitor: prints devices appearing, changing, disconnecting and
 * going away, and the daemon starting or stopping, until SIGINT, each
 * with the time it arrived. With --json, one JSON object per line per
 * event. Only the daemon's signals
 * are believed (name-watch.h), and its text is printed escaped (escape.h). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-event.h>

#include "commands.h"
#include "common.h"
#include "escape.h"
#include "format.h"
#include "json.h"
#include "name-watch.h"
#include "props.h"

#define DEVICES_PATH NBDLINK_MANAGER_PATH "/devices/"

/* "/org/nbdlink/NBD1/devices/nbd0" → "/dev/nbd0" (caller frees); NULL for
 * paths that are not devices. */
static char *path_to_device(const char *path) {
        char *s = NULL;

        if (strncmp(path, DEVICES_PATH, strlen(DEVICES_PATH)) != 0)
                return NULL;
        if (asprintf(&s, "/dev/%s", path + strlen(DEVICES_PATH)) < 0)
                return NULL;
        return s;
}

/* When the event reached us: the bus carries no time of sending. */
static uint64_t event_time(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* Every line, human or JSON, begins as one of these; now is its time. */
static void event_begin(JsonWriter *w, uint64_t now, const char *event, const char *path, const char *device) {
        if (arg_json) {
                json_init(w, stdout, false);
                json_begin_object(w);
                json_key(w, "event");
                json_string(w, event);
                json_key(w, "object");
                json_string(w, path);
                json_key(w, "device");
                json_string(w, device);
        } else {
                char ts[FORMAT_TIMESTAMP_MAX];

                fprintf_escaped(stdout, "%s %s %s", format_timestamp(ts, now), device_short_name(device), event);
        }
}

/* The JSON object's last key, so that its first ones stay where readers
 * matching a line's start expect them. */
static void event_end(JsonWriter *w, uint64_t now) {
        if (arg_json) {
                json_key(w, "timestamp");
                json_uint(w, now);
                json_end_object(w);
                json_finish(w);
        } else {
                fputc('\n', stdout);
                fflush(stdout);
        }
}

/* Human form: " Key=value Key=value". */
static void props_print(const Prop *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *v = prop_to_string(p + i);

                fprintf_escaped(stdout, " %s=%s", p[i].key, v ?: "?");
        }
}

static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        uint64_t now = event_time();
        _cleanup_free_ char *device = NULL;
        const char *path;
        JsonWriter w;
        int r;

        if (!name_watch_sent_by_owner(userdata, m))
                return 0;
        r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return 0;
        device = path_to_device(path);
        if (!device)
                return 0;

        r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
        if (r < 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sa{sv}") > 0) {
                const char *iface;
                Prop *p = NULL;
                size_t n = 0;

                if (sd_bus_message_read(m, "s", &iface) < 0)
                        return 0;
                if (strcmp(iface, NBDLINK_DEVICE_INTERFACE) != 0) {
                        if (sd_bus_message_skip(m, "a{sv}") < 0 || sd_bus_message_exit_container(m) < 0)
                                return 0;
                        continue;
                }
                if (props_read(m, &p, &n) < 0)
                        return 0;

                event_begin(&w, now, "added", path, device);
                if (arg_json) {
                        json_key(&w, "properties");
                        props_json_object(&w, p, n);
                } else
                        props_print(p, n);
                event_end(&w, now);
                props_free(p, n);
                (void) sd_bus_message_exit_container(m);
        }
        return 0;
}

static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        uint64_t now = event_time();
        _cleanup_free_ char *device = NULL;
        const char *path;
        JsonWriter w;

        if (!name_watch_sent_by_owner(userdata, m))
                return 0;
        if (sd_bus_message_read(m, "o", &path) < 0)
                return 0;
        device = path_to_device(path);
        if (!device)
                return 0;

        event_begin(&w, now, "removed", path, device);
        event_end(&w, now);
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        uint64_t now = event_time();
        _cleanup_free_ char *device = path_to_device(sd_bus_message_get_path(m));
        const char *iface;
        Prop *p = NULL;
        size_t n = 0;
        JsonWriter w;

        if (!device || !name_watch_sent_by_owner(userdata, m))
                return 0;
        if (sd_bus_message_read(m, "s", &iface) < 0 || strcmp(iface, NBDLINK_DEVICE_INTERFACE) != 0)
                return 0;
        if (props_read(m, &p, &n) < 0)
                return 0;

        event_begin(&w, now, "changed", sd_bus_message_get_path(m), device);
        if (arg_json) {
                json_key(&w, "properties");
                props_json_object(&w, p, n);
        } else
                props_print(p, n);
        event_end(&w, now);
        props_free(p, n);
        return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        uint64_t now = event_time();
        _cleanup_free_ char *device = path_to_device(sd_bus_message_get_path(m));
        const char *error, *message;
        JsonWriter w;

        if (!device || !name_watch_sent_by_owner(userdata, m))
                return 0;
        if (sd_bus_message_read(m, "ss", &error, &message) < 0)
                return 0;

        event_begin(&w, now, "disconnected", sd_bus_message_get_path(m), device);
        if (arg_json) {
                json_key(&w, "error");
                json_string(&w, error);
                json_key(&w, "message");
                json_string(&w, message);
        } else
                fprintf_escaped(stdout, ": %s (%s)", message, error);
        event_end(&w, now);
        return 0;
}

/* The daemon started (the name has a new owner) or stopped (none). */
static void on_daemon_changed(const char *owner, void *userdata) {
        const char *event = owner ? "daemon-started" : "daemon-stopped";
        uint64_t now = event_time();

        if (arg_json) {
                JsonWriter w;

                json_init(&w, stdout, false);
                json_begin_object(&w);
                json_key(&w, "event");
                json_string(&w, event);
                json_key(&w, "timestamp");
                json_uint(&w, now);
                json_end_object(&w);
                json_finish(&w);
        } else {
                char ts[FORMAT_TIMESTAMP_MAX];

                printf("%s nbdlinkd %s\n", format_timestamp(ts, now), owner ? "started" : "stopped");
                fflush(stdout);
        }
}

/* The rules keep other signals from being routed to us; they do not keep
 * anyone from sending us these (name-watch.h): every handler checks the
 * sender against owner, the NameWatch passed as userdata. */
static int add_matches(sd_bus *bus, NameWatch *owner) {
        static const struct {
                const char *rule;
                sd_bus_message_handler_t handler;
        } matches[] = {
                { "type='signal',sender='" NBDLINK_BUS_NAME "',path='" NBDLINK_MANAGER_PATH "',"
                  "interface='org.freedesktop.DBus.ObjectManager',member='InterfacesAdded'",
                  on_interfaces_added },
                { "type='signal',sender='" NBDLINK_BUS_NAME "',path='" NBDLINK_MANAGER_PATH "',"
                  "interface='org.freedesktop.DBus.ObjectManager',member='InterfacesRemoved'",
                  on_interfaces_removed },
                { "type='signal',sender='" NBDLINK_BUS_NAME "',path_namespace='" NBDLINK_MANAGER_PATH "',"
                  "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                  "arg0='" NBDLINK_DEVICE_INTERFACE "'",
                  on_properties_changed },
                { "type='signal',sender='" NBDLINK_BUS_NAME "',path_namespace='" NBDLINK_MANAGER_PATH "',"
                  "interface='" NBDLINK_DEVICE_INTERFACE "',member='Disconnected'",
                  on_disconnected },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(matches); i++) {
                /* Floating: the slots live as long as the connection. */
                r = sd_bus_add_match(bus, NULL, matches[i].rule, matches[i].handler, owner);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int cmd_monitor(int argc, char **argv) {
        static const struct option options[] = {
                { "help",            no_argument, NULL, 'h' },
                { "json",            no_argument, NULL, 0x100 },
                { "no-ask-password", no_argument, NULL, 0x101 },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(name_watch_freep) NameWatch *owner = NULL;
        sd_event *event = NULL;
        sigset_t mask;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("Usage: nbdlink monitor [OPTIONS]\n\n"
                               "Print device events until interrupted: added, changed, disconnected,\n"
                               "removed, and the daemon starting or stopping.\n\n"
                               "Options:\n" COMMON_OPTIONS_HELP);
                        return EXIT_OK;
                case 0x100:
                        arg_json = true;
                        break;
                case 0x101:
                        arg_ask_password = false;
                        break;
                case '?':
                case ':':
                        return getopt_failure("monitor", c, argv);
                default:
                        return usage_error("monitor", "unexpected option");
                }
        if (optind < argc)
                return usage_error("monitor", "unexpected argument '%s'", argv[optind]);

        /* sd-event reads these signals through a signalfd: block them first. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_errno(-errno, "block signals");

        r = bus_open(&bus);
        if (r < 0)
                return log_errno(r, "connect to the system bus");

        r = name_watch_new(&owner, bus, NBDLINK_BUS_NAME, on_daemon_changed, NULL);
        if (r < 0)
                return log_errno(r, "follow the owner of %s", NBDLINK_BUS_NAME);
        r = add_matches(bus, owner);
        if (r < 0)
                return log_errno(r, "subscribe to signals");

        r = sd_event_new(&event);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_signal, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, NULL);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        /* The loop ends when the bus goes away, too. */
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(bus, true);
        if (r < 0) {
                sd_event_unref(event);
                return log_errno(r, "set up event loop");
        }

        /* On stderr even with --json: it says the subscription is in place. */
        fprintf(stderr, "Monitoring nbdlink devices; press Ctrl-C to stop.\n");

        r = sd_event_loop(event);
        sd_bus_detach_event(bus);
        sd_event_unref(event);
        if (r < 0)
                return log_errno(r, "run event loop");
        return EXIT_OK;
}
