/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An NBD URI (nbd://, nbds://, nbd+unix://, nbds+unix://, as the NBD URI
 * specification defines them), or nbdlink's other forms of a target,
 * "HOST[:PORT]" and "unix:PATH", parsed into what an attach needs. Pure:
 * no I/O. One parser for nbdlink's TARGET and the daemon's AttachURI. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contract.h"
#include "util/macro.h"

typedef enum NbdTlsType {
        NBD_TLS_TYPE_UNSET,
        NBD_TLS_TYPE_X509,
        NBD_TLS_TYPE_PSK,
} NbdTlsType;

typedef struct NbdTarget {
        bool is_unix;
        bool tls_required;      /* nbds:// and nbds+unix:// */

        char *host;             /* decoded, IPv6 brackets removed; NULL for unix */
        bool host_is_ipv6;
        uint16_t port;          /* 0: not given, the server's default applies */

        char *export_name;      /* decoded; NULL when the target names none */

        char *socket_path;      /* unix only; may begin with NUL (abstract) */
        size_t socket_path_len;

        /* From the URI's userinfo and query; NULL/UNSET when absent. */
        char *username;
        char *tls_hostname;
        char *tls_psk_file;
        char *tls_certificates;
        NbdTlsType tls_type;
} NbdTarget;

/* Parses s. Returns 0 and a new target in *ret, or -EINVAL (-ENOMEM) with a
 * message in error that begins "uri: " for URIs and "target: " for the
 * other forms. Query parameters accepted: socket (unix schemes only),
 * tls-type (x509, psk), tls-hostname, tls-verify-peer (1 only),
 * tls-certificates, tls-psk-file; any other one is rejected. */
int nbd_target_parse(NbdTarget **ret, const char *s, char *error, size_t error_size);

NbdTarget *nbd_target_free(NbdTarget *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(NbdTarget *, nbd_target_free);

/* The host argument for the bus: "name", "v4addr" or "v6addr" without
 * brackets (the port travels in the "port" option); "" for unix targets,
 * whose socket the client connects itself. Never NULL. */
const char *nbd_target_bus_host(const NbdTarget *t);

/* A short human form for messages: "host:port", "[v6]:port" or
 * "unix:PATH" ("unix:@name" for abstract sockets). Caller frees. */
char *nbd_target_to_string(const NbdTarget *t);

/* The NBD URI that names export_name (NULL: the default export, ""):
 * "nbd://HOST[:PORT]/EXPORT", nbds:// when tls, an IPv6 host in brackets
 * with its zone as "%25ZONE"; or, when host is NULL, the unix socket of
 * socket_path_len bytes at socket_path as "nbd+unix:///EXPORT?socket=PATH"
 * (nbds+unix://), a leading NUL (abstract socket) as "%00". Every byte but
 * the unreserved characters of RFC 3986, and '/' in the export and the
 * path, is percent-encoded, so nbd_target_parse() reads back what was
 * given. port 0 is left out. NULL when out of memory, or when neither a
 * host nor a socket is given. Caller frees. */
char *nbd_uri_format(bool tls, const char *host, uint16_t port, const char *socket_path, size_t socket_path_len,
                     const char *export_name);
