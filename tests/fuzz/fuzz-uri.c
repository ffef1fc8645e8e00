/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the CLI's TARGET argument (NBD URIs, HOST[:PORT],
 * unix:PATH). Beyond not crashing, whatever the client accepts must be
 * something the daemon accepts too, and must print back to itself. */

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "nbd-protocol.h"
#include "net.h"
#include "nbd-uri.h"
#include "utf8.h"
#include "device-name.h"
#include "device-node.h"
#include "options.h"

static bool starts_with(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool bus_string_ok(const char *s) {
        return !s || utf8_is_valid(s, strlen(s));
}

/* What the CLI sends as "host" and "port" must survive the daemon's parser
 * unchanged: otherwise the client accepted a target the daemon refuses,
 * late, with a message the user cannot relate to what they typed. */
static void check_daemon_agrees(const NbdTarget *t) {
        _cleanup_(nbd_address_done) NbdAddress a = {};
        Error error = {};
        int r;

        if (t->is_unix)
                return;         /* the client connects unix sockets itself */

        r = validate_host(nbd_target_bus_host(t), false, &error);
        if (r < 0)
                fprintf(stderr, "daemon refuses host \"%s\": %s\n", nbd_target_bus_host(t), error.message);
        FUZZ_CHECK(r == 0);

        r = nbd_address_parse(&a, nbd_target_bus_host(t), t->port, &error);
        if (r < 0)
                fprintf(stderr, "daemon refuses host \"%s\": %s\n", nbd_target_bus_host(t), error.message);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(a.host && strcmp(a.host, t->host) == 0);
        FUZZ_CHECK(a.port == (t->port ?: NBD_DEFAULT_PORT));

        if (t->export_name)
                FUZZ_CHECK(validate_export_name(t->export_name, &error) == 0);
}

/* The short form in messages reads back as the same host and port. */
static void check_round_trip(const NbdTarget *t) {
        _cleanup_(nbd_target_freep) NbdTarget *again = NULL;
        _cleanup_free_ char *s = nbd_target_to_string(t);
        char error[256];
        int r;

        FUZZ_CHECK(s);
        if (t->is_unix)
                return;         /* unix:@name is only the display of an abstract socket */

        r = nbd_target_parse(&again, s, error, sizeof(error));
        if (r < 0)
                fprintf(stderr, "\"%s\" does not parse back: %s\n", s, error);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(!again->is_unix);
        FUZZ_CHECK(strcmp(again->host, t->host) == 0);
        FUZZ_CHECK(again->port == t->port);
        FUZZ_CHECK(again->host_is_ipv6 == t->host_is_ipv6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(nbd_target_freep) NbdTarget *t = NULL;
        _cleanup_free_ char *s = NULL;
        char error[256] = "";
        int r;

        /* A command-line argument: the bytes up to the first NUL. */
        s = strndup((const char *) data, size);
        if (!s)
                return 0;

        r = nbd_target_parse(&t, s, error, sizeof(error));
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
                if (r == -EINVAL)
                        FUZZ_CHECK(starts_with(error, "uri: ") || starts_with(error, "target: "));
                FUZZ_CHECK(!t);
                return 0;
        }

        FUZZ_CHECK(t);
        if (t->is_unix) {
                FUZZ_CHECK(!t->host);
                FUZZ_CHECK(t->socket_path && t->socket_path_len > 0 && t->socket_path_len < 108);
                FUZZ_CHECK(strcmp(nbd_target_bus_host(t), "") == 0);
        } else {
                FUZZ_CHECK(t->host && *t->host);
                FUZZ_CHECK(strlen(t->host) <= NBD_MAX_HOST);
                FUZZ_CHECK(!t->socket_path);
        }
        if (t->export_name)
                FUZZ_CHECK(strlen(t->export_name) <= NBD_MAX_STRING);

        /* sd-bus refuses strings that are not UTF-8: the parser must have. */
        FUZZ_CHECK(bus_string_ok(t->host));
        FUZZ_CHECK(bus_string_ok(t->export_name));
        FUZZ_CHECK(bus_string_ok(t->username));
        FUZZ_CHECK(bus_string_ok(t->tls_hostname));

        check_daemon_agrees(t);
        check_round_trip(t);
        return 0;
}
