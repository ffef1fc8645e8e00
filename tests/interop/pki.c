/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Generates the test PKI with certtool and psktool (ECDSA keys: quick to
 * make, and accepted by nbdkit, qemu-nbd and nbd-server alike). */

#include "pki.h"

#include <glib/gstdio.h>

#include "servers.h"

/* Validity in days: the tests run now; a short life keeps stray files
 * harmless. */
#define PKI_DAYS "2"

static void run(const char *const *argv) {
        char *out = NULL, *err = NULL;
        GError *error = NULL;
        int status;

        if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                          &out, &err, &status, &error))
                g_error("cannot run %s (tools/install-deps installs gnutls-bin): %s", argv[0], error->message);
        if (!g_spawn_check_wait_status(status, &error)) {
                char *cmd = g_strjoinv(" ", (char **) argv);

                g_error("%s failed: %s\n%s%s", cmd, error->message, out, err);
        }
        g_free(out);
        g_free(err);
}

static char *make_key(const char *dir, const char *name) {
        char *path = g_build_filename(dir, name, NULL);
        const char *argv[] = {
                "certtool", "--generate-privkey", "--key-type=ecdsa",
                "--outfile", path, NULL,
        };

        run(argv);
        return path;
}

static char *make_template(const char *dir, const char *name, const char *body) {
        char *contents = g_strconcat(body, "expiration_days = " PKI_DAYS "\n", NULL);
        char *path = test_write_file(dir, name, contents);

        g_free(contents);
        return path;
}

static char *make_ca(const char *dir, const char *prefix, const char *cn) {
        char *key_name = g_strconcat(prefix, "-key.pem", NULL);
        char *cert_path, *key, *tmpl, *body;

        key = make_key(dir, key_name);
        body = g_strdup_printf("cn = \"%s\"\nca\ncert_signing_key\ncrl_signing_key\n", cn);
        tmpl = make_template(dir, "ca.info", body);
        cert_path = g_strconcat(dir, "/", prefix, "-cert.pem", NULL);

        const char *argv[] = {
                "certtool", "--generate-self-signed", "--load-privkey", key,
                "--template", tmpl, "--outfile", cert_path, NULL,
        };
        run(argv);

        g_free(body);
        g_free(tmpl);
        g_free(key);
        g_free(key_name);
        return cert_path;
}

/* Signs a new certificate for key_path's owner with the CA in
 * ca_cert/ca_key. */
static void make_cert(const char *dir, const char *ca_cert, const char *ca_key,
                      const char *key, const char *cert, const char *body) {
        char *tmpl = make_template(dir, "cert.info", body);
        const char *argv[] = {
                "certtool", "--generate-certificate", "--load-privkey", key,
                "--load-ca-certificate", ca_cert, "--load-ca-privkey", ca_key,
                "--template", tmpl, "--outfile", cert, NULL,
        };

        run(argv);
        g_free(tmpl);
}

static const char server_template[] =
        "cn = \"localhost\"\n"
        "organization = \"nbdlink tests\"\n"
        "dns_name = \"localhost\"\n"
        "ip_address = \"127.0.0.1\"\n"
        "ip_address = \"::1\"\n"
        "tls_www_server\n"
        "signing_key\n"
        "encryption_key\n";

static const char client_template[] =
        "cn = \"nbdlink test client\"\n"
        "tls_www_client\n"
        "signing_key\n"
        "encryption_key\n";

static char *make_psk(const char *dir, const char *name, const char *user) {
        char *path = g_build_filename(dir, name, NULL);
        const char *argv[] = { "psktool", "-u", user, "-p", path, NULL };

        run(argv);
        return path;
}

char *test_pki_make_expired_server(TestPki *p) {
        char *dir = g_build_filename(p->dir, "expired", NULL);
        char *ca_key = g_build_filename(p->dir, "ca-key.pem", NULL);
        char *key, *cert, *tmpl, *contents = NULL, *ca_copy;
        GError *error = NULL;

        g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
        key = make_key(dir, "server-key.pem");
        cert = g_build_filename(dir, "server-cert.pem", NULL);
        /* Dates instead of expiration_days: valid for a month, years ago. */
        tmpl = test_write_file(p->dir, "expired.info",
                               "cn = \"localhost\"\n"
                               "dns_name = \"localhost\"\n"
                               "ip_address = \"127.0.0.1\"\n"
                               "tls_www_server\n"
                               "signing_key\n"
                               "encryption_key\n"
                               "activation_date = \"2020-01-01 00:00:00 UTC\"\n"
                               "expiration_date = \"2020-02-01 00:00:00 UTC\"\n");
        const char *argv[] = {
                "certtool", "--generate-certificate", "--load-privkey", key,
                "--load-ca-certificate", p->ca_cert, "--load-ca-privkey", ca_key,
                "--template", tmpl, "--outfile", cert, NULL,
        };
        run(argv);

        g_file_get_contents(p->ca_cert, &contents, NULL, &error);
        g_assert_no_error(error);
        ca_copy = test_write_file(dir, "ca-cert.pem", contents);

        g_free(ca_copy);
        g_free(contents);
        g_free(tmpl);
        g_free(cert);
        g_free(key);
        g_free(ca_key);
        return dir;
}

TestPki *test_pki_new(void) {
        TestPki *p = g_new0(TestPki, 1);
        char *ca_key, *other_ca_key, *server_key, *server_cert, *ca_copy, *contents = NULL;
        gsize len;
        GError *error = NULL;

        p->dir = test_scratch_subdir("pki");
        p->server_dir = g_build_filename(p->dir, "server", NULL);
        p->psk_dir = g_build_filename(p->dir, "psk", NULL);
        g_assert_cmpint(g_mkdir(p->server_dir, 0700), ==, 0);
        g_assert_cmpint(g_mkdir(p->psk_dir, 0700), ==, 0);

        p->ca_cert = make_ca(p->dir, "ca", "nbdlink test CA");
        ca_key = g_build_filename(p->dir, "ca-key.pem", NULL);
        p->other_ca_cert = make_ca(p->dir, "other-ca", "nbdlink unrelated CA");
        other_ca_key = g_build_filename(p->dir, "other-ca-key.pem", NULL);

        server_key = make_key(p->server_dir, "server-key.pem");
        server_cert = g_build_filename(p->server_dir, "server-cert.pem", NULL);
        make_cert(p->dir, p->ca_cert, ca_key, server_key, server_cert, server_template);

        /* The servers verify client certificates against this copy. */
        g_file_get_contents(p->ca_cert, &contents, &len, &error);
        g_assert_no_error(error);
        ca_copy = test_write_file(p->server_dir, "ca-cert.pem", contents);

        p->client_key = make_key(p->dir, "client-key.pem");
        p->client_cert = g_build_filename(p->dir, "client-cert.pem", NULL);
        make_cert(p->dir, p->ca_cert, ca_key, p->client_key, p->client_cert, client_template);

        p->other_client_key = make_key(p->dir, "other-client-key.pem");
        p->other_client_cert = g_build_filename(p->dir, "other-client-cert.pem", NULL);
        make_cert(p->dir, p->other_ca_cert, other_ca_key, p->other_client_key, p->other_client_cert, client_template);

        p->psk_username = "nbdlink";
        p->psk_file = make_psk(p->psk_dir, "keys.psk", p->psk_username);
        p->wrong_psk_file = make_psk(p->dir, "wrong.psk", p->psk_username);
        p->unknown_user_psk_file = make_psk(p->dir, "stranger.psk", "stranger");

        g_free(contents);
        g_free(ca_copy);
        g_free(server_cert);
        g_free(server_key);
        g_free(other_ca_key);
        g_free(ca_key);
        return p;
}

void test_pki_free(TestPki *p) {
        if (!p)
                return;
        g_free(p->dir);
        g_free(p->server_dir);
        g_free(p->ca_cert);
        g_free(p->client_cert);
        g_free(p->client_key);
        g_free(p->other_ca_cert);
        g_free(p->other_client_cert);
        g_free(p->other_client_key);
        g_free(p->psk_dir);
        g_free(p->psk_file);
        g_free(p->wrong_psk_file);
        g_free(p->unknown_user_psk_file);
        g_free(p);
}
