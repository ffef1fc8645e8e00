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

#include "guest-util.h"
#include "loopback.h"
#include "pki.h"
#include "servers.h"

#define DATA_BYTES (32u * MiB)

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

/* nbdkit on loopback with a memory disk, TLS required unless CREDS_NONE. */
static void server_start(Server *s, Creds creds) {
        g_autofree char *port = NULL, *certs = NULL, *psk = NULL;
        g_autoptr(GPtrArray) argv = g_ptr_array_new();

        s->port = loopback_free_port();
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
        s->proc = nbdkit_start_listening((const char *const *) argv->pdata, "127.0.0.1", s->port, 30000);
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

static void daemon_start(void) {
        daemon_proc = daemon_start_on_bus(bus, guest_daemon_path());
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
        GVariantBuilder b;

        if (a->plain_attach)
                return attach_call(bus, "", host, "", NULL, NULL, ret_object, error);
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
        return attach_call(bus, "", host, "", g_variant_builder_end(&b), fds, ret_object, error);
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
        detach_and_wait(bus, dev);
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
        wrote = write_random_sum(dev, DATA_BYTES, FALSE, &fig->write_mbps);
        detach_ok(dev);

        dev2 = attach_ok(s, &a, NULL);
        mode2 = device_property_string(dev2, "TLSMode");
        g_assert_cmpstr(mode2, ==, mode);
        read = read_direct_sum(dev2, DATA_BYTES, &fig->read_mbps);
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

/* A server that speaks TLS 1.3 only refuses the TLS 1.2 session the kTLS
 * hand-off needs. With tls-ktls left at its default the daemon must dial
 * again without the restriction and attach through the relay, not fail. */
static void test_tls13_only_falls_back_to_relay(void) {
        g_autofree char *dir = g_dir_make_tmp("nbdlink-tls13-XXXXXX", NULL);
        g_autofree char *image = g_build_filename(dir, "disk.img", NULL);
        g_autofree char *object = g_strconcat("tls-creds-x509,id=tls0,endpoint=server,verify-peer=off,"
                                              "priority=NORMAL:-VERS-ALL:+VERS-TLS1.3,dir=", pki->server_dir, NULL);
        g_autofree char *port = NULL, *dev = NULL, *mode = NULL;
        const AttachArgs a = { .creds = CREDS_X509, .ktls = TRUE };
        Server s = { 0 };
        int fd;

        g_assert_nonnull(dir);
        fd = open(image, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(ftruncate(fd, 16 * 1024 * 1024), ==, 0);
        close(fd);

        s.port = loopback_free_port();
        port = g_strdup_printf("%u", s.port);
        s.proc = child_spawn(G_SUBPROCESS_FLAGS_NONE,
                             (const char *const[]) { "qemu-nbd", "--persistent", "--bind=127.0.0.1", "--port", port,
                                                     "--format=raw", "--object", object, "--tls-creds=tls0", image,
                                                     NULL });
        wait_port_open("127.0.0.1", s.port, 30000, "qemu-nbd");

        dev = attach_ok(&s, &a, NULL);
        mode = device_property_string(dev, "TLSMode");
        g_assert_cmpstr(mode, ==, "relay");
        detach_ok(dev);

        child_kill(&s.proc);
        (void) unlink(image);
        (void) rmdir(dir);
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

/* Runs kill_it(data) while watching the device's object, then waits for
 * Disconnected and InterfacesRemoved. */
static void watch_disconnect(const char *object, void (*kill_it)(gpointer), gpointer data, DeviceWatch *w) {
        device_watch_start(w, bus, object);
        kill_it(data);
        g_assert_true(device_watch_wait_gone(w, 60000));
}

static void kill_server(gpointer data) {
        child_kill(&((Server *) data)->proc);
}

/* nbdkit killed under a relayed device: the TCP connection ends without a
 * close_notify, which is a lost server (Failed), not a TLS failure. */
static void test_server_killed(void) {
        Server doomed = {};
        g_autofree char *object = NULL, *dev = NULL;
        DeviceWatch w;

        server_start(&doomed, CREDS_X509);
        dev = attach_ok(&doomed, &(AttachArgs) { .creds = CREDS_X509, .ktls = FALSE }, &object);
        watch_disconnect(object, kill_server, &doomed, &w);
        g_assert_cmpstr(w.error_name, ==, ERROR_PREFIX "Failed");
        g_assert_nonnull(strstr(w.message, "close_notify"));
        wait_device_stopped(dev);
        device_watch_done(&w);
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
        server = connect_port("127.0.0.1", p->target);
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
        g_autofree char *object = NULL, *dev = NULL;
        Server target = {};
        Proxy p = {};
        DeviceWatch w;

        server_start(&target, CREDS_X509);
        p.target = target.port;
        p.listen_fd = loopback_listen(0, 1, &p.port);
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
        child_kill(&target.proc);
        device_watch_done(&w);
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
        int r;

        g_test_init(&argc, &argv, NULL);
        guest_require_root();

        /* The daemon cannot load modules; an administrator (or
         * modules-load.d) does, and then kTLS is offered. */
        run_ok((const char *const[]) { "modprobe", "tls", NULL });

        bus = guest_system_bus();
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
        g_test_add_func("/vm-tls/x509/tls13-only-server", test_tls13_only_falls_back_to_relay);
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

        child_kill(&daemon_proc);
        child_kill(&plain_server.proc);
        child_kill(&x509_server.proc);
        child_kill(&psk_server.proc);
        test_pki_free(pki);
        test_servers_cleanup();
        g_object_unref(bus);
        return r;
}
