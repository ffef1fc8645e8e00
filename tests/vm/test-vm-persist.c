/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vm suite's persistent-device cases: runs as root inside the QEMU guest
 * against the real nbdlinkd and nbdkit, breaks the server, the network or
 * the daemon under a device attached with persist=true, and prints how long
 * an outage was survived and how soon I/O resumed once the server was back. */

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "guest-util.h"
#include "loopback.h"

#define DISK_SIZE  "64M"
#define DATA_BYTES (16u * MiB)
#define CHUNK      (1u * MiB)
#define OUTAGE_US  (5 * G_USEC_PER_SEC)
#define WRITE_PACE_US (150 * 1000)
#define NETNS      "nbdlink-persist"
#define NS_ADDR    "10.213.7.2"
#define HOST_ADDR  "10.213.7.1"
#define VETH_HOST  "nbdl-h"
#define VETH_NS    "nbdl-s"

typedef struct {
        GSubprocess *proc;
        const char *addr;               /* what nbdkit binds */
        gboolean in_netns;
        guint16 port;
        char *file;                     /* backing file, kept across restarts */
} Server;

static GDBusConnection *bus;
static GSubprocess *daemon_proc;
static const char *daemon_path;

/* ---- helpers ------------------------------------------------------------- */

/* nbdkit serving s->file (or a memory disk of other_size, for a server that
 * came back as something else) on s->port. */
static void server_start(Server *s, const char *other_size) {
        g_autofree char *port = g_strdup_printf("%u", s->port);
        g_autofree char *file = g_strdup_printf("file=%s", s->file);
        const char *argv[] = {
                "ip", "netns", "exec", NETNS,
                "nbdkit", "--foreground", "--exit-with-parent", "--ipaddr", s->addr, "--port", port,
                /* One thread per connection: Debian 12's nbdkit aborts when
                 * one thread closes a connection that another one is still
                 * answering on, as happens to the old connection when a
                 * cut link comes back. */
                "--threads=1", other_size ? "memory" : "file", other_size ? other_size : file, NULL
        };

        s->proc = nbdkit_start_listening(s->in_netns ? argv : argv + 4, s->addr, s->port, 20000);
}

static void server_new(Server *s, const char *addr, gboolean in_netns) {
        *s = (Server) { .addr = addr, .in_netns = in_netns, .port = loopback_free_port() };
        s->file = g_strdup_printf("/tmp/persist-%u.img", s->port);
        const char *argv[] = { "truncate", "-s", DISK_SIZE, s->file, NULL };
        run_ok(argv);
        server_start(s, NULL);
}

static void server_free(Server *s) {
        child_kill(&s->proc);
        (void) unlink(s->file);
        g_free(s->file);
}

static char *attach_persist(const Server *s, guint32 dead_timeout, guint32 timeout, char **ret_object) {
        g_autofree char *host = g_strdup_printf("%s:%u", s->addr, s->port);
        g_autoptr(GError) error = NULL;
        GVariantBuilder b;
        char *dev;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "persist", g_variant_new_boolean(TRUE));
        g_variant_builder_add(&b, "{sv}", "dead-timeout", g_variant_new_uint32(dead_timeout));
        /* The kernel's I/O timeout is what notices a cut network here. */
        if (timeout) {
                g_variant_builder_add(&b, "{sv}", "timeout", g_variant_new_uint32(timeout));
                g_variant_builder_add(&b, "{sv}", "io-timeout", g_variant_new_uint32(timeout));
        }
        dev = attach_call(bus, "", host, "", g_variant_builder_end(&b), NULL, ret_object, &error);
        g_assert_no_error(error);
        g_assert_true(device_running(dev));
        return dev;
}

static void detach_ok(const char *dev) {
        detach_and_wait(bus, dev);
}

static GVariant *get_property(const char *object, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(bus, BUS_NAME, object,
                        "org.freedesktop.DBus.Properties", "Get", g_variant_new("(ss)", DEVICE_IFACE, name),
                        G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        GVariant *v;

        if (!r)
                return NULL;
        g_variant_get(r, "(v)", &v);
        return v;
}

static char *get_state(const char *object) {
        g_autoptr(GVariant) v = get_property(object, "State");
        return v ? g_variant_dup_string(v, NULL) : NULL;
}

static void wait_state(const char *object, const char *state, double timeout_ms) {
        double deadline = now_ms() + timeout_ms;

        for (;;) {
                g_autofree char *s = get_state(object);
                if (g_strcmp0(s, state) == 0)
                        return;
                if (now_ms() > deadline)
                        g_error("%s never became %s (is %s)", object, state, s ? s : "gone");
                g_usleep(20 * 1000);
        }
}

/* Deterministic data, so that what was written can be checked later. */
static void fill(uint8_t *buf, size_t len, uint64_t seed) {
        fill_pattern(buf, len, 0, seed);
}

static char *sum_of(size_t bytes, uint64_t seed) {
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree uint8_t *buf = g_malloc(CHUNK);

        for (size_t off = 0; off < bytes; off += CHUNK) {
                fill(buf, CHUNK, seed + off / CHUNK);
                g_checksum_update(sum, buf, CHUNK);
        }
        return g_strdup(g_checksum_get_string(sum));
}

/* A dd-like writer on its own thread: CHUNK-sized O_DIRECT writes, the time
 * each one completed, and the first error. */
typedef struct {
        const char *dev;
        size_t bytes;
        uint64_t seed;
        int done_chunks;                /* atomic */
        double *done_at;
        int error;
} Writer;

static gpointer writer_thread(gpointer data) {
        Writer *w = data;
        uint8_t *buf = alloc_aligned(CHUNK);
        int fd = open(w->dev, O_WRONLY | O_DIRECT | O_CLOEXEC);

        for (size_t off = 0; fd >= 0 && off < w->bytes; off += CHUNK) {
                fill(buf, CHUNK, w->seed + off / CHUNK);
                ssize_t n = pwrite(fd, buf, CHUNK, off);
                if (n != (ssize_t) CHUNK) {
                        w->error = n < 0 ? errno : EIO;
                        break;
                }
                w->done_at[off / CHUNK] = now_ms();
                g_atomic_int_inc(&w->done_chunks);
                /* Paced, so that the outage surely hits it mid-way. */
                g_usleep(WRITE_PACE_US);
        }
        if (fd < 0)
                w->error = errno;
        else {
                if (!w->error && fsync(fd) < 0)
                        w->error = errno;
                close(fd);
        }
        free(buf);
        return NULL;
}

static GThread *writer_start(Writer *w, const char *dev, uint64_t seed) {
        *w = (Writer) { .dev = dev, .bytes = DATA_BYTES, .seed = seed };
        w->done_at = g_new0(double, DATA_BYTES / CHUNK);
        return g_thread_new("writer", writer_thread, w);
}

static void wait_chunks(Writer *w, int n) {
        double deadline = now_ms() + 30000;

        while (g_atomic_int_get(&w->done_chunks) < n) {
                g_assert_cmpfloat(now_ms(), <, deadline);
                g_usleep(1000);
        }
}

/* The first chunk that completed after t. */
static double first_done_after(const Writer *w, double t) {
        double best = 0;

        for (size_t i = 0; i < DATA_BYTES / CHUNK; i++)
                if (w->done_at[i] >= t && (best == 0 || w->done_at[i] < best))
                        best = w->done_at[i];
        return best;
}

/* An outage under a running writer: broken by cut(), healed by heal() after
 * OUTAGE_US. The writer must finish without an error, the data must read
 * back, and the figures go to the TAP output. */
static void outage_under_writer(const char *label, Server *s, guint32 timeout,
                                void (*cut)(Server *s), void (*heal)(Server *s)) {
        g_autofree char *object = NULL, *dev = NULL, *want = NULL, *got = NULL, *state = NULL;
        Writer w;
        GThread *t;
        double t_cut, t_back, t_resumed;

        dev = attach_persist(s, 30, timeout, &object);
        t = writer_start(&w, dev, g_random_int());
        wait_chunks(&w, 2);
        t_cut = now_ms();
        cut(s);
        wait_state(object, "reconnecting", 30000);
        while (now_ms() < t_cut + OUTAGE_US / 1000)
                g_usleep(10 * 1000);
        heal(s);
        t_back = now_ms();
        g_thread_join(t);
        g_assert_cmpint(w.error, ==, 0);
        t_resumed = first_done_after(&w, t_back);
        g_assert_cmpfloat(t_resumed, >, 0);
        state = get_state(object);
        g_assert_cmpstr(state, ==, "attached");

        want = sum_of(DATA_BYTES, w.seed);
        got = read_direct_sum(dev, DATA_BYTES, NULL);
        g_assert_cmpstr(got, ==, want);
        g_print("# persist %s: outage survived %.1f s, I/O resumed %.0f ms after the server was back\n",
                label, (t_back - t_cut) / 1000.0, t_resumed - t_back);
        detach_ok(dev);
        g_free(w.done_at);
}

/* ---- (a) server restart ------------------------------------------------------ */

static void kill_server(Server *s) {
        child_kill(&s->proc);
}

static void restart_server(Server *s) {
        server_start(s, NULL);
}

static void test_server_restart(void) {
        Server s;

        server_new(&s, "127.0.0.1", FALSE);
        /* Requests in flight when the link died wait for the kernel's I/O
         * timeout before they are sent again on the new socket. */
        outage_under_writer("server restart", &s, 3, kill_server, restart_server);
        server_free(&s);
}

/* ---- (b) network cut -------------------------------------------------------- */

static void netns_setup(void) {
        const char *const cmds[][12] = {
                { "ip", "netns", "add", NETNS, NULL },
                { "ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS, "netns", NETNS, NULL },
                { "ip", "addr", "add", HOST_ADDR "/24", "dev", VETH_HOST, NULL },
                { "ip", "link", "set", VETH_HOST, "up", NULL },
                { "ip", "-n", NETNS, "addr", "add", NS_ADDR "/24", "dev", VETH_NS, NULL },
                { "ip", "-n", NETNS, "link", "set", VETH_NS, "up", NULL },
                { "ip", "-n", NETNS, "link", "set", "lo", "up", NULL },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++)
                run_ok(cmds[i]);
}

static void netns_teardown(void) {
        const char *argv[] = { "ip", "netns", "del", NETNS, NULL };
        run_ok(argv);
}

static void link_down(Server *s) {
        const char *argv[] = { "ip", "link", "set", VETH_HOST, "down", NULL };
        run_ok(argv);
}

static void link_up(Server *s) {
        const char *argv[] = { "ip", "link", "set", VETH_HOST, "up", NULL };
        run_ok(argv);
}

static void test_network_cut(void) {
        Server s;

        netns_setup();
        server_new(&s, NS_ADDR, TRUE);
        /* Nothing resets a connection across a cut link: the kernel's I/O
         * timeout (2 s) is what declares it dead. */
        outage_under_writer("network cut", &s, 2, link_down, link_up);
        server_free(&s);
        netns_teardown();
}

/* ---- (c) past the dead timeout ------------------------------------------------ */

static void test_dead_timeout(void) {
        Server s;
        g_autofree char *object = NULL, *dev = NULL;
        g_autofree uint8_t *buf = NULL;
        DeviceWatch w;
        double t_cut, t_failed;
        ssize_t n;
        int fd, e;

        server_new(&s, "127.0.0.1", FALSE);
        dev = attach_persist(&s, 10, 0, &object);
        device_watch_start(&w, bus, object);
        t_cut = now_ms();
        kill_server(&s);

        g_assert_cmpint(posix_memalign((void **) &buf, 4096, 4096), ==, 0);
        memset(buf, 0x5a, 4096);
        fd = open(dev, O_WRONLY | O_DIRECT | O_CLOEXEC);
        n = fd >= 0 ? pwrite(fd, buf, 4096, 0) : -1;
        e = errno;
        t_failed = now_ms();
        if (fd >= 0)
                close(fd);
        g_test_message("write after the server went: %s after %.1f s", n < 0 ? g_strerror(e) : "ok",
                       (t_failed - t_cut) / 1000.0);
        g_assert_cmpint(n, <, 0);

        device_watch_wait_gone(&w, 30000);
        g_assert_true(w.disconnected);
        g_assert_true(w.removed);
        g_assert_true(g_str_has_prefix(w.error_name, ERROR_PREFIX));
        g_assert_nonnull(strstr(w.message, "dead timeout"));
        wait_device_stopped(dev);
        g_print("# persist dead timeout 10 s: I/O failed after %.1f s, device gone after %.1f s\n",
                (t_failed - t_cut) / 1000.0, (now_ms() - t_cut) / 1000.0);
        device_watch_done(&w);
        server_free(&s);
}

/* ---- (d) a different export comes back ---------------------------------------- */

static void test_changed_size(void) {
        Server s;
        g_autofree char *object = NULL, *dev = NULL;
        DeviceWatch w;
        double t_back;

        server_new(&s, "127.0.0.1", FALSE);
        dev = attach_persist(&s, 30, 0, &object);
        device_watch_start(&w, bus, object);
        kill_server(&s);
        wait_state(object, "reconnecting", 30000);
        server_start(&s, "32M");
        t_back = now_ms();

        device_watch_wait_gone(&w, 30000);
        g_assert_true(w.disconnected);
        g_assert_true(w.removed);
        g_assert_nonnull(strstr(w.message, "came back changed"));
        g_assert_nonnull(strstr(w.message, "size 33554432"));
        wait_device_stopped(dev);
        g_print("# persist changed size: refused %.0f ms after the server was back\n", now_ms() - t_back);
        device_watch_done(&w);
        server_free(&s);
}

/* ---- (e) nbdlinkd restarts ------------------------------------------------------ */

static void test_daemon_restart(void) {
        Server s;
        g_autofree char *object = NULL, *dev = NULL, *want = NULL, *got = NULL, *got2 = NULL;
        const char *props[] = { "Host", "Port", "Export", "Size", "Flags", "BlockSize", "ReadOnly",
                                "Persistent", "OwnerUID", "AttachedSince", "Device" };
        GVariant *before[G_N_ELEMENTS(props)];
        Writer w;
        GThread *t;
        double t_stop, t_back;

        server_new(&s, "127.0.0.1", FALSE);
        dev = attach_persist(&s, 30, 0, &object);
        for (size_t i = 0; i < G_N_ELEMENTS(props); i++)
                before[i] = get_property(object, props[i]);

        /* In use while nbdlinkd goes away and comes back. */
        t = writer_start(&w, dev, g_random_int());
        wait_chunks(&w, 1);
        t_stop = now_ms();
        g_subprocess_send_signal(daemon_proc, SIGTERM);
        child_wait_exit_0(&daemon_proc);
        g_assert_true(device_running(dev));

        daemon_proc = daemon_start_on_bus(bus, daemon_path);
        t_back = now_ms();
        g_thread_join(t);
        g_assert_cmpint(w.error, ==, 0);
        want = sum_of(DATA_BYTES, w.seed);
        got = read_direct_sum(dev, DATA_BYTES, NULL);
        g_assert_cmpstr(got, ==, want);

        for (size_t i = 0; i < G_N_ELEMENTS(props); i++) {
                g_autoptr(GVariant) after = get_property(object, props[i]);
                g_autofree char *a = NULL, *b = g_variant_print(before[i], FALSE);

                g_assert_nonnull(after);
                a = g_variant_print(after, FALSE);
                g_test_message("%s: %s / %s", props[i], b, a);
                g_assert_cmpstr(a, ==, b);
                g_variant_unref(before[i]);
        }
        g_print("# persist daemon restart: nbdlinkd away %.1f s, device kept working\n", (t_back - t_stop) / 1000.0);

        /* It still reconnects, now under the new nbdlinkd. */
        kill_server(&s);
        wait_state(object, "reconnecting", 30000);
        restart_server(&s);
        wait_state(object, "attached", 30000);
        got2 = read_direct_sum(dev, DATA_BYTES, NULL);
        g_assert_cmpstr(got2, ==, want);

        detach_ok(dev);
        g_free(w.done_at);
        server_free(&s);
}

int main(int argc, char **argv) {
        int r;

        g_test_init(&argc, &argv, NULL);
        guest_require_root();
        daemon_path = guest_daemon_path();

        bus = guest_system_bus();
        daemon_proc = daemon_start_on_bus(bus, daemon_path);

        g_test_add_func("/vm/persist/server-restart", test_server_restart);
        g_test_add_func("/vm/persist/network-cut", test_network_cut);
        g_test_add_func("/vm/persist/dead-timeout", test_dead_timeout);
        g_test_add_func("/vm/persist/changed-size", test_changed_size);
        g_test_add_func("/vm/persist/daemon-restart", test_daemon_restart);
        r = g_test_run();

        child_kill(&daemon_proc);
        g_object_unref(bus);
        return r;
}
