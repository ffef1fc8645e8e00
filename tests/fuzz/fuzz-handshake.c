/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the whole handshake engine against a server whose
 * bytes are the input. The first byte picks the goal and TLS mode; the
 * rest is everything the server says. Whatever the bytes, the engine must
 * end with a result or an error: no crash, no leak, no hang. */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const TlsConfig tls_config = {};
        HandshakeOptions o = {};
        Handshake hs;
        Conn *c;
        int r;

        if (size < 1)
                return 0;

        switch (data[0] & 3) {
        case 0:
                o.goal = HANDSHAKE_INFO;
                break;
        case 1:
                o.goal = HANDSHAKE_LIST;
                break;
        default:
                o.goal = HANDSHAKE_GO;
                break;
        }
        o.tls = (TlsMode) ((data[0] >> 2) % _TLS_MODE_MAX);
        o.tls_config = &tls_config;
        o.export_name = (data[0] & 0x80) ? "" : "disk";

        if (conn_new_memory(&c, data + 1, size - 1) < 0)
                return 0;
        handshake_init(&hs, c, &o);
        r = handshake_run(&hs);
        if (r < 0) {
                /* A message with its phase, sendable on the bus. */
                FUZZ_CHECK(r == hs.error.code);
                FUZZ_CHECK(strncmp(hs.error.message, "handshake: ", 11) == 0 || strncmp(hs.error.message, "tls: ", 5) == 0 ||
                           strncmp(hs.error.message, "connect: ", 9) == 0);
                FUZZ_CHECK(fuzz_utf8_valid(hs.error.message));
        } else {
                /* What the server named goes on the bus as strings. */
                for (size_t i = 0; i < hs.n_exports; i++) {
                        FUZZ_CHECK(hs.exports[i].name && fuzz_utf8_valid(hs.exports[i].name));
                        FUZZ_CHECK(hs.exports[i].description && fuzz_utf8_valid(hs.exports[i].description));
                }
                FUZZ_CHECK(!hs.info.name || fuzz_utf8_valid(hs.info.name));
                FUZZ_CHECK(!hs.info.description || fuzz_utf8_valid(hs.info.description));
        }
        handshake_done(&hs);
        return 0;
}
