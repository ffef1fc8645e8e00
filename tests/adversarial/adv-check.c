/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A case's outcome checked alike by both adversarial programs (see
 * adv-check.h). */

#include "adv-check.h"

#include <glib.h>
#include <string.h>

bool adv_is_clean_text(const char *s) {
        if (!g_utf8_validate(s, -1, NULL))
                return false;
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

void adv_check_message(const AdvExpect *e, const char *message) {
        g_assert_nonnull(message);
        if (!message)
                return;
        if (!g_str_has_prefix(message, e->prefix) || !strstr(message, e->needle))
                g_test_fail_printf("message \"%s\" lacks prefix \"%s\" or text \"%s\"", message, e->prefix, e->needle);
        if (e->unwanted && strstr(message, e->unwanted))
                g_test_fail_printf("message \"%s\" should not mention \"%s\"", message, e->unwanted);
        g_assert_true(adv_is_clean_text(message));
}

void adv_check_elapsed(const AdvCase *c, usec_t elapsed, usec_t deadline, usec_t margin) {
        g_assert_cmpuint(elapsed, <=, deadline + margin);
        if (c->slow)
                g_assert_cmpuint(elapsed, >=, deadline - 50 * USEC_PER_MSEC);
        else
                g_assert_cmpuint(elapsed, <, deadline);
}

void adv_check_verdict(const AdvExpect *e, const char *verdict) {
        g_assert_nonnull(verdict);
        if (e->verdict)
                g_assert_cmpstr(verdict, ==, e->verdict);
}
