/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Argument validation: device names, export names, hosts, the a{sv}
 * options, and the device open that refuses anything but an nbd node. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "device-name.h"
#include "device-node.h"
#include "options.h"

/* After nbdlink headers: GLib redefines MIN/MAX itself. */
#include <glib.h>

static void test_device_names(void) {
        static const struct {
                const char *s;
                int index;      /* -2: invalid */
        } cases[] = {
                { "", -1 },
                { "nbd0", 0 },
                { "nbd15", 15 },
                { "/dev/nbd9999", 9999 },
                { "nbd10000", -2 },
                { "nbd", -2 },
                { "/dev/nbd", -2 },
                { "nbd01", -2 },
                { "nbd-1", -2 },
                { "nbd1a", -2 },
                { "sda", -2 },
                { "/dev/sda", -2 },
                { "/dev/../dev/nbd0", -2 },
                { "/tmp/nbd0", -2 },
                { "dev/nbd0", -2 },
                { " nbd0", -2 },
                { "nbd0 ", -2 },
                { "NBD0", -2 },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                int idx = -42, r = device_name_parse(cases[i].s, &idx);

                if (cases[i].index == -2)
                        g_assert_cmpint(r, ==, -EINVAL);
                else {
                        g_assert_cmpint(r, ==, 0);
                        g_assert_cmpint(idx, ==, cases[i].index);
                }
        }
}

static void test_export_and_host(void) {
        Error err = {};
        g_autofree char *long_export = g_strnfill(4097, 'e');
        g_autofree char *max_export = g_strnfill(4096, 'e');
        g_autofree char *long_host = g_strnfill(256, 'h');
        g_autofree char *max_host = g_strnfill(255, 'h');

        g_assert_cmpint(validate_export_name("", &err), ==, 0);
        g_assert_cmpint(validate_export_name(max_export, &err), ==, 0);
        g_assert_cmpint(validate_export_name(long_export, &err), ==, -EINVAL);
        g_assert_nonnull(strstr(err.message, "export name of 4097 bytes"));

        g_assert_cmpint(validate_host(max_host, false, &err), ==, 0);
        g_assert_cmpint(validate_host("[::1]:10809", false, &err), ==, 0);
        g_assert_cmpint(validate_host(long_host, false, &err), ==, -EINVAL);
        g_assert_nonnull(strstr(err.message, "host of 256 bytes"));
        g_assert_cmpint(validate_host("", false, &err), ==, -EINVAL);
        g_assert_cmpint(validate_host("a\nb", false, &err), ==, -EINVAL);
        g_assert_cmpint(validate_host("unix:/run/nbd.sock", false, &err), ==, -EINVAL);
        g_assert_nonnull(strstr(err.message, "root only"));
        g_assert_cmpint(validate_host("unix:/run/nbd.sock", true, &err), ==, 0);
        g_assert_cmpint(validate_host("unix:relative", true, &err), ==, -EINVAL);
        /* The host named "unix" with a port, as daemon messages write it. */
        g_assert_cmpint(validate_host("unix:9", false, &err), ==, 0);
        g_assert_cmpint(validate_host("unix:9", true, &err), ==, 0);
}

/* A message to read options from: sd-bus wants a bus to build one, and a
 * bus that has started (even unauthenticated, on a socketpair) will do. */
static sd_bus *test_bus(void) {
        sd_bus *bus = NULL;
        int sv[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        g_assert_cmpint(sd_bus_new(&bus), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(bus, sv[0], sv[0]), >=, 0);
        g_assert_cmpint(sd_bus_negotiate_fds(bus, true), >=, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);
        close(sv[1]);
        return bus;
}

typedef void (*AppendFunc)(sd_bus_message *m, void *userdata);

static int parse_with(OptionSet set, AttachOptions *o, Error *err, AppendFunc append, void *userdata) {
        sd_bus *bus = test_bus();
        sd_bus_message *m = NULL;
        int r;

        g_assert_cmpint(sd_bus_message_new_method_call(bus, &m, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                       "org.nbdlink.NBD1.Manager", "AttachWithOptions"), >=, 0);
        g_assert_cmpint(sd_bus_message_open_container(m, 'a', "{sv}"), >=, 0);
        append(m, userdata);
        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
        g_assert_cmpint(sd_bus_message_seal(m, 1, 0), >=, 0);
        g_assert_cmpint(sd_bus_message_rewind(m, true), >=, 0);

        attach_options_init(o, 0);
        err->message[0] = 0;
        r = attach_options_parse(m, set, o, err);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
        return r;
}

static void append_all(sd_bus_message *m, void *userdata) {
        int *fds = userdata;
        g_assert_cmpint(sd_bus_message_append(m, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}{sv}",
                                              "port", "q", (uint16_t) 10810,
                                              "tls", "s", "require",
                                              "tls-hostname", "s", "server.example",
                                              "tls-username", "s", "alice",
                                              "tls-psk", "h", fds[0],
                                              "read-only", "b", 1,
                                              "connections", "u", (uint32_t) 4,
                                              "timeout", "u", (uint32_t) 7,
                                              "io-timeout", "u", (uint32_t) 0,
                                              "block-size", "u", (uint32_t) 4096,
                                              "persist", "b", 0,
                                              /* A boolean among the credential descriptors' "tls-" keys. */
                                              "tls-ktls", "b", 0,
                                              "tls-ca", "h", fds[0]), >=, 0);
}

static void test_options_good(void) {
        Error err = {};
        AttachOptions o;
        int fds[1];

        fds[0] = memfd_create("psk", MFD_CLOEXEC);
        g_assert_cmpint(fds[0], >=, 0);
        g_assert_cmpint(write(fds[0], "alice:00", 8), ==, 8);

        g_assert_cmpint(parse_with(OPTIONS_ATTACH, &o, &err, append_all, fds), ==, 0);
        g_assert_cmpuint(o.port, ==, 10810);
        g_assert_cmpint(o.tls, ==, TLS_MODE_REQUIRE);
        g_assert_cmpstr(o.tls_hostname, ==, "server.example");
        g_assert_cmpstr(o.tls_username, ==, "alice");
        g_assert_cmpint(o.tls_psk_fd, >=, 0);
        g_assert_cmpint(o.tls_psk_fd, !=, fds[0]);
        g_assert_cmpint(o.tls_ca_fd, >=, 0);
        g_assert_true(o.read_only);
        g_assert_cmpuint(o.connections, ==, 4);
        g_assert_cmpuint(o.timeout_sec, ==, 7);
        g_assert_cmpuint(o.io_timeout_sec, ==, 0);
        g_assert_cmpuint(o.block_size, ==, 4096);
        g_assert_false(o.persist);
        g_assert_false(o.tls_ktls);
        g_assert_cmpint(fcntl(o.tls_psk_fd, F_GETFD), ==, FD_CLOEXEC);
        attach_options_done(&o);
        g_assert_cmpint(o.tls_psk_fd, <, 0);
        close(fds[0]);

        /* The query methods refuse attach-only keys. */
        g_assert_cmpint(parse_with(OPTIONS_QUERY, &o, &err, append_all, fds), ==, -EINVAL);
        attach_options_done(&o);
}

typedef struct BadCase {
        const char *key;
        const char *type;
        const char *value_s;
        uint32_t value_u;
        const char *expect;     /* part of the message */
} BadCase;

static void append_bad(sd_bus_message *m, void *userdata) {
        const BadCase *c = userdata;

        g_assert_cmpint(sd_bus_message_open_container(m, 'e', "sv"), >=, 0);
        g_assert_cmpint(sd_bus_message_append_basic(m, 's', c->key), >=, 0);
        g_assert_cmpint(sd_bus_message_open_container(m, 'v', c->type), >=, 0);
        switch (c->type[0]) {
        case 's':
                g_assert_cmpint(sd_bus_message_append_basic(m, 's', c->value_s), >=, 0);
                break;
        case 'q': {
                uint16_t q = (uint16_t) c->value_u;
                g_assert_cmpint(sd_bus_message_append_basic(m, 'q', &q), >=, 0);
                break;
        }
        case 'u':
        case 'b':
        case 'h':
                g_assert_cmpint(sd_bus_message_append_basic(m, c->type[0], &c->value_u), >=, 0);
                break;
        default:
                g_assert_not_reached();
        }
        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
}

static void test_options_bad(void) {
        const BadCase cases[] = {
                { "colour", "s", "red", 0, "unknown option 'colour'" },
                { "port", "u", NULL, 10809, "option 'port' must have type 'q', not 'u'" },
                { "port", "q", NULL, 0, "option 'port' must be between" },
                { "tls", "s", "maybe", 0, "option 'tls' must be 'off', 'on' or 'require'" },
                { "tls", "b", NULL, 1, "option 'tls' must have type 's'" },
                { "connections", "u", NULL, 0, "option 'connections' must be between 1 and 16" },
                { "connections", "u", NULL, 17, "option 'connections' must be between 1 and 16" },
                { "timeout", "u", NULL, 0, "option 'timeout' must be between" },
                { "timeout", "u", NULL, 3601, "option 'timeout' must be between" },
                { "io-timeout", "u", NULL, 3601, "option 'io-timeout' must be between 0 (never) and 3600" },
                { "io-timeout", "s", "5", 0, "option 'io-timeout' must have type 'u'" },
                { "block-size", "u", NULL, 1000, "option 'block-size' must be a power of two" },
                { "block-size", "u", NULL, 8192, "option 'block-size' must be a power of two" },
                { "read-only", "s", "yes", 0, "option 'read-only' must have type 'b'" },
                { "tls-psk", "h", NULL, 0, "option 'tls-psk' must be a regular file" },    /* fd 0 is replaced below */
                { "socket", "h", NULL, 0, "option 'socket' is not" },
                { "tls-cert", "h", NULL, 0, "option 'tls-cert' needs 'tls-key'" },
        };
        Error err = {};
        int pipefd[2], memfd;

        g_assert_cmpint(pipe2(pipefd, O_CLOEXEC), ==, 0);
        memfd = memfd_create("cert", MFD_CLOEXEC);
        g_assert_cmpint(memfd, >=, 0);

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                BadCase c = cases[i];
                AttachOptions o;

                if (g_str_equal(c.key, "tls-psk") || g_str_equal(c.key, "socket"))
                        c.value_u = (uint32_t) pipefd[0];
                else if (g_str_equal(c.key, "tls-cert"))
                        c.value_u = (uint32_t) memfd;

                g_test_message("option %s", c.key);
                g_assert_cmpint(parse_with(OPTIONS_ATTACH, &o, &err, append_bad, &c), ==, -EINVAL);
                g_assert_nonnull(strstr(err.message, c.expect));
                attach_options_done(&o);
        }
        close(pipefd[0]);
        close(pipefd[1]);
        close(memfd);
}

static void test_device_open(void) {
        Error err = {};
        g_autofree char *dir = g_dir_make_tmp("nbdlink-validate-XXXXXX", NULL);
        g_autofree char *link = g_build_filename(dir, "nbd0", NULL);
        int fd = -1;

        g_assert_cmpint(nbd_device_open_path("/dev/null", &fd, &err), ==, -ENODEV);
        g_assert_nonnull(strstr(err.message, "not a block device"));
        g_assert_cmpint(fd, ==, -1);

        g_assert_cmpint(nbd_device_open_path("/dev/nbd-does-not-exist", &fd, &err), ==, -ENODEV);
        g_assert_nonnull(strstr(err.message, "no such device"));

        /* A symbolic link is never followed, even to a real device. */
        g_assert_cmpint(symlink("/dev/null", link), ==, 0);
        g_assert_cmpint(nbd_device_open_path(link, &fd, &err), ==, -ENODEV);
        g_assert_nonnull(strstr(err.message, "symbolic link"));
        unlink(link);
        rmdir(dir);

        if (!nbd_module_loaded()) {
                /* This kernel has no nbd: the error must say so. */
                g_assert_cmpint(nbd_device_open(0, &fd, &err), ==, -ENODEV);
                g_assert_nonnull(strstr(err.message, "nbd kernel module is not loaded"));
        }
        g_assert_cmpint(nbd_device_open(10000, &fd, &err), ==, -EINVAL);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/validate/device-names", test_device_names);
        g_test_add_func("/validate/export-and-host", test_export_and_host);
        g_test_add_func("/validate/options-good", test_options_good);
        g_test_add_func("/validate/options-bad", test_options_bad);
        g_test_add_func("/validate/device-open", test_device_open);
        return g_test_run();
}
