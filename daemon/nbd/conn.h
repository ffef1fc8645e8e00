/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A byte stream to an NBD server under one absolute deadline: a plain
 * socket, a GnuTLS session over that socket once STARTTLS succeeded, or a
 * read-only memory buffer (fuzzing). Every read and write gives up with
 * -ETIMEDOUT when the deadline passes, however slowly the peer trickles. */
#pragma once

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

#include "error-text.h"
#include "util/macro.h"
#include "util/time-util.h"

typedef struct Conn Conn;
typedef struct TlsConfig TlsConfig;

/* Takes ownership of fd (a connected stream socket); sets it non-blocking. */
int conn_new_fd(Conn **ret, int fd);
/* Reads come from the buffer (not copied: it must outlive the Conn); writes
 * are accepted and dropped. Running dry is end-of-file. */
int conn_new_memory(Conn **ret, const void *data, size_t size);
Conn *conn_free(Conn *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Conn *, conn_free);

void conn_set_deadline(Conn *c, usec_t deadline);
usec_t conn_get_deadline(const Conn *c);

/* 0 on success; -ETIMEDOUT past the deadline; -EPIPE when the peer closed
 * before n bytes arrived; other negative errno from the socket or TLS layer
 * (-ECONNABORTED for a TLS record error or alert). */
int conn_read_full(Conn *c, void *buf, size_t n);
int conn_write_full(Conn *c, const void *buf, size_t n);
/* Reads and throws away n bytes without allocating n bytes. */
int conn_discard(Conn *c, size_t n);

/* Loads the credentials cfg describes into the Conn, so that a bad CA
 * bundle, key or PSK file is reported (-EINVAL, message prefixed "tls: ")
 * before NBD_OPT_STARTTLS is sent rather than after. Optional:
 * conn_start_tls() loads them itself when this was not called. A no-op on a
 * memory Conn. Implemented in tls.c. */
int conn_prepare_tls(Conn *c, const TlsConfig *cfg, Error *error);
/* Runs the TLS client handshake over the connection (after the server
 * acknowledged NBD_OPT_STARTTLS), verifying the peer as cfg says. On
 * failure returns -ECONNABORTED (or -ETIMEDOUT) and writes a message
 * prefixed "tls: " to error. Implemented in tls.c. */
int conn_start_tls(Conn *c, const TlsConfig *cfg, Error *error);
bool conn_is_tls(const Conn *c);
/* After conn_start_tls() failed with cfg->ktls set: whether the failure
 * could come from the kTLS restriction (TLS 1.2 with AES-GCM), so that a new
 * connection without it may succeed. False for certificate errors and
 * timeouts, which would only repeat. */
bool conn_tls_ktls_refused(const Conn *c);

/* The socket, still owned by the Conn; -EBADF for a memory Conn. */
int conn_fd(const Conn *c);
/* The TLS session, still owned by the Conn, or NULL. */
gnutls_session_t conn_tls_session(const Conn *c);
