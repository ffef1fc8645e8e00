/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbdlink open URI: what clicking an nbd:// link should do. Attaches the
 * export the URI names (AttachURI), waits for udisks2 to see the device's
 * file systems, mounts each through udisks2 as the desktop would, and says
 * where; with --show, opens the first in the desktop's file manager.
 *
 * Passwords go through the session's polkit agent when there is no
 * terminal (a desktop's), through pkttyagent on one; the polkit rule
 * nbdlink ships lets the user who attached the device mount it without a
 * second one. A device none of whose file systems could be mounted is
 * detached again: an attached disk nobody can see is only in the way. */

#include <errno.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "escape.h"
#include "json.h"
#include "polkit-agent.h"
#include "udisks.h"

/* Attaching may wait for a server and a password. */
#define OPEN_ATTACH_TIMEOUT_USEC (5 * 60 * USEC_PER_SEC)
/* udisks2 hears of the device from udev, which the attach waited for;
 * it still takes a moment to make its objects. */
#define OPEN_UDISKS_TIMEOUT_USEC (30 * USEC_PER_SEC)

static void help(void) {
        printf("Usage: nbdlink open [OPTIONS] URI\n\n"
               "Attach the export an NBD URI names, mount its file systems through udisks2\n"
               "and print where they are mounted.\n\n"
               "URI: nbd://HOST[:PORT]/EXPORT, nbds://..., nbd+unix:///EXPORT?socket=PATH,\n"
               "     nbds+unix://...\n\n"
               "Options:\n"
               "     --show            Open the first mount point in the file manager\n"
               COMMON_OPTIONS_HELP);
}

typedef struct Mounted {
        const UdisksFilesystem *fs;
        char *path;                     /* NULL: could not be mounted */
        bool already;                   /* it was mounted before we came */
} Mounted;

static int attach_uri(sd_bus *bus, const char *uri, char **ret_device) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *object, *device;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, NBDLINK_BUS_NAME, NBDLINK_MANAGER_PATH,
                                           NBDLINK_MANAGER_INTERFACE, "AttachURI");
        if (r >= 0)
                r = sd_bus_message_append(m, "sa{sv}", uri, 0);
        if (r < 0)
                return log_errno(r, "build AttachURI call");

        r = sd_bus_call(bus, m, OPEN_ATTACH_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                r = log_bus_error(&error, r, "attach %s", uri);
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read(reply, "os", &object, &device);
        if (r < 0)
                return log_errno(r, "parse AttachURI reply");
        *ret_device = device_node(device);
        if (!*ret_device)
                return log_errno(-ENOMEM, "format device node");
        return EXIT_OK;
}

/* Undoes the attach when nothing could be shown. */
static void detach_again(sd_bus *bus, const char *device) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, NBDLINK_BUS_NAME, NBDLINK_MANAGER_PATH, NBDLINK_MANAGER_INTERFACE,
                               "Detach", &error, NULL, "s", device);
        if (r < 0)
                (void) log_bus_error(&error, r, "detach %s again", device);
        else {
                fprintf_escaped(stderr, "nbdlink: detached %s again", device);
                fputc('\n', stderr);
        }
        sd_bus_error_free(&error);
}

/* Opens path in the desktop's file manager; its exit status is its own
 * business. */
static void show(const char *path) {
        char *argv[] = { (char *) "xdg-open", (char *) path, NULL };
        pid_t pid;

        if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0) {
                fprintf_escaped(stderr, "nbdlink: cannot run xdg-open to show %s", path);
                fputc('\n', stderr);
                return;
        }
        (void) waitpid(pid, NULL, 0);
}

static void print_result(const char *device, const Mounted *m, size_t n) {
        if (arg_json) {
                JsonWriter w;

                json_init(&w, stdout, true);
                json_begin_object(&w);
                json_key(&w, "device");
                json_string(&w, device);
                json_key(&w, "filesystems");
                json_begin_array(&w);
                for (size_t i = 0; i < n; i++) {
                        json_begin_object(&w);
                        json_key(&w, "device");
                        json_string(&w, m[i].fs->device);
                        json_key(&w, "type");
                        json_string(&w, strempty(m[i].fs->type));
                        json_key(&w, "label");
                        json_string(&w, strempty(m[i].fs->label));
                        json_key(&w, "mount_point");
                        if (m[i].path)
                                json_string(&w, m[i].path);
                        else
                                json_null(&w);
                        json_end_object(&w);
                }
                json_end_array(&w);
                json_end_object(&w);
                json_finish(&w);
                return;
        }
        for (size_t i = 0; i < n; i++)
                if (m[i].path) {
                        fprintf_escaped(stdout, "%s %s %s", m[i].fs->device,
                                        m[i].already ? "was already mounted at" : "mounted at", m[i].path);
                        fputc('\n', stdout);
                }
}

int cmd_open(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "show", no_argument, NULL, 's' },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *device = NULL;
        UdisksFilesystem *fs = NULL;
        Mounted *mounted = NULL;
        size_t n = 0, n_mounted = 0;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        bool opt_show = false;
        const char *uri;
        pid_t agent;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 's':
                        opt_show = true;
                        break;
                default:
                        return getopt_failure("open", c, argv);
                }
        if (argc - optind != 1)
                return usage_error("open", "expected one URI");
        uri = argv[optind];
        /* The daemon parses it (common/nbd-uri.c); only say early what
         * is not a URI at all, such as a HOST:PORT meant for attach. */
        if (strncmp(uri, "nbd", 3) != 0 || !strstr(uri, "://"))
                return usage_error("open", "not an NBD URI: %s (nbd://HOST[:PORT]/EXPORT)", uri);

        r = bus_open(&bus);
        if (r < 0)
                return log_errno(r, "connect to the system bus");

        /* On a terminal, one agent for the attach and any mount the
         * rule does not grant. */
        polkit_agent_open(&agent);
        r = attach_uri(bus, uri, &device);
        if (r != EXIT_OK) {
                polkit_agent_close(agent);
                return r;
        }

        r = udisks_wait_filesystems(bus, device, OPEN_UDISKS_TIMEOUT_USEC, &fs, &n, &error);
        if (r < 0) {
                if (r == -ETIMEDOUT) {
                        fprintf_escaped(stderr, "nbdlink: udisks2 did not show %s within %llu s", device,
                                        (unsigned long long) (OPEN_UDISKS_TIMEOUT_USEC / USEC_PER_SEC));
                        fputc('\n', stderr);
                } else
                        (void) log_bus_error(&error, r, "ask udisks2 about %s", device);
                sd_bus_error_free(&error);
                polkit_agent_close(agent);
                detach_again(bus, device);
                return EXIT_FAILED;
        }
        if (n == 0) {
                fprintf_escaped(stderr, "nbdlink: %s holds no file system that udisks2 can mount", device);
                fputc('\n', stderr);
                polkit_agent_close(agent);
                detach_again(bus, device);
                return EXIT_FAILED;
        }

        mounted = calloc(n, sizeof(*mounted));
        if (!mounted) {
                polkit_agent_close(agent);
                udisks_filesystems_free(fs, n);
                return log_errno(-ENOMEM, "allocate");
        }
        for (size_t i = 0; i < n; i++) {
                mounted[i].fs = fs + i;
                if (fs[i].mount_point) {
                        mounted[i].path = strdup(fs[i].mount_point);
                        mounted[i].already = true;
                } else {
                        r = udisks_mount(bus, fs + i, &mounted[i].path, &error);
                        if (r < 0)
                                (void) log_bus_error(&error, r, "mount %s", fs[i].device);
                        sd_bus_error_free(&error);
                }
                if (mounted[i].path)
                        n_mounted++;
        }

        polkit_agent_close(agent);
        if (n_mounted == 0)
                detach_again(bus, device);
        else {
                print_result(device, mounted, n);
                if (opt_show)
                        for (size_t i = 0; i < n; i++)
                                if (mounted[i].path) {
                                        show(mounted[i].path);
                                        break;
                                }
        }

        for (size_t i = 0; i < n; i++)
                free(mounted[i].path);
        free(mounted);
        udisks_filesystems_free(fs, n);
        /* Some mounted and some not: the message said which. */
        return n_mounted == n ? EXIT_OK : EXIT_FAILED;
}
