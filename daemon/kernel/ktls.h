/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kTLS hand-off: instead of relaying, the session's keys go into the TCP
 * socket (the kernel's "tls" layer) and the kernel's NBD driver gets the
 * socket itself. Only for sessions the kernel can carry safely to the end;
 * everything else takes the relay (relay.h). */
#pragma once

#include <gnutls/gnutls.h>
#include <gnutls/socket.h>
#include <stdbool.h>
#include <stddef.h>

#include "error-text.h"
#include "conn.h"
#include "util/macro.h"


typedef enum TransportMode {
        TRANSPORT_MODE_NONE,            /* plaintext: the kernel gets the socket */
        TRANSPORT_MODE_RELAY,           /* TLS in user space, relay.h */
        TRANSPORT_MODE_KTLS,            /* TLS in the kernel, the socket itself */
        _TRANSPORT_MODE_MAX,
        _TRANSPORT_MODE_INVALID = -EINVAL,
} TransportMode;

/* "none", "relay", "ktls": the Device property TLSMode. */
const char *transport_mode_to_string(TransportMode m);

/* Everything the decision depends on, gathered from a live session by
 * ktls_facts_from_conn(), or written by hand in tests. */
typedef struct KtlsFacts {
        bool wanted;                    /* the tls-ktls option */
        bool kernel;                    /* the kernel offers the "tls" TCP ULP */
        bool tcp;                       /* the connection is TCP */
        gnutls_protocol_t version;
        gnutls_cipher_algorithm_t cipher;
        unsigned gnutls_ktls;           /* gnutls_transport_is_ktls_enabled() */
        size_t pending;                 /* gnutls_record_check_pending() */
} KtlsFacts;

/* Whether the kernel offers kTLS now: "tls" is listed in
 * /proc/sys/net/ipv4/tcp_available_ulp (the tls module is loaded). The
 * daemon cannot load modules itself, so this is what counts. */
bool ktls_kernel_supported(void);

/* Whether a session started now should be restricted to KTLS_PRIORITY_*
 * (TlsConfig.ktls): the option asks for kTLS and the kernel has it. */
bool ktls_wanted_for_handshake(bool option);

int ktls_facts_from_conn(KtlsFacts *ret, const Conn *conn, bool wanted);

/* The decision, a pure function. true when the session may be handed to
 * the kernel; otherwise false and *ret_reason (static text) says why. */
bool ktls_usable(const KtlsFacts *f, const char **ret_reason);

typedef struct Ktls Ktls;

/* Hands conn (TLS running, transmission phase, nothing buffered) to the
 * kernel's TLS layer: installs the session's keys in the socket for both
 * directions (unless GnuTLS already did) and returns in *ret_kernel_fd a
 * blocking descriptor of that socket for NBD_SET_SOCK, owned by the
 * caller. On success takes ownership of conn.
 *
 * -EOPNOTSUPP (message "ktls: …") when kTLS is not usable or the kernel
 * refused it before anything changed: the caller keeps conn, which is
 * untouched, and should use the relay. Any other negative errno (message
 * "ktls: …") means the socket was left half-converted: conn is still the
 * caller's, but unusable; drop the connection. */
int ktls_new(Ktls **ret, Conn *conn, bool wanted, int *ret_kernel_fd, Error *error);

/* Sends close_notify through the kernel (one non-blocking try) and
 * closes the connection. */
Ktls *ktls_free(Ktls *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(Ktls *, ktls_free);
/* Drops our side only, without close_notify: the kernel's NBD driver holds
 * the socket and goes on using the session (persistent devices). */
Ktls *ktls_leave(Ktls *k);
