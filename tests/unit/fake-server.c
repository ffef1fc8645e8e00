/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scripted NBD server of the unit tests: plays its steps on a thread,
 * with a bounded wait on every read so that a broken client fails the test
 * instead of hanging it, then checks that the client said nothing more. */

/* nbdlink headers first: GLib redefines MIN/MAX after them quietly, the
 * other way round warns. */
#include "fake-server.h"
#include "nbd-protocol.h"

#include <endian.h>
#include <glib.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>


#define FS_READ_TIMEOUT_MS 10000
/* How many of the client's surplus bytes a mismatch shows. */
#define FS_TRAILING_SHOWN 16

typedef enum StepType {
        STEP_SEND,
        STEP_EXPECT,
        STEP_SLEEP,
        STEP_TRICKLE,
        STEP_DRAIN,
        STEP_EXPECT_EOF,
        STEP_EXPECT_CLIENT_HELLO,
        STEP_TLS_X509,
        STEP_TLS_PSK,
        STEP_ALLOW_EARLY_CLOSE,
} StepType;

typedef struct Step {
        StepType type;
        GBytes *data;
        unsigned ms;
        bool expect_failure;
} Step;

struct FakeServer {
        GArray *steps;
        int fd;
        int done_fd;            /* eventfd, written by join: the client has said all it will say */
        bool peer_closed;       /* a read already saw the client's end of the stream */
        pthread_t thread;
        bool started;
        bool allow_early_close;
        char *error;
        gnutls_session_t session;
        gnutls_certificate_credentials_t x509;
        gnutls_psk_server_credentials_t psk;
        bool require_client_cert;
        const char *tls_priority;       /* NULL: GnuTLS's NORMAL (+PSK) */
        bool client_cert_seen;
};

static void step_clear(gpointer p) {
        Step *st = p;

        if (st->data)
                g_bytes_unref(st->data);
}

FakeServer *fake_server_new(void) {
        FakeServer *s = g_new0(FakeServer, 1);

        s->steps = g_array_new(FALSE, TRUE, sizeof(Step));
        g_array_set_clear_func(s->steps, step_clear);
        s->fd = -1;
        s->done_fd = eventfd(0, EFD_CLOEXEC);
        g_assert_cmpint(s->done_fd, >=, 0);
        return s;
}

void fake_server_free(FakeServer *s) {
        if (!s)
                return;
        g_assert_false(s->started);
        g_array_unref(s->steps);
        if (s->session)
                gnutls_deinit(s->session);
        if (s->x509)
                gnutls_certificate_free_credentials(s->x509);
        if (s->psk)
                gnutls_psk_free_server_credentials(s->psk);
        if (s->fd >= 0)
                close(s->fd);
        close(s->done_fd);
        g_free(s->error);
        g_free(s);
}

static void add_step(FakeServer *s, StepType type, const void *data, size_t n, unsigned ms) {
        Step st = { .type = type, .ms = ms };

        if (data || n > 0)
                st.data = g_bytes_new(data, n);
        g_array_append_val(s->steps, st);
}

void fs_send(FakeServer *s, const void *data, size_t n) {
        add_step(s, STEP_SEND, data, n, 0);
}

void fs_send_u16(FakeServer *s, uint16_t v) {
        v = htobe16(v);
        fs_send(s, &v, sizeof(v));
}

void fs_send_u32(FakeServer *s, uint32_t v) {
        v = htobe32(v);
        fs_send(s, &v, sizeof(v));
}

void fs_send_u64(FakeServer *s, uint64_t v) {
        v = htobe64(v);
        fs_send(s, &v, sizeof(v));
}

void fs_send_zeroes(FakeServer *s, size_t n) {
        g_autofree void *z = g_malloc0(n);
        fs_send(s, z, n);
}

void fs_expect(FakeServer *s, const void *data, size_t n) {
        add_step(s, STEP_EXPECT, data, n, 0);
}

void fs_expect_u32(FakeServer *s, uint32_t v) {
        v = htobe32(v);
        fs_expect(s, &v, sizeof(v));
}

void fs_sleep(FakeServer *s, unsigned ms) {
        add_step(s, STEP_SLEEP, NULL, 0, ms);
}

void fs_trickle(FakeServer *s, const void *data, size_t n, unsigned ms) {
        add_step(s, STEP_TRICKLE, data, n, ms);
}

void fs_drain(FakeServer *s) {
        add_step(s, STEP_DRAIN, NULL, 0, 0);
}

void fs_expect_eof(FakeServer *s) {
        add_step(s, STEP_EXPECT_EOF, NULL, 0, 0);
}

void fs_expect_tls_client_hello(FakeServer *s) {
        add_step(s, STEP_EXPECT_CLIENT_HELLO, NULL, 0, 0);
}

void fake_server_allow_early_close(FakeServer *s) {
        add_step(s, STEP_ALLOW_EARLY_CLOSE, NULL, 0, 0);
}

void fs_start_tls_x509(FakeServer *s, gnutls_certificate_credentials_t cred, bool expect_failure) {
        Step st = { .type = STEP_TLS_X509, .expect_failure = expect_failure };

        g_assert_null(s->x509);
        s->x509 = cred;
        g_array_append_val(s->steps, st);
}

void fs_start_tls_psk(FakeServer *s, gnutls_psk_server_credentials_t cred, bool expect_failure) {
        Step st = { .type = STEP_TLS_PSK, .expect_failure = expect_failure };

        g_assert_null(s->psk);
        s->psk = cred;
        g_array_append_val(s->steps, st);
}

void fake_server_set_tls_priority(FakeServer *s, const char *priority) {
        s->tls_priority = priority;
}

void fake_server_require_client_cert(FakeServer *s) {
        s->require_client_cert = true;
}

bool fake_server_client_cert_seen(FakeServer *s) {
        return s->client_cert_seen;
}

void fs_greeting_newstyle(FakeServer *s, uint16_t handshake_flags) {
        fs_send_u64(s, NBD_MAGIC);
        fs_send_u64(s, NBD_IHAVEOPT);
        fs_send_u16(s, handshake_flags);
}

void fs_greeting_oldstyle(FakeServer *s, uint64_t size, uint32_t flags) {
        fs_send_u64(s, NBD_MAGIC);
        fs_send_u64(s, NBD_OLDSTYLE_MAGIC);
        fs_send_u64(s, size);
        fs_send_u32(s, flags);
        fs_send_zeroes(s, NBD_OLDSTYLE_ZEROES);
}

void fs_expect_option(FakeServer *s, uint32_t option, const void *data, uint32_t len) {
        struct nbd_option o = {
                .magic = htobe64(NBD_IHAVEOPT),
                .option = htobe32(option),
                .length = htobe32(len),
        };

        fs_expect(s, &o, sizeof(o));
        if (len > 0)
                fs_expect(s, data, len);
}

void fs_expect_go(FakeServer *s, uint32_t option, const char *name) {
        g_autoptr(GByteArray) b = g_byte_array_new();
        uint32_t len = htobe32((uint32_t) strlen(name));
        uint16_t n = htobe16(4);
        const uint16_t infos[] = {
                htobe16(NBD_INFO_EXPORT), htobe16(NBD_INFO_NAME),
                htobe16(NBD_INFO_DESCRIPTION), htobe16(NBD_INFO_BLOCK_SIZE),
        };

        g_byte_array_append(b, (const guint8 *) &len, 4);
        g_byte_array_append(b, (const guint8 *) name, (guint) strlen(name));
        g_byte_array_append(b, (const guint8 *) &n, 2);
        g_byte_array_append(b, (const guint8 *) infos, sizeof(infos));
        fs_expect_option(s, option, b->data, b->len);
}

void fs_reply_header(FakeServer *s, uint64_t magic, uint32_t option, uint32_t type, uint32_t len) {
        struct nbd_option_reply r = {
                .magic = htobe64(magic),
                .option = htobe32(option),
                .type = htobe32(type),
                .length = htobe32(len),
        };

        fs_send(s, &r, sizeof(r));
}

void fs_reply(FakeServer *s, uint32_t option, uint32_t type, const void *data, uint32_t len) {
        fs_reply_header(s, NBD_REP_MAGIC, option, type, len);
        if (len > 0)
                fs_send(s, data, len);
}

void fs_info_export(FakeServer *s, uint32_t option, uint64_t size, uint16_t flags) {
        struct nbd_info_export e = {
                .type = htobe16(NBD_INFO_EXPORT),
                .size = htobe64(size),
                .flags = htobe16(flags),
        };

        fs_reply(s, option, NBD_REP_INFO, &e, sizeof(e));
}

void fs_info_block_size(FakeServer *s, uint32_t option, uint32_t min, uint32_t pref, uint32_t max) {
        struct nbd_info_block_size b = {
                .type = htobe16(NBD_INFO_BLOCK_SIZE),
                .minimum = htobe32(min),
                .preferred = htobe32(pref),
                .maximum = htobe32(max),
        };

        fs_reply(s, option, NBD_REP_INFO, &b, sizeof(b));
}

void fs_info_string(FakeServer *s, uint32_t option, uint16_t info, const char *str) {
        g_autoptr(GByteArray) b = g_byte_array_new();
        uint16_t t = htobe16(info);

        g_byte_array_append(b, (const guint8 *) &t, 2);
        g_byte_array_append(b, (const guint8 *) str, (guint) strlen(str));
        fs_reply(s, option, NBD_REP_INFO, b->data, b->len);
}

void fs_server_entry(FakeServer *s, const char *name, const char *description) {
        g_autoptr(GByteArray) b = g_byte_array_new();
        uint32_t len = htobe32((uint32_t) strlen(name));

        g_byte_array_append(b, (const guint8 *) &len, 4);
        g_byte_array_append(b, (const guint8 *) name, (guint) strlen(name));
        g_byte_array_append(b, (const guint8 *) description, (guint) strlen(description));
        fs_reply(s, NBD_OPT_LIST, NBD_REP_SERVER, b->data, b->len);
}

/* I/O of the server thread, plain or through its TLS session. */
static ssize_t srv_write(FakeServer *s, const void *p, size_t n) {
        if (s->session) {
                ssize_t k;

                do
                        k = gnutls_record_send(s->session, p, n);
                while (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED);
                return k < 0 ? -EPIPE : k;
        }
        return send(s->fd, p, n, MSG_NOSIGNAL) < 0 ? -errno : (ssize_t) n;
}

static int srv_wait_readable(FakeServer *s) {
        struct pollfd p = { .fd = s->fd, .events = POLLIN };
        int r;

        if (s->session && gnutls_record_check_pending(s->session) > 0)
                return 0;
        do
                r = poll(&p, 1, FS_READ_TIMEOUT_MS);
        while (r < 0 && errno == EINTR);
        return r > 0 ? 0 : -ETIMEDOUT;
}

/* > 0 bytes, 0 at EOF, < 0 on error or timeout. */
static ssize_t srv_read(FakeServer *s, void *p, size_t n) {
        if (srv_wait_readable(s) < 0)
                return -ETIMEDOUT;
        if (s->session) {
                ssize_t k;

                do
                        k = gnutls_record_recv(s->session, p, n);
                while (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED);
                if (k == GNUTLS_E_PREMATURE_TERMINATION)
                        k = 0;
                if (k == 0)
                        s->peer_closed = true;
                return k < 0 ? -EIO : k;
        }
        ssize_t k = recv(s->fd, p, n, 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET))
                s->peer_closed = true;
        return k < 0 ? -errno : k;
}

static int srv_read_full(FakeServer *s, void *p, size_t n) {
        uint8_t *q = p;

        while (n > 0) {
                ssize_t k = srv_read(s, q, n);
                if (k <= 0)
                        return k == 0 ? -EPIPE : (int) k;
                q += k;
                n -= (size_t) k;
        }
        return 0;
}

static void fail(FakeServer *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(FakeServer *s, const char *fmt, ...) {
        va_list ap;

        if (s->error)
                return;
        va_start(ap, fmt);
        s->error = g_strdup_vprintf(fmt, ap);
        va_end(ap);
}

static int srv_tls(FakeServer *s, const Step *st) {
        int r;

        r = gnutls_init(&s->session, GNUTLS_SERVER | GNUTLS_NO_SIGNAL);
        g_assert_cmpint(r, ==, 0);
        if (st->type == STEP_TLS_X509) {
                r = gnutls_priority_set_direct(s->session, s->tls_priority ?: "NORMAL", NULL);
                g_assert_cmpint(r, ==, 0);
                r = gnutls_credentials_set(s->session, GNUTLS_CRD_CERTIFICATE, s->x509);
        } else {
                r = gnutls_priority_set_direct(s->session, s->tls_priority ?: "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK", NULL);
                g_assert_cmpint(r, ==, 0);
                r = gnutls_credentials_set(s->session, GNUTLS_CRD_PSK, s->psk);
        }
        g_assert_cmpint(r, ==, 0);
        if (s->require_client_cert)
                gnutls_certificate_server_set_request(s->session, GNUTLS_CERT_REQUIRE);
        gnutls_transport_set_int(s->session, s->fd);
        gnutls_handshake_set_timeout(s->session, FS_READ_TIMEOUT_MS);

        do
                r = gnutls_handshake(s->session);
        while (r < 0 && !gnutls_error_is_fatal(r));

        if (r < 0) {
                if (!st->expect_failure)
                        fail(s, "server TLS handshake failed: %s", gnutls_strerror(r));
                /* Nothing goes through a failed session: whatever the
                 * client says next is checked as it comes off the wire. */
                gnutls_deinit(s->session);
                s->session = NULL;
                return -1;
        }
        if (st->expect_failure) {
                fail(s, "server TLS handshake succeeded but should have failed");
                return -1;
        }
        if (s->require_client_cert) {
                unsigned n = 0;
                s->client_cert_seen = gnutls_certificate_get_peers(s->session, &n) && n > 0;
        }
        return 0;
}

static bool script_has_step(FakeServer *s, guint from, StepType type) {
        for (guint i = from; i < s->steps->len; i++)
                if (g_array_index(s->steps, Step, i).type == type)
                        return true;
        return false;
}

/* One read for the end-of-script check, on the non-blocking socket: > 0
 * bytes, 0 when the client has closed (a TLS close_notify, end of file, a
 * reset), -EAGAIN when nothing (or no whole TLS record) is there yet, and
 * -EPROTO for bytes that are not TLS where TLS was spoken. */
static ssize_t srv_read_trailing(FakeServer *s, void *p, size_t n) {
        ssize_t k;

        if (s->session) {
                do
                        k = gnutls_record_recv(s->session, p, n);
                while (k == GNUTLS_E_INTERRUPTED);
                if (k >= 0)
                        return k;
                if (k == GNUTLS_E_AGAIN)
                        return -EAGAIN;
                /* A reset surfaces as a pull error. */
                if (k == GNUTLS_E_PREMATURE_TERMINATION || k == GNUTLS_E_PULL_ERROR)
                        return 0;
                fail(s, "after the script: the client sent something that is not a TLS record: %s",
                     gnutls_strerror((int) k));
                return -EPROTO;
        }
        do
                k = recv(s->fd, p, n, MSG_DONTWAIT);
        while (k < 0 && errno == EINTR);
        if (k >= 0)
                return k;
        if (errno == ECONNRESET)
                return 0;
        return errno == EAGAIN ? -EAGAIN : -errno;
}

/* The end of every script: the client must not say another word. Waits
 * until the client closes, or until join says the client is done (by then
 * everything it wrote is in our receive queue, so that is no race), and at
 * most FS_READ_TIMEOUT_MS, as a guard only: every test joins as soon as its
 * client is finished, so this neither slows a passing script nor depends on
 * how fast the machine is. */
static void srv_check_trailing(FakeServer *s) {
        struct pollfd p[2] = {
                { .fd = s->fd, .events = POLLIN },
                { .fd = s->done_fd, .events = POLLIN },
        };
        gint64 deadline = g_get_monotonic_time() + FS_READ_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
        uint8_t shown[FS_TRAILING_SHOWN];
        size_t total = 0;
        bool fragment = false;  /* TLS bytes read that are not yet a whole record */
        int flags;

        if (s->peer_closed)
                return;
        /* Non-blocking, so that a partial TLS record cannot stall the read. */
        flags = fcntl(s->fd, F_GETFL);
        g_assert_cmpint(flags, >=, 0);
        g_assert_cmpint(fcntl(s->fd, F_SETFL, flags | O_NONBLOCK), ==, 0);

        for (;;) {
                uint8_t buf[4096];
                bool done = false;
                ssize_t k;

                if (!(s->session && gnutls_record_check_pending(s->session) > 0)) {
                        gint64 left = deadline - g_get_monotonic_time();
                        int r;

                        if (left <= 0)
                                break;
                        r = poll(p, G_N_ELEMENTS(p), (int) ((left + 999) / 1000));
                        if (r < 0 && errno == EINTR)
                                continue;
                        g_assert_cmpint(r, >=, 0);
                        if (r == 0)
                                break;
                        done = p[1].revents & POLLIN;
                        /* Join came and the queue is empty: the client is
                         * finished and said nothing more. */
                        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                                if (done)
                                        break;
                                continue;
                        }
                }

                k = srv_read_trailing(s, buf, sizeof(buf));
                if (k == -EAGAIN) {
                        fragment = s->session != NULL;
                        if (done && fragment)
                                break;
                        continue;
                }
                if (k < 0) {
                        if (k != -EPROTO)
                                fail(s, "after the script: read failed: %s", g_strerror((int) -k));
                        return;
                }
                if (k == 0)
                        break;
                fragment = false;
                memcpy(shown + MIN(total, sizeof(shown)), buf,
                       MIN((size_t) k, sizeof(shown) - MIN(total, sizeof(shown))));
                total += (size_t) k;
        }

        if (total > 0) {
                GString *hex = g_string_new(NULL);

                for (size_t j = 0; j < MIN(total, sizeof(shown)); j++)
                        g_string_append_printf(hex, "%02x", shown[j]);
                fail(s, "client sent %zu unexpected byte%s after the script%s: %s%s",
                     total, total == 1 ? "" : "s", s->session ? " (inside TLS)" : "",
                     hex->str, total > sizeof(shown) ? "..." : "");
                g_string_free(hex, TRUE);
        } else if (fragment)
                fail(s, "after the script: the client left a partial TLS record");
}

/* One TLS record holding one whole ClientHello, read off the wire: its
 * bytes are random, its frame is not. */
static void srv_expect_client_hello(FakeServer *s, guint step) {
        g_autofree uint8_t *rec = NULL;
        uint8_t h[5];
        size_t len, hello_len;
        int r;

        r = srv_read_full(s, h, sizeof(h));
        if (r < 0) {
                fail(s, "step %u: expected a TLS ClientHello, read failed: %s", step, g_strerror(-r));
                return;
        }
        len = (size_t) h[3] << 8 | h[4];
        /* Handshake record, TLS 1.x, no bigger than a record may be. */
        if (h[0] != 0x16 || h[1] != 3 || len < 4 || len > 16384) {
                fail(s, "step %u: expected a TLS handshake record, got header %02x%02x%02x%02x%02x",
                     step, h[0], h[1], h[2], h[3], h[4]);
                return;
        }
        rec = g_malloc(len);
        r = srv_read_full(s, rec, len);
        if (r < 0) {
                fail(s, "step %u: TLS record of %zu bytes cut short: %s", step, len, g_strerror(-r));
                return;
        }
        hello_len = (size_t) rec[1] << 16 | (size_t) rec[2] << 8 | rec[3];
        if (rec[0] != 1 || hello_len != len - 4)
                fail(s, "step %u: expected a ClientHello filling its record, got handshake type %u of %zu bytes",
                     step, rec[0], hello_len);
}

static void *server_thread(void *userdata) {
        FakeServer *s = userdata;
        bool check_trailing = true;

        for (guint i = 0; i < s->steps->len && !s->error; i++) {
                const Step *st = &g_array_index(s->steps, Step, i);
                const uint8_t *data = st->data ? g_bytes_get_data(st->data, NULL) : NULL;
                size_t n = st->data ? g_bytes_get_size(st->data) : 0;

                switch (st->type) {
                case STEP_SEND:
                        if (n > 0 && srv_write(s, data, n) < 0) {
                                /* The client hung up while we were still
                                 * talking: fine for a client that gave up,
                                 * unless it still owed us bytes. */
                                if (!s->allow_early_close && script_has_step(s, i, STEP_EXPECT))
                                        fail(s, "step %u: send failed, the client closed before sending what the script expects", i);
                                /* A drain step would have taken whatever
                                 * the client said on its way out. */
                                check_trailing = !script_has_step(s, i, STEP_DRAIN);
                                goto out;
                        }
                        break;
                case STEP_EXPECT: {
                        g_autofree uint8_t *buf = g_malloc(n);
                        int r = srv_read_full(s, buf, n);

                        if (r < 0)
                                fail(s, "step %u: expected %zu bytes, read failed: %s", i, n, g_strerror(-r));
                        else if (memcmp(buf, data, n) != 0) {
                                GString *w = g_string_new(NULL), *gt = g_string_new(NULL);
                                for (size_t j = 0; j < n; j++) {
                                        g_string_append_printf(w, "%02x", data[j]);
                                        g_string_append_printf(gt, "%02x", buf[j]);
                                }
                                fail(s, "step %u: expected %s, got %s", i, w->str, gt->str);
                                g_string_free(w, TRUE);
                                g_string_free(gt, TRUE);
                        }
                        break;
                }
                case STEP_SLEEP:
                        g_usleep(st->ms * 1000);
                        break;
                case STEP_TRICKLE:
                        for (size_t j = 0; j < n; j++) {
                                if (srv_write(s, data + j, 1) < 0) {
                                        /* The client gave up: that is the point. */
                                        check_trailing = !script_has_step(s, i, STEP_DRAIN);
                                        goto out;
                                }
                                g_usleep(st->ms * 1000);
                        }
                        break;
                case STEP_DRAIN: {
                        uint8_t buf[4096];
                        while (srv_read(s, buf, sizeof(buf)) > 0)
                                ;
                        break;
                }
                case STEP_EXPECT_EOF: {
                        uint8_t b;
                        ssize_t k = srv_read(s, &b, 1);

                        if (k > 0)
                                fail(s, "step %u: expected the client to close without a word, got byte 0x%02x", i, b);
                        else if (k < 0)
                                fail(s, "step %u: expected the client to close: %s", i, g_strerror((int) -k));
                        break;
                }
                case STEP_EXPECT_CLIENT_HELLO:
                        srv_expect_client_hello(s, i);
                        break;
                case STEP_TLS_X509:
                case STEP_TLS_PSK:
                        if (srv_tls(s, st) < 0)
                                goto out;
                        break;
                case STEP_ALLOW_EARLY_CLOSE:
                        s->allow_early_close = true;
                        break;
                default:
                        g_assert_not_reached();
                }
        }
out:
        if (s->session)
                (void) gnutls_bye(s->session, GNUTLS_SHUT_WR);
        /* Closing our side tells the client the script is over; our reading
         * side stays open to catch whatever it says after that. */
        shutdown(s->fd, SHUT_WR);
        if (check_trailing && !s->error)
                srv_check_trailing(s);
        shutdown(s->fd, SHUT_RDWR);
        return NULL;
}

int fake_server_start(FakeServer *s) {
        int sv[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        s->fd = sv[0];
        g_assert_cmpint(pthread_create(&s->thread, NULL, server_thread, s), ==, 0);
        s->started = true;
        return sv[1];
}

char *fake_server_join(FakeServer *s) {
        g_assert_true(s->started);
        /* Our caller's client is finished: the end-of-script check need
         * not wait for it to close. */
        g_assert_cmpint(eventfd_write(s->done_fd, 1), ==, 0);
        g_assert_cmpint(pthread_join(s->thread, NULL), ==, 0);
        s->started = false;
        return g_steal_pointer(&s->error);
}
