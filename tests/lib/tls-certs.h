/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Certificates made at test time with the GnuTLS API: a CA, and server or
 * client certificates it signs, for the TLS tests (unit/test-tls,
 * unit/test-relay, vm/test-vm-cli). Nothing is written to disk. */
#pragma once

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>

typedef struct TestCert {
        gnutls_x509_crt_t crt;
        gnutls_x509_privkey_t key;
} TestCert;

/* A self-signed CA named cn. */
void test_cert_make_ca(TestCert *ret, const char *cn);
/* A leaf signed by ca: for a server with DNS name dns (may be NULL) and
 * IP address ip (may be NULL), or a client; expired puts its validity in
 * the past. */
void test_cert_make_leaf(TestCert *ret, const TestCert *ca, const char *dns, const char *ip, bool client, bool expired);
/* PEM text of the certificate / key, g_free() it. */
char *test_cert_pem(const TestCert *c, size_t *ret_size);
char *test_cert_key_pem(const TestCert *c, size_t *ret_size);
/* Server credentials with the leaf (and its CA as chain). */
gnutls_certificate_credentials_t test_cert_server_credentials(const TestCert *leaf, const TestCert *ca);
void test_cert_done(TestCert *c);
