/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GnuTLS, loaded when the first TLS connection needs it rather than at
 * start: most attaches are plaintext, and linking GnuTLS put it, p11-kit,
 * nettle and the rest (about 2 MiB of resident pages, and GnuTLS's own
 * start-up work) into every nbdlinkd, idle or not. The code calls the
 * sym_gnutls_*() pointers below; dlopen_gnutls() fills them once. */
#pragma once

#include "error-text.h"

#include <gnutls/gnutls.h>
#include <gnutls/socket.h>
#include <stddef.h>

/* Every GnuTLS function the core library calls. */
#define GNUTLS_DL_SYMBOLS(X)                            \
        X(gnutls_alert_get)                             \
        X(gnutls_alert_get_name)                        \
        X(gnutls_bye)                                   \
        X(gnutls_certificate_allocate_credentials)      \
        X(gnutls_certificate_free_credentials)          \
        X(gnutls_certificate_set_x509_key_mem)          \
        X(gnutls_certificate_set_x509_system_trust)     \
        X(gnutls_certificate_set_x509_trust_dir)        \
        X(gnutls_certificate_set_x509_trust_mem)        \
        X(gnutls_certificate_verification_status_print) \
        X(gnutls_cipher_get)                            \
        X(gnutls_credentials_set)                       \
        X(gnutls_deinit)                                \
        X(gnutls_error_is_fatal)                        \
        X(gnutls_handshake)                             \
        X(gnutls_handshake_set_timeout)                 \
        X(gnutls_init)                                  \
        X(gnutls_priority_set_direct)                   \
        X(gnutls_protocol_get_version)                  \
        X(gnutls_psk_allocate_client_credentials)       \
        X(gnutls_psk_free_client_credentials)           \
        X(gnutls_psk_set_client_credentials)            \
        X(gnutls_record_check_pending)                  \
        X(gnutls_record_get_direction)                  \
        X(gnutls_record_get_state)                      \
        X(gnutls_record_recv)                           \
        X(gnutls_record_send)                           \
        X(gnutls_server_name_set)                       \
        X(gnutls_session_get_verify_cert_status)        \
        X(gnutls_session_set_verify_cert)               \
        X(gnutls_strerror)                              \
        X(gnutls_transport_is_ktls_enabled)             \
        X(gnutls_transport_set_int2)                    \
        X(gnutls_transport_set_push_function)

#define GNUTLS_DL_DECLARE(name) extern __typeof__(name) *sym_##name;
GNUTLS_DL_SYMBOLS(GNUTLS_DL_DECLARE)
#undef GNUTLS_DL_DECLARE

/* gnutls_free is a variable holding a function pointer, not a function;
 * gnutls_transport_set_int() is a macro over gnutls_transport_set_int2(). */
extern gnutls_free_function *sym_gnutls_free_pointer;
#define sym_gnutls_free(p) ((*sym_gnutls_free_pointer)(p))
#define sym_gnutls_transport_set_int(s, fd) sym_gnutls_transport_set_int2(s, fd, fd)

/* 0 once every sym_gnutls_*() can be called; -EOPNOTSUPP, with a message
 * in `error`, when the library or one of its functions cannot be loaded.
 * Safe to call from any thread, any number of times: the first call
 * loads, the rest return its result. */
int dlopen_gnutls(Error *error);

