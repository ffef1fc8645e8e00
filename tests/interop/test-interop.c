/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The handshake engine against real servers on 127.0.0.1: nbdkit,
 * nbd-server and qemu-nbd, in plaintext, with X.509 certificates and with
 * PSK. Sizes, flags, export lists, block sizes and the error class of every
 * refusal are checked; the versions of the servers go to the test log. */

/* The project's headers come first: util/macro.h defines MIN/MAX, which
 * glib.h then redefines (with #undef) without a warning. */
#include "conn.h"
#include "handshake.h"
#include "nbd-protocol.h"
#include "net.h"
#include "tls.h"
#include "util/macro.h"

#include <fcntl.h>
#include <glib.h>
#include <stdio.h>

#include "pki.h"
#include "servers.h"

#define MiB (UINT64_C(1024) * 1024)
#define CLIENT_TIMEOUT_USEC (15 * USEC_PER_SEC)
#define MAX_CREDENTIAL_SIZE (1024 * 1024)

static TestPki *pki;

/* ---- the client side ---- */

typedef struct Client {
        HandshakeGoal goal;
        const char *export_name;
        TlsMode tls;
        const char *ca;         /* paths, read into blobs as the daemon would */
        const char *cert;
        const char *key;
        const char *psk;
        const char *psk_username;
        const char *hostname;
} Client;

/* What a run left behind, for assertions. */
typedef struct Result {
        int r;
        Handshake hs;
        TlsConfig cfg;
} Result;

static void read_blob(Blob *b, const char *path) {
        int fd, r;

        if (!path)
                return;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                g_error("cannot open %s: %s", path, g_strerror(errno));
        r = blob_read_fd(b, fd, MAX_CREDENTIAL_SIZE);
        if (r < 0)
                g_error("blob_read_fd(%s): %s", path, g_strerror(-r));
        close(fd);
}

static void result_done(Result *res) {
        handshake_done(&res->hs);
        blob_done(&res->cfg.ca);
        blob_done(&res->cfg.cert);
        blob_done(&res->cfg.key);
        blob_done(&res->cfg.psk_file);
}

static const char *goal_to_string(HandshakeGoal g) {
        switch (g) {
        case HANDSHAKE_GO:
                return "GO";
        case HANDSHAKE_INFO:
                return "INFO";
        case HANDSHAKE_LIST:
                return "LIST";
        default:
                return "?";
        }
}

/* Connects with net_connect() and runs the handshake the way the daemon's
 * worker does, under one deadline. */
static void run_client(Result *res, const TestServer *s, const Client *c) {
        char host[64];
        Error error = {};
        HandshakeOptions opts = {
                .goal = c->goal,
                .export_name = c->export_name ?: "",
                .tls = c->tls,
                .tls_config = &res->cfg,
        };
        NbdAddress a = {};
        Conn *conn = NULL;
        usec_t deadline;
        int fd = -EBADF, r;

        *res = (Result) {};
        read_blob(&res->cfg.ca, c->ca);
        read_blob(&res->cfg.cert, c->cert);
        read_blob(&res->cfg.key, c->key);
        read_blob(&res->cfg.psk_file, c->psk);
        res->cfg.psk_username = c->psk_username;
        res->cfg.hostname = c->hostname ?: "127.0.0.1";

        g_snprintf(host, sizeof(host), "127.0.0.1:%u", s->port);
        r = nbd_address_parse(&a, host, 0, &error);
        g_assert_cmpint(r, ==, 0);
        deadline = deadline_after(CLIENT_TIMEOUT_USEC);
        r = net_connect(&a, deadline, &fd, &error);
        nbd_address_done(&a);
        if (r < 0)
                g_error("%s: %s", s->name, error.message);

        r = conn_new_fd(&conn, fd);
        g_assert_cmpint(r, ==, 0);
        conn_set_deadline(conn, deadline);

        handshake_init(&res->hs, conn, &opts);
        res->r = handshake_run(&res->hs);
        g_test_message("%s %s \"%s\" tls=%s: %s%s", s->name, goal_to_string(c->goal), opts.export_name,
                       tls_mode_to_string(c->tls), res->r < 0 ? "failed: " : "ok",
                       res->r < 0 ? res->hs.error.message : "");
}

static void expect_ok(Result *res, const TestServer *s, const Client *c) {
        run_client(res, s, c);
        if (res->r < 0) {
                char *log = test_server_log(s);

                g_error("%s: %s (%s)\nserver log:\n%s", s->name, res->hs.error.message, g_strerror(-res->r), log);
        }
}

/* Every failure is checked for its errno class and its phase prefix. */
static void check_fail(Result *res, const TestServer *s, int error, const char *const *prefixes) {
        bool prefixed = false;

        if (res->r != error) {
                char *log = test_server_log(s);

                g_error("%s: expected %s, got %s: %s\nserver log:\n%s", s->name, g_strerror(-error),
                        res->r < 0 ? g_strerror(-res->r) : "success", res->hs.error.message, log);
        }
        g_assert_cmpint(res->hs.error.code, ==, error);
        for (size_t i = 0; prefixes[i]; i++)
                prefixed = prefixed || g_str_has_prefix(res->hs.error.message, prefixes[i]);
        if (!prefixed)
                g_error("%s: message \"%s\" lacks the phase prefix", s->name, res->hs.error.message);
        result_done(res);
}

static void expect_fail(const TestServer *s, const Client *c, int error, const char *const *prefixes) {
        Result res;

        run_client(&res, s, c);
        check_fail(&res, s, error, prefixes);
}

static const char *const handshake_phase[] = { "handshake: ", NULL };
static const char *const tls_phase[] = { "tls: ", NULL };
/* With TLS 1.3 a server that rejects the client's certificate says so only
 * after the client finished its side of the handshake: the alert arrives
 * with the first reply the client reads. */
static const char *const tls_or_handshake_phase[] = { "tls: ", "handshake: ", NULL };

/* A server that rejects our client certificate. Under TLS 1.3 the client
 * finishes its half of the handshake first; the server then drops the
 * session (qemu-nbd without an alert, nbdkit with one or without,
 * depending on timing), so the client sees end-of-file or EPIPE with the
 * first option it sends or reads over TLS. docs/errors.md wants TLSFailed
 * (-ECONNABORTED) for a failed certificate verification either way. */
static void expect_client_cert_rejected(const TestServer *s, const Client *c) {
        Result res;

        run_client(&res, s, c);
        check_fail(&res, s, -ECONNABORTED, tls_or_handshake_phase);
}

static const NbdExportEntry *find_export(const Result *res, const char *name) {
        for (size_t i = 0; i < res->hs.n_exports; i++)
                if (g_str_equal(res->hs.exports[i].name, name))
                        return &res->hs.exports[i];
        return NULL;
}

static void assert_list(const TestServer *s, const Client *c, const char *const names[],
                        const char *const descriptions[], size_t n) {
        Client l = *c;
        Result res;

        l.goal = HANDSHAKE_LIST;
        expect_ok(&res, s, &l);
        g_assert_cmpuint(res.hs.n_exports, ==, n);
        for (size_t i = 0; i < n; i++) {
                const NbdExportEntry *e = find_export(&res, names[i]);

                if (!e)
                        g_error("%s: export \"%s\" missing from the list", s->name, names[i]);
                g_assert_cmpstr(e->description, ==, descriptions[i]);
        }
        result_done(&res);
}

/* ---- servers, started on first use and stopped at the end ---- */

static TestServer *nbdkit_plain, *nbdkit_default, *nbdkit_ro, *nbdkit_x509, *nbdkit_x509_verify, *nbdkit_psk;
static TestServer *nbd_server;
static TestServer *qemu_plain, *qemu_ro, *qemu_x509, *qemu_x509_verify, *qemu_psk;
static char *image_dir, *image_16m, *image_8m;

/* nbdkit's memory plugin behind two filters: exportname gives it a list
 * of exports with descriptions (and rejects others), blocksize-policy makes
 * it advertise block sizes. */
#define NBDKIT_MULTI_EXPORT                                                     \
        "--filter=exportname", "--filter=blocksize-policy",                     \
        "memory", "size=64M",                                                   \
        "exportname-list=explicit", "exportname-strict=true",                   \
        "exportname=alpha", "exportname=beta", "default-export=alpha",          \
        "exportdesc=script:echo \"Disk $name\"",                                \
        "blocksize-minimum=512", "blocksize-preferred=4096",                    \
        "blocksize-maximum=1M"

static TestServer *get_nbdkit_plain(void) {
        if (!nbdkit_plain)
                nbdkit_plain = test_nbdkit_start(NBDKIT_MULTI_EXPORT, NULL);
        return nbdkit_plain;
}

static TestServer *get_nbdkit_x509(void) {
        if (!nbdkit_x509) {
                char *opt = g_strconcat("--tls-certificates=", pki->server_dir, NULL);

                nbdkit_x509 = test_nbdkit_start("--tls=require", opt, NBDKIT_MULTI_EXPORT, NULL);
                g_free(opt);
        }
        return nbdkit_x509;
}

static TestServer *get_nbdkit_x509_verify(void) {
        if (!nbdkit_x509_verify) {
                char *opt = g_strconcat("--tls-certificates=", pki->server_dir, NULL);

                nbdkit_x509_verify = test_nbdkit_start("--tls=require", opt, "--tls-verify-peer",
                                                       "memory", "size=1M", NULL);
                g_free(opt);
        }
        return nbdkit_x509_verify;
}

static TestServer *get_nbdkit_psk(void) {
        if (!nbdkit_psk) {
                char *opt = g_strconcat("--tls-psk=", pki->psk_file, NULL);

                nbdkit_psk = test_nbdkit_start("--tls=require", opt, "memory", "size=2M", NULL);
                g_free(opt);
        }
        return nbdkit_psk;
}

static void make_images(void) {
        if (image_dir)
                return;
        image_dir = test_scratch_subdir("images");
        image_16m = test_make_image(image_dir, "first.img", 16 * MiB);
        image_8m = test_make_image(image_dir, "second.img", 8 * MiB);
}

static TestServer *get_nbd_server(void) {
        if (!nbd_server) {
                char *sections;

                make_images();
                sections = g_strdup_printf("[first]\n"
                                           "exportname = %s\n"
                                           "\n"
                                           "[second]\n"
                                           "exportname = %s\n"
                                           "readonly = true\n",
                                           image_16m, image_8m);
                nbd_server = test_nbd_server_start(sections);
                g_free(sections);
        }
        return nbd_server;
}

static TestServer *get_qemu_plain(void) {
        if (!qemu_plain) {
                make_images();
                qemu_plain = test_qemu_nbd_start(image_16m, "--export-name=qdisk", "--description=QEMU disk", NULL);
        }
        return qemu_plain;
}

static TestServer *get_qemu_x509(bool verify_peer) {
        TestServer **s = verify_peer ? &qemu_x509_verify : &qemu_x509;

        if (!*s) {
                char *object = g_strdup_printf("tls-creds-x509,id=tls0,endpoint=server,dir=%s,verify-peer=%s",
                                               pki->server_dir, verify_peer ? "on" : "off");

                make_images();
                *s = test_qemu_nbd_start(image_16m, "--export-name=qdisk", "--object", object,
                                         "--tls-creds=tls0", NULL);
                g_free(object);
        }
        return *s;
}

static TestServer *get_qemu_psk(void) {
        if (!qemu_psk) {
                char *object = g_strdup_printf("tls-creds-psk,id=tls0,endpoint=server,dir=%s", pki->psk_dir);

                make_images();
                qemu_psk = test_qemu_nbd_start(image_8m, "--export-name=qdisk", "--object", object,
                                               "--tls-creds=tls0", NULL);
                g_free(object);
        }
        return qemu_psk;
}

static void stop_servers(void) {
        g_clear_pointer(&nbdkit_plain, test_server_stop);
        g_clear_pointer(&nbdkit_default, test_server_stop);
        g_clear_pointer(&nbdkit_ro, test_server_stop);
        g_clear_pointer(&nbdkit_x509, test_server_stop);
        g_clear_pointer(&nbdkit_x509_verify, test_server_stop);
        g_clear_pointer(&nbdkit_psk, test_server_stop);
        g_clear_pointer(&nbd_server, test_server_stop);
        g_clear_pointer(&qemu_plain, test_server_stop);
        g_clear_pointer(&qemu_ro, test_server_stop);
        g_clear_pointer(&qemu_x509, test_server_stop);
        g_clear_pointer(&qemu_x509_verify, test_server_stop);
        g_clear_pointer(&qemu_psk, test_server_stop);
}

/* ---- nbdkit ---- */

static void test_nbdkit_list(void) {
        static const char *const names[] = { "alpha", "beta" };
        static const char *const descriptions[] = { "Disk alpha", "Disk beta" };

        assert_list(get_nbdkit_plain(), &(Client) { .tls = TLS_MODE_OFF }, names, descriptions, 2);
}

static void assert_nbdkit_alpha(const Result *res) {
        g_assert_cmpuint(res->hs.info.size, ==, 64 * MiB);
        g_assert_true(res->hs.info.flags & NBD_FLAG_HAS_FLAGS);
        g_assert_false(res->hs.info.flags & NBD_FLAG_READ_ONLY);
        g_assert_true(res->hs.info.flags & NBD_FLAG_SEND_FLUSH);
        g_assert_true(res->hs.info.flags & NBD_FLAG_SEND_TRIM);
        g_assert_true(res->hs.info.flags & NBD_FLAG_CAN_MULTI_CONN);
        g_assert_cmpuint(res->hs.info.block_min, ==, 512);
        g_assert_cmpuint(res->hs.info.block_preferred, ==, 4096);
        g_assert_cmpuint(res->hs.info.block_max, ==, 1 * MiB);
        g_assert_true(res->hs.info.fixed_newstyle);
        g_assert_false(res->hs.info.oldstyle);
}

static void test_nbdkit_go(void) {
        Result res;

        expect_ok(&res, get_nbdkit_plain(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "alpha" });
        assert_nbdkit_alpha(&res);
        g_assert_false(res.hs.info.tls);
        g_assert_true(conn_fd(res.hs.conn) >= 0 || res.hs.conn == NULL);
        result_done(&res);
}

static void test_nbdkit_info(void) {
        Result res;

        expect_ok(&res, get_nbdkit_plain(), &(Client) { .goal = HANDSHAKE_INFO, .export_name = "beta" });
        g_assert_cmpuint(res.hs.info.size, ==, 64 * MiB);
        g_assert_cmpstr(res.hs.info.description, ==, "Disk beta");
        g_assert_cmpuint(res.hs.info.block_preferred, ==, 4096);
        result_done(&res);
}

static void test_nbdkit_default_export(void) {
        Result res;

        /* exportname-strict=true refuses "" even with default-export= set,
         * so the strict server has no default export... */
        expect_fail(get_nbdkit_plain(), &(Client) { .goal = HANDSHAKE_INFO, .export_name = "" },
                    -ENOENT, handshake_phase);

        /* ...while a lenient one maps "" to its default and names it when
         * asked (NBD_INFO_NAME). */
        if (!nbdkit_default)
                nbdkit_default = test_nbdkit_start("--filter=exportname", "memory", "size=3M",
                                                   "default-export=alpha", "exportname=alpha",
                                                   "exportdesc=fixed:The default", NULL);
        expect_ok(&res, nbdkit_default, &(Client) { .goal = HANDSHAKE_INFO, .export_name = "" });
        g_assert_cmpuint(res.hs.info.size, ==, 3 * MiB);
        g_assert_cmpstr(res.hs.info.name, ==, "alpha");
        g_assert_cmpstr(res.hs.info.description, ==, "The default");
        result_done(&res);
}

static void test_nbdkit_missing_export(void) {
        expect_fail(get_nbdkit_plain(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "gamma" },
                    -ENOENT, handshake_phase);
        expect_fail(get_nbdkit_plain(), &(Client) { .goal = HANDSHAKE_INFO, .export_name = "gamma" },
                    -ENOENT, handshake_phase);
}

static void test_nbdkit_tls_to_plain_server(void) {
        Result res;

        /* tls=on takes plaintext when the server has no TLS... */
        expect_ok(&res, get_nbdkit_plain(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "alpha",
                                                        .tls = TLS_MODE_ON, .ca = pki->ca_cert });
        g_assert_false(res.hs.info.tls);
        result_done(&res);

        /* ...tls=require never does. */
        expect_fail(get_nbdkit_plain(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "alpha",
                                                    .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert },
                    -EPROTONOSUPPORT, tls_or_handshake_phase);
}

static void test_nbdkit_read_only(void) {
        Result res;

        if (!nbdkit_ro)
                nbdkit_ro = test_nbdkit_start("--readonly", "memory", "size=1M", NULL);
        expect_ok(&res, nbdkit_ro, &(Client) { .goal = HANDSHAKE_GO });
        g_assert_cmpuint(res.hs.info.size, ==, 1 * MiB);
        g_assert_true(res.hs.info.flags & NBD_FLAG_READ_ONLY);
        result_done(&res);
}

static void test_nbdkit_x509(void) {
        static const char *const names[] = { "alpha", "beta" };
        static const char *const descriptions[] = { "Disk alpha", "Disk beta" };
        TestServer *s = get_nbdkit_x509();
        Result res;

        expect_ok(&res, s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "alpha",
                                       .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert });
        g_assert_true(res.hs.info.tls);
        g_assert_true(conn_is_tls(res.hs.conn));
        assert_nbdkit_alpha(&res);
        result_done(&res);

        /* The certificate names localhost too; tls=on upgrades as well. */
        expect_ok(&res, s, &(Client) { .goal = HANDSHAKE_INFO, .export_name = "beta",
                                       .tls = TLS_MODE_ON, .ca = pki->ca_cert, .hostname = "localhost" });
        g_assert_true(res.hs.info.tls);
        g_assert_cmpstr(res.hs.info.description, ==, "Disk beta");
        result_done(&res);

        assert_list(s, &(Client) { .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert }, names, descriptions, 2);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "gamma",
                                   .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert },
                    -ENOENT, handshake_phase);
}

static void test_nbdkit_x509_required(void) {
        TestServer *s = get_nbdkit_x509();

        /* The server answers NBD_REP_ERR_TLS_REQD to everything. */
        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "alpha" }, -EPROTONOSUPPORT, handshake_phase);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_INFO, .export_name = "alpha" }, -EPROTONOSUPPORT, handshake_phase);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_LIST }, -EPROTONOSUPPORT, handshake_phase);
}

static void test_nbdkit_x509_wrong_ca(void) {
        expect_fail(get_nbdkit_x509(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "alpha",
                                                   .tls = TLS_MODE_REQUIRE, .ca = pki->other_ca_cert },
                    -ECONNABORTED, tls_phase);
}

static void test_nbdkit_x509_wrong_hostname(void) {
        expect_fail(get_nbdkit_x509(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "alpha",
                                                   .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert,
                                                   .hostname = "wrong.example" },
                    -ECONNABORTED, tls_phase);
}

static void test_nbdkit_x509_client_cert(void) {
        TestServer *s = get_nbdkit_x509_verify();
        Result res;

        expect_ok(&res, s, &(Client) { .goal = HANDSHAKE_GO, .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert,
                                       .cert = pki->client_cert, .key = pki->client_key });
        g_assert_true(res.hs.info.tls);
        g_assert_cmpuint(res.hs.info.size, ==, 1 * MiB);
        result_done(&res);

        expect_client_cert_rejected(s, &(Client) { .goal = HANDSHAKE_GO, .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert });
        expect_client_cert_rejected(s, &(Client) { .goal = HANDSHAKE_GO, .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert,
                                                   .cert = pki->other_client_cert, .key = pki->other_client_key });
}

static void test_nbdkit_psk(void) {
        TestServer *s = get_nbdkit_psk();
        Result res;

        expect_ok(&res, s, &(Client) { .goal = HANDSHAKE_GO, .tls = TLS_MODE_REQUIRE, .psk = pki->psk_file });
        g_assert_true(res.hs.info.tls);
        g_assert_cmpuint(res.hs.info.size, ==, 2 * MiB);
        result_done(&res);

        expect_ok(&res, s, &(Client) { .goal = HANDSHAKE_INFO, .tls = TLS_MODE_REQUIRE, .psk = pki->psk_file,
                                       .psk_username = pki->psk_username });
        g_assert_true(res.hs.info.tls);
        result_done(&res);

        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO }, -EPROTONOSUPPORT, handshake_phase);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .tls = TLS_MODE_REQUIRE, .psk = pki->wrong_psk_file },
                    -ECONNABORTED, tls_phase);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .tls = TLS_MODE_REQUIRE, .psk = pki->unknown_user_psk_file },
                    -ECONNABORTED, tls_phase);
}

/* ---- nbd-server ---- */

static void test_nbd_server_list(void) {
        static const char *const names[] = { "first", "second" };
        /* nbd-server sends no descriptions. */
        static const char *const descriptions[] = { "", "" };

        assert_list(get_nbd_server(), &(Client) { .tls = TLS_MODE_OFF }, names, descriptions, 2);
}

static void test_nbd_server_go(void) {
        Result res;

        expect_ok(&res, get_nbd_server(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "first" });
        g_assert_cmpuint(res.hs.info.size, ==, 16 * MiB);
        g_assert_true(res.hs.info.flags & NBD_FLAG_HAS_FLAGS);
        g_assert_false(res.hs.info.flags & NBD_FLAG_READ_ONLY);
        g_assert_true(res.hs.info.fixed_newstyle);
        result_done(&res);

        expect_ok(&res, get_nbd_server(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "second" });
        g_assert_cmpuint(res.hs.info.size, ==, 8 * MiB);
        g_assert_true(res.hs.info.flags & NBD_FLAG_READ_ONLY);
        result_done(&res);
}

static void test_nbd_server_info(void) {
        Result res;

        expect_ok(&res, get_nbd_server(), &(Client) { .goal = HANDSHAKE_INFO, .export_name = "second" });
        g_assert_true(res.hs.info.flags & NBD_FLAG_READ_ONLY);
        /* nbd-server 3.24 answers NBD_OPT_INFO before it opens the file and
         * reports size 0 there; NBD_OPT_GO has the real size. */
        if (res.hs.info.size != 8 * MiB) {
                g_assert_cmpuint(res.hs.info.size, ==, 0);
                g_test_message("nbd-server reports size 0 for NBD_OPT_INFO (known nbd-server behaviour)");
        }
        result_done(&res);
}

static void test_nbd_server_missing_export(void) {
        expect_fail(get_nbd_server(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "third" },
                    -ENOENT, handshake_phase);
        expect_fail(get_nbd_server(), &(Client) { .goal = HANDSHAKE_INFO, .export_name = "third" },
                    -ENOENT, handshake_phase);
}

static void test_nbd_server_tls_require(void) {
        expect_fail(get_nbd_server(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "first",
                                                  .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert },
                    -EPROTONOSUPPORT, tls_or_handshake_phase);
}

/* ---- qemu-nbd ---- */

static void assert_qemu_disk(const Result *res, uint64_t size) {
        g_assert_cmpuint(res->hs.info.size, ==, size);
        g_assert_true(res->hs.info.flags & NBD_FLAG_HAS_FLAGS);
        g_assert_true(res->hs.info.flags & NBD_FLAG_SEND_FLUSH);
        /* qemu advertises a minimum of 1 (or 512 with O_DIRECT), 4 KiB
         * preferred and a 32 MiB maximum. */
        g_assert_cmpuint(res->hs.info.block_min, >=, 1);
        g_assert_cmpuint(res->hs.info.block_min, <=, 512);
        g_assert_cmpuint(res->hs.info.block_preferred, ==, 4096);
        g_assert_cmpuint(res->hs.info.block_max, ==, 32 * MiB);
}

static void test_qemu_list(void) {
        static const char *const names[] = { "qdisk" };
        static const char *const descriptions[] = { "QEMU disk" };

        assert_list(get_qemu_plain(), &(Client) { .tls = TLS_MODE_OFF }, names, descriptions, 1);
}

static void test_qemu_go(void) {
        Result res;

        expect_ok(&res, get_qemu_plain(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk" });
        assert_qemu_disk(&res, 16 * MiB);
        g_assert_false(res.hs.info.flags & NBD_FLAG_READ_ONLY);
        g_assert_false(res.hs.info.tls);
        result_done(&res);

        expect_ok(&res, get_qemu_plain(), &(Client) { .goal = HANDSHAKE_INFO, .export_name = "qdisk" });
        assert_qemu_disk(&res, 16 * MiB);
        g_assert_cmpstr(res.hs.info.description, ==, "QEMU disk");
        result_done(&res);
}

static void test_qemu_missing_export(void) {
        expect_fail(get_qemu_plain(), &(Client) { .goal = HANDSHAKE_GO, .export_name = "nope" },
                    -ENOENT, handshake_phase);
        /* With --export-name there is no default export either. */
        expect_fail(get_qemu_plain(), &(Client) { .goal = HANDSHAKE_INFO, .export_name = "" },
                    -ENOENT, handshake_phase);
}

static void test_qemu_read_only(void) {
        Result res;

        if (!qemu_ro) {
                make_images();
                qemu_ro = test_qemu_nbd_start(image_8m, "--read-only", "--export-name=ro", NULL);
        }
        expect_ok(&res, qemu_ro, &(Client) { .goal = HANDSHAKE_GO, .export_name = "ro" });
        assert_qemu_disk(&res, 8 * MiB);
        g_assert_true(res.hs.info.flags & NBD_FLAG_READ_ONLY);
        result_done(&res);
}

static void test_qemu_x509(void) {
        TestServer *s = get_qemu_x509(false);
        Result res;

        expect_ok(&res, s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk",
                                       .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert });
        g_assert_true(res.hs.info.tls);
        assert_qemu_disk(&res, 16 * MiB);
        result_done(&res);

        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk" }, -EPROTONOSUPPORT, handshake_phase);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_LIST }, -EPROTONOSUPPORT, handshake_phase);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk",
                                   .tls = TLS_MODE_REQUIRE, .ca = pki->other_ca_cert },
                    -ECONNABORTED, tls_phase);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk",
                                   .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert, .hostname = "wrong.example" },
                    -ECONNABORTED, tls_phase);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "nope",
                                   .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert },
                    -ENOENT, handshake_phase);
}

static void test_qemu_x509_client_cert(void) {
        TestServer *s = get_qemu_x509(true);
        Result res;

        expect_ok(&res, s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk", .tls = TLS_MODE_REQUIRE,
                                       .ca = pki->ca_cert, .cert = pki->client_cert, .key = pki->client_key });
        g_assert_true(res.hs.info.tls);
        result_done(&res);

        expect_client_cert_rejected(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk",
                                                   .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert });
        expect_client_cert_rejected(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk",
                                                   .tls = TLS_MODE_REQUIRE, .ca = pki->ca_cert,
                                                   .cert = pki->other_client_cert, .key = pki->other_client_key });
}

static void test_qemu_psk(void) {
        TestServer *s = get_qemu_psk();
        Result res;

        expect_ok(&res, s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk",
                                       .tls = TLS_MODE_REQUIRE, .psk = pki->psk_file });
        g_assert_true(res.hs.info.tls);
        assert_qemu_disk(&res, 8 * MiB);
        result_done(&res);

        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk" }, -EPROTONOSUPPORT, handshake_phase);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk",
                                   .tls = TLS_MODE_REQUIRE, .psk = pki->wrong_psk_file },
                    -ECONNABORTED, tls_phase);
        expect_fail(s, &(Client) { .goal = HANDSHAKE_GO, .export_name = "qdisk",
                                   .tls = TLS_MODE_REQUIRE, .psk = pki->unknown_user_psk_file },
                    -ECONNABORTED, tls_phase);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);

        test_log_server_versions();
        pki = test_pki_new();

        g_test_add_func("/interop/nbdkit/list", test_nbdkit_list);
        g_test_add_func("/interop/nbdkit/go", test_nbdkit_go);
        g_test_add_func("/interop/nbdkit/info", test_nbdkit_info);
        g_test_add_func("/interop/nbdkit/default-export", test_nbdkit_default_export);
        g_test_add_func("/interop/nbdkit/missing-export", test_nbdkit_missing_export);
        g_test_add_func("/interop/nbdkit/tls-to-plain-server", test_nbdkit_tls_to_plain_server);
        g_test_add_func("/interop/nbdkit/read-only", test_nbdkit_read_only);
        g_test_add_func("/interop/nbdkit/x509", test_nbdkit_x509);
        g_test_add_func("/interop/nbdkit/x509-required", test_nbdkit_x509_required);
        g_test_add_func("/interop/nbdkit/x509-wrong-ca", test_nbdkit_x509_wrong_ca);
        g_test_add_func("/interop/nbdkit/x509-wrong-hostname", test_nbdkit_x509_wrong_hostname);
        g_test_add_func("/interop/nbdkit/x509-client-cert", test_nbdkit_x509_client_cert);
        g_test_add_func("/interop/nbdkit/psk", test_nbdkit_psk);
        g_test_add_func("/interop/nbd-server/list", test_nbd_server_list);
        g_test_add_func("/interop/nbd-server/go", test_nbd_server_go);
        g_test_add_func("/interop/nbd-server/info", test_nbd_server_info);
        g_test_add_func("/interop/nbd-server/missing-export", test_nbd_server_missing_export);
        g_test_add_func("/interop/nbd-server/tls-require", test_nbd_server_tls_require);
        g_test_add_func("/interop/qemu-nbd/list", test_qemu_list);
        g_test_add_func("/interop/qemu-nbd/go", test_qemu_go);
        g_test_add_func("/interop/qemu-nbd/missing-export", test_qemu_missing_export);
        g_test_add_func("/interop/qemu-nbd/read-only", test_qemu_read_only);
        g_test_add_func("/interop/qemu-nbd/x509", test_qemu_x509);
        g_test_add_func("/interop/qemu-nbd/x509-client-cert", test_qemu_x509_client_cert);
        g_test_add_func("/interop/qemu-nbd/psk", test_qemu_psk);

        r = g_test_run();

        stop_servers();
        test_pki_free(pki);
        g_free(image_16m);
        g_free(image_8m);
        g_free(image_dir);
        test_servers_cleanup();
        return r;
}
