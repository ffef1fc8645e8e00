/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TLS transport against nbdkit over TLS on loopback: net_connect(),
 * the handshake, then the relay (or the kTLS hand-off where the kernel
 * has the tls module) driven by a small NBD client in the kernel's place:
 * data integrity, flush, disconnect, the server killed mid-session,
 * relay_stop() while busy, no leaked descriptors. */

/* nbdlink headers first: GLib redefines MIN/MAX after them quietly. */
#include "conn.h"
#include "handshake.h"
#include "ktls.h"
#include "net.h"
#include "relay.h"
#include "tls.h"
#include "nbd-tx.h"
#include "proc-count.h"
#include "relay-check.h"
#include "pki.h"
#include "servers.h"

#include <errno.h>
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DISK_SIZE (16u * 1024u * 1024u)

static TestPki *pki;
static Blob ca_blob;

static TestServer *start_nbdkit(void) {
        g_autofree char *opt = g_strconcat("--tls-certificates=", pki->server_dir, NULL);

        return test_nbdkit_start("--tls=require", opt, "memory", "size=16M", NULL);
}

/* Connects and negotiates as the daemon's worker does; returns the Conn
 * in the transmission phase over TLS. */
static Conn *connect_tls(const TestServer *s, bool ktls) {
        TlsConfig cfg = { .ca = ca_blob, .hostname = "127.0.0.1", .ktls = ktls };
        HandshakeOptions opts = {
                .goal = HANDSHAKE_GO,
                .export_name = "",
                .tls = TLS_MODE_REQUIRE,
                .tls_config = &cfg,
        };
        char host[64];
        Error error = {};
        NbdAddress a = {};
        Handshake hs = {};
        usec_t deadline = deadline_after(10 * USEC_PER_SEC);
        Conn *conn = NULL;
        int fd = -EBADF;

        g_snprintf(host, sizeof(host), "127.0.0.1:%u", s->port);
        g_assert_cmpint(nbd_address_parse(&a, host, 0, &error), ==, 0);
        if (net_connect(&a, deadline, &fd, &error) < 0)
                g_error("%s", error.message);
        nbd_address_done(&a);
        g_assert_cmpint(conn_new_fd(&conn, fd), ==, 0);
        conn_set_deadline(conn, deadline);

        handshake_init(&hs, conn, &opts);
        if (handshake_run(&hs) < 0)
                g_error("handshake: %s", hs.error.message);
        g_assert_true(hs.info.tls);
        g_assert_cmpuint(hs.info.size, ==, DISK_SIZE);
        conn = handshake_take_conn(&hs);
        handshake_done(&hs);
        conn_set_deadline(conn, USEC_INFINITY);
        return conn;
}

static void test_rw(void) {
        unsigned fds = proc_count_fds(0);
        g_autoptr(TestServer) s = start_nbdkit();
        Relay *r = NULL;
        Conn *c;
        int kfd = -EBADF;

        c = connect_tls(s, false);
        g_test_message("nbdkit session: %s", gnutls_protocol_get_name(gnutls_protocol_get_version(conn_tls_session(c))));
        g_assert_cmpint(relay_new(&r, c, &kfd), ==, 0);
        nbd_tx_exercise(kfd, DISK_SIZE);
        nbd_tx_exercise(kfd, DISK_SIZE);
        g_assert_cmpint(nbd_tx_disc(kfd), ==, 0);
        g_assert_cmpint(nbd_tx_wait_eof(kfd, 10000), ==, 0);
        relay_check_ended(r);
        relay_check_result(r, -EPIPE, "relay: ");
        relay_free(r);
        safe_close(kfd);
        g_clear_pointer(&s, test_server_stop);
        g_assert_cmpuint(proc_count_fds(0), ==, fds);
}

static void test_server_killed(void) {
        unsigned fds = proc_count_fds(0);
        g_autoptr(TestServer) s = start_nbdkit();
        uint8_t buf[4096];
        Relay *r = NULL;
        int kfd = -EBADF;

        g_assert_cmpint(relay_new(&r, connect_tls(s, false), &kfd), ==, 0);
        g_assert_cmpint(nbd_tx_read(kfd, 0, buf, sizeof(buf)), ==, 0);

        /* nbdkit runs in its own process group with its connection
         * threads; the whole server dies at once. */
        g_assert_cmpint(kill(s->pid, SIGKILL), ==, 0);
        g_assert_cmpint(nbd_tx_wait_eof(kfd, 10000), ==, 0);
        relay_check_ended(r);
        relay_check_result(r, -EPIPE, "relay: ");
        relay_free(r);
        safe_close(kfd);
        g_clear_pointer(&s, test_server_stop);
        g_assert_cmpuint(proc_count_fds(0), ==, fds);
}

static gpointer busy_rw(gpointer userdata) {
        int fd = GPOINTER_TO_INT(userdata);
        g_autofree uint8_t *buf = g_malloc(1u << 20);
        int r;

        nbd_tx_fill_pattern(buf, 1u << 20, 3);
        do {
                r = nbd_tx_write(fd, 0, buf, 1u << 20);
                if (r == 0)
                        r = nbd_tx_read(fd, 0, buf, 1u << 20);
        } while (r == 0);
        return GINT_TO_POINTER(r);
}

static void test_stop_busy(void) {
        unsigned fds = proc_count_fds(0);
        g_autoptr(TestServer) s = start_nbdkit();
        GThread *worker;
        Relay *r = NULL;
        int kfd = -EBADF, k;

        g_assert_cmpint(relay_new(&r, connect_tls(s, false), &kfd), ==, 0);
        worker = g_thread_new("busy", busy_rw, GINT_TO_POINTER(kfd));
        g_usleep(300 * 1000);
        g_assert_false(relay_has_ended(r));
        g_assert_cmpint(relay_stop(r), ==, 0);
        k = GPOINTER_TO_INT(g_thread_join(worker));
        g_assert_true(k == -EPIPE || k == -ECONNRESET);
        relay_free(r);
        safe_close(kfd);
        g_clear_pointer(&s, test_server_stop);
        g_assert_cmpuint(proc_count_fds(0), ==, fds);
}

static void log_tls_stat(void) {
        g_autofree char *stat = NULL;

        if (g_file_get_contents("/proc/net/tls_stat", &stat, NULL, NULL))
                g_test_message("/proc/net/tls_stat:\n%s", stat);
}

/* A session negotiated for kTLS (TlsConfig.ktls) is TLS 1.2 AES-GCM even
 * though nbdkit prefers 1.3. Where the kernel has the tls module the
 * socket itself then carries the NBD traffic, encrypted by the kernel;
 * elsewhere ktls_new() declines and the relay carries it. */
static void test_ktls(void) {
        unsigned fds = proc_count_fds(0);
        g_autoptr(TestServer) s = start_nbdkit();
        Error error = {};
        KtlsFacts facts;
        Ktls *k = NULL;
        Relay *r = NULL;
        Conn *c;
        int kfd = -EBADF, e;

        c = connect_tls(s, true);
        g_assert_cmpint(ktls_facts_from_conn(&facts, c, true), ==, 0);
        g_assert_cmpint(facts.version, ==, GNUTLS_TLS1_2);
        g_assert_true(facts.cipher == GNUTLS_CIPHER_AES_256_GCM || facts.cipher == GNUTLS_CIPHER_AES_128_GCM);
        g_assert_true(facts.tcp);
        g_assert_cmpuint(facts.pending, ==, 0);

        e = ktls_new(&k, c, true, &kfd, &error);
        g_test_message("ktls_new: %d \"%s\"", e, error.message);
        if (ktls_kernel_supported()) {
                g_assert_cmpint(e, ==, 0);
                nbd_tx_exercise(kfd, DISK_SIZE);
                nbd_tx_exercise(kfd, DISK_SIZE);
                log_tls_stat();
                g_assert_cmpint(nbd_tx_disc(kfd), ==, 0);
                /* nbdkit answers DISC with close_notify, which a plain
                 * read() of a kTLS socket reports as -EIO. */
                e = nbd_tx_wait_eof(kfd, 10000);
                g_assert_true(e == 0 || e == -EIO);
                ktls_free(k);
        } else {
                g_assert_cmpint(e, ==, -EOPNOTSUPP);
                g_assert_true(g_str_has_prefix(error.message, "ktls: "));
                g_assert_nonnull(strstr(error.message, "tls module"));
                g_assert_cmpint(kfd, ==, -EBADF);
                g_assert_cmpint(relay_new(&r, c, &kfd), ==, 0);
                nbd_tx_exercise(kfd, DISK_SIZE);
                g_assert_cmpint(nbd_tx_disc(kfd), ==, 0);
                g_assert_cmpint(nbd_tx_wait_eof(kfd, 10000), ==, 0);
                relay_free(r);
        }
        safe_close(kfd);
        g_clear_pointer(&s, test_server_stop);
        g_assert_cmpuint(proc_count_fds(0), ==, fds);
}

int main(int argc, char **argv) {
        g_autofree char *ca = NULL;
        gsize ca_size = 0;
        int r;

        g_test_init(&argc, &argv, NULL);
        /* A server killed mid-write must not kill the test. */
        signal(SIGPIPE, SIG_IGN);

        pki = test_pki_new();
        g_assert_true(g_file_get_contents(pki->ca_cert, &ca, &ca_size, NULL));
        ca_blob = (Blob) { .data = ca, .size = ca_size };

        g_test_add_func("/relay/nbdkit/rw", test_rw);
        g_test_add_func("/relay/nbdkit/server-killed", test_server_killed);
        g_test_add_func("/relay/nbdkit/stop-busy", test_stop_busy);
        g_test_add_func("/ktls/nbdkit", test_ktls);

        r = g_test_run();
        test_pki_free(pki);
        test_servers_cleanup();
        return r;
}
