/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where an NBD server is: the host syntax of the bus API and the command
 * line ("name", "name:port", "addr", "[v6addr]:port", "unix:/path"). */
#pragma once

#include "error-text.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NBD_DEFAULT_PORT 10809

typedef struct NbdAddress {
        char *host;             /* name or literal, brackets removed; NULL for unix */
        uint16_t port;
        char *unix_path;        /* for "unix:/path" */
} NbdAddress;

/* Parses the host argument. port_override, when non-zero, wins over a port
 * in the string. -EINVAL (with a message in error) for anything malformed or
 * longer than NBD_MAX_HOST. */
int nbd_address_parse(NbdAddress *ret, const char *s, uint16_t port_override, Error *error);
void nbd_address_done(NbdAddress *a);
/* Whether the host argument names a unix socket: "unix:" and a path, but
 * not "unix:" and a port, which is the host named "unix". */
bool nbd_address_is_unix(const char *s);
/* "host:port" ("[v6addr]:port" for IPv6 literals) or "unix:/path", for
 * messages and properties. Returns buf. */
const char *nbd_address_format(const NbdAddress *a, char *buf, size_t size);
