/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real nbdlinkd on a private dbus-daemon whose configuration is a
 * system bus with data/org.nbdlink.NBD1.conf, called through sd-bus and
 * through GDBus as a file manager would: version, every bad input, the
 * missing-nbd case, authorization of non-root callers, the introspection
 * against the dbus/ XML, and systemd-analyze verify on the unit. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <grp.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-error.h"
#include "device-name.h"
#include "device-node.h"
#include "options.h"

/* After nbdlink headers: it brings GLib, which redefines MIN/MAX itself. */
#include "bus-harness.h"
#include "loopback.h"
#include <glib/gstdio.h>

#define NOBODY 65534

/* ---- tests ---------------------------------------------------------------- */

static void test_version(void) {
        g_autoptr(GDBusConnection) c = gdbus_connect();
        g_autoptr(GDBusProxy) proxy = NULL;
        g_autoptr(GVariant) v = NULL;
        sd_bus *bus = sd_connect();
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;
        GError *gerror = NULL;

        g_assert_cmpint(sd_bus_get_property_string(bus, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                   "org.nbdlink.NBD1.Manager", "Version", &error, &s), >=, 0);
        g_assert_cmpstr(s, ==, "0.1");
        free(s);
        sd_bus_flush_close_unref(bus);

        proxy = g_dbus_proxy_new_sync(c, G_DBUS_PROXY_FLAGS_NONE, NULL, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                      "org.nbdlink.NBD1.Manager", NULL, &gerror);
        g_assert_no_error(gerror);
        v = g_dbus_proxy_get_cached_property(proxy, "Version");
        g_assert_nonnull(v);
        g_assert_cmpstr(g_variant_get_string(v, NULL), ==, "0.1");
}

typedef struct BadCall {
        const char *what;
        const char *method;
        const char *signature;
        const char *device, *host, *export_name;
        const char *opt_key, *opt_type;        /* one option, for the a{sv} methods */
        uint32_t opt_u;
        const char *opt_s;
        const char *error;                      /* expected name, after the prefix */
        int errno_value;
        const char *message;                    /* part of the message */
} BadCall;

static int call_bad(sd_bus *bus, const BadCall *c, sd_bus_error *error) {
        sd_bus_message *m = NULL, *reply = NULL;
        int r;

        g_assert_cmpint(sd_bus_message_new_method_call(bus, &m, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                       "org.nbdlink.NBD1.Manager", c->method), >=, 0);
        if (g_str_equal(c->method, "Attach"))
                g_assert_cmpint(sd_bus_message_append(m, "sssb", c->device, c->host, c->export_name, 0), >=, 0);
        else if (g_str_equal(c->method, "Detach"))
                g_assert_cmpint(sd_bus_message_append(m, "s", c->device), >=, 0);
        else {
                if (g_str_equal(c->method, "AttachWithOptions"))
                        g_assert_cmpint(sd_bus_message_append(m, "sss", c->device, c->host, c->export_name), >=, 0);
                else if (g_str_equal(c->method, "Probe"))
                        g_assert_cmpint(sd_bus_message_append(m, "ss", c->host, c->export_name), >=, 0);
                else
                        g_assert_cmpint(sd_bus_message_append(m, "s", c->host), >=, 0);
                g_assert_cmpint(sd_bus_message_open_container(m, 'a', "{sv}"), >=, 0);
                if (c->opt_key) {
                        g_assert_cmpint(sd_bus_message_open_container(m, 'e', "sv"), >=, 0);
                        g_assert_cmpint(sd_bus_message_append_basic(m, 's', c->opt_key), >=, 0);
                        g_assert_cmpint(sd_bus_message_open_container(m, 'v', c->opt_type), >=, 0);
                        if (c->opt_type[0] == 's')
                                g_assert_cmpint(sd_bus_message_append_basic(m, 's', c->opt_s), >=, 0);
                        else if (c->opt_type[0] == 'q') {
                                uint16_t q = (uint16_t) c->opt_u;
                                g_assert_cmpint(sd_bus_message_append_basic(m, 'q', &q), >=, 0);
                        } else
                                g_assert_cmpint(sd_bus_message_append_basic(m, c->opt_type[0], &c->opt_u), >=, 0);
                        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
                        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
                }
                g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
        }
        r = sd_bus_call(bus, m, 10 * 1000 * 1000, error, &reply);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        return r;
}

static void check_bad_calls(const BadCall *cases, size_t n) {
        sd_bus *bus = sd_connect();

        g_assert_cmpint(nbdlink_bus_error_register(), ==, 0);
        for (size_t i = 0; i < n; i++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                g_autofree char *name = g_strconcat(NBDLINK_ERROR_PREFIX, cases[i].error, NULL);
                int r;

                g_test_message("%s: %s", cases[i].method, cases[i].what);
                r = call_bad(bus, &cases[i], &error);
                g_assert_cmpint(r, ==, -cases[i].errno_value);
                g_assert_cmpstr(error.name, ==, name);
                g_assert_cmpint(sd_bus_error_get_errno(&error), ==, cases[i].errno_value);
                if (!strstr(error.message, cases[i].message))
                        g_error("message '%s' lacks '%s'", error.message, cases[i].message);
                sd_bus_error_free(&error);
        }
        sd_bus_flush_close_unref(bus);
}

static void test_bad_input(void) {
        static char long_export[4098], long_host[257];
        memset(long_export, 'e', 4097);
        memset(long_host, 'h', 256);

        const BadCall cases[] = {
                { "device sda", "Attach", NULL, "sda", "localhost", "", .error = "InvalidArgument", .errno_value = EINVAL, .message = "device 'sda' is not" },
                { "device /dev/sda", "Attach", NULL, "/dev/sda", "localhost", "", .error = "InvalidArgument", .errno_value = EINVAL, .message = "is not" },
                { "device nbd10000", "Attach", NULL, "nbd10000", "localhost", "", .error = "InvalidArgument", .errno_value = EINVAL, .message = "N up to 4 digits" },
                { "device nbd01", "Attach", NULL, "nbd01", "localhost", "", .error = "InvalidArgument", .errno_value = EINVAL, .message = "is not" },
                { "device ../nbd0", "Attach", NULL, "/dev/../dev/nbd0", "localhost", "", .error = "InvalidArgument", .errno_value = EINVAL, .message = "is not" },
                { "device path", "Attach", NULL, "/tmp/nbd0", "localhost", "", .error = "InvalidArgument", .errno_value = EINVAL, .message = "is not" },
                { "export too long", "Attach", NULL, "", "localhost", long_export, .error = "InvalidArgument", .errno_value = EINVAL, .message = "export name of 4097 bytes" },
                { "host too long", "Attach", NULL, "", long_host, "", .error = "InvalidArgument", .errno_value = EINVAL, .message = "host of 256 bytes" },
                { "host empty", "Attach", NULL, "", "", "", .error = "InvalidArgument", .errno_value = EINVAL, .message = "host is empty" },
                { "unknown option", "AttachWithOptions", NULL, "", "localhost", "", "colour", "s", 0, "red", "InvalidArgument", EINVAL, "unknown option 'colour'" },
                { "wrong type", "AttachWithOptions", NULL, "", "localhost", "", "port", "u", 10809, NULL, "InvalidArgument", EINVAL, "option 'port' must have type 'q'" },
                { "bad tls", "AttachWithOptions", NULL, "", "localhost", "", "tls", "s", 0, "maybe", "InvalidArgument", EINVAL, "option 'tls' must be" },
                { "zero connections", "AttachWithOptions", NULL, "", "localhost", "", "connections", "u", 0, NULL, "InvalidArgument", EINVAL, "option 'connections'" },
                { "timeout 0", "AttachWithOptions", NULL, "", "localhost", "", "timeout", "u", 0, NULL, "InvalidArgument", EINVAL, "option 'timeout'" },
                { "block size", "AttachWithOptions", NULL, "", "localhost", "", "block-size", "u", 1000, NULL, "InvalidArgument", EINVAL, "option 'block-size'" },
                { "dead-timeout alone", "AttachWithOptions", NULL, "", "localhost", "", "dead-timeout", "u", 10, NULL, "InvalidArgument", EINVAL, "option 'dead-timeout' needs 'persist'" },
                { "dead-timeout 0", "AttachWithOptions", NULL, "", "localhost", "", "dead-timeout", "u", 0, NULL, "InvalidArgument", EINVAL, "option 'dead-timeout' must be" },
                { "detach bad name", "Detach", NULL, "sda", .error = "InvalidArgument", .errno_value = EINVAL, .message = "is not" },
                { "detach empty", "Detach", NULL, "", .error = "InvalidArgument", .errno_value = EINVAL, .message = "is not" },
                { "detach not attached", "Detach", NULL, "nbd7", .error = "NotAttached", .errno_value = ENXIO, .message = "/dev/nbd7 is not attached" },
                { "list unknown option", "ListExports", NULL, NULL, "localhost", NULL, "colour", "s", 0, "red", "InvalidArgument", EINVAL, "unknown option 'colour'" },
                { "list attach-only option", "ListExports", NULL, NULL, "localhost", NULL, "read-only", "b", 1, NULL, "InvalidArgument", EINVAL, "only valid for attaching" },
                { "list host too long", "ListExports", NULL, NULL, long_host, NULL, .error = "InvalidArgument", .errno_value = EINVAL, .message = "host of 256 bytes" },
                { "probe export too long", "Probe", NULL, NULL, "localhost", long_export, .error = "InvalidArgument", .errno_value = EINVAL, .message = "export name of 4097" },
                { "probe wrong type", "Probe", NULL, NULL, "localhost", "", "timeout", "s", 0, "5", "InvalidArgument", EINVAL, "option 'timeout' must have type 'u'" },
        };

        check_bad_calls(cases, G_N_ELEMENTS(cases));
}

static void test_no_such_device(void) {
        if (nbd_module_loaded()) {
                g_test_skip("this kernel has nbd; the vm suite covers attaching");
                return;
        }
        const BadCall cases[] = {
                { "any device", "Attach", NULL, "", "localhost", "", .error = "NoSuchDevice", .errno_value = ENODEV, .message = "nbd kernel module is not loaded" },
                { "nbd0", "Attach", NULL, "nbd0", "localhost", "", .error = "NoSuchDevice", .errno_value = ENODEV, .message = "nbd kernel module is not loaded" },
                { "/dev/nbd3", "AttachWithOptions", NULL, "/dev/nbd3", "localhost", "exp", "read-only", "b", 1, NULL, "NoSuchDevice", ENODEV, "not loaded" },
        };
        check_bad_calls(cases, G_N_ELEMENTS(cases));
}

/* AttachURI: what the URI says goes where AttachWithOptions' arguments
 * would, and what it may not say is refused before anything is done. */
static sd_bus_message *attach_uri(sd_bus *bus, const char *uri, const char *key, const char *type, const void *value,
                                  sd_bus_error *error) {
        sd_bus_message *m = NULL, *reply = NULL;

        g_assert_cmpint(sd_bus_message_new_method_call(bus, &m, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                       "org.nbdlink.NBD1.Manager", "AttachURI"), >=, 0);
        g_assert_cmpint(sd_bus_message_append(m, "s", uri), >=, 0);
        g_assert_cmpint(sd_bus_message_open_container(m, 'a', "{sv}"), >=, 0);
        if (key && type[0] == 's')
                g_assert_cmpint(sd_bus_message_append(m, "{sv}", key, "s", (const char *) value), >=, 0);
        else if (key && type[0] == 'q')
                g_assert_cmpint(sd_bus_message_append(m, "{sv}", key, "q", *(const uint16_t *) value), >=, 0);
        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
        (void) sd_bus_call(bus, m, 0, error, &reply);
        sd_bus_message_unref(m);
        return reply;
}

static void assert_uri_error(sd_bus *bus, const char *uri, const char *key, const char *type, const void *value,
                             const char *name, const char *message) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = attach_uri(bus, uri, key, type, value, &error);

        g_assert_null(reply);
        g_test_message("AttachURI(%s): %s: %s", uri, error.name, error.message);
        g_assert_cmpstr(error.name, ==, name);
        if (!strstr(error.message, message))
                g_error("\"%s\" does not mention \"%s\"", error.message, message);
        sd_bus_error_free(&error);
}

static void test_attach_uri(void) {
        sd_bus *bus = sd_connect();
        const uint16_t other_port = 10810;

        assert_uri_error(bus, "127.0.0.1:10809", NULL, NULL, NULL,
                         "org.nbdlink.NBD1.Error.InvalidArgument", "not an NBD URI");
        assert_uri_error(bus, "nbd://[::1/disk", NULL, NULL, NULL,
                         "org.nbdlink.NBD1.Error.InvalidArgument", "uri: ");
        assert_uri_error(bus, "nbds://server.example/disk?tls-psk-file=/etc/shadow", NULL, NULL, NULL,
                         "org.nbdlink.NBD1.Error.InvalidArgument", "tls-psk-file names a path");
        assert_uri_error(bus, "nbd://server.example:10809/disk", "port", "q", &other_port,
                         "org.nbdlink.NBD1.Error.InvalidArgument", "disagree");
        assert_uri_error(bus, "nbd://server.example/disk", "device", "s", "sda",
                         "org.nbdlink.NBD1.Error.InvalidArgument", "device 'sda'");
        assert_uri_error(bus, "nbd+unix:///disk?socket=relative/path", NULL, NULL, NULL,
                         "org.nbdlink.NBD1.Error.InvalidArgument", "absolute path");
        /* Everything right: the attach gets as far as this machine lets it. */
        if (!nbd_module_loaded()) {
                assert_uri_error(bus, "nbd://127.0.0.1:10809/disk", "device", "s", "nbd3",
                                 "org.nbdlink.NBD1.Error.NoSuchDevice", "nbd kernel module is not loaded");
                assert_uri_error(bus, "nbd+unix:///disk?socket=/run/nbd.sock", NULL, NULL, NULL,
                                 "org.nbdlink.NBD1.Error.NoSuchDevice", "nbd kernel module is not loaded");
        }
        sd_bus_flush_close_unref(bus);
}

static void test_gdbus_errors(void) {
        g_autoptr(GDBusConnection) c = gdbus_connect();
        g_autoptr(GDBusProxy) proxy = NULL;
        g_autoptr(GVariant) v = NULL;
        g_autofree char *remote = NULL;
        GError *error = NULL;

        proxy = g_dbus_proxy_new_sync(c, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES, NULL, "org.nbdlink.NBD1",
                                      "/org/nbdlink/NBD1", "org.nbdlink.NBD1.Manager", NULL, &error);
        g_assert_no_error(error);

        v = g_dbus_proxy_call_sync(proxy, "Attach", g_variant_new("(sssb)", "floppy", "localhost", "", FALSE),
                                   G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
        g_assert_null(v);
        g_assert_true(g_dbus_error_is_remote_error(error));
        remote = g_dbus_error_get_remote_error(error);
        g_assert_cmpstr(remote, ==, NBDLINK_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull(strstr(error->message, "device 'floppy' is not"));
        g_clear_error(&error);

        g_autoptr(GVariantBuilder) b = g_variant_builder_new(G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(b, "{sv}", "shape", g_variant_new_string("round"));
        v = g_dbus_proxy_call_sync(proxy, "AttachWithOptions", g_variant_new("(sssa{sv})", "", "localhost", "", b),
                                   G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
        g_assert_null(v);
        g_free(remote);
        remote = g_dbus_error_get_remote_error(error);
        g_assert_cmpstr(remote, ==, NBDLINK_ERROR_INVALID_ARGUMENT);
        g_assert_nonnull(strstr(error->message, "unknown option 'shape'"));
        g_clear_error(&error);

        /* The ObjectManager is there and empty. */
        g_autoptr(GVariant) objs = g_dbus_connection_call_sync(c, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                               "org.freedesktop.DBus.ObjectManager",
                                                               "GetManagedObjects", NULL,
                                                               G_VARIANT_TYPE("(a{oa{sa{sv}}})"),
                                                               G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
        g_assert_no_error(error);
        g_autoptr(GVariant) dict = g_variant_get_child_value(objs, 0);
        g_assert_cmpuint(g_variant_n_children(dict), ==, 0);
}

/* Runs fn as uid nobody in a child (with its own sd-bus connection) and
 * returns its exit status. */
static int as_nobody(int (*fn)(void)) {
        pid_t pid = fork();
        int status;

        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
                    setresuid(NOBODY, NOBODY, NOBODY) < 0)
                        _exit(100);
                _exit(fn());
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static int expect_call_error(const char *method, const char *types, const char *name, const char *part, ...) {
        sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        va_list ap;
        int r;

        if (sd_bus_open_system(&bus) < 0)
                return 10;
        if (sd_bus_message_new_method_call(bus, &m, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                           "org.nbdlink.NBD1.Manager", method) < 0)
                return 11;
        va_start(ap, part);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return 12;
        r = sd_bus_call(bus, m, 10 * 1000 * 1000, &error, &reply);
        if (r >= 0)
                return 13;
        if (!sd_bus_error_has_name(&error, name)) {
                fprintf(stderr, "got %s: %s\n", error.name, error.message);
                return 14;
        }
        if (!strstr(error.message, part)) {
                fprintf(stderr, "message '%s' lacks '%s'\n", error.message, part);
                return 15;
        }
        return 0;
}

static int nobody_attach(void) {
        return expect_call_error("Attach", "sssb", NBDLINK_ERROR_NOT_AUTHORIZED, "uid 65534 is not allowed",
                                 "", "localhost", "", 0);
}

static int nobody_unix_host(void) {
        return expect_call_error("Attach", "sssb", NBDLINK_ERROR_INVALID_ARGUMENT, "root only",
                                 "", "unix:/run/nbd.sock", "", 0);
}

static int nobody_list(void) {
        return expect_call_error("ListExports", "sa{sv}", NBDLINK_ERROR_NOT_AUTHORIZED, "not allowed",
                                 "localhost", 0);
}

static int nobody_detach(void) {
        return expect_call_error("Detach", "s", NBDLINK_ERROR_NOT_AUTHORIZED, "not allowed", "nbd0");
}

static void test_not_authorized(void) {
        if (getuid() != 0) {
                g_test_skip("needs root to switch to another uid");
                return;
        }
        g_assert_cmpint(as_nobody(nobody_attach), ==, 0);
        g_assert_cmpint(as_nobody(nobody_unix_host), ==, 0);
        g_assert_cmpint(as_nobody(nobody_list), ==, 0);
        g_assert_cmpint(as_nobody(nobody_detach), ==, 0);
}

/* ---- introspection against the dbus/ XML --------------------------------- */

static char *args_signature(GDBusArgInfo **args) {
        GString *s = g_string_new(NULL);
        for (size_t i = 0; args && args[i]; i++)
                g_string_append(s, args[i]->signature);
        return g_string_free(s, FALSE);
}

static char *args_names(GDBusArgInfo **args) {
        GString *s = g_string_new(NULL);
        for (size_t i = 0; args && args[i]; i++)
                g_string_append_printf(s, "%s,", args[i]->name);
        return g_string_free(s, FALSE);
}

static void compare_interfaces(GDBusInterfaceInfo *want, GDBusInterfaceInfo *have) {
        size_t n;

        g_test_message("interface %s", want->name);
        n = 0;
        for (GDBusMethodInfo **m = want->methods; m && *m; m++, n++) {
                GDBusMethodInfo *h = g_dbus_interface_info_lookup_method(have, (*m)->name);
                if (!h)
                        g_error("method %s.%s missing from the daemon", want->name, (*m)->name);
                g_autofree char *wi = args_signature((*m)->in_args), *hi = args_signature(h->in_args);
                g_autofree char *wo = args_signature((*m)->out_args), *ho = args_signature(h->out_args);
                g_autofree char *wn = args_names((*m)->in_args), *hn = args_names(h->in_args);
                g_assert_cmpstr(wi, ==, hi);
                g_assert_cmpstr(wo, ==, ho);
                g_assert_cmpstr(wn, ==, hn);
        }
        g_assert_cmpuint(n, ==, have->methods ? g_strv_length((char **) have->methods) : 0);

        n = 0;
        for (GDBusSignalInfo **s = want->signals; s && *s; s++, n++) {
                GDBusSignalInfo *h = g_dbus_interface_info_lookup_signal(have, (*s)->name);
                if (!h)
                        g_error("signal %s.%s missing from the daemon", want->name, (*s)->name);
                g_autofree char *w = args_signature((*s)->args), *hs = args_signature(h->args);
                g_assert_cmpstr(w, ==, hs);
        }
        g_assert_cmpuint(n, ==, have->signals ? g_strv_length((char **) have->signals) : 0);

        n = 0;
        for (GDBusPropertyInfo **p = want->properties; p && *p; p++, n++) {
                GDBusPropertyInfo *h = g_dbus_interface_info_lookup_property(have, (*p)->name);
                if (!h)
                        g_error("property %s.%s missing from the daemon", want->name, (*p)->name);
                g_assert_cmpstr((*p)->signature, ==, h->signature);
                g_assert_cmpint((*p)->flags, ==, h->flags);
        }
        g_assert_cmpuint(n, ==, have->properties ? g_strv_length((char **) have->properties) : 0);
}

static GDBusNodeInfo *xml_file(const char *name) {
        g_autofree char *path = g_build_filename(srcdir(), "dbus", name, NULL);
        g_autofree char *xml = NULL;
        GError *error = NULL;
        GDBusNodeInfo *info;

        g_assert_true(g_file_get_contents(path, &xml, NULL, &error));
        info = g_dbus_node_info_new_for_xml(xml, &error);
        g_assert_no_error(error);
        return info;
}

static GDBusNodeInfo *live(GDBusConnection *c, const char *path) {
        g_autoptr(GVariant) v = NULL;
        const char *xml;
        GError *error = NULL;
        GDBusNodeInfo *info;

        v = g_dbus_connection_call_sync(c, "org.nbdlink.NBD1", path, "org.freedesktop.DBus.Introspectable",
                                        "Introspect", NULL, G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE,
                                        10000, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(v, "(&s)", &xml);
        info = g_dbus_node_info_new_for_xml(xml, &error);
        g_assert_no_error(error);
        return info;
}

static void test_introspection(void) {
        g_autoptr(GDBusConnection) c = gdbus_connect();
        g_autoptr(GDBusNodeInfo) want_m = xml_file("org.nbdlink.NBD1.Manager.xml");
        g_autoptr(GDBusNodeInfo) want_d = xml_file("org.nbdlink.NBD1.Device.xml");
        g_autoptr(GDBusNodeInfo) have_m = live(c, "/org/nbdlink/NBD1");
        GDBusInterfaceInfo *i;

        i = g_dbus_node_info_lookup_interface(have_m, "org.nbdlink.NBD1.Manager");
        g_assert_nonnull(i);
        compare_interfaces(want_m->interfaces[0], i);
        g_assert_nonnull(g_dbus_node_info_lookup_interface(have_m, "org.freedesktop.DBus.ObjectManager"));

        /* No device is attached here, so the Device interface is read from
         * the vtable the daemon is built with, through the same sd-bus
         * introspection code, on a throwaway object. */
        {
                g_autofree char *helper = g_build_filename(g_getenv("NBDLINK_BUILD_ROOT"), "tests", "bus",
                                                           "dump-device-introspection", NULL);
                g_autofree char *out = NULL;
                g_autofree char *err = NULL;
                g_autoptr(GDBusNodeInfo) have_d = NULL;
                const char *argv[] = { helper, NULL };
                int status;
                GError *error = NULL;

                g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, 0, NULL, NULL, &out, &err, &status, &error));
                g_assert_no_error(error);
                g_assert_true(g_spawn_check_wait_status(status, &error));
                have_d = g_dbus_node_info_new_for_xml(out, &error);
                g_assert_no_error(error);
                i = g_dbus_node_info_lookup_interface(have_d, "org.nbdlink.NBD1.Device");
                g_assert_nonnull(i);
                compare_interfaces(want_d->interfaces[0], i);
        }
}

/* nbdkit serving one connection on a socketpair (-s): no port at all.
 * Returns our end; the child is reaped by the caller. */
static int start_nbdkit(GPid *ret_pid) {
        int sv[2];
        GError *error = NULL;
        const char *argv[] = { "nbdkit", "-s", "--exit-with-parent", "memory", "1M", NULL };

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        g_assert_true(g_spawn_async_with_fds(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                             child_setup, NULL, ret_pid, sv[1], sv[1], -1, &error));
        g_assert_no_error(error);
        close(sv[1]);
        return sv[0];
}

static sd_bus_message *call_with_socket(sd_bus *bus, const char *method, int fd, sd_bus_error *error) {
        sd_bus_message *m = NULL, *reply = NULL;

        g_assert_cmpint(sd_bus_message_new_method_call(bus, &m, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                       "org.nbdlink.NBD1.Manager", method), >=, 0);
        if (g_str_equal(method, "Probe"))
                g_assert_cmpint(sd_bus_message_append(m, "ss", "", ""), >=, 0);
        else
                g_assert_cmpint(sd_bus_message_append(m, "s", ""), >=, 0);
        g_assert_cmpint(sd_bus_message_append(m, "a{sv}", 1, "socket", "h", fd), >=, 0);
        (void) sd_bus_call(bus, m, 30 * 1000 * 1000, error, &reply);
        sd_bus_message_unref(m);
        return reply;
}

static void test_list_and_probe(void) {
        sd_bus *bus = sd_connect();
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply;
        GPid pid;
        int fd;
        bool found_size = false;

        /* ListExports over a socket the caller connected. */
        fd = start_nbdkit(&pid);
        reply = call_with_socket(bus, "ListExports", fd, &error);
        if (!reply)
                g_error("ListExports failed: %s: %s", error.name, error.message);
        close(fd);
        size_t n = 0;
        const char *name, *description;
        g_assert_cmpint(sd_bus_message_enter_container(reply, 'a', "(ss)"), >=, 0);
        while (sd_bus_message_read(reply, "(ss)", &name, &description) > 0)
                n++;
        g_assert_cmpuint(n, >=, 1);
        sd_bus_message_unref(reply);
        (void) wait_exit(pid, 5000);

        /* Probe: the size nbdkit was told. */
        fd = start_nbdkit(&pid);
        reply = call_with_socket(bus, "Probe", fd, &error);
        if (!reply)
                g_error("Probe failed: %s: %s", error.name, error.message);
        close(fd);
        g_assert_cmpint(sd_bus_message_enter_container(reply, 'a', "{sv}"), >=, 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                const char *key;
                g_assert_cmpint(sd_bus_message_read(reply, "s", &key), >=, 0);
                if (g_str_equal(key, "size")) {
                        uint64_t size;
                        g_assert_cmpint(sd_bus_message_read(reply, "v", "t", &size), >=, 0);
                        g_assert_cmpuint(size, ==, 1024 * 1024);
                        found_size = true;
                } else
                        g_assert_cmpint(sd_bus_message_skip(reply, "v"), >=, 0);
                g_assert_cmpint(sd_bus_message_exit_container(reply), >=, 0);
        }
        g_assert_true(found_size);
        sd_bus_message_unref(reply);
        (void) wait_exit(pid, 5000);

        sd_bus_flush_close_unref(bus);
}

/* The system bus goes away and comes back under a running nbdlinkd: the
 * same process takes its name again, a query the lost connection carried
 * is let go (its caller had its error from the bus), and new calls work. */
static void test_bus_restart(void) {
        g_autoptr(GDBusConnection) c = NULL;
        sd_bus *bus = sd_connect();
        sd_bus_message *call = NULL;
        uint16_t port;
        int deaf, fds, threads, status;

        /* A Probe waiting on a server that never says anything. */
        deaf = loopback_listen(0, 4, &port);
        g_assert_cmpint(sd_bus_message_new_method_call(bus, &call, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                       "org.nbdlink.NBD1.Manager", "Probe"), >=, 0);
        g_autofree char *host = g_strdup_printf("127.0.0.1:%u", port);
        g_assert_cmpint(sd_bus_message_append(call, "ssa{sv}", host, "", 1, "timeout", "u", 60), >=, 0);
        g_assert_cmpint(sd_bus_send(bus, call, NULL), >=, 0);
        g_assert_cmpint(sd_bus_flush(bus), >=, 0);
        sd_bus_message_unref(call);
        for (int i = 0; i < 500 && daemon_threads() < 2; i++)
                g_usleep(10000);
        sd_bus_flush_close_unref(bus);

        restart_bus();

        c = gdbus_connect();
        for (int i = 0; i < 1000 && !name_has_owner(c, "org.nbdlink.NBD1"); i++)
                g_usleep(10000);
        g_assert_true(name_has_owner(c, "org.nbdlink.NBD1"));
        g_assert_cmpint(waitpid(fx.daemon_pid, &status, WNOHANG), ==, 0);

        /* The Probe's worker is gone well before its 60 s. */
        g_assert_true(daemon_wait_counts(daemon_fds(), 1, 5000, &fds, &threads));
        g_test_message("after the bus came back: %d descriptors, %d threads", fds, threads);
        close(deaf);

        test_version();
        test_list_and_probe();
}

static void test_unit_verify(void) {
        g_autofree char *unit_in = g_build_filename(builddir(), "data", "nbdlinkd.service", NULL);
        g_autofree char *daemon_path = g_build_filename(builddir(), "daemon", "nbdlinkd", NULL);
        g_autofree char *dir = NULL, *unit = NULL, *text = NULL, *out = NULL, *err = NULL;
        g_auto(GStrv) lines = NULL;
        GString *fixed = g_string_new(NULL);
        GError *error = NULL;
        int status;

        /* ExecStart names the installed path; verify wants an existing
         * binary, so point it at the one just built. */
        g_assert_true(g_file_get_contents(unit_in, &text, NULL, &error));
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                if (g_str_has_prefix(*l, "ExecStart="))
                        g_string_append_printf(fixed, "ExecStart=%s\n", daemon_path);
                else
                        g_string_append_printf(fixed, "%s\n", *l);
        }
        dir = g_dir_make_tmp("nbdlink-unit-XXXXXX", &error);
        g_assert_no_error(error);
        unit = g_build_filename(dir, "nbdlinkd.service", NULL);
        g_assert_true(g_file_set_contents(unit, fixed->str, -1, &error));
        g_string_free(fixed, TRUE);

        const char *argv[] = { "systemd-analyze", "verify", "--man=no", unit, NULL };
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                                   &status, &error));
        g_assert_no_error(error);
        g_test_message("systemd-analyze: %s%s", out, err);
        /* Warnings about the host (no nbd module here) are not the unit's. */
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        g_assert_null(strstr(err, "nbdlinkd.service:"));

        g_unlink(unit);
        g_rmdir(dir);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bus/version", test_version);
        g_test_add_func("/bus/bad-input", test_bad_input);
        g_test_add_func("/bus/no-such-device", test_no_such_device);
        g_test_add_func("/bus/attach-uri", test_attach_uri);
        g_test_add_func("/bus/gdbus-errors", test_gdbus_errors);
        g_test_add_func("/bus/not-authorized", test_not_authorized);
        g_test_add_func("/bus/introspection", test_introspection);
        g_test_add_func("/bus/list-and-probe", test_list_and_probe);
        g_test_add_func("/bus/bus-restart", test_bus_restart);
        g_test_add_func("/bus/unit-verify", test_unit_verify);
        /* Last: SIGTERM detaches everything and exits 0 (under ASan, leak-free). */
        g_test_add_func("/bus/sigterm", test_daemon_sigterm_exits_0);

        start_all();
        r = g_test_run();
        stop_all();
        return r;
}
