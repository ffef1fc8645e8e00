/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A scripted NBD server for unit tests: a thread on one end of a
 * socketpair plays a list of steps (send these bytes, expect those bytes,
 * wait, trickle, start TLS) and records the first mismatch, including any
 * byte the client sends after the script's last step. */
#pragma once

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct FakeServer FakeServer;

FakeServer *fake_server_new(void);
/* Starts the thread; returns the client's end of the socketpair. */
int fake_server_start(FakeServer *s);
/* Call once the client has said all it will say, whether or not its end is
 * still open. After the last step the thread closes its writing side, then
 * takes any further byte from the client (through TLS if the script started
 * it; a close_notify is fine) as a mismatch, until the client closes or
 * this call says it is done. Waits for the thread and returns its first
 * mismatch, or NULL. A script whose client legitimately goes on talking
 * ends with fs_drain() instead. */
char *fake_server_join(FakeServer *s);
void fake_server_free(FakeServer *s);
/* Send failures after this point are not mismatches (the client is
 * expected to give up while the server is still talking). */
void fake_server_allow_early_close(FakeServer *s);

void fs_send(FakeServer *s, const void *data, size_t n);
void fs_send_u16(FakeServer *s, uint16_t v);
void fs_send_u32(FakeServer *s, uint32_t v);
void fs_send_u64(FakeServer *s, uint64_t v);
void fs_send_zeroes(FakeServer *s, size_t n);
void fs_expect(FakeServer *s, const void *data, size_t n);
void fs_expect_u32(FakeServer *s, uint32_t v);
void fs_sleep(FakeServer *s, unsigned ms);
/* Sends the bytes one at a time, ms apart. */
void fs_trickle(FakeServer *s, const void *data, size_t n, unsigned ms);
/* Reads and throws away everything until the client closes: the one way
 * for a script to accept whatever the client says from there on. */
void fs_drain(FakeServer *s);
/* Expects the client to close without sending anything more. */
void fs_expect_eof(FakeServer *s);
/* Reads, outside any TLS session, one record holding a whole ClientHello:
 * what a client sends first after STARTTLS, to a server that will not
 * answer it. */
void fs_expect_tls_client_hello(FakeServer *s);
/* Server side of a TLS handshake; further steps go through the session.
 * Credentials are taken over by the FakeServer. A failed handshake ends
 * the script without a mismatch when expect_failure is set. */
void fs_start_tls_x509(FakeServer *s, gnutls_certificate_credentials_t cred, bool expect_failure);
void fs_start_tls_psk(FakeServer *s, gnutls_psk_server_credentials_t cred, bool expect_failure);
/* The server demands a client certificate in its TLS handshake. */
void fake_server_require_client_cert(FakeServer *s);
/* GnuTLS priorities for the server's side of the session (a static
 * string); say "NORMAL:-VERS-ALL:+VERS-TLS1.3" for a TLS 1.3-only server. */
void fake_server_set_tls_priority(FakeServer *s, const char *priority);
/* After join: did the client present a certificate? */
bool fake_server_client_cert_seen(FakeServer *s);

/* NBD building blocks. */
void fs_greeting_newstyle(FakeServer *s, uint16_t handshake_flags);
void fs_greeting_oldstyle(FakeServer *s, uint64_t size, uint32_t flags);
/* Expects an option header with this option and payload. */
void fs_expect_option(FakeServer *s, uint32_t option, const void *data, uint32_t len);
/* Expects NBD_OPT_GO or NBD_OPT_INFO for name with nbdlink's four requests. */
void fs_expect_go(FakeServer *s, uint32_t option, const char *name);
void fs_reply(FakeServer *s, uint32_t option, uint32_t type, const void *data, uint32_t len);
/* A reply header only: claims len bytes without sending them. */
void fs_reply_header(FakeServer *s, uint64_t magic, uint32_t option, uint32_t type, uint32_t len);
void fs_info_export(FakeServer *s, uint32_t option, uint64_t size, uint16_t flags);
void fs_info_block_size(FakeServer *s, uint32_t option, uint32_t min, uint32_t pref, uint32_t max);
void fs_info_string(FakeServer *s, uint32_t option, uint16_t info, const char *str);
void fs_server_entry(FakeServer *s, const char *name, const char *description);
