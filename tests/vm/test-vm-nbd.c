/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vm suite's guest side: runs as root inside the QEMU guest (real nbd.ko),
 * first proves the machinery with nbdkit and Debian's nbd-client, then drives
 * the real nbdlinkd over the guest's private system bus, moving checksummed
 * data through /dev/nbdN, and prints attach latency and read throughput of
 * both side by side. */

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guest-util.h"
#include "loopback.h"

#define DATA_BYTES   (32u * MiB)    /* checksummed round trip */
#define BENCH_BYTES  (256u * MiB)   /* sequential read figure */
#define LATENCY_RUNS 3
#define EXPORT       "disk"

typedef struct {
        GSubprocess *proc;
        guint16 port;
} Server;

typedef struct {
        double attach_ms;   /* median of LATENCY_RUNS */
        double read_mbps;
        gboolean done;
} Figures;

static GDBusConnection *bus;
static GSubprocess *daemon_proc;
static const char *daemon_path;
static Server main_server;       /* nbdkit memory 1G, export "disk" only */
static Figures fig_nbd_client, fig_nbdlink_busctl, fig_nbdlink_gdbus;
static double busctl_ms;         /* busctl's own start-up, for reference */

/* ---- small helpers ---------------------------------------------------- */

/* nbdkit on loopback, serving one memory disk under the export name "disk"
 * only (so that other names are refused as unknown). */
static void server_start(Server *s, const char *size, gboolean read_only) {
        g_autofree char *port = NULL;

        s->port = loopback_free_port();
        port = g_strdup_printf("%u", s->port);
        const char *argv[] = {
                "nbdkit", "--foreground", "--exit-with-parent",
                "--ipaddr", "127.0.0.1", "--port", port,
                read_only ? "--readonly" : "--threads=16",
                "--filter=exportname", "memory", size,
                "exportname=" EXPORT, "exportname-strict=true", NULL
        };
        s->proc = nbdkit_start_listening(argv, "127.0.0.1", s->port, 20000);
}

static char *server_host(const Server *s) {
        return g_strdup_printf("127.0.0.1:%u", s->port);
}

/* Random data with O_DIRECT at offset 0; returns its SHA-256. */
static char *write_random(const char *dev, size_t bytes) {
        return write_random_sum(dev, bytes, FALSE, NULL);
}

static double median(double *v, int n) {
        for (int i = 1; i < n; i++)
                for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
                        double t = v[j];
                        v[j] = v[j - 1];
                        v[j - 1] = t;
                }
        return v[n / 2];
}

/* ---- stock tools ------------------------------------------------------ */

static void assert_read_only(const char *dev);

static char *free_nbd(void) {
        for (int i = 15; i >= 0; i--) {
                g_autofree char *name = g_strdup_printf("nbd%d", i);
                if (!device_running(name))
                        return g_strdup_printf("/dev/%s", name);
        }
        g_error("no free nbd device");
}

static double nbd_client_attach(const char *dev, const Server *s, gboolean read_only) {
        g_autofree char *port = g_strdup_printf("%u", s->port);
        const char *argv[] = { "nbd-client", "-N", EXPORT, "127.0.0.1", port, dev,
                               read_only ? "-readonly" : NULL, NULL };
        double t0 = now_ms();

        g_free(run_capture(argv));
        wait_block0(dev);
        return now_ms() - t0;
}

static void nbd_client_detach(const char *dev) {
        const char *argv[] = { "nbd-client", "-d", dev, NULL };

        g_free(run_capture(argv));
        wait_device_stopped(dev_name(dev));
}

static void test_stock_nbd_client(void) {
        g_autofree char *dev = free_nbd();
        g_autofree char *wrote = NULL, *read = NULL;
        double lat[LATENCY_RUNS];

        /* Round trip: write, detach, attach again, read back. */
        lat[0] = nbd_client_attach(dev, &main_server, FALSE);
        wrote = write_random(dev, DATA_BYTES);
        nbd_client_detach(dev);
        lat[1] = nbd_client_attach(dev, &main_server, FALSE);
        read = read_direct_sum(dev, DATA_BYTES, NULL);
        g_assert_cmpstr(read, ==, wrote);
        fig_nbd_client.read_mbps = read_direct_mbps(dev, BENCH_BYTES);
        nbd_client_detach(dev);

        lat[2] = nbd_client_attach(dev, &main_server, FALSE);
        nbd_client_detach(dev);

        /* The kernel's answer to writes on a read-only nbd device, as the
         * nbdlink cases expect it. */
        nbd_client_attach(dev, &main_server, TRUE);
        assert_read_only(dev);
        nbd_client_detach(dev);

        fig_nbd_client.attach_ms = median(lat, LATENCY_RUNS);
        fig_nbd_client.done = TRUE;
        g_test_message("nbd-client: attach latency %.0f ms (median of %d), sequential O_DIRECT read %.1f MB/s",
                       fig_nbd_client.attach_ms, LATENCY_RUNS, fig_nbd_client.read_mbps);
}

/* ---- nbdlinkd over the bus -------------------------------------------- */

static gboolean have_daemon(void) {
        if (!daemon_path)
                g_error("NBDLINKD does not name the nbdlinkd to test");
        return TRUE;
}

static gboolean daemon_ready(void) {
        if (!have_daemon())
                return FALSE;
        if (!daemon_proc)
                daemon_proc = daemon_start_on_bus(bus, daemon_path);
        return TRUE;
}

/* Calls Attach; on success returns the device path and stores the object
 * path, on failure returns NULL and the error. */
static char *attach(const char *device, const Server *s, const char *export,
                    GVariant *options, char **ret_object, GError **error) {
        g_autofree char *host = server_host(s);

        return attach_call(bus, device, host, export, options, NULL, ret_object, error);
}

static char *attach_ok(const char *device, const Server *s, GVariant *options) {
        g_autoptr(GError) error = NULL;
        char *dev = attach(device, s, EXPORT, options, NULL, &error);

        g_assert_no_error(error);
        g_assert_true(device_running(dev_name(dev)));
        return dev;
}

static void detach_ok(const char *dev) {
        detach_and_wait(bus, dev);
}

static void test_nbdlink_roundtrip(void) {
        g_autofree char *dev = NULL, *dev2 = NULL, *wrote = NULL, *read = NULL;

        g_assert_true(daemon_ready());
        dev = attach_ok("", &main_server, NULL);
        wrote = write_random(dev, DATA_BYTES);
        detach_ok(dev);
        g_assert_false(device_running(dev_name(dev)));

        /* The same device by name this time. */
        dev2 = attach_ok(dev, &main_server, NULL);
        g_assert_cmpstr(dev2, ==, dev);
        read = read_direct_sum(dev2, DATA_BYTES, NULL);
        g_assert_cmpstr(read, ==, wrote);
        detach_ok(dev2);
}

/* A write must be refused, at open or at write time, and the kernel must
 * report the device read-only. */
static void assert_read_only(const char *dev) {
        g_autofree uint8_t *buf = alloc_aligned(4096);
        int ro = 0, fd;

        fd = open(dev, O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(ioctl(fd, BLKROGET, &ro), ==, 0);
        close(fd);
        g_assert_cmpint(ro, ==, 1);

        memset(buf, 0xa5, 4096);
        fd = open(dev, O_WRONLY | O_DIRECT | O_CLOEXEC);
        if (fd < 0) {
                g_test_message("opening %s for writing: %s", dev, g_strerror(errno));
                g_assert_true(errno == EROFS || errno == EPERM || errno == EACCES);
                return;
        }
        ssize_t n = pwrite(fd, buf, 4096, 0);
        int e = errno;
        close(fd);
        g_test_message("writing to %s: %s", dev, n < 0 ? g_strerror(e) : "succeeded");
        g_assert_cmpint(n, <, 0);
        g_assert_true(e == EROFS || e == EPERM);
}

static void test_nbdlink_read_only(void) {
        Server ro = { 0 };
        g_autofree char *dev = NULL, *dev2 = NULL;
        GVariantBuilder b;

        g_assert_true(daemon_ready());

        /* The server says read-only. */
        server_start(&ro, "16M", TRUE);
        dev = attach_ok("", &ro, NULL);
        assert_read_only(dev);
        detach_ok(dev);
        child_kill(&ro.proc);

        /* The caller asks for read-only on a writable export. */
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "read-only", g_variant_new_boolean(TRUE));
        dev2 = attach_ok("", &main_server, g_variant_builder_end(&b));
        assert_read_only(dev2);
        detach_ok(dev2);
}

static void test_nbdlink_two_devices(void) {
        Server other = { 0 };
        g_autofree char *a = NULL, *b = NULL, *wa = NULL, *wb = NULL, *ra = NULL, *rb = NULL;

        g_assert_true(daemon_ready());
        server_start(&other, "64M", FALSE);
        a = attach_ok("", &main_server, NULL);
        b = attach_ok("", &other, NULL);
        g_assert_cmpstr(a, !=, b);
        wa = write_random(a, 4 * MiB);
        wb = write_random(b, 4 * MiB);
        g_assert_cmpstr(wa, !=, wb);
        ra = read_direct_sum(a, 4 * MiB, NULL);
        rb = read_direct_sum(b, 4 * MiB, NULL);
        g_assert_cmpstr(ra, ==, wa);
        g_assert_cmpstr(rb, ==, wb);
        detach_ok(a);
        detach_ok(b);
        child_kill(&other.proc);
}

/* Four connections, negotiated at once, all handed to the kernel: the data
 * goes through whichever the kernel picks and must come back intact. */
static void test_nbdlink_four_connections(void) {
        g_autofree char *dev = NULL, *object = NULL, *wrote = NULL, *read = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) conns = NULL;
        GVariantBuilder b;

        g_assert_true(daemon_ready());
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "connections", g_variant_new_uint32(4));
        dev = attach("", &main_server, EXPORT, g_variant_builder_end(&b), &object, &error);
        g_assert_no_error(error);
        conns = g_dbus_connection_call_sync(bus, BUS_NAME, object, "org.freedesktop.DBus.Properties", "Get",
                                            g_variant_new("(ss)", DEVICE_IFACE, "Connections"),
                                            G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        {
                g_autoptr(GVariant) v = NULL;
                g_variant_get(conns, "(v)", &v);
                g_assert_cmpuint(g_variant_get_uint32(v), ==, 4);
        }
        wrote = write_random(dev, 8 * MiB);
        read = read_direct_sum(dev, 8 * MiB, NULL);
        g_assert_cmpstr(read, ==, wrote);
        detach_ok(dev);
}

/* A server without NBD_FLAG_CAN_MULTI_CONN gets one connection only. */
static void test_nbdlink_multi_conn_refused(void) {
        Server single = { 0 };
        g_autofree char *port = NULL, *dev = NULL;
        g_autoptr(GError) error = NULL;
        GVariantBuilder b;

        g_assert_true(daemon_ready());
        single.port = loopback_free_port();
        port = g_strdup_printf("%u", single.port);
        const char *argv[] = {
                "nbdkit", "--foreground", "--exit-with-parent", "--ipaddr", "127.0.0.1", "--port", port,
                "--filter=multi-conn", "--filter=exportname", "memory", "16M",
                "multi-conn-mode=disable", "exportname=" EXPORT, "exportname-strict=true", NULL
        };
        single.proc = nbdkit_start_listening(argv, "127.0.0.1", single.port, 20000);

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "connections", g_variant_new_uint32(2));
        dev = attach("", &single, EXPORT, g_variant_builder_end(&b), NULL, &error);
        g_assert_null(dev);
        assert_bus_error(error, ERROR_PREFIX "InvalidArgument", "NBD_FLAG_CAN_MULTI_CONN");
        child_kill(&single.proc);
}

static void test_nbdlink_export_not_found(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *dev = NULL;

        g_assert_true(daemon_ready());
        dev = attach("", &main_server, "no-such-export", NULL, NULL, &error);
        g_assert_null(dev);
        assert_bus_error(error, ERROR_PREFIX "ExportNotFound", "no-such-export");
}

static void test_nbdlink_device_busy(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *dev = NULL, *dev2 = NULL;

        g_assert_true(daemon_ready());
        dev = attach_ok("", &main_server, NULL);
        dev2 = attach(dev, &main_server, EXPORT, NULL, NULL, &error);
        g_assert_null(dev2);
        assert_bus_error(error, ERROR_PREFIX "DeviceBusy", dev_name(dev));
        /* The first attach is untouched by the refused one. */
        wait_block0(dev);
        detach_ok(dev);
}

/* Waits up to timeout_ms for fd to become readable. */
static gboolean wait_readable(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        return poll(&p, 1, timeout_ms) == 1;
}

static gboolean device_object_exists(const char *name) {
        g_autofree char *path = g_strconcat(MANAGER_PATH "/devices/", name, NULL);
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(bus, BUS_NAME, path,
                        "org.freedesktop.DBus.Properties", "GetAll", g_variant_new("(s)", "org.nbdlink.NBD1.Device"),
                        NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
        return r != NULL;
}

/* A caller that leaves the bus while its Attach is in the handshake cancels
 * it: the connection to the server is closed long before the handshake
 * deadline, no object is left and the device is free again. Meanwhile the
 * same device is busy for others, and other devices attach in parallel. */
static void test_nbdlink_caller_leaves(void) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) caller = NULL;
        g_autofree char *address = NULL, *host = NULL, *other = NULL, *busy = NULL, *again = NULL;
        const char *dev = "/dev/nbd5";
        char byte;
        guint16 port;
        int listener, peer;
        double t0;

        g_assert_true(daemon_ready());
        /* Accepts (through the kernel's backlog) and never says a word: the
         * attach stays in the handshake until its deadline. */
        listener = loopback_listen(0, 8, &port);
        host = g_strdup_printf("127.0.0.1:%u", port);

        address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
        g_assert_no_error(error);
        caller = g_dbus_connection_new_for_address_sync(address,
                        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                        NULL, NULL, &error);
        g_assert_no_error(error);
        /* Default timeout 30 s: the handshake would wait that long. */
        g_dbus_connection_call(caller, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Attach",
                               g_variant_new("(sssb)", dev, host, EXPORT, FALSE), G_VARIANT_TYPE("(os)"),
                               G_DBUS_CALL_FLAGS_NONE, 60000, NULL, NULL, NULL);
        g_dbus_connection_flush_sync(caller, NULL, &error);
        g_assert_no_error(error);

        g_assert_true(wait_readable(listener, 20000));
        peer = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        g_assert_cmpint(peer, >=, 0);

        /* In progress: the device is taken, others are not held up. */
        busy = attach(dev, &main_server, EXPORT, NULL, NULL, &error);
        g_assert_null(busy);
        assert_bus_error(error, ERROR_PREFIX "DeviceBusy", "nbd5");
        g_clear_error(&error);
        other = attach_ok("", &main_server, NULL);
        g_assert_cmpstr(other, !=, dev);
        wait_block0(other);

        t0 = now_ms();
        g_dbus_connection_close_sync(caller, NULL, &error);
        g_assert_no_error(error);
        /* The daemon hangs up on the server: EOF, well before 30 s. */
        g_assert_true(wait_readable(peer, 10000));
        g_assert_cmpint(read(peer, &byte, 1), <=, 0);
        g_test_message("server hung up on %.0f ms after the caller left", now_ms() - t0);
        /* The object of an attach in progress goes once the worker has
         * wound down, just after the socket closed. */
        while (device_object_exists("nbd5")) {
                g_assert_cmpfloat(now_ms() - t0, <, 10000);
                g_usleep(10 * 1000);
        }
        g_test_message("object gone %.0f ms after the caller left", now_ms() - t0);
        g_assert_false(device_running("nbd5"));

        /* Free again. */
        again = attach_ok(dev, &main_server, NULL);
        g_assert_cmpstr(again, ==, dev);
        detach_ok(again);
        detach_ok(other);
        close(peer);
        close(listener);
}

static void test_nbdlink_server_killed(void) {
        Server doomed = { 0 };
        g_autoptr(GError) error = NULL;
        g_autofree char *object = NULL, *dev = NULL;
        DeviceWatch w;

        g_assert_true(daemon_ready());
        server_start(&doomed, "64M", FALSE);
        dev = attach("", &doomed, EXPORT, NULL, &object, &error);
        g_assert_no_error(error);
        wait_block0(dev);

        device_watch_start(&w, bus, object);
        child_kill(&doomed.proc);
        g_assert_true(device_watch_wait_gone(&w, 60000));
        g_assert_true(g_str_has_prefix(w.error_name, ERROR_PREFIX));
        device_watch_done(&w);
        wait_device_stopped(dev_name(dev));
}

static double nbdlink_busctl_attach(char **ret_dev) {
        g_autofree char *host = server_host(&main_server);
        const char *argv[] = { "busctl", "--system", "call", BUS_NAME, MANAGER_PATH,
                               MANAGER_IFACE, "Attach", "sssb", "", host, EXPORT, "false", NULL };
        double t0 = now_ms();
        g_autofree char *out = run_capture(argv);
        g_auto(GStrv) words = g_strsplit_set(g_strstrip(out), " \"", -1);
        char *dev = NULL;

        /* busctl prints: os "/org/nbdlink/NBD1/devices/nbdN" "[/dev/]nbdN" */
        for (char **w = words; *w; w++)
                if (g_str_has_prefix(*w, "/dev/nbd"))
                        dev = g_strdup(*w);
                else if (g_str_has_prefix(*w, "nbd"))
                        dev = g_strconcat("/dev/", *w, NULL);
        g_assert_nonnull(dev);
        wait_block0(dev);
        *ret_dev = dev;
        return now_ms() - t0;
}

static double nbdlink_gdbus_attach(char **ret_dev) {
        double t0 = now_ms();
        char *dev = attach_ok("", &main_server, NULL);

        wait_block0(dev);
        *ret_dev = dev;
        return now_ms() - t0;
}

/* What starting busctl costs by itself in this guest: a call that does not
 * involve nbdlinkd at all. */
static double busctl_baseline(void) {
        const char *argv[] = { "busctl", "--system", "call", "org.freedesktop.DBus",
                               "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId", NULL };
        double t0 = now_ms();

        g_free(run_capture(argv));
        return now_ms() - t0;
}

static void test_nbdlink_figures(void) {
        double lb[LATENCY_RUNS], lg[LATENCY_RUNS], base[LATENCY_RUNS];

        g_assert_true(daemon_ready());
        for (int i = 0; i < LATENCY_RUNS; i++)
                base[i] = busctl_baseline();
        busctl_ms = median(base, LATENCY_RUNS);
        for (int i = 0; i < LATENCY_RUNS; i++) {
                g_autofree char *d1 = NULL, *d2 = NULL;

                lb[i] = nbdlink_busctl_attach(&d1);
                if (i == 0)
                        fig_nbdlink_busctl.read_mbps = read_direct_mbps(d1, BENCH_BYTES);
                detach_ok(d1);
                lg[i] = nbdlink_gdbus_attach(&d2);
                detach_ok(d2);
        }
        fig_nbdlink_busctl.attach_ms = median(lb, LATENCY_RUNS);
        fig_nbdlink_gdbus.attach_ms = median(lg, LATENCY_RUNS);
        fig_nbdlink_busctl.done = TRUE;
}

/* AttachURI: the export named in an NBD URI, attached and moving data. */
static void test_nbdlink_attach_uri(void) {
        g_autofree char *uri = g_strdup_printf("nbd://127.0.0.1:%u/" EXPORT, main_server.port);
        g_autofree char *wrote = NULL, *read = NULL, *dev = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        const char *object, *name;

        g_assert_true(daemon_ready());
        reply = g_dbus_connection_call_sync(bus, "org.nbdlink.NBD1", "/org/nbdlink/NBD1", "org.nbdlink.NBD1.Manager",
                                            "AttachURI", g_variant_new("(sa{sv})", uri, NULL),
                                            G_VARIANT_TYPE("(os)"), G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(&o&s)", &object, &name);
        dev = g_strconcat("/dev/", name, NULL);
        g_test_message("AttachURI(%s): %s at %s", uri, dev, object);
        g_assert_true(device_running(dev_name(dev)));
        wrote = write_random(dev, 4 * MiB);
        read = read_direct_sum(dev, 4 * MiB, NULL);
        g_assert_cmpstr(read, ==, wrote);
        detach_ok(dev);
}

/* SIGTERM with a device attached the default way: the kernel runs it
 * through netlink, so the daemon leaves it attached and exits 0, and the
 * next daemon finds it again, data and all. */
static void test_nbdlink_sigterm(void) {
        g_autofree char *dev = NULL, *wrote = NULL, *read = NULL, *object = NULL;
        g_autoptr(GVariant) state = NULL;

        g_assert_true(daemon_ready());
        dev = attach_ok("", &main_server, NULL);
        wait_block0(dev);
        wrote = write_random_sum(dev, 4 * MiB, TRUE, NULL);
        g_subprocess_send_signal(daemon_proc, SIGTERM);
        child_wait_exit_0(&daemon_proc);
        g_assert_true(device_running(dev_name(dev)));
        g_test_message("%s: still attached after nbdlinkd exited", dev);

        g_assert_true(daemon_ready());
        object = g_strconcat("/org/nbdlink/NBD1/devices/", dev_name(dev), NULL);
        state = g_dbus_connection_call_sync(bus, "org.nbdlink.NBD1", object, "org.freedesktop.DBus.Properties",
                                            "Get", g_variant_new("(ss)", "org.nbdlink.NBD1.Device", "State"),
                                            NULL, G_DBUS_CALL_FLAGS_NONE, 30000, NULL, NULL);
        g_assert_nonnull(state);
        read = read_direct_sum(dev, 4 * MiB, NULL);
        g_assert_cmpstr(read, ==, wrote);
        g_test_message("%s: found again by the next nbdlinkd, its data intact", dev);
        detach_ok(dev);
}

/* The same with the ioctl sequence asked for: the device is the daemon's
 * own, so SIGTERM detaches it cleanly (the page cache flushed to the
 * server) before the daemon exits 0. */
static void test_nbdlink_sigterm_ioctl(void) {
        g_autofree char *dev = NULL, *dev2 = NULL, *wrote = NULL, *read = NULL;
        GVariantBuilder b;

        g_assert_true(daemon_ready());
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "kernel-interface", g_variant_new_string("ioctl"));
        dev = attach_ok("", &main_server, g_variant_builder_end(&b));
        wait_block0(dev);
        /* Written through the page cache and never synced by the writer:
         * the daemon's clean detach has to get it to the server. */
        wrote = write_random_sum(dev, 4 * MiB, TRUE, NULL);
        g_subprocess_send_signal(daemon_proc, SIGTERM);
        child_wait_exit_0(&daemon_proc);
        wait_device_stopped(dev_name(dev));

        /* A new daemon, the same export: the data is there. */
        g_assert_true(daemon_ready());
        dev2 = attach_ok(dev, &main_server, NULL);
        read = read_direct_sum(dev2, 4 * MiB, NULL);
        g_assert_cmpstr(read, ==, wrote);
        detach_ok(dev2);
}

static void print_figures(void) {
        if (fig_nbd_client.done)
                g_print("# attach latency nbd-client %.0f ms\n", fig_nbd_client.attach_ms);
        if (fig_nbdlink_busctl.done) {
                g_print("# attach latency nbdlink (busctl call) %.0f ms, ratio %.2f\n",
                        fig_nbdlink_busctl.attach_ms,
                        fig_nbdlink_busctl.attach_ms / fig_nbd_client.attach_ms);
                g_print("# attach latency nbdlink (in-process D-Bus call) %.0f ms, ratio %.2f\n",
                        fig_nbdlink_gdbus.attach_ms,
                        fig_nbdlink_gdbus.attach_ms / fig_nbd_client.attach_ms);
                g_print("# busctl alone (GetId on the bus, no nbdlinkd) %.0f ms\n", busctl_ms);
        }
        if (fig_nbd_client.done)
                g_print("# sequential O_DIRECT read nbd-client %.1f MB/s\n", fig_nbd_client.read_mbps);
        if (fig_nbdlink_busctl.done)
                g_print("# sequential O_DIRECT read nbdlink %.1f MB/s, ratio %.2f\n",
                        fig_nbdlink_busctl.read_mbps,
                        fig_nbdlink_busctl.read_mbps / fig_nbd_client.read_mbps);
}

int main(int argc, char **argv) {
        int r;

        g_test_init(&argc, &argv, NULL);

        guest_require_root();
        daemon_path = g_getenv("NBDLINKD");
        if (daemon_path && !*daemon_path)
                daemon_path = NULL;

        bus = guest_system_bus();
        server_start(&main_server, "1G", FALSE);

        g_test_add_func("/vm/stock/nbd-client", test_stock_nbd_client);
        g_test_add_func("/vm/nbdlink/roundtrip", test_nbdlink_roundtrip);
        g_test_add_func("/vm/nbdlink/read-only", test_nbdlink_read_only);
        g_test_add_func("/vm/nbdlink/two-devices", test_nbdlink_two_devices);
        g_test_add_func("/vm/nbdlink/four-connections", test_nbdlink_four_connections);
        g_test_add_func("/vm/nbdlink/multi-conn-refused", test_nbdlink_multi_conn_refused);
        g_test_add_func("/vm/nbdlink/export-not-found", test_nbdlink_export_not_found);
        g_test_add_func("/vm/nbdlink/device-busy", test_nbdlink_device_busy);
        g_test_add_func("/vm/nbdlink/caller-leaves", test_nbdlink_caller_leaves);
        g_test_add_func("/vm/nbdlink/server-killed", test_nbdlink_server_killed);
        g_test_add_func("/vm/nbdlink/figures", test_nbdlink_figures);
        g_test_add_func("/vm/nbdlink/attach-uri", test_nbdlink_attach_uri);
        g_test_add_func("/vm/nbdlink/sigterm", test_nbdlink_sigterm);
        g_test_add_func("/vm/nbdlink/sigterm-ioctl", test_nbdlink_sigterm_ioctl);
        r = g_test_run();

        print_figures();
        child_kill(&daemon_proc);
        child_kill(&main_server.proc);
        g_object_unref(bus);
        return r;
}
