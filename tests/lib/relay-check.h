/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How a TLS relay (daemon/kernel/relay.h) ended, checked the same way by
 * the relay tests against an in-process server (unit/test-relay) and
 * against nbdkit (interop/test-relay-nbdkit). */
#pragma once

#include "relay.h"

/* Waits up to 10 s for r's event descriptor; fails the test unless r has
 * ended by then. */
void relay_check_ended(Relay *r);

/* Fails the test unless r ended with error (0 or negative errno) and a
 * message beginning with prefix, or an empty message when prefix is NULL. */
void relay_check_result(Relay *r, int error, const char *prefix);
