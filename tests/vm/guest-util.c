/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The helpers the vm guest programs share (see guest-util.h): each program
 * keeps only what is particular to its cases. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "guest-util.h"

#define IO_CHUNK (1u * MiB)

/* ---- the guest program ------------------------------------------------- */

void guest_require_root(void) {
        if (geteuid() != 0)
                g_error("the vm suite's guest program runs as root inside the guest (see vm-run)");
}

const char *guest_daemon_path(void) {
        const char *path = g_getenv("NBDLINKD");

        if (!path || !*path)
                g_error("NBDLINKD does not name the nbdlinkd to test");
        return path;
}

GDBusConnection *guest_system_bus(void) {
        g_autoptr(GError) error = NULL;
        GDBusConnection *bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);

        g_assert_no_error(error);
        return bus;
}

/* ---- time and children ------------------------------------------------ */

double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

void child_setup_die_with_parent(gpointer data) {
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
}

GSubprocess *child_spawn(GSubprocessFlags flags, const char *const *argv) {
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(flags);
        g_autoptr(GError) error = NULL;
        g_autofree char *cmd = g_strjoinv(" ", (char **) argv);
        GSubprocess *p;

        g_subprocess_launcher_set_child_setup(l, child_setup_die_with_parent, NULL, NULL);
        p = g_subprocess_launcher_spawnv(l, argv, &error);
        if (!p)
                g_error("start %s: %s", cmd, error->message);
        g_debug("started %s", cmd);
        return p;
}

char *run_capture(const char *const *argv) {
        g_autoptr(GSubprocess) p = child_spawn(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                               argv);
        g_autoptr(GError) error = NULL;
        g_autofree char *cmd = g_strjoinv(" ", (char **) argv);
        g_autofree char *err = NULL;
        char *out = NULL;

        g_subprocess_communicate_utf8(p, NULL, NULL, &out, &err, &error);
        g_assert_no_error(error);
        if (!g_subprocess_get_successful(p))
                g_error("%s failed (status %d): %s%s", cmd, g_subprocess_get_status(p),
                        out ? out : "", err ? err : "");
        return out;
}

void run_ok(const char *const *argv) {
        g_free(run_capture(argv));
}

void child_kill(GSubprocess **p) {
        if (!*p)
                return;
        g_subprocess_send_signal(*p, SIGKILL);
        g_subprocess_wait(*p, NULL, NULL);
        g_clear_object(p);
}

void child_wait_exit_0(GSubprocess **p) {
        g_autoptr(GError) error = NULL;

        g_subprocess_wait(*p, NULL, &error);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_get_if_exited(*p));
        g_assert_cmpint(g_subprocess_get_exit_status(*p), ==, 0);
        g_clear_object(p);
}

/* ---- loopback ports --------------------------------------------------- */

int connect_port(const char *addr, guint16 port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        int fd;

        g_assert_cmpint(inet_pton(AF_INET, addr, &sa.sin_addr), ==, 1);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int e = errno;

                close(fd);
                return -e;
        }
        return fd;
}

void wait_port_open(const char *addr, guint16 port, double within_ms, const char *what) {
        double deadline = now_ms() + within_ms;
        int fd;

        while ((fd = connect_port(addr, port)) < 0) {
                if (now_ms() > deadline)
                        g_error("%s did not listen on %s:%u within %.0f s", what, addr, port, within_ms / 1000);
                g_usleep(10 * 1000);
        }
        close(fd);
}

GSubprocess *nbdkit_start_listening(const char *const *argv, const char *addr, guint16 port,
                                    double within_ms) {
        GSubprocess *p = child_spawn(G_SUBPROCESS_FLAGS_NONE, argv);

        wait_port_open(addr, port, within_ms, "nbdkit");
        return p;
}

/* ---- data through a device -------------------------------------------- */

void *alloc_aligned(size_t size) {
        void *p = NULL;

        g_assert_cmpint(posix_memalign(&p, 4096, size), ==, 0);
        return p;
}

void fill_random(uint8_t *buf, size_t len, uint64_t *state) {
        for (size_t i = 0; i + 8 <= len; i += 8) {
                uint64_t x = *state;

                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                *state = x;
                x *= UINT64_C(0x2545F4914F6CDD1D);
                memcpy(buf + i, &x, 8);
        }
}

void fill_pattern(uint8_t *buf, size_t len, uint64_t seed, uint64_t index) {
        uint64_t state = (seed ^ (index * UINT64_C(0x9E3779B97F4A7C15))) | 1;

        fill_random(buf, len, &state);
}

char *write_random_sum(const char *dev, size_t bytes, gboolean buffered, double *ret_mbps) {
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree uint8_t *buf = alloc_aligned(IO_CHUNK);
        uint64_t state = ((uint64_t) g_random_int() << 32) | g_random_int() | 1;
        double elapsed = 0, t0;
        int fd = open(dev, O_WRONLY | (buffered ? 0 : O_DIRECT) | O_CLOEXEC);

        g_assert_cmpuint(bytes % IO_CHUNK, ==, 0);
        if (fd < 0)
                g_error("open %s for writing: %s", dev, g_strerror(errno));
        for (size_t off = 0; off < bytes; off += IO_CHUNK) {
                fill_random(buf, IO_CHUNK, &state);
                g_checksum_update(sum, buf, IO_CHUNK);
                /* Only the I/O counts, not making up the data. */
                t0 = now_ms();
                ssize_t n = pwrite(fd, buf, IO_CHUNK, (off_t) off);
                elapsed += now_ms() - t0;
                if (n != (ssize_t) IO_CHUNK)
                        g_error("write %s at %zu: %s", dev, off, n < 0 ? g_strerror(errno) : "short");
        }
        /* Buffered writers leave their data in the page cache: whoever
         * detaches the device must flush it. */
        if (!buffered) {
                t0 = now_ms();
                g_assert_cmpint(fsync(fd), ==, 0);
                elapsed += now_ms() - t0;
        }
        close(fd);
        if (ret_mbps)
                *ret_mbps = bytes / 1e6 / (elapsed / 1000.0);
        return g_strdup(g_checksum_get_string(sum));
}

/* Reads with O_DIRECT into a checksum when sum is set; returns the MB/s of
 * the reads alone. */
static double read_direct(const char *dev, size_t bytes, GChecksum *sum) {
        g_autofree uint8_t *buf = alloc_aligned(IO_CHUNK);
        double elapsed = 0, t0;
        int fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);

        g_assert_cmpuint(bytes % IO_CHUNK, ==, 0);
        if (fd < 0)
                g_error("open %s for reading: %s", dev, g_strerror(errno));
        for (size_t off = 0; off < bytes; off += IO_CHUNK) {
                t0 = now_ms();
                ssize_t n = pread(fd, buf, IO_CHUNK, (off_t) off);
                elapsed += now_ms() - t0;
                if (n != (ssize_t) IO_CHUNK)
                        g_error("read %s at %zu: %s", dev, off, n < 0 ? g_strerror(errno) : "short");
                if (sum)
                        g_checksum_update(sum, buf, IO_CHUNK);
        }
        close(fd);
        return bytes / 1e6 / (elapsed / 1000.0);
}

char *read_direct_sum(const char *dev, size_t bytes, double *ret_mbps) {
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        double mbps = read_direct(dev, bytes, sum);

        if (ret_mbps)
                *ret_mbps = mbps;
        return g_strdup(g_checksum_get_string(sum));
}

double read_direct_mbps(const char *dev, size_t bytes) {
        return read_direct(dev, bytes, NULL);
}

void wait_block0(const char *dev) {
        g_autofree uint8_t *buf = alloc_aligned(4096);
        double deadline = now_ms() + 30000;

        for (;;) {
                int fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);

                if (fd >= 0) {
                        ssize_t n = pread(fd, buf, 4096, 0);

                        close(fd);
                        if (n == 4096)
                                return;
                }
                if (now_ms() > deadline)
                        g_error("block 0 of %s never became readable", dev);
                g_usleep(1000);
        }
}

/* ---- the kernel's view of nbd devices ------------------------------------ */

const char *dev_name(const char *dev) {
        return g_str_has_prefix(dev, "/dev/") ? dev + strlen("/dev/") : dev;
}

gboolean device_running(const char *dev) {
        g_autofree char *pid = g_strdup_printf("/sys/block/%s/pid", dev_name(dev));

        return g_file_test(pid, G_FILE_TEST_EXISTS);
}

guint64 device_size(const char *dev) {
        g_autofree char *path = g_strdup_printf("/sys/block/%s/size", dev_name(dev));
        g_autofree char *text = NULL;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                g_error("cannot read %s", path);
        return g_ascii_strtoull(text, NULL, 10);
}

void wait_device_stopped(const char *dev) {
        double deadline = now_ms() + 30000;

        while (device_running(dev)) {
                if (now_ms() > deadline)
                        g_error("%s still has a pid in sysfs", dev);
                g_usleep(10 * 1000);
        }
}

/* ---- nbdlinkd on the guest's bus ------------------------------------------ */

void bus_round_trip(GDBusConnection *bus) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(bus,
                        "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "GetId", NULL, G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);

        g_assert_no_error(error);
        g_assert_nonnull(r);
}

gboolean bus_name_has_owner(GDBusConnection *bus) {
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(bus,
                        "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "NameHasOwner", g_variant_new("(s)", BUS_NAME), G_VARIANT_TYPE("(b)"),
                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
        gboolean owned = FALSE;

        if (r)
                g_variant_get(r, "(b)", &owned);
        return owned;
}

GSubprocess *daemon_start_on_bus(GDBusConnection *bus, const char *daemon_path) {
        const char *argv[] = { daemon_path, NULL };
        double deadline = now_ms() + 30000;
        GSubprocess *p = child_spawn(G_SUBPROCESS_FLAGS_NONE, argv);

        while (!bus_name_has_owner(bus)) {
                if (g_subprocess_get_identifier(p) == NULL)
                        g_error("nbdlinkd exited before taking %s", BUS_NAME);
                if (now_ms() > deadline)
                        g_error("nbdlinkd did not take %s within 30 s", BUS_NAME);
                g_usleep(10 * 1000);
        }
        return p;
}

char *attach_call(GDBusConnection *bus, const char *device, const char *host, const char *export,
                  GVariant *options, GUnixFDList *fds, char **ret_object, GError **error) {
        g_autoptr(GVariant) r = NULL;
        g_autofree char *object = NULL, *dev = NULL, *expected = NULL;
        GVariant *args = options ? g_variant_new("(sss@a{sv})", device, host, export, options)
                                 : g_variant_new("(sssb)", device, host, export, FALSE);

        r = g_dbus_connection_call_with_unix_fd_list_sync(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
                                                          options ? "AttachWithOptions" : "Attach", args,
                                                          G_VARIANT_TYPE("(os)"), G_DBUS_CALL_FLAGS_NONE,
                                                          120000, fds, NULL, NULL, error);
        if (!r)
                return NULL;
        g_variant_get(r, "(os)", &object, &dev);
        /* The contract allows "nbdN" as well as "/dev/nbdN" here. */
        if (!g_str_has_prefix(dev, "/dev/")) {
                char *full = g_strconcat("/dev/", dev, NULL);

                g_free(dev);
                dev = full;
        }
        g_assert_true(g_str_has_prefix(dev, "/dev/nbd"));
        expected = g_strconcat(MANAGER_PATH "/devices/", dev_name(dev), NULL);
        g_assert_cmpstr(object, ==, expected);
        if (ret_object)
                *ret_object = g_steal_pointer(&object);
        return g_steal_pointer(&dev);
}

void detach_call(GDBusConnection *bus, const char *dev) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
                        "Detach", g_variant_new("(s)", dev), NULL,
                        G_DBUS_CALL_FLAGS_NONE, 120000, NULL, &error);
        (void) r;       /* held only to be freed: Detach returns nothing */

        g_assert_no_error(error);
}

void detach_and_wait(GDBusConnection *bus, const char *dev) {
        detach_call(bus, dev);
        wait_device_stopped(dev);
}

void assert_bus_error(GError *error, const char *name, const char *must_mention) {
        g_autofree char *remote = NULL;

        g_assert_nonnull(error);
        remote = g_dbus_error_get_remote_error(error);
        g_dbus_error_strip_remote_error(error);
        g_test_message("got %s: %s", remote, error->message);
        g_assert_cmpstr(remote, ==, name);
        if (must_mention && !strstr(error->message, must_mention))
                g_error("\"%s\" does not mention \"%s\"", error->message, must_mention);
}

static void on_disconnected(GDBusConnection *c, const char *sender, const char *path,
                            const char *iface, const char *signal, GVariant *params, gpointer data) {
        DeviceWatch *w = data;
        const char *name, *message;

        g_variant_get(params, "(&s&s)", &name, &message);
        g_test_message("Disconnected(%s, %s) from %s", name, message, path);
        w->disconnected = TRUE;
        w->disconnected_ms = now_ms();
        g_free(w->error_name);
        g_free(w->message);
        w->error_name = g_strdup(name);
        w->message = g_strdup(message);
}

static void on_removed(GDBusConnection *c, const char *sender, const char *path,
                       const char *iface, const char *signal, GVariant *params, gpointer data) {
        DeviceWatch *w = data;
        const char *object;

        g_variant_get(params, "(&o@as)", &object, NULL);
        if (g_str_equal(object, w->object))
                w->removed = TRUE;
}

void device_watch_start(DeviceWatch *w, GDBusConnection *bus, const char *object) {
        *w = (DeviceWatch) { .bus = bus, .object = g_strdup(object) };
        w->sub_disconnected = g_dbus_connection_signal_subscribe(bus, NULL, DEVICE_IFACE, "Disconnected",
                                                                 object, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                                 on_disconnected, w, NULL);
        w->sub_removed = g_dbus_connection_signal_subscribe(bus, NULL, "org.freedesktop.DBus.ObjectManager",
                                                            "InterfacesRemoved", MANAGER_PATH, NULL,
                                                            G_DBUS_SIGNAL_FLAGS_NONE, on_removed, w, NULL);
        bus_round_trip(bus);
}

gboolean device_watch_wait_gone(DeviceWatch *w, double within_ms) {
        double deadline = now_ms() + within_ms;

        while (!(w->disconnected && w->removed) && now_ms() < deadline)
                if (!g_main_context_iteration(NULL, FALSE))
                        g_usleep(5000);
        return w->disconnected && w->removed;
}

void device_watch_done(DeviceWatch *w) {
        if (w->sub_disconnected)
                g_dbus_connection_signal_unsubscribe(w->bus, w->sub_disconnected);
        if (w->sub_removed)
                g_dbus_connection_signal_unsubscribe(w->bus, w->sub_removed);
        w->sub_disconnected = w->sub_removed = 0;
        g_clear_pointer(&w->object, g_free);
        g_clear_pointer(&w->error_name, g_free);
        g_clear_pointer(&w->message, g_free);
}
