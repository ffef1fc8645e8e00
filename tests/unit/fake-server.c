/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scripted NBD server of the unit tests: plays its steps on a thread,
 * with a bounded wait on every read so that a broken client fails the test
 * instead of hanging it. */

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
#include <sys/socket.h>
#include <unistd.h>


#define FS_READ_TIMEOUT_MS 10000

typedef enum StepType {
        STEP_SEND,
        STEP_EXPECT,
        STEP_SLEEP,
        STEP_TRICKLE,
        STEP_DRAIN,
        STEP_EXPECT_EOF,
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
                        return 0;
                return k < 0 ? -EIO : k;
        }
        ssize_t k = recv(s->fd, p, n, 0);
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

static bool script_expects_more(FakeServer *s, guint from) {
        for (guint i = from; i < s->steps->len; i++)
                if (g_array_index(s->steps, Step, i).type == STEP_EXPECT)
                        return true;
        return false;
}

static void *server_thread(void *userdata) {
        FakeServer *s = userdata;

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
                                if (!s->allow_early_close && script_expects_more(s, i))
                                        fail(s, "step %u: send failed, the client closed before sending what the script expects", i);
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
                                if (srv_write(s, data + j, 1) < 0)
                                        goto out; /* the client gave up: that is the point */
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
        /* Closing tells the client the script is over. */
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
        g_assert_cmpint(pthread_join(s->thread, NULL), ==, 0);
        s->started = false;
        return g_steal_pointer(&s->error);
}
