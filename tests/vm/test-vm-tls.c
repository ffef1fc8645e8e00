/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vm suite's TLS guest program: the real nbdlinkd attaches nbdkit
 * --tls=require (X.509 and PSK) through the user-space relay and through
 * kTLS, moves checksummed data through /dev/nbdN, and reports how TLS
 * failures reach callers (TLSRequired, Disconnected). Prints MB/s of
 * plaintext, relay and kTLS side by side. */

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pki.h"
#include "servers.h"

#define BUS_NAME      "org.nbdlink.NBD1"
#define MANAGER_PATH  "/org/nbdlink/NBD1"
#define MANAGER_IFACE "org.nbdlink.NBD1.Manager"
#define DEVICE_IFACE  "org.nbdlink.NBD1.Device"
#define ERROR_PREFIX  "org.nbdlink.NBD1.Error."

#define MiB (1024u * 1024u)
#define DATA_BYTES (32u * MiB)
#define IO_CHUNK   (1u * MiB)

typedef struct Server {
        GSubprocess *proc;
        guint16 port;
} Server;

typedef enum Creds { CREDS_NONE, CREDS_X509, CREDS_PSK } Creds;

typedef struct Figure {
        const char *name;
        double write_mbps, read_mbps;
        gboolean done;
} Figure;

static GDBusConnection *bus;
static GSubprocess *daemon_proc;
static TestPki *pki;
static Server x509_server, psk_server, plain_server;
static Figure fig_plain = { "plaintext" };
static Figure fig_relay_x509 = { "relay X.509" }, fig_ktls_x509 = { "kTLS X.509" };
static Figure fig_relay_psk = { "relay PSK" }, fig_ktls_psk = { "kTLS PSK" };

/* ---- helpers -------------------------------------------------------------- */

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void child_setup(gpointer data) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocess *spawn(const char *const *argv) {
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
        g_autoptr(GError) error = NULL;
        GSubprocess *p;

        g_subprocess_launcher_set_child_setup(l, child_setup, NULL, NULL);
        p = g_subprocess_launcher_spawnv(l, argv, &error);
        g_assert_no_error(error);
        return p;
}

static void run_ok(const char *const *argv) {
        g_autoptr(GSubprocess) p = spawn(argv);
        g_autoptr(GError) error = NULL;

        g_subprocess_wait_check(p, NULL, &error);
        g_assert_no_error(error);
}

static void stop(GSubprocess **p) {
        if (!*p)
                return;
        g_subprocess_send_signal(*p, SIGKILL);
        g_subprocess_wait(*p, NULL, NULL);
        g_clear_object(p);
}

static guint16 free_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &len), ==, 0);
        close(fd);
        return ntohs(sa.sin_port);
}

static int connect_port(guint16 port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -errno;
        }
        return fd;
}

/* nbdkit on loopback with a memory disk, TLS required unless CREDS_NONE. */
static void server_start(Server *s, Creds creds) {
        g_autofree char *port = NULL, *certs = NULL, *psk = NULL;
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        double deadline;
        int fd;

        s->port = free_port();
        port = g_strdup_printf("%u", s->port);
        g_ptr_array_add(argv, (char *) "nbdkit");
        g_ptr_array_add(argv, (char *) "--foreground");
        g_ptr_array_add(argv, (char *) "--exit-with-parent");
        g_ptr_array_add(argv, (char *) "--ipaddr=127.0.0.1");
        g_ptr_array_add(argv, (char *) "--port");
        g_ptr_array_add(argv, port);
        if (creds == CREDS_X509) {
                certs = g_strconcat("--tls-certificates=", pki->server_dir, NULL);
                g_ptr_array_add(argv, (char *) "--tls=require");
                g_ptr_array_add(argv, certs);
        } else if (creds == CREDS_PSK) {
                psk = g_strconcat("--tls-psk=", pki->psk_file, NULL);
                g_ptr_array_add(argv, (char *) "--tls=require");
                g_ptr_array_add(argv, psk);
        }
        g_ptr_array_add(argv, (char *) "memory");
        g_ptr_array_add(argv, (char *) "size=64M");
        g_ptr_array_add(argv, NULL);
        s->proc = spawn((const char *const *) argv->pdata);

        deadline = now_ms() + 30000;
        while ((fd = connect_port(s->port)) < 0) {
                g_assert_cmpfloat(now_ms(), <, deadline);
                g_usleep(10 * 1000);
        }
        close(fd);
}

static void *alloc_aligned(size_t size) {
        void *p = NULL;

        g_assert_cmpint(posix_memalign(&p, 4096, size), ==, 0);
        return p;
}

/* Cheap random bytes: urandom costs more emulated CPU than the I/O. */
static void fill_random(uint8_t *buf, size_t len, uint64_t *state) {
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

/* Writes DATA_BYTES of random data with O_DIRECT, fsyncs; returns the
 * SHA-256 and the throughput. */
static char *write_random(const char *dev, double *ret_mbps) {
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree uint8_t *buf = alloc_aligned(IO_CHUNK);
        uint64_t state = ((uint64_t) g_random_int() << 32) | g_random_int() | 1;
        double elapsed = 0, t0;
        int fd = open(dev, O_WRONLY | O_DIRECT | O_CLOEXEC);

        if (fd < 0)
                g_error("open %s for writing: %s", dev, g_strerror(errno));
        for (size_t off = 0; off < DATA_BYTES; off += IO_CHUNK) {
                fill_random(buf, IO_CHUNK, &state);
                g_checksum_update(sum, buf, IO_CHUNK);
                /* Only the I/O counts, not making up the data. */
                t0 = now_ms();
                ssize_t n = pwrite(fd, buf, IO_CHUNK, (off_t) off);
                elapsed += now_ms() - t0;
                if (n != (ssize_t) IO_CHUNK)
                        g_error("write %s at %zu: %s", dev, off, n < 0 ? g_strerror(errno) : "short");
        }
        t0 = now_ms();
        g_assert_cmpint(fsync(fd), ==, 0);
        elapsed += now_ms() - t0;
        close(fd);
        *ret_mbps = DATA_BYTES / 1e6 / (elapsed / 1000.0);
        return g_strdup(g_checksum_get_string(sum));
}

static char *read_back(const char *dev, double *ret_mbps) {
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree uint8_t *buf = alloc_aligned(IO_CHUNK);
        double elapsed = 0, t0;
        int fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);

        if (fd < 0)
                g_error("open %s for reading: %s", dev, g_strerror(errno));
        for (size_t off = 0; off < DATA_BYTES; off += IO_CHUNK) {
                t0 = now_ms();
                ssize_t n = pread(fd, buf, IO_CHUNK, (off_t) off);
                elapsed += now_ms() - t0;
                if (n != (ssize_t) IO_CHUNK)
                        g_error("read %s at %zu: %s", dev, off, n < 0 ? g_strerror(errno) : "short");
                g_checksum_update(sum, buf, IO_CHUNK);
        }
        close(fd);
        *ret_mbps = DATA_BYTES / 1e6 / (elapsed / 1000.0);
        return g_strdup(g_checksum_get_string(sum));
}

static const char *dev_name(const char *dev) {
        return g_str_has_prefix(dev, "/dev/") ? dev + 5 : dev;
}

static gboolean device_running(const char *dev) {
        g_autofree char *pid = g_strdup_printf("/sys/block/%s/pid", dev_name(dev));

        return g_file_test(pid, G_FILE_TEST_EXISTS);
}

static void wait_device_stopped(const char *dev) {
        double deadline = now_ms() + 30000;

        while (device_running(dev)) {
                if (now_ms() > deadline)
                        g_error("%s still has a pid in sysfs", dev);
                g_usleep(10 * 1000);
        }
}

/* /proc/net/tls_stat, one counter: how many kTLS contexts the kernel set
 * up so far. The file exists once the tls module is loaded. */
static guint64 tls_stat(const char *name) {
        g_autofree char *text = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) lines = NULL;

        g_file_get_contents("/proc/net/tls_stat", &text, NULL, &error);
        g_assert_no_error(error);
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++) {
                g_auto(GStrv) w = g_strsplit_set(*l, " \t", -1);
                char *last = NULL;

                if (!w[0] || !g_str_equal(w[0], name))
                        continue;
                for (char **p = w + 1; *p; p++)
                        if (**p)
                                last = *p;
                g_assert_nonnull(last);
                return g_ascii_strtoull(last, NULL, 10);
        }
        g_error("no %s in /proc/net/tls_stat:\n%s", name, text);
}

/* ---- the daemon over the bus -------------------------------------------- */

static gboolean name_has_owner(void) {
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(bus,
                        "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "NameHasOwner", g_variant_new("(s)", BUS_NAME), G_VARIANT_TYPE("(b)"),
                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
        gboolean owned = FALSE;

        if (r)
                g_variant_get(r, "(b)", &owned);
        return owned;
}

static void daemon_start(void) {
        const char *path = g_getenv("NBDLINKD");
        double deadline = now_ms() + 30000;

        if (!path || !*path)
                g_error("NBDLINKD does not name the nbdlinkd to test");
        daemon_proc = spawn((const char *const[]) { path, NULL });
        while (!name_has_owner()) {
                if (now_ms() > deadline)
                        g_error("nbdlinkd did not take %s within 30 s", BUS_NAME);
                g_usleep(10 * 1000);
        }
}

typedef struct AttachArgs {
        Creds creds;
        gboolean ktls;
        const char *ca;                 /* instead of the test CA */
        const char *psk;                /* instead of the right PSK file */
        const char *hostname;           /* tls-hostname */
        gboolean plain_attach;          /* Attach(..., false) instead of AttachWithOptions */
} AttachArgs;

static void add_fd(GVariantBuilder *b, GUnixFDList *fds, const char *key, const char *path) {
        g_autoptr(GError) error = NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC), idx;

        g_assert_cmpint(fd, >=, 0);
        idx = g_unix_fd_list_append(fds, fd, &error);
        g_assert_no_error(error);
        close(fd);
        g_variant_builder_add(b, "{sv}", key, g_variant_new_handle(idx));
}

/* Attaches "" (the first free device); returns the device path and the
 * object path, or NULL and the error. */
static char *attach(const Server *s, const AttachArgs *a, char **ret_object, GError **error) {
        g_autofree char *host = g_strdup_printf("127.0.0.1:%u", s->port);
        g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
        g_autoptr(GVariant) r = NULL;
        GVariantBuilder b;
        char *object = NULL, *dev = NULL;

        if (a->plain_attach)
                r = g_dbus_connection_call_sync(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Attach",
                                                g_variant_new("(sssb)", "", host, "", FALSE),
                                                G_VARIANT_TYPE("(os)"), G_DBUS_CALL_FLAGS_NONE, 120000, NULL, error);
        else {
                g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
                if (a->creds != CREDS_NONE) {
                        g_variant_builder_add(&b, "{sv}", "tls", g_variant_new_string("require"));
                        g_variant_builder_add(&b, "{sv}", "tls-ktls", g_variant_new_boolean(a->ktls));
                }
                if (a->creds == CREDS_X509)
                        add_fd(&b, fds, "tls-ca", a->ca ?: pki->ca_cert);
                if (a->hostname)
                        g_variant_builder_add(&b, "{sv}", "tls-hostname", g_variant_new_string(a->hostname));
                if (a->creds == CREDS_PSK) {
                        add_fd(&b, fds, "tls-psk", a->psk ?: pki->psk_file);
                        g_variant_builder_add(&b, "{sv}", "tls-username", g_variant_new_string(pki->psk_username));
                }
                r = g_dbus_connection_call_with_unix_fd_list_sync(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
                                "AttachWithOptions", g_variant_new("(sssa{sv})", "", host, "", &b),
                                G_VARIANT_TYPE("(os)"), G_DBUS_CALL_FLAGS_NONE, 120000, fds, NULL, NULL, error);
        }
        if (!r)
                return NULL;
        g_variant_get(r, "(os)", &object, &dev);
        if (!g_str_has_prefix(dev, "/dev/")) {
                char *full = g_strconcat("/dev/", dev, NULL);
                g_free(dev);
                dev = full;
        }
        if (ret_object)
                *ret_object = object;
        else
                g_free(object);
        return dev;
}

static char *attach_ok(const Server *s, const AttachArgs *a, char **ret_object) {
        g_autoptr(GError) error = NULL;
        char *dev = attach(s, a, ret_object, &error);

        g_assert_no_error(error);
        g_assert_true(device_running(dev));
        return dev;
}

static char *device_property_string(const char *dev, const char *name) {
        g_autofree char *path = g_strconcat(MANAGER_PATH "/devices/", dev_name(dev), NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, v = NULL;

        r = g_dbus_connection_call_sync(bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                                        g_variant_new("(ss)", DEVICE_IFACE, name), G_VARIANT_TYPE("(v)"),
                                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(v)", &v);
        return g_variant_dup_string(v, NULL);
}

static void detach_ok(const char *dev) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
                        "Detach", g_variant_new("(s)", dev), NULL, G_DBUS_CALL_FLAGS_NONE, 120000, NULL, &error);

        g_assert_no_error(error);
        wait_device_stopped(dev);
}

static void assert_bus_error(GError *error, const char *name, const char *must_mention) {
        g_autofree char *remote = NULL;

        g_assert_nonnull(error);
        remote = g_dbus_error_get_remote_error(error);
        g_dbus_error_strip_remote_error(error);
        g_test_message("got %s: %s", remote, error->message);
        g_assert_cmpstr(remote, ==, name);
        if (must_mention && !strstr(error->message, must_mention))
                g_error("\"%s\" does not mention \"%s\"", error->message, must_mention);
}

/* ---- round trips ---------------------------------------------------------- */

/* Write 32 MiB, detach, attach again, read back and compare, detach; each
 * attach must use the expected path to the kernel. */
static void roundtrip(const Server *s, Creds creds, gboolean ktls, Figure *fig) {
        const AttachArgs a = { .creds = creds, .ktls = ktls };
        const char *mode = creds == CREDS_NONE ? "none" : ktls ? "ktls" : "relay";
        g_autofree char *dev = NULL, *dev2 = NULL, *wrote = NULL, *read = NULL;
        g_autofree char *mode1 = NULL, *mode2 = NULL;
        guint64 tx0 = 0, rx0 = 0;

        if (creds != CREDS_NONE) {
                tx0 = tls_stat("TlsTxSw") + tls_stat("TlsTxDevice");
                rx0 = tls_stat("TlsRxSw") + tls_stat("TlsRxDevice");
        }

        dev = attach_ok(s, &a, NULL);
        mode1 = device_property_string(dev, "TLSMode");
        g_assert_cmpstr(mode1, ==, mode);
        wrote = write_random(dev, &fig->write_mbps);
        detach_ok(dev);

        dev2 = attach_ok(s, &a, NULL);
        mode2 = device_property_string(dev2, "TLSMode");
        g_assert_cmpstr(mode2, ==, mode);
        read = read_back(dev2, &fig->read_mbps);
        g_assert_cmpstr(read, ==, wrote);
        detach_ok(dev2);

        if (creds != CREDS_NONE) {
                guint64 tx = tls_stat("TlsTxSw") + tls_stat("TlsTxDevice");
                guint64 rx = tls_stat("TlsRxSw") + tls_stat("TlsRxDevice");

                g_test_message("kTLS contexts: TX %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT
                               ", RX %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT, tx0, tx, rx0, rx);
                if (ktls) {
                        /* Both attaches put both directions into the kernel. */
                        g_assert_cmpuint(tx, >=, tx0 + 2);
                        g_assert_cmpuint(rx, >=, rx0 + 2);
                } else {
                        g_assert_cmpuint(tx, ==, tx0);
                        g_assert_cmpuint(rx, ==, rx0);
                }
        }
        fig->done = TRUE;
        g_test_message("%s: write %.1f MB/s, read %.1f MB/s", fig->name, fig->write_mbps, fig->read_mbps);
}

static void test_plain(void) {
        roundtrip(&plain_server, CREDS_NONE, FALSE, &fig_plain);
}

static void test_x509_relay(void) {
        roundtrip(&x509_server, CREDS_X509, FALSE, &fig_relay_x509);
}

static void test_x509_ktls(void) {
        roundtrip(&x509_server, CREDS_X509, TRUE, &fig_ktls_x509);
}

static void test_psk_relay(void) {
        roundtrip(&psk_server, CREDS_PSK, FALSE, &fig_relay_psk);
}

static void test_psk_ktls(void) {
        roundtrip(&psk_server, CREDS_PSK, TRUE, &fig_ktls_psk);
}

/* A server that requires TLS, attached without: never in plaintext. */
static void test_tls_required(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *dev = attach(&x509_server, &(AttachArgs) { .plain_attach = TRUE }, NULL, &error);

        g_assert_null(dev);
        assert_bus_error(error, ERROR_PREFIX "TLSRequired", "TLS");
        g_clear_error(&error);

        dev = attach(&psk_server, &(AttachArgs) { .creds = CREDS_NONE }, NULL, &error);
        g_assert_null(dev);
        assert_bus_error(error, ERROR_PREFIX "TLSRequired", "TLS");
}

/* Certificate and PSK failures through Attach: nothing reaches the
 * kernel, and the message says what was wrong. */
static void attach_fails(const Server *s, const AttachArgs *a, const char *says) {
        g_autoptr(GError) error = NULL;
        g_autofree char *dev = attach(s, a, NULL, &error);

        g_assert_null(dev);
        assert_bus_error(error, ERROR_PREFIX "TLSFailed", says);
}

static void test_wrong_credentials(void) {
        attach_fails(&x509_server, &(AttachArgs) { .creds = CREDS_X509, .ktls = TRUE, .ca = pki->other_ca_cert },
                     "tls: certificate verification failed: unknown CA");
        attach_fails(&x509_server, &(AttachArgs) { .creds = CREDS_X509, .ktls = TRUE, .hostname = "wrong.example" },
                     "tls: certificate verification failed: host name mismatch");
        attach_fails(&psk_server, &(AttachArgs) { .creds = CREDS_PSK, .ktls = TRUE, .psk = pki->wrong_psk_file },
                     "bad PSK");
}

/* ---- the server goes away ------------------------------------------------- */

typedef struct Watch {
        const char *object;
        gboolean disconnected, removed;
        char *error_name, *message;
} Watch;

static void on_disconnected(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                            const char *signal, GVariant *params, gpointer data) {
        Watch *w = data;

        g_variant_get(params, "(ss)", &w->error_name, &w->message);
        g_test_message("Disconnected(%s, %s) from %s", w->error_name, w->message, path);
        w->disconnected = TRUE;
}

static void on_removed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                       const char *signal, GVariant *params, gpointer data) {
        Watch *w = data;
        const char *object;

        g_variant_get(params, "(&o@as)", &object, NULL);
        if (g_str_equal(object, w->object))
                w->removed = TRUE;
}

/* Runs kill_it(data) while watching the device's object, then waits for
 * Disconnected and InterfacesRemoved. */
static void watch_disconnect(const char *object, void (*kill_it)(gpointer), gpointer data, Watch *w) {
        double deadline;
        guint s1, s2;

        w->object = object;
        s1 = g_dbus_connection_signal_subscribe(bus, BUS_NAME, DEVICE_IFACE, "Disconnected", object, NULL,
                                                G_DBUS_SIGNAL_FLAGS_NONE, on_disconnected, w, NULL);
        s2 = g_dbus_connection_signal_subscribe(bus, BUS_NAME, "org.freedesktop.DBus.ObjectManager",
                                                "InterfacesRemoved", MANAGER_PATH, NULL,
                                                G_DBUS_SIGNAL_FLAGS_NONE, on_removed, w, NULL);
        /* A round trip to the bus puts the match rules in place first. */
        g_assert_true(name_has_owner());

        kill_it(data);
        deadline = now_ms() + 60000;
        while (!(w->disconnected && w->removed) && now_ms() < deadline)
                if (!g_main_context_iteration(NULL, FALSE))
                        g_usleep(5000);
        g_dbus_connection_signal_unsubscribe(bus, s1);
        g_dbus_connection_signal_unsubscribe(bus, s2);
        g_assert_true(w->disconnected);
        g_assert_true(w->removed);
}

static void kill_server(gpointer data) {
        stop(&((Server *) data)->proc);
}

/* nbdkit killed under a relayed device: the TCP connection ends without a
 * close_notify, which is a lost server (Failed), not a TLS failure. */
static void test_server_killed(void) {
        Server doomed = {};
        g_autofree char *object = NULL, *dev = NULL;
        Watch w = {};

        server_start(&doomed, CREDS_X509);
        dev = attach_ok(&doomed, &(AttachArgs) { .creds = CREDS_X509, .ktls = FALSE }, &object);
        watch_disconnect(object, kill_server, &doomed, &w);
        g_assert_cmpstr(w.error_name, ==, ERROR_PREFIX "Failed");
        g_assert_nonnull(strstr(w.message, "close_notify"));
        wait_device_stopped(dev);
        g_free(w.error_name);
        g_free(w.message);
}

/* A TCP proxy between nbdlinkd and nbdkit that can write garbage into the
 * server's direction: what a corrupted or forged TLS record looks like to
 * the relay. */
typedef struct Proxy {
        int listen_fd;
        guint16 port, target;
        int inject;                     /* atomic: send garbage to the client now */
        int stop;
        GThread *thread;
} Proxy;

static gboolean pump(int from, int to) {
        char buf[64 * 1024];
        ssize_t n = read(from, buf, sizeof(buf));

        if (n <= 0)
                return FALSE;
        for (ssize_t off = 0; off < n;) {
                ssize_t k = write(to, buf + off, (size_t) (n - off));
                if (k <= 0)
                        return FALSE;
                off += k;
        }
        return TRUE;
}

static gpointer proxy_thread(gpointer data) {
        Proxy *p = data;
        int client = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC), server;

        if (client < 0)
                return NULL;
        server = connect_port(p->target);
        if (server < 0) {
                close(client);
                return NULL;
        }
        while (!g_atomic_int_get(&p->stop)) {
                struct pollfd fds[2] = { { .fd = client, .events = POLLIN }, { .fd = server, .events = POLLIN } };

                if (g_atomic_int_compare_and_exchange(&p->inject, 1, 0)) {
                        /* An application data record whose contents cannot
                         * pass the AEAD check. */
                        uint8_t rec[5 + 64] = { 0x17, 0x03, 0x03, 0x00, 64 };

                        for (size_t i = 5; i < sizeof(rec); i++)
                                rec[i] = (uint8_t) g_random_int();
                        if (write(client, rec, sizeof(rec)) != (ssize_t) sizeof(rec))
                                break;
                }
                if (poll(fds, 2, 20) < 0 && errno != EINTR)
                        break;
                if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(client, server))
                        break;
                if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(server, client))
                        break;
        }
        close(client);
        close(server);
        return NULL;
}

static void inject_garbage(gpointer data) {
        g_atomic_int_set(&((Proxy *) data)->inject, 1);
}

/* A record that fails to decrypt ends the relayed device with a
 * Disconnected whose error is TLSFailed. */
static void test_bad_record(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        g_autofree char *object = NULL, *dev = NULL;
        Server target = {};
        Proxy p = {};
        Watch w = {};

        server_start(&target, CREDS_X509);
        p.target = target.port;
        p.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(bind(p.listen_fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(listen(p.listen_fd, 1), ==, 0);
        g_assert_cmpint(getsockname(p.listen_fd, (struct sockaddr *) &sa, &len), ==, 0);
        p.port = ntohs(sa.sin_port);
        p.thread = g_thread_new("proxy", proxy_thread, &p);

        dev = attach_ok(&(Server) { .port = p.port }, &(AttachArgs) { .creds = CREDS_X509, .ktls = FALSE }, &object);
        /* The device is idle: the garbage lands between two records. */
        watch_disconnect(object, inject_garbage, &p, &w);
        g_assert_cmpstr(w.error_name, ==, ERROR_PREFIX "TLSFailed");
        g_assert_nonnull(strstr(w.message, "tls: "));
        wait_device_stopped(dev);

        g_atomic_int_set(&p.stop, 1);
        g_thread_join(p.thread);
        close(p.listen_fd);
        stop(&target.proc);
        g_free(w.error_name);
        g_free(w.message);
}

/* ---- main ----------------------------------------------------------------- */

static void print_figure(const Figure *f) {
        if (!f->done)
                return;
        if (f == &fig_plain || !fig_plain.done)
                g_print("# %s: sequential O_DIRECT write %.1f MB/s, read %.1f MB/s\n",
                        f->name, f->write_mbps, f->read_mbps);
        else
                g_print("# %s: sequential O_DIRECT write %.1f MB/s (%.2fx plaintext), read %.1f MB/s (%.2fx plaintext)\n",
                        f->name, f->write_mbps, f->write_mbps / fig_plain.write_mbps,
                        f->read_mbps, f->read_mbps / fig_plain.read_mbps);
}

int main(int argc, char **argv) {
        g_autoptr(GError) error = NULL;
        int r;

        g_test_init(&argc, &argv, NULL);
        if (geteuid() != 0)
                g_error("the vm suite's guest program runs as root inside the guest (see vm-run)");

        /* The daemon cannot load modules; an administrator (or
         * modules-load.d) does, and then kTLS is offered. */
        run_ok((const char *const[]) { "modprobe", "tls", NULL });

        bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
        g_assert_no_error(error);
        pki = test_pki_new();
        server_start(&plain_server, CREDS_NONE);
        server_start(&x509_server, CREDS_X509);
        server_start(&psk_server, CREDS_PSK);
        daemon_start();

        g_test_add_func("/vm-tls/plaintext", test_plain);
        g_test_add_func("/vm-tls/x509/relay", test_x509_relay);
        g_test_add_func("/vm-tls/x509/ktls", test_x509_ktls);
        g_test_add_func("/vm-tls/psk/relay", test_psk_relay);
        g_test_add_func("/vm-tls/psk/ktls", test_psk_ktls);
        g_test_add_func("/vm-tls/tls-required", test_tls_required);
        g_test_add_func("/vm-tls/wrong-credentials", test_wrong_credentials);
        g_test_add_func("/vm-tls/server-killed", test_server_killed);
        g_test_add_func("/vm-tls/bad-record", test_bad_record);
        r = g_test_run();

        print_figure(&fig_plain);
        print_figure(&fig_relay_x509);
        print_figure(&fig_ktls_x509);
        print_figure(&fig_relay_psk);
        print_figure(&fig_ktls_psk);

        stop(&daemon_proc);
        stop(&plain_server.proc);
        stop(&x509_server.proc);
        stop(&psk_server.proc);
        test_pki_free(pki);
        test_servers_cleanup();
        g_object_unref(bus);
        return r;
}
