/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Argument checks for the bus API: export names, hosts and the a{sv}
 * options. Everything here runs on the main thread before authorization, so
 * it must never block: descriptors are only checked with fstat/getsockopt
 * here, and read later by a worker. */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "contract.h"
#include "error-text.h"
#include "options.h"
#include "util/macro.h"


int validate_export_name(const char *s, Error *error) {
        size_t len = strlen(s);

        if (len > NBD_MAX_STRING)
                return error_set(error, -EINVAL,
                            "export name of %zu bytes is longer than %u bytes", len, NBD_MAX_STRING);
        return 0;
}

int validate_host(const char *s, bool allow_unix, Error *error) {
        size_t len = strlen(s);

        if (len == 0)
                return error_set(error, -EINVAL, "host is empty (pass a host, or the option 'socket')");
        if (len > NBD_MAX_HOST)
                return error_set(error, -EINVAL,
                            "host of %zu bytes is longer than %u bytes", len, NBD_MAX_HOST);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return error_set(error, -EINVAL, "host contains control characters");

        /* root would connect on the caller's behalf to a path the caller
         * might not be allowed to reach; others pass a connected socket. */
        if (nbd_address_is_unix(s)) {
                if (!allow_unix)
                        return error_set(error, -EINVAL,
                                    "host '%s': unix: sockets are accepted from root only; "
                                    "pass a connected socket as the option 'socket' instead", s);
                if (s[5] != '/')
                        return error_set(error, -EINVAL, "host '%s': unix: needs an absolute path", s);
        }
        return 0;
}

typedef enum OptionKind {
        KIND_QUERY,     /* allowed everywhere */
        KIND_ATTACH,    /* only for AttachWithOptions */
} OptionKind;

static const struct {
        const char *key;
        const char *signature;
        OptionKind kind;
} option_table[] = {
        { "port",         "q", KIND_QUERY  },
        { "tls",          "s", KIND_QUERY  },
        { "tls-hostname", "s", KIND_QUERY  },
        { "tls-ca",       "h", KIND_QUERY  },
        { "tls-cert",     "h", KIND_QUERY  },
        { "tls-key",      "h", KIND_QUERY  },
        { "tls-psk",      "h", KIND_QUERY  },
        { "tls-username", "s", KIND_QUERY  },
        { "timeout",      "u", KIND_QUERY  },
        { "socket",       "h", KIND_QUERY  },
        { "read-only",    "b", KIND_ATTACH },
        { "connections",  "u", KIND_ATTACH },
        { "io-timeout",   "u", KIND_ATTACH },
        { "block-size",   "u", KIND_ATTACH },
        { "persist",      "b", KIND_ATTACH },
        { "dead-timeout", "u", KIND_ATTACH },
        { "tls-ktls",     "b", KIND_ATTACH },
};

static int take_credential_fd(int fd, const char *key, int *slot, Error *error) {
        _cleanup_close_ int copy = -EBADF;
        struct stat st;

        if (fstat(fd, &st) < 0)
                return error_set(error, negative_errno(), "option '%s': cannot stat descriptor: %m", key);
        /* Regular files (memfds included) only: a pipe that is never written
         * would keep a reader waiting forever. */
        if (!S_ISREG(st.st_mode))
                return error_set(error, -EINVAL, "option '%s' must be a regular file or memfd", key);
        if ((uint64_t) st.st_size > CREDENTIAL_MAX_SIZE)
                return error_set(error, -EINVAL, "option '%s': file of %llu bytes is larger than %u bytes",
                            key, (unsigned long long) st.st_size, CREDENTIAL_MAX_SIZE);

        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return error_set(error, negative_errno(), "option '%s': cannot duplicate descriptor: %m", key);

        safe_close(*slot);
        *slot = TAKE_FD(copy);
        return 0;
}

static int take_socket_fd(int fd, int *slot, Error *error) {
        _cleanup_close_ int copy = -EBADF;
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(int);
        int type = 0;
        struct stat st;

        if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
                return error_set(error, -EINVAL, "option 'socket' is not a socket");
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0 || type != SOCK_STREAM)
                return error_set(error, -EINVAL, "option 'socket' is not a stream socket");
        sl = sizeof(sa);
        if (getpeername(fd, (struct sockaddr *) &sa, &sl) < 0)
                return error_set(error, -EINVAL, "option 'socket' is not connected");

        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return error_set(error, negative_errno(), "option 'socket': cannot duplicate descriptor: %m");

        safe_close(*slot);
        *slot = TAKE_FD(copy);
        return 0;
}

/* A duration option: 1 to ATTACH_MAX_TIMEOUT_SEC seconds. */
static int read_seconds(sd_bus_message *m, const char *key, uint32_t *ret, Error *error) {
        uint32_t v;
        int r;

        r = sd_bus_message_read_basic(m, 'u', &v);
        if (r < 0)
                return r;
        if (v < 1 || v > ATTACH_MAX_TIMEOUT_SEC)
                return error_set(error, -EINVAL,
                            "option '%s' must be between 1 and %u seconds", key, ATTACH_MAX_TIMEOUT_SEC);
        *ret = v;
        return 0;
}

static int parse_one(sd_bus_message *m, const char *key, AttachOptions *o, Error *error) {
        int r;

        if (strcmp(key, "port") == 0) {
                uint16_t v;
                r = sd_bus_message_read_basic(m, 'q', &v);
                if (r < 0)
                        return r;
                if (v == 0)
                        return error_set(error, -EINVAL, "option 'port' must be between 1 and 65535");
                o->port = v;

        } else if (strcmp(key, "tls") == 0) {
                const char *v;
                r = sd_bus_message_read_basic(m, 's', &v);
                if (r < 0)
                        return r;
                if (strcmp(v, "off") == 0)
                        o->tls = TLS_MODE_OFF;
                else if (strcmp(v, "on") == 0)
                        o->tls = TLS_MODE_ON;
                else if (strcmp(v, "require") == 0)
                        o->tls = TLS_MODE_REQUIRE;
                else
                        return error_set(error, -EINVAL,
                                    "option 'tls' must be 'off', 'on' or 'require', not '%.64s'", v);

        } else if (strcmp(key, "tls-hostname") == 0 || strcmp(key, "tls-username") == 0) {
                char **slot = key[4] == 'h' ? &o->tls_hostname : &o->tls_username;
                const char *v;
                r = sd_bus_message_read_basic(m, 's', &v);
                if (r < 0)
                        return r;
                if (strlen(v) > NBD_MAX_HOST)
                        return error_set(error, -EINVAL, "option '%s' is longer than %u bytes", key, NBD_MAX_HOST);
                free(*slot);
                *slot = strdup(v);
                if (!*slot)
                        return -ENOMEM;

        } else if (strcmp(key, "tls-ca") == 0 || strcmp(key, "tls-cert") == 0 ||
                   strcmp(key, "tls-key") == 0 || strcmp(key, "tls-psk") == 0) {
                int *slot = strcmp(key, "tls-ca") == 0 ? &o->tls_ca_fd :
                            strcmp(key, "tls-cert") == 0 ? &o->tls_cert_fd :
                            strcmp(key, "tls-key") == 0 ? &o->tls_key_fd : &o->tls_psk_fd;
                int fd;
                r = sd_bus_message_read_basic(m, 'h', &fd);
                if (r < 0)
                        return r;
                return take_credential_fd(fd, key, slot, error);

        } else if (strcmp(key, "socket") == 0) {
                int fd;
                r = sd_bus_message_read_basic(m, 'h', &fd);
                if (r < 0)
                        return r;
                return take_socket_fd(fd, &o->socket_fd, error);

        } else if (strcmp(key, "timeout") == 0) {
                return read_seconds(m, key, &o->timeout_sec, error);

        } else if (strcmp(key, "dead-timeout") == 0) {
                return read_seconds(m, key, &o->dead_timeout_sec, error);

        } else if (strcmp(key, "io-timeout") == 0) {
                uint32_t v;
                r = sd_bus_message_read_basic(m, 'u', &v);
                if (r < 0)
                        return r;
                /* 0 is meaningful here: the kernel never gives up. */
                if (v > ATTACH_MAX_TIMEOUT_SEC)
                        return error_set(error, -EINVAL,
                                    "option 'io-timeout' must be between 0 (never) and %u seconds", ATTACH_MAX_TIMEOUT_SEC);
                o->io_timeout_sec = v;

        } else if (strcmp(key, "connections") == 0) {
                uint32_t v;
                r = sd_bus_message_read_basic(m, 'u', &v);
                if (r < 0)
                        return r;
                if (v < 1 || v > ATTACH_MAX_CONNECTIONS)
                        return error_set(error, -EINVAL,
                                    "option 'connections' must be between 1 and %u", ATTACH_MAX_CONNECTIONS);
                o->connections = v;

        } else if (strcmp(key, "block-size") == 0) {
                uint32_t v;
                r = sd_bus_message_read_basic(m, 'u', &v);
                if (r < 0)
                        return r;
                /* The kernel takes powers of two from 512 to the page size. */
                if (v < 512 || v > 4096 || (v & (v - 1)) != 0)
                        return error_set(error, -EINVAL,
                                    "option 'block-size' must be a power of two from 512 to 4096");
                o->block_size = v;

        } else if (strcmp(key, "read-only") == 0 || strcmp(key, "persist") == 0 || strcmp(key, "tls-ktls") == 0) {
                int v;
                r = sd_bus_message_read_basic(m, 'b', &v);
                if (r < 0)
                        return r;
                if (key[0] == 'r')
                        o->read_only = v;
                else if (key[0] == 'p')
                        o->persist = v;
                else
                        o->tls_ktls = v;
        } else
                return -EINVAL;         /* not reached: checked against option_table */

        return 0;
}

int attach_options_parse(sd_bus_message *m, OptionSet set, AttachOptions *o, Error *error) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return error_set(error, r, "options must be a{sv}");

        for (;;) {
                const char *key, *contents;
                size_t i;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        return error_set(error, r, "cannot read options");
                if (r == 0)
                        break;

                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        return error_set(error, r, "cannot read option key");

                for (i = 0; i < ELEMENTSOF(option_table); i++)
                        if (strcmp(option_table[i].key, key) == 0)
                                break;
                if (i >= ELEMENTSOF(option_table))
                        return error_set(error, -EINVAL, "unknown option '%.64s'", key);
                if (set == OPTIONS_QUERY && option_table[i].kind != KIND_QUERY)
                        return error_set(error, -EINVAL, "option '%s' is only valid for attaching", key);

                r = sd_bus_message_peek_type(m, NULL, &contents);
                if (r < 0)
                        return error_set(error, r, "cannot read option '%s'", key);
                if (strcmp(contents, option_table[i].signature) != 0)
                        return error_set(error, -EINVAL, "option '%s' must have type '%s', not '%.16s'",
                                    key, option_table[i].signature, contents);

                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r < 0)
                        return error_set(error, r, "cannot read option '%s'", key);

                if (error)
                        error->message[0] = 0;
                r = parse_one(m, key, o, error);
                if (r < 0)
                        return error && error->message[0] ? r : error_set(error, r, "cannot read option '%s'", key);

                r = sd_bus_message_exit_container(m);  /* v */
                if (r < 0)
                        return error_set(error, r, "cannot read option '%s'", key);
                r = sd_bus_message_exit_container(m);  /* e */
                if (r < 0)
                        return error_set(error, r, "cannot read option '%s'", key);
        }

        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return error_set(error, r, "cannot read options");

        if (o->socket_fd >= 0 && o->connections > 1)
                return error_set(error, -EINVAL, "option 'socket' allows only one connection");
        if (o->tls_key_fd >= 0 && o->tls_cert_fd < 0)
                return error_set(error, -EINVAL, "option 'tls-key' needs 'tls-cert'");
        if (o->tls_cert_fd >= 0 && o->tls_key_fd < 0)
                return error_set(error, -EINVAL, "option 'tls-cert' needs 'tls-key'");
        return 0;
}

