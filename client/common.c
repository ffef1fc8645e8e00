/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared helpers of the nbdlink subcommands. Errors are printed here and
 * only here, so the format stays the same everywhere. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bus-errors.h"
#include "common.h"
#include "device-name.h"
#include "escape.h"
#include "nbd-sysfs.h"

bool arg_json = false;
bool arg_ask_password = true;

int usage_error(const char *verb, const char *fmt, ...) {
        va_list ap;

        fputs("nbdlink: ", stderr);
        va_start(ap, fmt);
        /* It quotes the command line back, which may hold anything. */
        vfprintf_escaped(stderr, fmt, ap);
        va_end(ap);
        if (verb)
                fprintf(stderr, "\nTry 'nbdlink %s --help' for more information.\n", verb);
        else
                fputs("\nTry 'nbdlink --help' for more information.\n", stderr);
        return EXIT_USAGE;
}

int getopt_failure(const char *verb, int c, char **argv) {
        const char *arg = optind > 0 ? argv[optind - 1] : "";

        if (c == ':') {
                if (strncmp(arg, "--", 2) == 0)
                        return usage_error(verb, "option '%s' needs an argument", arg);
                return usage_error(verb, "option '-%c' needs an argument", optopt);
        }
        if (strncmp(arg, "--", 2) == 0)
                return usage_error(verb, "invalid option '%s'", arg);
        return usage_error(verb, "invalid option '-%c'", optopt);
}

static const char *errno_name(int e) {
        const char *n = strerrorname_np(e);
        return n ?: "unknown errno";
}

/* "nbdlink: <what>: <detail> (<name>)" and a newline on stderr, escaped as
 * a whole: what may quote a path or an argument, detail and name may be a
 * daemon's or a server's text. */
_printf_(3, 0) static void log_failure(const char *detail, const char *name, const char *fmt, va_list ap) {
        fputs("nbdlink: ", stderr);
        vfprintf_escaped(stderr, fmt, ap);
        fprintf_escaped(stderr, ": %s (%s)", detail, name);
        fputc('\n', stderr);
}

int log_errno(int r, const char *fmt, ...) {
        va_list ap;
        int e = r < 0 ? -r : r;

        va_start(ap, fmt);
        log_failure(strerror(e), errno_name(e), fmt, ap);
        va_end(ap);
        return EXIT_FAILED;
}

int log_bus_error(const sd_bus_error *e, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (!sd_bus_error_is_set(e)) {
                /* Local failure of sd-bus itself (no reply): format an errno. */
                int k = r < 0 ? -r : r;

                log_failure(strerror(k), errno_name(k), fmt, ap);
        } else
                log_failure(e->message && *e->message ? e->message : strerror(sd_bus_error_get_errno(e)),
                            e->name, fmt, ap);
        va_end(ap);

        if (sd_bus_error_has_name(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED))
                fputs(arg_ask_password
                      ? "nbdlink: run it from a terminal to authenticate, or as a user the policy allows\n"
                      : "nbdlink: drop --no-ask-password to authenticate\n",
                      stderr);
        else if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                 sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                fputs("nbdlink: is nbdlinkd installed? (systemctl status nbdlinkd)\n", stderr);
        return EXIT_FAILED;
}

bool may_ask_password(void) {
        /* Without a terminal, the session's own agent (a desktop's) may
         * still ask: only --no-ask-password says no. */
        return arg_ask_password;
}

int bus_open(sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        r = client_error_map_register();
        if (r < 0)
                return r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;

        r = sd_bus_set_allow_interactive_authorization(bus, may_ask_password());
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }

        *ret = bus;
        return 0;
}

int parse_uint32(const char *s, uint32_t min, uint32_t max, uint32_t *ret) {
        uint64_t v = 0;

        if (!*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t) (*p - '0');
                if (v > UINT32_MAX)
                        return -ERANGE;
        }
        if (v < min || v > max)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

bool device_name_valid(const char *s) {
        int index;

        return device_name_parse(s, &index) >= 0;
}

int device_arg_parse(const char *s, int *ret_index, int *ret_partition) {
        _cleanup_free_ char *disk = NULL;
        const char *name, *p;
        int index, part = 0;

        if (!s || !*s)
                return -EINVAL;
        name = strncmp(s, "/dev/", 5) == 0 ? s + 5 : s;
        /* "nbd" never holds a 'p': the first one after it starts the
         * partition number. */
        p = strncmp(name, "nbd", 3) == 0 ? strchr(name + 3, 'p') : NULL;
        if (p) {
                size_t len = strlen(p + 1);

                if (len < 1 || len > 4 || p[1] == '0')
                        return -EINVAL;
                for (size_t i = 1; i <= len; i++) {
                        if (p[i] < '0' || p[i] > '9')
                                return -EINVAL;
                        part = part * 10 + (p[i] - '0');
                }
                disk = strndup(s, (size_t) (p - s));
                if (!disk)
                        return -ENOMEM;
        }
        if (device_name_parse(disk ?: s, &index) < 0 || index < 0)
                return -EINVAL;
        *ret_index = index;
        *ret_partition = part;
        return 0;
}

const char *device_short_name(const char *device) {
        if (device && strncmp(device, "/dev/", 5) == 0)
                return device + 5;
        return strempty(device);
}

char *device_node(const char *device) {
        char *s;

        if (asprintf(&s, "/dev/%s", device_short_name(device)) < 0)
                return NULL;
        return s;
}

void device_info_done(DeviceInfo *d) {
        free(d->object);
        free(d->device);
        free(d->host);
        free(d->export_name);
        free(d->tls_mode);
        free(d->state);
        *d = (DeviceInfo) {};
}

void devices_free(DeviceInfo *d, size_t n) {
        for (size_t i = 0; i < n; i++)
                device_info_done(d + i);
        free(d);
}

int bus_read_dict(sd_bus_message *m, int (*entry)(sd_bus_message *m, const char *key, void *userdata),
                  void *userdata) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(m, "s", &key);
                if (r >= 0)
                        r = entry(m, key, userdata);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int bus_read_string_variant(sd_bus_message *m, char **field) {
        const char *s;
        char *c;
        int r;

        r = sd_bus_message_read(m, "v", "s", &s);
        if (r < 0)
                return r;
        c = strdup(s);
        if (!c)
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

static int device_property(sd_bus_message *m, const char *key, void *userdata) {
        DeviceInfo *d = userdata;
        int b, r;

        if (strcmp(key, "Device") == 0)
                return bus_read_string_variant(m, &d->device);
        if (strcmp(key, "Host") == 0)
                return bus_read_string_variant(m, &d->host);
        if (strcmp(key, "Export") == 0)
                return bus_read_string_variant(m, &d->export_name);
        if (strcmp(key, "TLSMode") == 0)
                return bus_read_string_variant(m, &d->tls_mode);
        if (strcmp(key, "State") == 0)
                return bus_read_string_variant(m, &d->state);
        if (strcmp(key, "Port") == 0)
                return sd_bus_message_read(m, "v", "q", &d->port);
        if (strcmp(key, "Flags") == 0)
                return sd_bus_message_read(m, "v", "q", &d->flags);
        if (strcmp(key, "Size") == 0)
                return sd_bus_message_read(m, "v", "t", &d->size);
        if (strcmp(key, "AttachedSince") == 0)
                return sd_bus_message_read(m, "v", "t", &d->attached_since);
        if (strcmp(key, "BlockSize") == 0)
                return sd_bus_message_read(m, "v", "u", &d->block_size);
        if (strcmp(key, "Connections") == 0)
                return sd_bus_message_read(m, "v", "u", &d->connections);
        if (strcmp(key, "OwnerUID") == 0) {
                r = sd_bus_message_read(m, "v", "u", &d->owner_uid);
                d->has_owner = r >= 0;
                return r;
        }
        if (strcmp(key, "TLS") == 0) {
                r = sd_bus_message_read(m, "v", "b", &b);
                d->tls = b;
                return r;
        }
        if (strcmp(key, "ReadOnly") == 0) {
                r = sd_bus_message_read(m, "v", "b", &b);
                d->read_only = b;
                return r;
        }
        if (strcmp(key, "Persistent") == 0) {
                r = sd_bus_message_read(m, "v", "b", &b);
                d->persistent = b;
                return r;
        }
        return sd_bus_message_skip(m, "v");
}

int device_info_read_properties(sd_bus_message *m, DeviceInfo *d) {
        return bus_read_dict(m, device_property, d);
}

static int device_cmp(const void *a, const void *b) {
        const DeviceInfo *x = a, *y = b;
        const char *p = device_short_name(x->device), *q = device_short_name(y->device);
        size_t lp = strlen(p), lq = strlen(q);

        /* nbd2 before nbd10 */
        if (lp != lq)
                return lp < lq ? -1 : 1;
        return strcmp(p, q);
}

int devices_list(sd_bus *bus, DeviceInfo **ret, size_t *ret_n, sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        DeviceInfo *devs = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_call_method(bus, NBDLINK_BUS_NAME, NBDLINK_MANAGER_PATH,
                               "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                               e, &reply, "");
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        if (r < 0)
                goto fail;

        while ((r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                const char *path;
                DeviceInfo d = {};
                bool is_device = false;

                r = sd_bus_message_read(reply, "o", &path);
                if (r < 0)
                        goto fail;

                r = sd_bus_message_enter_container(reply, 'a', "{sa{sv}}");
                if (r < 0)
                        goto fail;
                while ((r = sd_bus_message_enter_container(reply, 'e', "sa{sv}")) > 0) {
                        const char *iface;

                        r = sd_bus_message_read(reply, "s", &iface);
                        if (r >= 0) {
                                if (strcmp(iface, NBDLINK_DEVICE_INTERFACE) == 0) {
                                        is_device = true;
                                        r = device_info_read_properties(reply, &d);
                                } else
                                        r = sd_bus_message_skip(reply, "a{sv}");
                        }
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        if (r < 0) {
                                device_info_done(&d);
                                goto fail;
                        }
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0) {
                        device_info_done(&d);
                        goto fail;
                }

                if (!is_device) {
                        device_info_done(&d);
                        continue;
                }

                d.managed = true;
                d.object = strdup(path);
                DeviceInfo *p = reallocarray(devs, n + 1, sizeof(DeviceInfo));
                if (!d.object || !p) {
                        if (p)
                                devs = p;
                        device_info_done(&d);
                        r = -ENOMEM;
                        goto fail;
                }
                devs = p;
                devs[n++] = d;
        }
        if (r < 0)
                goto fail;

        if (n > 1)
                qsort(devs, n, sizeof(DeviceInfo), device_cmp);
        *ret = devs;
        *ret_n = n;
        return 0;

fail:
        devices_free(devs, n);
        return r;
}

int devices_add_others(DeviceInfo **devs, size_t *n, const char *root) {
        _cleanup_free_ NbdSysfsDevice *sys = NULL;
        size_t n_sys = 0;
        int r;

        r = nbd_sysfs_list_connected(root, &sys, &n_sys);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n_sys; i++) {
                DeviceInfo *p;
                bool known = false;

                for (size_t j = 0; j < *n && !known; j++) {
                        int index;

                        known = (*devs)[j].managed && device_name_parse((*devs)[j].device, &index) >= 0 &&
                                index == sys[i].index;
                }
                if (known)
                        continue;

                p = reallocarray(*devs, *n + 1, sizeof(DeviceInfo));
                if (!p)
                        return -ENOMEM;
                *devs = p;
                p[*n] = (DeviceInfo) {
                        .size = sys[i].size,
                        .read_only = sys[i].read_only,
                };
                /* "other": attached, but not by nbdlinkd. */
                p[*n].state = strdup("other");
                if (asprintf(&p[*n].device, "/dev/nbd%d", sys[i].index) < 0)
                        p[*n].device = NULL;
                (*n)++;
                if (!p[*n - 1].state || !p[*n - 1].device)
                        return -ENOMEM;
        }

        if (*n > 1)
                qsort(*devs, *n, sizeof(DeviceInfo), device_cmp);
        return 0;
}

char *uid_to_user_name(uint32_t uid) {
        _cleanup_free_ char *buf = NULL;
        long max = sysconf(_SC_GETPW_R_SIZE_MAX);
        size_t size = max > 0 ? (size_t) max : 1024;
        struct passwd pwd, *pw = NULL;

        /* Reentrant, with a buffer grown until the entry fits. */
        for (;;) {
                int r;

                free(buf);
                buf = malloc(size);
                if (!buf)
                        return NULL;
                r = getpwuid_r((uid_t) uid, &pwd, buf, size, &pw);
                if (r != ERANGE || size > 1024 * 1024)
                        break;
                size *= 2;
        }
        if (pw && pw->pw_name && *pw->pw_name)
                return strdup(pw->pw_name);
        return NULL;
}

char *uid_to_name(uint32_t uid) {
        char *s = uid_to_user_name(uid);

        if (s || asprintf(&s, "%" PRIu32, uid) >= 0)
                return s;
        return NULL;
}
