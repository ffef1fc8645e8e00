/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test-time certificates: ECDSA P-256 keys (fast to make) and X.509
 * certificates signed by a throw-away CA. */

#include "tls-certs.h"

#include <arpa/inet.h>
#include <glib.h>
#include <string.h>
#include <time.h>

#define DAY (24 * 60 * 60)

static void check(int r, const char *what) {
        if (r < 0)
                g_error("%s: %s", what, gnutls_strerror(r));
}

static void make_key(gnutls_x509_privkey_t *ret) {
        check(gnutls_x509_privkey_init(ret), "privkey_init");
        check(gnutls_x509_privkey_generate(*ret, GNUTLS_PK_ECDSA,
                                           GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), "privkey_generate");
}

static void set_common(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *cn, bool expired) {
        static unsigned serial_counter = 1;
        unsigned char serial[4];
        time_t now = time(NULL);

        serial_counter++;
        memcpy(serial, &serial_counter, sizeof(serial));
        check(gnutls_x509_crt_set_version(crt, 3), "set_version");
        check(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), "set_serial");
        if (expired) {
                check(gnutls_x509_crt_set_activation_time(crt, now - 30 * DAY), "set_activation");
                check(gnutls_x509_crt_set_expiration_time(crt, now - 1 * DAY), "set_expiration");
        } else {
                check(gnutls_x509_crt_set_activation_time(crt, now - DAY), "set_activation");
                check(gnutls_x509_crt_set_expiration_time(crt, now + 30 * DAY), "set_expiration");
        }
        check(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned) strlen(cn)), "set_dn");
        check(gnutls_x509_crt_set_key(crt, key), "set_key");
}

void test_cert_make_ca(TestCert *ret, const char *cn) {
        make_key(&ret->key);
        check(gnutls_x509_crt_init(&ret->crt), "crt_init");
        set_common(ret->crt, ret->key, cn, false);
        check(gnutls_x509_crt_set_basic_constraints(ret->crt, 1, -1), "set_basic_constraints");
        check(gnutls_x509_crt_set_key_usage(ret->crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN), "set_key_usage");
        check(gnutls_x509_crt_sign2(ret->crt, ret->crt, ret->key, GNUTLS_DIG_SHA256, 0), "sign");
}

void test_cert_make_leaf(TestCert *ret, const TestCert *ca, const char *dns, const char *ip, bool client, bool expired) {
        make_key(&ret->key);
        check(gnutls_x509_crt_init(&ret->crt), "crt_init");
        set_common(ret->crt, ret->key, dns ? dns : "nbdlink test", expired);
        check(gnutls_x509_crt_set_basic_constraints(ret->crt, 0, -1), "set_basic_constraints");
        check(gnutls_x509_crt_set_key_usage(ret->crt, GNUTLS_KEY_DIGITAL_SIGNATURE), "set_key_usage");
        check(gnutls_x509_crt_set_key_purpose_oid(ret->crt,
                                                  client ? GNUTLS_KP_TLS_WWW_CLIENT : GNUTLS_KP_TLS_WWW_SERVER, 0), "set_purpose");
        if (dns)
                check(gnutls_x509_crt_set_subject_alt_name(ret->crt, GNUTLS_SAN_DNSNAME, dns, (unsigned) strlen(dns), GNUTLS_FSAN_APPEND), "san dns");
        if (ip) {
                unsigned char a[4];
                g_assert_cmpint(inet_pton(AF_INET, ip, a), ==, 1);
                check(gnutls_x509_crt_set_subject_alt_name(ret->crt, GNUTLS_SAN_IPADDRESS, a, sizeof(a), GNUTLS_FSAN_APPEND), "san ip");
        }
        check(gnutls_x509_crt_sign2(ret->crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0), "sign");
}

char *test_cert_pem(const TestCert *c, size_t *ret_size) {
        gnutls_datum_t d;
        char *s;

        check(gnutls_x509_crt_export2(c->crt, GNUTLS_X509_FMT_PEM, &d), "crt_export");
        s = g_strndup((const char *) d.data, d.size);
        *ret_size = d.size;
        gnutls_free(d.data);
        return s;
}

char *test_cert_key_pem(const TestCert *c, size_t *ret_size) {
        gnutls_datum_t d;
        char *s;

        check(gnutls_x509_privkey_export2(c->key, GNUTLS_X509_FMT_PEM, &d), "key_export");
        s = g_strndup((const char *) d.data, d.size);
        *ret_size = d.size;
        gnutls_free(d.data);
        return s;
}

gnutls_certificate_credentials_t test_cert_server_credentials(const TestCert *leaf, const TestCert *ca) {
        gnutls_certificate_credentials_t cred;
        gnutls_x509_crt_t chain[2] = { leaf->crt, ca->crt };

        check(gnutls_certificate_allocate_credentials(&cred), "allocate_credentials");
        check(gnutls_certificate_set_x509_key(cred, chain, 2, leaf->key), "set_x509_key");
        return cred;
}

void test_cert_done(TestCert *c) {
        if (c->crt)
                gnutls_x509_crt_deinit(c->crt);
        if (c->key)
                gnutls_x509_privkey_deinit(c->key);
        c->crt = NULL;
        c->key = NULL;
}
