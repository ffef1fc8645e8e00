/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* daemon/utf8.c: validity as D-Bus sees it, mending text for people, and
 * trimming what a byte-wise cut left of the last character. */

#include <stdio.h>
#include <string.h>

#include "utf8.h"

/* After nbdlink headers: GLib redefines MIN/MAX itself. */
#include <glib.h>

static void test_valid(void) {
        g_assert_true(utf8_is_valid("", 0));
        g_assert_true(utf8_is_valid("disk", 4));
        g_assert_true(utf8_is_valid("caf\xc3\xa9", 5));
        g_assert_true(utf8_is_valid("\xf0\x9f\x92\xbe", 4));            /* U+1F4BE */
        g_assert_false(utf8_is_valid("a\0b", 3));                        /* NUL */
        g_assert_false(utf8_is_valid("\xc0\xaf", 2));                    /* overlong '/' */
        g_assert_false(utf8_is_valid("\xed\xa0\x80", 3));                /* surrogate */
        g_assert_false(utf8_is_valid("\xf4\x90\x80\x80", 4));            /* past U+10FFFF */
        g_assert_false(utf8_is_valid("caf\xc3", 4));                     /* cut short */
        g_assert_false(utf8_is_valid("\x80", 1));                        /* lone continuation */
}

static void test_width(void) {
        g_assert_cmpuint(utf8_width("disk"), ==, 4);
        g_assert_cmpuint(utf8_width("caf\xc3\xa9"), ==, 4);
        g_assert_cmpuint(utf8_width("\xff" "a"), ==, 2);                 /* a bad byte counts one */
}

/* Prose from a server: any bytes, NUL included, in the visible form. */
static void test_escape_n(void) {
        static const char bell[] = "bell\a esc\x1b del\x7f", cut[] = "\xed\xa0\x80 \xc3";
        g_autofree char *a = utf8_escape_n("ok caf\xc3\xa9", strlen("ok caf\xc3\xa9"));
        g_autofree char *b = utf8_escape_n(bell, strlen(bell));
        g_autofree char *c = utf8_escape_n(cut, strlen(cut));
        g_autofree char *d = utf8_escape_n("a\0b", 3);

        g_assert_cmpstr(a, ==, "ok caf\xc3\xa9");
        g_assert_cmpstr(b, ==, "bell\\x07 esc\\x1b del\\x7f");
        g_assert_cmpstr(c, ==, "\\xed\\xa0\\x80 \\xc3");
        g_assert_cmpstr(d, ==, "a\\x00b");
}

static void test_escape(void) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "plain export", "plain export" },
                { "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac" },    /* letters stay */
                { "a\nb", "a\\x0ab" },
                { "\x1b[8mhidden\x1b[0m", "\\x1b[8mhidden\\x1b[0m" },
                { "cr\rdel\x7f", "cr\\x0ddel\\x7f" },
                { "csi\xc2\x9b" "2J", "csi\\u009B2J" },                        /* C1 */
                { "\xe2\x80\xae" "evil", "\\u202Eevil" },                      /* RLO */
                { "\xe2\x81\xa6i\xe2\x81\xa9 \xd8\x9c \xe2\x80\x8f", "\\u2066i\\u2069 \\u061C \\u200F" },
                { "bad\xff\xc3", "bad\\xff\\xc3" },                          /* broken UTF-8 */
                { "back\\slash", "back\\slash" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *e = utf8_escape(cases[i].in);

                g_assert_cmpstr(e, ==, cases[i].out);
                g_assert_true(utf8_needs_escape(cases[i].in) == (strcmp(cases[i].in, cases[i].out) != 0));
                g_assert_true(utf8_is_valid(e, strlen(e)));
        }
        g_assert_false(unicode_is_control(0xa0));       /* NO-BREAK SPACE is shown */
        g_assert_false(unicode_is_control(0x200d));     /* ZWJ joins emoji */
        g_assert_true(unicode_is_control(0x85));
}

static void test_trim_partial(void) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "",                           "" },
                { "plain",                      "plain" },
                { "caf\xc3\xa9",                "caf\xc3\xa9" },       /* whole: kept */
                { "caf\xc3",                    "caf" },               /* lead byte alone */
                { "user \xed\x90",              "user " },             /* 2 of 3 */
                { "user \xed\x90\x8c",          "user \xed\x90\x8c" },
                { "x\xf0\x9f\x92",              "x" },                 /* 3 of 4 */
                { "x\xf0\x9f\x92\xbe",          "x\xf0\x9f\x92\xbe" },
                { "\xe2\x82",                   "" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                char buf[32];

                g_assert_cmpuint(strlen(cases[i].in), <, sizeof(buf));
                strcpy(buf, cases[i].in);
                utf8_trim_partial(buf);
                g_assert_cmpstr(buf, ==, cases[i].out);
        }

        /* What it is for: snprintf() cutting a name in the middle of a
         * character, at every possible place. */
        for (size_t size = 1; size <= 12; size++) {
                char buf[16];

                (void) snprintf(buf, size, "u \xed\x90\x8c\xed\x90\x91 x");
                utf8_trim_partial(buf);
                g_assert_true(utf8_is_valid(buf, strlen(buf)));
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/utf8/valid", test_valid);
        g_test_add_func("/utf8/width", test_width);
        g_test_add_func("/utf8/escape-n", test_escape_n);
        g_test_add_func("/utf8/escape", test_escape);
        g_test_add_func("/utf8/trim-partial", test_trim_partial);
        return g_test_run();
}
