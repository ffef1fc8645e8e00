/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checks both adversarial programs make of a case's outcome, whether
 * the engine ran in-process (test-adversarial) or behind the daemon
 * (test-adversarial-bus): the message, the time taken, how the client
 * left. Failures are reported through GTest and do not end the case. */
#pragma once

#include <stdbool.h>

#include "scenarios.h"
#include "util/time-util.h"

/* Whether s is valid UTF-8 without control characters: whatever the server
 * sent, a message can go on the bus and into logs as it is. */
bool adv_is_clean_text(const char *s);

/* An error message as e wants it: beginning with e->prefix, containing
 * e->needle, not mentioning e->unwanted, clean text. */
void adv_check_message(const AdvExpect *e, const char *message);

/* Never past the deadline and margin; the deadline reached only where the
 * server of c dawdles on purpose. */
void adv_check_elapsed(const AdvCase *c, usec_t elapsed, usec_t deadline, usec_t margin);

/* The client left as e wants (any way when e->verdict is NULL, but the
 * server must have seen it leave). */
void adv_check_verdict(const AdvExpect *e, const char *verdict);
