/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host syntax of the bus API and the command line: "name",
 * "name:port", "addr", "[v6addr]:port" and "unix:/path". Shared by the
 * daemon and the client, so that both accept exactly the same. */

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "address.h"
#include "contract.h"
#include "error-text.h"
#include "util/macro.h"


void nbd_address_done(NbdAddress *a) {
        if (!a)
                return;
        free(a->host);
        free(a->unix_path);
        *a = (NbdAddress) {};
}

static bool valid_hostname_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_';
}

/* "unix:10809" is the host named "unix" and a port, which is also how
 * nbd_address_format() writes that host: a socket path is absolute (or,
 * for the CLI, "./10809"), so the two cannot be confused. */
bool nbd_address_is_unix(const char *s) {
        const char *rest;

        if (!s || strncmp(s, "unix:", 5) != 0)
                return false;
        rest = s + 5;
        return !*rest || strspn(rest, "0123456789") != strlen(rest);
}

/* Parses a decimal port of 1..65535 that spans exactly [p, p+n). */
static int parse_port(const char *p, size_t n, uint16_t *ret) {
        unsigned v = 0;

        if (n == 0 || n > 5)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned) (p[i] - '0');
        }
        if (v == 0 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

/* An IPv6 literal, optionally with a "%zone" suffix (link-local). */
static bool valid_ipv6_literal(const char *s, size_t n) {
        char buf[INET6_ADDRSTRLEN + 1 + IF_NAMESIZE];
        struct in6_addr in6;
        const char *zone;
        size_t addr_len;

        if (n == 0 || n >= sizeof(buf))
                return false;
        memcpy(buf, s, n);
        buf[n] = 0;

        zone = memchr(buf, '%', n);
        addr_len = zone ? (size_t) (zone - buf) : n;
        if (zone) {
                size_t zn = n - addr_len - 1;

                if (zn == 0 || zn >= IF_NAMESIZE)
                        return false;
                for (size_t i = 1; i <= zn; i++)
                        if (!valid_hostname_char(zone[i]))
                                return false;
                buf[addr_len] = 0;
        }
        return inet_pton(AF_INET6, buf, &in6) == 1;
}

int nbd_address_parse(NbdAddress *ret, const char *s, uint16_t port_override, Error *error) {
        _cleanup_free_ char *host = NULL;
        const char *name, *colon;
        size_t len, name_len;
        uint16_t port = NBD_DEFAULT_PORT;

        if (!ret)
                return -EINVAL;
        if (!s || !*s)
                return error_set(error, -EINVAL, "host: no host given");

        len = strnlen(s, NBD_MAX_HOST + 1);
        if (len > NBD_MAX_HOST)
                return error_set(error, -EINVAL,
                                 "host: longer than %u bytes", NBD_MAX_HOST);

        /* Checked before anything is echoed back in a message, so that no
         * message carries terminal escapes or line breaks from a caller. */
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return error_set(error, -EINVAL,
                                         "host: contains a control character at offset %zu", i);

        if (nbd_address_is_unix(s)) {
                const char *path = s + 5;
                _cleanup_free_ char *p = NULL;

                if (path[0] != '/')
                        return error_set(error, -EINVAL,
                                         "host: \"%s\": a unix socket needs an absolute path", s);
                if (strlen(path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                        return error_set(error, -EINVAL,
                                         "host: \"%s\": socket path is too long for AF_UNIX", s);
                p = strdup(path);
                if (!p)
                        return -ENOMEM;
                *ret = (NbdAddress) { .unix_path = TAKE_PTR(p) };
                return 0;
        }

        if (s[0] == '[') {
                const char *close = strchr(s, ']');

                if (!close)
                        return error_set(error, -EINVAL,
                                         "host: \"%s\": \"[\" without a closing \"]\"", s);
                name = s + 1;
                name_len = (size_t) (close - name);
                if (!valid_ipv6_literal(name, name_len))
                        return error_set(error, -EINVAL,
                                         "host: \"%s\": not an IPv6 address between the brackets", s);
                if (close[1] == ':') {
                        if (parse_port(close + 2, strlen(close + 2), &port) < 0)
                                return error_set(error, -EINVAL,
                                                 "host: \"%s\": port must be a number from 1 to 65535", s);
                } else if (close[1] != 0)
                        return error_set(error, -EINVAL,
                                         "host: \"%s\": only \":port\" may follow \"]\"", s);
        } else if (strchr(s, ']'))
                return error_set(error, -EINVAL,
                                 "host: \"%s\": \"]\" without an opening \"[\"", s);
        else {
                colon = strchr(s, ':');
                name = s;
                if (colon && strchr(colon + 1, ':')) {
                        /* Two colons or more: a bare IPv6 literal, which cannot
                         * carry a port (that is what brackets are for). */
                        if (!valid_ipv6_literal(s, len))
                                return error_set(error, -EINVAL,
                                                 "host: \"%s\": not a valid IPv6 address (write \"[address]:port\" to give a port)", s);
                        name_len = len;
                } else {
                        name_len = colon ? (size_t) (colon - s) : len;
                        if (colon && parse_port(colon + 1, strlen(colon + 1), &port) < 0)
                                return error_set(error, -EINVAL,
                                                 "host: \"%s\": port must be a number from 1 to 65535", s);
                        if (name_len == 0)
                                return error_set(error, -EINVAL,
                                                 "host: \"%s\": no host name before the port", s);
                        if (name[0] == '-' || name[0] == '.')
                                return error_set(error, -EINVAL,
                                                 "host: \"%s\": a host name cannot start with \"%c\"", s, name[0]);
                        for (size_t i = 0; i < name_len; i++)
                                if (!valid_hostname_char(name[i]))
                                        return error_set(error, -EINVAL,
                                                         "host: \"%s\": character '%c' is not allowed in a host name", s, name[i]);
                }
        }

        host = strndup(name, name_len);
        if (!host)
                return -ENOMEM;

        if (port_override != 0)
                port = port_override;

        *ret = (NbdAddress) { .host = TAKE_PTR(host), .port = port };
        return 0;
}

/* "host:port", with brackets around IPv6 literals, or "unix:/path". */
const char *nbd_address_format(const NbdAddress *a, char *buf, size_t size) {
        if (a->unix_path)
                (void) snprintf(buf, size, "unix:%s", a->unix_path);
        else if (strchr(strempty(a->host), ':'))
                (void) snprintf(buf, size, "[%s]:%u", a->host, a->port);
        else
                (void) snprintf(buf, size, "%s:%u", strempty(a->host), a->port);
        return buf;
}
