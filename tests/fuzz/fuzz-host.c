/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the daemon's checks on the strings a bus caller sends:
 * device names, export names, and hosts (validate_host() on the main
 * thread, nbd_address_parse() later in the worker). The first byte holds
 * flags (bit 0: caller is root, bit 1: a "port" option follows in the next
 * two bytes); the rest, up to a NUL, is the string. */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "nbd-protocol.h"
#include "net.h"
#include "device-name.h"
#include "device-node.h"
#include "options.h"

static void check_device_name(const char *s) {
        const char *name = strncmp(s, "/dev/", 5) == 0 ? s + 5 : s;
        char canonical[16];
        int index = -2;

        if (device_name_parse(s, &index) < 0)
                return;

        if (!*s) {
                FUZZ_CHECK(index == -1);
                return;
        }
        /* One spelling per device: the name is exactly "nbd" + the index. */
        FUZZ_CHECK(index >= 0 && index <= NBD_MAX_DEVICE_INDEX);
        (void) snprintf(canonical, sizeof(canonical), "nbd%d", index);
        FUZZ_CHECK(strcmp(name, canonical) == 0);
}

static void check_host(const char *s, bool root, uint16_t port_override) {
        _cleanup_(nbd_address_done) NbdAddress a = {}, again = {};
        Error error = {};
        char formatted[NBD_MAX_HOST + 64];
        int r, v;

        v = validate_host(s, root, &error);
        FUZZ_CHECK(v == 0 || v == -EINVAL);

        error.message[0] = 0;
        r = nbd_address_parse(&a, s, port_override, &error);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
                if (r == -EINVAL)
                        FUZZ_CHECK(strncmp(error.message, "host: ", 6) == 0);
                /* Messages echo the host: never with control characters. */
                for (const char *p = error.message; *p; p++)
                        FUZZ_CHECK((unsigned char) *p >= 0x20 && *p != 0x7f);
                return;
        }

        /* What the worker connects to was let through on the main thread,
         * and a unix path only for root. */
        FUZZ_CHECK(v == 0 || (!root && a.unix_path));
        if (a.unix_path) {
                FUZZ_CHECK(!a.host);
                FUZZ_CHECK(a.unix_path[0] == '/');
                FUZZ_CHECK(strlen(a.unix_path) < 108);
                FUZZ_CHECK(validate_host(s, false, NULL) == -EINVAL);
        } else {
                FUZZ_CHECK(a.host && *a.host);
                FUZZ_CHECK(strlen(a.host) <= NBD_MAX_HOST);
                FUZZ_CHECK(a.port != 0);
                if (port_override)
                        FUZZ_CHECK(a.port == port_override);
                for (const char *p = a.host; *p; p++)
                        FUZZ_CHECK((unsigned char) *p > 0x20 && *p != 0x7f);
        }

        /* The form used in messages parses back the same, when it fits:
         * a name of the full NBD_MAX_HOST bytes is that long only without
         * the port the message adds. */
        nbd_address_format(&a, formatted, sizeof(formatted));
        if (strlen(formatted) > NBD_MAX_HOST)
                return;
        r = nbd_address_parse(&again, formatted, 0, &error);
        if (r < 0)
                fprintf(stderr, "\"%s\" does not parse back: %s\n", formatted, error.message);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(!!again.unix_path == !!a.unix_path);
        if (a.unix_path)
                FUZZ_CHECK(strcmp(again.unix_path, a.unix_path) == 0);
        else {
                FUZZ_CHECK(strcmp(again.host, a.host) == 0);
                FUZZ_CHECK(again.port == a.port);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = NULL;
        uint16_t port_override = 0;
        Error error = {};
        bool root;
        int r;

        if (size < 1)
                return 0;
        root = data[0] & 1;
        if (data[0] & 2) {
                if (size < 3)
                        return 0;
                port_override = (uint16_t) (data[1] << 8 | data[2]);
                data += 2;
                size -= 2;
        }
        s = strndup((const char *) data + 1, size - 1);
        if (!s)
                return 0;

        check_device_name(s);

        r = validate_export_name(s, &error);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        FUZZ_CHECK((r == 0) == (strlen(s) <= NBD_MAX_STRING));

        check_host(s, root, port_override);
        return 0;
}
