/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* connect_many() against scripted servers: the handshakes of a device's
 * connections overlap, one failure closes them all and is the one reported,
 * and more than one connection needs NBD_FLAG_CAN_MULTI_CONN. */

/* nbdlink headers first: GLib redefines MIN/MAX after them quietly, the
 * other way round warns. */
#include "connect-many.h"
#include "fake-server.h"
#include "nbd-protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GIB (UINT64_C(1) << 30)
#define FIXED (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)
#define FLAGS_MULTI (NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_CAN_MULTI_CONN)
#define STALL_MS 300

/* Greeting and client flags, after ms of silence. */
static FakeServer *opening(unsigned ms) {
        FakeServer *s = fake_server_new();

        if (ms > 0)
                fs_sleep(s, ms);
        fs_greeting_newstyle(s, FIXED);
        fs_expect_u32(s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
        return s;
}

static FakeServer *server_go(unsigned ms, uint64_t size, uint16_t flags) {
        FakeServer *s = opening(ms);

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_GO, size, flags);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
        return s;
}

/* One of several connections: NBD_OPT_INFO first (is multi-conn allowed?),
 * then GO. */
static FakeServer *server_info_then_go(unsigned ms, uint64_t size, uint16_t info_flags, uint16_t go_flags) {
        FakeServer *s = opening(ms);

        fs_expect_go(s, NBD_OPT_INFO, "disk");
        fs_info_export(s, NBD_OPT_INFO, size, info_flags);
        fs_reply(s, NBD_OPT_INFO, NBD_REP_ACK, NULL, 0);
        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_GO, size, go_flags);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
        return s;
}

static FakeServer *server_info_go(unsigned ms, uint64_t size, uint16_t flags) {
        return server_info_then_go(ms, size, flags, flags);
}

static const uint8_t disc_request[28] = { 0x25, 0x60, 0x95, 0x13, 0, 0, 0, 2 };

/* Answers the greeting, then says nothing until the client goes away. */
static FakeServer *server_silent(void) {
        FakeServer *s = opening(0);

        fake_server_allow_early_close(s);
        fs_drain(s);
        return s;
}

/* Says nothing at all until the client goes away. */
static FakeServer *server_mute(void) {
        FakeServer *s = fake_server_new();

        fs_drain(s);
        return s;
}

/* What publish saw, per slot: the last value and how often it changed. */
typedef struct Published {
        pthread_mutex_t lock;
        int last[ATTACH_MAX_CONNECTIONS];
        unsigned calls[ATTACH_MAX_CONNECTIONS];
} Published;

static void on_publish(void *userdata, size_t slot, int fd) {
        Published *p = userdata;

        pthread_mutex_lock(&p->lock);
        p->last[slot] = fd;
        p->calls[slot]++;
        pthread_mutex_unlock(&p->lock);
}

typedef struct Run {
        Handshake hs[ATTACH_MAX_CONNECTIONS];
        int socks[ATTACH_MAX_CONNECTIONS];
        Published published;
        Error error;
        int cancelled;
        int r;
        usec_t elapsed;
} Run;

static void *canceller(void *userdata);

static void run(FakeServer **servers, size_t n, Run *x, bool cancel) {
        ConnectManyParams p;
        pthread_t t;
        usec_t start;
        int fds[ATTACH_MAX_CONNECTIONS];

        memset(x, 0, sizeof(*x));
        pthread_mutex_init(&x->published.lock, NULL);
        for (size_t i = 0; i < n; i++) {
                x->socks[i] = fds[i] = fake_server_start(servers[i]);
                x->published.last[i] = -EBADF;
        }
        p = (ConnectManyParams) {
                .n = n,
                .socks = x->socks,
                .handshake = { .goal = HANDSHAKE_GO, .export_name = "disk" },
                .deadline = deadline_after(5 * USEC_PER_SEC),
                .cancelled = &x->cancelled,
                .publish = on_publish,
                .userdata = &x->published,
        };

        if (cancel)
                g_assert_cmpint(pthread_create(&t, NULL, canceller, x), ==, 0);
        start = now_usec(CLOCK_MONOTONIC);
        x->r = connect_many(&p, x->hs, &x->error);
        x->elapsed = now_usec(CLOCK_MONOTONIC) - start;
        if (cancel)
                g_assert_cmpint(pthread_join(t, NULL), ==, 0);
        g_test_message("connect_many: r=%d error=\"%s\" in %.0f ms", x->r, x->error.message,
                       (double) x->elapsed / 1000.0);

        /* Every socket was taken over. */
        for (size_t i = 0; i < n; i++)
                g_assert_cmpint(x->socks[i], <, 0);

        if (x->r < 0)
                /* Closed and unpublished, every one of them. */
                for (size_t i = 0; i < n; i++) {
                        g_assert_null(x->hs[i].conn);
                        g_assert_cmpint(x->published.last[i], ==, -EBADF);
                        g_assert_cmpint(fcntl(fds[i], F_GETFD), ==, -1);
                        g_assert_cmpint(errno, ==, EBADF);
                }
        else
                handshakes_done(x->hs, n);

        for (size_t i = 0; i < n; i++) {
                g_autofree char *error = fake_server_join(servers[i]);

                if (error)
                        g_error("fake server %zu: %s", i, error);
                fake_server_free(servers[i]);
        }
        pthread_mutex_destroy(&x->published.lock);
}

static void test_four_overlap(void) {
        FakeServer *s[4];
        Run x;

        for (size_t i = 0; i < 4; i++)
                s[i] = server_info_go(STALL_MS, GIB, FLAGS_MULTI);
        run(s, 4, &x, false);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_cmpuint(x.hs[0].info.size, ==, GIB);
        for (size_t i = 0; i < 4; i++)
                g_assert_cmpuint(x.published.calls[i], ==, 1);
        /* Serially this would be 4 × STALL_MS. */
        g_assert_cmpuint(x.elapsed, <, 3 * STALL_MS * USEC_PER_MSEC);
}

static void test_one(void) {
        FakeServer *s[1] = { server_go(0, GIB, NBD_FLAG_HAS_FLAGS) };
        Run x;

        run(s, 1, &x, false);
        g_assert_cmpint(x.r, ==, 0);
}

/* Connection 3 is refused; the others wait on silent servers and must be
 * stopped at once, not at the deadline. */
static void test_one_fails_all_closed(void) {
        FakeServer *s[4];
        const char msg[] = "go away";
        Run x;

        s[0] = server_silent();
        s[1] = server_silent();
        s[2] = opening(200);
        fs_expect_go(s[2], NBD_OPT_INFO, "disk");
        fs_reply(s[2], NBD_OPT_INFO, NBD_REP_ERR_POLICY, msg, sizeof(msg) - 1);
        fake_server_allow_early_close(s[2]);
        fs_drain(s[2]);
        s[3] = server_silent();

        run(s, 4, &x, false);
        g_assert_cmpint(x.r, ==, -EPERM);
        g_assert_true(g_str_has_prefix(x.error.message, "handshake: "));
        g_assert_nonnull(strstr(x.error.message, "go away"));
        g_assert_cmpuint(x.elapsed, <, 2 * USEC_PER_SEC);
}

/* Refused after NBD_OPT_INFO, before any connection entered transmission:
 * nobody is sent GO. Whichever connection learns it first stops the other,
 * which may be cut off before its own goodbye: that one's end is open. */
static void test_no_multi_conn(void) {
        FakeServer *s[2];
        Run x;

        for (size_t i = 0; i < 2; i++) {
                s[i] = opening(0);
                fs_expect_go(s[i], NBD_OPT_INFO, "disk");
                fs_info_export(s[i], NBD_OPT_INFO, GIB, NBD_FLAG_HAS_FLAGS);
                fs_reply(s[i], NBD_OPT_INFO, NBD_REP_ACK, NULL, 0);
                fake_server_allow_early_close(s[i]);
                fs_drain(s[i]);
        }

        run(s, 2, &x, false);
        g_assert_cmpint(x.r, ==, -EINVAL);
        g_assert_true(g_str_has_prefix(x.error.message, "handshake: the server does not allow more than one connection"));
        g_assert_nonnull(strstr(x.error.message, "NBD_FLAG_CAN_MULTI_CONN"));
}

/* All three are in transmission when the difference shows: each gets
 * NBD_CMD_DISC, none a bare close. */
static void test_sizes_differ(void) {
        FakeServer *s[3] = {
                server_info_go(0, GIB, FLAGS_MULTI),
                server_info_go(0, GIB, FLAGS_MULTI),
                server_info_go(0, 2 * GIB, FLAGS_MULTI),
        };
        Run x;

        for (size_t i = 0; i < 3; i++)
                fs_expect(s[i], disc_request, sizeof(disc_request));
        run(s, 3, &x, false);
        g_assert_cmpint(x.r, ==, -EPROTO);
        g_assert_cmpstr(x.error.message, ==, "handshake: connection 3 reports a different size or flags");
}

/* A server that claims multi-conn on INFO but not on GO: refused after GO,
 * so with NBD_CMD_DISC on every connection. */
static void test_multi_conn_changed_after_info(void) {
        FakeServer *s[2];
        Run x;

        for (size_t i = 0; i < 2; i++) {
                s[i] = server_info_then_go(0, GIB, FLAGS_MULTI, NBD_FLAG_HAS_FLAGS);
                fs_expect(s[i], disc_request, sizeof(disc_request));
        }
        run(s, 2, &x, false);
        g_assert_cmpint(x.r, ==, -EINVAL);
        g_assert_true(g_str_has_prefix(x.error.message, "the server does not allow 2 connections"));
}

/* What worker_stop() does: set the flag, shut down what is published. */
static void *canceller(void *userdata) {
        Run *x = userdata;

        g_usleep(100 * 1000);
        pthread_mutex_lock(&x->published.lock);
        __atomic_store_n(&x->cancelled, 1, __ATOMIC_RELEASE);
        for (size_t i = 0; i < ATTACH_MAX_CONNECTIONS; i++)
                if (x->published.last[i] >= 0)
                        (void) shutdown(x->published.last[i], SHUT_RDWR);
        pthread_mutex_unlock(&x->published.lock);
        return NULL;
}

static void test_cancel(void) {
        FakeServer *s[3] = { server_mute(), server_mute(), server_mute() };
        Run *x = g_new0(Run, 1);

        run(s, 3, x, true);
        g_assert_cmpint(x->r, ==, -ECANCELED);
        g_assert_cmpuint(x->elapsed, <, 2 * USEC_PER_SEC);
        g_free(x);
}

static void test_socket_without_address(void) {
        Handshake hs[2];
        Error error = {};
        FakeServer *s = server_mute();
        int socks[2] = { fake_server_start(s), -EBADF };
        g_autofree char *server_error = NULL;
        int r;

        r = connect_many(&(ConnectManyParams) {
                                 .n = 2,
                                 .socks = socks,
                                 .handshake = { .goal = HANDSHAKE_GO, .export_name = "disk" },
                                 .deadline = deadline_after(5 * USEC_PER_SEC),
                         }, hs, &error);
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));
        server_error = fake_server_join(s);
        g_assert_null(server_error);
        fake_server_free(s);
}

static void test_count_checked(void) {
        Handshake hs[1];
        Error error = {};

        g_assert_cmpint(connect_many(&(ConnectManyParams) { .n = 0 }, hs, &error), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));
        g_assert_cmpint(connect_many(&(ConnectManyParams) { .n = ATTACH_MAX_CONNECTIONS + 1 }, hs, &error),
                        ==, -EINVAL);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/connect-many/one", test_one);
        g_test_add_func("/connect-many/four-overlap", test_four_overlap);
        g_test_add_func("/connect-many/one-fails-all-closed", test_one_fails_all_closed);
        g_test_add_func("/connect-many/no-multi-conn", test_no_multi_conn);
        g_test_add_func("/connect-many/sizes-differ", test_sizes_differ);
        g_test_add_func("/connect-many/multi-conn-changed-after-info", test_multi_conn_changed_after_info);
        g_test_add_func("/connect-many/cancel", test_cancel);
        g_test_add_func("/connect-many/socket-without-address", test_socket_without_address);
        g_test_add_func("/connect-many/count-checked", test_count_checked);
        return g_test_run();
}
