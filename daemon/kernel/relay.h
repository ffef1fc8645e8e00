/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TLS relay: the kernel's NBD driver speaks plaintext, so with TLS it
 * gets one end of a socketpair and a thread moves bytes between the other
 * end and the GnuTLS session, in both directions, with back-pressure. */
#pragma once

#include <stdbool.h>

#include "conn.h"
#include "util/macro.h"

#define RELAY_BUFFER_SIZE (256u * 1024u)

typedef struct Relay Relay;

/* Starts relaying for conn, a Conn in the transmission phase with TLS
 * running. On success takes ownership of conn and returns in
 * *ret_kernel_fd the plaintext end for NBD_SET_SOCK (blocking, CLOEXEC,
 * owned by the caller). On failure the caller keeps conn. -EINVAL when
 * conn has no TLS session. */
int relay_new(Relay **ret, Conn *conn, int *ret_kernel_fd);

/* An eventfd that becomes (and stays) readable once the relay has ended on
 * its own or was stopped, for the owner's event loop. Owned by the Relay. */
int relay_event_fd(const Relay *r);

bool relay_has_ended(const Relay *r);

/* Why the relay ended, meaningful once relay_has_ended(): 0 when the
 * kernel side closed or the owner stopped it; -EPIPE when the server
 * closed the connection (message "relay: …"; expected after the owner asked
 * for a disconnect); -ECONNABORTED for a TLS alert or a bad record (message
 * "tls: …", for a Disconnected signal with TLSFailed); other negative
 * errno for socket errors. The message stays owned by the Relay and is ""
 * for 0. Returns -EBUSY while the relay still runs. */
int relay_result(const Relay *r, const char **ret_message);

/* Wakes the relay thread and joins it; the kernel side sees end-of-file.
 * Idempotent. Returns relay_result(). */
int relay_stop(Relay *r);

/* Stops (if running) and frees, closing the TLS connection with a
 * close_notify attempt. */
Relay *relay_free(Relay *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Relay *, relay_free);
