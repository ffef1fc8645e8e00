/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbdlink status: whether a device is connected, and whether nbdlinkd
 * attached it and for whom. It only reads (the daemon's properties,
 * sysfs) and never asks for a password: "status --owner" is what a polkit
 * rule runs, from polkitd, without a terminal or much of an environment. */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "common.h"
#include "device-name.h"
#include "device-show.h"
#include "escape.h"
#include "format.h"
#include "json.h"
#include "nbd-sysfs.h"

enum {
        OPT_JSON = 0x100,
        OPT_NO_ASK_PASSWORD,
        OPT_OWNER,
};

static void help(void) {
        printf("Usage: nbdlink status [OPTIONS] DEVICE\n\n"
               "Show whether DEVICE (/dev/nbdN or nbdN; for a partition /dev/nbdNpM, its\n"
               "device) is connected, and who attached it to what.\n\n"
               "Options:\n"
               "     --owner           Print only the user who attached DEVICE through nbdlinkd\n"
               COMMON_OPTIONS_HELP
               "\nExit status: 0 connected, 1 failed, 2 usage error, 3 not connected\n"
               "(--owner: 3 when nbdlinkd has no attached DEVICE).\n");
}

/* The states in which the kernel device is set up and has its owner. */
static bool state_is_attached(const char *state) {
        return state && (strcmp(state, "attached") == 0 || strcmp(state, "reconnecting") == 0);
}

/* The daemon's device of that index, or NULL. */
static const DeviceInfo *find_device(const DeviceInfo *devs, size_t n, int index) {
        for (size_t i = 0; i < n; i++) {
                int k;

                if (device_name_parse(devs[i].device, &k) >= 0 && k == index)
                        return devs + i;
        }
        return NULL;
}

/* --owner: one line, the owner's name, or nothing on stdout. */
static int print_owner(const DeviceInfo *d, const char *node) {
        _cleanup_free_ char *name = NULL;

        if (!d || !state_is_attached(d->state) || !d->has_owner) {
                fprintf_escaped(stderr, "nbdlink: %s is not attached by nbdlinkd%s%s%s", node,
                                d ? " (state " : "", d ? strna(d->state) : "", d ? ")" : "");
                fputc('\n', stderr);
                return EXIT_NOT_CONNECTED;
        }
        /* Only a name the user database has: a number in its place could
         * equal the name of someone else (all-digit names exist in some
         * directories), and the line decides an authorization. */
        name = uid_to_user_name(d->owner_uid);
        if (!name) {
                fprintf_escaped(stderr, "nbdlink: the owner of %s, uid %" PRIu32 ", has no user name", node,
                                d->owner_uid);
                fputc('\n', stderr);
                return EXIT_NOT_CONNECTED;
        }
        /* A user name holds no controls (useradd refuses them), but this
         * line decides an authorization: print it as every name is. */
        fputs_escaped(name, stdout);
        fputc('\n', stdout);
        return EXIT_OK;
}

static void print_json(const DeviceInfo *d, const NbdSysfsDevice *sys, const char *node, const char *asked,
                       bool connected) {
        /* Another tool's device, or none: what the kernel says. */
        DeviceInfo other = {
                .device = (char *) node,
                .size = sys->size,
                .read_only = sys->read_only,
                .state = connected ? (char *) "other" : NULL,
        };
        JsonWriter w;

        json_init(&w, stdout, true);
        json_begin_object(&w);
        device_info_json_fields(&w, d ?: &other);
        json_key(&w, "connected");
        json_bool(&w, connected);
        json_key(&w, "exists");
        json_bool(&w, sys->exists || d);
        json_key(&w, "partition");
        if (asked)
                json_string(&w, asked);
        else
                json_null(&w);
        json_key(&w, "pid");
        if (sys->pid > 0)
                json_uint(&w, (uint64_t) sys->pid);
        else
                json_null(&w);
        json_end_object(&w);
        json_finish(&w);
}

/* One line on stdout, escaped as a whole (escape.h); the newline after. */
_printf_(1, 2) static void line(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vfprintf_escaped(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
}

static void print_human(const DeviceInfo *d, const NbdSysfsDevice *sys, const char *node, const char *asked,
                        bool connected) {
        char size[FORMAT_SIZE_MAX];

        if (asked)
                line("%s: the device of partition %s", node, asked);
        line("Device:     %s", node);
        line("Connected:  %s",
                        connected ? "yes" : sys->exists || d ? "no" : "no (no such device; is the nbd module loaded?)");
        if (!d) {
                if (connected) {
                        line("Managed:    no, attached by another tool, not nbdlinkd");
                        if (sys->pid > 0)
                                line("PID:        %d", (int) sys->pid);
                        line("Size:       %s (%" PRIu64 " bytes)",
                                        format_size(size, sys->size), sys->size);
                        line("Read-only:  %s", sys->read_only ? "yes" : "no");
                }
                return;
        }

        _cleanup_free_ char *owner = d->has_owner ? uid_to_name(d->owner_uid) : NULL;
        _cleanup_free_ char *uri = device_info_uri(d);

        line("Managed:    yes, by nbdlinkd (%s)", strna(d->object));
        line("State:      %s", strna(d->state));
        if (d->has_owner)
                line("Owner:      %s (uid %" PRIu32 ")", strna(owner), d->owner_uid);
        line("Export:     %s", d->export_name && *d->export_name ? d->export_name : "\"\"");
        if (uri)
                line("URI:        %s", uri);
        else
                line("Server:     %s", d->host && *d->host ? d->host : "a socket its caller passed");
        line("Size:       %s (%" PRIu64 " bytes)", format_size(size, d->size), d->size);
        line("Read-only:  %s", d->read_only ? "yes" : "no");
        line("TLS:        %s", d->tls_mode ?: (d->tls ? "yes" : "none"));
}

int cmd_status(int argc, char **argv) {
        static const struct option options[] = {
                { "help",            no_argument, NULL, 'h' },
                { "json",            no_argument, NULL, OPT_JSON },
                { "no-ask-password", no_argument, NULL, OPT_NO_ASK_PASSWORD },
                { "owner",           no_argument, NULL, OPT_OWNER },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *node = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        NbdSysfsDevice sys = {};
        DeviceInfo *devs = NULL;
        const DeviceInfo *d;
        const char *asked = NULL;
        bool owner = false, connected;
        size_t n = 0;
        int c, r, index, partition;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case OPT_JSON:
                        arg_json = true;
                        break;
                case OPT_NO_ASK_PASSWORD:
                        /* Accepted like everywhere; status never asks. */
                        break;
                case OPT_OWNER:
                        owner = true;
                        break;
                case '?':
                case ':':
                        return getopt_failure("status", c, argv);
                default:
                        return usage_error("status", "unexpected option");
                }
        if (optind >= argc)
                return usage_error("status", "missing DEVICE");
        if (argc - optind > 1)
                return usage_error("status", "unexpected argument '%s'", argv[optind + 1]);
        if (owner && arg_json)
                return usage_error("status", "--owner prints one line, not JSON");
        r = device_arg_parse(argv[optind], &index, &partition);
        if (r == -ENOMEM)
                return log_errno(r, "parse device");
        if (r < 0)
                return usage_error("status", "'%s' is not an NBD device (/dev/nbdN, nbdN, or a partition /dev/nbdNpM)",
                                   argv[optind]);
        if (partition > 0)
                asked = argv[optind];
        if (asprintf(&node, "/dev/nbd%d", index) < 0)
                return log_errno(-ENOMEM, "format device name");

        /* Reading properties needs no authorization: never offer to ask. */
        arg_ask_password = false;
        r = bus_open(&bus);
        if (r < 0)
                return log_errno(r, "connect to the system bus");
        r = devices_list(bus, &devs, &n, &error);
        if (r < 0) {
                r = log_bus_error(&error, r, "list devices");
                sd_bus_error_free(&error);
                return r;
        }
        d = find_device(devs, n, index);

        if (owner) {
                r = print_owner(d, node);
                devices_free(devs, n);
                return r;
        }

        r = nbd_sysfs_read(nbd_sysfs_root(), index, &sys);
        if (r < 0) {
                devices_free(devs, n);
                return log_errno(r, "read %s/block/nbd%d", nbd_sysfs_root(), index);
        }
        /* The daemon's word for its own devices (it set them up); the
         * kernel's for the others. */
        connected = d ? state_is_attached(d->state) || (d->state && strcmp(d->state, "detaching") == 0)
                      : sys.connected;

        if (arg_json)
                print_json(d, &sys, node, asked, connected);
        else
                print_human(d, &sys, node, asked, connected);
        devices_free(devs, n);
        return connected ? EXIT_OK : EXIT_NOT_CONNECTED;
}
