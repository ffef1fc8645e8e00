/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STARTTLS for the handshake: a GnuTLS client session over the Conn's
 * non-blocking socket, bounded by the Conn's deadline, with X.509 (CA bytes,
 * a CA directory or the system trust, optional client certificate) or PSK
 * credentials. Credentials arrive as bytes, never as paths. */

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conn-internal.h"
#include "error-text.h"
#include "gnutls-dl.h"
#include "tls.h"
#include "utf8.h"
#include "util/hex.h"

/* TLS 1.2 at least, as the NBD spec asks; PSK key exchanges added for
 * PSK sessions only. */
#define TLS_PRIORITY_X509 "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_PRIORITY_PSK  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:+ECDHE-PSK:+DHE-PSK:+PSK"

/* A descriptor that is not a regular file (a pipe from the caller) gets
 * this long to deliver its bytes, so a caller cannot stall us forever. */
#define BLOB_READ_TIMEOUT_MS 5000

#define PSK_MAX_KEY_HEX 1024u

int blob_read_fd(Blob *ret, int fd, size_t max_size) {
        struct stat st;
        uint8_t *buf = NULL;
        size_t size = 0, allocated = 0;
        bool regular;
        int r;

        if (!ret || fd < 0)
                return -EINVAL;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        regular = S_ISREG(st.st_mode);

        for (;;) {
                ssize_t k;

                /* Room for one byte past the limit, to tell "exactly
                 * max_size" from "too large", and for a closing NUL. */
                if (size + 1 >= allocated) {
                        size_t n = allocated == 0 ? 4096 : allocated * 2;
                        uint8_t *nbuf;

                        if (n > max_size + 2)
                                n = max_size + 2;
                        if (n <= allocated) {
                                r = -EFBIG;
                                goto fail;
                        }
                        /* Not realloc(): the old copy of a secret must be
                         * wiped, not left behind in freed memory. */
                        nbuf = malloc(n);
                        if (!nbuf) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        if (size > 0)
                                memcpy(nbuf, buf, size);
                        erase_and_free(buf, allocated);
                        buf = nbuf;
                        allocated = n;
                }

                if (!regular) {
                        struct pollfd p = { .fd = fd, .events = POLLIN };

                        r = poll(&p, 1, BLOB_READ_TIMEOUT_MS);
                        if (r < 0 && errno == EINTR)
                                continue;
                        if (r < 0) {
                                r = -errno;
                                goto fail;
                        }
                        if (r == 0) {
                                r = -ETIMEDOUT;
                                goto fail;
                        }
                }

                k = read(fd, buf + size, allocated - 1 - size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
                if (size > max_size) {
                        r = -EFBIG;
                        goto fail;
                }
        }

        if (!buf) {
                buf = calloc(1, 1);
                if (!buf)
                        return -ENOMEM;
                allocated = 1;
        }
        buf[size] = 0;
        *ret = (Blob) { .data = buf, .size = size };
        return 0;

fail:
        erase_and_free(buf, allocated);
        return r;
}

void blob_done(Blob *b) {
        if (!b)
                return;
        if (b->data)
                explicit_bzero(b->data, b->size);
        free(b->data);
        b->data = NULL;
        b->size = 0;
}

static int tls_error_to_errno(ssize_t r) {
        if (r == GNUTLS_E_PREMATURE_TERMINATION)
                return -EPIPE;
        if (r == GNUTLS_E_PUSH_ERROR)
                return -EPIPE;
        return -ECONNABORTED;
}

static ssize_t tls_recv(Conn *c, void *buf, size_t n) {
        for (;;) {
                ssize_t k = sym_gnutls_record_recv(c->session, buf, n);

                if (k >= 0)
                        return k;
                if (k == GNUTLS_E_INTERRUPTED)
                        continue;
                if (k == GNUTLS_E_AGAIN)
                        return -EAGAIN;
                /* A warning alert or a renegotiation request consumed a
                 * record; read on. */
                if (!sym_gnutls_error_is_fatal((int) k))
                        continue;
                return tls_error_to_errno(k);
        }
}

static ssize_t tls_send(Conn *c, const void *buf, size_t n) {
        for (;;) {
                ssize_t k = sym_gnutls_record_send(c->session, buf, n);

                if (k >= 0)
                        return k;
                if (k == GNUTLS_E_INTERRUPTED)
                        continue;
                /* GnuTLS wants the same call repeated after -EAGAIN; the
                 * caller passes the same buffer again, as it expects. */
                if (k == GNUTLS_E_AGAIN)
                        return -EAGAIN;
                return tls_error_to_errno(k);
        }
}

/* Frees the TLS session and credentials. */
static void conn_tls_free(Conn *c) {
        if (c->session) {
                /* One non-blocking attempt at close_notify: polite, but
                 * never worth waiting for. */
                (void) sym_gnutls_bye(c->session, GNUTLS_SHUT_WR);
                sym_gnutls_deinit(c->session);
                c->session = NULL;
        }
        if (c->x509_cred) {
                sym_gnutls_certificate_free_credentials(c->x509_cred);
                c->x509_cred = NULL;
        }
        if (c->psk_cred) {
                sym_gnutls_psk_free_client_credentials(c->psk_cred);
                c->psk_cred = NULL;
        }
}

static const ConnOps tls_ops = {
        .recv = tls_recv,
        .send = tls_send,
};


/* Finds the line for username (or the first line) in a psktool file
 * ("username:hexkey" per line) and installs it into fresh credentials. */
static int psk_load(const Blob *file, const char *username, gnutls_psk_client_credentials_t *ret, Error *error) {
        const char *p = file->data, *end = p + file->size;
        unsigned lineno = 0;

        while (p < end) {
                const char *eol = memchr(p, '\n', (size_t) (end - p)) ?: end;
                const char *line = p, *colon, *key;
                size_t line_len = (size_t) (eol - p), user_len, key_len;

                p = eol < end ? eol + 1 : end;
                lineno++;

                if (line_len > 0 && line[line_len - 1] == '\r')
                        line_len--;
                if (line_len == 0)
                        continue;

                colon = memchr(line, ':', line_len);
                if (!colon || colon == line)
                        return error_set(error, -EINVAL, "tls: PSK file line %u is not \"username:hexkey\"", lineno);
                user_len = (size_t) (colon - line);
                key = colon + 1;
                key_len = line_len - user_len - 1;

                if (username && (strlen(username) != user_len || memcmp(username, line, user_len) != 0))
                        continue;

                if (key_len == 0 || key_len % 2 != 0 || key_len > PSK_MAX_KEY_HEX)
                        return error_set(error, -EINVAL, "tls: PSK file line %u has a key of bad length", lineno);
                for (size_t i = 0; i < key_len; i++)
                        if (unhexchar(key[i]) < 0)
                                return error_set(error, -EINVAL, "tls: PSK file line %u has a key that is not hexadecimal", lineno);

                {
                        char user[256], hexkey[PSK_MAX_KEY_HEX + 1];
                        gnutls_psk_client_credentials_t cred;
                        gnutls_datum_t datum;
                        int r;

                        if (user_len >= sizeof(user))
                                return error_set(error, -EINVAL, "tls: PSK username on line %u is too long", lineno);
                        memcpy(user, line, user_len);
                        user[user_len] = 0;
                        memcpy(hexkey, key, key_len);
                        hexkey[key_len] = 0;
                        datum = (gnutls_datum_t) { .data = (unsigned char *) hexkey, .size = (unsigned) key_len };

                        r = sym_gnutls_psk_allocate_client_credentials(&cred);
                        if (r < 0) {
                                explicit_bzero(hexkey, sizeof(hexkey));
                                return error_set(error, -ENOMEM, "tls: cannot allocate PSK credentials: %s", sym_gnutls_strerror(r));
                        }
                        r = sym_gnutls_psk_set_client_credentials(cred, user, &datum, GNUTLS_PSK_KEY_HEX);
                        explicit_bzero(hexkey, sizeof(hexkey));
                        if (r < 0) {
                                sym_gnutls_psk_free_client_credentials(cred);
                                /* By line, not by user: the name is the file's
                                 * bytes, maybe not UTF-8 (which a bus error must
                                 * be) or with terminal escapes. */
                                return error_set(error, -EINVAL, "tls: bad PSK on line %u of the PSK file: %s",
                                                lineno, sym_gnutls_strerror(r));
                        }
                        *ret = cred;
                        return 0;
                }
        }

        if (username)
                return error_set(error, -EINVAL, "tls: no key for user \"%s\" in the PSK file", username);
        return error_set(error, -EINVAL, "tls: the PSK file holds no key");
}

static int x509_load(const TlsConfig *cfg, gnutls_certificate_credentials_t *ret, Error *error) {
        gnutls_certificate_credentials_t cred;
        int r;

        r = sym_gnutls_certificate_allocate_credentials(&cred);
        if (r < 0)
                return error_set(error, -ENOMEM, "tls: cannot allocate certificate credentials: %s", sym_gnutls_strerror(r));

        if (cfg->ca.size > 0) {
                gnutls_datum_t d = { .data = cfg->ca.data, .size = (unsigned) cfg->ca.size };

                r = sym_gnutls_certificate_set_x509_trust_mem(cred, &d, GNUTLS_X509_FMT_PEM);
                if (r <= 0) {
                        sym_gnutls_certificate_free_credentials(cred);
                        return error_set(error, -EINVAL, "tls: no usable CA certificate in the CA bundle%s%s",
                                        r < 0 ? ": " : "", r < 0 ? sym_gnutls_strerror(r) : "");
                }
        } else if (cfg->ca_dir) {
                r = sym_gnutls_certificate_set_x509_trust_dir(cred, cfg->ca_dir, GNUTLS_X509_FMT_PEM);
                if (r <= 0) {
                        sym_gnutls_certificate_free_credentials(cred);
                        /* Not the caller's doing: the administrator's
                         * directory (nbdlinkd --tls-ca-dir) is empty or
                         * unreadable. */
                        return error_set(error, -ECONNABORTED, "tls: no usable CA certificate in the CA directory %s%s%s",
                                        cfg->ca_dir, r < 0 ? ": " : "", r < 0 ? sym_gnutls_strerror(r) : "");
                }
        } else {
                r = sym_gnutls_certificate_set_x509_system_trust(cred);
                if (r <= 0) {
                        sym_gnutls_certificate_free_credentials(cred);
                        return error_set(error, -EINVAL, "tls: no CA given and the system trust store is empty%s%s",
                                        r < 0 ? ": " : "", r < 0 ? sym_gnutls_strerror(r) : "");
                }
        }

        if (cfg->cert.size > 0 || cfg->key.size > 0) {
                gnutls_datum_t c = { .data = cfg->cert.data, .size = (unsigned) cfg->cert.size };
                gnutls_datum_t k = { .data = cfg->key.data, .size = (unsigned) cfg->key.size };

                if (cfg->cert.size == 0 || cfg->key.size == 0) {
                        sym_gnutls_certificate_free_credentials(cred);
                        return error_set(error, -EINVAL, "tls: a client certificate needs both the certificate and its key");
                }
                r = sym_gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
                if (r < 0) {
                        sym_gnutls_certificate_free_credentials(cred);
                        return error_set(error, -EINVAL, "tls: cannot load the client certificate and key: %s", sym_gnutls_strerror(r));
                }
        }

        *ret = cred;
        return 0;
}

/* Names the first check that failed, most telling first. */
static const char *verify_status_to_string(unsigned status) {
        if (status & GNUTLS_CERT_UNEXPECTED_OWNER)
                return "host name mismatch";
        if (status & GNUTLS_CERT_EXPIRED)
                return "certificate expired";
        if (status & GNUTLS_CERT_NOT_ACTIVATED)
                return "certificate not yet valid";
        if (status & GNUTLS_CERT_REVOKED)
                return "certificate revoked";
        if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
                return "unknown CA (issuer not trusted)";
        if (status & GNUTLS_CERT_SIGNER_NOT_CA)
                return "issuer is not a CA";
        if (status & GNUTLS_CERT_INSECURE_ALGORITHM)
                return "insecure signature algorithm";
        if (status & GNUTLS_CERT_SIGNATURE_FAILURE)
                return "bad signature";
        return "certificate not trusted";
}

bool conn_tls_ktls_refused(const Conn *c) {
        return c && c->tls_ktls_refused;
}

static int handshake_error(Conn *c, const TlsConfig *cfg, bool psk, int r, Error *error) {
        /* A server that speaks only TLS 1.3, or no AES-GCM, answers a
         * handshake restricted for kTLS with an alert or by hanging up,
         * depending on its library. Anything but a failed certificate check
         * may be that, so the caller gets to try once without. */
        if (cfg->ktls && r != GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR)
                c->tls_ktls_refused = true;

        if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
                unsigned status = sym_gnutls_session_get_verify_cert_status(c->session);
                gnutls_datum_t out = {};
                int k;

                k = sym_gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0);
                r = error_set(error, -ECONNABORTED, "tls: certificate verification failed: %s%s%s%s (%s)",
                             verify_status_to_string(status),
                             (status & GNUTLS_CERT_UNEXPECTED_OWNER) && cfg->hostname ? " for \"" : "",
                             (status & GNUTLS_CERT_UNEXPECTED_OWNER) && cfg->hostname ? cfg->hostname : "",
                             (status & GNUTLS_CERT_UNEXPECTED_OWNER) && cfg->hostname ? "\"" : "",
                             k >= 0 && out.data ? (const char *) out.data : "no details");
                sym_gnutls_free(out.data);
                return r;
        }

        if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
                gnutls_alert_description_t a = sym_gnutls_alert_get(c->session);
                const char *name = sym_gnutls_alert_get_name(a);

                if (psk && (a == GNUTLS_A_DECRYPT_ERROR || a == GNUTLS_A_UNKNOWN_PSK_IDENTITY ||
                            a == GNUTLS_A_ILLEGAL_PARAMETER || a == GNUTLS_A_BAD_RECORD_MAC ||
                            a == GNUTLS_A_HANDSHAKE_FAILURE))
                        return error_set(error, -ECONNABORTED, "tls: bad PSK: the server rejected the key%s%s%s (alert: %s)",
                                        cfg->psk_username ? " of user \"" : "", cfg->psk_username ?: "", cfg->psk_username ? "\"" : "",
                                        name ?: "unknown");
                if (cfg->ktls && (a == GNUTLS_A_PROTOCOL_VERSION || a == GNUTLS_A_INSUFFICIENT_SECURITY ||
                                  a == GNUTLS_A_HANDSHAKE_FAILURE))
                        return error_set(error, -ECONNABORTED,
                                        "tls: the server refused TLS 1.2 with AES-GCM, which the kTLS hand-off needs (alert: %s)",
                                        name ?: "unknown");
                return error_set(error, -ECONNABORTED, "tls: the server aborted the TLS handshake (alert: %s)", name ?: "unknown");
        }

        if (psk && (r == GNUTLS_E_DECRYPTION_FAILED || r == GNUTLS_E_MAC_VERIFY_FAILED))
                return error_set(error, -ECONNABORTED, "tls: bad PSK: the keys do not match (%s)", sym_gnutls_strerror(r));

        /* Bytes that are no TLS record at all: the server acknowledged
         * STARTTLS and then spoke something else. No key is to blame for
         * that, whatever the credentials. */
        if (r == GNUTLS_E_UNEXPECTED_PACKET || r == GNUTLS_E_UNEXPECTED_PACKET_LENGTH ||
            r == GNUTLS_E_UNSUPPORTED_VERSION_PACKET)
                return error_set(error, -ECONNABORTED,
                                "tls: the server acknowledged NBD_OPT_STARTTLS but does not speak TLS (%s)",
                                sym_gnutls_strerror(r));

        if (psk)
                /* A server that does not know the identity or derives a
                 * different key tends to just hang up (TLS 1.3 binders). */
                return error_set(error, -ECONNABORTED, "tls: bad PSK or unknown PSK user%s%s%s: the server ended the TLS handshake (%s)",
                                cfg->psk_username ? " \"" : "", cfg->psk_username ?: "", cfg->psk_username ? "\"" : "",
                                sym_gnutls_strerror(r));

        if (r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR || r == GNUTLS_E_PUSH_ERROR || r == GNUTLS_E_SESSION_EOF)
                return error_set(error, -ECONNABORTED, "tls: the server closed the connection during the TLS handshake (%s)", sym_gnutls_strerror(r));

        return error_set(error, -ECONNABORTED, "tls: TLS handshake failed: %s", sym_gnutls_strerror(r));
}

static bool is_ip_literal(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int conn_prepare_tls(Conn *c, const TlsConfig *cfg, Error *error) {
        int r;

        if (!c || !cfg)
                return error_set(error, -EINVAL, "tls: no TLS configuration");
        if (c->is_memory)
                /* Fuzzing: never pay for loading the system trust store. */
                return 0;
        if (c->psk_cred || c->x509_cred)
                return 0;

        /* Every path into GnuTLS passes here first. */
        r = dlopen_gnutls(error);
        if (r < 0)
                return r;

        /* The stream stays plaintext until the handshake, but the
         * credentials are ours to free from now on. */
        c->release = conn_tls_free;
        if (cfg->psk_file.size > 0)
                return psk_load(&cfg->psk_file, cfg->psk_username, &c->psk_cred, error);
        return x509_load(cfg, &c->x509_cred, error);
}

int conn_start_tls(Conn *c, const TlsConfig *cfg, Error *error) {
        bool psk;
        int r;

        if (!c || !cfg)
                return error_set(error, -EINVAL, "tls: no TLS configuration");
        if (c->session)
                return error_set(error, -EINVAL, "tls: TLS is already running");
        if (c->is_memory)
                /* Fuzzing: the bytes after STARTTLS cannot be a TLS peer. */
                return error_set(error, -ECONNABORTED, "tls: no TLS over a memory connection");

        psk = cfg->psk_file.size > 0;
        r = conn_prepare_tls(c, cfg, error);
        if (r < 0)
                goto fail;

        r = sym_gnutls_init(&c->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
        if (r < 0) {
                c->session = NULL;
                r = error_set(error, -ENOMEM, "tls: cannot create a TLS session: %s", sym_gnutls_strerror(r));
                goto fail;
        }

        if (cfg->ktls)
                /* TLS 1.2 with AES-GCM, so that the kernel can take the
                 * session over after the handshake; ktls.c says why. */
                r = sym_gnutls_priority_set_direct(c->session, psk ? KTLS_PRIORITY_PSK : KTLS_PRIORITY_X509, NULL);
        else
                r = sym_gnutls_priority_set_direct(c->session, psk ? TLS_PRIORITY_PSK : TLS_PRIORITY_X509, NULL);
        if (r < 0) {
                r = error_set(error, -EINVAL, "tls: cannot set TLS priorities: %s", sym_gnutls_strerror(r));
                goto fail;
        }

        if (psk)
                r = sym_gnutls_credentials_set(c->session, GNUTLS_CRD_PSK, c->psk_cred);
        else
                r = sym_gnutls_credentials_set(c->session, GNUTLS_CRD_CERTIFICATE, c->x509_cred);
        if (r < 0) {
                r = error_set(error, -EINVAL, "tls: cannot set TLS credentials: %s", sym_gnutls_strerror(r));
                goto fail;
        }

        if (!psk) {
                /* SNI takes names only; the certificate check takes both. */
                if (cfg->hostname && !is_ip_literal(cfg->hostname))
                        (void) sym_gnutls_server_name_set(c->session, GNUTLS_NAME_DNS, cfg->hostname, strlen(cfg->hostname));
                /* Chain and (when we know it) host name are checked inside
                 * the handshake, which then fails with
                 * GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR. */
                sym_gnutls_session_set_verify_cert(c->session, cfg->hostname, 0);
        }

        sym_gnutls_transport_set_int(c->session, c->fd);
        /* Our own deadline governs, through conn_wait(). */
        sym_gnutls_handshake_set_timeout(c->session, GNUTLS_INDEFINITE_TIMEOUT);

        for (;;) {
                r = sym_gnutls_handshake(c->session);
                if (r == GNUTLS_E_SUCCESS)
                        break;
                if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
                        int k = conn_wait(c, sym_gnutls_record_get_direction(c->session) ? POLLOUT : POLLIN);
                        if (k == -ETIMEDOUT) {
                                r = error_set(error, -ETIMEDOUT, "tls: timed out during the TLS handshake");
                                goto fail;
                        }
                        if (k < 0) {
                                r = error_set(error, -ECONNABORTED, "tls: waiting for the server failed: %s", strerror(-k));
                                goto fail;
                        }
                        continue;
                }
                if (r < 0 && !sym_gnutls_error_is_fatal(r))
                        continue;       /* warning alerts */

                r = handshake_error(c, cfg, psk, r, error);
                goto fail;
        }

        /* From here every byte goes through the session. */
        c->ops = &tls_ops;
        return 0;

fail:
        /* No close_notify after a failed handshake: just drop it all. */
        if (c->session) {
                sym_gnutls_deinit(c->session);
                c->session = NULL;
        }
        conn_tls_free(c);
        return r;
}
