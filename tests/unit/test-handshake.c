/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The handshake engine against scripted servers: every branch of the state
 * machine and every malformed input we know of, each failure checked for
 * its errno and the phase prefix of its message. */

/* nbdlink headers first: GLib redefines MIN/MAX after them quietly, the
 * other way round warns. */
#include "fake-server.h"
#include "handshake.h"
#include "nbd-protocol.h"

#include <endian.h>
#include <errno.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GIB (UINT64_C(1) << 30)
#define FLAGS_RW (NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH)

typedef struct Run {
        Handshake hs;
        int r;
        usec_t elapsed;
} Run;

/* Runs the engine against the script; the server's own verdict (did the
 * client send what it should?) is checked here, the outcome by the test. */
static void run_full(FakeServer *s, const HandshakeOptions *opts, usec_t timeout, Run *ret, bool keep_conn) {
        Conn *c = NULL;
        g_autofree char *error = NULL;
        usec_t start;
        int fd;

        fd = fake_server_start(s);
        g_assert_cmpint(conn_new_fd(&c, fd), ==, 0);
        conn_set_deadline(c, deadline_after(timeout));

        handshake_init(&ret->hs, c, opts);
        start = now_usec(CLOCK_MONOTONIC);
        ret->r = handshake_run(&ret->hs);
        ret->elapsed = now_usec(CLOCK_MONOTONIC) - start;
        if (ret->r < 0)
                g_test_message("handshake: r=%d (%s) error=\"%s\"", ret->r, g_strerror(-ret->r), ret->hs.error.message);

        if (!keep_conn)
                /* Close our end so that the server's drain steps end. */
                ret->hs.conn = conn_free(ret->hs.conn);

        error = fake_server_join(s);
        if (error)
                g_error("fake server: %s", error);
        fake_server_free(s);
}

static void run(FakeServer *s, const HandshakeOptions *opts, Run *ret) {
        run_full(s, opts, 5 * USEC_PER_SEC, ret, false);
}

static const HandshakeOptions go_opts = { .goal = HANDSHAKE_GO, .export_name = "disk" };

static void assert_failed(Run *x, int error, const char *prefix) {
        g_assert_cmpint(x->r, ==, error);
        g_assert_cmpint(x->hs.error.code, ==, error);
        g_assert_true(g_str_has_prefix(x->hs.error.message, prefix));
}

/* The usual fixed-newstyle opening: greeting, client flags. */
static FakeServer *newstyle(uint16_t hflags) {
        FakeServer *s = fake_server_new();
        uint32_t cflags = 0;

        fs_greeting_newstyle(s, hflags);
        if (hflags & NBD_FLAG_FIXED_NEWSTYLE)
                cflags |= NBD_FLAG_C_FIXED_NEWSTYLE;
        if (hflags & NBD_FLAG_NO_ZEROES)
                cflags |= NBD_FLAG_C_NO_ZEROES;
        fs_expect_u32(s, cflags);
        return s;
}

#define FIXED (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)

static void expect_abort(FakeServer *s) {
        fs_expect_option(s, NBD_OPT_ABORT, NULL, 0);
        fs_reply(s, NBD_OPT_ABORT, NBD_REP_ACK, NULL, 0);
}

static void test_go_ok(void) {
        FakeServer *s = newstyle(FIXED);
        uint8_t unknown[12] = { 0x00, 0x63 };   /* NBD_INFO type 99 */
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_string(s, NBD_OPT_GO, NBD_INFO_NAME, "disk-canonical");
        fs_info_string(s, NBD_OPT_GO, NBD_INFO_DESCRIPTION, "a \x01test\xff disk");
        fs_info_block_size(s, NBD_OPT_GO, 512, 4096, 32 * 1024 * 1024);
        fs_reply(s, NBD_OPT_GO, NBD_REP_INFO, unknown, sizeof(unknown));
        fs_info_export(s, NBD_OPT_GO, GIB, FLAGS_RW | NBD_FLAG_CAN_MULTI_CONN);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);

        run(s, &go_opts, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_cmpuint(x.hs.info.size, ==, GIB);
        g_assert_cmpuint(x.hs.info.flags, ==, FLAGS_RW | NBD_FLAG_CAN_MULTI_CONN);
        g_assert_cmpuint(x.hs.info.block_min, ==, 512);
        g_assert_cmpuint(x.hs.info.block_preferred, ==, 4096);
        g_assert_cmpuint(x.hs.info.block_max, ==, 32 * 1024 * 1024);
        g_assert_cmpstr(x.hs.info.name, ==, "disk-canonical");
        g_assert_cmpstr(x.hs.info.description, ==, "a \\x01test\\xff disk");
        g_assert_false(x.hs.info.oldstyle);
        g_assert_true(x.hs.info.fixed_newstyle);
        g_assert_false(x.hs.info.tls);
        g_assert_cmpint(x.hs.error.code, ==, 0);
        handshake_done(&x.hs);
}

static void test_go_read_only(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_GO, 4096, NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);

        run(s, &go_opts, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_true(x.hs.info.flags & NBD_FLAG_READ_ONLY);
        g_assert_cmpuint(x.hs.info.block_min, ==, 0);
        g_assert_cmpstr(x.hs.info.name, ==, "disk");
        g_assert_null(x.hs.info.description);
        handshake_done(&x.hs);
}

/* The engine must read exactly the handshake: a marker byte right after it
 * must be the next thing the Conn yields. */
static void assert_marker_next(Run *x) {
        uint8_t b = 0;

        g_assert_cmpint(conn_read_full(x->hs.conn, &b, 1), ==, 0);
        g_assert_cmpuint(b, ==, 'X');
}

static void export_name_reply(FakeServer *s, uint64_t size, uint16_t flags, bool zeroes) {
        fs_send_u64(s, size);
        fs_send_u16(s, flags);
        if (zeroes)
                fs_send_zeroes(s, NBD_OLDSTYLE_ZEROES);
}

static void export_name_reply_marker(FakeServer *s, uint64_t size, uint16_t flags, bool zeroes) {
        export_name_reply(s, size, flags, zeroes);
        fs_send(s, "X", 1);
}

/* Before NBD_OPT_EXPORT_NAME, which cannot say "no such export", the
 * export is looked for in NBD_OPT_LIST. */
static void expect_listed(FakeServer *s, const char *name) {
        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_server_entry(s, "other", "");
        fs_server_entry(s, name, "the one");
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

static const uint8_t disc_request[28] = { 0x25, 0x60, 0x95, 0x13, 0, 0, 0, 2 };

static void test_go_unsup_fallback_no_zeroes(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_ERR_UNSUP, "no GO here", 10);
        expect_listed(s, "disk");
        fs_expect_option(s, NBD_OPT_EXPORT_NAME, "disk", 4);
        export_name_reply_marker(s, 8 * GIB, FLAGS_RW, false);

        run_full(s, &go_opts, 5 * USEC_PER_SEC, &x, true);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_cmpuint(x.hs.info.size, ==, 8 * GIB);
        g_assert_true(x.hs.tried_go);
        assert_marker_next(&x);
        handshake_done(&x.hs);
}

static void test_go_unsup_fallback_zeroes(void) {
        FakeServer *s = newstyle(NBD_FLAG_FIXED_NEWSTYLE);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_ERR_UNSUP, NULL, 0);
        /* A server that will not list may still have the export. */
        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ERR_POLICY, "no lists", 8);
        fs_expect_option(s, NBD_OPT_EXPORT_NAME, "disk", 4);
        export_name_reply_marker(s, 1024, FLAGS_RW, true);

        run_full(s, &go_opts, 5 * USEC_PER_SEC, &x, true);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_cmpuint(x.hs.info.size, ==, 1024);
        assert_marker_next(&x);
        handshake_done(&x.hs);
}

static void test_non_fixed_newstyle(void) {
        FakeServer *s = newstyle(0);
        Run x;

        /* Non-fixed: EXPORT_NAME straight away, never GO. */
        fs_expect_option(s, NBD_OPT_EXPORT_NAME, "disk", 4);
        export_name_reply_marker(s, 2 * GIB, NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY, true);

        run_full(s, &go_opts, 5 * USEC_PER_SEC, &x, true);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_false(x.hs.info.fixed_newstyle);
        g_assert_false(x.hs.tried_go);
        g_assert_true(x.hs.info.flags & NBD_FLAG_READ_ONLY);
        assert_marker_next(&x);
        handshake_done(&x.hs);
}

static void test_non_fixed_no_zeroes(void) {
        FakeServer *s = newstyle(NBD_FLAG_NO_ZEROES);
        Run x;

        fs_expect_option(s, NBD_OPT_EXPORT_NAME, "disk", 4);
        export_name_reply_marker(s, 2 * GIB, NBD_FLAG_HAS_FLAGS, false);

        run_full(s, &go_opts, 5 * USEC_PER_SEC, &x, true);
        g_assert_cmpint(x.r, ==, 0);
        assert_marker_next(&x);
        handshake_done(&x.hs);
}

static void test_export_name_closed(void) {
        FakeServer *s = newstyle(NBD_FLAG_FIXED_NEWSTYLE);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_ERR_UNSUP, NULL, 0);
        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ERR_UNSUP, NULL, 0);
        fs_expect_option(s, NBD_OPT_EXPORT_NAME, "disk", 4);
        /* ... and hangs up: the only "no" EXPORT_NAME knows. */

        run(s, &go_opts, &x);
        assert_failed(&x, -ENOENT, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "closed the connection after NBD_OPT_EXPORT_NAME: no export \"disk\""));
        handshake_done(&x.hs);
}

/* Not in the list: ExportNotFound, and a soft goodbye, never EXPORT_NAME. */
static void test_export_name_unlisted(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_ERR_UNSUP, NULL, 0);
        expect_listed(s, "disk2");
        expect_abort(s);
        run(s, &go_opts, &x);
        assert_failed(&x, -ENOENT, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "no export \"disk\" (not in its NBD_OPT_LIST)"));
        g_assert_cmpuint(x.hs.n_exports, ==, 0);
        handshake_done(&x.hs);
}

/* The default export ("") need not be listed by name: no LIST. */
static void test_export_name_default_unlisted(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "" };
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "");
        fs_reply(s, NBD_OPT_GO, NBD_REP_ERR_UNSUP, NULL, 0);
        fs_expect_option(s, NBD_OPT_EXPORT_NAME, NULL, 0);
        export_name_reply(s, GIB, FLAGS_RW, false);
        run(s, &o, &x);
        g_assert_cmpint(x.r, ==, 0);
        handshake_done(&x.hs);
}

/* NBD_REP_ERR_SHUTDOWN to the LIST: the spec's soft disconnect. */
static void test_export_name_list_shutdown(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_ERR_UNSUP, NULL, 0);
        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ERR_SHUTDOWN, "bye", 3);
        expect_abort(s);
        run(s, &go_opts, &x);
        assert_failed(&x, -EIO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_oldstyle(void) {
        FakeServer *s = fake_server_new();
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "" };
        Run x;

        fs_greeting_oldstyle(s, 3 * GIB, NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY);
        fs_send(s, "X", 1);

        run_full(s, &o, 5 * USEC_PER_SEC, &x, true);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_true(x.hs.info.oldstyle);
        g_assert_cmpuint(x.hs.info.size, ==, 3 * GIB);
        g_assert_true(x.hs.info.flags & NBD_FLAG_READ_ONLY);
        assert_marker_next(&x);
        handshake_done(&x.hs);
}

/* Oldstyle serves one unnamed export: a name cannot be honoured, and the
 * server, in transmission already, gets NBD_CMD_DISC. */
static void test_oldstyle_named(void) {
        HandshakeOptions info = { .goal = HANDSHAKE_INFO, .export_name = "disk" };
        const HandshakeOptions *goals[] = { &go_opts, &info };

        for (size_t i = 0; i < G_N_ELEMENTS(goals); i++) {
                FakeServer *s = fake_server_new();
                Run x;

                fs_greeting_oldstyle(s, GIB, NBD_FLAG_HAS_FLAGS);
                fs_expect(s, disc_request, sizeof(disc_request));
                run(s, goals[i], &x);
                assert_failed(&x, -ENOENT, "handshake: ");
                g_assert_nonnull(strstr(x.hs.error.message, "oldstyle negotiation, which serves one unnamed export and cannot select \"disk\""));
                handshake_done(&x.hs);
        }
}

static void test_oldstyle_list(void) {
        FakeServer *s = fake_server_new();
        HandshakeOptions o = { .goal = HANDSHAKE_LIST };
        Run x;

        fs_greeting_oldstyle(s, GIB, NBD_FLAG_HAS_FLAGS);
        run(s, &o, &x);
        assert_failed(&x, -EOPNOTSUPP, "handshake: ");
        handshake_done(&x.hs);
}

static void test_bad_magic(void) {
        FakeServer *s = fake_server_new();
        Run x;

        fs_send_u64(s, UINT64_C(0x4e42444d41474945));
        fs_send_u64(s, NBD_IHAVEOPT);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_bad_style(void) {
        FakeServer *s = fake_server_new();
        Run x;

        fs_send_u64(s, NBD_MAGIC);
        fs_send_u64(s, UINT64_C(0x1122334455667788));
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_truncated_greeting(void) {
        FakeServer *s = fake_server_new();
        Run x;

        fs_send(s, "NBDMAGICIHAV", 12);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "closed the connection"));
        handshake_done(&x.hs);
}

static void test_truncated_oldstyle(void) {
        FakeServer *s = fake_server_new();
        Run x;

        fs_send_u64(s, NBD_MAGIC);
        fs_send_u64(s, NBD_OLDSTYLE_MAGIC);
        fs_send_u64(s, GIB);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_bad_reply_magic(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply_header(s, UINT64_C(0x0003e889045565aa), NBD_OPT_GO, NBD_REP_ACK, 0);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "magic"));
        handshake_done(&x.hs);
}

static void test_wrong_option_echo(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_INFO, GIB, FLAGS_RW);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_unexpected_reply_type(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_SERVER, "\0\0\0\0", 4);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_ack_with_payload(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_GO, GIB, FLAGS_RW);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, "junk", 4);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_ack_without_export(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_string(s, NBD_OPT_GO, NBD_INFO_NAME, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "NBD_INFO_EXPORT"));
        handshake_done(&x.hs);
}

static void test_info_too_short(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_INFO, "\0", 1);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_info_export_wrong_length(void) {
        FakeServer *s = newstyle(FIXED);
        uint8_t e[10] = { 0 };  /* type EXPORT, but two bytes short */
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_INFO, e, sizeof(e));
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_info_block_size_wrong_length(void) {
        FakeServer *s = newstyle(FIXED);
        uint8_t b[16] = { 0, 3 };
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_INFO, b, sizeof(b));
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_info_oversized(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        /* Claims a huge unknown INFO: refused before reading any of it. */
        fs_reply_header(s, NBD_REP_MAGIC, NBD_OPT_GO, NBD_REP_INFO, 1u << 30);
        fs_send_u16(s, 99);
        fs_drain(s);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_info_name_too_long(void) {
        FakeServer *s = newstyle(FIXED);
        g_autofree char *name = g_strnfill(NBD_MAX_STRING + 1, 'a');
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_string(s, NBD_OPT_GO, NBD_INFO_NAME, name);
        fs_drain(s);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_info_name_bad_utf8(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_string(s, NBD_OPT_GO, NBD_INFO_NAME, "bad\xc0\x80name");
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_info_flood(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fake_server_allow_early_close(s);
        for (unsigned i = 0; i <= NBD_MAX_INFO_REPLIES; i++)
                fs_info_string(s, NBD_OPT_GO, 77, "x");
        fs_drain(s);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_export_no_has_flags(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_GO, GIB, NBD_FLAG_READ_ONLY);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

/* More than the kernel can address is TooLarge for every goal. GO put
 * the server in transmission: NBD_CMD_DISC; INFO did not: NBD_OPT_ABORT. */
static void test_export_size_huge(void) {
        HandshakeOptions info = { .goal = HANDSHAKE_INFO, .export_name = "disk" };
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_GO, UINT64_MAX, FLAGS_RW);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
        fs_expect(s, disc_request, sizeof(disc_request));
        run(s, &go_opts, &x);
        assert_failed(&x, -EFBIG, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "18446744073709551615 bytes, more than the kernel can address"));
        handshake_done(&x.hs);

        s = newstyle(FIXED);
        fs_expect_go(s, NBD_OPT_INFO, "disk");
        fs_info_export(s, NBD_OPT_INFO, (UINT64_C(1) << 63), FLAGS_RW);
        fs_reply(s, NBD_OPT_INFO, NBD_REP_ACK, NULL, 0);
        expect_abort(s);
        run(s, &info, &x);
        assert_failed(&x, -EFBIG, "handshake: ");
        handshake_done(&x.hs);

        /* Through NBD_OPT_EXPORT_NAME: in transmission too. */
        s = newstyle(0);
        fs_expect_option(s, NBD_OPT_EXPORT_NAME, "disk", 4);
        export_name_reply(s, UINT64_MAX, FLAGS_RW, true);
        fs_expect(s, disc_request, sizeof(disc_request));
        run(s, &go_opts, &x);
        assert_failed(&x, -EFBIG, "handshake: ");
        handshake_done(&x.hs);

        /* INT64_MAX itself is addressable. */
        s = newstyle(FIXED);
        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_GO, INT64_MAX, FLAGS_RW);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
        run(s, &go_opts, &x);
        g_assert_cmpint(x.r, ==, 0);
        handshake_done(&x.hs);
}

static void block_size_case(uint32_t min, uint32_t pref, uint32_t max, int expected) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_block_size(s, NBD_OPT_GO, min, pref, max);
        if (expected == 0) {
                fs_info_export(s, NBD_OPT_GO, GIB, FLAGS_RW);
                fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
        }
        run(s, &go_opts, &x);
        if (expected == 0) {
                g_assert_cmpint(x.r, ==, 0);
                g_assert_cmpuint(x.hs.info.block_min, ==, min);
                g_assert_cmpuint(x.hs.info.block_preferred, ==, pref);
                g_assert_cmpuint(x.hs.info.block_max, ==, max);
        } else
                assert_failed(&x, expected, "handshake: ");
        handshake_done(&x.hs);
}

static void test_block_sizes(void) {
        block_size_case(1, 4096, UINT32_MAX, 0);
        block_size_case(65536, 65536, 65536 * 4, 0);
        block_size_case(0, 4096, 65536, -EPROTO);              /* min zero */
        block_size_case(3, 4096, 65536, -EPROTO);              /* min not a power of two */
        block_size_case(131072, 131072, 131072, -EPROTO);      /* min over 64 KiB */
        block_size_case(4096, 512, 65536, -EPROTO);            /* preferred below min */
        block_size_case(512, 3000, 65536, -EPROTO);            /* preferred not a power of two */
        block_size_case(1, 256, 65536, -EPROTO);               /* preferred below 512 */
        block_size_case(4096, 4096, 2048, -EPROTO);            /* max below min */
        /* Today's proto.md: the maximum payload need not reach the
         * preferred size nor be a multiple of the minimum. */
        block_size_case(512, 4096, 2048, 0);
        block_size_case(512, 4096, 4096 + 1, 0);
        block_size_case(1, 512, 1, 0);
}

static void error_case(uint32_t type, const char *msg, int expected, const char *needle, bool expect_abort_sent) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, type, msg, (uint32_t) strlen(msg));
        if (expect_abort_sent)
                expect_abort(s);
        run(s, &go_opts, &x);
        assert_failed(&x, expected, "handshake: ");
        g_assert_cmpuint(x.hs.server_error, ==, type);
        if (needle && !strstr(x.hs.error.message, needle))
                g_error("\"%s\" not in \"%s\"", needle, x.hs.error.message);
        handshake_done(&x.hs);
}

static void test_errors(void) {
        error_case(NBD_REP_ERR_UNKNOWN, "no such export", -ENOENT, "no such export", true);
        error_case(NBD_REP_ERR_POLICY, "go away", -EPERM, "NBD_REP_ERR_POLICY: go away", true);
        error_case(NBD_REP_ERR_TLS_REQD, "TLS please", -EPROTONOSUPPORT, "TLS please", true);
        error_case(NBD_REP_ERR_INVALID, "", -EINVAL, "NBD_REP_ERR_INVALID", true);
        error_case(NBD_REP_ERR_PLATFORM, "", -EOPNOTSUPP, "NBD_REP_ERR_PLATFORM", true);
        error_case(NBD_REP_ERR_BLOCK_SIZE_REQD, "", -EOPNOTSUPP, NULL, true);
        error_case(NBD_REP_ERR_TOO_BIG, "", -EINVAL, NULL, true);
        error_case(NBD_REP_ERR(99), "mystery", -EIO, "99", true);
        /* Non-printable bytes in the server's text are neutralized. */
        error_case(NBD_REP_ERR_POLICY, "bad\x1b[2J\xfftext", -EPERM, "bad\\x1b[2J\\xfftext", true);
}

static void test_shutdown_sends_abort(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply(s, NBD_OPT_GO, NBD_REP_ERR_SHUTDOWN, "going down", 10);
        /* The spec: the client MUST initiate a soft disconnect. The server
         * then simply closes, which must not change the outcome. */
        fs_expect_option(s, NBD_OPT_ABORT, NULL, 0);
        run(s, &go_opts, &x);
        assert_failed(&x, -EIO, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "going down"));
        g_assert_cmpuint(x.hs.server_error, ==, NBD_REP_ERR_SHUTDOWN);
        handshake_done(&x.hs);
}

static void test_huge_error_message(void) {
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_reply_header(s, NBD_REP_MAGIC, NBD_OPT_GO, NBD_REP_ERR_POLICY, UINT32_MAX);
        fs_drain(s);
        run(s, &go_opts, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_stall_times_out(void) {
        FakeServer *s = fake_server_new();
        Run x;

        fs_send(s, "NBDMAGIC", 8);
        fs_drain(s);
        run_full(s, &go_opts, 300 * USEC_PER_MSEC, &x, false);
        assert_failed(&x, -ETIMEDOUT, "handshake: ");
        g_assert_cmpuint(x.elapsed, >=, 250 * USEC_PER_MSEC);
        g_assert_cmpuint(x.elapsed, <, 2 * USEC_PER_SEC);
        handshake_done(&x.hs);
}

static void test_trickle_times_out(void) {
        FakeServer *s = fake_server_new();
        uint8_t g[18];
        uint64_t m = htobe64(NBD_MAGIC), o = htobe64(NBD_IHAVEOPT);
        uint16_t f = htobe16(FIXED);
        Run x;

        memcpy(g, &m, 8);
        memcpy(g + 8, &o, 8);
        memcpy(g + 16, &f, 2);
        /* One byte every 100 ms: each read makes progress, yet the whole
         * greeting would take 1.8 s against a 500 ms deadline. */
        fs_trickle(s, g, sizeof(g), 100);
        fs_drain(s);
        run_full(s, &go_opts, 500 * USEC_PER_MSEC, &x, false);
        assert_failed(&x, -ETIMEDOUT, "handshake: ");
        g_assert_cmpuint(x.elapsed, <, 1200 * USEC_PER_MSEC);
        handshake_done(&x.hs);
}

static void test_info_goal(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_INFO, .export_name = "probe-me" };
        Run x;

        fs_expect_go(s, NBD_OPT_INFO, "probe-me");
        fs_info_export(s, NBD_OPT_INFO, 5 * GIB, NBD_FLAG_HAS_FLAGS | NBD_FLAG_READ_ONLY);
        fs_info_string(s, NBD_OPT_INFO, NBD_INFO_DESCRIPTION, "probed");
        fs_reply(s, NBD_OPT_INFO, NBD_REP_ACK, NULL, 0);
        expect_abort(s);
        run(s, &o, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_cmpuint(x.hs.info.size, ==, 5 * GIB);
        g_assert_cmpstr(x.hs.info.description, ==, "probed");
        g_assert_cmpstr(x.hs.info.name, ==, "probe-me");
        handshake_done(&x.hs);
}

static void test_info_goal_fallback(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_INFO, .export_name = "old" };
        uint8_t disc[28] = { 0x25, 0x60, 0x95, 0x13, 0, 0, 0, 2 };
        Run x;

        fs_expect_go(s, NBD_OPT_INFO, "old");
        fs_reply(s, NBD_OPT_INFO, NBD_REP_ERR_UNSUP, NULL, 0);
        expect_listed(s, "old");
        fs_expect_option(s, NBD_OPT_EXPORT_NAME, "old", 3);
        export_name_reply(s, GIB, FLAGS_RW, false);
        /* Transmission was entered: leave with NBD_CMD_DISC. */
        fs_expect(s, disc, sizeof(disc));
        run(s, &o, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_cmpuint(x.hs.info.size, ==, GIB);
        handshake_done(&x.hs);
}

static void test_list(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_LIST };
        Run x;

        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_server_entry(s, "", "the default");
        fs_server_entry(s, "disk1", "");
        fs_server_entry(s, "disk2", "second \x07" "disk");
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
        expect_abort(s);
        run(s, &o, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_cmpuint(x.hs.n_exports, ==, 3);
        g_assert_cmpstr(x.hs.exports[0].name, ==, "");
        g_assert_cmpstr(x.hs.exports[0].description, ==, "the default");
        g_assert_cmpstr(x.hs.exports[1].name, ==, "disk1");
        g_assert_cmpstr(x.hs.exports[1].description, ==, "");
        g_assert_cmpstr(x.hs.exports[2].description, ==, "second \\x07disk");
        handshake_done(&x.hs);
}

static void test_list_empty_abort_closed(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_LIST };
        Run x;

        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
        /* The server closes instead of answering the ABORT: still fine. */
        fs_expect_option(s, NBD_OPT_ABORT, NULL, 0);
        run(s, &o, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_cmpuint(x.hs.n_exports, ==, 0);
        handshake_done(&x.hs);
}

static void test_list_non_fixed(void) {
        FakeServer *s = newstyle(0);
        HandshakeOptions o = { .goal = HANDSHAKE_LIST };
        Run x;

        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_server_entry(s, "a", "");
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
        /* No ABORT to a server that may not know it. */
        run(s, &o, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_cmpuint(x.hs.n_exports, ==, 1);
        handshake_done(&x.hs);
}

static void test_list_over_limit(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_LIST };
        Run x;

        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fake_server_allow_early_close(s);
        for (unsigned i = 0; i <= NBD_MAX_LIST_ENTRIES; i++) {
                char name[32];
                g_snprintf(name, sizeof(name), "e%u", i);
                fs_server_entry(s, name, "");
        }
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
        fs_drain(s);
        run(s, &o, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "10000"));
        handshake_done(&x.hs);
}

/* A caller's own byte limit (an unprivileged caller's 1 MiB) ends the list
 * as soon as an entry would pass it, however many the server has left. */
static void test_list_caller_limit(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_LIST, .max_list_bytes = 1024 * 1024 };
        g_autofree char *description = g_malloc(4001);
        Run x;

        memset(description, 'd', 4000);
        description[4000] = 0;
        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fake_server_allow_early_close(s);
        /* 300 entries of about 4 KiB: 1.2 MiB in all. */
        for (unsigned i = 0; i < 300; i++) {
                char name[32];
                g_snprintf(name, sizeof(name), "e%u", i);
                fs_server_entry(s, name, description);
        }
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
        fs_drain(s);
        run(s, &o, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "over the limit of 1 MiB"));
        g_assert_cmpuint(x.hs.list_bytes, <=, 1024 * 1024);
        g_assert_cmpuint(x.hs.list_bytes, >, 1000 * 1024);
        handshake_done(&x.hs);
}

static void test_list_bad_name_length(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_LIST };
        uint8_t e[8] = { 0, 0, 0, 9, 'a', 'b', 'c', 'd' };      /* name longer than the reply */
        Run x;

        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_reply(s, NBD_OPT_LIST, NBD_REP_SERVER, e, sizeof(e));
        run(s, &o, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_list_short_entry(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_LIST };
        Run x;

        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_reply(s, NBD_OPT_LIST, NBD_REP_SERVER, "ab", 2);
        run(s, &o, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_list_oversized_entry(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_LIST };
        Run x;

        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_reply_header(s, NBD_REP_MAGIC, NBD_OPT_LIST, NBD_REP_SERVER, 1u << 31);
        fs_drain(s);
        run(s, &o, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_list_unsupported(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_LIST };
        Run x;

        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ERR_UNSUP, "no list", 7);
        expect_abort(s);
        run(s, &o, &x);
        assert_failed(&x, -EOPNOTSUPP, "handshake: ");
        handshake_done(&x.hs);
}

static void test_list_shutdown(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_LIST };
        Run x;

        fs_expect_option(s, NBD_OPT_LIST, NULL, 0);
        fs_server_entry(s, "a", "");
        fs_reply(s, NBD_OPT_LIST, NBD_REP_ERR_SHUTDOWN, NULL, 0);
        expect_abort(s);
        run(s, &o, &x);
        assert_failed(&x, -EIO, "handshake: ");
        handshake_done(&x.hs);
}

/* TLS cases that never get as far as a TLS handshake. */
/* PSK, so that loading it needs nothing from the system. */
static const TlsConfig dummy_tls = { .psk_file = { .data = (void *) "user:00112233", .size = 13 } };

static void test_tls_require_oldstyle(void) {
        FakeServer *s = fake_server_new();
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "", .tls = TLS_MODE_REQUIRE, .tls_config = &dummy_tls };
        Run x;

        fs_greeting_oldstyle(s, GIB, NBD_FLAG_HAS_FLAGS);
        run(s, &o, &x);
        assert_failed(&x, -EPROTONOSUPPORT, "handshake: ");
        handshake_done(&x.hs);
}

static void test_tls_require_non_fixed(void) {
        FakeServer *s = fake_server_new();
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "", .tls = TLS_MODE_REQUIRE, .tls_config = &dummy_tls };
        Run x;

        fs_greeting_newstyle(s, NBD_FLAG_NO_ZEROES);
        /* Not a byte more: no client flags, certainly no export name. */
        fs_expect_eof(s);
        run(s, &o, &x);
        assert_failed(&x, -EPROTONOSUPPORT, "handshake: ");
        handshake_done(&x.hs);
}

static void test_tls_require_refused(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "", .tls = TLS_MODE_REQUIRE, .tls_config = &dummy_tls };
        Run x;

        fs_expect_option(s, NBD_OPT_STARTTLS, NULL, 0);
        fs_reply(s, NBD_OPT_STARTTLS, NBD_REP_ERR_POLICY, "no TLS for you", 14);
        expect_abort(s);
        run(s, &o, &x);
        assert_failed(&x, -EPROTONOSUPPORT, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "no TLS for you"));
        handshake_done(&x.hs);
}

/* A server that does not know STARTTLS (UNSUP) or will not do it (POLICY):
 * TLS "on" goes on in plaintext. */
static void test_tls_on_refused_continues(void) {
        static const uint32_t refusals[] = { NBD_REP_ERR_UNSUP, NBD_REP_ERR_POLICY };
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "disk", .tls = TLS_MODE_ON, .tls_config = &dummy_tls };

        for (size_t i = 0; i < G_N_ELEMENTS(refusals); i++) {
                FakeServer *s = newstyle(FIXED);
                Run x;

                fs_expect_option(s, NBD_OPT_STARTTLS, NULL, 0);
                fs_reply(s, NBD_OPT_STARTTLS, refusals[i], "what?", 5);
                fs_expect_go(s, NBD_OPT_GO, "disk");
                fs_info_export(s, NBD_OPT_GO, GIB, FLAGS_RW);
                fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
                run(s, &o, &x);
                g_assert_cmpint(x.r, ==, 0);
                g_assert_false(x.hs.info.tls);
                handshake_done(&x.hs);
        }
}

/* TLS "on" goes on in plaintext only when the server does not know
 * STARTTLS or will not do it; NBD_REP_ERR_SHUTDOWN (and any other error)
 * ends with the spec's soft disconnect instead. */
static void test_tls_on_other_errors_stop(void) {
        static const struct {
                uint32_t type;
                int error;
                const char *needle;
        } cases[] = {
                { NBD_REP_ERR_SHUTDOWN, -EIO, "NBD_REP_ERR_SHUTDOWN: going down" },
                { NBD_REP_ERR_INVALID, -EINVAL, "NBD_REP_ERR_INVALID: going down" },
                { NBD_REP_ERR_PLATFORM, -EOPNOTSUPP, "NBD_REP_ERR_PLATFORM: going down" },
                { NBD_REP_ERR(77), -EIO, "unknown error 77" },
        };
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "disk", .tls = TLS_MODE_ON, .tls_config = &dummy_tls };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                FakeServer *s = newstyle(FIXED);
                Run x;

                fs_expect_option(s, NBD_OPT_STARTTLS, NULL, 0);
                fs_reply(s, NBD_OPT_STARTTLS, cases[i].type, "going down", 10);
                expect_abort(s);
                run(s, &o, &x);
                assert_failed(&x, cases[i].error, "handshake: ");
                if (!strstr(x.hs.error.message, cases[i].needle))
                        g_error("\"%s\" not in \"%s\"", cases[i].needle, x.hs.error.message);
                g_assert_false(x.hs.tried_go);
                handshake_done(&x.hs);
        }
}

/* One of several connections: NBD_OPT_INFO settles NBD_FLAG_CAN_MULTI_CONN
 * before GO puts the server in transmission. */
static void test_multi_conn_info_first(void) {
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "disk", .require_multi_conn = true };
        FakeServer *s = newstyle(FIXED);
        Run x;

        fs_expect_go(s, NBD_OPT_INFO, "disk");
        fs_info_export(s, NBD_OPT_INFO, GIB, FLAGS_RW | NBD_FLAG_CAN_MULTI_CONN);
        fs_reply(s, NBD_OPT_INFO, NBD_REP_ACK, NULL, 0);
        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_GO, GIB, FLAGS_RW | NBD_FLAG_CAN_MULTI_CONN);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
        run(s, &o, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_true(x.hs.info.flags & NBD_FLAG_CAN_MULTI_CONN);
        handshake_done(&x.hs);

        /* Without the flag: InvalidArgument, and a soft goodbye. */
        s = newstyle(FIXED);
        fs_expect_go(s, NBD_OPT_INFO, "disk");
        fs_info_export(s, NBD_OPT_INFO, GIB, FLAGS_RW);
        fs_reply(s, NBD_OPT_INFO, NBD_REP_ACK, NULL, 0);
        expect_abort(s);
        run(s, &o, &x);
        assert_failed(&x, -EINVAL, "handshake: ");
        g_assert_nonnull(strstr(x.hs.error.message, "NBD_FLAG_CAN_MULTI_CONN"));
        handshake_done(&x.hs);

        /* A server without INFO: GO decides (connect_many() checks after). */
        s = newstyle(FIXED);
        fs_expect_go(s, NBD_OPT_INFO, "disk");
        fs_reply(s, NBD_OPT_INFO, NBD_REP_ERR_UNSUP, NULL, 0);
        expect_listed(s, "disk");
        fs_expect_option(s, NBD_OPT_EXPORT_NAME, "disk", 4);
        export_name_reply(s, GIB, FLAGS_RW | NBD_FLAG_CAN_MULTI_CONN, false);
        run(s, &o, &x);
        g_assert_cmpint(x.r, ==, 0);
        handshake_done(&x.hs);
}

/* A finished GO that is not handed on leaves with NBD_CMD_DISC. */
static void test_end_transmission(void) {
        FakeServer *s = newstyle(FIXED);
        Conn *c = NULL;
        g_autofree char *error = NULL;
        Handshake hs;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_GO, GIB, FLAGS_RW);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
        fs_expect(s, disc_request, sizeof(disc_request));
        g_assert_cmpint(conn_new_fd(&c, fake_server_start(s)), ==, 0);
        conn_set_deadline(c, deadline_after(5 * USEC_PER_SEC));
        handshake_init(&hs, c, &go_opts);
        g_assert_cmpint(handshake_run(&hs), ==, 0);
        g_assert_cmpint(handshake_end_transmission(&hs), ==, 0);
        /* Once only. */
        g_assert_cmpint(handshake_end_transmission(&hs), ==, 0);
        hs.conn = conn_free(hs.conn);
        error = fake_server_join(s);
        if (error)
                g_error("fake server: %s", error);
        fake_server_free(s);
        handshake_done(&hs);
}

static void test_tls_on_non_fixed_plaintext(void) {
        FakeServer *s = newstyle(0);
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "disk", .tls = TLS_MODE_ON, .tls_config = &dummy_tls };
        Run x;

        fs_expect_option(s, NBD_OPT_EXPORT_NAME, "disk", 4);
        export_name_reply(s, GIB, FLAGS_RW, true);
        run(s, &o, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_false(x.hs.info.tls);
        handshake_done(&x.hs);
}

static void test_starttls_bad_reply(void) {
        FakeServer *s = newstyle(FIXED);
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "", .tls = TLS_MODE_ON, .tls_config = &dummy_tls };
        Run x;

        fs_expect_option(s, NBD_OPT_STARTTLS, NULL, 0);
        fs_reply(s, NBD_OPT_STARTTLS, NBD_REP_ACK, "x", 1);
        run(s, &o, &x);
        assert_failed(&x, -EPROTO, "handshake: ");
        handshake_done(&x.hs);
}

static void test_tls_without_config(void) {
        Handshake hs;
        Conn *c;
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .tls = TLS_MODE_ON };

        g_assert_cmpint(conn_new_memory(&c, "", 0), ==, 0);
        handshake_init(&hs, c, &o);
        g_assert_cmpint(handshake_run(&hs), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(hs.error.message, "handshake: "));
        handshake_done(&hs);
}

static void test_memory_conn(void) {
        /* A whole successful GO from a buffer: the fuzz target's path. */
        g_autoptr(GByteArray) b = g_byte_array_new();
        uint64_t m = htobe64(NBD_MAGIC), io = htobe64(NBD_IHAVEOPT), rm = htobe64(NBD_REP_MAGIC);
        uint16_t hf = htobe16(FIXED);
        struct nbd_option_reply rep = { rm, htobe32(NBD_OPT_GO), htobe32(NBD_REP_INFO), htobe32(12) };
        struct nbd_info_export e = { htobe16(NBD_INFO_EXPORT), htobe64(GIB), htobe16(FLAGS_RW) };
        struct nbd_option_reply ack = { rm, htobe32(NBD_OPT_GO), htobe32(NBD_REP_ACK), 0 };
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "x" };
        Handshake hs;
        Conn *c;

        g_byte_array_append(b, (guint8 *) &m, 8);
        g_byte_array_append(b, (guint8 *) &io, 8);
        g_byte_array_append(b, (guint8 *) &hf, 2);
        g_byte_array_append(b, (guint8 *) &rep, sizeof(rep));
        g_byte_array_append(b, (guint8 *) &e, sizeof(e));
        g_byte_array_append(b, (guint8 *) &ack, sizeof(ack));

        g_assert_cmpint(conn_new_memory(&c, b->data, b->len), ==, 0);
        g_assert_cmpint(conn_fd(c), ==, -EBADF);
        handshake_init(&hs, c, &o);
        g_assert_cmpint(handshake_run(&hs), ==, 0);
        g_assert_cmpuint(hs.info.size, ==, GIB);
        handshake_done(&hs);

        /* One byte short: end of file is a closed connection. */
        g_assert_cmpint(conn_new_memory(&c, b->data, b->len - 1), ==, 0);
        handshake_init(&hs, c, &o);
        g_assert_cmpint(handshake_run(&hs), ==, -EPROTO);
        handshake_done(&hs);
}

static void test_take_conn_and_move(void) {
        FakeServer *s = newstyle(FIXED);
        NbdExportInfo info;
        Conn *c;
        Run x;

        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_string(s, NBD_OPT_GO, NBD_INFO_DESCRIPTION, "d");
        fs_info_export(s, NBD_OPT_GO, GIB, FLAGS_RW);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
        run_full(s, &go_opts, 5 * USEC_PER_SEC, &x, true);
        g_assert_cmpint(x.r, ==, 0);

        c = handshake_take_conn(&x.hs);
        g_assert_nonnull(c);
        g_assert_cmpint(conn_fd(c), >=, 0);
        nbd_export_info_move(&info, &x.hs.info);
        handshake_done(&x.hs);
        g_assert_cmpstr(info.description, ==, "d");
        g_assert_cmpstr(info.name, ==, "disk");
        nbd_export_info_done(&info);
        conn_free(c);
}

static void test_export_name_too_long(void) {
        g_autofree char *name = g_strnfill(NBD_MAX_STRING + 1, 'n');
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = name };
        Handshake hs;
        Conn *c;

        g_assert_cmpint(conn_new_memory(&c, "", 0), ==, 0);
        handshake_init(&hs, c, &o);
        g_assert_cmpint(handshake_run(&hs), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(hs.error.message, "handshake: "));
        handshake_done(&hs);
}

static void test_tls_mode_strings(void) {
        g_assert_cmpstr(tls_mode_to_string(TLS_MODE_OFF), ==, "off");
        g_assert_cmpstr(tls_mode_to_string(TLS_MODE_ON), ==, "on");
        g_assert_cmpstr(tls_mode_to_string(TLS_MODE_REQUIRE), ==, "require");
        g_assert_null(tls_mode_to_string(_TLS_MODE_MAX));
        g_assert_cmpint(tls_mode_from_string("require"), ==, TLS_MODE_REQUIRE);
        g_assert_cmpint(tls_mode_from_string("off"), ==, TLS_MODE_OFF);
        g_assert_cmpint(tls_mode_from_string("yes"), ==, -EINVAL);
        g_assert_cmpint(tls_mode_from_string(NULL), ==, -EINVAL);
}

/* The fake server's own check that nothing follows a script, against a
 * tiny client speaking raw bytes: the fixed-newstyle opening, then maybe one
 * byte more, at once or after a pause (when the server is already past its
 * last step), with its end closed before join or still open at join. */
static char *tiny_client(bool extra, unsigned gap_ms, bool keep_open) {
        FakeServer *s = newstyle(FIXED);
        uint32_t cflags = htobe32(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
        uint8_t greeting[18];
        char *error;
        int fd;

        fd = fake_server_start(s);
        g_assert_cmpint(recv(fd, greeting, sizeof(greeting), MSG_WAITALL), ==, (ssize_t) sizeof(greeting));
        g_assert_cmpint(send(fd, &cflags, sizeof(cflags), MSG_NOSIGNAL), ==, (ssize_t) sizeof(cflags));
        if (extra) {
                g_usleep(gap_ms * 1000);
                g_assert_cmpint(send(fd, "X", 1, MSG_NOSIGNAL), ==, 1);
        }
        if (!keep_open)
                g_assert_cmpint(close(fd), ==, 0);
        error = fake_server_join(s);
        if (keep_open)
                g_assert_cmpint(close(fd), ==, 0);
        fake_server_free(s);
        return error;
}

static void test_fake_server_trailing_byte(void) {
        static const unsigned gaps_ms[] = { 0, 50 };

        for (size_t i = 0; i < G_N_ELEMENTS(gaps_ms); i++)
                for (int keep_open = 0; keep_open <= 1; keep_open++) {
                        g_autofree char *error = tiny_client(true, gaps_ms[i], keep_open);

                        g_assert_cmpstr(error, ==, "client sent 1 unexpected byte after the script: 58");
                }
}

static void test_fake_server_exact(void) {
        for (int keep_open = 0; keep_open <= 1; keep_open++) {
                g_autofree char *error = tiny_client(false, 0, keep_open);

                g_assert_null(error);
        }
}

#define PSK_KEY "0123456789abcdef0123456789abcdef"

static int psk_server_cb(gnutls_session_t session, const char *username, gnutls_datum_t *key) {
        const gnutls_datum_t hex = { (unsigned char *) PSK_KEY, sizeof(PSK_KEY) - 1 };
        size_t size = (sizeof(PSK_KEY) - 1) / 2;

        if (strcmp(username, "alice") != 0)
                return -1;
        key->data = gnutls_malloc(size);
        key->size = (unsigned) size;
        return gnutls_hex_decode(&hex, key->data, &size) < 0 ? -1 : 0;
}

/* The same through TLS: the engine's whole GO over PSK, then one byte more
 * inside the session or none; the client's close_notify is no surplus. */
static char *tls_client(bool extra) {
        static const char psk_file[] = "alice:" PSK_KEY "\n";
        const TlsConfig cfg = { .psk_file = { .data = (void *) psk_file, .size = sizeof(psk_file) - 1 } };
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "disk", .tls = TLS_MODE_REQUIRE, .tls_config = &cfg };
        gnutls_psk_server_credentials_t cred;
        FakeServer *s = newstyle(FIXED);
        Handshake hs;
        Conn *c;
        char *error;

        g_assert_cmpint(gnutls_psk_allocate_server_credentials(&cred), ==, 0);
        gnutls_psk_set_server_credentials_function(cred, psk_server_cb);
        fs_expect_option(s, NBD_OPT_STARTTLS, NULL, 0);
        fs_reply(s, NBD_OPT_STARTTLS, NBD_REP_ACK, NULL, 0);
        fs_start_tls_psk(s, cred, false);
        fs_expect_go(s, NBD_OPT_GO, "disk");
        fs_info_export(s, NBD_OPT_GO, GIB, FLAGS_RW);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);

        g_assert_cmpint(conn_new_fd(&c, fake_server_start(s)), ==, 0);
        conn_set_deadline(c, deadline_after(5 * USEC_PER_SEC));
        handshake_init(&hs, c, &o);
        g_assert_cmpint(handshake_run(&hs), ==, 0);
        g_assert_true(hs.info.tls);
        if (extra)
                g_assert_cmpint(conn_write_full(hs.conn, "X", 1), ==, 0);
        hs.conn = conn_free(hs.conn);
        error = fake_server_join(s);
        fake_server_free(s);
        handshake_done(&hs);
        return error;
}

static void test_fake_server_trailing_byte_tls(void) {
        g_autofree char *trailing = tls_client(true);
        g_autofree char *exact = tls_client(false);

        g_assert_cmpstr(trailing, ==, "client sent 1 unexpected byte after the script (inside TLS): 58");
        g_assert_null(exact);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/handshake/go/ok", test_go_ok);
        g_test_add_func("/handshake/go/read-only", test_go_read_only);
        g_test_add_func("/handshake/go/unsup-fallback-no-zeroes", test_go_unsup_fallback_no_zeroes);
        g_test_add_func("/handshake/go/unsup-fallback-zeroes", test_go_unsup_fallback_zeroes);
        g_test_add_func("/handshake/go/take-conn-and-move", test_take_conn_and_move);
        g_test_add_func("/handshake/non-fixed/export-name", test_non_fixed_newstyle);
        g_test_add_func("/handshake/non-fixed/no-zeroes", test_non_fixed_no_zeroes);
        g_test_add_func("/handshake/export-name/closed", test_export_name_closed);
        g_test_add_func("/handshake/export-name/unlisted", test_export_name_unlisted);
        g_test_add_func("/handshake/export-name/default-unlisted", test_export_name_default_unlisted);
        g_test_add_func("/handshake/export-name/list-shutdown", test_export_name_list_shutdown);
        g_test_add_func("/handshake/oldstyle/ok", test_oldstyle);
        g_test_add_func("/handshake/oldstyle/named", test_oldstyle_named);
        g_test_add_func("/handshake/oldstyle/list", test_oldstyle_list);
        g_test_add_func("/handshake/oldstyle/truncated", test_truncated_oldstyle);
        g_test_add_func("/handshake/greeting/bad-magic", test_bad_magic);
        g_test_add_func("/handshake/greeting/bad-style", test_bad_style);
        g_test_add_func("/handshake/greeting/truncated", test_truncated_greeting);
        g_test_add_func("/handshake/reply/bad-magic", test_bad_reply_magic);
        g_test_add_func("/handshake/reply/wrong-option", test_wrong_option_echo);
        g_test_add_func("/handshake/reply/unexpected-type", test_unexpected_reply_type);
        g_test_add_func("/handshake/reply/ack-with-payload", test_ack_with_payload);
        g_test_add_func("/handshake/reply/ack-without-export", test_ack_without_export);
        g_test_add_func("/handshake/info/too-short", test_info_too_short);
        g_test_add_func("/handshake/info/export-wrong-length", test_info_export_wrong_length);
        g_test_add_func("/handshake/info/block-size-wrong-length", test_info_block_size_wrong_length);
        g_test_add_func("/handshake/info/oversized", test_info_oversized);
        g_test_add_func("/handshake/info/name-too-long", test_info_name_too_long);
        g_test_add_func("/handshake/info/name-bad-utf8", test_info_name_bad_utf8);
        g_test_add_func("/handshake/info/flood", test_info_flood);
        g_test_add_func("/handshake/info/no-has-flags", test_export_no_has_flags);
        g_test_add_func("/handshake/info/size-huge", test_export_size_huge);
        g_test_add_func("/handshake/info/block-sizes", test_block_sizes);
        g_test_add_func("/handshake/error/mapping", test_errors);
        g_test_add_func("/handshake/error/shutdown-sends-abort", test_shutdown_sends_abort);
        g_test_add_func("/handshake/error/huge-message", test_huge_error_message);
        g_test_add_func("/handshake/timeout/stall", test_stall_times_out);
        g_test_add_func("/handshake/timeout/trickle", test_trickle_times_out);
        g_test_add_func("/handshake/info-goal/ok", test_info_goal);
        g_test_add_func("/handshake/info-goal/fallback", test_info_goal_fallback);
        g_test_add_func("/handshake/list/ok", test_list);
        g_test_add_func("/handshake/list/empty-abort-closed", test_list_empty_abort_closed);
        g_test_add_func("/handshake/list/non-fixed", test_list_non_fixed);
        g_test_add_func("/handshake/list/over-limit", test_list_over_limit);
        g_test_add_func("/handshake/list/caller-limit", test_list_caller_limit);
        g_test_add_func("/handshake/list/bad-name-length", test_list_bad_name_length);
        g_test_add_func("/handshake/list/short-entry", test_list_short_entry);
        g_test_add_func("/handshake/list/oversized-entry", test_list_oversized_entry);
        g_test_add_func("/handshake/list/unsupported", test_list_unsupported);
        g_test_add_func("/handshake/list/shutdown", test_list_shutdown);
        g_test_add_func("/handshake/tls/require-oldstyle", test_tls_require_oldstyle);
        g_test_add_func("/handshake/tls/require-non-fixed", test_tls_require_non_fixed);
        g_test_add_func("/handshake/tls/require-refused", test_tls_require_refused);
        g_test_add_func("/handshake/tls/on-refused-continues", test_tls_on_refused_continues);
        g_test_add_func("/handshake/tls/on-non-fixed-plaintext", test_tls_on_non_fixed_plaintext);
        g_test_add_func("/handshake/tls/on-other-errors-stop", test_tls_on_other_errors_stop);
        g_test_add_func("/handshake/go/multi-conn-info-first", test_multi_conn_info_first);
        g_test_add_func("/handshake/go/end-transmission", test_end_transmission);
        g_test_add_func("/handshake/tls/starttls-bad-reply", test_starttls_bad_reply);
        g_test_add_func("/handshake/tls/without-config", test_tls_without_config);
        g_test_add_func("/handshake/memory-conn", test_memory_conn);
        g_test_add_func("/handshake/export-name-too-long", test_export_name_too_long);
        g_test_add_func("/handshake/tls-mode-strings", test_tls_mode_strings);
        g_test_add_func("/handshake/fake-server/trailing-byte", test_fake_server_trailing_byte);
        g_test_add_func("/handshake/fake-server/trailing-byte-tls", test_fake_server_trailing_byte_tls);
        g_test_add_func("/handshake/fake-server/exact", test_fake_server_exact);

        return g_test_run();
}
