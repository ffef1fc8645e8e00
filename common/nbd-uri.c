/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parser for the TARGET argument. URIs follow RFC 3986 strictly (characters
 * outside the allowed sets must be percent-encoded) so that a typo is an
 * error here rather than a strange export name on the server. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "nbd-uri.h"
#include "utf8.h"
#include "util/hex.h"

_printf_(3, 4)
static int fail(char *error, size_t error_size, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(error, error_size, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

NbdTarget *nbd_target_free(NbdTarget *t) {
        if (!t)
                return NULL;
        free(t->host);
        free(t->export_name);
        free(t->socket_path);
        free(t->username);
        free(t->tls_hostname);
        free(t->tls_psk_file);
        free(t->tls_certificates);
        free(t);
        return NULL;
}

static bool is_unreserved(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                strchr("-._~", c);
}

static bool is_sub_delim(char c) {
        return c != 0 && strchr("!$&'()*+,;=", c);
}


/* Percent-decodes s[0..n) after checking every literal character is in the
 * component's allowed set (unreserved, sub-delims and "extra"). The result
 * may contain NUL; its length goes to *ret_len. */
static int pct_decode(const char *what, const char *s, size_t n, const char *extra,
                      char **ret, size_t *ret_len, char *error, size_t error_size) {
        _cleanup_free_ char *out = malloc(n + 1);
        size_t k = 0;

        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (c == '%') {
                        int hi = i + 2 < n ? unhexchar(s[i + 1]) : -1;
                        int lo = i + 2 < n ? unhexchar(s[i + 2]) : -1;

                        if (hi < 0 || lo < 0)
                                return fail(error, error_size,
                                            "uri: bad percent-encoding in %s at '%.3s'", what, s + i);
                        out[k++] = (char) (hi << 4 | lo);
                        i += 2;
                        continue;
                }
                if (!is_unreserved(c) && !is_sub_delim(c) && !(c != 0 && strchr(extra, c))) {
                        if ((unsigned char) c < ' ' || (unsigned char) c >= 0x7f)
                                return fail(error, error_size,
                                            "uri: %s contains byte 0x%02x, which must be percent-encoded",
                                            what, (unsigned char) c);
                        return fail(error, error_size,
                                    "uri: character '%c' in %s must be percent-encoded", c, what);
                }
                out[k++] = c;
        }
        out[k] = 0;
        *ret_len = k;
        *ret = TAKE_PTR(out);
        return 0;
}

/* Decimal port, 1..65535. */
static int parse_port(const char *prefix, const char *s, size_t n, uint16_t *ret,
                      char *error, size_t error_size) {
        unsigned long v = 0;

        if (n == 0)
                return fail(error, error_size, "%s: empty port", prefix);
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return fail(error, error_size, "%s: port '%.*s' is not a number",
                                    prefix, (int) MIN(n, 32u), s);
                v = v * 10 + (unsigned long) (s[i] - '0');
                if (v > 65535)
                        return fail(error, error_size, "%s: port '%.*s' is out of range (1-65535)",
                                    prefix, (int) MIN(n, 32u), s);
        }
        if (v == 0)
                return fail(error, error_size, "%s: port 0 is out of range (1-65535)", prefix);
        *ret = (uint16_t) v;
        return 0;
}

/* "v6addr" or "v6addr%zone" as written between brackets (zone already
 * decoded); inet_pton does not know zones, so check the address part. The
 * zone is an interface name, held to the characters the daemon accepts:
 * anything else (brackets, bytes that are not UTF-8, hundreds of bytes)
 * would pass here and be refused on the bus, or print as something else. */
static bool ipv6_literal_valid(const char *s) {
        char buf[INET6_ADDRSTRLEN + 1];
        struct in6_addr a;
        const char *pct = strchr(s, '%');
        size_t n = pct ? (size_t) (pct - s) : strlen(s);

        if (n == 0 || n >= sizeof(buf))
                return false;
        if (pct) {
                size_t zn = strlen(pct + 1);

                if (zn == 0 || zn >= IF_NAMESIZE)
                        return false;
                for (const char *z = pct + 1; *z; z++)
                        if (!((*z >= 'a' && *z <= 'z') || (*z >= 'A' && *z <= 'Z') ||
                              (*z >= '0' && *z <= '9') || strchr("-._", *z)))
                                return false;
        }
        memcpy(buf, s, n);
        buf[n] = 0;
        return inet_pton(AF_INET6, buf, &a) == 1;
}

static bool host_name_valid(const char *s) {
        /* A leading '-' or '.' is never a name, and '-' reads like an option. */
        if (!*s || *s == '-' || *s == '.')
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || strchr("-._", *p)))
                        return false;
        return true;
}

static int set_string(char **field, const char *key, const char *value, size_t len,
                      char *error, size_t error_size) {
        if (*field)
                return fail(error, error_size, "uri: query parameter '%s' given twice", key);
        if (len == 0)
                return fail(error, error_size, "uri: query parameter '%s' is empty", key);
        if (memchr(value, 0, len))
                return fail(error, error_size, "uri: query parameter '%s' contains NUL", key);
        *field = strdup(value);
        return *field ? 0 : -ENOMEM;
}

static int parse_query_param(NbdTarget *t, const char *s, size_t n, bool *seen_tls_type,
                             bool *seen_verify, char *error, size_t error_size) {
        const char *eq = memchr(s, '=', n);
        _cleanup_free_ char *key = NULL, *value = NULL;
        size_t key_len, value_len;
        int r;

        if (!eq)
                return fail(error, error_size, "uri: query parameter '%.*s' has no value",
                            (int) MIN(n, 64u), s);

        r = pct_decode("query", s, (size_t) (eq - s), ":@/?", &key, &key_len, error, error_size);
        if (r < 0)
                return r;
        r = pct_decode("query", eq + 1, n - (size_t) (eq - s) - 1, ":@/?", &value, &value_len,
                       error, error_size);
        if (r < 0)
                return r;
        if (memchr(key, 0, key_len))
                return fail(error, error_size, "uri: query parameter name contains NUL");

        if (strcmp(key, "socket") == 0) {
                if (!t->is_unix)
                        return fail(error, error_size,
                                    "uri: socket= is only for nbd+unix:// and nbds+unix:// URIs");
                if (t->socket_path)
                        return fail(error, error_size, "uri: query parameter 'socket' given twice");
                if (value_len == 0)
                        return fail(error, error_size, "uri: query parameter 'socket' is empty");
                /* A leading NUL names an abstract socket; NUL elsewhere can't be sent. */
                if (memchr(value + 1, 0, value_len - 1))
                        return fail(error, error_size, "uri: socket path contains NUL");
                if (value_len >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                        return fail(error, error_size,
                                    "uri: socket path is %zu bytes, longer than a unix socket address allows",
                                    value_len);
                t->socket_path = TAKE_PTR(value);
                t->socket_path_len = value_len;
                return 0;
        }
        if (strcmp(key, "tls-type") == 0) {
                if (*seen_tls_type)
                        return fail(error, error_size, "uri: query parameter 'tls-type' given twice");
                *seen_tls_type = true;
                if (strcmp(value, "x509") == 0)
                        t->tls_type = NBD_TLS_TYPE_X509;
                else if (strcmp(value, "psk") == 0)
                        t->tls_type = NBD_TLS_TYPE_PSK;
                else if (strcmp(value, "anon") == 0)
                        return fail(error, error_size,
                                    "uri: tls-type=anon is not supported: nbdlink always authenticates the server (use x509 or psk)");
                else
                        return fail(error, error_size,
                                    "uri: unknown tls-type '%.32s' (expected x509 or psk)", value);
                return 0;
        }
        if (strcmp(key, "tls-verify-peer") == 0) {
                if (*seen_verify)
                        return fail(error, error_size,
                                    "uri: query parameter 'tls-verify-peer' given twice");
                *seen_verify = true;
                if (strcmp(value, "1") == 0 || strcasecmp(value, "true") == 0)
                        return 0;
                if (strcmp(value, "0") == 0 || strcasecmp(value, "false") == 0)
                        return fail(error, error_size,
                                    "uri: tls-verify-peer=0 is not supported: nbdlink always verifies the server");
                return fail(error, error_size, "uri: tls-verify-peer must be 0 or 1, not '%.32s'", value);
        }
        if (strcmp(key, "tls-hostname") == 0) {
                r = set_string(&t->tls_hostname, key, value, value_len, error, error_size);
                if (r < 0)
                        return r;
                if (value_len > NBD_MAX_HOST || !host_name_valid(value))
                        return fail(error, error_size, "uri: tls-hostname '%.64s' is not a valid host name",
                                    value);
                return 0;
        }
        if (strcmp(key, "tls-psk-file") == 0)
                return set_string(&t->tls_psk_file, key, value, value_len, error, error_size);
        if (strcmp(key, "tls-certificates") == 0)
                return set_string(&t->tls_certificates, key, value, value_len, error, error_size);

        return fail(error, error_size, "uri: unknown query parameter '%.64s'", key);
}

static int parse_authority(NbdTarget *t, const char *s, size_t n, char *error, size_t error_size) {
        const char *at = NULL, *hostp, *end = s + n, *portp = NULL;
        size_t len;
        int r;

        for (const char *p = s; p < end; p++)
                if (*p == '@')
                        at = p;

        if (at) {
                _cleanup_free_ char *user = NULL;

                r = pct_decode("user name", s, (size_t) (at - s), ":", &user, &len, error, error_size);
                if (r < 0)
                        return r;
                if (len == 0)
                        return fail(error, error_size, "uri: empty user name before '@'");
                /* "user:password" is deprecated by RFC 3986 and would put a
                 * secret on the command line; the PSK comes from a file. */
                if (strchr(user, ':'))
                        return fail(error, error_size,
                                    "uri: passwords in URIs are not supported (use --psk FILE)");
                if (!utf8_is_valid(user, len))
                        return fail(error, error_size, "uri: user name is not valid UTF-8");
                t->username = TAKE_PTR(user);
                hostp = at + 1;
        } else
                hostp = s;

        if (t->is_unix) {
                if (hostp != end)
                        return fail(error, error_size,
                                    "uri: nbd+unix URIs take no host; name the socket with ?socket=PATH");
                return 0;
        }

        if (hostp == end)
                return fail(error, error_size, "uri: no host in URI");

        if (*hostp == '[') {
                const char *close = memchr(hostp, ']', (size_t) (end - hostp));
                _cleanup_free_ char *lit = NULL;

                if (!close)
                        return fail(error, error_size, "uri: missing ']' after IPv6 address");
                if (hostp[1] == 'v' || hostp[1] == 'V')
                        return fail(error, error_size, "uri: IPvFuture addresses are not supported");
                /* RFC 6874: the zone of a link-local address is introduced by "%25". */
                r = pct_decode("IPv6 address", hostp + 1, (size_t) (close - hostp - 1), ":", &lit, &len,
                               error, error_size);
                if (r < 0)
                        return r;
                if (memchr(lit, 0, len) || !ipv6_literal_valid(lit))
                        return fail(error, error_size, "uri: '%.*s' is not a valid IPv6 address",
                                    (int) MIN((size_t) (close - hostp + 1), 64u), hostp);
                t->host = TAKE_PTR(lit);
                t->host_is_ipv6 = true;
                if (close + 1 < end) {
                        if (close[1] != ':')
                                return fail(error, error_size, "uri: unexpected text after IPv6 address");
                        portp = close + 2;
                }
        } else {
                const char *colon = memchr(hostp, ':', (size_t) (end - hostp));
                const char *hend = colon ?: end;
                _cleanup_free_ char *name = NULL;

                r = pct_decode("host", hostp, (size_t) (hend - hostp), "", &name, &len, error, error_size);
                if (r < 0)
                        return r;
                if (len == 0)
                        return fail(error, error_size, "uri: no host in URI");
                if (memchr(name, 0, len) || !host_name_valid(name))
                        return fail(error, error_size, "uri: '%.64s' is not a valid host name",
                                    memchr(name, 0, len) ? "(contains NUL)" : name);
                if (len > NBD_MAX_HOST)
                        return fail(error, error_size, "uri: host name is longer than %d bytes",
                                    NBD_MAX_HOST);
                t->host = TAKE_PTR(name);
                if (colon)
                        portp = colon + 1;
        }

        /* RFC 3986 allows an empty port after ':'; it means the default. */
        if (portp && portp < end)
                return parse_port("uri", portp, (size_t) (end - portp), &t->port, error, error_size);
        return 0;
}

static int parse_uri(NbdTarget *t, const char *s, size_t scheme_len, char *error, size_t error_size) {
        static const struct {
                const char *name;
                bool is_unix, tls;
        } schemes[] = {
                { "nbd",       false, false },
                { "nbds",      false, true  },
                { "nbd+unix",  true,  false },
                { "nbds+unix", true,  true  },
        };
        const char *p, *auth_end, *path_end;
        bool found = false, seen_tls_type = false, seen_verify = false;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(schemes); i++)
                /* Schemes are case-insensitive (RFC 3986 §3.1). */
                if (strlen(schemes[i].name) == scheme_len &&
                    strncasecmp(s, schemes[i].name, scheme_len) == 0) {
                        t->is_unix = schemes[i].is_unix;
                        t->tls_required = schemes[i].tls;
                        found = true;
                }
        if (!found)
                return fail(error, error_size,
                            "uri: unknown scheme '%.*s' (expected nbd, nbds, nbd+unix or nbds+unix)",
                            (int) MIN(scheme_len, 32u), s);

        if (strchr(s, '#'))
                return fail(error, error_size, "uri: fragments ('#') are not allowed in NBD URIs");

        p = s + scheme_len + 3;
        auth_end = p + strcspn(p, "/?");
        r = parse_authority(t, p, (size_t) (auth_end - p), error, error_size);
        if (r < 0)
                return r;

        path_end = auth_end + strcspn(auth_end, "?");
        if (path_end > auth_end) {
                _cleanup_free_ char *name = NULL;
                size_t len;

                /* The export is the path without its first '/'. */
                r = pct_decode("export name", auth_end + 1, (size_t) (path_end - auth_end - 1), ":@/",
                               &name, &len, error, error_size);
                if (r < 0)
                        return r;
                if (memchr(name, 0, len))
                        return fail(error, error_size, "uri: export name contains NUL");
                if (len > NBD_MAX_STRING)
                        return fail(error, error_size, "uri: export name is longer than %d bytes",
                                    NBD_MAX_STRING);
                if (!utf8_is_valid(name, len))
                        return fail(error, error_size, "uri: export name is not valid UTF-8");
                t->export_name = TAKE_PTR(name);
        }
        /* Without a path, export_name stays NULL: "nbd://host" names the
         * default export (the empty string) unless EXPORT is given. */

        if (*path_end == '?') {
                const char *q = path_end + 1;

                while (*q) {
                        size_t len = strcspn(q, "&");

                        if (len == 0)
                                return fail(error, error_size, "uri: empty query parameter");
                        r = parse_query_param(t, q, len, &seen_tls_type, &seen_verify, error, error_size);
                        if (r < 0)
                                return r;
                        q += len;
                        if (*q == '&') {
                                q++;
                                if (!*q)
                                        return fail(error, error_size, "uri: empty query parameter");
                        }
                }
        }

        if (t->is_unix && !t->socket_path)
                return fail(error, error_size, "uri: nbd+unix URIs need ?socket=PATH");
        return 0;
}

static int parse_host_port(NbdTarget *t, const char *s, char *error, size_t error_size) {
        const char *colon;

        if (!*s)
                return fail(error, error_size, "target: empty host");

        if (*s == '[') {
                const char *close = strchr(s, ']');

                if (!close)
                        return fail(error, error_size, "target: missing ']' after IPv6 address");
                t->host = strndup(s + 1, (size_t) (close - s - 1));
                if (!t->host)
                        return -ENOMEM;
                if (!ipv6_literal_valid(t->host))
                        return fail(error, error_size, "target: '%.64s' is not a valid IPv6 address", t->host);
                t->host_is_ipv6 = true;
                if (close[1] == 0)
                        return 0;
                if (close[1] != ':')
                        return fail(error, error_size, "target: unexpected text after IPv6 address");
                return parse_port("target", close + 2, strlen(close + 2), &t->port, error, error_size);
        }

        colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {
                /* Two colons or more: a bare IPv6 address, which can't carry a port. */
                if (!ipv6_literal_valid(s))
                        return fail(error, error_size,
                                    "target: '%.64s' is not a valid IPv6 address (write [ADDRESS]:PORT for a port)",
                                    s);
                t->host = strdup(s);
                if (!t->host)
                        return -ENOMEM;
                t->host_is_ipv6 = true;
                return 0;
        }

        t->host = colon ? strndup(s, (size_t) (colon - s)) : strdup(s);
        if (!t->host)
                return -ENOMEM;
        if (!host_name_valid(t->host)) {
                if (strchr(t->host, '/'))
                        return fail(error, error_size,
                                    "target: '%.64s' is not a host name; write a URI such as nbd://HOST/EXPORT",
                                    s);
                return fail(error, error_size, "target: '%.64s' is not a valid host name", t->host);
        }
        if (strlen(t->host) > NBD_MAX_HOST)
                return fail(error, error_size, "target: host name is longer than %d bytes",
                            NBD_MAX_HOST);
        if (colon)
                return parse_port("target", colon + 1, strlen(colon + 1), &t->port, error, error_size);
        return 0;
}

/* "unix:10809" is the host named "unix" and a port, as the daemon reads
 * it and as nbd_target_to_string() writes that host; a socket file named
 * only by digits is "unix:./10809". */
static bool all_digits(const char *s) {
        return *s && strspn(s, "0123456789") == strlen(s);
}

static int parse_unix_path(NbdTarget *t, const char *path, char *error, size_t error_size) {
        size_t n = strlen(path);

        if (n == 0)
                return fail(error, error_size, "target: empty socket path after 'unix:'");
        if (n >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                return fail(error, error_size,
                            "target: socket path is %zu bytes, longer than a unix socket address allows", n);
        t->is_unix = true;
        t->socket_path = strdup(path);
        if (!t->socket_path)
                return -ENOMEM;
        t->socket_path_len = n;
        return 0;
}

int nbd_target_parse(NbdTarget **ret, const char *s, char *error, size_t error_size) {
        _cleanup_(nbd_target_freep) NbdTarget *t = NULL;
        size_t scheme_len;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;

        /* A URI is "scheme://..."; "name:123" is a host and port, not a scheme. */
        scheme_len = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
        if (scheme_len > 0 && strncmp(s + scheme_len, "://", 3) == 0)
                r = parse_uri(t, s, scheme_len, error, error_size);
        else if (strncmp(s, "unix:", 5) == 0 && !all_digits(s + 5))
                r = parse_unix_path(t, s + 5, error, error_size);
        else
                r = parse_host_port(t, s, error, error_size);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(t);
        return 0;
}

const char *nbd_target_bus_host(const NbdTarget *t) {
        return t->is_unix ? "" : t->host;
}

char *nbd_target_to_string(const NbdTarget *t) {
        char *s = NULL;
        int r;

        if (t->is_unix) {
                if (t->socket_path_len > 0 && t->socket_path[0] == 0)
                        r = asprintf(&s, "unix:@%s", t->socket_path + 1);
                else
                        r = asprintf(&s, all_digits(t->socket_path) ? "unix:./%s" : "unix:%s", t->socket_path);
        } else if (t->port > 0)
                r = asprintf(&s, t->host_is_ipv6 ? "[%s]:%u" : "%s:%u", t->host, (unsigned) t->port);
        else
                r = asprintf(&s, t->host_is_ipv6 ? "[%s]" : "%s", t->host);
        return r < 0 ? NULL : s;
}

/* Appends n bytes of s to f, percent-encoded but for the unreserved
 * characters and those in keep. */
static void pct_encode(FILE *f, const char *s, size_t n, const char *keep) {
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                /* is_unreserved() takes NUL for one: strchr() finds the terminator. */
                if (c != 0 && (is_unreserved(c) || strchr(keep, c)))
                        fputc(c, f);
                else
                        fprintf(f, "%%%02X", (unsigned char) c);
        }
}

char *nbd_uri_format(bool tls, const char *host, uint16_t port, const char *socket_path, size_t socket_path_len,
                     const char *export_name) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (!host && (!socket_path || socket_path_len == 0))
                return NULL;

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;

        if (host) {
                fputs(tls ? "nbds://" : "nbd://", f);
                if (strchr(host, ':')) {
                        /* An IPv6 literal; RFC 6874 writes its zone's '%' as "%25". */
                        fputc('[', f);
                        pct_encode(f, host, strlen(host), ":");
                        fputc(']', f);
                } else
                        pct_encode(f, host, strlen(host), "");
                if (port > 0)
                        fprintf(f, ":%u", (unsigned) port);
        } else
                fputs(tls ? "nbds+unix://" : "nbd+unix://", f);

        fputc('/', f);
        if (export_name)
                pct_encode(f, export_name, strlen(export_name), "/");

        if (!host) {
                fputs("?socket=", f);
                pct_encode(f, socket_path, socket_path_len, "/");
        }

        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(buf);
}
