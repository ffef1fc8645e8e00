/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The transmission flags a server sends for an export (the NBD protocol's
 * NBD_FLAG_*), by name: for --json, and for the questions "info --can"
 * and "info --is" answer with nbdinfo's names. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "json.h"

#define NBD_FLAG_NAME_MAX 8     /* "bit-15" and its NUL */

/* The name of transmission flag bit (0-15), lower case with dashes:
 * "has-flags", "read-only", "send-flush", ...; "bit-N" for a bit the
 * protocol does not define (written into buf). */
const char *nbd_flag_name(unsigned bit, char buf[static NBD_FLAG_NAME_MAX]);

/* Writes the names of the flags set, lowest bit first, as a JSON array. */
void nbd_flags_json(JsonWriter *w, uint16_t flags);

typedef struct NbdCapability NbdCapability;

/* Finds the question "--can NAME" (is false) or "--is NAME" (is true).
 * 0 and *ret; -EOPNOTSUPP for a name nbdinfo knows that a probe cannot
 * answer (what needs structured replies, which a probe does not
 * negotiate); -ENOENT for any other name. */
int nbd_capability_lookup(bool is, const char *name, const NbdCapability **ret);

/* The answer from a successful probe's flags and whether it used TLS. */
bool nbd_capability_test(const NbdCapability *c, uint16_t flags, bool tls);

/* "connect, read, write, ..." : the names lookup accepts. Caller frees;
 * NULL when out of memory. */
char *nbd_capability_names(bool is);
