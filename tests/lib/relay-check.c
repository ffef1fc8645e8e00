/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checks on how a relay ended (see relay-check.h). */

#include "relay-check.h"

#include <glib.h>
#include <poll.h>

void relay_check_ended(Relay *r) {
        struct pollfd p = { .fd = relay_event_fd(r), .events = POLLIN };

        g_assert_cmpint(poll(&p, 1, 10000), ==, 1);
        g_assert_true(relay_has_ended(r));
}

void relay_check_result(Relay *r, int error, const char *prefix) {
        const char *msg = NULL;
        int k = relay_result(r, &msg);

        g_test_message("relay ended: %d \"%s\"", k, msg);
        g_assert_cmpint(k, ==, error);
        g_assert_nonnull(msg);
        if (prefix)
                g_assert_true(g_str_has_prefix(msg, prefix));
        else
                g_assert_cmpstr(msg, ==, "");
}
