/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every method of org.nbdlink.NBD1.Manager called with each bad input of
 * the security rules of docs/security.md: the right error name and text, and nothing
 * opened — the daemon's descriptors are the same afterwards, no connection
 * reaches the test's listening socket, and (in a private mount namespace
 * with a fake /dev and /sys) no device node behind a symbolic link or a
 * bad name is ever opened. */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-error.h"

/* After nbdlink headers: it brings GLib, which redefines MIN/MAX itself. */
#include "bus-harness.h"
#include "loopback.h"

static sd_bus *bus;
static int listen_fd = -1;              /* no call may ever connect here */
static uint16_t listen_port;
static int inotify_fd = -1;             /* IN_OPEN in the fake /dev */
static bool have_ns;                    /* fake /dev and /sys in place */
static char *tmp_dir;                   /* holds a symlink "nbd0" to /dev/sda */
static int base_fds;

/* File descriptors handed over as options. */
typedef enum FdKind {
        FD_NONE,
        FD_PSK,                 /* a good PSK file */
        FD_DIR,
        FD_PIPE,
        FD_BIG,                 /* a regular file over the credential limit */
        FD_SOCK_UNCONNECTED,
        FD_SOCK_UDP,
        FD_SOCK_CONNECTED,      /* connected to the listener: "socket" with a host */
} FdKind;

typedef struct Opt {
        const char *key;
        const char *type;       /* variant type actually sent */
        const char *s;          /* for 's' */
        uint32_t u;             /* for 'u', 'q', 'b', 'i' */
        FdKind fd;              /* for 'h' */
} Opt;

typedef struct Case {
        const char *what;
        const char *method;
        const char *device;
        const char *host;       /* NULL: the listener (port in the options, or host:port for Attach) */
        const char *export_name;
        Opt opts[2];
        const char *error;      /* name after the prefix */
        const char *message;    /* part of the message */
        bool needs_ns;          /* needs the fake /dev and /sys */
        const char *opened_node; /* the only node it may open, by design (open, then fstat) */
} Case;

#define E_INVAL "InvalidArgument"
#define E_NODEV "NoSuchDevice"

/* ---- helpers --------------------------------------------------------------- */

static int make_fd(FdKind kind) {
        int fd = -1, sv[2];

        switch (kind) {
        case FD_PSK: {
                static const char psk[] = "nbdlink:0123456789abcdef0123456789abcdef\n";
                g_autofree char *p = g_build_filename(tmp_dir, "psk", NULL);

                g_assert_true(g_file_set_contents(p, psk, -1, NULL));
                fd = open(p, O_RDONLY | O_CLOEXEC);
                break;
        }
        case FD_DIR:
                fd = open(tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                break;
        case FD_PIPE:
                g_assert_cmpint(pipe2(sv, O_CLOEXEC), ==, 0);
                close(sv[1]);
                fd = sv[0];
                break;
        case FD_BIG: {
                g_autofree char *p = g_build_filename(tmp_dir, "big", NULL);

                fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                g_assert_cmpint(ftruncate(fd, 2 * 1024 * 1024), ==, 0);
                break;
        }
        case FD_SOCK_UNCONNECTED:
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                break;
        case FD_SOCK_UDP:
                fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                break;
        case FD_SOCK_CONNECTED: {
                int c;

                fd = loopback_connect(listen_port);
                /* This one connection is ours, not the daemon's. */
                c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                g_assert_cmpint(c, >=, 0);
                close(c);
                break;
        }
        case FD_NONE:
        default:
                g_assert_not_reached();
        }
        g_assert_cmpint(fd, >=, 0);
        return fd;
}

static void append_opt(sd_bus_message *m, const Opt *o) {
        g_assert_cmpint(sd_bus_message_open_container(m, 'e', "sv"), >=, 0);
        g_assert_cmpint(sd_bus_message_append_basic(m, 's', o->key), >=, 0);
        g_assert_cmpint(sd_bus_message_open_container(m, 'v', o->type), >=, 0);
        switch (o->type[0]) {
        case 's':
                g_assert_cmpint(sd_bus_message_append_basic(m, 's', o->s), >=, 0);
                break;
        case 'q': {
                uint16_t q = (uint16_t) o->u;
                g_assert_cmpint(sd_bus_message_append_basic(m, 'q', &q), >=, 0);
                break;
        }
        case 'b': {
                int b = !!o->u;
                g_assert_cmpint(sd_bus_message_append_basic(m, 'b', &b), >=, 0);
                break;
        }
        case 'h': {
                int fd = make_fd(o->fd);
                g_assert_cmpint(sd_bus_message_append_basic(m, 'h', &fd), >=, 0);
                close(fd);      /* sd-bus sent a duplicate */
                break;
        }
        case 'a':       /* "as": one string */
                g_assert_cmpint(sd_bus_message_append(m, "as", 1, "x"), >=, 0);
                break;
        default:        /* 'u', 'i', 't' and the like */
                g_assert_cmpint(sd_bus_message_append_basic(m, o->type[0], &o->u), >=, 0);
                break;
        }
        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
}

static void append_options(sd_bus_message *m, const Case *c) {
        bool port_given = false;

        g_assert_cmpint(sd_bus_message_open_container(m, 'a', "{sv}"), >=, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(c->opts) && c->opts[i].key; i++) {
                append_opt(m, &c->opts[i]);
                if (g_str_equal(c->opts[i].key, "port") || g_str_equal(c->opts[i].key, "socket"))
                        port_given = true;
        }
        /* Were the input let through, the listener would see it. */
        if (!port_given && !c->host) {
                Opt port = { "port", "q", .u = listen_port };
                append_opt(m, &port);
        }
        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);
}

static int call(const Case *c, sd_bus_error *error) {
        sd_bus_message *m = NULL, *reply = NULL;
        g_autofree char *attach_host = c->host ? g_strdup(c->host) : g_strdup_printf("127.0.0.1:%u", listen_port);
        const char *host = c->host ?: "127.0.0.1";
        const char *export_name = c->export_name ?: "disk";
        int r;

        g_assert_cmpint(sd_bus_message_new_method_call(bus, &m, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                       "org.nbdlink.NBD1.Manager", c->method), >=, 0);
        if (g_str_equal(c->method, "Attach"))
                g_assert_cmpint(sd_bus_message_append(m, "sssb", c->device, attach_host, export_name, 0), >=, 0);
        else if (g_str_equal(c->method, "Detach"))
                g_assert_cmpint(sd_bus_message_append(m, "s", c->device), >=, 0);
        else {
                if (g_str_equal(c->method, "AttachWithOptions"))
                        g_assert_cmpint(sd_bus_message_append(m, "sss", c->device ?: "", host, export_name), >=, 0);
                else if (g_str_equal(c->method, "Probe"))
                        g_assert_cmpint(sd_bus_message_append(m, "ss", host, export_name), >=, 0);
                else
                        g_assert_cmpint(sd_bus_message_append(m, "s", host), >=, 0);
                append_options(m, c);
        }
        r = sd_bus_call(bus, m, 10 * 1000 * 1000, error, &reply);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        return r;
}

/* Names of nodes in the fake /dev opened since the last call, "," separated. */
static char *drain_opens(void) {
        GString *s = g_string_new(NULL);
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n;

        if (inotify_fd < 0)
                return g_string_free(s, FALSE);
        while ((n = read(inotify_fd, buf, sizeof(buf))) > 0)
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *) p;

                        if (ev->len > 0 && (g_str_has_prefix(ev->name, "nbd") || g_str_has_prefix(ev->name, "sda")))
                                g_string_append_printf(s, "%s,", ev->name);
                        p += sizeof(*ev) + ev->len;
                }
        return g_string_free(s, FALSE);
}

static void check_cases(const Case *cases, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const Case *c = &cases[i];
                sd_bus_error error = SD_BUS_ERROR_NULL;
                g_autofree char *name = g_strconcat(NBDLINK_ERROR_PREFIX, c->error, NULL);
                g_autofree char *opened = NULL;
                g_autofree char *allowed = NULL;
                int r, fds = 0, peer;

                /* The test command runs as root; a case that cannot run
                 * is a failure, not a quiet pass. */
                if (c->needs_ns && !have_ns)
                        g_error("%s %s: needs a private mount namespace (run as root)", c->method, c->what);
                g_free(drain_opens());
                r = call(c, &error);
                g_test_message("%s %s: %s: %s", c->method, c->what, error.name, error.message);

                g_assert_cmpint(r, <, 0);
                g_assert_cmpstr(error.name, ==, name);
                g_assert_cmpint(-r, ==, sd_bus_error_get_errno(&error));
                if (!error.message || !strstr(error.message, c->message))
                        g_test_fail_printf("%s %s: message '%s' lacks '%s'", c->method, c->what, error.message, c->message);

                /* Nothing opened, nothing kept, nobody called. */
                for (int k = 0; k < 100 && (fds = daemon_fds()) != base_fds; k++)
                        g_usleep(10 * 1000);
                g_assert_cmpint(fds, ==, base_fds);
                peer = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (peer >= 0) {
                        close(peer);
                        g_test_fail_printf("%s %s: the daemon connected to the server", c->method, c->what);
                }
                opened = drain_opens();
                allowed = c->opened_node ? g_strconcat(c->opened_node, ",", NULL) : g_strdup("");
                if (!g_str_equal(opened, allowed))
                        g_test_fail_printf("%s %s: opened '%s' in /dev, expected '%s'", c->method, c->what, opened, allowed);
                sd_bus_error_free(&error);
        }
}

/* ---- the cases ------------------------------------------------------------- */

static char long_host[257], long_export[4098], long_device[300], long_name[257];

static void test_devices(void) {
        g_autofree char *tmp_link = g_build_filename(tmp_dir, "nbd0", NULL);
        const char *methods[] = { "Attach", "AttachWithOptions", "Detach" };
        const char *bad[] = {
                "/dev/sda", "sda", "/dev/nbd0/../sda", "/dev/nbd0/", "/dev//nbd0", "/dev/./nbd0",
                "nbd99999", "nbd10000", "nbd-1", "nbd+1", "nbd01", "nbd0x", " nbd0", "nbd0 ", "nbd0\n",
                "NBD0", "nbd", "/dev/nbd", "dev/nbd0", "../dev/nbd0", "/sys/block/nbd0", tmp_link, long_device,
        };

        for (size_t m = 0; m < G_N_ELEMENTS(methods); m++)
                for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                        Case c = {
                                .what = bad[i], .method = methods[m], .device = bad[i],
                                .error = E_INVAL, .message = "is not",
                        };
                        check_cases(&c, 1);
                }
}

/* With the fake /dev: names that are right, nodes that are not. */
static void test_nodes(void) {
        const Case cases[] = {
                { "nbd0 a symlink to /dev/sda", "Attach", "nbd0", .error = E_NODEV, .message = "is a symbolic link", .needs_ns = true },
                { "/dev/nbd0 a symlink to /dev/sda", "AttachWithOptions", "/dev/nbd0", .error = E_NODEV, .message = "is a symbolic link", .needs_ns = true },
                /* "": the first free device is nbd0, the symlink. */
                { "first free is a symlink", "Attach", "", .error = E_NODEV, .message = "is a symbolic link", .needs_ns = true },
                { "nbd1 a block device of another major", "Attach", "nbd1", .error = E_NODEV, .message = "not an nbd device (major", .needs_ns = true, .opened_node = "nbd1" },
                { "nbd2 a character device", "Attach", "nbd2", .error = E_NODEV, .message = "not a block device", .needs_ns = true, .opened_node = "nbd2" },
                { "nbd3 a regular file", "AttachWithOptions", "nbd3", .error = E_NODEV, .message = "not a block device", .needs_ns = true, .opened_node = "nbd3" },
                { "nbd4 missing from /dev", "Attach", "nbd4", .error = E_NODEV, .message = "no such device", .needs_ns = true },
                { "nbd5 missing from /sys", "Attach", "nbd5", .error = E_NODEV, .message = "no such device", .needs_ns = true },
                { "detach a symlinked nbd0", "Detach", "nbd0", .error = "NotAttached", .message = "is not attached", .needs_ns = true },
        };

        check_cases(cases, G_N_ELEMENTS(cases));
}

static void test_hosts_and_exports(void) {
        const char *methods[] = { "Attach", "AttachWithOptions", "ListExports", "Probe" };

        for (size_t m = 0; m < G_N_ELEMENTS(methods); m++) {
                const Case cases[] = {
                        { "empty host", methods[m], "", "", .error = E_INVAL, .message = "host is empty" },
                        { "host of 256 bytes", methods[m], "", long_host, .error = E_INVAL, .message = "host of 256 bytes" },
                        { "host with a control character", methods[m], "", "exa\x01mple", .error = E_INVAL, .message = "control characters" },
                        { "host with a newline", methods[m], "", "example\n", .error = E_INVAL, .message = "control characters" },
                        { "host with an escape", methods[m], "", "\x1b[2Jexample", .error = E_INVAL, .message = "control characters" },
                };
                check_cases(cases, G_N_ELEMENTS(cases));
        }

        const char *export_methods[] = { "Attach", "AttachWithOptions", "Probe" };
        for (size_t m = 0; m < G_N_ELEMENTS(export_methods); m++) {
                const Case c = { "export of 4097 bytes", export_methods[m], "", .export_name = long_export,
                                 .error = E_INVAL, .message = "export name of 4097 bytes" };
                check_cases(&c, 1);
        }
}

static void test_options(void) {
        const char *methods[] = { "AttachWithOptions", "ListExports", "Probe" };
        const char *attach_only[] = { "read-only", "connections", "block-size", "persist", "tls-ktls" };

        for (size_t m = 0; m < G_N_ELEMENTS(methods); m++) {
                const char *mt = methods[m];
                const Case cases[] = {
                        { "unknown option", mt, "", .opts = { { "colour", "s", "red" } }, .error = E_INVAL, .message = "unknown option 'colour'" },
                        { "unknown option, upper case", mt, "", .opts = { { "PORT", "q", .u = 1 } }, .error = E_INVAL, .message = "unknown option 'PORT'" },
                        { "unknown option, long", mt, "", .opts = { { long_name, "s", "x" } }, .error = E_INVAL, .message = "unknown option" },
                        { "port as u", mt, "", .opts = { { "port", "u", .u = 10809 } }, .error = E_INVAL, .message = "option 'port' must have type 'q'" },
                        { "port 0", mt, "", .opts = { { "port", "q", .u = 0 } }, .error = E_INVAL, .message = "option 'port' must be between" },
                        { "tls as b", mt, "", .opts = { { "tls", "b", .u = 1 } }, .error = E_INVAL, .message = "option 'tls' must have type 's'" },
                        { "tls maybe", mt, "", .opts = { { "tls", "s", "maybe" } }, .error = E_INVAL, .message = "option 'tls' must be" },
                        { "timeout as s", mt, "", .opts = { { "timeout", "s", "5" } }, .error = E_INVAL, .message = "option 'timeout' must have type 'u'" },
                        { "timeout as i", mt, "", .opts = { { "timeout", "i", .u = 5 } }, .error = E_INVAL, .message = "option 'timeout' must have type 'u'" },
                        { "timeout as as", mt, "", .opts = { { "timeout", "as" } }, .error = E_INVAL, .message = "option 'timeout' must have type 'u'" },
                        { "timeout 0", mt, "", .opts = { { "timeout", "u", .u = 0 } }, .error = E_INVAL, .message = "option 'timeout' must be between" },
                        { "timeout 3601", mt, "", .opts = { { "timeout", "u", .u = 3601 } }, .error = E_INVAL, .message = "option 'timeout' must be between" },
                        { "tls-hostname of 256 bytes", mt, "", .opts = { { "tls-hostname", "s", long_host } }, .error = E_INVAL, .message = "option 'tls-hostname' is longer than 255" },
                        { "tls-username of 256 bytes", mt, "", .opts = { { "tls-username", "s", long_host } }, .error = E_INVAL, .message = "option 'tls-username' is longer than 255" },
                        { "tls-hostname as u", mt, "", .opts = { { "tls-hostname", "u", .u = 1 } }, .error = E_INVAL, .message = "option 'tls-hostname' must have type 's'" },
                        { "tls-psk as a path", mt, "", .opts = { { "tls-psk", "s", "/etc/shadow" } }, .error = E_INVAL, .message = "option 'tls-psk' must have type 'h'" },
                        { "tls-ca as a path", mt, "", .opts = { { "tls-ca", "s", "/etc/ssl/certs" } }, .error = E_INVAL, .message = "option 'tls-ca' must have type 'h'" },
                        { "tls-psk a directory", mt, "", .opts = { { "tls-psk", "h", .fd = FD_DIR } }, .error = E_INVAL, .message = "option 'tls-psk' must be a regular file" },
                        { "tls-key a pipe", mt, "", .opts = { { "tls-key", "h", .fd = FD_PIPE } }, .error = E_INVAL, .message = "option 'tls-key' must be a regular file" },
                        { "tls-cert of 2 MiB", mt, "", .opts = { { "tls-cert", "h", .fd = FD_BIG } }, .error = E_INVAL, .message = "larger than" },
                        { "socket as a path", mt, "", .opts = { { "socket", "s", "/run/nbd.sock" } }, .error = E_INVAL, .message = "option 'socket' must have type 'h'" },
                        { "socket a pipe", mt, "", "", .opts = { { "socket", "h", .fd = FD_PIPE } }, .error = E_INVAL, .message = "option 'socket' is not a socket" },
                        { "socket a PSK file", mt, "", "", .opts = { { "socket", "h", .fd = FD_PSK } }, .error = E_INVAL, .message = "option 'socket' is not a socket" },
                        { "socket not connected", mt, "", "", .opts = { { "socket", "h", .fd = FD_SOCK_UNCONNECTED } }, .error = E_INVAL, .message = "option 'socket' is not connected" },
                        { "socket UDP", mt, "", "", .opts = { { "socket", "h", .fd = FD_SOCK_UDP } }, .error = E_INVAL, .message = "option 'socket' is not a stream socket" },
                        { "socket and a host", mt, "", "127.0.0.1", .opts = { { "socket", "h", .fd = FD_SOCK_CONNECTED } }, .error = E_INVAL, .message = "not both" },
                        { "tls-psk twice", mt, "", .opts = { { "tls-psk", "h", .fd = FD_PSK }, { "tls-psk", "h", .fd = FD_PSK } }, .error = E_INVAL, .message = "option 'tls-psk' is given more than once" },
                        { "timeout twice", mt, "", .opts = { { "timeout", "u", .u = 5 }, { "timeout", "u", .u = 6 } }, .error = E_INVAL, .message = "option 'timeout' is given more than once" },
                        { "good option then unknown", mt, "", .opts = { { "tls-psk", "h", .fd = FD_PSK }, { "colour", "s", "red" } }, .error = E_INVAL, .message = "unknown option 'colour'" },
                        { "good option then wrong type", mt, "", .opts = { { "tls", "s", "require" }, { "tls-psk", "s", "x" } }, .error = E_INVAL, .message = "option 'tls-psk' must have type 'h'" },
                };
                check_cases(cases, G_N_ELEMENTS(cases));
        }

        /* The attach-only keys, where they do not belong. */
        for (size_t m = 1; m < G_N_ELEMENTS(methods); m++)
                for (size_t k = 0; k < G_N_ELEMENTS(attach_only); k++) {
                        const Case c = { attach_only[k], methods[m], "", .opts = { { attach_only[k], "b", .u = 1 } },
                                         .error = E_INVAL, .message = "only valid for attaching" };
                        check_cases(&c, 1);
                }

        /* And with the wrong types or values where they do. */
        const Case attach[] = {
                { "read-only as s", "AttachWithOptions", "", .opts = { { "read-only", "s", "yes" } }, .error = E_INVAL, .message = "option 'read-only' must have type 'b'" },
                { "connections as q", "AttachWithOptions", "", .opts = { { "connections", "q", .u = 2 } }, .error = E_INVAL, .message = "option 'connections' must have type 'u'" },
                { "connections 0", "AttachWithOptions", "", .opts = { { "connections", "u", .u = 0 } }, .error = E_INVAL, .message = "option 'connections' must be between" },
                { "connections 17", "AttachWithOptions", "", .opts = { { "connections", "u", .u = 17 } }, .error = E_INVAL, .message = "option 'connections' must be between" },
                { "block-size 1000", "AttachWithOptions", "", .opts = { { "block-size", "u", .u = 1000 } }, .error = E_INVAL, .message = "option 'block-size' must be" },
                { "block-size 8192", "AttachWithOptions", "", .opts = { { "block-size", "u", .u = 8192 } }, .error = E_INVAL, .message = "option 'block-size' must be" },
                { "block-size 256", "AttachWithOptions", "", .opts = { { "block-size", "u", .u = 256 } }, .error = E_INVAL, .message = "option 'block-size' must be" },
                { "persist as u", "AttachWithOptions", "", .opts = { { "persist", "u", .u = 1 } }, .error = E_INVAL, .message = "option 'persist' must have type 'b'" },
                { "kernel-interface unknown", "AttachWithOptions", "", .opts = { { "kernel-interface", "s", "sysfs" } }, .error = E_INVAL, .message = "option 'kernel-interface' must be 'auto', 'netlink' or 'ioctl', not 'sysfs'" },
                { "device is AttachURI's", "AttachWithOptions", "", .opts = { { "device", "s", "nbd1" } }, .error = E_INVAL, .message = "option 'device' is only valid for AttachURI" },
                { "persist with ioctl", "AttachWithOptions", "", "127.0.0.1", .opts = { { "persist", "b", .u = 1 }, { "kernel-interface", "s", "ioctl" } }, .error = E_INVAL, .message = "option 'persist' needs the netlink interface" },
        };
        check_cases(attach, G_N_ELEMENTS(attach));
}

/* ---- the fixture ----------------------------------------------------------- */

static void mknod_or_die(const char *path, mode_t mode, dev_t dev) {
        if (mknod(path, mode, dev) < 0)
                g_error("mknod %s: %s", path, g_strerror(errno));
}

/* A private mount namespace, entered before any thread exists, in which
 * /dev, /sys/module and /sys/block are small fakes: the nbd module looks
 * loaded, nbd0..nbd4 look free, and /dev holds the traps. The daemon
 * started afterwards inherits it; the host's own /dev is never touched. */
static bool enter_fake_namespace(void) {
        struct stat st;
        dev_t disk = makedev(7, 0);

        if (getuid() != 0 || unshare(CLONE_NEWNS) < 0)
                return false;
        g_assert_cmpint(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), ==, 0);

        /* A real non-nbd disk's numbers, if there is one to copy. */
        if (stat("/dev/loop0", &st) == 0 && S_ISBLK(st.st_mode))
                disk = st.st_rdev;

        g_assert_cmpint(mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755"), ==, 0);
        mknod_or_die("/dev/null", S_IFCHR | 0666, makedev(1, 3));
        mknod_or_die("/dev/zero", S_IFCHR | 0666, makedev(1, 5));
        mknod_or_die("/dev/random", S_IFCHR | 0666, makedev(1, 8));
        mknod_or_die("/dev/urandom", S_IFCHR | 0666, makedev(1, 9));
        g_assert_cmpint(symlink("/proc/self/fd", "/dev/fd"), ==, 0);
        mknod_or_die("/dev/sda", S_IFBLK | 0600, disk);
        g_assert_cmpint(symlink("/dev/sda", "/dev/nbd0"), ==, 0);
        mknod_or_die("/dev/nbd1", S_IFBLK | 0600, disk);
        mknod_or_die("/dev/nbd2", S_IFCHR | 0600, makedev(1, 3));
        g_assert_true(g_file_set_contents("/dev/nbd3", "not a device", -1, NULL));

        g_assert_cmpint(mount("tmpfs", "/sys/module", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755"), ==, 0);
        g_assert_cmpint(mkdir("/sys/module/nbd", 0755), ==, 0);
        g_assert_cmpint(mount("tmpfs", "/sys/block", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755"), ==, 0);
        for (int i = 0; i <= 4; i++) {
                g_autofree char *p = g_strdup_printf("/sys/block/nbd%d", i);
                g_assert_cmpint(mkdir(p, 0755), ==, 0);
        }

        inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        g_assert_cmpint(inotify_fd, >=, 0);
        g_assert_cmpint(inotify_add_watch(inotify_fd, "/dev", IN_OPEN), >=, 0);
        return true;
}

int main(int argc, char *argv[]) {
        g_autofree char *link = NULL;
        GError *error = NULL;
        int r;

        /* First: unshare(CLONE_NEWNS) needs a process without threads. */
        have_ns = enter_fake_namespace();

        g_test_init(&argc, &argv, NULL);
        memset(long_host, 'h', 256);
        memset(long_export, 'e', 4097);
        memset(long_device, 'n', sizeof(long_device) - 1);
        memcpy(long_device, "/dev/nbd", 8);
        memset(long_name, 'k', 256);

        tmp_dir = g_dir_make_tmp("nbdlink-input-XXXXXX", &error);
        g_assert_no_error(error);
        /* A symlink named like an nbd device, to a disk that is not one. */
        link = g_build_filename(tmp_dir, "nbd0", NULL);
        g_assert_cmpint(symlink("/dev/sda", link), ==, 0);
        if (inotify_fd >= 0)
                g_assert_cmpint(inotify_add_watch(inotify_fd, tmp_dir, IN_OPEN), >=, 0);

        g_test_add_func("/bus-input/devices", test_devices);
        g_test_add_func("/bus-input/nodes", test_nodes);
        g_test_add_func("/bus-input/hosts-and-exports", test_hosts_and_exports);
        g_test_add_func("/bus-input/options", test_options);

        /* A suite of its own, created last, so that it runs last: the
         * daemon that took all that exits cleanly on SIGTERM (under ASan,
         * its leak check is part of that exit status). */
        g_test_add_func("/daemon-exit/sigterm", test_daemon_sigterm_exits_0);

        listen_fd = loopback_listen(SOCK_NONBLOCK, 16, &listen_port);
        start_all();
        g_assert_cmpint(nbdlink_bus_error_register(), ==, 0);
        bus = sd_connect();
        /* The first call sets up what the daemon keeps (polkit-free for
         * root, but sd-bus tracking and the like): make one before the
         * baseline. */
        {
                const Case warm = { "warm-up", "Detach", "nbd9", .error = "NotAttached", .message = "is not attached" };
                base_fds = -1;
                sd_bus_error e = SD_BUS_ERROR_NULL;
                (void) call(&warm, &e);
                sd_bus_error_free(&e);
                g_usleep(50 * 1000);
                base_fds = daemon_fds();
        }

        r = g_test_run();

        sd_bus_flush_close_unref(bus);
        stop_all();
        {
                g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp_dir);
                (void) !system(cmd);
        }
        g_free(tmp_dir);
        return r;
}
