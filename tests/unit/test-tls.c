/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STARTTLS against a GnuTLS server thread with credentials made at test
 * time: X.509 good and bad (unknown CA, host name, expiry, client
 * certificate), PSK good and bad, the deadline during the TLS handshake,
 * and reading credentials from descriptors. */

/* nbdlink headers first: GLib redefines MIN/MAX after them quietly, the
 * other way round warns. */
#include "fake-server.h"
#include "handshake.h"
#include "nbd-protocol.h"
#include "tls-certs.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define GIB (UINT64_C(1) << 30)
#define FIXED (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)
#define FLAGS_RW (NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH)

static TestCert ca, other_ca, server_good, server_expired, client_cert;
static char *ca_pem, *other_ca_pem, *client_pem, *client_key_pem;
static size_t ca_pem_size, other_ca_pem_size, client_pem_size, client_key_pem_size;

typedef struct Run {
        Handshake hs;
        int r;
        bool client_cert_seen;
        gnutls_protocol_t version;      /* of the session, on success */
} Run;

static void run_full(FakeServer *s, const HandshakeOptions *opts, usec_t timeout, Run *ret) {
        g_autofree char *error = NULL;
        Conn *c = NULL;
        int fd;

        fd = fake_server_start(s);
        g_assert_cmpint(conn_new_fd(&c, fd), ==, 0);
        conn_set_deadline(c, deadline_after(timeout));
        handshake_init(&ret->hs, c, opts);
        ret->r = handshake_run(&ret->hs);
        if (ret->r < 0)
                g_test_message("handshake: r=%d (%s) error=\"%s\"", ret->r, g_strerror(-ret->r), ret->hs.error.message);
        ret->version = ret->r == 0 && conn_tls_session(ret->hs.conn) ?
                gnutls_protocol_get_version(conn_tls_session(ret->hs.conn)) : GNUTLS_VERSION_UNKNOWN;
        ret->hs.conn = conn_free(ret->hs.conn);

        error = fake_server_join(s);
        if (error)
                g_error("fake server: %s", error);
        ret->client_cert_seen = fake_server_client_cert_seen(s);
        fake_server_free(s);
}

static void assert_failed(Run *x, int error, const char *prefix, const char *needle) {
        g_assert_cmpint(x->r, ==, error);
        g_assert_true(g_str_has_prefix(x->hs.error.message, prefix));
        if (needle && !strstr(x->hs.error.message, needle))
                g_error("\"%s\" not in \"%s\"", needle, x->hs.error.message);
}

/* Greeting and STARTTLS in clear text, up to the server's ACK. */
static FakeServer *starttls_script(void) {
        FakeServer *s = fake_server_new();

        fs_greeting_newstyle(s, FIXED);
        fs_expect_u32(s, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
        fs_expect_option(s, NBD_OPT_STARTTLS, NULL, 0);
        fs_reply(s, NBD_OPT_STARTTLS, NBD_REP_ACK, NULL, 0);
        return s;
}

/* For configurations refused before any I/O: the client must not say a
 * word, not even its flags. */
static FakeServer *silent_script(void) {
        FakeServer *s = fake_server_new();

        fs_expect_eof(s);
        return s;
}

/* The rest of a successful GO, now inside TLS. */
static void go_script(FakeServer *s) {
        fs_expect_go(s, NBD_OPT_GO, "secure");
        fs_info_export(s, NBD_OPT_GO, GIB, FLAGS_RW);
        fs_reply(s, NBD_OPT_GO, NBD_REP_ACK, NULL, 0);
}

static TlsConfig x509_config(const char *ca_text, size_t ca_size, const char *hostname) {
        return (TlsConfig) {
                .ca = { .data = (void *) ca_text, .size = ca_size },
                .hostname = hostname,
        };
}

static void x509_case(const TestCert *leaf, const char *trusted, size_t trusted_size, const char *hostname,
                      TlsMode mode, int expected, const char *needle) {
        FakeServer *s = starttls_script();
        TlsConfig cfg = x509_config(trusted, trusted_size, hostname);
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "secure", .tls = mode, .tls_config = &cfg };
        Run x;

        fs_start_tls_x509(s, test_cert_server_credentials(leaf, &ca), expected != 0);
        if (expected == 0)
                go_script(s);
        run_full(s, &o, 10 * USEC_PER_SEC, &x);

        if (expected == 0) {
                g_assert_cmpint(x.r, ==, 0);
                g_assert_true(x.hs.info.tls);
                g_assert_cmpuint(x.hs.info.size, ==, GIB);
        } else
                assert_failed(&x, expected, "tls: ", needle);
        handshake_done(&x.hs);
}

static void test_x509_good(void) {
        x509_case(&server_good, ca_pem, ca_pem_size, "nbd.example.test", TLS_MODE_REQUIRE, 0, NULL);
}

static void test_x509_good_on(void) {
        x509_case(&server_good, ca_pem, ca_pem_size, "nbd.example.test", TLS_MODE_ON, 0, NULL);
}

static void test_x509_good_ip(void) {
        x509_case(&server_good, ca_pem, ca_pem_size, "127.0.0.1", TLS_MODE_REQUIRE, 0, NULL);
}

static void test_x509_wrong_ca(void) {
        x509_case(&server_good, other_ca_pem, other_ca_pem_size, "nbd.example.test", TLS_MODE_REQUIRE,
                  -ECONNABORTED, "unknown CA");
}

static void test_x509_wrong_host(void) {
        x509_case(&server_good, ca_pem, ca_pem_size, "evil.example.test", TLS_MODE_REQUIRE,
                  -ECONNABORTED, "host name mismatch");
}

/* The kTLS restriction (TlsConfig.ktls) against servers that take it, that
 * refuse it, and that fail for another reason. */
static void ktls_case(const char *server_priority, const char *trusted, size_t trusted_size, bool ktls,
                      int expected, bool expect_refused, gnutls_protocol_t expect_version) {
        FakeServer *s = starttls_script();
        TlsConfig cfg = x509_config(trusted, trusted_size, "nbd.example.test");
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "secure", .tls = TLS_MODE_REQUIRE, .tls_config = &cfg };
        Run x;

        cfg.ktls = ktls;
        fake_server_set_tls_priority(s, server_priority);
        fs_start_tls_x509(s, test_cert_server_credentials(&server_good, &ca), expected != 0);
        if (expected == 0)
                go_script(s);
        run_full(s, &o, 10 * USEC_PER_SEC, &x);

        g_assert_cmpint(x.r, ==, expected);
        g_assert_cmpint(x.hs.tls_ktls_refused, ==, expect_refused);
        if (expected == 0)
                g_assert_cmpint(x.version, ==, expect_version);
        else
                g_assert_true(g_str_has_prefix(x.hs.error.message, "tls: "));
        handshake_done(&x.hs);
}

static void test_ktls_restricted_to_tls12(void) {
        ktls_case(NULL, ca_pem, ca_pem_size, true, 0, false, GNUTLS_TLS1_2);
}

static void test_ktls_refused_by_tls13_only(void) {
        ktls_case("NORMAL:-VERS-ALL:+VERS-TLS1.3", ca_pem, ca_pem_size, true, -ECONNABORTED, true, 0);
}

static void test_ktls_unrestricted_tls13_only(void) {
        /* What the worker's second attempt does. */
        ktls_case("NORMAL:-VERS-ALL:+VERS-TLS1.3", ca_pem, ca_pem_size, false, 0, false, GNUTLS_TLS1_3);
}

static void test_ktls_wrong_ca_not_retried(void) {
        ktls_case(NULL, other_ca_pem, other_ca_pem_size, true, -ECONNABORTED, false, 0);
}

static void test_x509_wrong_ip(void) {
        x509_case(&server_good, ca_pem, ca_pem_size, "127.0.0.2", TLS_MODE_ON,
                  -ECONNABORTED, "host name mismatch");
}

static void test_x509_expired(void) {
        x509_case(&server_expired, ca_pem, ca_pem_size, "nbd.example.test", TLS_MODE_REQUIRE,
                  -ECONNABORTED, "expired");
}

static void test_x509_ca_dir(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *dir = g_dir_make_tmp("nbdlink-ca-XXXXXX", &error);
        g_autofree char *path = NULL;
        FakeServer *s = starttls_script();
        TlsConfig cfg = { .hostname = "nbd.example.test" };
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "secure", .tls = TLS_MODE_REQUIRE, .tls_config = &cfg };
        Run x;

        g_assert_no_error(error);
        path = g_build_filename(dir, "ca.pem", NULL);
        g_assert_true(g_file_set_contents(path, ca_pem, (gssize) ca_pem_size, &error));
        cfg.ca_dir = dir;

        fs_start_tls_x509(s, test_cert_server_credentials(&server_good, &ca), false);
        go_script(s);
        run_full(s, &o, 10 * USEC_PER_SEC, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_true(x.hs.info.tls);
        handshake_done(&x.hs);

        g_assert_cmpint(unlink(path), ==, 0);
        g_assert_cmpint(rmdir(dir), ==, 0);
}

static void test_x509_system_trust(void) {
        /* Our throw-away CA is not in the system store. */
        x509_case(&server_good, NULL, 0, "nbd.example.test", TLS_MODE_REQUIRE, -ECONNABORTED, "unknown CA");
}

static void test_x509_client_cert(void) {
        FakeServer *s = starttls_script();
        TlsConfig cfg = x509_config(ca_pem, ca_pem_size, "nbd.example.test");
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "secure", .tls = TLS_MODE_REQUIRE, .tls_config = &cfg };
        gnutls_certificate_credentials_t cred = test_cert_server_credentials(&server_good, &ca);
        Run x;

        cfg.cert = (Blob) { client_pem, client_pem_size };
        cfg.key = (Blob) { client_key_pem, client_key_pem_size };
        g_assert_cmpint(gnutls_certificate_set_x509_trust(cred, &ca.crt, 1), ==, 1);
        fake_server_require_client_cert(s);
        fs_start_tls_x509(s, cred, false);
        go_script(s);
        run_full(s, &o, 10 * USEC_PER_SEC, &x);
        g_assert_cmpint(x.r, ==, 0);
        g_assert_true(x.client_cert_seen);
        handshake_done(&x.hs);
}

static void test_x509_cert_without_key(void) {
        FakeServer *s = silent_script();
        TlsConfig cfg = x509_config(ca_pem, ca_pem_size, "nbd.example.test");
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "secure", .tls = TLS_MODE_REQUIRE, .tls_config = &cfg };
        Run x;

        cfg.cert = (Blob) { client_pem, client_pem_size };
        run_full(s, &o, 10 * USEC_PER_SEC, &x);
        assert_failed(&x, -EINVAL, "tls: ", "key");
        handshake_done(&x.hs);
}

static void test_x509_bad_ca_bytes(void) {
        FakeServer *s = silent_script();
        TlsConfig cfg = x509_config("not a certificate", 17, "nbd.example.test");
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "secure", .tls = TLS_MODE_REQUIRE, .tls_config = &cfg };
        Run x;

        run_full(s, &o, 10 * USEC_PER_SEC, &x);
        assert_failed(&x, -EINVAL, "tls: ", "CA");
        handshake_done(&x.hs);
}

static void test_tls_handshake_timeout(void) {
        FakeServer *s = starttls_script();
        TlsConfig cfg = x509_config(ca_pem, ca_pem_size, "nbd.example.test");
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "secure", .tls = TLS_MODE_REQUIRE, .tls_config = &cfg };
        usec_t start = now_usec(CLOCK_MONOTONIC);
        Run x;

        /* ACKs STARTTLS, then never speaks TLS. */
        fs_drain(s);
        run_full(s, &o, 300 * USEC_PER_MSEC, &x);
        assert_failed(&x, -ETIMEDOUT, "tls: ", NULL);
        g_assert_cmpuint(now_usec(CLOCK_MONOTONIC) - start, <, 3 * USEC_PER_SEC);
        handshake_done(&x.hs);
}

static void test_tls_server_closes(void) {
        FakeServer *s = starttls_script();
        TlsConfig cfg = x509_config(ca_pem, ca_pem_size, "nbd.example.test");
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "secure", .tls = TLS_MODE_REQUIRE, .tls_config = &cfg };
        Run x;

        /* ACKs STARTTLS, takes the ClientHello that follows at once, then
         * hangs up. */
        fs_expect_tls_client_hello(s);
        run_full(s, &o, 5 * USEC_PER_SEC, &x);
        assert_failed(&x, -ECONNABORTED, "tls: ", NULL);
        handshake_done(&x.hs);
}

#define PSK_ALICE "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PSK_BOB   "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static int psk_server_cb(gnutls_session_t session, const char *username, gnutls_datum_t *key) {
        const char *hex;
        gnutls_datum_t h;
        size_t size;

        if (strcmp(username, "alice") == 0)
                hex = PSK_ALICE;
        else if (strcmp(username, "bob") == 0)
                hex = PSK_BOB;
        else
                return -1;

        size = strlen(hex) / 2;
        key->data = gnutls_malloc(size);
        key->size = (unsigned) size;
        h = (gnutls_datum_t) { (unsigned char *) hex, (unsigned) strlen(hex) };
        return gnutls_hex_decode(&h, key->data, &size) < 0 ? -1 : 0;
}

static gnutls_psk_server_credentials_t psk_server(void) {
        gnutls_psk_server_credentials_t cred;

        g_assert_cmpint(gnutls_psk_allocate_server_credentials(&cred), ==, 0);
        gnutls_psk_set_server_credentials_function(cred, psk_server_cb);
        return cred;
}

static void psk_case(const char *file, const char *username, int expected, const char *needle) {
        FakeServer *s = expected == -EINVAL ? silent_script() : starttls_script();
        TlsConfig cfg = {
                .psk_file = { .data = (void *) file, .size = strlen(file) },
                .psk_username = username,
        };
        HandshakeOptions o = { .goal = HANDSHAKE_GO, .export_name = "secure", .tls = TLS_MODE_REQUIRE, .tls_config = &cfg };
        Run x;

        if (expected != -EINVAL)
                fs_start_tls_psk(s, psk_server(), expected != 0);
        if (expected == 0)
                go_script(s);
        run_full(s, &o, 10 * USEC_PER_SEC, &x);

        if (expected == 0) {
                g_assert_cmpint(x.r, ==, 0);
                g_assert_true(x.hs.info.tls);
        } else
                assert_failed(&x, expected, "tls: ", needle);
        handshake_done(&x.hs);
}

static void test_psk_good_first(void) {
        psk_case("alice:" PSK_ALICE "\nbob:" PSK_BOB "\n", NULL, 0, NULL);
}

static void test_psk_good_named(void) {
        psk_case("alice:" PSK_ALICE "\r\n\nbob:" PSK_BOB, "bob", 0, NULL);
}

static void test_psk_bad_key(void) {
        psk_case("alice:" PSK_BOB "\n", NULL, -ECONNABORTED, "PSK");
}

static void test_psk_unknown_user(void) {
        psk_case("alice:" PSK_ALICE "\n", "carol", -EINVAL, "carol");
}

static void test_psk_malformed(void) {
        psk_case("alice-without-key\n", NULL, -EINVAL, "line 1");
        psk_case("alice:abc\n", NULL, -EINVAL, "length");
        psk_case("alice:zz\n", NULL, -EINVAL, "hexadecimal");
        psk_case("\n\n", NULL, -EINVAL, "no key");
        /* gnutls refuses keys this short; the message names the line, not
         * the user, whose bytes (not UTF-8 here) a bus error cannot carry. */
        psk_case("\n\xff\x1b[2J:00\n", NULL, -EINVAL, "bad PSK on line 2 of the PSK file");
}

static int memfd_with(const void *data, size_t n) {
        int fd = memfd_create("blob", MFD_CLOEXEC);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, data, n), ==, (ssize_t) n);
        g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
        return fd;
}

static void test_blob_read_fd(void) {
        g_autofree char *big = g_strnfill(100000, 'k');
        Blob b = {};
        int fd, p[2];

        fd = memfd_with("secret", 6);
        g_assert_cmpint(blob_read_fd(&b, fd, 6), ==, 0);
        g_assert_cmpuint(b.size, ==, 6);
        g_assert_cmpmem(b.data, b.size, "secret", 6);
        blob_done(&b);
        g_assert_null(b.data);
        g_assert_cmpuint(b.size, ==, 0);
        close(fd);

        fd = memfd_with("secret", 6);
        g_assert_cmpint(blob_read_fd(&b, fd, 5), ==, -EFBIG);
        close(fd);

        fd = memfd_with(big, 100000);
        g_assert_cmpint(blob_read_fd(&b, fd, 1 << 20), ==, 0);
        g_assert_cmpuint(b.size, ==, 100000);
        blob_done(&b);
        close(fd);

        fd = memfd_with("", 0);
        g_assert_cmpint(blob_read_fd(&b, fd, 10), ==, 0);
        g_assert_cmpuint(b.size, ==, 0);
        blob_done(&b);
        close(fd);

        /* A pipe: read until its writer closes. */
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_assert_cmpint(write(p[1], "piped", 5), ==, 5);
        close(p[1]);
        g_assert_cmpint(blob_read_fd(&b, p[0], 100), ==, 0);
        g_assert_cmpmem(b.data, b.size, "piped", 5);
        blob_done(&b);
        close(p[0]);

        g_assert_cmpint(blob_read_fd(&b, -1, 10), ==, -EINVAL);
        blob_done(NULL);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);

        test_cert_make_ca(&ca, "nbdlink test CA");
        test_cert_make_ca(&other_ca, "some other CA");
        test_cert_make_leaf(&server_good, &ca, "nbd.example.test", "127.0.0.1", false, false);
        test_cert_make_leaf(&server_expired, &ca, "nbd.example.test", NULL, false, true);
        test_cert_make_leaf(&client_cert, &ca, NULL, NULL, true, false);
        ca_pem = test_cert_pem(&ca, &ca_pem_size);
        other_ca_pem = test_cert_pem(&other_ca, &other_ca_pem_size);
        client_pem = test_cert_pem(&client_cert, &client_pem_size);
        client_key_pem = test_cert_key_pem(&client_cert, &client_key_pem_size);

        g_test_add_func("/tls/x509/good", test_x509_good);
        g_test_add_func("/tls/x509/good-mode-on", test_x509_good_on);
        g_test_add_func("/tls/x509/good-ip", test_x509_good_ip);
        g_test_add_func("/tls/x509/wrong-ca", test_x509_wrong_ca);
        g_test_add_func("/tls/x509/wrong-host", test_x509_wrong_host);
        g_test_add_func("/tls/x509/wrong-ip", test_x509_wrong_ip);
        g_test_add_func("/tls/x509/expired", test_x509_expired);
        g_test_add_func("/tls/x509/ca-dir", test_x509_ca_dir);
        g_test_add_func("/tls/x509/system-trust", test_x509_system_trust);
        g_test_add_func("/tls/x509/client-cert", test_x509_client_cert);
        g_test_add_func("/tls/x509/cert-without-key", test_x509_cert_without_key);
        g_test_add_func("/tls/x509/bad-ca-bytes", test_x509_bad_ca_bytes);
        g_test_add_func("/tls/ktls/restricted-to-tls12", test_ktls_restricted_to_tls12);
        g_test_add_func("/tls/ktls/refused-by-tls13-only", test_ktls_refused_by_tls13_only);
        g_test_add_func("/tls/ktls/unrestricted-tls13-only", test_ktls_unrestricted_tls13_only);
        g_test_add_func("/tls/ktls/wrong-ca-not-retried", test_ktls_wrong_ca_not_retried);
        g_test_add_func("/tls/handshake-timeout", test_tls_handshake_timeout);
        g_test_add_func("/tls/server-closes", test_tls_server_closes);
        g_test_add_func("/tls/psk/good-first", test_psk_good_first);
        g_test_add_func("/tls/psk/good-named", test_psk_good_named);
        g_test_add_func("/tls/psk/bad-key", test_psk_bad_key);
        g_test_add_func("/tls/psk/unknown-user", test_psk_unknown_user);
        g_test_add_func("/tls/psk/malformed", test_psk_malformed);
        g_test_add_func("/tls/blob-read-fd", test_blob_read_fd);

        r = g_test_run();

        test_cert_done(&ca);
        test_cert_done(&other_ca);
        test_cert_done(&server_good);
        test_cert_done(&server_expired);
        test_cert_done(&client_cert);
        g_free(ca_pem);
        g_free(other_ca_pem);
        g_free(client_pem);
        g_free(client_key_pem);
        return r;
}
