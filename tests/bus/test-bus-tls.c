/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* TLS through the real nbdlinkd on the private bus, probed against nbdkit
 * on loopback: where the CA comes from (the caller's tls-ca, the
 * administrator's --tls-ca-dir, the system trust store), and each way a
 * certificate or PSK can be wrong, by error name and message. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-error.h"

/* After nbdlink headers: they bring GLib, which redefines MIN/MAX itself. */
#include "bus-harness.h"
#include "pki.h"
#include "servers.h"

#include <glib/gstdio.h>

#define ERROR_PREFIX "org.nbdlink.NBD1.Error."

static TestPki *pki;
static TestServer *x509, *expired, *psk, *plain;
static char *ca_dir, *empty_dir;

typedef struct ProbeArgs {
        const char *host;               /* default: 127.0.0.1:port of the server */
        const char *tls;                /* "require" unless set */
        const char *ca;                 /* path: passed as the tls-ca fd */
        const char *psk;                /* path: passed as the tls-psk fd */
        const char *username;
        const char *hostname;
} ProbeArgs;

static int open_ro(const char *path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        g_assert_cmpint(fd, >=, 0);
        return fd;
}

/* Probe(host, "", options) with sd-bus; returns 0 (and whether TLS ran) or
 * a negative errno with the error's name and message in *e. */
static int probe(const TestServer *s, const ProbeArgs *a, sd_bus_error *e, bool *ret_tls) {
        g_autofree char *host = g_strdup_printf("127.0.0.1:%u", s->port);
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus *bus = sd_connect();
        int ca_fd = -1, psk_fd = -1, r;

        g_assert_cmpint(sd_bus_message_new_method_call(bus, &m, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                       "org.nbdlink.NBD1.Manager", "Probe"), >=, 0);
        g_assert_cmpint(sd_bus_message_append(m, "ss", a->host ?: host, ""), >=, 0);
        g_assert_cmpint(sd_bus_message_open_container(m, 'a', "{sv}"), >=, 0);
        g_assert_cmpint(sd_bus_message_append(m, "{sv}", "tls", "s", a->tls ?: "require"), >=, 0);
        if (a->ca) {
                ca_fd = open_ro(a->ca);
                g_assert_cmpint(sd_bus_message_append(m, "{sv}", "tls-ca", "h", ca_fd), >=, 0);
        }
        if (a->psk) {
                psk_fd = open_ro(a->psk);
                g_assert_cmpint(sd_bus_message_append(m, "{sv}", "tls-psk", "h", psk_fd), >=, 0);
        }
        if (a->username)
                g_assert_cmpint(sd_bus_message_append(m, "{sv}", "tls-username", "s", a->username), >=, 0);
        if (a->hostname)
                g_assert_cmpint(sd_bus_message_append(m, "{sv}", "tls-hostname", "s", a->hostname), >=, 0);
        g_assert_cmpint(sd_bus_message_close_container(m), >=, 0);

        r = sd_bus_call(bus, m, 30 * 1000 * 1000, e, &reply);
        if (r >= 0) {
                const char *key;
                int tls = -1;

                g_assert_cmpint(sd_bus_message_enter_container(reply, 'a', "{sv}"), >=, 0);
                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        g_assert_cmpint(sd_bus_message_read(reply, "s", &key), >=, 0);
                        if (strcmp(key, "tls") == 0)
                                g_assert_cmpint(sd_bus_message_read(reply, "v", "b", &tls), >=, 0);
                        else
                                g_assert_cmpint(sd_bus_message_skip(reply, "v"), >=, 0);
                        g_assert_cmpint(sd_bus_message_exit_container(reply), >=, 0);
                }
                g_assert_cmpint(tls, >=, 0);
                *ret_tls = tls;
        }

        if (ca_fd >= 0)
                close(ca_fd);
        if (psk_fd >= 0)
                close(psk_fd);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
        return r;
}

static void probe_ok(const TestServer *s, const ProbeArgs *a) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        bool tls = false;
        int r = probe(s, a, &e, &tls);

        if (r < 0)
                g_error("Probe failed: %s: %s", e.name, e.message);
        g_assert_true(tls);
        sd_bus_error_free(&e);
}

/* The error's name, its errno through the error map, and that the message
 * starts with the phase and says which check failed. */
static void probe_fails(const TestServer *s, const ProbeArgs *a, const char *name, int error,
                        const char *phase, const char *says) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        bool tls = false;
        int r = probe(s, a, &e, &tls);

        g_assert_cmpint(r, <, 0);
        g_test_message("%s: %s", e.name, e.message);
        g_assert_cmpstr(e.name, ==, name);
        g_assert_cmpint(sd_bus_error_get_errno(&e), ==, error);
        g_assert_true(g_str_has_prefix(e.message, phase));
        if (!strstr(e.message, says))
                g_error("\"%s\" does not say \"%s\"", e.message, says);
        sd_bus_error_free(&e);
}

/* Whether nbdlinkd has libgnutls mapped. */
static bool daemon_maps_gnutls(void) {
        g_autofree char *path = g_strdup_printf("/proc/%d/maps", (int) fx.daemon_pid);
        g_autofree char *maps = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_get_contents(path, &maps, NULL, &error));
        g_assert_no_error(error);
        return strstr(maps, "/libgnutls.so") != NULL;
}

/* GnuTLS is loaded by the first TLS connection, not at start and not by
 * plaintext ones (daemon/nbd/gnutls-dl.h). The first case of the program: the
 * daemon has seen no TLS yet. */
static void test_gnutls_loaded_on_first_use(void) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        bool tls = true;

        g_assert_false(daemon_maps_gnutls());
        g_assert_cmpint(probe(plain, &(ProbeArgs) { .tls = "off" }, &e, &tls), >=, 0);
        g_assert_false(tls);
        g_assert_false(daemon_maps_gnutls());

        probe_ok(x509, &(ProbeArgs) { .ca = pki->ca_cert });
        g_assert_true(daemon_maps_gnutls());
        sd_bus_error_free(&e);
}

static void restart_daemon(const char *const *args) {
        stop_all();
        start_all_with_args(args);
}

/* --tls-ca-dir=ca_dir: the directory holds the test CA, so a caller
 * without tls-ca gets it; the caller's own tls-ca still wins. */
static void test_ca_dir(void) {
        g_autofree char *opt = g_strconcat("--tls-ca-dir=", ca_dir, NULL);
        const char *args[] = { opt, NULL };

        restart_daemon(args);
        probe_ok(x509, &(ProbeArgs) {});
        probe_ok(x509, &(ProbeArgs) { .ca = pki->ca_cert });
        probe_fails(x509, &(ProbeArgs) { .ca = pki->other_ca_cert }, ERROR_PREFIX "TLSFailed", ECONNABORTED,
                    "tls: ", "unknown CA");
        /* The directory serves a host name check like any CA. */
        probe_ok(x509, &(ProbeArgs) { .hostname = "localhost" });
}

/* Without a directory (explicitly none, or the default that does not
 * exist here) the system store decides, and it does not know our CA. */
static void test_system_trust(void) {
        const char *none[] = { "--tls-ca-dir=", NULL };

        restart_daemon(none);
        probe_fails(x509, &(ProbeArgs) {}, ERROR_PREFIX "TLSFailed", ECONNABORTED, "tls: ", "unknown CA");
        probe_ok(x509, &(ProbeArgs) { .ca = pki->ca_cert });

        restart_daemon(NULL);
        probe_fails(x509, &(ProbeArgs) {}, ERROR_PREFIX "TLSFailed", ECONNABORTED, "tls: ", "unknown CA");
}

static void test_ca_dir_empty(void) {
        g_autofree char *opt = g_strconcat("--tls-ca-dir=", empty_dir, NULL);
        const char *args[] = { opt, NULL };

        restart_daemon(args);
        probe_fails(x509, &(ProbeArgs) {}, ERROR_PREFIX "TLSFailed", ECONNABORTED,
                    "tls: ", "no usable CA certificate in the CA directory");
        /* A caller's CA does not need the directory. */
        probe_ok(x509, &(ProbeArgs) { .ca = pki->ca_cert });
}

/* A directory named on the command line must exist: a typo must not turn
 * into "trust the system store". */
static void test_ca_dir_bad_option(void) {
        g_autofree char *daemon_path = g_build_filename(builddir(), "daemon", "nbdlinkd", NULL);
        const char *const bad[] = { "--tls-ca-dir=/nonexistent/nbdlink-ca", "--tls-ca-dir=relative/ca", NULL };

        for (size_t i = 0; bad[i]; i++) {
                const char *argv[] = { daemon_path, bad[i], NULL };
                g_autofree char *err = NULL;
                g_autoptr(GError) error = NULL;
                int status;

                g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, child_setup, NULL,
                                           NULL, &err, &status, &error));
                g_assert_no_error(error);
                g_test_message("%s: %s", bad[i], err);
                g_assert_true(WIFEXITED(status));
                g_assert_cmpint(WEXITSTATUS(status), ==, 1);
                g_assert_true(g_str_has_prefix(err, "Failed to use --tls-ca-dir="));
        }
}

/* A machine without GnuTLS: here a file of the library's name that is no
 * library, found first through LD_LIBRARY_PATH. TLS fails with
 * Unsupported and a message that says why; plaintext still works. */
static void test_gnutls_missing(void) {
        g_autofree char *dir = test_scratch_subdir("no-gnutls");
        g_autofree char *bogus = test_write_file(dir, "libgnutls.so.30", "not a library\n");
        sd_bus_error e = SD_BUS_ERROR_NULL;
        bool tls = true;

        g_assert_nonnull(bogus);
        g_setenv("LD_LIBRARY_PATH", dir, TRUE);
        restart_daemon(NULL);
        g_unsetenv("LD_LIBRARY_PATH");

        probe_fails(x509, &(ProbeArgs) { .ca = pki->ca_cert }, ERROR_PREFIX "Unsupported", EOPNOTSUPP,
                    "tls: ", "TLS is not available: cannot load libgnutls.so.30");
        g_assert_cmpint(probe(plain, &(ProbeArgs) { .tls = "off" }, &e, &tls), >=, 0);
        g_assert_false(tls);
        sd_bus_error_free(&e);

        restart_daemon(NULL);
        probe_ok(x509, &(ProbeArgs) { .ca = pki->ca_cert });
}

static void test_wrong_ca(void) {
        probe_fails(x509, &(ProbeArgs) { .ca = pki->other_ca_cert }, ERROR_PREFIX "TLSFailed", ECONNABORTED,
                    "tls: certificate verification failed: ", "unknown CA");
}

static void test_wrong_host(void) {
        probe_fails(x509, &(ProbeArgs) { .ca = pki->ca_cert, .hostname = "wrong.example" },
                    ERROR_PREFIX "TLSFailed", ECONNABORTED,
                    "tls: certificate verification failed: ", "host name mismatch for \"wrong.example\"");
}

static void test_expired(void) {
        probe_fails(expired, &(ProbeArgs) { .ca = pki->ca_cert }, ERROR_PREFIX "TLSFailed", ECONNABORTED,
                    "tls: certificate verification failed: ", "certificate expired");
}

static void test_psk_good(void) {
        probe_ok(psk, &(ProbeArgs) { .psk = pki->psk_file, .username = pki->psk_username });
}

static void test_wrong_psk(void) {
        probe_fails(psk, &(ProbeArgs) { .psk = pki->wrong_psk_file, .username = pki->psk_username },
                    ERROR_PREFIX "TLSFailed", ECONNABORTED, "tls: ", "bad PSK");
}

static void test_unknown_psk_user(void) {
        probe_fails(psk, &(ProbeArgs) { .psk = pki->unknown_user_psk_file },
                    ERROR_PREFIX "TLSFailed", ECONNABORTED, "tls: ", "PSK");
}

/* A server that requires TLS, asked without it: never plaintext. */
static void test_tls_required(void) {
        probe_fails(x509, &(ProbeArgs) { .tls = "off" }, ERROR_PREFIX "TLSRequired", EPROTONOSUPPORT,
                    "handshake: ", "TLS");
        probe_fails(psk, &(ProbeArgs) { .tls = "off" }, ERROR_PREFIX "TLSRequired", EPROTONOSUPPORT,
                    "handshake: ", "TLS");
}

/* And the other way round: tls=require against a plaintext server. */
static void test_tls_unavailable(void) {
        probe_fails(plain, &(ProbeArgs) { .ca = pki->ca_cert }, ERROR_PREFIX "TLSRequired", EPROTONOSUPPORT,
                    "handshake: ", "TLS");
}

int main(int argc, char **argv) {
        g_autofree char *certs = NULL, *expired_certs = NULL, *psk_opt = NULL, *expired_dir = NULL;
        g_autofree char *ca_copy = NULL, *ca_contents = NULL;
        g_autoptr(GError) error = NULL;
        int r;

        g_test_init(&argc, &argv, NULL);
        /* sd_bus_error_get_errno() of our names. */
        g_assert_cmpint(nbdlink_bus_error_register(), >=, 0);

        pki = test_pki_new();
        expired_dir = test_pki_make_expired_server(pki);
        ca_dir = test_scratch_subdir("ca-dir");
        empty_dir = test_scratch_subdir("empty-ca-dir");
        g_assert_true(g_file_get_contents(pki->ca_cert, &ca_contents, NULL, &error));
        g_assert_no_error(error);
        ca_copy = test_write_file(ca_dir, "nbdlink-test-ca.pem", ca_contents);

        certs = g_strconcat("--tls-certificates=", pki->server_dir, NULL);
        expired_certs = g_strconcat("--tls-certificates=", expired_dir, NULL);
        psk_opt = g_strconcat("--tls-psk=", pki->psk_file, NULL);
        x509 = test_nbdkit_start("--tls=require", certs, "memory", "size=1M", NULL);
        expired = test_nbdkit_start("--tls=require", expired_certs, "memory", "size=1M", NULL);
        psk = test_nbdkit_start("--tls=require", psk_opt, "memory", "size=1M", NULL);
        plain = test_nbdkit_start("memory", "size=1M", NULL);

        start_all();

        g_test_add_func("/tls/gnutls-loaded-on-first-use", test_gnutls_loaded_on_first_use);
        g_test_add_func("/tls/wrong-ca", test_wrong_ca);
        g_test_add_func("/tls/wrong-host", test_wrong_host);
        g_test_add_func("/tls/expired", test_expired);
        g_test_add_func("/tls/psk/good", test_psk_good);
        g_test_add_func("/tls/psk/wrong-key", test_wrong_psk);
        g_test_add_func("/tls/psk/unknown-user", test_unknown_psk_user);
        g_test_add_func("/tls/required", test_tls_required);
        g_test_add_func("/tls/unavailable", test_tls_unavailable);
        g_test_add_func("/tls/ca-dir/used", test_ca_dir);
        g_test_add_func("/tls/ca-dir/system-trust", test_system_trust);
        g_test_add_func("/tls/ca-dir/empty", test_ca_dir_empty);
        g_test_add_func("/tls/ca-dir/bad-option", test_ca_dir_bad_option);
        g_test_add_func("/tls/gnutls-missing", test_gnutls_missing);
        r = g_test_run();

        stop_all();
        test_server_stop(x509);
        test_server_stop(expired);
        test_server_stop(psk);
        test_server_stop(plain);
        test_pki_free(pki);
        g_free(ca_dir);
        g_free(empty_dir);
        test_servers_cleanup();
        return r;
}
