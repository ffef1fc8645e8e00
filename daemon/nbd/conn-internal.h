/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The inside of a Conn, shared by conn.c (the byte stream and its deadline)
 * and tls.c (which installs a GnuTLS session into it through ConnOps).
 * Nothing else may include this. */
#pragma once

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"

/* How bytes move on one kind of stream. conn.c's read and write loops call
 * these and wait with conn_wait() in between, so that every kind obeys the
 * same deadline; tls.c installs its own when STARTTLS succeeded. */
typedef struct ConnOps {
        /* One non-blocking try: bytes moved (0: end-of-file on recv),
         * -EAGAIN to wait for the socket, else negative errno. */
        ssize_t (*recv)(Conn *c, void *buf, size_t n);
        ssize_t (*send)(Conn *c, const void *buf, size_t n);
} ConnOps;

struct Conn {
        const ConnOps *ops;
        /* Releases what tls.c put into the Conn (credentials, a session);
         * NULL while there is nothing. */
        void (*release)(Conn *c);
        int fd;                         /* -EBADF for a memory Conn */
        usec_t deadline;

        /* Memory Conn (fuzzing): reads come from here. */
        const uint8_t *mem;
        size_t mem_size;
        size_t mem_pos;
        bool is_memory;

        /* After STARTTLS: all bytes go through the session. The credentials
         * must live as long as the session. */
        gnutls_session_t session;
        gnutls_certificate_credentials_t x509_cred;
        gnutls_psk_client_credentials_t psk_cred;
        /* A handshake restricted to what kTLS can carry (TlsConfig.ktls)
         * failed for a reason an unrestricted one may not have. */
        bool tls_ktls_refused;
};

/* Waits until fd is readable (events POLLIN) or writable (POLLOUT) or the
 * deadline passes: 0, -ETIMEDOUT, or negative errno. */
int conn_wait(Conn *c, short events);

