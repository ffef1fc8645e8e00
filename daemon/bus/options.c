/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Argument checks for the bus API: export names, hosts and the a{sv}
 * options. Everything here runs on the main thread before authorization, so
 * it must never block: descriptors are only checked with fstat/getsockopt
 * here, and read later by a worker. */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
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
        KIND_ATTACH,    /* only for attaching */
        KIND_URI,       /* only for AttachURI (its other arguments are in the URI) */
} OptionKind;


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

/* One parser per kind of option; the table below says which key is which,
 * and where in AttachOptions its value goes. Each reads the value (the
 * variant is entered already and its type checked) and checks its range. */
typedef int (*OptionParser)(sd_bus_message *m, const char *key, void *field, Error *error);

static int parse_port(sd_bus_message *m, const char *key, void *field, Error *error) {
        uint16_t v;
        int r;

        r = sd_bus_message_read_basic(m, 'q', &v);
        if (r < 0)
                return r;
        if (v == 0)
                return error_set(error, -EINVAL, "option 'port' must be between 1 and 65535");
        *(uint16_t *) field = v;
        return 0;
}

static int parse_tls_mode(sd_bus_message *m, const char *key, void *field, Error *error) {
        const char *v;
        TlsMode mode;
        int r;

        r = sd_bus_message_read_basic(m, 's', &v);
        if (r < 0)
                return r;
        mode = tls_mode_from_string(v);
        if (mode < 0)
                return error_set(error, -EINVAL, "option 'tls' must be 'off', 'on' or 'require', not '%.64s'", v);
        *(TlsMode *) field = mode;
        return 0;
}

/* A short string: a name that goes into a TLS session (host name, PSK
 * identity), AttachURI's device (checked with the others, later). */
static int parse_short_string(sd_bus_message *m, const char *key, void *field, Error *error) {
        char **slot = field;
        const char *v;
        int r;

        r = sd_bus_message_read_basic(m, 's', &v);
        if (r < 0)
                return r;
        if (strlen(v) > NBD_MAX_HOST)
                return error_set(error, -EINVAL, "option '%s' is longer than %u bytes", key, NBD_MAX_HOST);
        free(*slot);
        *slot = strdup(v);
        return *slot ? 0 : -ENOMEM;
}

static int parse_credential(sd_bus_message *m, const char *key, void *field, Error *error) {
        int fd, r;

        r = sd_bus_message_read_basic(m, 'h', &fd);
        if (r < 0)
                return r;
        return take_credential_fd(fd, key, field, error);
}

static int parse_socket(sd_bus_message *m, const char *key, void *field, Error *error) {
        int fd, r;

        r = sd_bus_message_read_basic(m, 'h', &fd);
        if (r < 0)
                return r;
        return take_socket_fd(fd, field, error);
}

static int parse_seconds(sd_bus_message *m, const char *key, void *field, Error *error) {
        return read_seconds(m, key, field, error);
}

static int parse_io_timeout(sd_bus_message *m, const char *key, void *field, Error *error) {
        uint32_t v;
        int r;

        r = sd_bus_message_read_basic(m, 'u', &v);
        if (r < 0)
                return r;
        /* 0 is meaningful here: the kernel never gives up. */
        if (v > ATTACH_MAX_TIMEOUT_SEC)
                return error_set(error, -EINVAL,
                                 "option 'io-timeout' must be between 0 (never) and %u seconds", ATTACH_MAX_TIMEOUT_SEC);
        *(uint32_t *) field = v;
        return 0;
}

static int parse_connections(sd_bus_message *m, const char *key, void *field, Error *error) {
        uint32_t v;
        int r;

        r = sd_bus_message_read_basic(m, 'u', &v);
        if (r < 0)
                return r;
        if (v < 1 || v > ATTACH_MAX_CONNECTIONS)
                return error_set(error, -EINVAL, "option 'connections' must be between 1 and %u", ATTACH_MAX_CONNECTIONS);
        *(uint32_t *) field = v;
        return 0;
}

static int parse_block_size(sd_bus_message *m, const char *key, void *field, Error *error) {
        uint32_t v;
        int r;

        r = sd_bus_message_read_basic(m, 'u', &v);
        if (r < 0)
                return r;
        /* The kernel takes powers of two from 512 to the page size. */
        if (v < 512 || v > 4096 || (v & (v - 1)) != 0)
                return error_set(error, -EINVAL, "option 'block-size' must be a power of two from 512 to 4096");
        *(uint32_t *) field = v;
        return 0;
}

static int parse_kernel_interface(sd_bus_message *m, const char *key, void *field, Error *error) {
        KernelInterface k;
        const char *v;
        int r;

        r = sd_bus_message_read_basic(m, 's', &v);
        if (r < 0)
                return r;
        k = kernel_interface_from_string(v);
        if (k < 0)
                return error_set(error, -EINVAL, "option 'kernel-interface' must be 'auto', 'netlink' or 'ioctl', not '%.64s'", v);
        *(KernelInterface *) field = k;
        return 0;
}

static int parse_bool(sd_bus_message *m, const char *key, void *field, Error *error) {
        int v, r;

        r = sd_bus_message_read_basic(m, 'b', &v);
        if (r < 0)
                return r;
        *(bool *) field = v;
        return 0;
}

static const struct {
        const char *key;
        const char *signature;
        OptionKind kind;
        OptionParser parse;
        size_t offset;                  /* of the field in AttachOptions */
} option_table[] = {
        { "port",         "q", KIND_QUERY,  parse_port,        offsetof(AttachOptions, port) },
        { "tls",          "s", KIND_QUERY,  parse_tls_mode,    offsetof(AttachOptions, tls) },
        { "tls-hostname", "s", KIND_QUERY,  parse_short_string, offsetof(AttachOptions, tls_hostname) },
        { "tls-ca",       "h", KIND_QUERY,  parse_credential,  offsetof(AttachOptions, tls_ca_fd) },
        { "tls-cert",     "h", KIND_QUERY,  parse_credential,  offsetof(AttachOptions, tls_cert_fd) },
        { "tls-key",      "h", KIND_QUERY,  parse_credential,  offsetof(AttachOptions, tls_key_fd) },
        { "tls-psk",      "h", KIND_QUERY,  parse_credential,  offsetof(AttachOptions, tls_psk_fd) },
        { "tls-username", "s", KIND_QUERY,  parse_short_string, offsetof(AttachOptions, tls_username) },
        { "timeout",      "u", KIND_QUERY,  parse_seconds,     offsetof(AttachOptions, timeout_sec) },
        { "socket",       "h", KIND_QUERY,  parse_socket,      offsetof(AttachOptions, socket_fd) },
        { "read-only",    "b", KIND_ATTACH, parse_bool,        offsetof(AttachOptions, read_only) },
        { "connections",  "u", KIND_ATTACH, parse_connections, offsetof(AttachOptions, connections) },
        { "io-timeout",   "u", KIND_ATTACH, parse_io_timeout,  offsetof(AttachOptions, io_timeout_sec) },
        { "block-size",   "u", KIND_ATTACH, parse_block_size,  offsetof(AttachOptions, block_size) },
        { "persist",      "b", KIND_ATTACH, parse_bool,        offsetof(AttachOptions, persist) },
        { "dead-timeout", "u", KIND_ATTACH, parse_seconds,     offsetof(AttachOptions, dead_timeout_sec) },
        { "tls-ktls",     "b", KIND_ATTACH, parse_bool,        offsetof(AttachOptions, tls_ktls) },
        { "kernel-interface", "s", KIND_ATTACH, parse_kernel_interface, offsetof(AttachOptions, kernel_interface) },
        { "device",       "s", KIND_URI,    parse_short_string, offsetof(AttachOptions, device) },
};

int attach_options_parse(sd_bus_message *m, OptionSet set, AttachOptions *o, Error *error) {
        uint32_t seen = 0;
        int r;

        _Static_assert(ELEMENTSOF(option_table) <= 32, "one bit per option in 'seen'");

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
                if (set != OPTIONS_ATTACH_URI && option_table[i].kind == KIND_URI)
                        return error_set(error, -EINVAL, "option '%s' is only valid for AttachURI", key);
                /* A second value would replace the first unseen, and each
                 * descriptor given twice would be one more to hold. */
                if (seen & (UINT32_C(1) << i))
                        return error_set(error, -EINVAL, "option '%s' is given more than once", key);
                seen |= UINT32_C(1) << i;

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
                r = option_table[i].parse(m, key, (uint8_t *) o + option_table[i].offset, error);
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

