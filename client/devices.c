/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The subcommands about attached devices: list and detach. Both read the
 * daemon's ObjectManager; detach --all picks the caller's own devices;
 * list adds what sysfs shows of other tools' devices. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "device-show.h"
#include "format.h"
#include "json.h"
#include "nbd-sysfs.h"
#include "polkit-agent.h"

enum {
        OPT_JSON = 0x100,
        OPT_NO_ASK_PASSWORD,
};

/* Parses the options every subcommand has, plus detach's own (--all,
 * --force; NULL for the others). Returns -1 to go on, or an exit status. */
static int parse_simple(const char *verb, int argc, char **argv, bool *ret_help, bool *all, bool *force) {
        static const struct option options[] = {
                { "help",            no_argument, NULL, 'h' },
                { "json",            no_argument, NULL, OPT_JSON },
                { "no-ask-password", no_argument, NULL, OPT_NO_ASK_PASSWORD },
                { "all",             no_argument, NULL, 'a' },
                { "force",           no_argument, NULL, 'f' },
                {}
        };
        int c;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, all ? ":haf" : ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        *ret_help = true;
                        return EXIT_OK;
                case OPT_JSON:
                        arg_json = true;
                        break;
                case OPT_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        break;
                case 'a':
                        if (!all)
                                return usage_error(verb, "invalid option '%s'", argv[optind - 1]);
                        *all = true;
                        break;
                case 'f':
                        if (!force)
                                return usage_error(verb, "invalid option '%s'", argv[optind - 1]);
                        *force = true;
                        break;
                case '?':
                case ':':
                        return getopt_failure(verb, c, argv);
                default:
                        return usage_error(verb, "unexpected option");
                }
        return -1;
}

static void list_json(const DeviceInfo *d, size_t n) {
        JsonWriter w;

        json_init(&w, stdout, true);
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++)
                device_info_json(&w, d + i);
        json_end_array(&w);
        json_finish(&w);
}

static int list_table(const DeviceInfo *d, size_t n) {
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        r = table_new(&t, 8, (const char *const[]) {
                "DEVICE", "HOST", "EXPORT", "SIZE", "RO", "TLS", "STATE", "OWNER" });
        if (r < 0)
                return r;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *host = NULL, *owner = NULL;
                char size[FORMAT_SIZE_MAX];

                if (!d[i].managed) {
                        /* Attached by another tool: only the kernel's facts. */
                        if ((r = table_add(t, d[i].device)) < 0 ||
                            (r = table_add(t, "-")) < 0 ||
                            (r = table_add(t, "-")) < 0 ||
                            (r = table_add(t, format_size(size, d[i].size))) < 0 ||
                            (r = table_add(t, d[i].read_only ? "yes" : "no")) < 0 ||
                            (r = table_add(t, "-")) < 0 ||
                            (r = table_add(t, "other")) < 0 ||
                            (r = table_add(t, "-")) < 0)
                                return r;
                        continue;
                }

                if (d[i].host && *d[i].host && d[i].port > 0)
                        r = asprintf(&host, strchr(d[i].host, ':') ? "[%s]:%u" : "%s:%u", d[i].host,
                                     (unsigned) d[i].port);
                else
                        r = asprintf(&host, "%s", d[i].host && *d[i].host ? d[i].host : "-");
                if (r < 0)
                        return -ENOMEM;
                owner = d[i].has_owner ? uid_to_name(d[i].owner_uid) : NULL;

                if ((r = table_add(t, d[i].device)) < 0 ||
                    (r = table_add(t, host)) < 0 ||
                    (r = table_add(t, d[i].export_name && *d[i].export_name ? d[i].export_name : "\"\"")) < 0 ||
                    (r = table_add(t, format_size(size, d[i].size))) < 0 ||
                    (r = table_add(t, d[i].read_only ? "yes" : "no")) < 0 ||
                    (r = table_add(t, d[i].tls_mode ?: (d[i].tls ? "yes" : "none"))) < 0 ||
                    (r = table_add(t, d[i].state)) < 0 ||
                    (r = table_add(t, owner)) < 0)
                        return r;
        }

        return table_print(t, stdout);
}

int cmd_list(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        DeviceInfo *devs = NULL;
        bool show_help = false;
        size_t n = 0;
        int r;

        r = parse_simple("list", argc, argv, &show_help, NULL, NULL);
        if (show_help)
                printf("Usage: nbdlink list [OPTIONS]\n\n"
                       "List attached NBD devices, those of other tools (nbd-client...) as \"other\".\n\n"
                       "Options:\n" COMMON_OPTIONS_HELP);
        if (r >= 0)
                return r;
        if (optind < argc)
                return usage_error("list", "unexpected argument '%s'", argv[optind]);

        r = bus_open(&bus);
        if (r < 0)
                return log_errno(r, "connect to the system bus");

        r = devices_list(bus, &devs, &n, &error);
        if (r < 0) {
                r = log_bus_error(&error, r, "list devices");
                sd_bus_error_free(&error);
                return r;
        }
        /* Two sources, read one after the other: a device the daemon
         * attaches between its answer and this scan shows as another
         * tool's in this one listing. */
        r = devices_add_others(&devs, &n, nbd_sysfs_root());
        if (r < 0) {
                devices_free(devs, n);
                return log_errno(r, "read %s/block", nbd_sysfs_root());
        }

        if (arg_json)
                list_json(devs, n);
        else
                r = list_table(devs, n);
        devices_free(devs, n);
        if (r < 0)
                return log_errno(r, "format list");
        return EXIT_OK;
}

static int detach_one(sd_bus *bus, const char *device, bool force, bool ignore_gone) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        uint64_t timeout = (may_ask_password() ? 330 : 30) * UINT64_C(1000000);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        /* Plain Detach unless forced, so that a daemon from before
         * DetachWithOptions still serves the common case. */
        r = sd_bus_message_new_method_call(bus, &m, NBDLINK_BUS_NAME, NBDLINK_MANAGER_PATH, NBDLINK_MANAGER_INTERFACE,
                                           force ? "DetachWithOptions" : "Detach");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", device);
        if (r >= 0 && force)
                r = sd_bus_message_append(m, "a{sv}", 1, "force", "b", 1);
        if (r < 0)
                return log_errno(r, "build Detach call");

        r = sd_bus_call(bus, m, timeout, &error, NULL);
        if (r < 0) {
                /* With --all, a device that went away meanwhile is what we wanted. */
                if (ignore_gone && sd_bus_error_get_errno(&error) == ENXIO)
                        r = EXIT_OK;
                else
                        r = log_bus_error(&error, r, "detach %s", device);
                sd_bus_error_free(&error);
                return r;
        }
        return EXIT_OK;
}

/* Detaches the caller's own devices (all) or the ones named. */
static int detach_devices(sd_bus *bus, bool all, bool force, int argc, char **argv) {
        int ret = EXIT_OK, r;

        if (all) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                DeviceInfo *devs = NULL;
                size_t n = 0;
                uid_t uid = getuid();

                r = devices_list(bus, &devs, &n, &error);
                if (r < 0) {
                        r = log_bus_error(&error, r, "list devices");
                        sd_bus_error_free(&error);
                        return r;
                }
                for (size_t i = 0; i < n; i++)
                        if (devs[i].has_owner && devs[i].owner_uid == uid && devs[i].device &&
                            detach_one(bus, devs[i].device, force, true) != EXIT_OK)
                                ret = EXIT_FAILED;
                devices_free(devs, n);
                return ret;
        }

        /* Every device is tried; the status says whether any failed. */
        for (int i = optind; i < argc; i++)
                if (detach_one(bus, argv[i], force, false) != EXIT_OK)
                        ret = EXIT_FAILED;
        return ret;
}

int cmd_detach(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        bool show_help = false, all = false, force = false;
        pid_t agent;
        int r;

        r = parse_simple("detach", argc, argv, &show_help, &all, &force);
        if (show_help)
                printf("Usage: nbdlink detach [OPTIONS] DEVICE...\n"
                       "       nbdlink detach [OPTIONS] --all\n\n"
                       "Detach NBD devices: flush, disconnect from the server, free the device.\n\n"
                       "Options:\n"
                       "  -a --all             Detach every device this user attached\n"
                       "  -f --force           Detach even a device that is mounted or otherwise in use\n"
                       COMMON_OPTIONS_HELP);
        if (r >= 0)
                return r;

        if (all && optind < argc)
                return usage_error("detach", "--all takes no device names");
        if (!all && optind >= argc)
                return usage_error("detach", "missing DEVICE (or --all)");
        for (int i = optind; i < argc; i++)
                if (!*argv[i] || !device_name_valid(argv[i]))
                        return usage_error("detach", "'%s' is not an NBD device (/dev/nbdN or nbdN)", argv[i]);

        r = bus_open(&bus);
        if (r < 0)
                return log_errno(r, "connect to the system bus");

        polkit_agent_open(&agent);
        r = detach_devices(bus, all, force, argc, argv);
        polkit_agent_close(agent);
        return r;
}
