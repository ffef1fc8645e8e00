/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Throw-away credentials for TLS tests, made with GnuTLS's certtool and
 * psktool: a CA, a server certificate for 127.0.0.1/::1/localhost, client
 * certificates, a second unrelated CA, and PSK files. */
#pragma once

#include <glib.h>

typedef struct TestPki {
        char *dir;
        /* ca-cert.pem, server-cert.pem, server-key.pem: the layout both
         * nbdkit --tls-certificates and qemu's tls-creds-x509 dir= read. */
        char *server_dir;
        char *ca_cert;                  /* the CA that signed the server */
        char *client_cert;              /* signed by ca_cert */
        char *client_key;
        char *other_ca_cert;            /* a CA that signed nothing we serve */
        char *other_client_cert;        /* signed by other_ca_cert */
        char *other_client_key;
        /* keys.psk: the layout qemu's tls-creds-psk dir= reads; the same
         * file is what nbdkit --tls-psk= and clients take. */
        char *psk_dir;
        char *psk_file;                 /* one line "psk_username:hexkey" */
        const char *psk_username;
        char *wrong_psk_file;           /* the same user with another key */
        char *unknown_user_psk_file;    /* a user the server does not know */
} TestPki;

/* A server directory like server_dir whose certificate (signed by ca_cert,
 * for the same names) expired long ago. */
char *test_pki_make_expired_server(TestPki *p);

/* Makes everything in a fresh directory below the scratch directory;
 * fails the test if certtool or psktool fail. */
TestPki *test_pki_new(void);
void test_pki_free(TestPki *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestPki, test_pki_free)
