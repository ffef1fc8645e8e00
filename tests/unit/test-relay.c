/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TLS relay against an in-process GnuTLS NBD memory server on a
 * socketpair, driven through its kernel side by a small NBD client: data
 * integrity, TLS 1.3 tickets and key updates in the middle of the stream,
 * alerts, bad records, closes from either side, relay_stop(), no leaked
 * descriptors; and the kTLS decision as a pure function. */

/* nbdlink headers first: GLib redefines MIN/MAX after them quietly. */
#include "conn.h"
#include "ktls.h"
#include "relay.h"
#include "tls.h"
#include "tls-certs.h"
#include "nbd-tx.h"
#include "proc-count.h"
#include "relay-check.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DISK_SIZE (8u * 1024u * 1024u)
#define SERVER_PRIORITY_ANY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static TestCert ca, server_cert;
static char *ca_pem;
static size_t ca_pem_size;

typedef enum Misbehave {
        MISBEHAVE_NONE,
        MISBEHAVE_KEY_UPDATE,   /* TLS 1.3 KeyUpdate asking for ours, then go on */
        MISBEHAVE_TICKETS,      /* two more NewSessionTickets, then go on */
        MISBEHAVE_ALERT,        /* fatal alert, then close */
        MISBEHAVE_GARBAGE,      /* a record that does not decrypt, then close */
        MISBEHAVE_CLOSE,        /* close without close_notify */
} Misbehave;

typedef struct TestServer {
        int fd;
        GThread *thread;
        const char *priority;
        Misbehave misbehave;
        unsigned after;                 /* misbehave after this many requests */
        unsigned n_requests;
        bool saw_close_notify;
        bool saw_disc;
        gnutls_protocol_t version;
        uint8_t *disk;
} TestServer;

static int srv_recv_full(gnutls_session_t s, void *buf, size_t n) {
        uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = gnutls_record_recv(s, p, n);
                if (k == GNUTLS_E_INTERRUPTED || k == GNUTLS_E_AGAIN)
                        continue;
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return 0;
                p += k;
                n -= (size_t) k;
        }
        return 1;
}

static int srv_send_full(gnutls_session_t s, const void *buf, size_t n) {
        const uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = gnutls_record_send(s, p, n);
                if (k == GNUTLS_E_INTERRUPTED || k == GNUTLS_E_AGAIN)
                        continue;
                if (k < 0)
                        return (int) k;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static bool srv_misbehave(TestServer *t, gnutls_session_t s) {
        static const uint8_t garbage[] = {
                0x17, 0x03, 0x03, 0x00, 0x20,
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        };

        switch (t->misbehave) {
        case MISBEHAVE_KEY_UPDATE:
                g_assert_cmpint(gnutls_session_key_update(s, GNUTLS_KU_PEER), ==, 0);
                return true;
        case MISBEHAVE_TICKETS:
                g_assert_cmpint(gnutls_session_ticket_send(s, 2, 0), ==, 0);
                return true;
        case MISBEHAVE_ALERT:
                (void) gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
                return false;
        case MISBEHAVE_GARBAGE:
                g_assert_cmpint(send(t->fd, garbage, sizeof(garbage), MSG_NOSIGNAL), ==, (ssize_t) sizeof(garbage));
                return false;
        case MISBEHAVE_CLOSE:
                return false;
        case MISBEHAVE_NONE:
        default:
                return true;
        }
}

/* A memory-backed NBD transmission phase over TLS, simple replies. */
static gpointer server_thread(gpointer userdata) {
        TestServer *t = userdata;
        gnutls_certificate_credentials_t cred = test_cert_server_credentials(&server_cert, &ca);
        gnutls_datum_t ticket_key = {};
        gnutls_session_t s;
        int r;

        g_assert_cmpint(gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NO_SIGNAL), ==, 0);
        g_assert_cmpint(gnutls_priority_set_direct(s, t->priority, NULL), ==, 0);
        g_assert_cmpint(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred), ==, 0);
        /* Tickets on: TLS 1.3 servers then send NewSessionTicket right
         * after the handshake, as nbdkit and qemu-nbd do. */
        g_assert_cmpint(gnutls_session_ticket_key_generate(&ticket_key), ==, 0);
        g_assert_cmpint(gnutls_session_ticket_enable_server(s, &ticket_key), ==, 0);
        gnutls_transport_set_int(s, t->fd);
        do
                r = gnutls_handshake(s);
        while (r < 0 && !gnutls_error_is_fatal(r));
        if (r < 0) {
                g_test_message("server handshake: %s", gnutls_strerror(r));
                goto out;
        }
        t->version = gnutls_protocol_get_version(s);

        for (;;) {
                uint8_t req[28], rep[16] = { 0x67, 0x44, 0x66, 0x98 };
                uint32_t length;
                uint64_t offset;
                uint16_t type;

                r = srv_recv_full(s, req, sizeof(req));
                if (r == 0) {
                        t->saw_close_notify = true;
                        break;
                }
                if (r < 0)
                        break;
                g_assert_cmpuint(GUINT32_FROM_BE(*(uint32_t *) req), ==, 0x25609513);
                type = GUINT16_FROM_BE(*(uint16_t *) (req + 6));
                memcpy(rep + 8, req + 8, 8);
                memcpy(&offset, req + 16, 8);
                offset = GUINT64_FROM_BE(offset);
                memcpy(&length, req + 24, 4);
                length = GUINT32_FROM_BE(length);
                t->n_requests++;

                if (type == NBD_TX_CMD_DISC) {
                        t->saw_disc = true;
                        (void) gnutls_bye(s, GNUTLS_SHUT_WR);
                        break;
                }
                g_assert_cmpuint(offset + length, <=, DISK_SIZE);
                if (type == NBD_TX_CMD_WRITE && srv_recv_full(s, t->disk + offset, length) <= 0)
                        break;
                if (srv_send_full(s, rep, sizeof(rep)) < 0)
                        break;
                if (type == NBD_TX_CMD_READ && srv_send_full(s, t->disk + offset, length) < 0)
                        break;

                if (t->n_requests == t->after && !srv_misbehave(t, s))
                        break;
        }

out:
        (void) shutdown(t->fd, SHUT_RDWR);
        gnutls_deinit(s);
        gnutls_free(ticket_key.data);
        gnutls_certificate_free_credentials(cred);
        return NULL;
}

typedef struct Fixture {
        TestServer server;
        Relay *relay;
        int kernel_fd;
        unsigned fds_before;
} Fixture;

/* Connects a TLS Conn to a fresh server thread. */
static Conn *fixture_connect(Fixture *f, const char *server_priority, bool ktls_priority, Misbehave m, unsigned after) {
        TlsConfig cfg = {
                .ca = { .data = ca_pem, .size = ca_pem_size },
                .hostname = "localhost",
                .ktls = ktls_priority,
        };
        Error error = {};
        Conn *c = NULL;
        int sv[2];

        f->fds_before = proc_count_fds(0);
        f->kernel_fd = -EBADF;
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        f->server = (TestServer) {
                .fd = sv[1],
                .priority = server_priority,
                .misbehave = m,
                .after = after,
                .disk = g_malloc0(DISK_SIZE),
        };
        f->server.thread = g_thread_new("tls-server", server_thread, &f->server);

        g_assert_cmpint(conn_new_fd(&c, sv[0]), ==, 0);
        conn_set_deadline(c, deadline_after(10 * USEC_PER_SEC));
        if (conn_start_tls(c, &cfg, &error) < 0)
                g_error("conn_start_tls: %s", error.message);
        conn_set_deadline(c, USEC_INFINITY);
        return c;
}

static void fixture_relay(Fixture *f, Misbehave m, unsigned after) {
        Conn *c = fixture_connect(f, SERVER_PRIORITY_ANY, false, m, after);

        g_assert_cmpint(relay_new(&f->relay, c, &f->kernel_fd), ==, 0);
        g_assert_cmpint(f->kernel_fd, >=, 0);
        g_assert_false(relay_has_ended(f->relay));
        g_assert_cmpint(relay_result(f->relay, NULL), ==, -EBUSY);
}

static void fixture_finish(Fixture *f) {
        f->relay = relay_free(f->relay);
        f->kernel_fd = safe_close(f->kernel_fd);
        if (f->server.thread)
                g_thread_join(f->server.thread);
        f->server.fd = safe_close(f->server.fd);
        g_free(f->server.disk);
        g_assert_cmpuint(proc_count_fds(0), ==, f->fds_before);
}

static void test_rw_disconnect(void) {
        Fixture f;

        fixture_relay(&f, MISBEHAVE_NONE, 0);
        nbd_tx_exercise(f.kernel_fd, DISK_SIZE);
        g_assert_cmpint(f.server.version, ==, GNUTLS_TLS1_3);

        /* As the kernel does on NBD_DISCONNECT: DISC, then wait for the
         * server to hang up, which the relay passes on as end-of-file. */
        g_assert_cmpint(nbd_tx_disc(f.kernel_fd), ==, 0);
        g_assert_cmpint(nbd_tx_wait_eof(f.kernel_fd, 10000), ==, 0);
        relay_check_ended(f.relay);
        relay_check_result(f.relay, -EPIPE, "relay: ");
        g_assert_true(f.server.saw_disc);
        fixture_finish(&f);
}

static void test_kernel_closes(void) {
        Fixture f;

        fixture_relay(&f, MISBEHAVE_NONE, 0);
        nbd_tx_exercise(f.kernel_fd, DISK_SIZE);
        f.kernel_fd = safe_close(f.kernel_fd);
        relay_check_ended(f.relay);
        relay_check_result(f.relay, 0, NULL);
        /* The server sees a clean close_notify once the relay is freed. */
        f.relay = relay_free(f.relay);
        g_thread_join(g_steal_pointer(&f.server.thread));
        g_assert_true(f.server.saw_close_notify);
        fixture_finish(&f);
}

static void test_post_handshake(gconstpointer data) {
        Misbehave m = GPOINTER_TO_INT(data);
        Fixture f;

        /* Key updates and tickets in the middle of the stream are GnuTLS's
         * business: the data must come through unharmed. */
        fixture_relay(&f, m, 3);
        nbd_tx_exercise(f.kernel_fd, DISK_SIZE);
        nbd_tx_exercise(f.kernel_fd, DISK_SIZE);
        g_assert_false(relay_has_ended(f.relay));
        g_assert_cmpint(relay_stop(f.relay), ==, 0);
        g_assert_cmpint(nbd_tx_wait_eof(f.kernel_fd, 10000), ==, 0);
        fixture_finish(&f);
}

static void test_server_fails(gconstpointer data) {
        Misbehave m = GPOINTER_TO_INT(data);
        Fixture f;
        uint8_t buf[4096];

        fixture_relay(&f, m, 1);
        g_assert_cmpint(nbd_tx_read(f.kernel_fd, 0, buf, sizeof(buf)), ==, 0);
        g_assert_cmpint(nbd_tx_wait_eof(f.kernel_fd, 10000), ==, 0);
        relay_check_ended(f.relay);
        if (m == MISBEHAVE_CLOSE)
                relay_check_result(f.relay, -EPIPE, "relay: ");
        else
                relay_check_result(f.relay, -ECONNABORTED, "tls: ");
        if (m == MISBEHAVE_ALERT) {
                const char *msg;

                (void) relay_result(f.relay, &msg);
                g_assert_nonnull(strstr(msg, "alert"));
        }
        fixture_finish(&f);
}

static void test_stop_idle(void) {
        Fixture f;

        fixture_relay(&f, MISBEHAVE_NONE, 0);
        g_assert_cmpint(relay_stop(f.relay), ==, 0);
        g_assert_true(relay_has_ended(f.relay));
        relay_check_result(f.relay, 0, NULL);
        g_assert_cmpint(nbd_tx_wait_eof(f.kernel_fd, 10000), ==, 0);
        /* Idempotent. */
        g_assert_cmpint(relay_stop(f.relay), ==, 0);
        fixture_finish(&f);
}

static gpointer busy_writer(gpointer userdata) {
        int fd = GPOINTER_TO_INT(userdata);
        g_autofree uint8_t *buf = g_malloc(256 * 1024);
        int r;

        nbd_tx_fill_pattern(buf, 256 * 1024, 7);
        do
                r = nbd_tx_write(fd, 0, buf, 256 * 1024);
        while (r == 0);
        return GINT_TO_POINTER(r);
}

static void test_stop_busy(void) {
        GThread *writer;
        Fixture f;
        int r;

        fixture_relay(&f, MISBEHAVE_NONE, 0);
        writer = g_thread_new("writer", busy_writer, GINT_TO_POINTER(f.kernel_fd));
        g_usleep(200 * 1000);
        g_assert_false(relay_has_ended(f.relay));
        g_assert_cmpint(relay_stop(f.relay), ==, 0);
        r = GPOINTER_TO_INT(g_thread_join(writer));
        /* The writer learns it from a failed write or an early EOF. */
        g_assert_true(r == -EPIPE || r == -ECONNRESET);
        g_assert_cmpuint(f.server.n_requests, >, 1);
        fixture_finish(&f);
}

static void test_not_tls(void) {
        Relay *r = NULL;
        Conn *c = NULL;
        int sv[2], kfd = -EBADF;

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        g_assert_cmpint(conn_new_fd(&c, sv[0]), ==, 0);
        g_assert_cmpint(relay_new(&r, c, &kfd), ==, -EINVAL);
        g_assert_null(r);
        g_assert_cmpint(kfd, ==, -EBADF);
        conn_free(c);
        safe_close(sv[1]);
}

/* With TlsConfig.ktls the session is TLS 1.2 AES-GCM even though the
 * server allows 1.3; a socketpair is not TCP, so ktls_new() declines with
 * the conn untouched, and the relay takes it. */
static void test_ktls_fallback(void) {
        Error error = {};
        Ktls *k = NULL;
        KtlsFacts facts;
        Fixture f;
        Conn *c;
        int kfd = -EBADF;

        c = fixture_connect(&f, SERVER_PRIORITY_ANY, true, MISBEHAVE_NONE, 0);
        g_assert_cmpint(ktls_facts_from_conn(&facts, c, true), ==, 0);
        g_assert_cmpint(facts.version, ==, GNUTLS_TLS1_2);
        g_assert_true(facts.cipher == GNUTLS_CIPHER_AES_256_GCM || facts.cipher == GNUTLS_CIPHER_AES_128_GCM);
        g_assert_false(facts.tcp);

        g_assert_cmpint(ktls_new(&k, c, true, &kfd, &error), ==, -EOPNOTSUPP);
        g_assert_null(k);
        g_assert_cmpint(kfd, ==, -EBADF);
        g_assert_true(g_str_has_prefix(error.message, "ktls: "));
        g_assert_nonnull(strstr(error.message, "not TCP"));

        g_assert_cmpint(relay_new(&f.relay, c, &f.kernel_fd), ==, 0);
        nbd_tx_exercise(f.kernel_fd, DISK_SIZE);
        g_assert_cmpint(f.server.version, ==, GNUTLS_TLS1_2);
        g_assert_cmpint(nbd_tx_disc(f.kernel_fd), ==, 0);
        g_assert_cmpint(nbd_tx_wait_eof(f.kernel_fd, 10000), ==, 0);
        fixture_finish(&f);
}

static void test_ktls_usable(void) {
        const KtlsFacts good = {
                .wanted = true, .kernel = true, .tcp = true,
                .version = GNUTLS_TLS1_2, .cipher = GNUTLS_CIPHER_AES_256_GCM,
        };
        const char *reason = NULL;
        KtlsFacts f;

        g_assert_true(ktls_usable(&good, &reason));
        g_assert_null(reason);
        f = good, f.cipher = GNUTLS_CIPHER_AES_128_GCM;
        g_assert_true(ktls_usable(&f, NULL));
        /* GnuTLS put both directions into the kernel itself. */
        f = good, f.kernel = false, f.gnutls_ktls = GNUTLS_KTLS_DUPLEX;
        g_assert_true(ktls_usable(&f, NULL));

#define ASSERT_NOT_USABLE(field, value, needle)                         \
        do {                                                            \
                f = good;                                               \
                f.field = value;                                        \
                g_assert_false(ktls_usable(&f, &reason));               \
                g_assert_nonnull(reason);                               \
                g_assert_nonnull(strstr(reason, needle));               \
        } while (0)

        ASSERT_NOT_USABLE(wanted, false, "tls-ktls");
        ASSERT_NOT_USABLE(kernel, false, "tls module");
        ASSERT_NOT_USABLE(tcp, false, "not TCP");
        ASSERT_NOT_USABLE(version, GNUTLS_TLS1_3, "TLS 1.3");
        ASSERT_NOT_USABLE(version, GNUTLS_TLS1_1, "TLS 1.2");
        ASSERT_NOT_USABLE(cipher, GNUTLS_CIPHER_CHACHA20_POLY1305, "AES-GCM");
        ASSERT_NOT_USABLE(cipher, GNUTLS_CIPHER_AES_128_CBC, "AES-GCM");
        ASSERT_NOT_USABLE(pending, 5, "still holds");
        ASSERT_NOT_USABLE(gnutls_ktls, GNUTLS_KTLS_RECV, "one direction");
        ASSERT_NOT_USABLE(gnutls_ktls, GNUTLS_KTLS_SEND, "one direction");
#undef ASSERT_NOT_USABLE

        g_assert_cmpstr(transport_mode_to_string(TRANSPORT_MODE_NONE), ==, "none");
        g_assert_cmpstr(transport_mode_to_string(TRANSPORT_MODE_RELAY), ==, "relay");
        g_assert_cmpstr(transport_mode_to_string(TRANSPORT_MODE_KTLS), ==, "ktls");
        g_assert_null(transport_mode_to_string(_TRANSPORT_MODE_MAX));

        /* Whatever this kernel offers, the option wins. */
        g_assert_false(ktls_wanted_for_handshake(false));
        g_test_message("this kernel offers kTLS: %s", ktls_kernel_supported() ? "yes" : "no");
}

int main(int argc, char **argv) {
        int r;

        g_test_init(&argc, &argv, NULL);
        test_cert_make_ca(&ca, "nbdlink relay test CA");
        test_cert_make_leaf(&server_cert, &ca, "localhost", NULL, false, false);
        ca_pem = test_cert_pem(&ca, &ca_pem_size);

        g_test_add_func("/relay/rw-disconnect", test_rw_disconnect);
        g_test_add_func("/relay/kernel-closes", test_kernel_closes);
        g_test_add_data_func("/relay/post-handshake/key-update", GINT_TO_POINTER(MISBEHAVE_KEY_UPDATE), test_post_handshake);
        g_test_add_data_func("/relay/post-handshake/tickets", GINT_TO_POINTER(MISBEHAVE_TICKETS), test_post_handshake);
        g_test_add_data_func("/relay/server/alert", GINT_TO_POINTER(MISBEHAVE_ALERT), test_server_fails);
        g_test_add_data_func("/relay/server/bad-record", GINT_TO_POINTER(MISBEHAVE_GARBAGE), test_server_fails);
        g_test_add_data_func("/relay/server/close", GINT_TO_POINTER(MISBEHAVE_CLOSE), test_server_fails);
        g_test_add_func("/relay/stop-idle", test_stop_idle);
        g_test_add_func("/relay/stop-busy", test_stop_busy);
        g_test_add_func("/relay/not-tls", test_not_tls);
        g_test_add_func("/ktls/usable", test_ktls_usable);
        g_test_add_func("/ktls/fallback-to-relay", test_ktls_fallback);

        r = g_test_run();
        g_free(ca_pem);
        test_cert_done(&server_cert);
        test_cert_done(&ca);
        return r;
}
