/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* TLS configuration of one connection: credentials arrive as bytes (read by
 * the caller from descriptors it was given), never as paths that the daemon
 * would open with its own privileges. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Priorities for a session the kernel's TLS layer (kTLS) can take over:
 * TLS 1.2 with AES-GCM only; daemon/kernel/ktls.c says why not TLS 1.3.
 * Used when TlsConfig.ktls is set. */
#define KTLS_PRIORITY_X509 "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM"
#define KTLS_PRIORITY_PSK  KTLS_PRIORITY_X509 ":+ECDHE-PSK:+DHE-PSK:+PSK"

typedef struct Blob {
        void *data;
        size_t size;
} Blob;

struct TlsConfig {
        Blob ca;                /* PEM CA bundle; empty: ca_dir, else system trust */
        const char *ca_dir;     /* administrator's CA directory, or NULL */
        Blob cert;              /* PEM client certificate, optional */
        Blob key;               /* PEM client key, required with cert */
        Blob psk_file;          /* psktool file ("user:hexkey" lines); selects PSK */
        const char *psk_username; /* which line of psk_file; NULL: the first */
        const char *hostname;   /* name the certificate must match (X.509 only) */
        bool ktls;              /* negotiate only what kTLS can carry (KTLS_PRIORITY_*) */
};

/* Reads at most max_size bytes from fd (from its current position) into a
 * fresh Blob. -EFBIG if the file is larger. The fd is not closed. */
int blob_read_fd(Blob *ret, int fd, size_t max_size);
/* Wipes and frees (credentials are secrets). */
void blob_done(Blob *b);
